/* The diarizer's front end (asr/diarize.h): MFCCs computed here rather than
 * taken from PocketSphinx, because the decoders run on other threads, per
 * segment and with live CMN, while diarization wants one plain feature stream
 * of the whole recording. Pre-emphasis 0.97, 25 ms Hamming window, 10 ms hop,
 * 512-point FFT, LD_MEL triangular mel filters, log, DCT-II; c0 (loudness) is
 * left out so clustering follows voices, not levels. About 1 ms of CPU per
 * second of audio.
 *
 * Each frame also carries log F0 (0 = unvoiced): the normalised
 * cross-correlation of a 16 ms window of the signal decimated to 8 kHz over
 * lags for 60-400 Hz (as in RAPT's first pass; short, as pitch glides within
 * a word), the first local peak within 15 % of the best (no subharmonics),
 * voiced when the best is >= 0.6. Voice pitch is what cepstral means of a
 * one-word turn barely show (a woman's and a man's differ by ~0.4-0.6 in log
 * F0). The pitch track costs ~0.9 ms more per second of audio (1.0 -> 1.9 ms
 * for both, measured on a 55 s recording). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"

#define LD_WIN 400 /* 25 ms at 16 kHz */
#define LD_HOP 160 /* 10 ms */
#define LD_NFFT 512
#define LD_MEL 30
#define LD_P_RATE 8000 /* pitch search on the signal decimated by 2 */
#define LD_P_WIN 128   /* 16 ms at 8 kHz: short, as pitch glides within a word */
#define LD_P_LAG0 20   /* 400 Hz */
#define LD_P_LAG1 133  /* 60 Hz */
#define LD_P_VOICED 0.6

static double mel(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }
static double mel_inv(double m) { return 700.0 * (exp(m / 1127.0) - 1.0); }

/* In-place iterative radix-2 FFT of LD_NFFT complex values. */
static void fft(double *re, double *im, const double *cos_t, const double *sin_t)
{
    for (int i = 1, j = 0; i < LD_NFFT; i++) {
        int bit = LD_NFFT >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j], re[j] = t;
            t = im[i];
            im[i] = im[j], im[j] = t;
        }
    }
    for (int len = 2; len <= LD_NFFT; len <<= 1) {
        int step = LD_NFFT / len;
        for (int i = 0; i < LD_NFFT; i += len)
            for (int k = 0; k < len / 2; k++) {
                double wr = cos_t[k * step], wi = -sin_t[k * step];
                int a = i + k, b = i + k + len / 2;
                double xr = re[b] * wr - im[b] * wi, xi = re[b] * wi + im[b] * wr;
                re[b] = re[a] - xr, im[b] = im[a] - xi;
                re[a] += xr, im[a] += xi;
            }
    }
}

typedef struct {
    double window[LD_WIN];
    double cos_t[LD_NFFT / 2], sin_t[LD_NFFT / 2];
    double fb[LD_MEL][LD_NFFT / 2 + 1];
    double dct[LD_DIARIZE_DIM][LD_MEL];
} front_end;

static void front_end_init(front_end *f, bool narrowband)
{
    for (int i = 0; i < LD_WIN; i++)
        f->window[i] = 0.54 - 0.46 * cos(2 * M_PI * i / (LD_WIN - 1));
    for (int k = 0; k < LD_NFFT / 2; k++) {
        f->cos_t[k] = cos(2 * M_PI * k / LD_NFFT);
        f->sin_t[k] = sin(2 * M_PI * k / LD_NFFT);
    }
    double lo = mel(100.0), hi = mel(narrowband ? 3800.0 : 7000.0);
    double edge[LD_MEL + 2];
    for (int m = 0; m < LD_MEL + 2; m++)
        edge[m] = mel_inv(lo + (hi - lo) * m / (LD_MEL + 1)) * LD_NFFT / 16000.0; /* in FFT bins */
    memset(f->fb, 0, sizeof f->fb);
    for (int m = 0; m < LD_MEL; m++)
        for (int k = 0; k <= LD_NFFT / 2; k++) {
            double w = 0;
            if (k > edge[m] && k <= edge[m + 1])
                w = (k - edge[m]) / (edge[m + 1] - edge[m]);
            else if (k > edge[m + 1] && k < edge[m + 2])
                w = (edge[m + 2] - k) / (edge[m + 2] - edge[m + 1]);
            f->fb[m][k] = w;
        }
    for (int c = 0; c < LD_DIARIZE_DIM; c++)
        for (int m = 0; m < LD_MEL; m++)
            f->dct[c][m] = cos(M_PI * (c + 1) * (m + 0.5) / LD_MEL);
}

/* log F0 of the frame whose 8 kHz window starts at x (0 = unvoiced). */
static float frame_pitch(const float *x)
{
    double e0 = 0;
    for (int i = 0; i < LD_P_WIN; i++)
        e0 += (double)x[i] * x[i];
    if (e0 < LD_P_WIN * 1000.0) /* below ~-60 dBFS: nothing to track */
        return 0;
    double r[LD_P_LAG1 + 2] = {0}, best = 0;
    double el = 0;
    for (int i = 0; i < LD_P_WIN; i++)
        el += (double)x[i + LD_P_LAG0] * x[i + LD_P_LAG0];
    for (int lag = LD_P_LAG0; lag <= LD_P_LAG1 + 1; lag++) {
        double c = 0;
        for (int i = 0; i < LD_P_WIN; i++)
            c += (double)x[i] * x[i + lag];
        r[lag] = el > 0 ? c / sqrt(e0 * el) : 0;
        if (lag <= LD_P_LAG1 && r[lag] > best)
            best = r[lag];
        el += (double)x[lag + LD_P_WIN] * x[lag + LD_P_WIN] - (double)x[lag] * x[lag];
    }
    if (best < LD_P_VOICED)
        return 0;
    for (int lag = LD_P_LAG0 + 1; lag <= LD_P_LAG1; lag++) /* first local peak near the best */
        if (r[lag] >= 0.85 * best && r[lag] >= r[lag - 1] && r[lag] >= r[lag + 1])
            return (float)log((double)LD_P_RATE / lag);
    return 0;
}

/* Fills feature slot LD_DIARIZE_DIM (log F0) of every frame. */
static bool add_pitch(const int16_t *pcm, size_t n, float *out, size_t frames)
{
    size_t m = n / 2, need = LD_P_WIN + LD_P_LAG1 + 2;
    float *d = calloc(m + need, sizeof *d); /* zero tail: the last windows read past the end */
    if (!d)
        return false;
    for (size_t i = 0; i < m; i++) { /* [1 2 1]/4 low-pass, then every other sample */
        double a = i ? pcm[2 * i - 1] : pcm[0];
        d[i] = (float)((a + 2.0 * pcm[2 * i] + pcm[2 * i + 1]) / 4.0);
    }
    for (size_t t = 0; t < frames; t++) {
        /* the 25 ms MFCC window is centred at t*160+200 (16 kHz); so is this one */
        size_t c = (t * LD_HOP + LD_WIN / 2) / 2, at = c > LD_P_WIN / 2 ? c - LD_P_WIN / 2 : 0;
        float mean = 0;
        float *x = d + at;
        float buf[LD_P_WIN + LD_P_LAG1 + 2];
        for (size_t i = 0; i < need; i++)
            mean += x[i];
        mean /= (float)need;
        for (size_t i = 0; i < need; i++)
            buf[i] = x[i] - mean;
        out[t * LD_DIARIZE_FEAT + LD_DIARIZE_DIM] = frame_pitch(buf);
    }
    free(d);
    return true;
}

float *ld_diarize_mfcc(const int16_t *pcm, size_t n, bool narrowband, size_t *n_frames)
{
    *n_frames = 0;
    if (n < LD_WIN)
        return NULL;
    size_t frames = (n - LD_WIN) / LD_HOP + 1;
    float *out = malloc(frames * LD_DIARIZE_FEAT * sizeof *out);
    front_end *f = malloc(sizeof *f);
    if (!out || !f) {
        free(out);
        free(f);
        return NULL;
    }
    front_end_init(f, narrowband);
    double re[LD_NFFT], im[LD_NFFT], logmel[LD_MEL];
    for (size_t t = 0; t < frames; t++) {
        const int16_t *x = pcm + t * LD_HOP;
        double prev = t ? x[-1] : x[0];
        for (int i = 0; i < LD_WIN; i++) {
            re[i] = ((double)x[i] - 0.97 * prev) * f->window[i];
            prev = x[i];
            im[i] = 0;
        }
        for (int i = LD_WIN; i < LD_NFFT; i++)
            re[i] = im[i] = 0;
        fft(re, im, f->cos_t, f->sin_t);
        double pow_spec[LD_NFFT / 2 + 1];
        for (int k = 0; k <= LD_NFFT / 2; k++)
            pow_spec[k] = re[k] * re[k] + im[k] * im[k];
        for (int m = 0; m < LD_MEL; m++) {
            double e = 0;
            for (int k = 0; k <= LD_NFFT / 2; k++)
                e += f->fb[m][k] * pow_spec[k];
            logmel[m] = log(e + 1.0); /* +1: digital silence stays finite */
        }
        float *o = out + t * LD_DIARIZE_FEAT;
        for (int c = 0; c < LD_DIARIZE_DIM; c++) {
            double s = 0;
            for (int m = 0; m < LD_MEL; m++)
                s += f->dct[c][m] * logmel[m];
            o[c] = (float)s;
        }
    }
    free(f);
    if (!add_pitch(pcm, n, out, frames)) {
        free(out);
        return NULL;
    }
    *n_frames = frames;
    return out;
}
