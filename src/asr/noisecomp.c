/* Predictive MLLR from a segment's noise; see noisecomp.h. Measured outside the
 * server first (pocketsphinx_batch, docs/engine.md); this is the same math. */
#include "asr/noisecomp.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CEP 13
#define MAX_FILT 64
#define SS_FLOOR 0.1   /* spectral subtraction keeps at least this share of a band */
#define NOISE_SHARE 10 /* the quietest 1/10 of the frames are the noise */

struct ld_noisecomp {
    size_t n;  /* static Gaussians */
    float *mu; /* n x CEP */
    int nfilt;
    double cl[CEP][MAX_FILT];      /* log-mel -> liftered cepstrum */
    double cli[MAX_FILT][CEP];     /* its inverse on the 13 kept dimensions */
    double gram[CEP + 1][CEP + 1]; /* sum of [mu 1][mu 1]^T: the fit's left side */
};

/* Sphinx-3 binary parameter file: text header up to "endhdr\n", a byte-order
 * word, then n_mgau, n_feat, n_density, veclen[n_feat], the float count, floats. */
static float *read_means(const char *path, size_t *n_out, ld_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ld_error_set(err, LD_ERR_INTERNAL, "noise compensation: cannot open %s", path);
        return NULL;
    }
    char line[256];
    bool hdr = false;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "endhdr")) { /* padded with spaces to align the binary part */
            hdr = true;
            break;
        }
    uint32_t magic = 0;
    int32_t dims[3] = {0}, vl[3] = {0}, total = 0;
    bool ok = hdr && fread(&magic, 4, 1, f) == 1 && magic == 0x11223344u && fread(dims, 4, 3, f) == 3 &&
              dims[1] == 3 && dims[0] > 0 && dims[0] < 100000 && dims[2] > 0 && dims[2] < 100000 &&
              fread(vl, 4, 3, f) == 3 && vl[0] == CEP && vl[1] == CEP && vl[2] == CEP &&
              fread(&total, 4, 1, f) == 1 && (int64_t)total == (int64_t)dims[0] * 3 * dims[2] * CEP;
    float *all = ok ? malloc((size_t)total * sizeof *all) : NULL;
    ok = all && fread(all, sizeof *all, (size_t)total, f) == (size_t)total;
    fclose(f);
    if (!ok) {
        free(all);
        ld_error_set(err, LD_ERR_INTERNAL, "noise compensation: %s is not a 3 x 13 stream means file", path);
        return NULL;
    }
    /* keep stream 0 (the statics) of every codebook */
    size_t per = (size_t)dims[2] * CEP, n = (size_t)dims[0] * (size_t)dims[2];
    for (int32_t g = 0; g < dims[0]; g++)
        memmove(all + (size_t)g * per, all + (size_t)g * 3 * per, per * sizeof *all);
    *n_out = n;
    return all;
}

ld_noisecomp *ld_noisecomp_load(const char *means_path, int nfilt, int lifter, ld_error *err)
{
    if (nfilt < CEP || nfilt > MAX_FILT) {
        ld_error_set(err, LD_ERR_INTERNAL, "noise compensation: %d filters not supported", nfilt);
        return NULL;
    }
    ld_noisecomp *nc = calloc(1, sizeof *nc);
    if (!nc) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (!(nc->mu = read_means(means_path, &nc->n, err))) {
        free(nc);
        return NULL;
    }
    nc->nfilt = nfilt;
    /* sphinxbase's DCT-II (fe_dct2): orthonormal rows, so the transpose inverts
     * it on the kept dimensions; then the sine lifter (fe_lifter). */
    for (int i = 0; i < CEP; i++) {
        double lf = lifter > 0 ? 1.0 + lifter / 2.0 * sin(M_PI * i / lifter) : 1.0;
        for (int j = 0; j < nfilt; j++) {
            double c = i ? sqrt(2.0 / nfilt) * cos(M_PI * i * (j + 0.5) / nfilt) : sqrt(1.0 / nfilt);
            nc->cl[i][j] = lf * c;
            nc->cli[j][i] = c / lf;
        }
    }
    for (size_t k = 0; k < nc->n; k++) {
        double d[CEP + 1];
        for (int i = 0; i < CEP; i++)
            d[i] = nc->mu[k * CEP + i];
        d[CEP] = 1;
        for (int a = 0; a <= CEP; a++)
            for (int b = 0; b <= CEP; b++)
                nc->gram[a][b] += d[a] * d[b];
    }
    return nc;
}

void ld_noisecomp_free(ld_noisecomp *nc)
{
    if (nc)
        free(nc->mu);
    free(nc);
}

static int by_c0(const void *a, const void *b)
{
    double x = **(const double *const *)a, y = **(const double *const *)b;
    return x < y ? -1 : x > y;
}

/* Solves g w = r for 13 right-hand sides (Gauss-Jordan, partial pivoting). */
static bool solve(double g[CEP + 1][CEP + 1], double r[CEP + 1][CEP])
{
    for (int c = 0; c <= CEP; c++) {
        int p = c;
        for (int i = c + 1; i <= CEP; i++)
            if (fabs(g[i][c]) > fabs(g[p][c]))
                p = i;
        if (fabs(g[p][c]) < 1e-12)
            return false;
        for (int j = 0; j <= CEP; j++) {
            double t = g[c][j];
            g[c][j] = g[p][j], g[p][j] = t;
        }
        for (int j = 0; j < CEP; j++) {
            double t = r[c][j];
            r[c][j] = r[p][j], r[p][j] = t;
        }
        for (int i = 0; i <= CEP; i++) {
            if (i == c || g[i][c] == 0)
                continue;
            double f = g[i][c] / g[c][c];
            for (int j = 0; j <= CEP; j++)
                g[i][j] -= f * g[c][j];
            for (int j = 0; j < CEP; j++)
                r[i][j] -= f * r[c][j];
        }
    }
    for (int c = 0; c <= CEP; c++)
        for (int j = 0; j < CEP; j++)
            r[c][j] /= g[c][c];
    return true;
}

static void put_matrix(char **p, const double m[CEP][CEP])
{
    for (int r = 0; r < CEP; r++, *(*p)++ = '\n')
        for (int c = 0; c < CEP; c++)
            *p += sprintf(*p, "%.6f ", m[r][c]);
}

static void put_vector(char **p, const double *v)
{
    for (int c = 0; c < CEP; c++)
        *p += sprintf(*p, "%.6f ", v[c]);
    *(*p)++ = '\n';
}

ld_err ld_noisecomp_mllr(const ld_noisecomp *nc, const float *cep, size_t n_frames, char **text, ld_error *err)
{
    *text = NULL;
    if (n_frames < LD_NOISECOMP_MIN_FRAMES)
        return LD_OK;
    const int nf = nc->nfilt;
    size_t T = n_frames;
    double *ylog = malloc(T * (size_t)nf * sizeof *ylog), **order = malloc(T * sizeof *order),
           *c0 = malloc(T * sizeof *c0);
    char *out = malloc(3 * (CEP * CEP + 2 * CEP + 4) * 16 + 16);
    if (!ylog || !order || !c0 || !out) {
        free(ylog), free(order), free(c0), free(out);
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    }
    double my[CEP] = {0};
    for (size_t t = 0; t < T; t++) {
        const float *c = cep + t * CEP;
        for (int i = 0; i < CEP; i++)
            my[i] += c[i] / (double)T;
        for (int j = 0; j < nf; j++) {
            double s = 0;
            for (int i = 0; i < CEP; i++)
                s += nc->cli[j][i] * c[i];
            ylog[t * (size_t)nf + (size_t)j] = s;
        }
        c0[t] = c[0];
        order[t] = &c0[t];
    }
    qsort(order, T, sizeof *order, by_c0);
    size_t k = T / NOISE_SHARE > 5 ? T / NOISE_SHARE : 5;
    double noise[MAX_FILT], mxlog[MAX_FILT] = {0}, gain[MAX_FILT] = {0}, mx[CEP];
    for (int j = 0; j < nf; j++) {
        double s = 0;
        for (size_t q = 0; q < k; q++)
            s += exp(ylog[(size_t)(order[q] - c0) * (size_t)nf + (size_t)j]);
        noise[j] = log(s / (double)k);
    }
    /* the clean mean by spectral subtraction, and the clean-to-noisy band gain
     * over the louder half (where the deltas that matter are) */
    double median = *order[T / 2];
    size_t loud = 0;
    for (size_t t = 0; t < T; t++) {
        bool is_loud = c0[t] >= median;
        loud += is_loud;
        for (int j = 0; j < nf; j++) {
            double y = ylog[t * (size_t)nf + (size_t)j], ey = exp(y), d = ey - exp(noise[j]);
            double x = log(d > SS_FLOOR * ey ? d : SS_FLOOR * ey);
            mxlog[j] += x / (double)T;
            if (is_loud)
                gain[j] += exp(x - y);
        }
    }
    for (int j = 0; j < nf; j++)
        gain[j] /= (double)(loud ? loud : 1);
    for (int i = 0; i < CEP; i++) {
        mx[i] = 0;
        for (int j = 0; j < nf; j++)
            mx[i] += nc->cl[i][j] * mxlog[j];
    }
    /* every static mean through the log-add, then one least-squares affine fit */
    double rhs[CEP + 1][CEP] = {{0}};
    for (size_t g = 0; g < nc->n; g++) {
        const float *mu = nc->mu + g * CEP;
        double y[MAX_FILT], yh[CEP];
        for (int j = 0; j < nf; j++) {
            double x = 0;
            for (int i = 0; i < CEP; i++)
                x += nc->cli[j][i] * (mu[i] + mx[i]);
            double hi = x > noise[j] ? x : noise[j], lo = x > noise[j] ? noise[j] : x;
            y[j] = hi + log1p(exp(lo - hi));
        }
        for (int i = 0; i < CEP; i++) {
            yh[i] = -my[i];
            for (int j = 0; j < nf; j++)
                yh[i] += nc->cl[i][j] * y[j];
        }
        for (int a = 0; a < CEP; a++)
            for (int i = 0; i < CEP; i++)
                rhs[a][i] += mu[a] * yh[i];
        for (int i = 0; i < CEP; i++)
            rhs[CEP][i] += yh[i];
    }
    double gram[CEP + 1][CEP + 1];
    memcpy(gram, nc->gram, sizeof gram);
    bool solved = solve(gram, rhs);
    free(ylog), free(order), free(c0);
    if (!solved) {
        free(out);
        return LD_OK; /* degenerate means: leave the model as it is */
    }
    double a[CEP][CEP], b[CEP], ad[CEP][CEP], zero[CEP] = {0}, one[CEP];
    for (int r = 0; r < CEP; r++) {
        for (int c = 0; c < CEP; c++) {
            a[r][c] = rhs[c][r];
            ad[r][c] = 0;
            for (int j = 0; j < nf; j++)
                ad[r][c] += nc->cl[r][j] * gain[j] * nc->cli[j][c];
        }
        b[r] = rhs[CEP][r];
        one[r] = 1;
    }
    /* bounded numbers only (16 characters each in `out`); anything else means
     * a degenerate segment, which keeps the model as it is */
    for (int r = 0; r < CEP; r++)
        for (int c = 0; c <= CEP; c++) {
            double v = c < CEP ? a[r][c] : b[r], w = c < CEP ? ad[r][c] : 0;
            if (!(fabs(v) < 1e4) || !(fabs(w) < 1e4)) {
                free(out);
                return LD_OK;
            }
        }
    char *p = out;
    p += sprintf(p, "1\n3\n");
    for (int s = 0; s < 3; s++) {
        p += sprintf(p, "%d\n", CEP);
        put_matrix(&p, s ? ad : a);
        put_vector(&p, s ? zero : b);
        put_vector(&p, one);
    }
    *p = 0;
    *text = out;
    return LD_OK;
}
