/* The noisy route's denoiser (audio/denoise.h): same length and time alignment,
 * the noise in the pauses goes down while the speech-like bursts stay, the filter
 * follows the measured noise level, and a bad filter is an error, not a crash. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/denoise.h"
#include "test.h"

enum { N = 3 * 16000 };

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

    ld_error err = {0};
    CHECK(ld_audio_denoise(x, N, chain, &err) == LD_OK);
    /* pauses: [0, 0.5 s) and [1, 1.5 s); skip the filter's settling at the start */
    double before = rms(orig, 20000, 24000), after = rms(x, 20000, 24000);
    double tone_before = rms(orig, 28000, 32000), tone_after = rms(x, 28000, 32000);
    fprintf(stderr, "pause rms %.0f -> %.0f, tone rms %.0f -> %.0f\n", before, after, tone_before, tone_after);
    CHECK(after < before * 0.8);
    CHECK(tone_after > tone_before * 0.8 && tone_after < tone_before * 1.2);
    /* time-aligned: the tone is where it was (correlation over one burst) */
    double dot = 0, e1 = 0, e2 = 0;
    for (int i = 28000; i < 32000; i++)
        dot += (double)x[i] * orig[i], e1 += (double)x[i] * x[i], e2 += (double)orig[i] * orig[i];
    fprintf(stderr, "correlation %.3f\n", dot / sqrt(e1 * e2));
    CHECK(dot / sqrt(e1 * e2) > 0.9);

    /* the end is there too (the chirp runs to the last sample) */
    double tail_before = rms(orig, N - 400, N), tail_after = rms(x, N - 400, N);
    fprintf(stderr, "last 25 ms rms %.0f -> %.0f\n", tail_before, tail_after);
    CHECK(tail_after > tail_before * 0.7);
    CHECK(ld_audio_denoise(x, N, "nosuchfilter", &err) == LD_ERR_INTERNAL);
    CHECK(strstr(err.msg, "nosuchfilter") != NULL);
    CHECK(ld_audio_denoise(x, 0, chain, &err) == LD_OK);
    int16_t one[3] = {1, 2, 3};
    CHECK(ld_audio_denoise(one, 3, chain, &err) == LD_OK); /* shorter than a frame */
    TEST_MAIN_END();
}
