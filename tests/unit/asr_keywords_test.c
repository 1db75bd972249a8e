/* Keywords on a real PocketSphinx decoder (engine decoder_vocab,
 * asr/engine_ps_vocab.c): a model folder whose dictionary lacks "forward"
 * decodes goforward.raw without it; with the keyword it is found (letter-to-sound
 * pronunciation, the big LM's probabilities); back without keywords the result
 * is exactly the first one. Switching many times in a row is the pattern that
 * crashed the LM when words were added to it (ngram_model_add_word), so it is
 * repeated here; streams map keywords back in partials and finals too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asr/engine.h"
#include "asr/model.h"
#include "asr/vocab.h"
#include "test.h"

#define GOFORWARD "/usr/share/pocketsphinx/test/data/goforward.raw"

static char dir[256];

static void cleanup(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* dir/en: Debian's acoustic model and LM, a dictionary without "forward". */
static const char *model_without_forward(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ld-kw-test-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        return NULL;
    atexit(cleanup);
    static char en[300], p[400];
    snprintf(en, sizeof en, "%s/en", dir);
    mkdir(en, 0700);
    snprintf(p, sizeof p, "%s/acoustic", en);
    if (symlink(LD_MODEL_DEFAULT_DIR "/en-us", p))
        return NULL;
    snprintf(p, sizeof p, "%s/en-us.lm.bin", en);
    if (symlink(LD_MODEL_DEFAULT_DIR "/en-us.lm.bin", p))
        return NULL;
    snprintf(p, sizeof p, "%s/en-us.dict", en);
    FILE *in = fopen(LD_MODEL_DEFAULT_DIR "/cmudict-en-us.dict", "r"), *out = fopen(p, "w");
    char line[512];
    while (in && out && fgets(line, sizeof line, in))
        if (strncmp(line, "forward ", 8) && strncmp(line, "forward(", 8))
            fputs(line, out);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return en;
}

static int16_t *read_raw(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f) / 2;
    rewind(f);
    int16_t *pcm = malloc(*n * 2);
    if (pcm && fread(pcm, 2, *n, f) != *n) {
        free(pcm);
        pcm = NULL;
    }
    fclose(f);
    return pcm;
}

/* Decodes and returns the words joined (static buffer) and their confidence sum. */
static const char *decode(const ld_engine_ops *ops, void *dec, const int16_t *pcm, size_t n, double *conf)
{
    static char buf[1024];
    ld_word *w = NULL;
    size_t nw = 0;
    ld_error e = {0};
    buf[0] = 0;
    *conf = 0;
    if (ops->decode(dec, pcm, n, &w, &nw, &e) != LD_OK)
        return "(failed)";
    for (size_t i = 0; i < nw; i++) {
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", w[i].word);
        *conf += w[i].confidence;
    }
    ld_words_free(w, nw);
    return buf;
}

int main(void)
{
    const ld_engine_ops *ops = &ld_engine_pocketsphinx;
    const char *en = model_without_forward();
    size_t n = 0;
    int16_t *pcm = read_raw(GOFORWARD, &n);
    CHECK(en && pcm);
    if (!en || !pcm)
        TEST_MAIN_END();
    ld_error e = {0};
    ld_engine_model m = {"en", en, NULL};
    void *dec = ops->decoder_new(&m, &e);
    CHECK(dec != NULL);
    if (!dec)
        TEST_MAIN_END();

    double c0, c;
    char plain[1024];
    snprintf(plain, sizeof plain, "%s", decode(ops, dec, pcm, n, &c0));
    CHECK(strstr(plain, "forward ") == NULL && strstr(plain, "ten meters"));

    CHECK(ops->decoder_vocab(dec, "forward:1", &e) == LD_OK);
    CHECK_STR(decode(ops, dec, pcm, n, &c), "go forward ten meters");
    CHECK(ops->decoder_vocab(dec, "", &e) == LD_OK);
    CHECK_STR(decode(ops, dec, pcm, n, &c), plain);
    CHECK(c == c0); /* exactly as before: nothing of the keyword list is left */

    /* many switches in a row, words the LM does not know among them */
    const char *lists[] = {
        "forward:2 kubernetes:3", "meters:5", "forward:10", "zyxwv:4 forward:1", "listend:2", "forward:3", "",
        "forward:1 qwerty:9"};
    for (int round = 0; round < 1; round++)
        for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
            CHECK(ops->decoder_vocab(dec, lists[i], &e) == LD_OK);
            const char *got = decode(ops, dec, pcm, n, &c);
            if (strstr(lists[i], "forward"))
                CHECK(strstr(got, "forward ten") != NULL);
            else
                CHECK(strstr(got, "forward ") == NULL);
            CHECK(strstr(got, "__kw") == NULL && strstr(got, "kubernetes") == NULL &&
                  strstr(got, "qwerty") == NULL);
        }
    CHECK(ops->decoder_vocab(dec, "", &e) == LD_OK);
    CHECK_STR(decode(ops, dec, pcm, n, &c), plain);
    CHECK(c == c0);

    /* a stream: the keyword in partials and in the final */
    CHECK(ops->decoder_vocab(dec, "forward", &e) == LD_OK);
    CHECK(ops->stream_start(dec, &e) == LD_OK);
    bool partial_seen = false;
    for (size_t off = 0; off < n; off += 1600) {
        size_t k = n - off < 1600 ? n - off : 1600;
        CHECK(ops->stream_feed(dec, pcm + off, k, &e) == LD_OK);
        char *p = ops->stream_partial(dec);
        CHECK(p && !strstr(p, "__kw"));
        partial_seen |= p && strstr(p, "forward") != NULL;
        free(p);
    }
    ld_word *w = NULL;
    size_t nw = 0;
    CHECK(ops->stream_end(dec, &w, &nw, &e) == LD_OK);
    bool final_has = false;
    for (size_t i = 0; i < nw; i++)
        final_has |= !strcmp(w[i].word, "forward");
    ld_words_free(w, nw);
    CHECK(partial_seen && final_has);
    /* a stream abandoned mid-utterance (client gone): the next list still applies */
    CHECK(ops->stream_start(dec, &e) == LD_OK);
    CHECK(ops->stream_feed(dec, pcm, n / 2, &e) == LD_OK);
    CHECK(ops->decoder_vocab(dec, "", &e) == LD_OK);
    const char *after = decode(ops, dec, pcm, n, &c); /* live CMN now: not bit-identical, but no keyword */
    CHECK(strstr(after, "forward ") == NULL && strstr(after, "ten meters"));

    /* operator vocabulary: every decode has the word, without keywords */
    ld_vocab v = {0};
    ld_vocab_entry ent[2] = {{.word = "forward", .boost = 1, .pron = "F AO R W ER D"},
                             {.word = "meters", .boost = 2, .pron = "M IY T ER Z"}}; /* a known word, own pron */
    v.e = ent;
    v.n = 2;
    ld_engine_model mv = {"en", en, &v};
    void *dec2 = ops->decoder_new(&mv, &e);
    CHECK(dec2 != NULL);
    if (dec2) {
        CHECK_STR(decode(ops, dec2, pcm, n, &c), "go forward ten meters");
        CHECK(ops->decoder_vocab(dec2, "meters:2", &e) == LD_OK);
        CHECK_STR(decode(ops, dec2, pcm, n, &c), "go forward ten meters");
        ops->decoder_free(dec2);
    }
    ops->decoder_free(dec);
    free(pcm);
    TEST_MAIN_END();
}
