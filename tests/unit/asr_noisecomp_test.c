/* Noise compensation math on Debian's en-us means: with negligible noise the
 * transform is the identity but for the mean shift spectral subtraction makes;
 * with strong noise it lifts quiet Gaussians and shrinks the deltas; too few
 * frames give none; the text has the layout ps_mllr_read expects. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/model.h"
#include "asr/noisecomp.h"
#include "test.h"

#define NF 25
#define T 200

/* T frames of cepstra (DCT-II, lifter 22) from log-mel frames: the first tenth
 * at `quiet` in every band, the rest `loud` plus a slope that varies per frame. */
static void frames(float *cep, double quiet, double loud)
{
    for (int t = 0; t < T; t++) {
        double lm[NF];
        for (int j = 0; j < NF; j++)
            lm[j] = t < T / 10 ? quiet : loud + (j - 12) * 0.1 * ((t % 7) - 3) + ((t * 13 + j * 5) % 11) * 0.05;
        for (int i = 0; i < 13; i++) {
            double s = 0;
            for (int j = 0; j < NF; j++)
                s += lm[j] * (i ? sqrt(2.0 / NF) * cos(M_PI * i * (j + 0.5) / NF) : sqrt(1.0 / NF));
            cep[t * 13 + i] = (float)(s * (1 + 11 * sin(M_PI * i / 22)));
        }
    }
}

/* Reads the 590 numbers of a 1-class, 3-stream, 13-dimensional transform. */
static int parse(const char *text, double *v)
{
    int n = 0;
    char *end;
    for (const char *p = text; n < 600; p = end) {
        double x = strtod(p, &end);
        if (end == p)
            break;
        v[n++] = x;
    }
    return n;
}

/* stream s (0..2): A at v + 2 + s*196 + 1, b after its 169, h after b */
static double A(const double *v, int s, int r, int c) { return v[2 + s * 196 + 1 + r * 13 + c]; }
static double B(const double *v, int s, int r) { return v[2 + s * 196 + 1 + 169 + r]; }

int main(void)
{
    ld_error err = {0};
    char means[1100];
    snprintf(means, sizeof means, "%s/en-us/means", LD_MODEL_DEFAULT_DIR);
    CHECK(ld_noisecomp_load("/nonexistent/means", NF, 22, &err) == NULL && err.msg[0]);
    CHECK(ld_noisecomp_load(means, 200, 22, &err) == NULL);
    ld_noisecomp *nc = ld_noisecomp_load(means, NF, 22, &err);
    CHECK(nc != NULL);
    if (!nc) {
        fprintf(stderr, "%s\n", err.msg);
        TEST_MAIN_END();
    }
    static float cep[T * 13];
    static double v[600];
    char *text = NULL;

    /* too short: no transform */
    frames(cep, -30, 15);
    CHECK(ld_noisecomp_mllr(nc, cep, LD_NOISECOMP_MIN_FRAMES - 1, &text, &err) == LD_OK && text == NULL);

    /* negligible noise: A = I, deltas I, b only in c0: the quiet tenth is
     * subtracted to the floor (log 0.1 in every band), so the clean mean is lower
     * by 0.1 * log(0.1) per band, i.e. 5 times that in c0 */
    CHECK(ld_noisecomp_mllr(nc, cep, T, &text, &err) == LD_OK && text != NULL);
    if (text) {
        CHECK(!strncmp(text, "1\n3\n13\n", 7));
        CHECK(parse(text, v) == 590);
        double worst = 0;
        for (int s = 0; s < 3; s++)
            for (int r = 0; r < 13; r++)
                for (int c = 0; c < 13; c++)
                    worst = fmax(worst, fabs(A(v, s, r, c) - (r == c)));
        CHECK(worst < 2e-3);
        CHECK_NEAR(B(v, 0, 0), 5 * 0.1 * log(0.1), 0.01);
        for (int r = 1; r < 13; r++)
            CHECK_NEAR(B(v, 0, r), 0, 0.01);
        fprintf(stderr, "clean: |A - I| <= %.2g, b0 %.3f\n", worst, B(v, 0, 0));
        free(text);
        text = NULL;
    }

    /* strong noise (quiet frames only 2 log units under speech): quiet Gaussians
     * rise, and the deltas shrink (every diagonal gain in (0, 1)) */
    frames(cep, 8, 10);
    CHECK(ld_noisecomp_mllr(nc, cep, T, &text, &err) == LD_OK && text != NULL);
    if (text) {
        CHECK(parse(text, v) == 590);
        double tr = 0;
        for (int r = 0; r < 13; r++) {
            CHECK(A(v, 1, r, r) > 0 && A(v, 1, r, r) < 1);
            CHECK(A(v, 2, r, r) == A(v, 1, r, r));
            tr += A(v, 1, r, r);
        }
        /* c0 of a Gaussian 20 below the mean moves up; of one at the mean, less */
        double low = A(v, 0, 0, 0) * -20 + B(v, 0, 0), mid = B(v, 0, 0);
        CHECK(low - -20 > mid - 0);
        fprintf(stderr, "noisy: delta gain trace %.2f, c0 -20 -> %.2f, 0 -> %.2f\n", tr, low, mid);
        free(text);
    }
    ld_noisecomp_free(nc);
    TEST_MAIN_END();
}
