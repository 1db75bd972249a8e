/* The diarizer's front end (asr/diarize.h): MFCCs computed here rather than
 * taken from PocketSphinx, because the decoders run on other threads, per
 * segment and with live CMN, while diarization wants one plain feature stream
 * of the whole recording. Pre-emphasis 0.97, 25 ms Hamming window, 10 ms hop,
 * 512-point FFT, LD_MEL triangular mel filters, log, DCT-II; c0 (loudness) is
 * left out so clustering follows voices, not levels. About 1 ms of CPU per
 * second of audio. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"

#define LD_WIN 400 /* 25 ms at 16 kHz */
#define LD_HOP 160 /* 10 ms */
#define LD_NFFT 512
#define LD_MEL 30

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

float *ld_diarize_mfcc(const int16_t *pcm, size_t n, bool narrowband, size_t *n_frames)
{
    *n_frames = 0;
    if (n < LD_WIN)
        return NULL;
    size_t frames = (n - LD_WIN) / LD_HOP + 1;
    float *out = malloc(frames * LD_DIARIZE_DIM * sizeof *out);
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
        float *o = out + t * LD_DIARIZE_DIM;
        for (int c = 0; c < LD_DIARIZE_DIM; c++) {
            double s = 0;
            for (int m = 0; m < LD_MEL; m++)
                s += f->dct[c][m] * logmel[m];
            o[c] = (float)s;
        }
    }
    free(f);
    *n_frames = frames;
    return out;
}
