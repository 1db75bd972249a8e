/* Job store (SQLite backend): insert/claim/progress/finish/cancel/list/due/
 * purge, and what survives closing and reopening the database. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/jobs_store.h"
#include "test.h"

static ld_job make(const char *id, const char *key, int64_t created)
{
    ld_job j = {0};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.key_id, sizeof j.key_id, "%s", key);
    snprintf(j.request_id, sizeof j.request_id, "req_%s", id);
    j.state = LD_JOB_QUEUED;
    j.created_ms = created;
    j.key_json = strdup("{\"key_id\":\"k\"}");
    j.opts_json = strdup("{\"language\":\"en\"}");
    j.audio_path = strdup("/data/jobs/x.audio");
    j.callback_url = strdup("http://127.0.0.1:9/hook");
    return j;
}

static int gone_count;
static void on_gone(void *ud, const ld_job *job)
{
    (void)ud;
    (void)job;
    gone_count++;
}

int main(void)
{
    char dir[] = "/tmp/ld_jobs_store_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/jobs.db", dir);
    ld_error err = {0};
    ld_job_store *s = ld_store_jobs_open_sqlite(path, &err);
    CHECK(s != NULL);
    if (!s)
        TEST_MAIN_END();
    const ld_job_store_ops *op = s->ops;

    const char *ids[] = {"job_a", "job_b", "job_c"};
    for (int i = 0; i < 3; i++) {
        ld_job j = make(ids[i], "k_one", 1000 * (i + 1));
        CHECK(op->insert(s, &j, &err) == LD_OK);
        ld_job_clear(&j);
    }
    ld_job other = make("job_other", "k_two", 500);
    other.url = strdup("https://example.com/a.wav");
    free(other.audio_path);
    other.audio_path = NULL;
    CHECK(op->insert(s, &other, &err) == LD_OK);
    CHECK(op->insert(s, &other, &err) != LD_OK); /* duplicate id */
    ld_job_clear(&other);

    /* get round-trips every field; a missing id is NOT_FOUND */
    ld_job g = {0};
    CHECK(op->get(s, "job_b", &g, &err) == LD_OK);
    CHECK_STR(g.key_id, "k_one");
    CHECK_STR(g.request_id, "req_job_b");
    CHECK(g.state == LD_JOB_QUEUED);
    CHECK(g.created_ms == 2000);
    CHECK(g.url == NULL);
    CHECK(g.audio_path && !strcmp(g.audio_path, "/data/jobs/x.audio"));
    CHECK(g.callback_url && !strcmp(g.callback_url, "http://127.0.0.1:9/hook"));
    CHECK(g.opts_json && strstr(g.opts_json, "\"en\""));
    ld_job_clear(&g);
    CHECK(op->get(s, "job_nope", &g, &err) == LD_ERR_NOT_FOUND);
    CHECK(op->exists(s, "job_a") && !op->exists(s, "job_nope"));

    /* claim takes the oldest queued job (job_other, created first) */
    ld_job c = {0};
    bool found = false;
    CHECK(op->claim(s, 5000, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_other");
    CHECK(c.state == LD_JOB_PROCESSING && c.runs == 1 && c.started_ms == 5000);
    ld_job_clear(&c);
    CHECK(op->claim(s, 5001, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_a");
    ld_job_clear(&c);
    CHECK(op->count(s, LD_JOB_PROCESSING) == 2);
    CHECK(op->count(s, LD_JOB_QUEUED) == 2);

    /* progress, then finish: delivery is armed for now */
    CHECK(op->set_progress(s, "job_a", 0.5, &err) == LD_OK);
    CHECK(op->get(s, "job_a", &g, &err) == LD_OK);
    CHECK_NEAR(g.progress, 0.5, 1e-9);
    ld_job_clear(&g);
    CHECK(op->finish(s, "job_a", LD_JOB_COMPLETED, "{\"text\":\"hi\"}", NULL, 6000, &err) == LD_OK);
    CHECK(op->finish(s, "job_a", LD_JOB_FAILED, NULL, "{}", 6001, &err) == LD_ERR_NOT_FOUND); /* only once */
    CHECK(op->get(s, "job_a", &g, &err) == LD_OK);
    CHECK(g.state == LD_JOB_COMPLETED && g.finished_ms == 6000);
    CHECK_NEAR(g.progress, 1.0, 1e-9);
    CHECK(g.result_json && !strcmp(g.result_json, "{\"text\":\"hi\"}"));
    CHECK(g.delivery == LD_DELIVERY_PENDING && g.next_attempt_ms == 6000);
    ld_job_clear(&g);

    /* due / record_attempt / next_due */
    ld_job *rows = NULL;
    size_t n = 0;
    CHECK(op->due(s, 5999, 10, &rows, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(rows, n);
    CHECK(op->due(s, 6000, 10, &rows, &n, &err) == LD_OK && n == 1);
    CHECK(n == 1 && !strcmp(rows[0].id, "job_a"));
    ld_job_list_free(rows, n);
    CHECK(op->record_attempt(s, "job_a", "[{\"attempt\":1,\"status\":500}]", LD_DELIVERY_PENDING, 7000, 0, &err) ==
          LD_OK);
    CHECK(op->due(s, 6500, 10, &rows, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(rows, n);
    CHECK(op->next_due(s) == 7000);

    /* cancel: other key -> NOT_FOUND; queued -> cancelled; processing -> flagged */
    ld_job_state st;
    CHECK(op->cancel(s, "job_b", "k_two", 6100, &st, &err) == LD_ERR_NOT_FOUND);
    CHECK(op->cancel(s, "job_b", "k_one", 6100, &st, &err) == LD_OK && st == LD_JOB_CANCELLED);
    CHECK(op->claim(s, 6200, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_c"); /* job_b is no longer claimable */
    ld_job_clear(&c);
    CHECK(op->claim(s, 6300, &c, &found, &err) == LD_OK && !found);
    CHECK(op->cancel(s, "job_other", "k_two", 6400, &st, &err) == LD_OK && st == LD_JOB_PROCESSING);
    CHECK(op->get(s, "job_other", &g, &err) == LD_OK && g.cancel_requested);
    ld_job_clear(&g);

    /* reopen: everything kept; claimed-but-unfinished jobs are queued again */
    op->close(s);
    s = ld_store_jobs_open_sqlite(path, &err);
    CHECK(s != NULL);
    if (!s)
        TEST_MAIN_END();
    op = s->ops;
    CHECK(op->count(s, LD_JOB_QUEUED) == 2);   /* job_other, job_c */
    CHECK(op->count(s, LD_JOB_PROCESSING) == 0);
    CHECK(op->count(s, LD_JOB_COMPLETED) == 1);
    CHECK(op->count(s, LD_JOB_CANCELLED) == 1);
    CHECK(op->get(s, "job_a", &g, &err) == LD_OK);
    CHECK(g.attempts_json && strstr(g.attempts_json, "\"status\":500"));
    CHECK(g.delivery == LD_DELIVERY_PENDING && g.next_attempt_ms == 7000);
    ld_job_clear(&g);
    CHECK(op->claim(s, 8000, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_other");
    CHECK(c.runs == 2 && c.cancel_requested); /* the runner finishes it as cancelled */
    ld_job_clear(&c);
    CHECK(op->claim(s, 8001, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_c");
    CHECK(c.runs == 2);
    ld_job_clear(&c);
    CHECK(op->requeue(s, "job_c", &err) == LD_OK);
    CHECK(op->count(s, LD_JOB_QUEUED) == 1);

    /* list: newest first, limited, only the key's own jobs */
    CHECK(op->list(s, "k_one", 2, &rows, &n, &err) == LD_OK && n == 2);
    CHECK(n == 2 && !strcmp(rows[0].id, "job_c") && !strcmp(rows[1].id, "job_b"));
    ld_job_list_free(rows, n);
    CHECK(op->list(s, "k_one", 20, &rows, &n, &err) == LD_OK && n == 3);
    ld_job_list_free(rows, n);
    CHECK(op->list(s, "k_nobody", 20, &rows, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(rows, n);

    /* purge: only finished jobs older than the cutoff */
    CHECK(op->purge(s, 6050, on_gone, NULL) == 1 && gone_count == 1); /* job_a (6000); job_b finished 6100 */
    CHECK(!op->exists(s, "job_a") && op->exists(s, "job_b"));
    CHECK(op->purge(s, 1000000, on_gone, NULL) == 1 && gone_count == 2);
    CHECK(op->exists(s, "job_c") && op->exists(s, "job_other")); /* unfinished: kept */

    /* state names */
    ld_job_state parsed;
    CHECK(ld_job_state_parse("cancelled", &parsed) == 0 && parsed == LD_JOB_CANCELLED);
    CHECK(ld_job_state_parse("bogus", &parsed) != 0);
    CHECK_STR(ld_job_state_name(LD_JOB_PROCESSING), "processing");

    op->close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
