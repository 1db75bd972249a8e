/* SRT and WebVTT from word timings. Cues break at sentence ends, at long pauses
 * and when two lines of LD_SUB_LINE_MAX characters are full; a single word
 * longer than a line stands alone on its line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/transcript.h"
#include "asr/transcript_internal.h"

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = true;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void stamp(sbuf *b, double t, char sep)
{
    if (t < 0)
        t = 0;
    long ms = (long)(t * 1000.0 + 0.5);
    char s[32];
    snprintf(s, sizeof s, "%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep,
             ms % 1000);
    sb_str(b, s);
}

static bool is_punct(const char *w) { return w[0] && !w[1] && strchr(".,?!", w[0]); }

/* With t->separate_utts, the utterance of each rendered entry (punctuation:
 * that of the word before it); NULL otherwise or when out of memory. */
static size_t *utterance_of(const ld_transcript *t, const long *origin, size_t n)
{
    size_t *u = t->separate_utts && origin ? calloc(n + 1, sizeof *u) : NULL;
    size_t k = 0; /* words are in utterance order */
    for (size_t i = 0; u && i < n; i++) {
        while (origin[i] >= 0 && k + 1 < t->n_utts && (size_t)origin[i] >= t->utts[k].first + t->utts[k].count)
            k++;
        u[i] = k;
    }
    return u;
}

typedef struct {
    double start, end;
    size_t seq;  /* made in this order: ties keep it */
    size_t text; /* offset of its lines in the text buffer */
} cue;

static int cue_cmp(const void *a, const void *b)
{
    const cue *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Emits cues; vtt selects the WebVTT flavour. */
static char *render(const ld_transcript *t, const ld_transcribe_opts *o, bool vtt)
{
    size_t n = 0;
    long *origin = NULL;
    ld_word *w = ld_transcript_render_ex(t, LD_RENDER_FLAGS(o), &n, &origin);
    size_t *utt = utterance_of(t, origin, n);
    /* cues are collected, then written: merged channels' utterances are in
     * order of their starts, but a long one cut into several cues would put
     * its later cues before the other channel's first ones (WebVTT wants
     * non-decreasing cue starts) */
    cue *cues = calloc(n + 1, sizeof *cues); /* at most one cue per entry */
    size_t n_cues = 0;
    sbuf texts = {0}, b = {0};
    size_t i = 0;
    while (w && cues && i < n) {
        while (i < n && is_punct(w[i].word)) /* never start a cue with punctuation */
            i++;
        if (i >= n)
            break;
        char lines[LD_SUB_LINES][LD_SUB_LINE_MAX * 4 + 8];
        int line = 0;
        size_t used = 0;
        lines[0][0] = 0;
        double start = w[i].start, end = w[i].end;
        size_t cue_first = i;
        for (; i < n; i++) {
            const char *word = w[i].word;
            size_t wl = strlen(word);
            if (is_punct(word)) {
                /* punctuation always joins its word, even past the limit by one char */
                if (used + 1 < sizeof lines[line]) {
                    strcat(lines[line], word);
                    used++;
                }
                if (word[0] == '.') {
                    i++;
                    break; /* sentence end closes the cue */
                }
                continue;
            }
            bool empty = !used && !line;
            if (!empty && (w[i].start - end >= LD_SUB_GAP_S || w[i].end - start > LD_SUB_MAX_CUE_S))
                break;
            if (!empty && utt && utt[i] != utt[cue_first]) /* another voice: its own cue */
                break;
            /* keep room for a punctuation mark that follows this word */
            size_t tail = i + 1 < n && is_punct(w[i + 1].word) ? 1 : 0;
            size_t need = (used ? used + 1 + wl : wl) + tail;
            if (need > LD_SUB_LINE_MAX && used) {
                if (line + 1 >= LD_SUB_LINES)
                    break;
                line++;
                lines[line][0] = 0;
                used = 0;
            }
            if (wl >= sizeof lines[line] - used - 2)
                wl = sizeof lines[line] - used - 2; /* absurdly long token: truncate */
            if (used)
                lines[line][used++] = ' ';
            memcpy(lines[line] + used, word, wl);
            used += wl;
            lines[line][used] = 0;
            end = w[i].end;
        }
        cues[n_cues] = (cue){start, end > start ? end : start + 0.001, n_cues, texts.len};
        n_cues++;
        for (int l = 0; l <= line; l++) {
            sb_str(&texts, lines[l]);
            sb_str(&texts, "\n");
        }
        sb_add(&texts, "", 1); /* each cue's lines end with their own NUL */
    }
    if (t->separate_utts)
        qsort(cues, n_cues, sizeof *cues, cue_cmp);
    sb_str(&b, vtt ? "WEBVTT\n\n" : "");
    for (size_t c = 0; c < n_cues && !texts.oom; c++) {
        char num[32];
        snprintf(num, sizeof num, "%zu\n", c + 1);
        if (!vtt)
            sb_str(&b, num);
        stamp(&b, cues[c].start, vtt ? '.' : ',');
        sb_str(&b, " --> ");
        stamp(&b, cues[c].end, vtt ? '.' : ',');
        sb_str(&b, "\n");
        sb_str(&b, texts.buf + cues[c].text);
        sb_str(&b, "\n");
    }
    bool failed = b.oom || texts.oom || (w && !cues);
    ld_words_free(w, n);
    free(origin);
    free(utt);
    free(cues);
    free(texts.buf);
    if (failed) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

char *ld_transcript_srt(const ld_transcript *t, const ld_transcribe_opts *o) { return render(t, o, false); }
char *ld_transcript_vtt(const ld_transcript *t, const ld_transcribe_opts *o) { return render(t, o, true); }
