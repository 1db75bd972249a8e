/* The `keywords` option as the server reads it (server/opts.h, server/ws_proto.h)
 * and as a stored job keeps it (jobs/opts.c). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs_internal.h"
#include "server/opts.h"
#include "server/ws_proto.h"
#include "test.h"

static void test_text(void)
{
    ld_listen_opts o;
    ld_error e = {0};
    ld_opts_init(&o);
    CHECK_STR(o.t.keywords, "");
    CHECK(ld_opts_set(&o, "keywords", "kubernetes:2", &e) == LD_OK); /* repeatable: each call adds */
    CHECK(ld_opts_set(&o, "keywords", "Listend", &e) == LD_OK);
    CHECK_STR(o.t.keywords, "kubernetes:2 listend:1");
    CHECK(ld_opts_set(&o, "keywords", "k8s:2", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(e.msg, "'k8s:2'") && strstr(e.msg, "keywords"));
    CHECK(ld_opts_set(&o, "keywords", NULL, &e) == LD_ERR_INVALID_PARAMETER); /* `keywords` with no value */
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_OK);
    CHECK(ld_opts_set(&o, "language", "fr", &e) == LD_OK);
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "English"));
}

static void test_json(void)
{
    ld_listen_opts o;
    ld_error e = {0};
    ld_opts_init(&o);
    json_t *j = json_pack("{s:[s,s]}", "keywords", "kubernetes:2", "forward");
    CHECK(ld_opts_set_json(&o, j, &e) == LD_OK);
    CHECK_STR(o.t.keywords, "kubernetes:2 forward:1");
    json_decref(j);

    ld_opts_init(&o);
    j = json_pack("{s:s}", "keywords", "forward:3"); /* one word as a plain string */
    CHECK(ld_opts_set_json(&o, j, &e) == LD_OK);
    CHECK_STR(o.t.keywords, "forward:3");
    json_decref(j);

    j = json_pack("{s:[s,i]}", "keywords", "forward", 3);
    CHECK(ld_opts_set_json(&o, j, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "keywords"));
    json_decref(j);
    j = json_pack("{s:[s,s]}", "keywords", "forward", "two w0rds");
    CHECK(ld_opts_set_json(&o, j, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "'two w0rds'"));
    json_decref(j);
    j = json_pack("{s:{}}", "keywords");
    CHECK(ld_opts_set_json(&o, j, &e) == LD_ERR_INVALID_PARAMETER);
    json_decref(j);
}

static void test_stream_params(void)
{
    ld_ws_params p;
    memset(&p, 0, sizeof p);
    strcpy(p.language, "en");
    ld_error e = {0};
    CHECK(ld_ws_params_keyword(&p, "keywords", "forward:2", &e) == LD_OK);
    CHECK(ld_ws_params_keyword(&p, "keyterm", "ignored", &e) == LD_OK); /* Deepgram's name, Deepgram mode only */
    CHECK(ld_ws_params_keyword(&p, "model", "general", &e) == LD_OK);
    CHECK_STR(p.keywords, "forward:2");
    p.deepgram = true;
    CHECK(ld_ws_params_keyword(&p, "keyterm", "kubernetes", &e) == LD_OK);
    CHECK_STR(p.keywords, "forward:2 kubernetes:1");
    CHECK(ld_ws_params_keyword(&p, "keyterm", " retinoid  cream ", &e) == LD_OK); /* a phrase: word by word */
    CHECK_STR(p.keywords, "forward:2 kubernetes:1 retinoid:1 cream:1");
    CHECK(ld_ws_params_keyword(&p, "keyterm", "", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_ws_params_keyword(&p, "keywords", "bad w0rd", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_ws_params_keyword(&p, "keywords", "new york:3", &e) == LD_OK); /* a phrase: each word */
    CHECK_STR(p.keywords, "forward:2 kubernetes:1 retinoid:1 cream:1 new:3 york:3");
    strcpy(p.language, "de");
    CHECK(ld_ws_params_keyword(&p, "keywords", "wort", &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "English"));
}

static void test_job_roundtrip(void)
{
    ld_transcribe_opts o, back;
    ld_transcribe_opts_default(&o);
    snprintf(o.keywords, sizeof o.keywords, "kubernetes:2 forward:1");
    char *s = ld_jobs_opts_dump(&o);
    CHECK(s != NULL);
    ld_jobs_opts_load(s, &back);
    CHECK_STR(back.keywords, "kubernetes:2 forward:1");
    free(s);
    ld_transcribe_opts_default(&o);
    s = ld_jobs_opts_dump(&o);
    CHECK(s && !strstr(s, "keywords")); /* absent when none */
    ld_jobs_opts_load(s, &back);
    CHECK_STR(back.keywords, "");
    free(s);
}

int main(void)
{
    test_text();
    test_json();
    test_stream_params();
    test_job_roundtrip();
    TEST_MAIN_END();
}
