/* Model packs: names and aliases, the built-in telephony transform, and that a
 * decoder switched to a pack and back decodes exactly as before (switching is
 * in place; results must not depend on the previous request's model). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
    test_names();
    const ld_engine_ops *e = &ld_engine_pocketsphinx;
    ld_error err = {0};
    CHECK(e->transform_new("not a transform", NULL, &err) == NULL && err.code == LD_ERR_INTERNAL);
    float cmn[13] = {40};
    CHECK(ld_packs_builtin_count >= 1 && !strcmp(ld_packs_builtin[0].name, "telephony"));
    void *tel = e->transform_new(ld_packs_builtin[0].mllr, cmn, &err);
    CHECK(tel != NULL);

    FILE *f = fopen(GOFORWARD, "rb");
    static int16_t go[16000 * 4];
    size_t n = f ? fread(go, 2, sizeof go / 2, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 16000);
    ld_engine_model m = {"en", LD_MODEL_DEFAULT_DIR, NULL};
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
