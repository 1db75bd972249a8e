/* Model packs: names and aliases, the built-in telephony transform, and that a
 * decoder switched to a pack and back decodes exactly as before (switching is
 * in place; results must not depend on the previous request's model). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/engine.h"
#include "asr/model.h"
#include "asr/packs.h"
#include "test.h"

#define GOFORWARD "/usr/share/pocketsphinx/test/data/goforward.raw"

static void test_names(void)
{
    CHECK(ld_pack_name_ok("callcenter") && ld_pack_name_ok("telephony") && ld_pack_name_ok("a_b-9"));
    CHECK(!ld_pack_name_ok("en") && !ld_pack_name_ok("auto") && !ld_pack_name_ok("general"));
    CHECK(!ld_pack_name_ok("Big") && !ld_pack_name_ok("9lives") && !ld_pack_name_ok("a b") &&
          !ld_pack_name_ok("abcdefghijklmnopqrstuvwxyz0123456"));
    CHECK_STR(ld_pack_alias("lightning"), "auto");
    CHECK_STR(ld_pack_alias("whisper-1"), "auto");
    CHECK_STR(ld_pack_alias("nova-3"), "auto");
    CHECK_STR(ld_pack_alias("nova-2-phonecall"), "telephony");
    CHECK_STR(ld_pack_alias("phonecall"), "telephony");
    CHECK_STR(ld_pack_alias("callcenter"), "callcenter");
}

static char *words(const ld_word *w, size_t n)
{
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    b[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(b + strlen(b), 1024 - strlen(b), "%s%s@%.2f/%.3f", i ? " " : "", w[i].word, w[i].start,
                 w[i].confidence);
    return b;
}

static char *decode(const ld_engine_ops *e, void *dec, const int16_t *pcm, size_t n)
{
    ld_word *w = NULL;
    size_t nw = 0;
    ld_error err = {0};
    CHECK(e->decode(dec, pcm, n, &w, &nw, &err) == LD_OK);
    char *s = words(w, nw);
    for (size_t i = 0; i < nw; i++)
        free(w[i].word);
    free(w);
    return s;
}

/* Sphinx MLLR text: `classes` × `streams` identity transforms of length `len`
 * (stream-major, as ps_mllr_read reads them), every value `fill` if not NULL. */
static char *mllr_text(int classes, int streams, int len, const char *fill)
{
    size_t cap = 64 + (size_t)classes * streams * (len + 2) * len * 8;
    char *t = malloc(cap), *p = t;
    p += sprintf(p, "%d\n%d\n", classes, streams);
    for (int s = 0; s < streams; s++) {
        p += sprintf(p, "%d\n", len);
        for (int c = 0; c < classes; c++)
            for (int r = 0; r < len + 2; r++, *p++ = '\n') /* A rows, then b, then h */
                for (int k = 0; k < len; k++)
                    p += sprintf(p, "%s ", fill ? fill : r < len ? (r == k ? "1" : "0") : r == len ? "0" : "1");
    }
    *p = 0;
    return t;
}

/* A transform must fit the model before PocketSphinx sees it: a mismatched one
 * crashed the decoder on first use, a huge header length aborted start-up. */
static void test_check_mllr(void)
{
    ld_mllr_shape en = {3, {13, 13, 13}};
    ld_error err = {0};
    struct {
        int classes, streams, len;
        const char *fill, *why;
    } bad[] = {
        {1, 1, 39, NULL, "1 feature streams; the model has 3"},
        {1, 3, 5, NULL, "stream 1 has vector length 5; the model's is 13"},
        {1, 4, 13, NULL, "4 feature streams"},
        {2, 3, 13, NULL, "2 classes"},
        {1, 3, 13, "nan", "matrix A holds nan"},
        {1, 3, 13, "inf", "matrix A holds inf"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *t = mllr_text(bad[i].classes, bad[i].streams, bad[i].len, bad[i].fill);
        CHECK(ld_pack_check_mllr(t, &en, &err) == LD_ERR_INVALID_PARAMETER);
        CHECK(strstr(err.msg, bad[i].why) != NULL);
        free(t);
    }
    char *ok = mllr_text(1, 3, 13, NULL);
    CHECK(ld_pack_check_mllr(ok, &en, &err) == LD_OK);
    CHECK(ld_pack_check_mllr(ok, NULL, &err) == LD_OK);
    ok[strlen(ok) - 3] = 0; /* the last h value cut */
    CHECK(ld_pack_check_mllr(ok, &en, &err) == LD_ERR_INVALID_PARAMETER && strstr(err.msg, "12 of its 13"));
    free(ok);
    /* the header alone is refused before anything is read by it */
    CHECK(ld_pack_check_mllr("1\n3\n100000\n1.0 0.0\n", &en, &err) == LD_ERR_INVALID_PARAMETER &&
          strstr(err.msg, "no vector length from 1 to"));
    CHECK(ld_pack_check_mllr("1\n3\n100000\n1.0 0.0\n", NULL, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_pack_check_mllr("", &en, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_pack_check_mllr("1 3 13 x", &en, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_pack_check_mllr(ld_packs_builtin[0].mllr, &en, &err) == LD_OK);
    char *zero_h = mllr_text(1, 3, 13, NULL);
    zero_h[strlen(zero_h) - 3] = '0'; /* a variance scale of 0 */
    CHECK(ld_pack_check_mllr(zero_h, &en, &err) == LD_ERR_INVALID_PARAMETER && strstr(err.msg, "variance scale"));
    free(zero_h);
}

int main(void)
{
    test_names();
    test_check_mllr();
    const ld_engine_ops *e = &ld_engine_pocketsphinx;
    ld_error err = {0};
    ld_engine_model m = {"en", LD_MODEL_DEFAULT_DIR, NULL};
    CHECK(e->transform_new(&m, "not a transform", NULL, &err) == NULL && err.code == LD_ERR_INVALID_PARAMETER);
    float cmn[13] = {40};
    CHECK(ld_packs_builtin_count >= 1 && !strcmp(ld_packs_builtin[0].name, "telephony"));
    void *tel = e->transform_new(&m, ld_packs_builtin[0].mllr, cmn, &err);
    CHECK(tel != NULL);

    FILE *f = fopen(GOFORWARD, "rb");
    static int16_t go[16000 * 4];
    size_t n = f ? fread(go, 2, sizeof go / 2, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 16000);
    void *dec = e->decoder_new(&m, &err);
    CHECK(dec != NULL);
    if (dec && tel && n) {
        char *general = decode(e, dec, go, n);
        CHECK(strstr(general, "forward") != NULL);
        CHECK(e->decoder_use(dec, tel, &err) == LD_OK);
        char *adapted = decode(e, dec, go, n);
        fprintf(stderr, "general:   %s\ntelephony: %s\n", general, adapted);
        CHECK(strcmp(general, adapted) != 0);           /* the transform changes the scores */
        CHECK(e->decoder_use(dec, tel, &err) == LD_OK); /* same one again: no-op */
        CHECK_STR(decode(e, dec, go, n), adapted);
        CHECK(e->decoder_use(dec, NULL, &err) == LD_OK);
        CHECK_STR(decode(e, dec, go, n), general); /* back to the model as it is, exactly */
    }
    e->decoder_free(dec);
    e->transform_free(tel);
    TEST_MAIN_END();
}
