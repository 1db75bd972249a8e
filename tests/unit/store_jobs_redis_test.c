/* Redis job store against a real redis-server: the job store contract
 * (store_contract.h) seen from two replicas (two data dirs), then what is its
 * own: upload audio travelling through Redis, claim renewal, takeover after a
 * replica dies (a forked child that claims and _exits), closing hands held
 * jobs back, purge with the index entries. Skips when redis-server is
 * missing. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "redis_fixture.h"
#include "store/jobs_store.h"
#include "store/redis.h"
#include "store/store.h"
#include "store_contract.h"
#include "test.h"
#include "util/fs.h"

static void test_jobs(ld_store *limits, const char *dir_a, const char *dir_b)
{
    ld_error err = {0};
    ld_job_store *a = ld_store_jobs_open_redis(limits, dir_a, 600, &err);
    ld_job_store *b = ld_store_jobs_open_redis(limits, dir_b, 600, &err);
    CHECK(a && b);
    if (!a || !b)
        return;
    const ld_job_store_ops *op = a->ops;
    contract_jobs(a, b); /* two replicas */

    /* An upload on replica A: 9 MB (three chunks) moves into Redis. */
    char up[300];
    snprintf(up, sizeof up, "%s/jobs/job_up.audio", dir_a);
    char jobs_a[300];
    snprintf(jobs_a, sizeof jobs_a, "%s/jobs", dir_a);
    ld_fs_mkdirs(jobs_a, 0700);
    size_t big = 9u << 20;
    char *bytes = malloc(big);
    for (size_t i = 0; i < big; i++)
        bytes[i] = (char)(i * 31 + (i >> 12));
    CHECK(ld_fs_write_atomic(up, bytes, big, 0600) == 0);
    ld_job j = contract_job("job_up", "k_one", 1000, up);
    CHECK(op->insert(a, &j, &err) == LD_OK);
    CHECK(op->insert(a, &j, &err) != LD_OK); /* duplicate id */
    ld_job_clear(&j);
    CHECK(access(up, F_OK) != 0); /* Redis holds it now */
    j = contract_job("job_url", "k_one", 2000, NULL);
    CHECK(op->insert(a, &j, &err) == LD_OK);
    ld_job_clear(&j);
    /* one key: its jobs are claimed oldest first (keys take turns between them) */
    j = contract_job("job_two", "k_one", 3000, NULL);
    CHECK(op->insert(a, &j, &err) == LD_OK);
    ld_job_clear(&j);
    CHECK(op->count(b, LD_JOB_QUEUED) == 3 && op->exists(b, "job_url") && !op->exists(b, "job_none"));

    /* Replica B claims the oldest and gets the audio in its own data dir. */
    bool found = false;
    ld_job c = {0};
    CHECK(op->claim(b, 5000, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_up");
    CHECK(c.state == LD_JOB_PROCESSING && c.runs == 1 && c.started_ms == 5000);
    char want[300];
    snprintf(want, sizeof want, "%s/jobs/job_up.audio", dir_b);
    CHECK(c.audio_path && strcmp(c.audio_path, want) == 0);
    size_t len = 0;
    char *got = c.audio_path ? ld_fs_read(c.audio_path, big + 1, &len) : NULL;
    CHECK(got && len == big && memcmp(got, bytes, big) == 0);
    free(got);
    free(bytes);

    /* Renewed while held: still B's after three visibility timeouts. */
    usleep(1800 * 1000);
    ld_job other = {0};
    CHECK(op->claim(a, 6000, &other, &found, &err) == LD_OK && found && strcmp(other.id, "job_url") == 0);
    CHECK(op->set_progress(a, "job_url", 0.5, &err) == LD_OK);
    ld_job now = {0};
    CHECK(op->get(b, "job_url", &now, &err) == LD_OK && now.progress == 0.5 && now.state == LD_JOB_PROCESSING);
    ld_job_clear(&now);
    CHECK(op->requeue(a, "job_url", &err) == LD_OK);
    CHECK(op->count(b, LD_JOB_QUEUED) == 2 && op->count(b, LD_JOB_PROCESSING) == 1);
    ld_job_clear(&other);

    /* Two jobs finish (for the purge below). */
    CHECK(op->finish(b, "job_up", LD_JOB_COMPLETED, "{\"text\":\"hi\"}", NULL, 7000, &err) == LD_OK);
    ld_job_clear(&c);
    ld_job_state st;
    CHECK(op->cancel(a, "job_two", "k_one", 9000, &st, &err) == LD_OK && st == LD_JOB_CANCELLED);

    /* A replica dies holding a claim: another takes the job over after the timeout. */
    pid_t child = fork();
    if (child == 0) {
        ld_error e;
        ld_store *l = ld_store_open_redis(url, false, &e);
        ld_job_store *dying = l ? ld_store_jobs_open_redis(l, dir_a, 600, &e) : NULL;
        ld_job cj = {0};
        bool f = false;
        if (!dying || dying->ops->claim(dying, 10000, &cj, &f, &e) || !f)
            _exit(1);
        _exit(0); /* like kill -9: no requeue, no more renewals */
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(op->claim(b, 10100, &c, &found, &err) == LD_OK && !found); /* still claimed */
    usleep(700 * 1000);
    CHECK(op->claim(b, 10800, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_url");
    CHECK(c.runs == 3); /* A's requeued run, the dead child's, and this one */
    /* Closing a store hands its held jobs back at once. */
    op->close(b);
    b = ld_store_jobs_open_redis(limits, dir_b, 600, &err);
    CHECK(b && op->count(b, LD_JOB_QUEUED) == 1);
    ld_job_clear(&c);

    /* Purge removes finished jobs older than the cutoff, with their index entries. */
    contract_gone = 0;
    CHECK(op->purge(a, 9500, contract_on_gone, NULL) == 2 && contract_gone == 2);
    CHECK(!op->exists(a, "job_up") && !op->exists(a, "job_two") && op->exists(a, "job_url"));
    ld_job *list = NULL;
    size_t n = 0;
    CHECK(op->list(a, "k_two", -1, 10, &list, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(list, n);
    CHECK(op->count(a, LD_JOB_COMPLETED) == 0 && op->count(a, LD_JOB_CANCELLED) == 0);
    op->close(a);
    if (b)
        op->close(b);
}

int main(void)
{
    if (system("command -v redis-server >/dev/null 2>&1")) {
        fprintf(stderr, "SKIP: redis-server not installed\n");
        TEST_MAIN_END();
    }
    port = free_port();
    /* Generous command timeout: these tests check behaviour, and a sanitizer build on a loaded
     * machine can take longer than the 200 ms default for a 9 MB insert. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d?timeout_ms=5000", port);
    if (!redis_start())
        return 1;
    char dir_a[] = "/tmp/ld_jobs_redis_a_XXXXXX", dir_b[] = "/tmp/ld_jobs_redis_b_XXXXXX";
    CHECK(mkdtemp(dir_a) && mkdtemp(dir_b));
    ld_error err;
    ld_store *limits = ld_store_open_redis(url, false, &err);
    CHECK(limits != NULL);
    if (limits)
        test_jobs(limits, dir_a, dir_b);
    /* Without Redis the configured job store is SQLite in the data dir. */
    ld_store *emb = ld_store_open_embedded(dir_a, &err);
    ld_job_store *sq = emb ? ld_store_jobs_open_configured(dir_a, emb, &err) : NULL;
    CHECK(sq != NULL);
    if (sq)
        sq->ops->close(sq);
    ld_store_close(emb);
    ld_store_close(limits);
    redis_stop();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir_a, dir_b);
    if (system(cmd)) {
    }
    TEST_MAIN_END();
}
