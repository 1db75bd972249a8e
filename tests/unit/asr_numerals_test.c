/* Spoken numbers as digits (asr/numerals.h) and in the renderer
 * (LD_RENDER_NUMERALS): cardinals, digit strings, "and"/"oh", what stays a
 * word, and the entries' times. */
#include <stdlib.h>
#include <string.h>

#include "asr/numerals.h"
#include "asr/transcript.h"
#include "test.h"

/* The words of `text` with numbers as digits, joined by spaces. */
static void check(const char *text, const char *want)
{
    char buf[256], out[256] = "";
    const char *w[32];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 32; t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    ld_numeral num[32];
    size_t k = ld_numerals_parse(w, n, num, 32), q = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece = w[i];
        if (q < k && num[q].first == i) {
            piece = num[q].digits;
            i = num[q++].last;
        }
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", *out ? " " : "", piece);
    }
    if (strcmp(out, want))
        fprintf(stderr, "'%s' -> '%s', want '%s'\n", text, out, want);
    CHECK_STR(out, want);
}

static void test_parse(void)
{
    check("ten", "10");
    check("nine hundred", "900");
    check("twenty one", "21");
    check("one hundred and five", "105");
    check("two thousand and twenty six", "2026");
    check("nineteen eighty four", "19 84");
    check("nineteen hundred", "1900");
    check("one million two hundred thousand three hundred forty five", "1200345");
    check("twenty one twenty two", "21 22");
    check("one zero zero zero one", "10001");
    check("nine oh two one oh", "90210");
    check("one", "one"); /* a lone digit word stays a word */
    check("oh", "oh");
    check("and", "and");
    check("hundred", "hundred");
    check("one twenty", "one 20");
    check("twenty oh five", "20 oh five");
    check("zero", "zero");
    check("thousand thousand", "thousand thousand");
}

static void test_render(void)
{
    ld_word w[6] = {{"go", 0.1, 0.3, 0.9},  {"forward", 0.3, 0.7, 0.9}, {"twenty", 0.7, 1.0, 0.8},
                    {"one", 1.0, 1.2, 0.6}, {"meters", 1.2, 1.6, 0.9},  {"one", 2.5, 2.7, 0.9}};
    for (int i = 0; i < 6; i++)
        w[i].word = strdup(w[i].word);
    ld_transcript t = {.words = w, .n_words = 6};
    size_t n;
    long *origin = NULL;
    ld_word *r = ld_transcript_render_ex(&t, LD_RENDER_PUNCTUATE | LD_RENDER_NUMERALS, &n, &origin);
    CHECK(n == 7); /* Go forward 21 meters . one . */
    CHECK_STR(r[2].word, "21");
    CHECK_NEAR(r[2].start, 0.7, 1e-9);
    CHECK_NEAR(r[2].end, 1.2, 1e-9);
    CHECK_NEAR(r[2].confidence, 0.6, 1e-9); /* the least sure of its words */
    CHECK(origin[2] == 2 && origin[3] == 4);
    CHECK_STR(r[3].word, "meters");
    CHECK_STR(r[5].word, "One"); /* a lone digit word after a pause: a word, and a sentence start */
    ld_words_free(r, n);
    free(origin);
    r = ld_transcript_render_words(&t, LD_RENDER_PUNCTUATE, &n); /* without the flag: as spoken */
    CHECK(n == 8 && !strcmp(r[2].word, "twenty"));
    ld_words_free(r, n);
    /* a pause splits a number: "twenty" ... "one" are two */
    w[3].start = 1.4, w[3].end = 1.5;
    r = ld_transcript_render_words(&t, LD_RENDER_NUMERALS, &n);
    CHECK(n == 6 && !strcmp(r[2].word, "20") && !strcmp(r[3].word, "one"));
    ld_words_free(r, n);
    for (int i = 0; i < 6; i++)
        free(w[i].word);
}

int main(void)
{
    test_parse();
    test_render();
    TEST_MAIN_END();
}
