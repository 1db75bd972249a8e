/* Deepgram's batch schema and options on top of listend's (compat_deepgram.h).
 * The body is reshaped from listend's own JSON body, so fields listend adds to
 * its words (a speaker label) reach Deepgram's words without code here. */
#include "server/compat_deepgram.h"

#include <ctype.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/vocab.h"
#include "util/time.h"

#define DG_PARAGRAPH_GAP_S 1.5 /* a pause this long starts a new paragraph */

bool ld_dg_path(const char *path) { return !strncmp(path, LD_DG_PREFIX "/", sizeof LD_DG_PREFIX); }

/* Deepgram's err_code where its documentation names one for the same case;
 * listend's code otherwise. */
static const char *dg_code(ld_err e)
{
    switch (e) {
    case LD_ERR_INVALID_PARAMETER:
    case LD_ERR_UNSUPPORTED_LANGUAGE: return "INVALID_QUERY_PARAMETER";
    case LD_ERR_MISSING_PARAMETER:
    case LD_ERR_INVALID_AUDIO: return "Bad Request";
    case LD_ERR_URL_FETCH_FAILED: return "REMOTE_CONTENT_ERROR";
    case LD_ERR_INVALID_LICENSE: return "INVALID_AUTH";
    case LD_ERR_UNSUPPORTED_FORMAT: return "UNSUPPORTED_MEDIA_TYPE";
    case LD_ERR_FILE_TOO_LARGE: return "PAYLOAD_TOO_LARGE";
    case LD_ERR_AUDIO_TOO_LONG: return "UNPROCESSABLE_ENTITY";
    case LD_ERR_RATE_LIMITED: return "TOO_MANY_REQUESTS";
    case LD_ERR_INTERNAL: return "INTERNAL_SERVER_ERROR";
    default: return ld_err_code(e); /* LICENSE_EXPIRED, QUOTA_EXCEEDED, NOT_FOUND, … */
    }
}

json_t *ld_dg_error_json(const ld_error *err, const char *request_id, json_t *extra)
{
    json_t *o = json_object();
    json_object_set_new(o, "err_code", json_string(dg_code(err->code)));
    json_object_set_new(o, "err_msg", json_string(err->msg[0] ? err->msg : ld_err_default_message(err->code)));
    if (request_id && *request_id)
        json_object_set_new(o, "request_id", json_string(request_id));
    if (extra) {
        const char *k;
        json_t *v;
        json_object_foreach(extra, k, v)
        {
            if (strcmp(k, "error") && strcmp(k, "code") && strncmp(k, "err_", 4))
                json_object_set(o, k, v);
        }
        json_decref(extra);
    }
    return o;
}

void ld_dg_opts_init(ld_dg_opts *dg, ld_listen_opts *o)
{
    memset(dg, 0, sizeof *dg);
    dg->utt_split = 0.8;
    o->t.punctuate = false; /* Deepgram's default; punctuate or smart_format turn it on */
    o->t.timestamps = true; /* Deepgram always lists words */
}

static ld_err parse_bool(const char *key, const char *v, bool *out, ld_error *err)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = true;
        return LD_OK;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
        *out = false;
        return LD_OK;
    }
    return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter '%s': expected true or false",
                        key);
}

ld_err ld_dg_opt_set(ld_dg_opts *dg, ld_listen_opts *o, const char *key, const char *val, ld_error *err)
{
    if (!val)
        val = "";
    bool b;
    ld_err rc;
    /* Same name and meaning in both APIs (diarize, multichannel, keywords,
     * num_speakers and redact answer what listend's own options answer); and
     * listend's redact_pii / redact_pci, as on the route's live streams: a client
     * asking for redaction must never get the data back because of a spelling. */
    static const char *const same[] = {
        "punctuate", "language", "diarize", "multichannel", "num_speakers", "encoding",        "sample_rate",
        "keywords",  "numerals", "redact",  "redact_pii",   "redact_pci",   "profanity_filter"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        if (!strcmp(key, same[i]))
            return ld_opts_set(o, key, val, err);
    if (!strcmp(key, "keyterm")) /* Nova-3's key terms: free-text phrases, each word a keyword */
        return ld_vocab_add_term(o->t.keywords, sizeof o->t.keywords, val, err);
    if (!strcmp(key, "callback"))
        return ld_opts_set(o, "callback_url", val, err);
    if (!strcmp(key, "model"))
        return ld_opts_set(o, "model", val, err); /* Deepgram's names are aliases (asr/packs.c) */
    if (!strcmp(key, "smart_format") || !strcmp(key, "paragraphs")) {
        if ((rc = parse_bool(key, val, &b, err)))
            return rc;
        if (b) { /* smart_format: punctuation and paragraphs; paragraphs need sentences */
            o->t.punctuate = true;
            dg->paragraphs = true;
        } else if (!strcmp(key, "paragraphs")) {
            dg->paragraphs = false;
        }
        return LD_OK;
    }
    if (!strcmp(key, "utterances"))
        return parse_bool(key, val, &dg->utterances, err);
    if (!strcmp(key, "utt_split")) {
        char *end;
        errno = 0;
        double s = strtod(val, &end);
        if (errno || end == val || *end || !(s >= 0.1 && s <= 60))
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter 'utt_split': expected seconds from 0.1 to 60");
        dg->utt_split = s;
        return LD_OK;
    }
    if (!strcmp(key, "channels")) {
        char *end;
        long n = strtol(val, &end, 10);
        if (end == val || *end || n < 1 || n > 32)
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid value for parameter 'channels': expected an integer from 1 to 32");
        dg->channels = (int)n;
        o->channels = n <= LD_MAX_CHANNELS ? (int)n : 0; /* interleaved raw audio with multichannel */
        return LD_OK;
    }
    if (!strcmp(key, "callback_method")) /* POST or PUT */
        return ld_opts_set(o, key, val, err);
    return LD_OK; /* Deepgram ignores names it does not know; so do we for its others */
}

ld_err ld_dg_opts_check(const ld_dg_opts *dg, const ld_listen_opts *o, ld_error *err)
{
    if (o->raw_pcm && dg->channels > 1 && !o->t.multichannel)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'channels': raw audio with more than one channel "
                            "needs multichannel=true");
    if (o->raw_pcm && dg->channels > LD_MAX_CHANNELS)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid value for parameter 'channels': multichannel audio has at most %d channels",
                            LD_MAX_CHANNELS);
    return LD_OK;
}

/* ---- words, utterances, paragraphs ---- */

static char *lower_dup(const char *s)
{
    char *d = strdup(s ? s : "");
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

json_t *ld_dg_words(json_t *entries)
{
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(entries, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "word"));
        if (!t)
            continue;
        json_t *last = json_array_size(out) ? json_array_get(out, json_array_size(out) - 1) : NULL;
        if (ld_word_is_punct(t)) {
            if (last) {
                const char *pw = json_string_value(json_object_get(last, "punctuated_word"));
                size_t n = strlen(pw);
                char *joined = malloc(n + 2);
                if (joined) {
                    memcpy(joined, pw, n);
                    joined[n] = t[0];
                    joined[n + 1] = 0;
                    json_object_set_new(last, "punctuated_word", json_string(joined));
                    free(joined);
                }
            }
            continue;
        }
        char *low = lower_dup(t);
        json_t *w = json_pack("{s:s,s:O,s:O,s:O}", "word", low ? low : t, "start", json_object_get(e, "start"),
                              "end", json_object_get(e, "end"), "confidence", json_object_get(e, "confidence"));
        free(low);
        if (!w)
            continue;
        static const char *const pass[] = {"speaker", "speaker_confidence", "language"};
        for (size_t k = 0; k < sizeof pass / sizeof *pass; k++)
            if (json_object_get(e, pass[k]))
                json_object_set(w, pass[k], json_object_get(e, pass[k]));
        json_object_set_new(w, "punctuated_word", json_string(t));
        json_array_append_new(out, w);
    }
    return out;
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* The speaker of a word, or -1 when not diarized. */
static long long speaker_of(json_t *w)
{
    json_t *s = json_object_get(w, "speaker");
    return json_is_integer(s) ? json_integer_value(s) : -1;
}

/* A growing string. */
typedef struct {
    char *s;
    size_t len, cap;
} strbuf;

static void sb_add(strbuf *b, const char *t)
{
    size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
}

static const char *sb_str(strbuf *b) { return b->s ? b->s : ""; }

/* Words joined by spaces, punctuated. */
static void join_words(strbuf *b, json_t *words, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (i > from)
            sb_add(b, " ");
        sb_add(b, json_string_value(json_object_get(json_array_get(words, i), "punctuated_word")));
    }
}

/* A new group starts before word i: a pause of at least `gap` or another speaker. */
static bool breaks_before(json_t *words, size_t i, double gap)
{
    if (i == 0)
        return true;
    json_t *a = json_array_get(words, i - 1), *b = json_array_get(words, i);
    return num(b, "start") - num(a, "end") >= gap || speaker_of(a) != speaker_of(b);
}

static json_t *utterances(json_t *words, double split)
{
    json_t *out = json_array();
    size_t n = json_array_size(words);
    for (size_t from = 0; from < n;) {
        size_t to = from + 1;
        while (to < n && !breaks_before(words, to, split))
            to++;
        double conf = 0;
        json_t *ws = json_array();
        for (size_t i = from; i < to; i++) {
            conf += num(json_array_get(words, i), "confidence");
            json_array_append(ws, json_array_get(words, i));
        }
        strbuf text = {0};
        join_words(&text, words, from, to);
        char id[37];
        ld_dg_uuid(id);
        json_t *first = json_array_get(words, from);
        json_t *u = json_pack("{s:f,s:f,s:f,s:i,s:s,s:o}", "start", num(first, "start"), "end",
                              num(json_array_get(words, to - 1), "end"), "confidence",
                              round(conf / (double)(to - from) * 1000) / 1000, "channel", 0, "transcript",
                              sb_str(&text), "words", ws);
        free(text.s);
        if (u) {
            if (speaker_of(first) >= 0)
                json_object_set(u, "speaker", json_object_get(first, "speaker"));
            json_object_set_new(u, "id", json_string(id));
            json_array_append_new(out, u);
        }
        from = to;
    }
    return out;
}

static bool ends_sentence(json_t *w)
{
    const char *p = json_string_value(json_object_get(w, "punctuated_word"));
    size_t n = p ? strlen(p) : 0;
    return n && strchr(".?!", p[n - 1]);
}

/* Deepgram's paragraphs: sentences (ended by . ? !) grouped into paragraphs at
 * long pauses and speaker changes; `transcript` is the text laid out by them. */
static json_t *paragraphs(json_t *words)
{
    json_t *paras = json_array();
    strbuf all = {0};
    size_t n = json_array_size(words);
    for (size_t from = 0; from < n;) {
        size_t to = from + 1;
        while (to < n && !breaks_before(words, to, DG_PARAGRAPH_GAP_S))
            to++;
        json_t *sentences = json_array();
        sb_add(&all, from ? "\n\n" : "\n");
        long long spk = speaker_of(json_array_get(words, from));
        if (spk >= 0) {
            char label[40];
            snprintf(label, sizeof label, "Speaker %lld: ", spk);
            sb_add(&all, label);
        }
        for (size_t s = from; s < to;) {
            size_t e = s;
            while (e + 1 < to && !ends_sentence(json_array_get(words, e)))
                e++;
            strbuf text = {0};
            join_words(&text, words, s, e + 1);
            json_array_append_new(sentences, json_pack("{s:s,s:f,s:f}", "text", sb_str(&text), "start",
                                                       num(json_array_get(words, s), "start"), "end",
                                                       num(json_array_get(words, e), "end")));
            if (s > from)
                sb_add(&all, " ");
            sb_add(&all, sb_str(&text));
            free(text.s);
            s = e + 1;
        }
        json_t *p = json_pack("{s:o,s:I,s:f,s:f}", "sentences", sentences, "num_words", (json_int_t)(to - from),
                              "start", num(json_array_get(words, from), "start"), "end",
                              num(json_array_get(words, to - 1), "end"));
        if (p && spk >= 0)
            json_object_set_new(p, "speaker", json_integer(spk));
        if (p)
            json_array_append_new(paras, p);
        from = to;
    }
    json_t *o = json_pack("{s:s,s:o}", "transcript", sb_str(&all), "paragraphs", paras);
    free(all.s);
    return o;
}

/* ---- metadata ---- */

void ld_dg_sha256_hex(const void *data, size_t len, char out[65]) { ld_dg_sha256_pcm_hex(&data, &len, 1, out); }

void ld_dg_sha256_pcm_hex(const void *const *parts, const size_t *lens, size_t n, char out[65])
{
    unsigned char h[32];
    gnutls_hash_hd_t d;
    out[0] = 0;
    if (gnutls_hash_init(&d, GNUTLS_DIG_SHA256) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        gnutls_hash(d, parts[i], lens[i]);
    gnutls_hash_deinit(d, h);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static void uuid_format(const unsigned char b[16], char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void ld_dg_uuid(char out[37])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

json_t *ld_dg_model_info(const char *language, const char *model, char uuid[37])
{
    char name[96];
    snprintf(name, sizeof name, "listend-%s-%s", model && *model ? model : "general", language ? language : "en");
    /* A stable id per model name, shaped like Deepgram's UUIDs (version 5 style). */
    unsigned char h[32] = {0};
    gnutls_hash_fast(GNUTLS_DIG_SHA256, name, strlen(name), h);
    h[6] = (unsigned char)((h[6] & 0x0f) | 0x50);
    h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
    uuid_format(h, uuid);
    return json_pack("{s:{s:s,s:s,s:s}}", uuid, "name", name, "version", LD_VERSION, "arch", "pocketsphinx");
}

static int utt_start_cmp(const void *a, const void *b)
{
    json_t *u = *(json_t *const *)a, *v = *(json_t *const *)b;
    double x = num(u, "start"), y = num(v, "start");
    if (x != y)
        return x < y ? -1 : 1;
    json_int_t c = json_integer_value(json_object_get(u, "channel")),
               d = json_integer_value(json_object_get(v, "channel"));
    return c < d ? -1 : c > d;
}

/* multichannel=true (listend's `channels[]`, asr/channels.h): Deepgram's own
 * shape, one results.channels[] entry per channel, and the utterances of every
 * channel by start time, each with its `channel`. */
static json_t *channel_results(const ld_dg_opts *dg, json_t *chans)
{
    json_t *list = json_array(), *all = json_array();
    size_t c;
    json_t *ch;
    json_array_foreach(chans, c, ch)
    {
        json_t *words = ld_dg_words(json_object_get(ch, "words"));
        json_t *alt = json_pack("{s:O,s:O,s:o}", "transcript", json_object_get(ch, "text"), "confidence",
                                json_object_get(ch, "confidence"), "words", words);
        if (alt && dg->paragraphs)
            json_object_set_new(alt, "paragraphs", paragraphs(words));
        json_array_append_new(list, json_pack("{s:[o]}", "alternatives", alt));
        if (dg->utterances && words) {
            json_t *u = utterances(words, dg->utt_split);
            size_t i;
            json_t *v;
            json_array_foreach(u, i, v)
            {
                json_object_set_new(v, "channel", json_integer((json_int_t)c));
                json_array_append(all, v);
            }
            json_decref(u);
        }
    }
    size_t n = json_array_size(all);
    json_t **sorted = calloc(n + 1, sizeof *sorted);
    for (size_t i = 0; sorted && i < n; i++)
        sorted[i] = json_array_get(all, i);
    json_t *results = json_pack("{s:o}", "channels", list);
    if (dg->utterances && sorted) {
        qsort(sorted, n, sizeof *sorted, utt_start_cmp);
        json_t *u = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(u, sorted[i]);
        json_object_set_new(results, "utterances", u);
    }
    free(sorted);
    json_decref(all);
    return results;
}

/* {"metadata", "results"}: `results` and `j` are stolen. */
static json_t *body_with(const ld_dg_opts *dg, json_t *j, json_t *results, size_t n_channels)
{

    char created[25], uuid[37];
    ld_time_iso8601_ms(ld_time_now_ms(), created);
    json_t *info = ld_dg_model_info(json_string_value(json_object_get(j, "language")),
                                    json_string_value(json_object_get(j, "model")), uuid);
    json_t *meta = json_pack("{s:s,s:O,s:s,s:s,s:O,s:i,s:[s],s:o}", "transaction_key", "deprecated", "request_id",
                             json_object_get(j, "request_id"), "sha256", dg->sha256, "created", created, "duration",
                             json_object_get(j, "duration"), "channels", (int)n_channels, "models", uuid,
                             "model_info", info);
    json_t *o = json_pack("{s:o,s:o}", "metadata", meta, "results", results);
    json_decref(j);
    return o;
}

json_t *ld_dg_body(const ld_dg_opts *dg, json_t *j)
{
    json_t *chans = json_object_get(j, "channels");
    if (json_is_array(chans))
        return body_with(dg, j, channel_results(dg, chans), json_array_size(chans));
    json_t *words = ld_dg_words(json_object_get(j, "words"));
    json_t *alt = json_pack("{s:O,s:O,s:o}", "transcript", json_object_get(j, "text"), "confidence",
                            json_object_get(j, "confidence"), "words", words);
    if (alt && dg->paragraphs)
        json_object_set_new(alt, "paragraphs", paragraphs(words));
    json_t *results = json_pack("{s:[{s:[o]}]}", "channels", "alternatives", alt);
    if (results && dg->utterances)
        json_object_set_new(results, "utterances", utterances(words, dg->utt_split));
    return body_with(dg, j, results, 1);
}
