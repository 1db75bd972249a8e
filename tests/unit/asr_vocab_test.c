/* Keyword lists, the vocabulary file and flite letter-to-sound (asr/vocab.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/vocab.h"
#include "test.h"

static void test_flite_phones(void)
{
    char b[8];
    CHECK_STR(ld_vocab_flite_phone("ax", b, sizeof b), "AH"); /* schwa: no AX in the model */
    CHECK_STR(ld_vocab_flite_phone("ax0", b, sizeof b), "AH");
    CHECK_STR(ld_vocab_flite_phone("axr", b, sizeof b), "ER");
    CHECK_STR(ld_vocab_flite_phone("er1", b, sizeof b), "ER"); /* stress digits go */
    CHECK_STR(ld_vocab_flite_phone("ao1", b, sizeof b), "AO");
    CHECK_STR(ld_vocab_flite_phone("hh", b, sizeof b), "HH");
    CHECK_STR(ld_vocab_flite_phone("zh", b, sizeof b), "ZH");
    CHECK(ld_vocab_flite_phone("pau", b, sizeof b) == NULL); /* pauses are skipped */
    CHECK(ld_vocab_flite_phone("xx", b, sizeof b) == NULL);  /* not a model phone */
    CHECK(ld_vocab_flite_phone("", b, sizeof b) == NULL);
    CHECK(ld_vocab_flite_phone("aa1", b, 2) == NULL); /* too small a buffer */
}

static void test_lts(void)
{
    char p[LD_VOCAB_PRON_MAX];
    /* a dictionary word: flite's own lexicon agrees with cmudict */
    CHECK(ld_vocab_lts("forward", p, sizeof p));
    CHECK_STR(p, "F AO R W ER D");
    /* words no dictionary has: rules only; every phone one the model knows */
    CHECK(ld_vocab_lts("kubernetes", p, sizeof p) && ld_vocab_valid_pron(p));
    CHECK(strncmp(p, "K ", 2) == 0);
    CHECK(ld_vocab_lts("listend", p, sizeof p) && ld_vocab_valid_pron(p));
    CHECK_STR(p, "L IH S T EH N D");
    CHECK(ld_vocab_lts("O'Neil", p, sizeof p) && ld_vocab_valid_pron(p)); /* apostrophe dropped, case folded */
    CHECK(!ld_vocab_lts("", p, sizeof p));
    CHECK(!ld_vocab_lts("forward", p, 3)); /* does not fit: refused, not cut */
}

static void test_valid_pron(void)
{
    CHECK(ld_vocab_valid_pron("K UW B ER N EH T IY Z"));
    CHECK(ld_vocab_valid_pron("  AA  "));
    CHECK(!ld_vocab_valid_pron(""));
    CHECK(!ld_vocab_valid_pron("K UW1"));
    CHECK(!ld_vocab_valid_pron("k uw"));
    CHECK(!ld_vocab_valid_pron("AX"));
}

static void test_items(void)
{
    char list[LD_VOCAB_TEXT_MAX] = "";
    ld_error e = {0};
    CHECK(ld_vocab_add_item(list, sizeof list, "kubernetes:2", &e) == LD_OK);
    CHECK(ld_vocab_add_item(list, sizeof list, " Forward ", &e) == LD_OK);
    CHECK(ld_vocab_add_item(list, sizeof list, "o'neil:1.6", &e) == LD_OK); /* rounded */
    CHECK_STR(list, "kubernetes:2 forward:1 o'neil:2");
    CHECK(ld_vocab_add_item(list, sizeof list, "KUBERNETES:10", &e) == LD_OK); /* later boost wins */
    CHECK_STR(list, "forward:1 o'neil:2 kubernetes:10");

    const char *bad[] = {"",
                         ":2",
                         "k8s",
                         "hello w0rld",
                         "'quote",
                         "quote'",
                         "don''t",
                         "word:",
                         "word:0",
                         "word:11",
                         "word:-1",
                         "word:abc",
                         "word:nan",
                         "word:inf",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                         "caf\xc3\xa9",
                         "word:0x5",
                         "word:1e1",
                         "word:+5",
                         "word: 5",
                         "word:5.5.5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        e.code = LD_OK;
        e.msg[0] = 0;
        CHECK(ld_vocab_add_item(list, sizeof list, bad[i], &e) == LD_ERR_INVALID_PARAMETER);
        CHECK(strstr(e.msg, "keywords") != NULL);
        char want[64];
        snprintf(want, sizeof want, "'%s'", bad[i]);
        if (strlen(bad[i]) < 40 && !strchr(bad[i], ' '))
            CHECK(strstr(e.msg, want) != NULL); /* the message names the word */
    }
    CHECK_STR(list, "forward:1 o'neil:2 kubernetes:10"); /* refused items change nothing */

    char many[LD_VOCAB_TEXT_MAX] = "";
    for (int i = 0; i < LD_VOCAB_MAX_WORDS; i++) {
        char w[16];
        snprintf(w, sizeof w, "w%c%c", 'a' + i / 26, 'a' + i % 26);
        CHECK(ld_vocab_add_item(many, sizeof many, w, &e) == LD_OK);
    }
    CHECK(ld_vocab_add_item(many, sizeof many, "onemore", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(e.msg, "'keywords'") && strstr(e.msg, "onemore") && strstr(e.msg, "more than 100"));
    /* the same limit reached through Deepgram's keyterm names the option the client sent */
    CHECK(ld_vocab_add_term(many, sizeof many, "onemore", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(e.msg, "'keyterm'") && strstr(e.msg, "onemore") && !strstr(e.msg, "keywords'"));
    CHECK(ld_vocab_add_item(many, sizeof many, "waa:3", &e) == LD_OK); /* a repeat is not one more */

    char csv[LD_VOCAB_TEXT_MAX] = "";
    CHECK(ld_vocab_add_items(csv, sizeof csv, "kubernetes:2,listend, forward:3", &e) == LD_OK);
    CHECK_STR(csv, "kubernetes:2 listend:1 forward:3");
    CHECK(ld_vocab_add_items(csv, sizeof csv, "ok,,fine", &e) == LD_ERR_INVALID_PARAMETER); /* an empty item */
    CHECK(ld_vocab_add_items(csv, sizeof csv, "ok,k8s", &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "'k8s'"));

    /* a phrase: each word with the phrase's boost */
    char ph[LD_VOCAB_TEXT_MAX] = "";
    CHECK(ld_vocab_add_items(ph, sizeof ph, " New  York :3,listend", &e) == LD_OK);
    CHECK_STR(ph, "new:3 york:3 listend:1");
    CHECK(ld_vocab_add_item(ph, sizeof ph, "go forward", &e) == LD_OK);
    CHECK_STR(ph, "new:3 york:3 listend:1 go:1 forward:1");
    CHECK(ld_vocab_add_item(ph, sizeof ph, "new k8s:2", &e) == LD_ERR_INVALID_PARAMETER &&
          strstr(e.msg, "'new k8s:2'"));
    CHECK(ld_vocab_add_item(ph, sizeof ph, "new york:0", &e) == LD_ERR_INVALID_PARAMETER);

    /* Deepgram's keyterm: free text, lenient */
    char kt[LD_VOCAB_TEXT_MAX] = "";
    CHECK(ld_vocab_add_term(kt, sizeof kt, " retinoid  cream ", &e) == LD_OK);
    CHECK_STR(kt, "retinoid:1 cream:1");
    CHECK(ld_vocab_add_term(kt, sizeof kt, "Dr. O'Neil's \"Nova-3\" GPT-4o, caf\xc3\xa9 'quoted' 911", &e) ==
          LD_OK);
    CHECK_STR(kt, "retinoid:1 cream:1 dr:1 o'neil's:1 nova:1 gpt:1 quoted:1");
    CHECK(ld_vocab_add_term(kt, sizeof kt, "4o 911", &e) == LD_OK); /* nothing usable: nothing added */
    CHECK_STR(kt, "retinoid:1 cream:1 dr:1 o'neil's:1 nova:1 gpt:1 quoted:1");
    CHECK(ld_vocab_add_term(kt, sizeof kt, "", &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "keyterm"));

    ld_vocab_entry ent[LD_VOCAB_MAX_WORDS];
    CHECK(ld_vocab_parse_list(many, ent, LD_VOCAB_MAX_WORDS) == LD_VOCAB_MAX_WORDS);
    CHECK_STR(ent[LD_VOCAB_MAX_WORDS - 1].word, "waa");
    CHECK(ent[LD_VOCAB_MAX_WORDS - 1].boost == 3);
    CHECK(ld_vocab_parse_list("", ent, 4) == 0);
}

static void test_boost_scale(void)
{
    CHECK_NEAR(ld_vocab_boost_log10(1), -5.0, 1e-9);
    CHECK(ld_vocab_boost_log10(10) < 0);
    for (int b = 1; b < LD_VOCAB_MAX_BOOST; b++)
        CHECK(ld_vocab_boost_log10(b + 1) > ld_vocab_boost_log10(b));
}

static void test_file(void)
{
    char path[] = "/tmp/ld-vocab-test-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n\nkubernetes:3\n  listend L IH S T EH N D\nForward\t\nkubernetes:4\n", f);
    fclose(f);
    ld_vocab v;
    ld_error e = {0};
    CHECK(ld_vocab_load_file(path, &v, &e) == LD_OK);
    CHECK(v.n == 3);
    if (v.n == 3) {
        CHECK_STR(v.e[0].word, "kubernetes");
        CHECK(v.e[0].boost == 4); /* listed twice: the later line */
        CHECK_STR(v.e[1].word, "listend");
        CHECK_STR(v.e[1].pron, "L IH S T EH N D");
        CHECK_STR(v.e[2].word, "forward");
        CHECK_STR(v.e[2].pron, "");
    }
    ld_vocab_free(&v);

    f = fopen(path, "w");
    fputs("good\nbad K9 UW\n", f);
    fclose(f);
    CHECK(ld_vocab_load_file(path, &v, &e) != LD_OK);
    CHECK(strstr(e.msg, "line 2") != NULL);
    CHECK(v.n == 0 && v.e == NULL);
    f = fopen(path, "w");
    fputs("k8s\n", f);
    fclose(f);
    CHECK(ld_vocab_load_file(path, &v, &e) != LD_OK && strstr(e.msg, "line 1"));
    f = fopen(path, "w"); /* saved by a Windows editor: a UTF-8 BOM before the first word */
    fputs("\xEF\xBB\xBFkubernetes:2\r\nforward\r\n", f);
    fclose(f);
    CHECK(ld_vocab_load_file(path, &v, &e) == LD_OK && v.n == 2 && !strcmp(v.e[0].word, "kubernetes"));
    ld_vocab_free(&v);
    unlink(path);
    CHECK(ld_vocab_load_file("/nonexistent/vocab.txt", &v, &e) != LD_OK);
    /* a directory opens and reads as empty: refused, not a server with no vocabulary */
    CHECK(ld_vocab_load_file("/tmp", &v, &e) != LD_OK && strstr(e.msg, "is a directory") && v.n == 0);
}

int main(void)
{
    test_flite_phones();
    test_lts();
    test_valid_pron();
    test_items();
    test_boost_scale();
    test_file();
    TEST_MAIN_END();
}
