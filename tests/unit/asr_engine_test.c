/* PocketSphinx engine: real decoding of goforward.raw, history independence of
 * batch decodes, word cleaning, confidences and the streaming functions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/engine.h"
#include "asr/model.h"
#include "test.h"

#define GOFORWARD "/usr/share/pocketsphinx/test/data/goforward.raw"
#define OTHER_CLIP LD_SHARED_DIR "/eval/real/ps_librivox_sns01_0880.wav"
#define READER_CLIP(id) LD_SHARED_DIR "/eval/real/ps_librivox_sns01_" id ".wav"

static int16_t *read_pcm(const char *path, size_t skip, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, (long)skip, SEEK_SET);
    *n = (size_t)(len - (long)skip) / 2;
    int16_t *p = malloc(*n * 2 + 2);
    if (p && fread(p, 2, *n, f) != *n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* A canonical WAV: "data" tag at byte 36, PCM from byte 44 (checked, not assumed). */
static int16_t *read_wav(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char hdr[44];
    bool ok = f && fread(hdr, 1, 44, f) == 44 && !memcmp(hdr, "RIFF", 4) && !memcmp(hdr + 36, "data", 4);
    if (f)
        fclose(f);
    return ok ? read_pcm(path, 44, n) : NULL;
}

static char *join(const ld_word *w, size_t n)
{
    static char buf[4096];
    buf[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", w[i].word);
    return buf;
}

static void free_words(ld_word *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i].word);
    free(w);
}

static void check_words_sane(const ld_word *w, size_t n, double dur)
{
    for (size_t i = 0; i < n; i++) {
        CHECK(w[i].word[0] != '<' && w[i].word[0] != '[' && !strchr(w[i].word, '('));
        CHECK(w[i].start >= 0 && w[i].end > w[i].start && w[i].end <= dur + 0.05);
        CHECK(w[i].confidence >= 0 && w[i].confidence <= 1);
        if (i)
            CHECK(w[i].start >= w[i - 1].end - 1e-9);
    }
}

static bool same_words(const ld_word *a, size_t na, const ld_word *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].word, b[i].word) || a[i].start != b[i].start || a[i].end != b[i].end ||
            a[i].confidence != b[i].confidence)
            return false;
    return true;
}

static void test_batch(const ld_engine_ops *e, void *dec, const int16_t *go, size_t ngo)
{
    ld_error err = {0};
    ld_word *w1 = NULL, *w2 = NULL, *w3 = NULL, *wo = NULL;
    size_t n1 = 0, n2 = 0, n3 = 0, no = 0;
    CHECK(e->decode(dec, go, ngo, &w1, &n1, &err) == LD_OK);
    const char *text = join(w1, n1);
    fprintf(stderr, "goforward: %s\n", text);
    CHECK(strstr(text, "go forward") != NULL);
    CHECK(strstr(text, "meters") != NULL);
    check_words_sane(w1, n1, ngo / 16000.0);
    double best = 0;
    for (size_t i = 0; i < n1; i++)
        best = w1[i].confidence > best ? w1[i].confidence : best;
    CHECK(best > 0.5); /* posteriors are real numbers, not all 0 */

    /* History independence: again, and after a different clip. */
    CHECK(e->decode(dec, go, ngo, &w2, &n2, &err) == LD_OK);
    CHECK(same_words(w1, n1, w2, n2));
    size_t nother = 0;
    int16_t *other = read_wav(OTHER_CLIP, &nother);
    CHECK(other != NULL);
    if (other) {
        CHECK(e->decode(dec, other, nother, &wo, &no, &err) == LD_OK);
        fprintf(stderr, "other clip: %s\n", join(wo, no));
        CHECK(no >= 5);
        CHECK(e->decode(dec, go, ngo, &w3, &n3, &err) == LD_OK);
        CHECK(same_words(w1, n1, w3, n3));
    }
    /* Empty and tiny inputs do not crash and give no words. */
    ld_word *we = NULL;
    size_t ne = 99;
    CHECK(e->decode(dec, go, 0, &we, &ne, &err) == LD_OK && ne == 0);
    free_words(we, ne);
    int16_t zeros[1600] = {0};
    CHECK(e->decode(dec, zeros, 1600, &we, &ne, &err) == LD_OK && ne == 0);
    free_words(we, ne);
    free(other);
    free_words(w1, n1);
    free_words(w2, n2);
    free_words(w3, n3);
    free_words(wo, no);
}

/* Feeds goforward in 100 ms chunks; returns the final words. */
static ld_word *stream_once(const ld_engine_ops *e, void *dec, const int16_t *go, size_t ngo, size_t *n,
                            bool *had_partial, bool *had_speech)
{
    ld_error err = {0};
    CHECK(e->stream_start(dec, &err) == LD_OK);
    *had_partial = *had_speech = false;
    for (size_t off = 0; off < ngo; off += 1600) {
        size_t len = ngo - off < 1600 ? ngo - off : 1600;
        CHECK(e->stream_feed(dec, go + off, len, &err) == LD_OK);
        char *p = e->stream_partial(dec);
        *had_partial |= p && *p;
        free(p);
        *had_speech |= e->stream_in_speech(dec);
    }
    ld_word *w = NULL;
    CHECK(e->stream_end(dec, &w, n, &err) == LD_OK);
    return w;
}

static void test_stream(const ld_engine_ops *e, void *dec, const int16_t *go, size_t ngo)
{
    bool partial, speech;
    size_t n1 = 0, n2 = 0;
    ld_word *w1 = stream_once(e, dec, go, ngo, &n1, &partial, &speech);
    const char *text = join(w1, n1);
    fprintf(stderr, "stream: %s\n", text);
    CHECK(partial);
    CHECK(speech);
    CHECK(strstr(text, "forward") != NULL && strstr(text, "meters") != NULL);
    check_words_sane(w1, n1, ngo / 16000.0);
    /* A second stream on the same decoder starts from the same state. */
    ld_word *w2 = stream_once(e, dec, go, ngo, &n2, &partial, &speech);
    CHECK(same_words(w1, n1, w2, n2));
    free_words(w2, n2);
    /* After stream_end, feeding again starts a new utterance whose times
     * continue from the stream start. */
    ld_error err = {0};
    CHECK(e->stream_start(dec, &err) == LD_OK);
    CHECK(e->stream_feed(dec, go, ngo, &err) == LD_OK);
    CHECK(e->stream_end(dec, &w2, &n2, &err) == LD_OK);
    free_words(w2, n2);
    CHECK(e->stream_feed(dec, go, ngo, &err) == LD_OK);
    CHECK(e->stream_end(dec, &w2, &n2, &err) == LD_OK);
    CHECK(n2 > 0 && w2[0].start >= ngo / 16000.0);
    free_words(w2, n2);
    /* stream_restart forgets the utterance in progress: other audio first (white
     * noise, which moves the adapted CMN), restart, then goforward gives the
     * words and times of a stream that heard only goforward */
    int16_t *noise = malloc(ngo * sizeof *noise);
    unsigned r = 3;
    for (size_t i = 0; noise && i < ngo; i++)
        r = r * 1103515245u + 12345u, noise[i] = (int16_t)((int)((r >> 16) % 4001) - 2000);
    CHECK(e->stream_start(dec, &err) == LD_OK);
    CHECK(e->stream_restart(dec, &err) == LD_OK); /* nothing fed: nothing to forget */
    for (size_t off = 0; noise && off < ngo; off += 1600)
        CHECK(e->stream_feed(dec, noise + off, ngo - off < 1600 ? ngo - off : 1600, &err) == LD_OK);
    CHECK(e->stream_restart(dec, &err) == LD_OK);
    for (size_t off = 0; off < ngo; off += 1600)
        CHECK(e->stream_feed(dec, go + off, ngo - off < 1600 ? ngo - off : 1600, &err) == LD_OK);
    CHECK(e->stream_end(dec, &w2, &n2, &err) == LD_OK);
    fprintf(stderr, "stream after a restart: %s\n", join(w2, n2));
    CHECK(same_words(w1, n1, w2, n2));
    free_words(w2, n2);
    free(noise);
    free_words(w1, n1);
}

/* Word-level edit distance between two decodes. */
static size_t word_distance(const ld_word *a, size_t na, const ld_word *b, size_t nb)
{
    size_t d[64];
    if (nb >= 64)
        return (size_t)-1;
    for (size_t j = 0; j <= nb; j++)
        d[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = d[0];
        d[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = d[j], c = diag + (strcmp(a[i - 1].word, b[j - 1].word) != 0);
            c = c < up + 1 ? c : up + 1;
            c = c < d[j - 1] + 1 ? c : d[j - 1] + 1;
            diag = up;
            d[j] = c;
        }
    }
    return d[nb];
}

/* Adaptive live CMN: a stream of a clip shorter than 3 s of frames used to be
 * normalised with the fixed start vector throughout and came out far from the
 * batch decode of the same clip (batch CMN); with the stream's own running
 * mean it is within a word. Fixed CMN (LISTEND_STREAM_CMN=0): 0920 "woman in
 * my head that made" (4 words off), 0930 "a real boy myself so" (5 off). */
static void test_stream_cmn(const ld_engine_ops *e, void *dec, void *sdec)
{
    const char *clips[] = {READER_CLIP("0920"), READER_CLIP("0930")};
    for (size_t c = 0; c < sizeof clips / sizeof *clips; c++) {
        size_t n = 0, nb = 0, ns = 0;
        int16_t *pcm = read_wav(clips[c], &n);
        CHECK(pcm != NULL);
        if (!pcm)
            continue;
        ld_error err = {0};
        ld_word *wb = NULL;
        CHECK(e->decode(dec, pcm, n, &wb, &nb, &err) == LD_OK);
        bool partial, speech;
        ld_word *ws = stream_once(e, sdec, pcm, n, &ns, &partial, &speech);
        size_t dist = word_distance(wb, nb, ws, ns);
        fprintf(stderr, "batch:  %s\n", join(wb, nb));
        fprintf(stderr, "stream: %s (%zu words off)\n", join(ws, ns), dist);
        CHECK(dist <= 1);
        free_words(wb, nb);
        free_words(ws, ns);
        free(pcm);
    }
}

int main(void)
{
    const ld_engine_ops *e = &ld_engine_pocketsphinx;
    size_t ngo = 0;
    int16_t *go = read_pcm(GOFORWARD, 0, &ngo);
    CHECK(go != NULL && ngo > 16000);
    ld_error err = {0};
    ld_engine_model bad = {"en", "/nonexistent", NULL};
    CHECK(e->decoder_new(&bad, &err) == NULL && err.code == LD_ERR_INTERNAL);
    ld_engine_model m = {"en", LD_MODEL_DEFAULT_DIR, NULL};
    void *dec = e->decoder_new(&m, &err);
    void *sdec = e->decoder_new(&m, &err);
    CHECK(dec != NULL && sdec != NULL);
    if (go && dec && sdec) {
        test_batch(e, dec, go, ngo);
        test_stream(e, sdec, go, ngo);
        test_stream_cmn(e, dec, sdec);
    }
    e->decoder_free(dec);
    e->decoder_free(sdec);
    free(go);
    TEST_MAIN_END();
}
