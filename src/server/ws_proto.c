#include "server/ws_proto.h"

#include <ctype.h>
#include <gnutls/crypto.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/diarize.h"
#include "asr/redact.h"
#include "audio/audio.h"
#include "server/opts.h"

/* ---- query parameters ---- */

static int parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = true;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
        *out = false;
        return 0;
    }
    return -1;
}

static int parse_int(const char *v, long lo, long hi, int *out)
{
    char *end;
    if (!*v || isspace((unsigned char)*v))
        return -1;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static ld_err bad(ld_error *err, const char *name, const char *why)
{
    return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid parameter %s: %s", name, why);
}

ld_err ld_ws_params_keyword(ld_ws_params *p, const char *name, const char *value, ld_error *err)
{
    if (!strcmp(name, "redact")) { /* Deepgram's form, on both routes (as on POST /v1/listen) */
        ld_err rc = ld_redact_parse(value, &p->redact, err);
        if (!rc && p->redact && strcmp(p->language, "en"))
            return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                                "Invalid parameter 'redact': redaction is available for English (en) only");
        return rc;
    }
    if (strcmp(name, "keywords") && !((p->deepgram || p->flux) && !strcmp(name, "keyterm")))
        return LD_OK;
    if (strcmp(p->language, "en"))
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter 'keywords': custom vocabulary is available for English (en) only");
    if (!value || strcmp(name, "keyterm"))
        return ld_vocab_add_items(p->keywords, sizeof p->keywords, value ? value : "", err);
    return ld_vocab_add_term(p->keywords, sizeof p->keywords, value, err);
}

ld_err ld_ws_params_parse(ld_ws_param_get get, void *ud, ld_ws_params *p, ld_error *err)
{
    memset(p, 0, sizeof *p);
    strcpy(p->language, "en");
    p->encoding = LD_STREAM_LINEAR16;
    p->sample_rate = LD_SAMPLE_RATE; /* the engine's own rate: no resampling */
    p->word_timestamps = true;
    p->punctuate = true;
    p->eou_timeout_ms = 800;
    p->interim_results = true;
    p->capitalize = true;
    p->finalize_on_words = true;

    const char *v;
    if ((v = get(ud, "language")) && *v) { /* "" keeps the default, as for uploads */
        size_t n = strlen(v);
        if (n < 2 || n > 64)
            return bad(err, "language", "expected an ISO 639-1 code such as en");
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.')
                return bad(err, "language", "expected an ISO 639-1 code such as en");
        ld_opts_language(v, p->language, sizeof p->language); /* en-US, en_US -> en */
    }
    if ((v = get(ud, "model"))) { /* checked against the pool's packs when the stream starts */
        if (!*v || strlen(v) >= sizeof p->model ||
            strspn(v,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._-") != strlen(v))
            return bad(err, "model", "expected auto, general, telephony or a model pack name");
        memcpy(p->model, v, strlen(v) + 1);
    }
    if ((v = get(ud, "encoding")) && ld_audio_stream_encoding_parse(v, &p->encoding))
        return bad(err, "encoding", "expected linear16, linear32, mulaw, alaw, opus, ogg_opus or webm_opus");
    p->encoding_sniff = !v;
    if ((v = get(ud, "sample_rate")) &&
        parse_int(v, LD_AUDIO_STREAM_MIN_RATE, LD_AUDIO_STREAM_MAX_RATE, &p->sample_rate))
        return bad(err, "sample_rate", "expected an integer from 8000 to 48000");
    p->channels = 1;
    if ((v = get(ud, "channels")) && parse_int(v, 1, LD_MAX_CHANNELS, &p->channels))
        return bad(err, "channels",
                   "expected an integer from 1 to 8 (interleaved linear16, linear32, mulaw or alaw)");
    if (p->channels > 1 && !ld_audio_stream_sample_bytes(p->encoding)) /* Opus is framed, not interleaved */
        return bad(err, "channels", "more than one channel needs linear16, linear32, mulaw or alaw (interleaved)");
    if ((v = get(ud, "eou_timeout_ms")) && parse_int(v, 100, 10000, &p->eou_timeout_ms))
        return bad(err, "eou_timeout_ms", "expected an integer from 100 to 10000");
    if ((v = get(ud, "max_words")) && parse_int(v, 1, 1000, &p->max_words))
        return bad(err, "max_words", "expected an integer from 1 to 1000");
    /* The spec's `format` (default true): false = the words as recognised, no punctuation or
     * capitals; an explicit punctuate / capitalize (below) still says otherwise. */
    bool formatted = true;
    if ((v = get(ud, "format")) && parse_bool(v, &formatted))
        return bad(err, "format", "expected true or false");
    p->punctuate = p->capitalize = formatted;
    static const struct {
        const char *name;
        size_t off;
    } bools[] = {
        {"word_timestamps", offsetof(ld_ws_params, word_timestamps)},
        {"punctuate", offsetof(ld_ws_params, punctuate)},
        {"vad_events", offsetof(ld_ws_params, vad_events)},
        {"vad", offsetof(ld_ws_params, vad_events)},
        {"interim_results", offsetof(ld_ws_params, interim_results)},
        {"capitalize", offsetof(ld_ws_params, capitalize)},
        {"sentence_timestamps", offsetof(ld_ws_params, sentence_timestamps)},
        {"full_transcript", offsetof(ld_ws_params, full_transcript)},
        {"itn_normalize", offsetof(ld_ws_params, numerals)},
        {"finalize_on_words", offsetof(ld_ws_params, finalize_on_words)},
        {"profanity_filter", offsetof(ld_ws_params, profanity_filter)},
    };
    for (size_t i = 0; i < sizeof bools / sizeof *bools; i++)
        if ((v = get(ud, bools[i].name)) && parse_bool(v, (bool *)((char *)p + bools[i].off)))
            return bad(err, bools[i].name, "expected true or false");
    /* numerals: true | false | auto (Smallest's legacy default; here: as spoken, i.e. false) */
    if ((v = get(ud, "numerals")) && strcasecmp(v, "auto") && parse_bool(v, &p->numerals))
        return bad(err, "numerals", "expected true, false or auto");
    /* Smallest's correlation id: checked as documented, not echoed (not stored either) */
    if ((v = get(ud, "external_session_id")) &&
        (!*v || strlen(v) > 128 ||
         strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(v)))
        return bad(err, "external_session_id", "expected 1 to 128 characters of A-Z, a-z, 0-9, _, - and .");
    if ((v = get(ud, "diarize")) && parse_bool(v, &p->diarize))
        return bad(err, "diarize", "expected true or false");
    if ((v = get(ud, "num_speakers")) && parse_int(v, 1, LD_DIARIZE_MAX_SPEAKERS, &p->num_speakers))
        return bad(err, "num_speakers", "expected an integer from 1 to 8");
    for (const ld_redact_option *r = ld_redact_options; r->name; r++) {
        bool on = false;
        if ((v = get(ud, r->name)) && parse_bool(v, &on))
            return bad(err, r->name, "expected true or false");
        p->redact |= on ? r->kinds : 0;
    }
    if (p->redact && strcmp(p->language, "en"))
        return bad(err, p->redact & LD_REDACT_PII ? "redact_pii" : "redact_pci",
                   "redaction is available for English (en) only");
    return LD_OK;
}

/* ---- control messages ---- */

ld_ws_control ld_ws_control_parse(const char *data, size_t len)
{
    json_error_t je;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return LD_WS_CTL_INVALID;
    ld_ws_control r = LD_WS_CTL_INVALID;
    const char *t = json_is_object(j) ? json_string_value(json_object_get(j, "type")) : NULL;
    if (t) {
        if (!strcmp(t, "keepalive") || !strcmp(t, "KeepAlive"))
            r = LD_WS_CTL_KEEPALIVE;
        else if (!strcmp(t, "finalize") || !strcmp(t, "Finalize"))
            r = LD_WS_CTL_FINALIZE;
        else if (!strcmp(t, "close_stream") || !strcmp(t, "end") || !strcmp(t, "CloseStream"))
            r = LD_WS_CTL_CLOSE_STREAM;
        else
            r = LD_WS_CTL_UNKNOWN_TYPE;
    }
    json_decref(j);
    return r;
}

int ld_ws_close_code(ld_err e)
{
    switch (e) {
    case LD_OK: return LD_WS_CLOSE_NORMAL;
    case LD_ERR_INVALID_LICENSE:
    case LD_ERR_LICENSE_EXPIRED:
    case LD_ERR_QUOTA_EXCEEDED:
    case LD_ERR_RATE_LIMITED:
    case LD_ERR_REQUEST_TIMEOUT: return LD_WS_CLOSE_POLICY;
    case LD_ERR_MISSING_PARAMETER:
    case LD_ERR_INVALID_PARAMETER:
    case LD_ERR_INVALID_AUDIO:
    case LD_ERR_UNSUPPORTED_FORMAT:
    case LD_ERR_UNSUPPORTED_LANGUAGE: return LD_WS_CLOSE_BAD_DATA;
    case LD_ERR_FILE_TOO_LARGE:
    case LD_ERR_AUDIO_TOO_LONG: return LD_WS_CLOSE_TOO_BIG;
    case LD_ERR_SERVICE_UNAVAILABLE: return LD_WS_CLOSE_TRY_AGAIN;
    default: return LD_WS_CLOSE_INTERNAL;
    }
}

/* ---- handshake ---- */

int ld_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char raw[32];
    size_t raw_len = 0;
    size_t klen = key ? strlen(key) : 0;
    if (klen != 24 ||
        sodium_base642bin(raw, sizeof raw, key, klen, NULL, &raw_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        raw_len != 16)
        return -1;
    char buf[24 + sizeof guid];
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof guid);
    unsigned char sha[20];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, buf, 24 + sizeof guid - 1, sha) < 0)
        return -1;
    sodium_bin2base64(out, 29, sha, sizeof sha, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int ld_ws_subprotocol_key(const char *h, char *out, size_t outsz)
{
    /* Comma-separated list; the element after "token" is the key. */
    if (!h || !outsz)
        return 0;
    bool next_is_key = false;
    while (*h) {
        while (*h == ' ' || *h == '\t' || *h == ',')
            h++;
        const char *s = h;
        while (*h && *h != ',' && *h != ' ' && *h != '\t')
            h++;
        size_t n = (size_t)(h - s);
        if (!n)
            break;
        static const char oa[] = "openai-insecure-api-key.";
        if (!next_is_key && n > sizeof oa - 1 && !strncmp(s, oa, sizeof oa - 1)) {
            s += sizeof oa - 1;
            n -= sizeof oa - 1;
            next_is_key = true;
        }
        if (next_is_key) {
            if (n >= outsz)
                return 0;
            memcpy(out, s, n);
            out[n] = 0;
            return 1;
        }
        /* Deepgram's browser clients: ["token", key], or ["bearer", token] for an access token */
        next_is_key = (n == 5 && !strncasecmp(s, "token", 5)) || (n == 6 && !strncasecmp(s, "bearer", 6));
    }
    return 0;
}

/* ---- transport glue shared by the server's loop and the client ---- */

void ld_ws_leftover_set(ld_ws_leftover *l, const void *bytes, size_t n)
{
    *l = (ld_ws_leftover){0};
    if (n && (l->data = malloc(n))) {
        memcpy(l->data, bytes, n);
        l->len = n;
    }
}

size_t ld_ws_leftover_take(ld_ws_leftover *l, uint8_t *buf, size_t len)
{
    size_t n = l->len - l->off;
    if (n > len)
        n = len;
    if (n)
        memcpy(buf, l->data + l->off, n);
    l->off += n;
    return n;
}

void ld_ws_leftover_free(ld_ws_leftover *l)
{
    free(l->data);
    *l = (ld_ws_leftover){0};
}

ssize_t ld_ws_recv_result(wslay_event_context_ptr ctx, ssize_t r)
{
    if (r > 0)
        return r;
    wslay_event_set_error(ctx, r == LD_WS_IO_AGAIN ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

ssize_t ld_ws_send_result(wslay_event_context_ptr ctx, ssize_t r)
{
    if (r >= 0)
        return r;
    wslay_event_set_error(ctx, r == LD_WS_IO_AGAIN ? WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

/* ---- server messages ---- */

char *ld_ws_json_text(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    return s;
}

bool ld_ws_text_append(char **acc, const char *text)
{
    size_t had = *acc ? strlen(*acc) : 0, add = strlen(text);
    if (!add)
        return true;
    char *all = realloc(*acc, had + add + 2);
    if (!all)
        return false;
    if (had)
        all[had++] = ' ';
    memcpy(all + had, text, add + 1);
    *acc = all;
    return true;
}

double ld_ws_r3(double x) { return round(x * 1000.0) / 1000.0; }

char *ld_ws_msg_error(const char *message, const char *code)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "status", "error", "message", message);
    if (j && code)
        json_object_set_new(j, "code", json_string(code));
    return j ? ld_ws_json_text(j) : NULL;
}

char *ld_ws_msg_event(const char *type, const char *session_id, double timestamp)
{
    json_t *j = json_pack("{s:s, s:s, s:f}", "type", type, "session_id", session_id, "timestamp",
                          ld_ws_r3(timestamp));
    return j ? ld_ws_json_text(j) : NULL;
}

char *ld_ws_msg_event_in(const char *type, const char *session_id, double timestamp, const ld_ws_params *p)
{
    json_t *j = json_pack("{s:s, s:s, s:f}", "type", type, "session_id", session_id, "timestamp",
                          ld_ws_r3(timestamp));
    if (j && p->channels > 1)
        json_object_set_new(j, "channel", json_integer(p->channel));
    return j ? ld_ws_json_text(j) : NULL;
}

json_t *ld_ws_word_entries(const ld_ws_params *p, const ld_word *words, size_t n_words, const ld_ws_final *fin)
{
    json_t *arr = json_array();
    if (!words || !n_words)
        return arr;
    ld_transcript t = {.words = (ld_word *)words, .n_words = n_words};
    size_t n = 0;
    long *origin = NULL;
    ld_word *rw = ld_transcript_render_redacted(&t, LD_RENDER_FLAGS(p), fin ? fin->redactor : NULL, &n, &origin);
    long src = 0;
    for (size_t i = 0; rw && origin && i < n; i++) {
        if (!p->capitalize && !ld_redact_is_token(rw[i].word))
            for (char *c = rw[i].word; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        json_t *e = json_pack("{s:s, s:f, s:f, s:f}", "word", rw[i].word, "start", ld_ws_r3(rw[i].start), "end",
                              ld_ws_r3(rw[i].end), "confidence", ld_ws_r3(rw[i].confidence));
        if (origin[i] >= 0)
            src = origin[i];
        if (e && fin && fin->speaker) {
            json_object_set_new(e, "speaker", json_integer(fin->speaker[src]));
            json_object_set_new(e, "speaker_confidence", json_real(ld_ws_r3(fin->confidence[src])));
        }
        json_array_append_new(arr, e);
    }
    free(origin);
    ld_words_free(rw, n);
    return arr;
}

static const char *entry_word(const void *entries, size_t i)
{
    const char *w = json_string_value(json_object_get(json_array_get((json_t *)entries, i), "word"));
    return w ? w : "";
}

/* Entries [from, to) joined: punctuation glued to the word before. */
static char *join_entries(json_t *entries, size_t from, size_t to)
{
    return ld_words_join_by(entries, from, to, entry_word);
}

/* sentence_timestamps: the final's sentences (ended by . ? !) and, when
 * diarized, a new one at each speaker change: {text, start, end[, speaker]}. */
static json_t *sentences(json_t *entries)
{
    json_t *out = json_array();
    size_t n = json_array_size(entries), from = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i), *next = json_array_get(entries, i + 1);
        const char *w = json_string_value(json_object_get(e, "word"));
        json_t *spk = json_object_get(e, "speaker");
        bool end = !next || (ld_word_is_punct(w) && w[0] != ',') ||
                   (spk && !ld_word_is_punct(json_string_value(json_object_get(next, "word"))) &&
                    !json_equal(spk, json_object_get(next, "speaker")));
        if (!end)
            continue;
        char *text = join_entries(entries, from, i + 1);
        json_t *u = json_pack("{s:s, s:O, s:O}", "text", text ? text : "", "start",
                              json_object_get(json_array_get(entries, from), "start"), "end",
                              json_object_get(e, "end"));
        free(text);
        if (u && spk)
            json_object_set(u, "speaker", spk);
        json_array_append_new(out, u);
        from = i + 1;
    }
    return out;
}

char *ld_ws_final_text(const ld_ws_params *p, const ld_word *words, size_t n_words, const ld_ws_final *fin)
{
    json_t *entries = words && n_words ? ld_ws_word_entries(p, words, n_words, fin) : NULL;
    char *text = entries ? join_entries(entries, 0, json_array_size(entries)) : strdup("");
    json_decref(entries);
    return text;
}

char *ld_ws_msg_transcription(const char *session_id, const ld_ws_params *p, const char *partial,
                              const ld_word *words, size_t n_words, const ld_ws_final *fin, bool is_final,
                              bool is_last, bool from_finalize, double start, double duration)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "transcription", "status", "success", "session_id",
                          session_id);
    if (!j)
        return NULL;
    json_t *entries = words && n_words ? ld_ws_word_entries(p, words, n_words, fin) : NULL;
    char *text = entries ? join_entries(entries, 0, json_array_size(entries)) : NULL;
    json_object_set_new(j, "transcript", json_string(entries ? (text ? text : "") : (partial ? partial : "")));
    if (p->unified) /* the unified endpoint's second name for the same text */
        json_object_set(j, "transcription", json_object_get(j, "transcript"));
    json_object_set_new(j, "is_final", json_boolean(is_final));
    json_object_set_new(j, "is_last", json_boolean(is_last));
    json_object_set_new(j, "start", json_real(ld_ws_r3(start)));
    json_object_set_new(j, "duration", json_real(ld_ws_r3(duration)));
    if (p->channels > 1) /* multichannel stream: which channel this is about */
        json_object_set_new(j, "channel", json_integer(p->channel));
    if (is_final) {
        json_object_set_new(j, "language", json_string(p->language));
        json_object_set_new(j, "languages", json_pack("[s]", p->language)); /* the spec's list: one here */
        if (p->model[0])
            json_object_set_new(j, "model", json_string(p->model));
        if (from_finalize)
            json_object_set_new(j, "from_finalize", json_true());
        if (p->word_timestamps)
            json_object_set_new(j, "words", entries ? json_incref(entries) : json_array());
        if (p->sentence_timestamps)
            json_object_set_new(j, "utterances", entries ? sentences(entries) : json_array());
        if (p->redact) { /* the tokens this final gave out */
            json_t *tokens = json_array();
            for (size_t i = 0; i < json_array_size(entries); i++) {
                json_t *w = json_object_get(json_array_get(entries, i), "word");
                if (ld_redact_is_token(json_string_value(w)))
                    json_array_append(tokens, w);
            }
            json_object_set_new(j, "redacted_entities", tokens);
        }
        if (fin && fin->full) { /* the text so far, this final's included */
            if (text)
                ld_ws_text_append(fin->full, text);
            json_object_set_new(j, "full_transcript", json_string(*fin->full ? *fin->full : ""));
        }
    }
    free(text);
    json_decref(entries);
    return ld_ws_json_text(j);
}

bool ld_ws_frame_scan_feed(ld_ws_frame_scan *s, const uint8_t *p, size_t n, uint64_t max)
{
    while (n) {
        if (s->skip) {
            size_t k = s->skip < n ? (size_t)s->skip : n;
            s->skip -= k;
            p += k;
            n -= k;
            continue;
        }
        s->hdr[s->have++] = *p++;
        n--;
        if (s->have < 2)
            continue;
        int len7 = s->hdr[1] & 0x7f, need = 2 +
                                            (len7 == 126   ? 2
                                             : len7 == 127 ? 8
                                                           : 0) +
                                            (s->hdr[1] & 0x80 ? 4 : 0);
        if (s->have < need)
            continue;
        uint64_t len = (uint64_t)len7;
        if (len7 == 126)
            len = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
        else if (len7 == 127) {
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | s->hdr[2 + i];
        }
        s->have = 0;
        if (len > max)
            return true;
        s->skip = len;
    }
    return false;
}
