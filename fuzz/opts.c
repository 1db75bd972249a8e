/* libFuzzer entry: request options as clients send them — a JSON body
 * (ld_opts_set_json) and query/form pairs (ld_opts_set, "key=value" lines),
 * also by Deepgram's and OpenAI's names (compat_*.c, the Deepgram stream's
 * parameters, OpenAI's realtime query) — then the cross-field check; a JSON
 * body is also reshaped into the compatibility schemas and their job webhooks. Any crash or sanitizer report is a bug, and so
 * is an accepted value that leaves a string field unterminated or a number
 * outside its documented range. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/compat_deepgram.h"
#include "server/compat_openai.h"
#include "server/opts.h"
#include "server/webhooks.h"
#include "server/ws_deepgram.h"
#include "server/ws_openai.h"

/* The "key=value" lines as a stream's query. */
typedef struct {
    char *keys[64], *vals[64];
    int n;
} lines;

static const char *get(void *ud, const char *name)
{
    lines *l = ud;
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->keys[i], name))
            return l->vals[i] ? l->vals[i] : "";
    return NULL;
}

/* A keyword list is terminated and every word of it parses back (asr/vocab.h). */
static void keywords_ok(const char *k, size_t size)
{
    if (!memchr(k, 0, size))
        abort();
    size_t words = 0;
    for (const char *p = k; *p; p++)
        words += (p == k || p[-1] == ' ') && *p != ' ';
    static ld_vocab_entry e[LD_VOCAB_MAX_WORDS];
    if (words > LD_VOCAB_MAX_WORDS || ld_vocab_parse_list(k, e, LD_VOCAB_MAX_WORDS) != words)
        abort();
}

static void invariants(const ld_listen_opts *o)
{
    if (!memchr(o->t.language, 0, sizeof o->t.language) || !memchr(o->url, 0, sizeof o->url) ||
        !memchr(o->callback_url, 0, sizeof o->callback_url))
        abort();
    if (o->num_speakers && (o->num_speakers < 1 || o->num_speakers > 32))
        abort();
    if (o->sample_rate && (o->sample_rate < 8000 || o->sample_rate > 192000))
        abort();
    if (o->t.format < LD_FORMAT_JSON || o->t.format > LD_FORMAT_VTT)
        abort();
    keywords_ok(o->t.keywords, sizeof o->t.keywords);
    /* an accepted webhook_extra is one server/webhooks.c can turn into pairs */
    if (!memchr(o->webhook_extra, 0, sizeof o->webhook_extra))
        abort();
    json_t *pairs = NULL;
    if (o->webhook_extra[0] && ld_opts_webhook_extra(o->webhook_extra, &pairs, NULL) != LD_OK)
        abort();
    json_decref(pairs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ld_listen_opts o;
    ld_error err;

    /* As a JSON body (the server caps it at 1 MiB; -max_len keeps us well under). */
    ld_opts_init(&o);
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (json_is_object(j) && ld_opts_set_json(&o, j, &err) == LD_OK) {
        invariants(&o);
        ld_opts_validate(&o, NULL, &err);
    }
    if (json_is_object(j)) { /* as if it were listend's own body */
        ld_dg_opts dg;
        ld_dg_opts_init(&dg, &o);
        dg.utterances = dg.paragraphs = true;
        json_decref(ld_dg_body(&dg, json_incref(j)));
        o.verbose = true;
        json_decref(ld_openai_body(&o, json_incref(j)));
        /* ... and as a finished job's result or error, for each route's webhook */
        json_t *hooks[] = {json_pack("{s:s}", "route", "pulse"),
                           json_pack("{s:s,s:b,s:b,s:f}", "route", "deepgram", "utterances", 1, "paragraphs", 1,
                                     "utt_split", 0.8)};
        for (size_t i = 0; i < 2; i++)
            for (int done = 0; done < 2; done++) {
                ld_job_outcome out = {"job_1", "k_1", "req_1", done, j, 1.5};
                char header[64];
                json_decref(ld_webhooks_shape(hooks[i], &out, header, sizeof header));
            }
        json_decref(hooks[0]);
        json_decref(hooks[1]);
    }
    json_decref(j);

    /* As query/form fields: one "key=value" per line; values may hold NULs
     * in the input, which truncate them exactly as C strings do in MHD. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    ld_listen_opts od, oa;
    ld_dg_opts dg;
    ld_opts_init(&o);
    ld_opts_init(&od);
    ld_opts_init(&oa);
    ld_dg_opts_init(&dg, &od);
    lines q = {.n = 0};
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *eq = strchr(line, '=');
        if (eq)
            *eq++ = 0;
        if (ld_opts_set(&o, line, eq, &err) != LD_OK && !err.msg[0])
            abort(); /* every refusal names its reason */
        if (ld_dg_opt_set(&dg, &od, line, eq, &err) != LD_OK && !err.msg[0])
            abort();
        if (ld_openai_opt_set(&oa, line, eq, &err) != LD_OK && !err.msg[0])
            abort();
        invariants(&o);
        invariants(&od);
        invariants(&oa);
        if (q.n < 64) {
            q.keys[q.n] = line;
            q.vals[q.n++] = eq;
        }
    }
    ld_opts_validate(&o, NULL, &err);
    ld_dg_opts_check(&dg, &od, &err);
    ld_ws_params p;
    if (ld_ws_dg_params_parse(get, &q, &p, &err) == LD_OK &&
        (p.eou_timeout_ms < 100 || p.eou_timeout_ms > 10000 || p.utterance_end_ms < 0 ||
         p.utterance_end_ms > 10000 || !memchr(p.language, 0, sizeof p.language)))
        abort();
    for (int i = 0; i < q.n; i++) /* repeated stream parameters (keywords, keyterm) */
        if (ld_ws_params_keyword(&p, q.keys[i], q.vals[i], &err) != LD_OK && !err.msg[0])
            abort();
    keywords_ok(p.keywords, sizeof p.keywords);
    if (ld_ws_oa_params_parse(get, &q, &p, &err) == LD_OK &&
        (!p.openai || p.channels > 1 || p.sample_rate < 8000 || p.sample_rate > 48000))
        abort();
    free(text);
    return 0;
}
