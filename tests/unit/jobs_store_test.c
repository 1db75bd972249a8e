/* Job store (SQLite backend): the job store contract (store_contract.h), then
 * what is its own: an upload's path kept as given (and found by its file name), and what survives closing
 * and reopening the database (claimed-but-unfinished jobs queued again). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/jobs_store.h"
#include "store_contract.h"
#include "test.h"

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
    contract_jobs(s, s);

    /* An upload keeps the path it was given (the runner reads it there). */
    ld_job up = contract_job("job_up", "k_one", 100, "/data/jobs/job_up.audio");
    CHECK(op->insert(s, &up, &err) == LD_OK);
    ld_job_clear(&up);
    ld_job g = {0};
    CHECK(op->get(s, "job_up", &g, &err) == LD_OK && g.url == NULL);
    CHECK(g.audio_path && !strcmp(g.audio_path, "/data/jobs/job_up.audio"));
    ld_job_clear(&g);

    /* Wherever the row says it was, the file is looked up in today's jobs dir:
     * new rows hold the file name, old ones the data dir as it was typed. */
    char file[300];
    CHECK(ld_job_audio_path("/srv/d/jobs", "job_up.audio", file, sizeof file));
    CHECK_STR(file, "/srv/d/jobs/job_up.audio");
    CHECK(ld_job_audio_path("/srv/d/jobs", "d/jobs/job_up.audio", file, sizeof file));
    CHECK_STR(file, "/srv/d/jobs/job_up.audio");
    CHECK(!ld_job_audio_path("/srv/d/jobs", NULL, file, sizeof file) && !*file);
    CHECK(!ld_job_audio_path("/srv/d/jobs", "d/jobs/", file, sizeof file) && !*file);

    /* A claimed job, a cancel requested while it runs, a finished one with a
     * delivery attempt, a queued one: then the process "dies" (close). */
    ld_job j = contract_job("job_q", "k_one", 200, NULL);
    CHECK(op->insert(s, &j, &err) == LD_OK);
    ld_job_clear(&j);
    j = contract_job("job_done", "k_one", 300, NULL);
    CHECK(op->insert(s, &j, &err) == LD_OK);
    ld_job_clear(&j);
    ld_job c = {0};
    bool found = false;
    CHECK(op->claim(s, 5000, &c, &found, &err) == LD_OK && found && !strcmp(c.id, "job_up"));
    ld_job_clear(&c);
    ld_job_state st;
    CHECK(op->cancel(s, "job_up", "k_one", 5100, &st, &err) == LD_OK && st == LD_JOB_PROCESSING);
    CHECK(op->claim(s, 5200, &c, &found, &err) == LD_OK && found && !strcmp(c.id, "job_q"));
    ld_job_clear(&c);
    CHECK(op->claim(s, 5300, &c, &found, &err) == LD_OK && found && !strcmp(c.id, "job_done"));
    ld_job_clear(&c);
    CHECK(op->finish(s, "job_done", LD_JOB_COMPLETED, "{}", NULL, 6000, &err) == LD_OK);
    CHECK(op->record_attempt(s, "job_done", "[{\"attempt\":1,\"status\":500}]", LD_DELIVERY_PENDING, 7000, 0,
                             &err) == LD_OK);
    CHECK(op->requeue(s, "job_q", &err) == LD_OK);
    op->close(s);

    /* Reopen: everything kept; claimed-but-unfinished jobs are queued again. */
    s = ld_store_jobs_open_sqlite(path, &err);
    CHECK(s != NULL);
    if (!s)
        TEST_MAIN_END();
    op = s->ops;
    CHECK(op->count(s, LD_JOB_QUEUED) == 2); /* job_up (was processing), job_q */
    CHECK(op->count(s, LD_JOB_PROCESSING) == 0);
    CHECK(op->count(s, LD_JOB_COMPLETED) == 1);
    CHECK(op->get(s, "job_done", &g, &err) == LD_OK);
    CHECK(g.attempts_json && strstr(g.attempts_json, "\"status\":500"));
    CHECK(g.delivery == LD_DELIVERY_PENDING && g.next_attempt_ms == 7000);
    ld_job_clear(&g);
    CHECK(op->next_due(s) == 7000);
    CHECK(op->claim(s, 8000, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_up");
    CHECK(c.runs == 2 && c.cancel_requested); /* the runner finishes it as cancelled */
    ld_job_clear(&c);
    CHECK(op->claim(s, 8001, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_q");
    CHECK(c.runs == 2);
    ld_job_clear(&c);

    /* A purge deletes one batch per call (one transaction, the store free in
     * between): 1,200 expired jobs go in 500 + 500 + 200, then nothing is left. */
    for (int i = 0; i < 1200; i++) {
        char id[40];
        snprintf(id, sizeof id, "job_old%04d", i);
        j = contract_job(id, "k_old", 10, NULL);
        j.state = LD_JOB_COMPLETED;
        j.finished_ms = 20;
        CHECK(op->insert(s, &j, &err) == LD_OK);
        ld_job_clear(&j);
    }
    contract_gone = 0;
    CHECK(op->purge(s, 1000, contract_on_gone, NULL) == 500);
    CHECK(op->purge(s, 1000, contract_on_gone, NULL) == 500);
    CHECK(op->purge(s, 1000, contract_on_gone, NULL) == 200);
    CHECK(op->purge(s, 1000, contract_on_gone, NULL) == 0 && contract_gone == 1200);
    CHECK(op->exists(s, "job_q") && !op->exists(s, "job_old0000"));

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
