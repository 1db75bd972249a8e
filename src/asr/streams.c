/* Stream decoders: separate from the batch decoders (chunked input switches
 * PocketSphinx to live CMN for good), created lazily up to max_streams and
 * reused. An idle decoder of another language is recycled at the cap. */
#include <stdlib.h>
#include <string.h>

#include "asr/pool_internal.h"
#include "util/log.h"

void ld_pool_set_max_streams(ld_pool *p, int max_streams)
{
    pthread_mutex_lock(&p->mu);
    p->max_streams = max_streams > 0 ? max_streams : 0;
    pthread_mutex_unlock(&p->mu);
}

int ld_pool_active_streams(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->active_streams;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void unlink_slot(ld_pool *p, stream_slot *s)
{
    for (stream_slot **pp = &p->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            p->n_streams--;
            return;
        }
}

ld_err ld_pool_stream_acquire(ld_pool *p, const char *lang, ld_stream_decoder **out, ld_error *err)
{
    *out = NULL;
    int li = -1;
    for (int i = 0; i < p->n_langs; i++)
        if (!strcmp(p->langs[i].code, lang ? lang : "en"))
            li = i;
    if (li < 0 || !ld_pool_has_language(p, p->langs[li].code)) {
        json_t *a = ld_pool_languages(p);
        char list[200] = "";
        for (size_t i = 0; i < json_array_size(a); i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     json_string_value(json_array_get(a, i)));
        json_decref(a);
        return ld_error_set(err, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language '%s'; available: %s",
                            lang ? lang : "", list);
    }
    stream_slot *victim = NULL;
    pthread_mutex_lock(&p->mu);
    for (stream_slot *s = p->streams; s; s = s->next)
        if (!s->in_use && !strcmp(s->sd.language, p->langs[li].code)) {
            s->in_use = true;
            p->active_streams++;
            pthread_mutex_unlock(&p->mu);
            *out = &s->sd;
            return LD_OK;
        }
    if (p->n_streams + p->creating_streams >= p->max_streams) {
        for (stream_slot *s = p->streams; s && !victim; s = s->next)
            if (!s->in_use)
                victim = s;
        if (!victim) {
            pthread_mutex_unlock(&p->mu);
            return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "Too many live streams (%d); retry later",
                                p->max_streams);
        }
        unlink_slot(p, victim);
    }
    p->creating_streams++;
    pthread_mutex_unlock(&p->mu);

    if (victim) {
        victim->sd.ops->decoder_free(victim->sd.dec);
        free(victim);
    }
    /* slow (model load): outside the lock */
    stream_slot *s = calloc(1, sizeof *s);
    ld_error e = {0};
    void *dec = s ? p->engine->decoder_new(&(ld_engine_model){p->langs[li].code, p->langs[li].model_dir}, &e)
                  : NULL;
    pthread_mutex_lock(&p->mu);
    p->creating_streams--;
    if (dec) {
        s->sd.ops = p->engine;
        s->sd.dec = dec;
        snprintf(s->sd.language, sizeof s->sd.language, "%s", p->langs[li].code);
        s->in_use = true;
        s->next = p->streams;
        p->streams = s;
        p->n_streams++;
        p->active_streams++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!dec) {
        free(s);
        ld_log(LD_LOG_ERROR, "stream decoder failed to load: %s", e.msg);
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "No speech decoder available for a stream");
    }
    *out = &s->sd;
    return LD_OK;
}

void ld_pool_stream_release(ld_pool *p, ld_stream_decoder *sd)
{
    if (!sd)
        return;
    pthread_mutex_lock(&p->mu);
    for (stream_slot *s = p->streams; s; s = s->next)
        if (&s->sd == sd && s->in_use) {
            s->in_use = false;
            p->active_streams--;
        }
    pthread_mutex_unlock(&p->mu);
}

void ld_pool_streams_free(ld_pool *p)
{
    for (stream_slot *s = p->streams, *next; s; s = next) {
        next = s->next;
        if (s->in_use)
            ld_log(LD_LOG_WARNING, "pool freed while a stream still holds a decoder");
        s->sd.ops->decoder_free(s->sd.dec);
        free(s);
    }
    p->streams = NULL;
    p->n_streams = 0;
}
