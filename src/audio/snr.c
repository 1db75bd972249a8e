/* Signal-to-noise estimate (audio.h): loud frames against the quietest moment.
 * 10 ms frame energies in dB; speech = the 95th percentile of frames, noise =
 * the minimum of the energies smoothed over 50 ms (a pause between words in a
 * clean recording is far below speech; steady noise fills every pause). A
 * batch request measures its whole upload, a stream the audio so far. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"

#define FRAME LD_AUDIO_FRAME
#define SMOOTH 2

#define FULL_SCALE_DB 90.309 /* 20 log10(32768) */

static float power_db(double mean_square) { return (float)(10.0 * log10(mean_square + 1e-3)); }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Frame energies of the first n samples: *loud = their 95th percentile, return =
 * the quietest 50 ms (dB re one sample unit squared); NAN if too short. */
/* A frame of digital silence (RMS under 1.5 LSB: zeros, or a dithered zero) holds
 * no sound, so it is not "loud" however few louder frames there are. */
#define SILENT_DB 3.5f /* power_db of an RMS of 1.5 */

static double levels(const int16_t *pcm, size_t n, double *loud)
{
    size_t nf = n / FRAME;
    if (nf < 2 * SMOOTH + 10) /* under 0.14 s: no estimate */
        return NAN;
    float *e = malloc(nf * sizeof *e), *sorted = malloc(nf * sizeof *sorted);
    double *pw = malloc((nf + 1) * sizeof *pw);
    if (!e || !sorted || !pw) {
        free(e), free(sorted), free(pw);
        return NAN;
    }
    ld_audio_frame_power(pcm, n, false, pw);
    size_t ns = 0; /* frames with sound, for the loud percentile */
    for (size_t f = 0; f < nf; f++) {
        e[f] = power_db(pw[f]);
        if (e[f] >= SILENT_DB)
            sorted[ns++] = e[f];
    }
    free(pw);
    double floor_db = INFINITY;
    for (size_t f = SMOOTH; f + SMOOTH < nf; f++) {
        double s = 0;
        for (size_t k = f - SMOOTH; k <= f + SMOOTH; k++)
            s += e[k];
        if (s / (2 * SMOOTH + 1) < floor_db)
            floor_db = s / (2 * SMOOTH + 1);
    }
    if (ns < 2 * SMOOTH + 10) { /* (almost) all digital silence: nothing to tell */
        free(e), free(sorted);
        return NAN;
    }
    qsort(sorted, ns, sizeof *sorted, cmp_float);
    *loud = sorted[(size_t)((double)ns * 0.95)];
    free(e), free(sorted);
    return floor_db;
}

double ld_audio_snr_db(const int16_t *pcm, size_t n, double *noise_dbfs)
{
    double loud = 0, floor_db = levels(pcm, n, &loud);
    if (noise_dbfs)
        *noise_dbfs = isnan(floor_db) ? -90.3 : floor_db - FULL_SCALE_DB;
    return isnan(floor_db) ? 99.0 : loud - floor_db;
}

double ld_audio_noise_dbfs(const int16_t *pcm, size_t n)
{
    double noise;
    ld_audio_snr_db(pcm, n, &noise);
    return noise;
}

void ld_audio_snr_meter_push(ld_audio_snr_meter *m, const int16_t *pcm, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        m->acc += (double)pcm[i] * pcm[i];
        m->sum += pcm[i];
        if (++m->fill < FRAME)
            continue;
        double mean = m->sum / FRAME;
        /* the mean so far, then over ≈ 1 s: an offset, not low sounds */
        m->dc += (mean - m->dc) / (double)(m->frames < 100 ? m->frames + 1 : 100);
        double dc = ld_audio_dc_used(m->dc);
        m->recent[m->frames++ % LD_SNR_RECENT] = power_db(m->acc / FRAME - 2 * dc * mean + dc * dc);
        m->acc = 0, m->sum = 0, m->fill = 0;
        if (m->frames < 2 * SMOOTH + 1)
            continue;
        double s = 0; /* the last 50 ms */
        for (size_t k = m->frames - 2 * SMOOTH - 1; k < m->frames; k++)
            s += m->recent[k % LD_SNR_RECENT];
        s /= 2 * SMOOTH + 1;
        if (m->frames == 2 * SMOOTH + 1 || s < m->floor_db)
            m->floor_db = s;
    }
}

double ld_audio_snr_meter_db(const ld_audio_snr_meter *m, double *noise_dbfs)
{
    bool known = m->frames >= 2 * SMOOTH + 10; /* as levels(): 0.14 s */
    if (noise_dbfs)
        *noise_dbfs = known ? m->floor_db - FULL_SCALE_DB : -90.3;
    if (!known)
        return 99.0;
    size_t n = m->frames < LD_SNR_RECENT ? m->frames : LD_SNR_RECENT;
    float sorted[LD_SNR_RECENT];
    memcpy(sorted, m->recent, n * sizeof *sorted); /* the ring's order does not matter here */
    qsort(sorted, n, sizeof *sorted, cmp_float);
    return sorted[(size_t)((double)n * 0.95)] - m->floor_db;
}

size_t ld_audio_lead_silence(const int16_t *pcm, size_t n)
{
    size_t i = 0;
    while (i < n && pcm[i] >= -1 && pcm[i] <= 1)
        i++;
    return i >= LD_LEAD_SILENCE_MIN ? i / FRAME * FRAME : 0;
}

#define DC_BLOCK 16000 /* one second */

size_t ld_audio_frame_power(const int16_t *pcm, size_t n, bool partial, double *out)
{
    size_t nf = partial ? (n + FRAME - 1) / FRAME : n / FRAME, end = partial ? n : nf * FRAME;
    size_t nb = (end + DC_BLOCK - 1) / DC_BLOCK;
    double *dc = nb ? calloc(nb, sizeof *dc) : NULL;
    double total = 0;
    for (size_t b = 0; dc && b < nb; b++) {
        size_t a = b * DC_BLOCK, z = a + DC_BLOCK < end ? a + DC_BLOCK : end;
        for (size_t i = a; i < z; i++)
            dc[b] += pcm[i];
        total += dc[b];
        dc[b] /= (double)(z - a);
    }
    /* an offset is in the whole signal: a second's mean alone also moves with
     * low-frequency sound (pink noise's swings reach it) */
    bool offset = end && fabs(total / (double)end) >= LD_DC_MIN;
    for (size_t f = 0; f < nf; f++) {
        size_t fa = f * FRAME, fz = fa + FRAME < end ? fa + FRAME : end;
        double d = offset ? dc[fa / DC_BLOCK] : 0, acc = 0; /* DC_BLOCK is a whole number of frames */
        for (size_t i = fa; i < fz; i++)
            acc += (pcm[i] - d) * (pcm[i] - d);
        out[f] = acc / (double)(fz - fa);
    }
    free(dc);
    return nf;
}
