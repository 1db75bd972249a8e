/* The noisy route's denoiser (audio/denoise.h): same length and time alignment,
 * the noise in the pauses goes down while the speech-like bursts stay, the filter
 * follows the measured noise level, and a bad filter is an error, not a crash.
 * A stream's denoiser gives the same samples whatever the pieces it gets, and
 * stays aligned across flushes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/denoise.h"
#include "test.h"

enum { N = 3 * 16000 };

/* Pushes x in pieces of `piece` samples (flushing after sample `flush_at`, if
 * any) into out; returns how many samples came out. */
static size_t run_stream(const int16_t *x, size_t n, const char *chain, size_t piece, size_t flush_at, int16_t *out)
{
    ld_error err = {0};
    ld_audio_denoiser *d = ld_audio_denoiser_new(chain, &err);
    CHECK(d != NULL);
    if (!d)
        return 0;
    size_t got = 0;
    const int16_t *o;
    size_t k;
    for (size_t at = 0; at < n;) {
        size_t m = n - at < piece ? n - at : piece;
        if (at < flush_at && at + m > flush_at)
            m = flush_at - at;
        CHECK(ld_audio_denoiser_push(d, x + at, m, &o, &k, &err) == LD_OK);
        CHECK(got + k <= at + m); /* never ahead of its input */
        memcpy(out + got, o, k * sizeof *o), got += k, at += m;
        if (at == flush_at) {
            CHECK(ld_audio_denoiser_flush(d, &o, &k, &err) == LD_OK);
            memcpy(out + got, o, k * sizeof *o), got += k;
            CHECK(got == at);                                                   /* everything pushed is out */
            CHECK(ld_audio_denoiser_flush(d, &o, &k, &err) == LD_OK && k == 0); /* nothing held: nothing */
        }
    }
    CHECK(ld_audio_denoiser_flush(d, &o, &k, &err) == LD_OK);
    memcpy(out + got, o, k * sizeof *o), got += k;
    ld_audio_denoiser_free(d);
    return got;
}

static double correlation(const int16_t *a, const int16_t *b, size_t from, size_t to)
{
    double dot = 0, e1 = 0, e2 = 0;
    for (size_t i = from; i < to; i++)
        dot += (double)a[i] * b[i], e1 += (double)a[i] * a[i], e2 += (double)b[i] * b[i];
    return dot / sqrt(e1 * e2);
}

static double rms(const int16_t *s, size_t from, size_t to)
{
    double acc = 0;
    for (size_t i = from; i < to; i++)
        acc += (double)s[i] * s[i];
    return sqrt(acc / (double)(to - from));
}

int main(void)
{
    static int16_t x[N], orig[N];
    unsigned r = 7;
    for (int i = 0; i < N; i++) {
        bool burst = (i / 8000) % 2 == 1; /* 0.5 s pause, 0.5 s tone, … */
        double t = (i % 8000) / 16000.0;  /* a chirp 200 -> 1000 Hz: not periodic, so alignment shows */
        double v = burst ? 6000 * sin(2 * M_PI * (200 * t + 800 * t * t)) : 0;
        r = r * 1103515245u + 12345u;
        int n = (int)((r >> 16) % 801) - 400; /* white noise, RMS ≈ 231 */
        x[i] = orig[i] = (int16_t)(v + n);
    }
    double noise = ld_audio_noise_dbfs(x, N);
    fprintf(stderr, "noise level %.1f dBFS\n", noise);
    CHECK(noise > -45 && noise < -40); /* 20 log10(231 / 32768) = -43 */

    char chain[128];
    ld_audio_denoise_filter(noise, chain, sizeof chain);
    CHECK(strstr(chain, "afftdn=") == chain);
    ld_audio_denoise_filter(-200, chain, sizeof chain); /* digital silence: clamped to afftdn's range */
    CHECK(strstr(chain, "nf=-80.0") != NULL);
    ld_audio_denoise_filter(noise, chain, sizeof chain);

    /* a stream: the same samples in any pieces; a flush mid-way keeps what follows aligned */
    static int16_t whole[N], piecewise[N], flushed[N];
    CHECK(run_stream(x, N, chain, N, N + 1, whole) == N);
    CHECK(run_stream(x, N, chain, 333, N + 1, piecewise) == N);
    CHECK(memcmp(whole, piecewise, sizeof whole) == 0);
    CHECK(run_stream(x, N, chain, 1600, 20000, flushed) == N);
    size_t same = 0;
    while (same < N && whole[same] == flushed[same])
        same++;
    fprintf(stderr, "stream: flushed at 20000, same samples up to %zu\n", same);
    /* before the flush's point only the last window (which heard the zeros) differs */
    CHECK(same >= 20000 - 2 * LD_DENOISE_DELAY && same < 20000);
    fprintf(stderr, "stream: burst after a flush, correlation %.3f\n", correlation(flushed, orig, 28000, 32000));
    CHECK(correlation(flushed, orig, 28000, 32000) > 0.9);

    ld_error err = {0};
    CHECK(ld_audio_denoise(x, N, chain, &err) == LD_OK);
    CHECK(memcmp(x, whole, sizeof whole) == 0); /* a batch request is a stream pushed at once */
    /* pauses: [0, 0.5 s) and [1, 1.5 s); skip the filter's settling at the start */
    double before = rms(orig, 20000, 24000), after = rms(x, 20000, 24000);
    double tone_before = rms(orig, 28000, 32000), tone_after = rms(x, 28000, 32000);
    fprintf(stderr, "pause rms %.0f -> %.0f, tone rms %.0f -> %.0f\n", before, after, tone_before, tone_after);
    CHECK(after < before * 0.8);
    CHECK(tone_after > tone_before * 0.8 && tone_after < tone_before * 1.2);
    /* time-aligned: the tone is where it was (correlation over one burst) */
    fprintf(stderr, "correlation %.3f\n", correlation(x, orig, 28000, 32000));
    CHECK(correlation(x, orig, 28000, 32000) > 0.9);

    /* the end is there too (the chirp runs to the last sample) */
    double tail_before = rms(orig, N - 400, N), tail_after = rms(x, N - 400, N);
    fprintf(stderr, "last 25 ms rms %.0f -> %.0f\n", tail_before, tail_after);
    CHECK(tail_after > tail_before * 0.7);
    CHECK(ld_audio_denoise(x, N, "nosuchfilter", &err) == LD_ERR_INTERNAL);
    CHECK(strstr(err.msg, "nosuchfilter") != NULL);
    CHECK(ld_audio_denoiser_new("nosuchfilter", &err) == NULL);
    CHECK(strstr(err.msg, "nosuchfilter") != NULL);
    CHECK(ld_audio_denoise(x, 0, chain, &err) == LD_OK);
    int16_t one[3] = {1, 2, 3};
    CHECK(ld_audio_denoise(one, 3, chain, &err) == LD_OK); /* shorter than a frame */
    TEST_MAIN_END();
}
