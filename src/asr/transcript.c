/* Transcript rendering: punctuation from pauses, sentence case, JSON and text.
 *
 * PocketSphinx gives lowercase words with no punctuation; the only cue we have
 * is the pause between words. A pause of at least LD_PAUSE_STOP ends a sentence,
 * one of at least LD_PAUSE_COMMA gets a comma, and the transcript ends with a
 * full stop. Punctuation entries have start == end == the previous word's end. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "asr/diarize.h"
#include "asr/numerals.h"
#include "asr/redact.h"
#include "asr/transcript.h"
#include "asr/transcript_internal.h"

void ld_transcribe_opts_default(ld_transcribe_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->language, sizeof o->language, "en");
    o->punctuate = true;
    o->timestamps = false;
    o->format = LD_FORMAT_JSON;
}

void ld_words_free(ld_word *w, size_t n)
{
    if (!w)
        return;
    for (size_t i = 0; i < n; i++)
        free(w[i].word);
    free(w);
}

void ld_transcript_free(ld_transcript *t)
{
    if (!t)
        return;
    ld_words_free(t->words, t->n_words);
    free(t->utts);
    free(t->speakers);
    free(t);
}

/* "i", "i'm", "i'll", "i've", "i'd" are capitalised wherever they stand. */
static bool is_pronoun_i(const char *w) { return (w[0] == 'i' || w[0] == 'I') && (w[1] == 0 || w[1] == '\''); }

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static void push(ld_word *out, size_t *n, long *origin, long from, char *word, double s, double e, double c)
{
    out[*n] = (ld_word){.word = word, .start = s, .end = e, .confidence = c};
    if (origin)
        origin[*n] = from;
    (*n)++;
}

/* numerals: which raw words start a number (its digits) and where it ends. A
 * run never spans a pause of LD_PAUSE_COMMA (where punctuation may go). */
static ld_numeral *find_numerals(const ld_transcript *t, size_t *count)
{
    ld_numeral *all = NULL;
    size_t k = 0, cap = 0;
    for (size_t i = 0; i < t->n_words;) {
        size_t j = i;
        char *low[64];
        while (j < t->n_words && j - i < 64 && (low[j - i] = lower_dup(t->words[j].word)) &&
               ld_numerals_word(low[j - i]) && (j == i || t->words[j].start - t->words[j - 1].end < LD_PAUSE_COMMA))
            j++;
        if (j < t->n_words && j - i < 64)
            free(low[j - i]);
        if (j > i) {
            ld_numeral found[64];
            size_t m = ld_numerals_parse((const char *const *)low, j - i, found, 64);
            if (k + m > cap) {
                ld_numeral *g = realloc(all, (cap = 2 * (k + m)) * sizeof *all);
                if (!g)
                    m = 0;
                else
                    all = g;
            }
            for (size_t q = 0; q < m; q++) {
                all[k] = found[q];
                all[k].first += i, all[k++].last += i;
            }
            for (size_t q = 0; q < j - i; q++)
                free(low[q]);
        }
        i = j > i ? j : i + 1;
    }
    *count = k;
    return all;
}

/* The entities to redact (asr/redact.h), over the lower-cased words and the
 * pauses between them (a stream's: from the previous final's end too). NULL
 * when memory ran out: the caller then shows nothing rather than the words. */
static ld_redaction *find_redactions(const ld_transcript *t, ld_redactor *r, size_t *count)
{
    *count = 0;
    char **low = calloc(t->n_words + 1, sizeof *low);
    double *gap = calloc(t->n_words + 1, sizeof *gap);
    ld_redaction *red = calloc(t->n_words + 1, sizeof *red);
    bool ok = low && gap && red;
    for (size_t i = 0; ok && i < t->n_words; i++) {
        ok = (low[i] = lower_dup(t->words[i].word)) != NULL;
        gap[i] = i ? t->words[i].start - t->words[i - 1].end : r->n_carry ? t->words[0].start - r->carry_end : 0;
    }
    size_t m = ok ? ld_redact_find(r, (const char *const *)low, gap, t->n_words, red, t->n_words + 1)
                  : LD_REDACT_FAILED;
    if (m != LD_REDACT_FAILED && t->n_words)
        r->carry_end = t->words[t->n_words - 1].end;
    for (size_t i = 0; low && i < t->n_words; i++)
        free(low[i]);
    free(low);
    free(gap);
    if (m == LD_REDACT_FAILED) {
        free(red);
        return NULL;
    }
    *count = m;
    return red;
}

/* Words [a, b] as one entry `text` (a number's digits, an entity's token):
 * their span, the lowest confidence of them. false when memory is short. */
static bool push_span(ld_word *out, size_t *k, long *origin, const ld_transcript *t, size_t a, size_t b,
                      const char *text)
{
    double c = t->words[a].confidence;
    for (size_t q = a + 1; q <= b; q++)
        c = t->words[q].confidence < c ? t->words[q].confidence : c;
    char *d = strdup(text);
    if (d)
        push(out, k, origin, (long)a, d, t->words[a].start, t->words[b].end, c);
    return d != NULL;
}

ld_word *ld_transcript_render_ex(const ld_transcript *t, unsigned flags, size_t *n, long **origin_out)
{
    return ld_transcript_render_redacted(t, flags, NULL, n, origin_out);
}

/* Whether word i ends its utterance, for transcripts whose utterances are
 * different voices (merged channels): the next word belongs to someone else,
 * so the gap to it says nothing about this one's sentence. NULL otherwise. */
static bool *utterance_ends(const ld_transcript *t)
{
    bool *e = t->separate_utts && t->n_words ? calloc(t->n_words, sizeof *e) : NULL;
    for (size_t u = 0; e && u < t->n_utts; u++)
        if (t->utts[u].count && t->utts[u].first + t->utts[u].count <= t->n_words)
            e[t->utts[u].first + t->utts[u].count - 1] = true;
    return e;
}

ld_word *ld_transcript_render_redacted(const ld_transcript *t, unsigned flags, ld_redactor *r, size_t *n,
                                       long **origin_out)
{
    bool punctuate = flags & LD_RENDER_PUNCTUATE;
    /* at most one punctuation entry per word */
    ld_word *out = calloc(2 * t->n_words + 1, sizeof *out);
    long *origin = origin_out ? calloc(2 * t->n_words + 1, sizeof *origin) : NULL;
    size_t k = 0, n_num = 0, next_num = 0, n_red = 0, next_red = 0;
    ld_numeral *num = flags & LD_RENDER_NUMERALS ? find_numerals(t, &n_num) : NULL;
    ld_redactor local = {.kinds = flags >> LD_RENDER_REDACT_SHIFT};
    if (!r)
        r = &local;
    ld_redaction *red = r->kinds && t->n_words ? find_redactions(t, r, &n_red) : NULL;
    if (r->kinds && t->n_words && !red) { /* out of memory: no words rather than unredacted ones */
        free(out);
        free(origin);
        free(num);
        *n = 0;
        if (origin_out)
            *origin_out = NULL;
        return NULL;
    }
    bool sentence_start = true;
    bool *ends = punctuate ? utterance_ends(t) : NULL;
    for (size_t i = 0; out && i < t->n_words; i++) {
        const ld_word *w = &t->words[i];
        while (next_num < n_num && num[next_num].first < i) /* inside a redacted entity */
            next_num++;
        while (next_red < n_red && red[next_red].last < i) /* never back over words already out */
            next_red++;
        bool entity = next_red < n_red && red[next_red].first <= i;
        if (entity || (next_num < n_num && num[next_num].first == i &&
                       (next_red == n_red || num[next_num].last < red[next_red].first))) {
            /* an entity's token, or a spoken number as digits */
            size_t last = entity ? red[next_red].last : num[next_num].last;
            if (!push_span(out, &k, origin, t, i, last, entity ? red[next_red++].token : num[next_num++].digits))
                break;
            i = last;
            w = &t->words[i];
        } else {
            char *word = ld_redact_is_token(w->word) ? strdup(w->word) : lower_dup(w->word); /* a copy's token */
            if (!word)
                break;
            if ((flags & LD_RENDER_PROFANITY) && ld_profanity_is(word))
                ld_profanity_mask(word);
            else if (punctuate && (sentence_start || is_pronoun_i(word)))
                word[0] = (char)toupper((unsigned char)word[0]);
            push(out, &k, origin, (long)i, word, w->start, w->end, w->confidence);
        }
        sentence_start = false;
        if (!punctuate)
            continue;
        const char *mark = NULL;
        if (i + 1 == t->n_words || (ends && ends[i]))
            mark = ".";
        else {
            double gap = t->words[i + 1].start - w->end;
            if (gap >= LD_PAUSE_STOP)
                mark = ".";
            else if (gap >= LD_PAUSE_COMMA)
                mark = ",";
        }
        if (mark) {
            push(out, &k, origin, -1, strdup(mark), w->end, w->end, 1.0);
            sentence_start = mark[0] == '.';
        }
    }
    free(num);
    free(red);
    free(ends);
    *n = k;
    if (origin_out)
        *origin_out = origin;
    return out;
}

ld_word *ld_transcript_render_words(const ld_transcript *t, unsigned flags, size_t *n)
{
    return ld_transcript_render_ex(t, flags, n, NULL);
}

size_t ld_utt_spans(const ld_transcript *t, const ld_word *w, const long *origin, size_t n, ld_utt_span *out)
{
    size_t k = 0, r = 0;
    for (size_t u = 0; origin && u < t->n_utts; u++) {
        const ld_utterance *ut = &t->utts[u];
        if (!ut->count)
            continue;
        while (r < n && (origin[r] < 0 || (size_t)origin[r] < ut->first))
            r++;
        size_t from = r;
        while (r < n && (origin[r] < 0 || (size_t)origin[r] < ut->first + ut->count))
            r++;
        if (r == from) /* all of it went into a redaction token of an earlier utterance */
            continue;
        double end = ut->end; /* which then ends where its token ends */
        for (size_t q = from; q < r; q++)
            end = w[q].end > end ? w[q].end : end;
        bool head_gone = (size_t)origin[from] != ut->first; /* into an earlier utterance's token */
        if (head_gone && k && (!t->speakers || t->utts[out[k - 1].utt].speaker == ut->speaker)) {
            out[k - 1].to = r;
            out[k - 1].end = end > out[k - 1].end ? end : out[k - 1].end;
            continue;
        }
        out[k++] = (ld_utt_span){u, from, r, head_gone ? w[from].start : ut->start, end};
    }
    return k;
}

ld_transcript *ld_transcript_redact_copy(const ld_transcript *t, unsigned kinds)
{
    size_t n = 0;
    long *origin = NULL;
    ld_word *w = ld_transcript_render_ex(t, kinds << LD_RENDER_REDACT_SHIFT, &n, &origin);
    ld_transcript *c = calloc(1, sizeof *c);
    if (!w || !origin || !c || !(c->utts = calloc(t->n_utts + 1, sizeof *c->utts)) ||
        (t->speakers && !(c->speakers = calloc(n + 1, sizeof *c->speakers)))) {
        ld_words_free(w, n);
        free(origin);
        ld_transcript_free(c);
        return NULL;
    }
    *c = (ld_transcript){.words = w,
                         .n_words = n,
                         .utts = c->utts,
                         .n_utts = t->n_utts,
                         .duration = t->duration,
                         .confidence = t->confidence,
                         .speakers = c->speakers,
                         .n_speakers = t->n_speakers,
                         .separate_utts = t->separate_utts};
    memcpy(c->language, t->language, sizeof c->language);
    memcpy(c->model, t->model, sizeof c->model);
    for (size_t i = 0; c->speakers && i < n; i++)
        c->speakers[i] = t->speakers[origin[i]];
    /* the utterances as the JSON body has them (no punctuation entries here) */
    ld_utt_span *sp = calloc(t->n_utts + 1, sizeof *sp);
    if (!sp) {
        free(origin);
        ld_transcript_free(c);
        return NULL;
    }
    c->n_utts = ld_utt_spans(t, w, origin, n, sp);
    for (size_t u = 0; u < c->n_utts; u++)
        c->utts[u] = (ld_utterance){.first = sp[u].from,
                                    .count = sp[u].to - sp[u].from,
                                    .start = sp[u].start,
                                    .end = sp[u].end,
                                    .speaker = t->utts[sp[u].utt].speaker};
    free(sp);
    free(origin);
    return c;
}

bool ld_word_is_punct(const char *w) { return w && w[0] && !w[1] && strchr(".,?!", w[0]); }

char *ld_words_join_by(const void *items, size_t from, size_t to, const char *(*word)(const void *items, size_t i))
{
    size_t len = 1;
    for (size_t i = from; i < to; i++)
        len += strlen(word(items, i)) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (size_t i = from; i < to; i++) {
        const char *w = word(items, i);
        if (p != s && !ld_word_is_punct(w))
            *p++ = ' ';
        size_t l = strlen(w);
        memcpy(p, w, l);
        p += l;
    }
    *p = 0;
    return s;
}

static const char *word_of(const void *items, size_t i) { return ((const ld_word *)items)[i].word; }

char *ld_words_join(const ld_word *w, size_t n) { return ld_words_join_by(w, 0, n, word_of); }

double ld_round3(double x) { return round(x * 1000.0) / 1000.0; }

json_t *ld_transcript_json(const ld_transcript *t, const ld_transcribe_opts *o, const char *request_id)
{
    size_t n = 0;
    long *origin = NULL;
    ld_word *w = ld_transcript_render_ex(t, LD_RENDER_FLAGS(o), &n, &origin);
    char *text = w ? ld_words_join(w, n) : NULL;
    json_t *j = json_object();
    if (request_id)
        json_object_set_new(j, "request_id", json_string(request_id));
    json_object_set_new(j, "text", json_string(text ? text : ""));
    json_object_set_new(j, "confidence", json_real(ld_round3(t->confidence)));
    json_object_set_new(j, "duration", json_real(ld_round3(t->duration)));
    json_object_set_new(j, "language", json_string(t->language[0] ? t->language : o->language));
    if (t->model[0])
        json_object_set_new(j, "model", json_string(t->model));
    if (o->timestamps) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr,
                                  json_pack("{s:s,s:f,s:f,s:f}", "word", w[i].word, "start", ld_round3(w[i].start),
                                            "end", ld_round3(w[i].end), "confidence", ld_round3(w[i].confidence)));
        json_object_set_new(j, "words", arr);
    }
    /* utterances: each silence-delimited segment with its rendered words,
     * including the punctuation that follows its last word. */
    json_t *utts = json_array();
    ld_utt_span *sp = calloc(t->n_utts + 1, sizeof *sp);
    size_t n_sp = sp ? ld_utt_spans(t, w, origin, n, sp) : 0;
    for (size_t u = 0; u < n_sp; u++) {
        char *ut_text = ld_words_join(w + sp[u].from, sp[u].to - sp[u].from);
        json_array_append_new(utts, json_pack("{s:s,s:f,s:f}", "text", ut_text ? ut_text : "", "start",
                                              ld_round3(sp[u].start), "end", ld_round3(sp[u].end)));
        free(ut_text);
    }
    free(sp);
    json_object_set_new(j, "utterances", utts);
    if (o->redact) { /* the tokens given out, in order (as stream finals list them) */
        json_t *tokens = json_array();
        for (size_t i = 0; i < n; i++)
            if (ld_redact_is_token(w[i].word))
                json_array_append_new(tokens, json_string(w[i].word));
        json_object_set_new(j, "redacted_entities", tokens);
    }
    ld_diarize_json(t, o, j); /* speaker fields, when diarized */
    free(text);
    free(origin);
    ld_words_free(w, n);
    return j;
}

char *ld_transcript_text(const ld_transcript *t, const ld_transcribe_opts *o)
{
    size_t n = 0;
    ld_word *w = ld_transcript_render_words(t, LD_RENDER_FLAGS(o), &n);
    char *s = w ? ld_words_join(w, n) : NULL;
    ld_words_free(w, n);
    return ld_str_add_newline(s);
}

static const struct {
    ld_format f;
    const char *name, *ctype;
} formats[] = {
    {LD_FORMAT_JSON, "json", "application/json"},
    {LD_FORMAT_TEXT, "text", "text/plain; charset=utf-8"},
    {LD_FORMAT_SRT, "srt", "application/x-subrip; charset=utf-8"},
    {LD_FORMAT_VTT, "vtt", "text/vtt; charset=utf-8"},
};

const char *ld_format_name(ld_format f)
{
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        if (formats[i].f == f)
            return formats[i].name;
    return "json";
}

int ld_format_parse(const char *name, ld_format *out)
{
    for (size_t i = 0; name && i < sizeof formats / sizeof *formats; i++)
        if (!strcasecmp(name, formats[i].name)) {
            *out = formats[i].f;
            return 0;
        }
    return -1;
}

char *ld_transcript_render(const ld_transcript *t, const ld_transcribe_opts *o, const char **ctype)
{
    char *s;
    switch (o->format) {
    case LD_FORMAT_TEXT: s = ld_transcript_text(t, o); break;
    case LD_FORMAT_SRT: s = ld_transcript_srt(t, o); break;
    case LD_FORMAT_VTT: s = ld_transcript_vtt(t, o); break;
    default: return NULL;
    }
    if (ctype)
        for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
            if (formats[i].f == o->format)
                *ctype = formats[i].ctype;
    return s;
}

char *ld_str_add_newline(char *s)
{
    if (!s)
        return NULL;
    size_t l = strlen(s);
    char *r = realloc(s, l + 2);
    if (!r) {
        free(s);
        return NULL;
    }
    r[l] = '\n';
    r[l + 1] = 0;
    return r;
}
