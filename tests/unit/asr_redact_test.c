/* Redaction (asr/redact.h): what each kind finds in spoken words, what it
 * leaves, token numbering across calls, interims, the renderer's entries and
 * Deepgram's `redact` values. */
#include <stdlib.h>
#include <string.h>

#include "asr/redact.h"
#include "asr/transcript.h"
#include "test.h"

/* A final's words (text split at spaces) with their entities as tokens. */
static void check(unsigned kinds, const char *text, const char *want)
{
    char buf[512], out[512] = "";
    const char *w[64];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    ld_redactor r = {.kinds = kinds};
    ld_redaction red[64];
    size_t k = ld_redact_find(&r, w, NULL, n, red, 64), q = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece = w[i];
        if (q < k && red[q].first == i) {
            piece = red[q].token;
            i = red[q++].last;
        }
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", *out ? " " : "", piece);
    }
    if (strcmp(out, want))
        fprintf(stderr, "[%u] '%s' -> '%s', want '%s'\n", kinds, text, out, want);
    CHECK_STR(out, want);
}

/* An interim hypothesis (ld_redact_text): the speaker may go on. */
static void check_interim(unsigned kinds, const char *text, const char *want)
{
    ld_redactor r = {.kinds = kinds};
    char *out = ld_redact_text(&r, text);
    if (!out || strcmp(out, want))
        fprintf(stderr, "[%u] interim '%s' -> '%s', want '%s'\n", kinds, text, out ? out : "(null)", want);
    CHECK_STR(out, want);
    CHECK(r.seen[0] == 0 && !r.open_end); /* the caller's redactor is not advanced */
    free(out);
}

static void test_pci(void)
{
    unsigned pci = LD_REDACT_PCI;
    check(pci, "my card number is four one one one one one one one one one one one one one one one",
          "my card number is [CREDITCARDNUMBER_1]");
    check(pci, "the security code is seven three seven", "the security code is [CREDITCARDCVV_1]");
    check(pci, "c v v one two three four", "c v v [CREDITCARDCVV_1]");
    check(pci, "it expires oh four twenty seven", "it expires [CREDITCARDEXPIRY_1]");
    /* what the recognizer makes of digits: homophones between digits, a misheard month */
    check(pci, "my card number is nine five to six one for one one", "my card number is [CREDITCARDNUMBER_1]");
    check(pci, "it expires all for twenty six", "it expires [CREDITCARDEXPIRY_1]");
    check(pci, "from nine to five i work for two", "from nine to five i work for two");
    /* a group of four read on its own (a stream's final may hold just one) */
    check(pci, "four one one one", "[CREDITCARDNUMBER_1]");
    check(pci, "call five five five one two three four", "call [CREDITCARDNUMBER_1]");
    /* what PCI leaves: amounts, years, short numbers, names */
    check(pci, "i have two cats and three hundred dollars", "i have two cats and three hundred dollars");
    check(pci, "in twenty twenty four it cost one thousand two hundred",
          "in twenty twenty four it cost one thousand two hundred");
    check(pci, "press one two three", "press one two three");
    /* interims: digits read one by one may be part of a number (the words still change) */
    check_interim(pci, "My card is four one", "my card is [CREDITCARDNUMBER_1]");
    check_interim(pci, "two nine three for", "[CREDITCARDNUMBER_1] for");
    check_interim(pci, "i want one and two hundred", "i want one and two hundred");
    check_interim(LD_REDACT_PII, "call five five", "call [PHONENUMBER_1]");
    check_interim(LD_REDACT_PII, "i want one", "i want one");
    check_interim(LD_REDACT_NUMBERS, "call five five", "call five five");
    /* a stream's finals: a phone number's groups may be finals of their own */
    ld_redactor st = {.kinds = LD_REDACT_PII, .stream = true};
    const char *g[] = {"five", "five", "five", "thanks"}, *g2[] = {"five", "five", "thanks"};
    ld_redaction red[4];
    CHECK(ld_redact_find(&st, g, NULL, 4, red, 4) == 1 && red[0].last == 2);
    st = (ld_redactor){.kinds = LD_REDACT_PII, .stream = true};
    CHECK(ld_redact_find(&st, g2, NULL, 3, red, 4) == 0); /* two digits inside a final stay */
    CHECK(ld_redact_find(&st, g, NULL, 2, red, 4) == 1);  /* at its end they may go on: hidden */
    /* split across finals by a pause, a finalize or max_words: the previous final's words are context */
    const char *f1[] = {"my", "card", "number", "is", "four", "one"}, *f2[] = {"one", "one", "thanks"};
    const char *n1[] = {"hello", "my", "name", "is"}, *n2[] = {"john", "smith"};
    st = (ld_redactor){.kinds = LD_REDACT_PCI | LD_REDACT_PII, .stream = true};
    CHECK(ld_redact_find(&st, f1, NULL, 6, red, 4) == 1 && red[0].first == 4); /* two digits at its end */
    CHECK(ld_redact_find(&st, f2, NULL, 3, red, 4) == 1 && red[0].first == 0 && red[0].last == 1);
    CHECK_STR(red[0].token, "[CREDITCARDNUMBER_2]"); /* "four one" + "one one": four digits read one by one */
    /* a card read in groups of five across finals keeps its kind (9 digits with the context would read as SSN) */
    const char *c1[] = {"two", "nine", "three", "four", "zero"};
    st = (ld_redactor){.kinds = LD_REDACT_PCI | LD_REDACT_PII, .stream = true};
    CHECK(ld_redact_find(&st, c1, NULL, 5, red, 4) == 1 && !strcmp(red[0].token, "[CREDITCARDNUMBER_1]"));
    CHECK(ld_redact_find(&st, c1, NULL, 5, red, 4) == 1 && !strcmp(red[0].token, "[CREDITCARDNUMBER_2]"));
    CHECK(ld_redact_find(&st, n1, NULL, 4, red, 4) == 0);
    CHECK(ld_redact_find(&st, n2, NULL, 2, red, 4) == 2 && !strcmp(red[0].token, "[FIRSTNAME_1]"));
    CHECK_STR(red[1].token, "[LASTNAME_1]");
    /* an interim with two e-mails and a card: every entity replaced (spans never overlap) */
    check_interim(
        LD_REDACT_PII | LD_REDACT_PCI,
        "john at gmail dot com or bob dot org my card is four one one one one one one one one one one one "
        "one one one one",
        "[EMAIL_1] [EMAIL_2] my card is [CREDITCARDNUMBER_1]"); /* "or" goes with the second */
    check(pci, "my name is john smith", "my name is john smith");
}

static void test_pii(void)
{
    unsigned pii = LD_REDACT_PII;
    check(pii, "my name is john smith and i live here", "my name is [FIRSTNAME_1] [LASTNAME_1] and i live here");
    check(pii, "hi this is cathy", "hi this is [FIRSTNAME_1]");
    /* a weak cue needs a word that is only a name: "good" and "great" stay */
    check(pii, "i'm good this is great", "i'm good this is great");
    check(pii, "call me at five five five one two three four", "call me at [PHONENUMBER_1]");
    check(pii, "one zero zero zero one nine oh two one oh zero one eight zero three", "[PHONENUMBER_1]");
    check(pii, "my social security number is one two three four five six seven eight nine",
          "my social security number is [SSN_1]");
    check(pii, "write to john dot smith at gmail dot com today", "write to [EMAIL_1] today");
    check(pii, "mail two at example dot co dot uk", "mail [EMAIL_1]");
    check(pii, "please write to john dot smith had camille dot com",
          "please write to [EMAIL_1]"); /* "at" misheard */
    check(pii, "ask mister brown and doctor jones", "ask mister [FIRSTNAME_1] and doctor [FIRSTNAME_2]");
    check(pii, "i have three hundred dollars at home", "i have three hundred dollars at home");
    check(pii, "the card is four one one one one one one one one one one one one one one one",
          "the card is [ACCOUNTNUMBER_1]"); /* PII alone: a long number is still hidden */
}

static void test_numbers_and_ssn(void)
{
    check(LD_REDACT_NUMBERS, "room three hundred and five on floor two", "room [NUMBER_1] on floor two");
    check(LD_REDACT_NUMBERS, "twenty twenty four", "[NUMBER_1]");
    check(LD_REDACT_SSN, "it is one two three four five six seven eight nine", "it is [SSN_1]");
    check(LD_REDACT_SSN, "call five five five one two three four", "call five five five one two three four");
    check(LD_REDACT_PCI | LD_REDACT_PII, "number four one one one one one one one one one one one one one one one",
          "number [CREDITCARDNUMBER_1]");
    check(LD_REDACT_PCI | LD_REDACT_PII, "call five five five one two three four", "call [PHONENUMBER_1]");
    check(0, "my name is john smith", "my name is john smith");
}

/* Entities in the renderer: one entry per entity spanning its words; tokens
 * numbered on across calls that share a redactor (a stream's finals); pauses
 * longer than LD_REDACT_RUN_GAP split numbers. */
static void test_render(void)
{
    const char *words[] = {"my", "number", "is", "five", "five", "five", "one", "two", "three", "four", "thanks"};
    ld_word w[11];
    double t = 0.1;
    for (size_t i = 0; i < 11; i++) {
        w[i] = (ld_word){(char *)words[i], t, t + 0.3, 0.9 - 0.01 * (double)i};
        t += i == 5 ? 0.6 : 0.35; /* a pause after the third digit, as people read numbers */
    }
    ld_transcript tr = {.words = w, .n_words = 11};
    ld_redactor r = {.kinds = LD_REDACT_PII};
    size_t n;
    long *origin;
    ld_word *out = ld_transcript_render_redacted(&tr, LD_RENDER_PUNCTUATE | LD_RENDER_NUMERALS, &r, &n, &origin);
    CHECK(out != NULL);
    CHECK(n == 6); /* My number is [PHONENUMBER_1] thanks . */
    CHECK_STR(out[3].word, "[PHONENUMBER_1]");
    CHECK(origin[3] == 3);
    CHECK(out[3].start == w[3].start && out[3].end == w[9].end);
    CHECK(out[3].confidence <= w[9].confidence + 1e-9);
    ld_words_free(out, n);
    free(origin);
    out = ld_transcript_render_redacted(&tr, LD_RENDER_PUNCTUATE, &r, &n, &origin);
    CHECK_STR(out[3].word, "[PHONENUMBER_2]"); /* the same redactor: the next number */
    ld_words_free(out, n);
    free(origin);
    /* a pause of 2 s inside: two short numbers, neither long enough */
    for (size_t i = 6; i < 11; i++)
        w[i].start += 2.0, w[i].end += 2.0;
    r = (ld_redactor){.kinds = LD_REDACT_PII};
    out = ld_transcript_render_redacted(&tr, 0, &r, &n, NULL);
    CHECK(n == 11);
    ld_words_free(out, n);
    /* flags alone: numbered from 1 on every call */
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    o.redact = LD_REDACT_NUMBERS;
    o.timestamps = true;
    json_t *j = ld_transcript_json(&tr, &o, NULL);
    const char *text = json_string_value(json_object_get(j, "text"));
    if (strcmp(text, "My number is [NUMBER_1]. [NUMBER_2] thanks."))
        fprintf(stderr, "text: %s\n", text);
    CHECK_STR(text, "My number is [NUMBER_1]. [NUMBER_2] thanks.");
    json_t *ents = json_object_get(j, "redacted_entities");
    CHECK(json_array_size(ents) == 2);
    CHECK_STR(json_string_value(json_array_get(ents, 1)), "[NUMBER_2]");
    json_decref(j);
    /* a phone number read in two utterances: one token, and the entity joins
     * them into the first (docs/api.md) — the second no longer starts at its
     * first digit, inside the token, before the first utterance ends */
    for (size_t i = 6; i < 11; i++)
        w[i].start -= 1.2, w[i].end -= 1.2; /* 0.8 s between the groups */
    ld_utterance utts[2] = {{0, 6, w[0].start, w[5].end, 0}, {6, 5, w[6].start, w[10].end, 0}};
    tr.utts = utts, tr.n_utts = 2;
    o.redact = LD_REDACT_PII;
    j = ld_transcript_json(&tr, &o, NULL);
    json_t *us = json_object_get(j, "utterances");
    CHECK(json_array_size(us) == 1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(us, 0), "text")),
              "My number is [PHONENUMBER_1] thanks.");
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(us, 0), "start")), w[0].start, 1e-3);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(us, 0), "end")), w[10].end, 1e-3);
    json_decref(j);
    /* the same in the copy that multichannel subtitles render */
    ld_transcript *c = ld_transcript_redact_copy(&tr, LD_REDACT_PII);
    CHECK(c && c->n_utts == 1 && c->utts[0].count == 5 && c->utts[0].end == w[10].end);
    ld_transcript_free(c);
    /* diarized, the second utterance another speaker's turn: it stays apart,
     * starting at its first word after the token (turns never overlap) */
    int spk[11] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
    utts[1].speaker = 1;
    tr.speakers = spk, tr.n_speakers = 2;
    j = ld_transcript_json(&tr, &o, NULL);
    us = json_object_get(j, "utterances");
    json_t *turns = json_object_get(j, "speakers");
    CHECK(json_array_size(us) == 2 && json_array_size(turns) == 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(us, 1), "text")), "thanks.");
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(us, 1), "start")), w[10].start, 1e-3);
    CHECK(json_integer_value(json_object_get(json_array_get(us, 1), "speaker")) == 1);
    CHECK_NEAR(json_real_value(json_object_get(json_array_get(turns, 1), "start")), w[10].start, 1e-3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(turns, 1), "speaker")), "SPEAKER_01");
    json_decref(j);
    c = ld_transcript_redact_copy(&tr, LD_REDACT_PII);
    CHECK(c && c->n_utts == 2 && c->utts[1].count == 1 && c->utts[1].start == w[10].start &&
          c->utts[1].speaker == 1);
    ld_transcript_free(c);
    tr.speakers = NULL, tr.n_speakers = 0;
}

static void test_profanity(void)
{
    /* the list's first and last words, inflections, any case; innocent lookalikes are not on it */
    const char *on[] = {"asshole", "whores", "Shit", "FUCKING", "fuck's", "son-of-a-bitch", "bullshit"};
    for (size_t i = 0; i < sizeof on / sizeof *on; i++)
        CHECK(ld_profanity_is(on[i]));
    const char *off[] = {"dick", "cock", "damn", "crap", "shitake", "matsushita", "sh", "", "fuckk"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++)
        CHECK(!ld_profanity_is(off[i]));
    CHECK(!ld_profanity_is(NULL));
    char w[] = "fuck's", t[] = "oh shit it is bullshit dick";
    ld_profanity_mask(w);
    CHECK_STR(w, "****'s");
    ld_profanity_mask_text(t);
    CHECK_STR(t, "oh **** it is ******** dick");
    /* in a rendering: masked before sentence case, so the mask is all asterisks */
    const char *words[] = {"shit", "i", "forgot"};
    ld_word wd[3];
    for (size_t i = 0; i < 3; i++)
        wd[i] = (ld_word){(char *)words[i], 0.4 * (double)i, 0.4 * (double)i + 0.3, 0.9};
    ld_transcript tr = {.words = wd, .n_words = 3};
    size_t n;
    ld_word *out = ld_transcript_render_words(&tr, LD_RENDER_PUNCTUATE | LD_RENDER_PROFANITY, &n);
    CHECK(out && n == 4 && !strcmp(out[0].word, "****") && !strcmp(out[1].word, "I"));
    ld_words_free(out, n);
    out = ld_transcript_render_words(&tr, LD_RENDER_PUNCTUATE, &n);
    CHECK(out && n == 4 && !strcmp(out[0].word, "Shit"));
    ld_words_free(out, n);
}

static void test_parse(void)
{
    unsigned k = 0;
    ld_error err = {0};
    CHECK(ld_redact_parse("pci,ssn", &k, &err) == LD_OK && k == (LD_REDACT_PCI | LD_REDACT_SSN));
    CHECK(ld_redact_parse("true", &k, &err) == LD_OK && (k & LD_REDACT_NUMBERS));
    CHECK(ld_redact_parse("phi", &k, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(err.msg, "'phi'") != NULL);
    CHECK(ld_redact_parse("", &k, &err) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_redact_is_token("[SSN_1]") && !ld_redact_is_token("[noise]") && !ld_redact_is_token("ssn"));
    bool only;
    CHECK(ld_redact_is_name("john", &only) && !only);
    CHECK(ld_redact_is_name("cathy", &only) && only);
    CHECK(!ld_redact_is_name("table", &only));
}

int main(void)
{
    test_pci();
    test_pii();
    test_numbers_and_ssn();
    test_render();
    test_profanity();
    test_parse();
    TEST_MAIN_END();
}
