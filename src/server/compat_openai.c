/* OpenAI's transcription schema, errors, models and stream events on top of
 * listend's (compat_openai.h). */
#include "server/compat_openai.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/numerals.h"
#include "asr/redact.h"
#include "server/ws_openai.h"

/* The model ids OpenAI's SDKs and tools send; each is served by listend's
 * engine with its automatic model choice. */
static const char *const models[] = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                                     "gpt-4o-transcribe-diarize"};

bool ld_openai_path(const char *path)
{
    return !strncmp(path, "/v1/audio/", 10) || !strcmp(path, "/v1/models") || !strncmp(path, "/v1/models/", 11) ||
           !strcmp(path, LD_WS_OA_PATH);
}

/* OpenAI's error type and code for a listend error; code NULL = the lower-case
 * listend code. */
static void oa_kind(ld_err e, const char **type, const char **code)
{
    *type = "invalid_request_error";
    *code = NULL;
    switch (e) {
    case LD_ERR_INVALID_LICENSE: *code = "invalid_api_key"; break;
    case LD_ERR_RATE_LIMITED:
        *type = "requests";
        *code = "rate_limit_exceeded";
        break;
    case LD_ERR_QUOTA_EXCEEDED: *type = *code = "insufficient_quota"; break;
    case LD_ERR_INTERNAL:
    case LD_ERR_SERVICE_UNAVAILABLE: *type = "server_error"; break;
    default: break;
    }
}

/* The parameter a listend message names: "… parameter 'x' …" or "… parameter x: …". */
static json_t *param_of(const char *msg)
{
    const char *p = strstr(msg, "parameter ");
    if (!p)
        return json_null();
    p += 10;
    if (*p == '\'')
        p++;
    size_t n = strcspn(p, "': ");
    return n ? json_stringn(p, n) : json_null();
}

json_t *ld_openai_error_json(const ld_error *err, const char *request_id, json_t *extra)
{
    (void)request_id; /* OpenAI's SDKs read it from the X-Request-ID header */
    const char *msg = err->msg[0] ? err->msg : ld_err_default_message(err->code);
    const char *type, *code;
    oa_kind(err->code, &type, &code);
    char lower[32];
    if (!code) {
        snprintf(lower, sizeof lower, "%s", ld_err_code(err->code));
        for (char *c = lower; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        code = lower;
    }
    json_t *param = err->code == LD_ERR_UNSUPPORTED_LANGUAGE ? json_string("language") : param_of(msg);
    json_t *e = json_pack("{s:s,s:s,s:s,s:o}", "message", msg, "type", type, "code", code, "param", param);
    if (extra) {
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v)
        {
            if (!json_object_get(e, k) && strcmp(k, "error"))
                json_object_set(e, k, v);
            else if (!strcmp(k, "code") || !strcmp(k, "param")) /* a handler's own OpenAI code or param */
                json_object_set(e, k, v);
        }
        json_decref(extra);
    }
    return json_pack("{s:o}", "error", e);
}

ld_err ld_openai_opt_set(ld_listen_opts *o, const char *key, const char *val, ld_error *err)
{
    if (!val)
        val = "";
    if (!strcmp(key, "stream")) {
        if (!strcasecmp(val, "true") || !strcmp(val, "1"))
            o->stream = true;
        else if (!strcasecmp(val, "false") || !strcmp(val, "0"))
            o->stream = false;
        else
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter 'stream': expected true or false");
        return LD_OK;
    }
    if (!strcmp(key, "model")) /* OpenAI's ids are aliases of "auto" (asr/packs.c) */
        return ld_opts_set(o, "model", val, err);
    if (!strcmp(key, "response_format") && !strcmp(val, "diarized_json")) { /* speakers: listend's diarize */
        o->t.format = LD_FORMAT_JSON;
        o->verbose = false;
        o->diarized = o->diarize = o->t.diarize = true;
        return LD_OK;
    }
    if (!strcmp(key, "response_format")) {
        o->diarized = false;
        if (ld_opts_set(o, key, val, err) == LD_OK)
            return LD_OK;
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, /* the native list lacks this route's diarized_json */
                            "Invalid value for parameter 'response_format': expected json, text, srt, vtt, "
                            "verbose_json or diarized_json");
    }
    if (!strcmp(key, "timestamp_granularities[]") || !strcmp(key, "timestamp_granularities")) {
        if (!strcmp(val, "word") || !strcmp(val, "segment"))
            return LD_OK; /* verbose_json always has both */
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'timestamp_granularities[]': expected word or segment");
    }
    /* known speakers would need speaker identification, which listend does not
     * do: the segments are labelled A, B, … as OpenAI does without them */
    static const char *const ignored[] = {"prompt",
                                          "temperature",
                                          "include[]",
                                          "include",
                                          "chunking_strategy",
                                          "known_speaker_names[]",
                                          "known_speaker_names",
                                          "known_speaker_references[]",
                                          "known_speaker_references"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        if (!strcmp(key, ignored[i]))
            return LD_OK;
    return ld_opts_set(o, key, val, err);
}

static const char *language_name(const char *code)
{
    static const char *const names[][2] = {{"en", "english"},  {"es", "spanish"}, {"fr", "french"},
                                           {"de", "german"},   {"it", "italian"}, {"pt", "portuguese"},
                                           {"nl", "dutch"},    {"ru", "russian"}, {"zh", "chinese"},
                                           {"ja", "japanese"}, {"ko", "korean"},  {"hi", "hindi"}};
    for (size_t i = 0; code && i < sizeof names / sizeof *names; i++)
        if (!strcmp(code, names[i][0]))
            return names[i][1];
    return code ? code : "";
}

/* Voices numbered in order of first appearance: a voice is the pair (channel,
 * speaker), since with multichannel each channel numbers its speakers from 0
 * and the format has no channel field. -1 when the table (cap) is full. */
typedef struct {
    json_int_t channel, speaker;
} voice;

static json_int_t voice_number(voice *seen, size_t *n, size_t cap, json_t *u)
{
    voice v = {json_integer_value(json_object_get(u, "channel")),
               json_integer_value(json_object_get(u, "speaker"))};
    for (size_t k = 0; k < *n; k++)
        if (seen[k].channel == v.channel && seen[k].speaker == v.speaker)
            return (json_int_t)k;
    if (*n >= cap)
        return -1;
    seen[*n] = v;
    return (json_int_t)(*n)++;
}

/* OpenAI's diarized segments from listend's utterances: the n-th voice to
 * speak is "A" + n (AA, AB, … past Z), ids "seg_0", "seg_1", … */
static json_t *diarized_segments(const json_t *j)
{
    json_t *segs = json_array(), *u, *utts = json_object_get(j, "utterances");
    size_t i, n_seen = 0, cap = json_array_size(utts);
    voice *seen = calloc(cap + 1, sizeof *seen);
    json_array_foreach(utts, i, u)
    {
        json_int_t n = voice_number(seen, &n_seen, seen ? cap : 0, u);
        if (n < 0) /* out of memory: listend's own number */
            n = json_integer_value(json_object_get(u, "speaker"));
        char label[8], id[32];
        if (n < 26)
            snprintf(label, sizeof label, "%c", (char)('A' + n));
        else
            snprintf(label, sizeof label, "%c%c", (char)('A' + n / 26 - 1), (char)('A' + n % 26));
        snprintf(id, sizeof id, "seg_%zu", i);
        json_array_append_new(segs,
                              json_pack("{s:s,s:s,s:O,s:O,s:O,s:s}", "type", "transcript.text.segment", "id", id,
                                        "start", json_object_get(u, "start"), "end", json_object_get(u, "end"),
                                        "text", json_object_get(u, "text"), "speaker", label));
    }
    free(seen);
    return segs;
}

/* listend's punctuation entries in `words`: not words to OpenAI. */
static bool punct_entry(json_t *w)
{
    const char *t = json_string_value(json_object_get(w, "word"));
    return !t || ld_word_is_punct(t);
}

/* One verbose_json segment with every field Whisper's has, since typed clients
 * (e.g. Rust's and Go's) reject a segment without them: `seek` the start in
 * 10 ms frames, no `tokens`, `temperature` 0 (decoding is deterministic),
 * `avg_logprob` the mean log confidence of the segment's words (punctuation
 * entries, confidence 1, left out), `compression_ratio` 1 (not computed: no
 * repetition loops to flag) and `no_speech_prob` 0 (segments are cut around
 * detected speech). */
static json_t *verbose_segment(json_t *words, size_t *from, json_t *u, size_t id)
{
    double start = json_number_value(json_object_get(u, "start")),
           end = json_number_value(json_object_get(u, "end"));
    double sum = 0;
    int n = 0;
    /* Words start in time order (a punctuation entry right after its word) and
     * segments too: the words inside [start, end] lie at or after the first
     * entry ending at `start`, none of the entries before it ends late enough
     * for a later segment, and the first word starting after `end` ends the
     * scan — so one pass over the words for the whole body, not one per
     * segment (a 2 h upload has thousands of each). */
    size_t nw = json_array_size(words);
    while (*from < nw && json_number_value(json_object_get(json_array_get(words, *from), "end")) < start - 1e-6)
        (*from)++;
    for (size_t i = *from; i < nw; i++) {
        json_t *w = json_array_get(words, i), *c = json_object_get(w, "confidence");
        double ws = json_number_value(json_object_get(w, "start")),
               we = json_number_value(json_object_get(w, "end"));
        if (ws > end + 1e-6 && !punct_entry(w)) /* another channel's "." may end later than this word starts */
            break;
        if (c && !punct_entry(w) && ws >= start - 1e-6 && we <= end + 1e-6) {
            double p = json_number_value(c);
            sum += log(p > 1e-4 ? p : 1e-4);
            n++;
        }
    }
    return json_pack("{s:I,s:I,s:O,s:O,s:O,s:[],s:f,s:f,s:f,s:f}", "id", (json_int_t)id, "seek",
                     (json_int_t)lround(start * 100), "start", json_object_get(u, "start"), "end",
                     json_object_get(u, "end"), "text", json_object_get(u, "text"), "tokens", "temperature", 0.0,
                     "avg_logprob", n ? round(sum / n * 1e4) / 1e4 : 0.0, "compression_ratio", 1.0,
                     "no_speech_prob", 0.0);
}

json_t *ld_openai_body(const ld_listen_opts *opts, json_t *j)
{
    if (opts->diarized) {
        /* usage is what the key is charged: with multichannel, every channel's seconds */
        size_t nch = json_array_size(json_object_get(j, "channels"));
        double secs = json_number_value(json_object_get(j, "duration")) * (double)(nch ? nch : 1);
        json_t *d = json_pack("{s:s,s:O,s:O,s:o,s:{s:s,s:f}}", "task", "transcribe", "duration",
                              json_object_get(j, "duration"), "text", json_object_get(j, "text"), "segments",
                              diarized_segments(j), "usage", "type", "duration", "seconds",
                              round(secs * 1000) / 1000);
        json_decref(j);
        return d;
    }
    json_t *o = json_pack("{s:O}", "text", json_object_get(j, "text"));
    if (o && opts->verbose) {
        json_object_set_new(o, "task", json_string("transcribe"));
        json_object_set_new(o, "language",
                            json_string(language_name(json_string_value(json_object_get(j, "language")))));
        json_object_set(o, "duration", json_object_get(j, "duration"));
        json_t *segs = json_array(), *u;
        size_t i, from = 0;
        json_array_foreach(json_object_get(j, "utterances"), i, u)
            json_array_append_new(segs, verbose_segment(json_object_get(j, "words"), &from, u, i));
        json_object_set_new(o, "segments", segs);
        json_t *words = json_array(), *w;
        json_array_foreach(json_object_get(j, "words"), i, w)
        {
            if (!punct_entry(w))
                json_array_append_new(words,
                                      json_pack("{s:O,s:O,s:O}", "word", json_object_get(w, "word"), "start",
                                                json_object_get(w, "start"), "end", json_object_get(w, "end")));
        }
        json_object_set_new(o, "words", words);
    }
    json_decref(j);
    return o;
}

static json_t *model_entry(const char *id, int64_t created)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "model", "created", (json_int_t)created, "owned_by",
                     "listend");
}

/* The id as listed: OpenAI's ids first, then listend's names; NULL if neither. */
static const char *known_model(const char *id, const json_t *listend)
{
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        if (!strcmp(id, models[i]))
            return models[i];
    for (size_t i = 0; i < json_array_size(listend); i++) {
        const char *name = json_string_value(json_array_get(listend, i));
        if (name && !strcmp(id, name))
            return name;
    }
    return NULL;
}

json_t *ld_openai_model(const char *id, int64_t created, const json_t *listend)
{
    const char *known = known_model(id, listend);
    return known ? model_entry(known, created) : NULL;
}

json_t *ld_openai_models(int64_t created, const json_t *listend)
{
    json_t *data = json_array();
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        json_array_append_new(data, model_entry(models[i], created));
    size_t i;
    json_t *v;
    json_array_foreach(listend, i, v)
    {
        const char *name = json_string_value(v);
        bool seen = false; /* "general" is one pack per language */
        for (size_t k = 0; name && k < i && !seen; k++)
            seen = !strcmp(name, json_string_value(json_array_get(listend, k)));
        if (name && !seen)
            json_array_append_new(data, model_entry(name, created));
    }
    return json_pack("{s:s,s:o}", "object", "list", "data", data);
}

/* ---- stream=true ---- */

void ld_openai_delta_init(ld_openai_delta *d, unsigned render_flags)
{
    memset(d, 0, sizeof *d);
    d->flags = render_flags;
}

void ld_openai_delta_free(ld_openai_delta *d)
{
    ld_words_free(d->words, d->n);
    free(d->sent);
    memset(d, 0, sizeof *d);
}

static bool is_punct(const char *w) { return w[0] && !w[1] && strchr(".,?!", w[0]); }

/* A rendered word that is (part of) a number: "Five", "five", "10". */
static bool number_word(const char *w)
{
    char low[32];
    size_t i = 0;
    for (; w[i] && i + 1 < sizeof low; i++)
        low[i] = (char)tolower((unsigned char)w[i]);
    low[i] = 0;
    return ld_numerals_word(low) || (*w && strspn(w, "0123456789") == strlen(w));
}

/* The rendered text of the words so far, without the mark after the last word
 * (it depends on the pause before the next one) and, when redacting, without
 * number words or a redaction token at the end (the next segment may make them
 * part of a number to hide, or another kind of one, and a delta cannot be
 * taken back: deltas would stop there). */
static char *certain_text(const ld_openai_delta *d)
{
    ld_transcript t = {.words = d->words, .n_words = d->n};
    size_t total = 0;
    ld_word *rw = ld_transcript_render_words(&t, d->flags, &total);
    if (!rw)
        return NULL;
    size_t n = total && is_punct(rw[total - 1].word) ? total - 1 : total;
    while (d->flags >> LD_RENDER_REDACT_SHIFT && n &&
           (number_word(rw[n - 1].word) || is_punct(rw[n - 1].word) || ld_redact_is_token(rw[n - 1].word)))
        n--;
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += strlen(rw[i].word) + 1;
    char *s = malloc(cap), *p = s;
    for (size_t i = 0; s && i < n; i++) {
        if (p != s && !is_punct(rw[i].word))
            *p++ = ' ';
        size_t l = strlen(rw[i].word);
        memcpy(p, rw[i].word, l);
        p += l;
    }
    if (s)
        *p = 0;
    ld_words_free(rw, total);
    return s;
}

static char *event(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *e = malloc(n + 9);
    if (e)
        snprintf(e, n + 9, "data: %s\n\n", s);
    free(s);
    return e;
}

/* A delta event with what `text` has beyond what was sent; NULL when nothing,
 * or when it does not extend it (never resend or contradict). */
static char *delta_to(ld_openai_delta *d, const char *text)
{
    size_t sent = d->sent ? strlen(d->sent) : 0;
    if (!text || strlen(text) <= sent || (sent && strncmp(text, d->sent, sent)))
        return NULL;
    char *e = event(json_pack("{s:s,s:s}", "type", "transcript.text.delta", "delta", text + sent));
    char *copy = strdup(text);
    if (e && copy) {
        free(d->sent);
        d->sent = copy;
    } else {
        free(copy);
    }
    return e;
}

char *ld_openai_delta_push(ld_openai_delta *d, const ld_word *w, size_t n)
{
    if (!n)
        return NULL;
    if (d->n + n > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        while (cap < d->n + n)
            cap *= 2;
        ld_word *nw = realloc(d->words, cap * sizeof *nw);
        if (!nw)
            return NULL;
        d->words = nw;
        d->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        d->words[d->n] = w[i];
        d->words[d->n].word = strdup(w[i].word ? w[i].word : "");
        if (!d->words[d->n].word)
            return NULL;
        d->n++;
    }
    char *text = certain_text(d);
    char *e = delta_to(d, text);
    free(text);
    return e;
}

/* a + b (both malloc'd or NULL, consumed) */
static char *concat(char *a, char *b)
{
    if (!a || !b)
        return a ? a : b;
    size_t la = strlen(a), lb = strlen(b);
    char *both = realloc(a, la + lb + 1);
    if (!both) {
        free(b);
        return a;
    }
    memcpy(both + la, b, lb + 1);
    free(b);
    return both;
}

/* One `transcript.text.segment` event per speaker turn. */
static char *segment_events(const json_t *listend)
{
    json_t *segs = diarized_segments(listend), *s;
    size_t i;
    char *all = NULL;
    json_array_foreach(segs, i, s) all = concat(all, event(json_incref(s)));
    json_decref(segs);
    return all;
}

char *ld_openai_delta_done(ld_openai_delta *d, const char *text, double seconds, const json_t *diarized)
{
    char *out = delta_to(d, text);
    if (diarized) /* speakers are known only once the whole file is decoded */
        out = concat(out, segment_events(diarized));
    return concat(out, event(json_pack("{s:s,s:s,s:{s:s,s:f}}", "type", "transcript.text.done", "text",
                                       text ? text : "", "usage", "type", "duration", "seconds", seconds)));
}

char *ld_openai_sse_error(const ld_error *err) { return event(ld_openai_error_json(err, NULL, NULL)); }
