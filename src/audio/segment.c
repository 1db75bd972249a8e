/* Energy VAD: 10 ms frame energies (dBFS), smoothed over 50 ms, compared with
 * a noise floor = the minimum over ±3 s (adapts to slowly changing noise
 * without being pulled up by speech, which always has dips). Speech regions
 * closer than MIN_PAUSE merge; each is padded, and regions longer than the cap
 * are cut at their quietest point. O(n), three arrays of one float/int per frame. */
#include "audio/audio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FRAME LD_AUDIO_FRAME /* 10 ms */
#define SMOOTH 2             /* ±2 frames = 50 ms */
#define FLOOR_W 300          /* ±3 s */
#define ABOVE_FLOOR_DB 12.0f /* speech stands this far above the floor ... */
#define ABS_MIN_DB (-55.0f)  /* ... and above this absolute level */
#define MIN_PAUSE 40         /* frames of non-speech that end an utterance (0.4 s) */
#define MIN_SPEECH 12        /* shorter blips (clicks) are dropped (0.12 s) */
#define PAD 25               /* frames of context each side (0.25 s) */

/* Appends [s, e) frames, splitting at the quietest smoothed frame in the second
 * half of each window longer than maxf. Returns the new count or -1. */
static long emit(ld_segment **out, size_t *cap, size_t cnt, size_t s, size_t e, size_t maxf, const float *sm,
                 size_t n)
{
    while (s < e) {
        size_t c = e;
        if (e - s > maxf) {
            c = s + maxf;
            float best = INFINITY;
            for (size_t i = s + maxf / 2; i < s + maxf; i++)
                if (sm[i] < best) { /* strict: the earliest minimum wins */
                    best = sm[i];
                    c = i;
                }
            if (c <= s)
                c = s + maxf;
        }
        if (cnt == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            ld_segment *g = realloc(*out, nc * sizeof *g);
            if (!g)
                return -1;
            *out = g;
            *cap = nc;
        }
        size_t a = s * FRAME, b = c * FRAME;
        (*out)[cnt].start = a;
        (*out)[cnt].end = b < n ? b : n;
        cnt++;
        s = c;
    }
    return (long)cnt;
}

size_t ld_audio_segment(const int16_t *pcm, size_t n, double max_seconds, ld_segment **out)
{
    *out = NULL;
    size_t nf = (n + FRAME - 1) / FRAME;
    if (!pcm || nf == 0)
        return 0;
    if (max_seconds <= 0)
        max_seconds = 20;
    size_t maxf = (size_t)(max_seconds * 100);
    if (maxf < 2 * PAD + 10)
        maxf = 2 * PAD + 10;

    float *e = malloc(nf * sizeof *e), *sm = malloc(nf * sizeof *sm);
    size_t *dq = malloc((2 * FLOOR_W + 2) * sizeof *dq);
    if (!e || !sm || !dq) {
        free(e), free(sm), free(dq);
        return 0;
    }
    double *pw = malloc((nf + 1) * sizeof *pw);
    if (!pw) {
        free(e), free(sm), free(dq);
        return 0;
    }
    ld_audio_frame_power(pcm, n, true, pw);
    for (size_t f = 0; f < nf; f++)
        e[f] = (float)(10.0 * log10(pw[f] / (32768.0 * 32768.0) + 1e-10));
    free(pw);
    /* Centred moving average with a running sum. */
    double run = 0;
    size_t lo = 0, hi = 0; /* window [lo, hi) */
    for (size_t f = 0; f < nf; f++) {
        size_t want_hi = f + SMOOTH + 1 < nf ? f + SMOOTH + 1 : nf, want_lo = f > SMOOTH ? f - SMOOTH : 0;
        while (hi < want_hi)
            run += e[hi++];
        while (lo < want_lo)
            run -= e[lo++];
        sm[f] = (float)(run / (double)(hi - lo));
    }

    /* Sliding-window minimum (monotonic deque in a ring) gives the floor;
     * frame f is decided once the window [f-W, f+W] is complete. */
    size_t cap = 0, cnt = 0, qh = 0, qn = 0, ring = 2 * FLOOR_W + 2;
    long run_start = -1;           /* first frame of the current speech region */
    size_t last_speech = 0;        /* end (exclusive) of the last speech frame seen */
    size_t prev_end = 0;           /* end of the previous emitted region, for padding */
    long pend_s = -1, pend_e = -1; /* region waiting for the next one (padding split) */
    bool fail = false;
    for (size_t j = 0; j < nf + FLOOR_W && !fail; j++) {
        if (j < nf) {
            while (qn && sm[dq[(qh + qn - 1) % ring]] >= sm[j])
                qn--;
            dq[(qh + qn) % ring] = j;
            qn++;
        }
        if (j < FLOOR_W)
            continue;
        size_t f = j - FLOOR_W;
        while (qn && dq[qh] + FLOOR_W < f) {
            qh = (qh + 1) % ring;
            qn--;
        }
        float floor_db = sm[dq[qh]];
        bool speech = sm[f] > floor_db + ABOVE_FLOOR_DB && sm[f] > ABS_MIN_DB;
        bool end_now = false;
        if (speech) {
            if (run_start < 0)
                run_start = (long)f;
            last_speech = f + 1;
        } else if (run_start >= 0 && f - last_speech + 1 >= MIN_PAUSE) {
            end_now = true;
        }
        if (f == nf - 1 && run_start >= 0)
            end_now = true;
        if (!end_now)
            continue;
        size_t rs = (size_t)run_start, re = last_speech;
        run_start = -1;
        if (re - rs < MIN_SPEECH)
            continue;
        /* Pad; a gap too short for both paddings is split in the middle. */
        if (pend_s >= 0) {
            size_t gap_mid = ((size_t)pend_e + rs) / 2;
            size_t pe = (size_t)pend_e + PAD < gap_mid ? (size_t)pend_e + PAD : gap_mid;
            long r = emit(out, &cap, cnt, (size_t)pend_s, pe, maxf, sm, n);
            if (r < 0)
                fail = true;
            else
                cnt = (size_t)r;
            prev_end = pe;
        }
        size_t ps = rs > PAD ? rs - PAD : 0;
        if (ps < prev_end)
            ps = prev_end;
        pend_s = (long)ps;
        pend_e = (long)re;
    }
    if (!fail && pend_s >= 0) {
        size_t pe = (size_t)pend_e + PAD < nf ? (size_t)pend_e + PAD : nf;
        long r = emit(out, &cap, cnt, (size_t)pend_s, pe, maxf, sm, n);
        if (r < 0)
            fail = true;
        else
            cnt = (size_t)r;
    }
    free(e), free(sm), free(dq);
    if (fail) {
        free(*out);
        *out = NULL;
        return 0;
    }
    return cnt;
}
