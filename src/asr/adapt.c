/* Adaptation helpers (asr/adapt.h). */
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/adapt.h"

static int32_t swap32(int32_t v)
{
    uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 24) | ((u >> 8) & 0xff00) | ((u << 8) & 0xff0000) | (u << 24));
}

ld_err ld_adapt_write_mixw(const char *sendump, const char *out, ld_error *err)
{
    FILE *f = fopen(sendump, "rb");
    if (!f)
        return ld_error_set(err, LD_ERR_INTERNAL, "cannot read %s", sendump);
    int32_t n;
    char buf[1024];
    bool ok = true;
    /* header: length-prefixed strings until a zero length */
    while (ok && fread(&n, 4, 1, f) == 1 && n != 0)
        ok = n > 0 && n < (int32_t)sizeof buf && fread(buf, 1, (size_t)n, f) == (size_t)n;
    int32_t rows = 0, cols = 0; /* codewords, senones */
    ok = ok && fread(&rows, 4, 1, f) == 1 && fread(&cols, 4, 1, f) == 1 && rows > 0 && rows <= 256 && cols > 0 &&
         cols < 1000000;
    const int nfeat = 3;
    size_t total = ok ? (size_t)nfeat * (size_t)rows * (size_t)cols : 0;
    uint8_t *q = ok ? malloc(total) : NULL;
    ok = q && fread(q, 1, total, f) == total;
    fclose(f);
    if (!ok) {
        free(q);
        return ld_error_set(err, LD_ERR_INTERNAL, "%s: not a sendump file of 3 features", sendump);
    }
    float *w = malloc(total * sizeof *w);
    FILE *o = w ? fopen(out, "wb") : NULL;
    if (!o) {
        free(q), free(w);
        return ld_error_set(err, LD_ERR_INTERNAL, "cannot write %s", out);
    }
    const double ln_base = log(1.0001);
    for (int32_t s = 0; s < cols; s++)
        for (int ft = 0; ft < nfeat; ft++) {
            float *row = w + ((size_t)s * nfeat + (size_t)ft) * (size_t)rows;
            double sum = 0;
            for (int32_t d = 0; d < rows; d++) {
                uint8_t v = q[((size_t)ft * (size_t)rows + (size_t)d) * (size_t)cols + (size_t)s];
                row[d] = (float)exp(-(double)(v << 10) * ln_base);
                sum += row[d];
            }
            for (int32_t d = 0; d < rows; d++)
                row[d] = sum > 0 ? (float)(row[d] / sum) : 1.0f / (float)rows;
        }
    int32_t hdr[5] = {0x11223344, cols, nfeat, rows, (int32_t)total};
    ok = fputs("s3\nversion 1.0\nendhdr\n", o) >= 0 && fwrite(hdr, 4, 5, o) == 5 &&
         fwrite(w, sizeof *w, total, o) == total;
    ok = (fclose(o) == 0) && ok;
    free(q), free(w);
    return ok ? LD_OK : ld_error_set(err, LD_ERR_INTERNAL, "cannot write %s", out);
}

ld_err ld_adapt_mfc_sum(const char *path, double sum[13], size_t *frames, ld_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ld_error_set(err, LD_ERR_INTERNAL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    int32_t n = 0;
    bool ok = fread(&n, 4, 1, f) == 1;
    bool swap = ok && (long)n * 4 + 4 != size;
    if (swap)
        n = swap32(n);
    ok = ok && (long)n * 4 + 4 == size && n % 13 == 0;
    for (int32_t i = 0; ok && i < n / 13; i++) {
        int32_t v[13];
        ok = fread(v, 4, 13, f) == 13;
        for (int k = 0; ok && k < 13; k++) {
            int32_t x = swap ? swap32(v[k]) : v[k];
            float fv;
            memcpy(&fv, &x, 4);
            sum[k] += fv;
        }
        if (ok)
            (*frames)++;
    }
    fclose(f);
    return ok ? LD_OK : ld_error_set(err, LD_ERR_INTERNAL, "%s: not a cepstrum file", path);
}

/* Letters, digits, apostrophes and every byte of a UTF-8 sequence: "café" is
 * one word (a dictionary may lack it, but it must be named as written, not as
 * "caf"). Case folding is ASCII only, so the sequences stay intact. */
static bool word_byte(char c) { return isalnum((unsigned char)c) || c == '\'' || (unsigned char)c >= 0x80; }

size_t ld_adapt_words(const char *text, char **words, size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p && n < max) {
        while (*p && !word_byte(*p))
            p++;
        const char *s = p;
        while (*p && word_byte(*p))
            p++;
        if (p == s)
            continue;
        char *w = strndup(s, (size_t)(p - s));
        if (!w)
            break;
        for (char *c = w; *c; c++)
            if ((unsigned char)*c < 0x80)
                *c = (char)tolower((unsigned char)*c);
        words[n++] = w;
    }
    return n;
}

size_t ld_adapt_edits(char *const *ref, size_t nr, char *const *hyp, size_t nh)
{
    size_t *d = malloc((nh + 1) * sizeof *d);
    if (!d)
        return nr > nh ? nr : nh;
    for (size_t j = 0; j <= nh; j++)
        d[j] = j;
    for (size_t i = 1; i <= nr; i++) {
        size_t prev = d[0];
        d[0] = i;
        for (size_t j = 1; j <= nh; j++) {
            size_t sub = prev + (strcmp(ref[i - 1], hyp[j - 1]) != 0);
            size_t best = d[j] + 1 < d[j - 1] + 1 ? d[j] + 1 : d[j - 1] + 1;
            prev = d[j];
            d[j] = best < sub ? best : sub;
        }
    }
    size_t r = d[nh];
    free(d);
    return r;
}
