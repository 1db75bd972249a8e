/* Signal-to-noise estimate (audio.h): loud frames against the quietest moment.
 * 10 ms frame energies in dB; speech = the 95th percentile of frames, noise =
 * the minimum of the energies smoothed over 50 ms (a pause between words in a
 * clean recording is far below speech; steady noise fills every pause). */
#include <math.h>
#include <stdlib.h>

#include "audio/audio.h"

#define FRAME 160
#define SMOOTH 2

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Frame energies of the first n samples: *loud = their 95th percentile, return =
 * the quietest 50 ms (dB re one sample unit squared); NAN if too short. */
static double levels(const int16_t *pcm, size_t n, double *loud)
{
    size_t nf = n / FRAME;
    if (nf < 2 * SMOOTH + 10) /* under 0.14 s: no estimate */
        return NAN;
    float *e = malloc(nf * sizeof *e), *sorted = malloc(nf * sizeof *sorted);
    if (!e || !sorted) {
        free(e), free(sorted);
        return NAN;
    }
    for (size_t f = 0; f < nf; f++) {
        double acc = 0;
        for (size_t i = f * FRAME; i < (f + 1) * FRAME; i++)
            acc += (double)pcm[i] * pcm[i];
        e[f] = sorted[f] = (float)(10.0 * log10(acc / FRAME + 1e-3));
    }
    double floor_db = INFINITY;
    for (size_t f = SMOOTH; f + SMOOTH < nf; f++) {
        double s = 0;
        for (size_t k = f - SMOOTH; k <= f + SMOOTH; k++)
            s += e[k];
        if (s / (2 * SMOOTH + 1) < floor_db)
            floor_db = s / (2 * SMOOTH + 1);
    }
    qsort(sorted, nf, sizeof *sorted, cmp_float);
    *loud = sorted[(size_t)((double)nf * 0.95)];
    free(e), free(sorted);
    return floor_db;
}

double ld_audio_snr_db(const int16_t *pcm, size_t n, double *noise_dbfs)
{
    double loud = 0, floor_db = levels(pcm, n, &loud);
    if (noise_dbfs)
        *noise_dbfs = isnan(floor_db) ? -90.3 : floor_db - 90.309; /* 20 log10(32768) */
    return isnan(floor_db) ? 99.0 : loud - floor_db;
}

double ld_audio_noise_dbfs(const int16_t *pcm, size_t n)
{
    double noise;
    ld_audio_snr_db(pcm, n, &noise);
    return noise;
}
