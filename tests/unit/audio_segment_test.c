/* Segmentation: synthetic tone bursts give known cut points; a 3-minute
 * concatenation of real clips gives bounded segments covering all speech. */
#include <stdint.h>
#include <time.h>

#include "audio/audio.h"
#include "audio_fixture.h"
#include "test.h"

#define SR LD_SAMPLE_RATE

static uint32_t rng = 1;
static int16_t noise(int amp)
{
    rng = rng * 1664525u + 1013904223u;
    return (int16_t)((int)(rng >> 16) % (2 * amp + 1) - amp);
}

/* Fills [a, b) seconds with a 300 Hz tone of the given amplitude (over noise). */
static void tone(int16_t *s, double a, double b, double amp)
{
    for (size_t i = (size_t)(a * SR); i < (size_t)(b * SR); i++)
        s[i] = (int16_t)(s[i] + amp * sin(2 * M_PI * 300.0 * (double)i / SR));
}

/* Syllable-like: the tone's envelope swings 20 dB four times a second, as
 * speech does (a steady tone is indistinguishable from hum). */
static void syllables(int16_t *s, double a, double b, double amp)
{
    for (size_t i = (size_t)(a * SR); i < (size_t)(b * SR); i++) {
        double t = (double)i / SR, env = 0.55 + 0.45 * sin(2 * M_PI * 4.0 * t);
        s[i] = (int16_t)(s[i] + amp * env * sin(2 * M_PI * 300.0 * t));
    }
}

static int16_t *noisy(size_t n, int amp)
{
    int16_t *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = amp ? noise(amp) : 0;
    return s;
}

static void test_synthetic(void)
{
    ld_segment *seg;
    size_t n = 10 * SR;
    int16_t *s = noisy(n, 0);
    CHECK(ld_audio_segment(s, n, 20, &seg) == 0 && seg == NULL); /* digital silence */
    free(s);
    s = noisy(n, 60); /* steady low noise */
    CHECK(ld_audio_segment(s, n, 20, &seg) == 0);
    free(s);
    s = noisy(n, 1500); /* steady loud noise: no onsets either */
    CHECK(ld_audio_segment(s, n, 20, &seg) == 0);
    free(s);
    CHECK(ld_audio_segment(NULL, 0, 20, &seg) == 0);

    /* Bursts at 1-2 s, 3-4.5 s, 6-6.8 s and 6.95-7.5 s (a 0.15 s gap merges). */
    s = noisy(n, 30);
    tone(s, 1, 2, 4000);
    tone(s, 3, 4.5, 8000);
    tone(s, 6, 6.8, 2000);
    tone(s, 6.95, 7.5, 2000);
    size_t k = ld_audio_segment(s, n, 20, &seg);
    CHECK(k == 3);
    const double want[3][2] = {{0.75, 2.25}, {2.75, 4.75}, {5.75, 7.75}};
    for (size_t i = 0; i < k && i < 3; i++) {
        fprintf(stderr, "burst segment %zu: %.3f-%.3f\n", i, (double)seg[i].start / SR, (double)seg[i].end / SR);
        CHECK_NEAR((double)seg[i].start / SR, want[i][0], 0.04);
        CHECK_NEAR((double)seg[i].end / SR, want[i][1], 0.04);
    }
    free(seg);
    /* Bursts 0.5 s apart: paddings would overlap, so they meet in the middle. */
    memset(s, 0, n * sizeof *s);
    tone(s, 1, 2, 4000);
    tone(s, 2.5, 3, 4000);
    k = ld_audio_segment(s, n, 20, &seg);
    CHECK(k == 2);
    if (k == 2) {
        CHECK(seg[0].end == seg[1].start);
        CHECK_NEAR((double)seg[0].end / SR, 2.25, 0.02);
    }
    free(seg);
    free(s);

    /* 30 s of "speech" whose only pauses are 0.2 s (too short to cut at), one
     * at 7.0-7.2 s: with a 10 s cap the first cut lands in it; all pieces
     * respect the cap and tile the run. */
    n = 32 * SR;
    s = noisy(n, 30);
    syllables(s, 1, 7.0, 8000);
    syllables(s, 7.2, 13.0, 8000);
    syllables(s, 13.2, 31, 8000);
    k = ld_audio_segment(s, n, 10, &seg);
    for (size_t i = 0; i < k; i++)
        fprintf(stderr, "long run segment %zu: %.3f-%.3f\n", i, (double)seg[i].start / SR, (double)seg[i].end / SR);
    CHECK(k >= 3);
    if (k >= 3) {
        CHECK_NEAR((double)seg[0].start / SR, 0.75, 0.04);
        CHECK((double)seg[0].end / SR > 7.0 && (double)seg[0].end / SR < 7.2);
        CHECK((double)seg[1].end / SR > 13.0 && (double)seg[1].end / SR < 13.2);
        CHECK_NEAR((double)seg[k - 1].end / SR, 31.25, 0.04);
    }
    for (size_t i = 0; i < k; i++) {
        CHECK(seg[i].end - seg[i].start <= 10 * SR);
        CHECK(i == 0 || seg[i].start == seg[i - 1].end);
    }
    free(seg);
    free(s);
}

static void test_real(void)
{
    FILE *m = fopen(LD_SHARED_DIR "/eval/real/manifest.tsv", "r");
    CHECK(m != NULL);
    if (!m)
        return;
    size_t cap = 200 * SR, n = 0, nclips = 0;
    int16_t *all = malloc(cap * sizeof *all);
    size_t gaps[200];
    char line[2048];
    const size_t gap = (size_t)(0.8 * SR);
    while (fgets(line, sizeof line, m) && n < 180 * SR) {
        char file[256];
        if (sscanf(line, "%*s %255s", file) != 1 || !strstr(file, ".wav"))
            continue;
        char path[512];
        snprintf(path, sizeof path, LD_SHARED_DIR "/eval/real/%s", file);
        ld_pcm p;
        ld_error err;
        if (ld_audio_decode_file(path, NULL, &p, &err) != LD_OK) {
            fprintf(stderr, "%s: %s\n", file, err.msg);
            CHECK(0);
            continue;
        }
        if (n + p.n + gap > cap) {
            ld_pcm_free(&p);
            break;
        }
        memcpy(all + n, p.samples, p.n * sizeof *all);
        n += p.n;
        ld_pcm_free(&p);
        for (size_t i = 0; i < gap; i++)
            all[n + i] = noise(20);
        gaps[nclips++] = n + gap / 2;
        n += gap;
    }
    fclose(m);
    CHECK(n >= 180 * SR);

    const double max_s = 15;
    ld_segment *seg;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    size_t k = ld_audio_segment(all, n, max_s, &seg);
    double t1 = (double)clock() / CLOCKS_PER_SEC;
    size_t covered = 0;
    for (size_t i = 0; i < k; i++)
        covered += seg[i].end - seg[i].start;
    fprintf(stderr, "real: %.1f s, %zu clips -> %zu segments covering %.1f s in %.1f ms\n", (double)n / SR, nclips,
            k, (double)covered / SR, (t1 - t0) * 1000);
    CHECK(k >= nclips / 2 && k <= 3 * nclips);
    for (size_t i = 0; i < k; i++) {
        CHECK(seg[i].start < seg[i].end && seg[i].end <= n);
        CHECK(seg[i].end - seg[i].start <= (size_t)(max_s * SR));
        CHECK(i == 0 || seg[i].start >= seg[i - 1].end);
    }
    /* Every clearly voiced 10 ms frame (above -35 dBFS) lies in a segment. */
    size_t missed = 0, loud = 0, j = 0;
    for (size_t f = 0; f + 160 <= n; f += 160) {
        double acc = 0;
        for (size_t i = f; i < f + 160; i++)
            acc += (double)all[i] * all[i];
        if (10 * log10(acc / 160 / (32768.0 * 32768.0) + 1e-10) < -35)
            continue;
        loud++;
        while (j < k && seg[j].end <= f)
            j++;
        if (!(j < k && seg[j].start <= f && f + 160 <= seg[j].end))
            missed++;
    }
    fprintf(stderr, "real: %zu loud frames, %zu outside segments\n", loud, missed);
    CHECK(loud > 1000 && missed == 0);
    /* The silence between clips is a real pause: never inside a segment. */
    size_t bridged = 0;
    for (size_t g = 0; g < nclips; g++)
        for (size_t i = 0; i < k; i++)
            bridged += seg[i].start <= gaps[g] && gaps[g] < seg[i].end;
    CHECK(bridged == 0);
    CHECK(covered < n);
    /* A recorder's DC offset (3 % of full scale) changes nothing: it lifted every
     * frame's energy, and the segments shrank to nothing */
    int16_t *dc = malloc(n * sizeof *dc), *dc2 = malloc(n * sizeof *dc2);
    for (size_t i = 0; dc && dc2 && i < n; i++) {
        dc[i] = (int16_t)(all[i] > 32767 - 1000 ? 32767 : all[i] + 1000);
        dc2[i] = (int16_t)(all[i] < -32768 + 2000 ? -32768 : all[i] - 2000);
    }
    ld_segment *seg_dc = NULL, *seg_dc2 = NULL;
    size_t k_dc = dc ? ld_audio_segment(dc, n, max_s, &seg_dc) : 0,
           k_dc2 = dc2 ? ld_audio_segment(dc2, n, max_s, &seg_dc2) : 0;
    fprintf(stderr, "real with a DC offset: %zu segments (%zu without)\n", k_dc, k);
    CHECK(k_dc == k_dc2 && k_dc + k_dc / 10 >= k &&
          k_dc <= k + k / 10); /* any offset: the same cut as without one */
    for (size_t i = 0; i < k_dc && i < k_dc2; i++)
        CHECK(seg_dc[i].start == seg_dc2[i].start && seg_dc[i].end == seg_dc2[i].end);
    free(seg_dc);
    free(seg_dc2);
    free(dc);
    free(dc2);
    free(seg);
    free(all);
}

int main(void)
{
    test_synthetic();
    test_real();
    TEST_MAIN_END();
}
