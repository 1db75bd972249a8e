/* server intake pieces without a network: option parsing (text and JSON),
 * the spool's memory/disk switch, the bounded work pool, and serve's
 * flag/env precedence. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/opts.h"
#include "server/spool.h"
#include "server/work.h"
#include "test.h"

static void test_opts_text(void)
{
    ld_listen_opts o;
    ld_error e;
    ld_opts_init(&o);
    CHECK_STR(o.t.language, "en");
    CHECK(o.t.punctuate && !o.t.timestamps && o.t.format == LD_FORMAT_JSON);
    CHECK(ld_opts_set(&o, "punctuate", "0", &e) == LD_OK && !o.t.punctuate);
    CHECK(ld_opts_set(&o, "timestamps", "TRUE", &e) == LD_OK && o.t.timestamps);
    CHECK(ld_opts_set(&o, "language", "FR", &e) == LD_OK);
    CHECK_STR(o.t.language, "fr");
    CHECK(ld_opts_set(&o, "format", "vtt", &e) == LD_OK && o.t.format == LD_FORMAT_VTT);
    CHECK(ld_opts_set(&o, "encoding", "linear16", &e) == LD_OK && o.raw_pcm);
    CHECK(ld_opts_set(&o, "sample_rate", "8000", &e) == LD_OK && o.sample_rate == 8000);
    CHECK(ld_opts_set(&o, "model", "nova-3", &e) == LD_OK); /* unknown: ignored */

    CHECK(ld_opts_set(&o, "punctuate", "yes please", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(strstr(e.msg, "punctuate") != NULL);
    CHECK(ld_opts_set(&o, "num_speakers", "0", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_opts_set(&o, "num_speakers", "3x", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_opts_set(&o, "format", "docx", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_opts_set(&o, "encoding", "speex", &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "mulaw"));
    o.sample_rate = 0; /* not given: G.711's own rate, linear16's 16 kHz */
    CHECK(ld_opts_set(&o, "encoding", "mulaw", &e) == LD_OK && o.raw_pcm && ld_opts_raw_rate(&o) == 8000);
    CHECK(ld_opts_set(&o, "encoding", "ALAW", &e) == LD_OK && o.raw_encoding == LD_STREAM_ALAW &&
          ld_opts_raw_width(&o) == 1);
    CHECK(ld_opts_set(&o, "encoding", "linear32", &e) == LD_OK && o.raw_pcm && ld_opts_raw_width(&o) == 4 &&
          ld_opts_raw_rate(&o) == 16000);
    CHECK(ld_opts_set(&o, "encoding", "ogg_opus", &e) == LD_OK && !o.raw_pcm); /* found from the bytes */
    CHECK(ld_opts_set(&o, "encoding", "linear16", &e) == LD_OK && o.raw_pcm && ld_opts_raw_width(&o) == 2 &&
          ld_opts_raw_rate(&o) == 16000);
    /* Bad codes are kept sanitised for ld_opts_validate to refuse with the list. */
    CHECK(ld_opts_set(&o, "language", "e n", &e) == LD_OK);
    CHECK_STR(o.t.language, "e?n");
    CHECK(ld_opts_set(&o, "language", "en-US", &e) == LD_OK);
    CHECK_STR(o.t.language, "en");
    CHECK(ld_opts_set(&o, "language", "averyveryverylonglanguage", &e) == LD_OK);
    CHECK(strlen(o.t.language) == sizeof o.t.language - 1);
    ld_opts_set(&o, "language", "en", &e);
    CHECK(ld_opts_set(&o, "url", "", &e) == LD_ERR_INVALID_PARAMETER);
    char long_url[3000];
    memset(long_url, 'a', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    CHECK(ld_opts_set(&o, "url", long_url, &e) == LD_ERR_INVALID_PARAMETER);

    ld_opts_init(&o);
    CHECK(ld_opts_set(&o, "diarize", "true", &e) == LD_OK);
    CHECK(ld_opts_validate(&o, NULL, &e) == LD_OK && o.t.diarize);
    CHECK(ld_opts_set(&o, "num_speakers", "0", &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "num_speakers"));
    CHECK(ld_opts_set(&o, "num_speakers", "9", &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_opts_set(&o, "num_speakers", "3", &e) == LD_OK && o.t.num_speakers == 3);
}

static void test_opts_json(void)
{
    ld_listen_opts o;
    ld_error e;
    ld_opts_init(&o);
    json_t *j = json_pack("{s:s,s:b,s:b,s:i,s:n,s:s,s:[]}", "url", "https://x/a.wav", "punctuate", 0, "timestamps",
                          1, "num_speakers", 2, "callback_url", "format", "srt", "unknown_list");
    CHECK(ld_opts_set_json(&o, j, &e) == LD_OK);
    CHECK_STR(o.url, "https://x/a.wav");
    CHECK(!o.t.punctuate && o.t.timestamps && o.num_speakers == 2 && o.t.format == LD_FORMAT_SRT);
    CHECK(o.callback_url[0] == '\0'); /* null = not given */
    json_decref(j);

    j = json_pack("{s:[i]}", "timestamps", 1); /* wrong type for a known option */
    CHECK(ld_opts_set_json(&o, j, &e) == LD_ERR_INVALID_PARAMETER && strstr(e.msg, "timestamps"));
    json_decref(j);
    j = json_pack("{s:s}", "punctuate", "false"); /* strings for booleans are tolerated */
    ld_opts_init(&o);
    CHECK(ld_opts_set_json(&o, j, &e) == LD_OK && !o.t.punctuate);
    json_decref(j);
}

static void test_spool(void)
{
    char dir[] = "/tmp/ld_spool_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    ld_spool *s = ld_spool_new(dir, 8);
    size_t len;
    CHECK(ld_spool_write(s, "abcd", 4) == 0);
    CHECK(ld_spool_mem(s, &len) && len == 4); /* under the limit: memory */
    CHECK(ld_spool_write(s, "efghij", 6) == 0);
    CHECK(ld_spool_mem(s, &len) == NULL); /* over: spilled */
    CHECK(ld_spool_size(s) == 10);
    const char *path = ld_spool_path(s);
    struct stat st;
    CHECK(path && stat(path, &st) == 0 && st.st_size == 10);
    const uint8_t *m = ld_spool_map(s, &len);
    CHECK(m && len == 10 && !memcmp(m, "abcdefghij", 10));
    char saved[1200];
    snprintf(saved, sizeof saved, "%s", path);
    ld_spool_free(s);
    CHECK(stat(saved, &st) != 0); /* unlinked */

    s = ld_spool_new(dir, 1024); /* small data asked for as a file is written out */
    CHECK(ld_spool_write(s, "xyz", 3) == 0);
    path = ld_spool_path(s);
    CHECK(path && stat(path, &st) == 0 && st.st_size == 3);
    ld_spool_free(s);
    CHECK(rmdir(dir) == 0); /* nothing left behind */
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open, ran, cancelled;

static void blocker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!gate_open)
        pthread_cond_wait(&cv, &mu);
    ran++;
    pthread_mutex_unlock(&mu);
}

static void cancel(void *arg)
{
    (void)arg;
    cancelled++;
}

static void test_work_bounded(void)
{
    ld_work *w = ld_work_new(1, 3); /* 1 thread, 3 slots in all */
    int ok = 0;
    for (int i = 0; i < 5; i++)
        if (ld_work_reserve(w)) {
            ld_work_push(w, blocker, NULL);
            ok++;
        }
    CHECK(ok == 3);
    CHECK(ld_work_depth(w) == 3);
    CHECK(!ld_work_reserve(w));
    pthread_mutex_lock(&mu);
    gate_open = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < 200 && ld_work_depth(w) > 0; i++)
        usleep(5000);
    CHECK(ran == 3 && ld_work_depth(w) == 0);
    CHECK(ld_work_reserve(w));
    ld_work_unreserve(w);
    ld_work_free(w, cancel);
    CHECK(cancelled == 0);
}

static void test_config(void)
{
    ld_srv_config c;
    setenv("PORT", "7200", 1);
    setenv("LISTEND_MAX_BODY_MB", "9", 1);
    char *argv1[] = {"serve", NULL};
    CHECK(ld_srv_config_parse(&c, 1, argv1) == 0);
    CHECK(c.port == 7200 && c.max_body_mb == 9 && c.drain_timeout == 30 && c.job_retention == 7 * 86400);
    setenv("API_SERVER_PORT", "7300", 1); /* beats PORT */
    CHECK(ld_srv_config_parse(&c, 1, argv1) == 0 && c.port == 7300);
    char *argv2[] = {"serve",           "--port", "7400", "--max-body-mb=3", "--allow-private-urls",
                     "--drain-timeout", "2m",     NULL};
    CHECK(ld_srv_config_parse(&c, 7, argv2) == 0);
    CHECK(c.port == 7400 && c.max_body_mb == 3 && c.allow_private_urls && c.drain_timeout == 120);
    char *bad[] = {"serve", "--port", "0", NULL};
    CHECK(ld_srv_config_parse(&c, 3, bad) == -1);
    char *half_tls[] = {"serve", "--tls-cert", "/x.pem", NULL};
    CHECK(ld_srv_config_parse(&c, 3, half_tls) == -1);
    unsetenv("PORT");
    unsetenv("API_SERVER_PORT");
    unsetenv("LISTEND_MAX_BODY_MB");
}

int main(void)
{
    test_opts_text();
    test_opts_json();
    test_spool();
    test_work_bounded();
    test_config();
    TEST_MAIN_END();
}
