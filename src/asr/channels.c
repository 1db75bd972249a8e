/* Multichannel results: per-channel JSON from ld_transcript_json, tagged with
 * the channel and merged in time order (asr/channels.h). Working on the
 * rendered JSON keeps each channel's punctuation and utterances exactly what a
 * mono request of that channel would get. */
#include <stdlib.h>
#include <string.h>

#include "asr/channels.h"
#include "asr/transcript_internal.h"
#include "audio/audio.h"

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static bool is_punct_entry(json_t *w)
{
    const char *s = json_string_value(json_object_get(w, "word"));
    return ld_word_is_punct(s) && num(w, "start") == num(w, "end");
}

static void tag(json_t *arr, size_t c)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) json_object_set_new(v, "channel", json_integer((json_int_t)c));
}

/* Words of every channel by start time; a punctuation entry stays right after
 * the word it follows. */
static json_t *merge_words(json_t **ch, size_t n)
{
    json_t *out = json_array();
    size_t pos[LD_MAX_CHANNELS] = {0};
    for (;;) {
        size_t best = n;
        double bs = 0;
        for (size_t c = 0; c < n; c++) {
            json_t *w = json_array_get(json_object_get(ch[c], "words"), pos[c]);
            if (w && (best == n || num(w, "start") < bs)) {
                best = c;
                bs = num(w, "start");
            }
        }
        if (best == n)
            return out;
        json_t *words = json_object_get(ch[best], "words");
        json_array_append(out, json_array_get(words, pos[best]++));
        while (pos[best] < json_array_size(words) && is_punct_entry(json_array_get(words, pos[best])))
            json_array_append(out, json_array_get(words, pos[best]++));
    }
}

typedef struct {
    double start;
    size_t channel, index;
    json_t *u;
} utt_ref;

static int utt_cmp(const void *a, const void *b)
{
    const utt_ref *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->channel != y->channel)
        return x->channel < y->channel ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Utterances of every channel by start time (ties: lower channel first). */
static utt_ref *sorted_utts(json_t **ch, size_t n, size_t *count)
{
    size_t total = 0;
    for (size_t c = 0; c < n; c++)
        total += json_array_size(json_object_get(ch[c], "utterances"));
    utt_ref *r = calloc(total + 1, sizeof *r);
    if (!r)
        return NULL;
    size_t k = 0;
    for (size_t c = 0; c < n; c++) {
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(ch[c], "utterances"), i, u) r[k++] = (utt_ref){num(u, "start"), c, i, u};
    }
    qsort(r, k, sizeof *r, utt_cmp);
    *count = k;
    return r;
}

static char *join_utts(const utt_ref *r, size_t k)
{
    size_t len = 1;
    for (size_t i = 0; i < k; i++)
        len += strlen(json_string_value(json_object_get(r[i].u, "text"))) + 1;
    char *s = malloc(len), *p = s;
    for (size_t i = 0; s && i < k; i++) {
        const char *t = json_string_value(json_object_get(r[i].u, "text"));
        if (!*t)
            continue;
        if (p != s)
            *p++ = ' ';
        size_t l = strlen(t);
        memcpy(p, t, l);
        p += l;
    }
    if (s)
        *p = 0;
    return s;
}

json_t *ld_channels_json(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char *request_id)
{
    if (n == 0 || n > LD_MAX_CHANNELS)
        return NULL;
    json_t *ch[LD_MAX_CHANNELS] = {0};
    double conf = 0, duration = 0;
    size_t words = 0;
    for (size_t c = 0; c < n; c++) {
        ch[c] = ld_transcript_json(t[c], o, NULL);
        if (!ch[c]) {
            for (size_t i = 0; i < c; i++)
                json_decref(ch[i]);
            return NULL;
        }
        if (o->timestamps)
            tag(json_object_get(ch[c], "words"), c);
        tag(json_object_get(ch[c], "utterances"), c);
        conf += t[c]->confidence * (double)t[c]->n_words;
        words += t[c]->n_words;
        if (t[c]->duration > duration)
            duration = t[c]->duration;
    }
    size_t k = 0;
    utt_ref *r = sorted_utts(ch, n, &k);
    char *text = r ? join_utts(r, k) : NULL;
    json_t *j = NULL;
    if (text) {
        j = json_object();
        if (request_id)
            json_object_set_new(j, "request_id", json_string(request_id));
        json_object_set_new(j, "text", json_string(text));
        json_object_set_new(j, "confidence", json_real(ld_round3(words ? conf / (double)words : 0)));
        json_object_set_new(j, "duration", json_real(ld_round3(duration)));
        json_object_set(j, "language", json_object_get(ch[0], "language"));
        if (json_object_get(ch[0], "model"))
            json_object_set(j, "model", json_object_get(ch[0], "model"));
        if (o->timestamps)
            json_object_set_new(j, "words", merge_words(ch, n));
        json_t *utts = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append(utts, r[i].u);
        json_object_set_new(j, "utterances", utts);
        json_t *chans = json_array(), *tokens = o->redact ? json_array() : NULL;
        for (size_t c = 0; c < n; c++) {
            json_t *e = json_pack("{s:i,s:O,s:O}", "channel", (int)c, "text", json_object_get(ch[c], "text"),
                                  "confidence", json_object_get(ch[c], "confidence"));
            if (json_object_get(ch[c], "model")) /* model=auto picks per channel (e.g. a noisy one) */
                json_object_set(e, "model", json_object_get(ch[c], "model"));
            if (o->timestamps)
                json_object_set(e, "words", json_object_get(ch[c], "words"));
            json_object_set(e, "utterances", json_object_get(ch[c], "utterances"));
            /* diarize: each channel's voices are its own (speaker numbers restart
             * per channel), so they are reported there, not at the top level */
            if (json_object_get(ch[c], "speakers")) {
                json_object_set(e, "speakers", json_object_get(ch[c], "speakers"));
                json_object_set(e, "num_speakers", json_object_get(ch[c], "num_speakers"));
            }
            /* redaction: tokens are numbered per channel (each channel's own words) */
            if (json_object_get(ch[c], "redacted_entities")) {
                json_object_set(e, "redacted_entities", json_object_get(ch[c], "redacted_entities"));
                json_array_extend(tokens, json_object_get(ch[c], "redacted_entities"));
            }
            json_array_append_new(chans, e);
        }
        json_object_set_new(j, "channels", chans);
        if (tokens)
            json_object_set_new(j, "redacted_entities", tokens);
    }
    free(text);
    free(r);
    for (size_t c = 0; c < n; c++)
        json_decref(ch[c]);
    return j;
}

/* Utterance ranges of a transcript; a transcript with words but no
 * utterances counts as one utterance. */
static size_t utts_of(const ld_transcript *t, ld_utterance *one, const ld_utterance **u)
{
    if (t->n_utts || !t->n_words) {
        *u = t->utts;
        return t->n_utts;
    }
    *one = (ld_utterance){.count = t->n_words, .start = t->words[0].start, .end = t->words[t->n_words - 1].end};
    *u = one;
    return 1;
}

typedef struct {
    double start;
    size_t channel, index;
} range_ref;

static int range_cmp(const void *a, const void *b)
{
    const range_ref *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->channel != y->channel)
        return x->channel < y->channel ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

ld_transcript *ld_channels_merge(ld_transcript *const *t, size_t n)
{
    if (n == 0 || n > LD_MAX_CHANNELS)
        return NULL;
    size_t nw = 0, nu = 0;
    ld_utterance one[LD_MAX_CHANNELS];
    const ld_utterance *us[LD_MAX_CHANNELS];
    size_t cu[LD_MAX_CHANNELS];
    for (size_t c = 0; c < n; c++) {
        nw += t[c]->n_words;
        nu += cu[c] = utts_of(t[c], &one[c], &us[c]);
    }
    ld_transcript *m = calloc(1, sizeof *m);
    range_ref *r = calloc(nu + 1, sizeof *r);
    if (m) {
        m->words = calloc(nw + 1, sizeof *m->words);
        m->utts = calloc(nu + 1, sizeof *m->utts);
    }
    if (!m || !r || !m->words || !m->utts) {
        free(r);
        ld_transcript_free(m);
        return NULL;
    }
    size_t k = 0;
    double conf = 0;
    for (size_t c = 0; c < n; c++) {
        for (size_t i = 0; i < cu[c]; i++)
            r[k++] = (range_ref){us[c][i].start, c, i};
        conf += t[c]->confidence * (double)t[c]->n_words;
        if (t[c]->duration > m->duration)
            m->duration = t[c]->duration;
    }
    qsort(r, k, sizeof *r, range_cmp);
    for (size_t i = 0; i < k; i++) {
        const ld_transcript *src = t[r[i].channel];
        const ld_utterance *u = &us[r[i].channel][r[i].index];
        ld_utterance *d = &m->utts[m->n_utts++];
        *d = (ld_utterance){.first = m->n_words, .start = u->start, .end = u->end, .speaker = u->speaker};
        for (size_t w = u->first; w < u->first + u->count && w < src->n_words; w++) {
            ld_word x = src->words[w];
            x.word = strdup(x.word ? x.word : "");
            if (!x.word) {
                free(r);
                ld_transcript_free(m);
                return NULL;
            }
            m->words[m->n_words++] = x;
            d->count++;
        }
    }
    free(r);
    m->confidence = nw ? conf / (double)nw : 0;
    m->separate_utts = true;
    memcpy(m->language, t[0]->language, sizeof m->language);
    memcpy(m->model, t[0]->model, sizeof m->model);
    return m;
}

char *ld_channels_render(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char **ctype)
{
    if (o->format == LD_FORMAT_TEXT) {
        /* The JSON body's text: each channel punctuated on its own. */
        ld_transcribe_opts jo = *o;
        jo.timestamps = false;
        json_t *j = ld_channels_json(t, n, &jo, NULL);
        const char *s = json_string_value(json_object_get(j, "text"));
        char *out = s ? ld_str_add_newline(strdup(s)) : NULL;
        json_decref(j);
        if (ctype)
            *ctype = "text/plain; charset=utf-8";
        return out;
    }
    /* redaction runs on each channel's own words: merged, another channel's
     * words would sit inside a number and split it */
    ld_transcript *red[LD_MAX_CHANNELS] = {0};
    ld_transcribe_opts mo = *o;
    bool ok = true;
    for (size_t c = 0; o->redact && c < n && c < LD_MAX_CHANNELS; c++)
        ok &= (red[c] = ld_transcript_redact_copy(t[c], o->redact)) != NULL;
    mo.redact = 0;
    ld_transcript *m = ok ? ld_channels_merge(o->redact ? red : t, n) : NULL;
    char *s = m ? ld_transcript_render(m, &mo, ctype) : NULL;
    ld_transcript_free(m);
    for (size_t c = 0; c < n && c < LD_MAX_CHANNELS; c++)
        ld_transcript_free(red[c]);
    return s;
}
