/* Stream decoders: separate from the batch decoders (chunked input switches
 * PocketSphinx to live CMN for good), reused across streams, at most
 * max_streams of them. An idle decoder of another language is recycled at the
 * cap.
 *
 * Warm decoders: creating one loads a model (≈ 0.5 s CPU, more when several
 * streams start at once), which a new stream would otherwise wait for before
 * its first result. The warmer thread keeps `prewarm` idle decoders of the
 * first language ready, refilling at nice 19 (the lowest) so live streams keep the CPU, and
 * frees idle decoders beyond those after idle_free_s, so a burst of streams
 * does not hold ≈ 95 MB each forever. The list is kept most recently released
 * first: streams take warm decoders from the front, the warmer frees from the
 * back. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "asr/pool_internal.h"
#include "util/log.h"
#include "util/time.h"

#define WARMER_NICE 19
/* At exit the warmer may be building a decoder at nice 19, which a busy
 * machine stretches to minutes (52 and 141 s measured under six busy loops),
 * while an orchestrator kills a stopping server after ~30 s. Wait this long. */
#define WARMER_EXIT_WAIT_S 2
/* How long a new stream waits for a decoder when all are held: a stream that
 * just ended gives its decoder back once its worker finishes its last task. */
#define STREAM_WAIT_MS 2000

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

int ld_pool_idle_streams(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_streams - p->active_streams;
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

static void push_front(ld_pool *p, stream_slot *s)
{
    s->next = p->streams;
    p->streams = s;
    p->n_streams++;
}

/* Loads a decoder for language li outside the lock; NULL on failure (logged). */
static stream_slot *create_slot(ld_pool *p, int li)
{
    stream_slot *s = calloc(1, sizeof *s);
    ld_error e = {0};
    ld_engine_model m = ld_pool_engine_model(p, li);
    void *dec = s ? p->engine->decoder_new(&m, &e) : NULL;
    if (!dec) {
        free(s);
        ld_log(LD_LOG_ERROR, "stream decoder failed to load: %s", e.msg[0] ? e.msg : "out of memory");
        return NULL;
    }
    s->sd.ops = p->engine;
    s->sd.dec = dec;
    snprintf(s->sd.language, sizeof s->sd.language, "%s", p->langs[li].code);
    return s;
}

static void free_slot(stream_slot *s)
{
    s->sd.ops->decoder_free(s->sd.dec);
    free(s);
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
    struct timespec until = ld_time_deadline(STREAM_WAIT_MS);
    bool waited = false;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (stream_slot *s = p->streams; s; s = s->next)
            if (!s->in_use && !strcmp(s->sd.language, p->langs[li].code)) {
                s->in_use = true;
                p->active_streams++;
                pthread_cond_signal(&p->warm_cv); /* refill the warm set */
                pthread_mutex_unlock(&p->mu);
                *out = &s->sd;
                return LD_OK;
            }
        if (p->n_streams + p->creating_streams < p->max_streams)
            break;
        for (stream_slot *s = p->streams; s; s = s->next)
            if (!s->in_use)
                victim = s; /* the one idle longest */
        if (victim) {
            unlink_slot(p, victim);
            break;
        }
        if (waited) {
            pthread_mutex_unlock(&p->mu);
            return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "Too many live streams (%d); retry later",
                                p->max_streams);
        }
        /* Every decoder is held; one may belong to a stream that has just
         * ended and whose worker is finishing its last task. */
        waited = pthread_cond_timedwait(&p->stream_cv, &p->mu, &until) == ETIMEDOUT;
    }
    p->creating_streams++;
    pthread_mutex_unlock(&p->mu);

    if (victim)
        free_slot(victim);
    stream_slot *s = create_slot(p, li); /* slow (model load): outside the lock */
    pthread_mutex_lock(&p->mu);
    p->creating_streams--;
    if (s) {
        s->in_use = true;
        push_front(p, s);
        p->active_streams++;
    } else {
        pthread_cond_signal(&p->stream_cv); /* room for another */
    }
    pthread_mutex_unlock(&p->mu);
    if (!s)
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "No speech decoder available for a stream");
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
            s->idle_since = ld_time_mono();
            p->active_streams--;
            unlink_slot(p, s); /* to the front: the next stream takes the most recently used */
            push_front(p, s);
            break;
        }
    pthread_cond_signal(&p->warm_cv);
    pthread_cond_signal(&p->stream_cv);
    pthread_mutex_unlock(&p->mu);
}

/* Under p->mu: the idle decoder to free now (the one idle longest beyond the
 * warm set), or NULL and *next_s = seconds until one may be. */
static stream_slot *expired(ld_pool *p, double now, double *next_s)
{
    int keep = p->prewarm; /* the warm set: the first `prewarm` idle decoders of the first language */
    stream_slot *last = NULL;
    for (stream_slot *s = p->streams; s; s = s->next) {
        if (s->in_use)
            continue;
        if (keep > 0 && !strcmp(s->sd.language, p->langs[0].code)) {
            keep--;
            continue;
        }
        last = s; /* walking towards the longest idle */
    }
    if (!last)
        return NULL;
    double left = last->idle_since + p->idle_free_s - now;
    if (left <= 0)
        return last;
    *next_s = left;
    return NULL;
}

static void *warmer_main(void *arg)
{
    ld_pool *p = arg;
    /* Linux nice is per thread: refilling yields the CPU to live streams. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WARMER_NICE))
        ld_log(LD_LOG_DEBUG, "stream decoder warmer: cannot lower its priority");
    int failures = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->warmer_stop) {
        int idle = 0;
        for (stream_slot *s = p->streams; s; s = s->next)
            idle += !s->in_use && !strcmp(s->sd.language, p->langs[0].code);
        if (failures < 3 && idle + p->creating_streams < p->prewarm &&
            p->n_streams + p->creating_streams < p->max_streams) {
            p->creating_streams++;
            pthread_mutex_unlock(&p->mu);
            stream_slot *s = create_slot(p, 0);
            pthread_mutex_lock(&p->mu);
            p->creating_streams--;
            pthread_cond_signal(&p->stream_cv); /* a decoder, or room for one */
            if (s) {
                s->idle_since = ld_time_mono();
                push_front(p, s);
                failures = 0;
            } else {
                failures++; /* a model that does not load: stop trying, streams will report it */
            }
            continue;
        }
        double next_s = 3600;
        stream_slot *old = expired(p, ld_time_mono(), &next_s);
        if (old) {
            unlink_slot(p, old);
            pthread_mutex_unlock(&p->mu);
            free_slot(old);
            malloc_trim(0); /* give the model's pages back to the system */
            pthread_mutex_lock(&p->mu);
            continue;
        }
        struct timespec ts = ld_time_deadline((int64_t)(next_s * 1000) + 1);
        pthread_cond_timedwait(&p->warm_cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ld_err ld_pool_stream_prewarm(ld_pool *p, int prewarm, double idle_free_s, ld_error *err)
{
    pthread_mutex_lock(&p->mu);
    p->prewarm = prewarm < 0 ? 0 : prewarm > p->max_streams ? p->max_streams : prewarm;
    p->idle_free_s = idle_free_s > 0 ? idle_free_s : 0;
    bool start = !p->warmer_running && p->n_langs > 0;
    p->warmer_running = p->warmer_running || start;
    pthread_mutex_unlock(&p->mu);
    if (start && pthread_create(&p->warmer, NULL, warmer_main, p) != 0) {
        pthread_mutex_lock(&p->mu);
        p->warmer_running = false;
        pthread_mutex_unlock(&p->mu);
        return ld_error_set(err, LD_ERR_INTERNAL, "cannot start the stream decoder warmer");
    }
    return LD_OK;
}

bool ld_pool_streams_free(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    bool running = p->warmer_running;
    p->warmer_stop = true;
    pthread_cond_signal(&p->warm_cv);
    pthread_mutex_unlock(&p->mu);
    if (running) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += WARMER_EXIT_WAIT_S;
        if (pthread_timedjoin_np(p->warmer, NULL, &ts) == ETIMEDOUT) {
            pthread_detach(p->warmer);
            ld_log(LD_LOG_WARNING, "stream decoder warmer still loading a model after %d s: not waiting for it",
                   WARMER_EXIT_WAIT_S);
            return false;
        }
    }
    for (stream_slot *s = p->streams, *next; s; s = next) {
        next = s->next;
        if (s->in_use)
            ld_log(LD_LOG_WARNING, "pool freed while a stream still holds a decoder");
        free_slot(s);
    }
    p->streams = NULL;
    p->n_streams = 0;
    return true;
}
