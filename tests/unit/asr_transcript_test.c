/* Transcript rendering on hand-built transcripts: punctuation from pauses,
 * sentence case, "I", empty transcripts, JSON fields, SRT/VTT shape. */
#include <stdlib.h>
#include <string.h>

#include "asr/transcript.h"
#include "test.h"

/* words "w0 w1 …" with 0.3 s each; gaps[i] is the pause after word i */
static ld_transcript *make(const char *const *words, const double *gaps, size_t n)
{
    ld_transcript *t = calloc(1, sizeof *t);
    t->words = calloc(n ? n : 1, sizeof *t->words);
    t->utts = calloc(1, sizeof *t->utts);
    double at = 0.5;
    for (size_t i = 0; i < n; i++) {
        t->words[i] = (ld_word){strdup(words[i]), at, at + 0.3, 0.8};
        at += 0.3 + (gaps ? gaps[i] : 0.05);
    }
    t->n_words = n;
    if (n) {
        t->utts[0] = (ld_utterance){0, n, t->words[0].start, t->words[n - 1].end, 0};
        t->n_utts = 1;
    }
    t->duration = at + 1;
    t->confidence = n ? 0.8 : 0;
    strcpy(t->language, "en");
    return t;
}

static void test_punctuation(void)
{
    const char *w[] = {"hello", "i", "think", "so", "then", "i'm", "done"};
    double gaps[] = {0.3, 0.05, 0.05, 1.0, 0.05, 0.05, 0};
    ld_transcript *t = make(w, gaps, 7);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    CHECK(o.punctuate && !o.timestamps && o.format == LD_FORMAT_JSON && !strcmp(o.language, "en"));
    char *txt = ld_transcript_text(t, &o);
    CHECK_STR(txt, "Hello, I think so. Then I'm done.\n");
    free(txt);
    size_t n = 0;
    ld_word *r = ld_transcript_render_words(t, true, &n);
    CHECK(n == 10);
    CHECK_STR(r[1].word, ",");
    CHECK(r[1].start == r[1].end && r[1].start == t->words[0].end && r[1].confidence == 1.0);
    CHECK_STR(r[9].word, ".");
    ld_words_free(r, n);

    o.punctuate = false;
    txt = ld_transcript_text(t, &o);
    CHECK_STR(txt, "hello i think so then i'm done\n");
    free(txt);
    ld_transcript_free(t);
}

static void test_json(void)
{
    const char *w[] = {"go", "forward", "ten", "meters"};
    ld_transcript *t = make(w, NULL, 4);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    json_t *j = ld_transcript_json(t, &o, "req_1");
    CHECK_STR(json_string_value(json_object_get(j, "request_id")), "req_1");
    CHECK_STR(json_string_value(json_object_get(j, "text")), "Go forward ten meters.");
    CHECK_NEAR(json_real_value(json_object_get(j, "confidence")), 0.8, 1e-9);
    CHECK(json_is_real(json_object_get(j, "duration")));
    CHECK_STR(json_string_value(json_object_get(j, "language")), "en");
    CHECK(json_object_get(j, "words") == NULL); /* only with timestamps */
    json_t *u = json_object_get(j, "utterances");
    CHECK(json_array_size(u) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(u, 0), "text")), "Go forward ten meters.");
    json_decref(j);

    o.timestamps = true;
    j = ld_transcript_json(t, &o, "req_1");
    json_t *words = json_object_get(j, "words");
    CHECK(json_array_size(words) == 5);
    json_t *first = json_array_get(words, 0), *last = json_array_get(words, 4);
    CHECK_STR(json_string_value(json_object_get(first, "word")), "Go");
    CHECK_NEAR(json_real_value(json_object_get(first, "start")), 0.5, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(first, "end")), 0.8, 1e-9);
    CHECK_STR(json_string_value(json_object_get(last, "word")), ".");
    CHECK_NEAR(json_real_value(json_object_get(last, "confidence")), 1.0, 1e-9);
    json_decref(j);
    ld_transcript_free(t);

    /* silence: empty text, empty words, no utterances */
    t = make(NULL, NULL, 0);
    j = ld_transcript_json(t, &o, "req_2");
    CHECK_STR(json_string_value(json_object_get(j, "text")), "");
    CHECK(json_is_array(json_object_get(j, "words")) && json_array_size(json_object_get(j, "words")) == 0);
    CHECK(json_array_size(json_object_get(j, "utterances")) == 0);
    json_decref(j);
    char *s = ld_transcript_srt(t, &o);
    CHECK_STR(s, "");
    free(s);
    s = ld_transcript_vtt(t, &o);
    CHECK_STR(s, "WEBVTT\n\n");
    free(s);
    ld_transcript_free(t);
}

/* Checks every cue: numbering (srt), timing line, 1-2 lines of <= 42 chars. */
static int check_cues(const char *s, bool vtt)
{
    char *copy = strdup(s), *save = NULL;
    int cues = 0, expect_no = 1;
    char *blk = copy;
    if (vtt) {
        CHECK(!strncmp(s, "WEBVTT\n\n", 8));
        blk += 8;
    }
    /* blocks are separated by blank lines */
    for (char *b = strtok_r(blk, "\n", &save); b;) {
        if (!vtt) {
            CHECK(atoi(b) == expect_no++);
            b = strtok_r(NULL, "\n", &save);
        }
        int h1, m1, s1, ms1, h2, m2, s2, ms2;
        char sep1, sep2;
        CHECK(b && sscanf(b, "%2d:%2d:%2d%c%3d --> %2d:%2d:%2d%c%3d", &h1, &m1, &s1, &sep1, &ms1, &h2, &m2, &s2,
                          &sep2, &ms2) == 10);
        CHECK(b && strlen(b) == 29);
        CHECK(sep1 == (vtt ? '.' : ',') && sep2 == sep1);
        CHECK((h2 * 3600 + m2 * 60 + s2) * 1000 + ms2 > (h1 * 3600 + m1 * 60 + s1) * 1000 + ms1);
        int lines = 0;
        /* text lines run until the next timing/number line; strtok_r skips blank lines */
        char *next = save;
        for (b = strtok_r(NULL, "\n", &save); b && !strstr(b, "-->") && !(!vtt && atoi(b) == expect_no);
             b = strtok_r(NULL, "\n", &save)) {
            lines++;
            CHECK(strlen(b) <= 42);
            next = save;
        }
        (void)next;
        CHECK(lines >= 1 && lines <= 2);
        cues++;
        if (b && vtt && strstr(b, "-->"))
            continue;
    }
    free(copy);
    return cues;
}

static void test_subtitles(void)
{
    /* 40 words of varying length, a long pause after word 19 */
    const char *pool[] = {"the", "quick", "brown", "extraordinarily", "fox", "jumps", "over", "a", "lazy", "dog"};
    const char *w[40];
    double gaps[40];
    for (int i = 0; i < 40; i++) {
        w[i] = pool[i % 10];
        gaps[i] = i == 19 ? 2.0 : 0.05;
    }
    ld_transcript *t = make(w, gaps, 40);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    char *srt = ld_transcript_srt(t, &o);
    CHECK(!strncmp(srt, "1\n00:00:00,500 --> ", 19));
    int cues = check_cues(srt, false);
    CHECK(cues >= 4);
    /* the sentence break after word 19 ends a cue: a cue starts with "The" at 20 */
    CHECK(strstr(srt, "\nThe quick brown") != NULL);
    char *vtt = ld_transcript_vtt(t, &o);
    CHECK(check_cues(vtt, true) == cues);
    CHECK(strstr(vtt, "00:00:00.500 --> ") != NULL);
    free(srt);
    free(vtt);
    ld_transcript_free(t);
}

int main(void)
{
    test_punctuation();
    test_json();
    test_subtitles();
    TEST_MAIN_END();
}
