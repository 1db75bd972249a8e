/* The store contract (store/store.h, store/jobs_store.h): what every backend
 * must answer alike, written once and run against the embedded backend
 * (store_limits_test.c, jobs_store_test.c) and the Redis one
 * (store_redis_test.c, store_jobs_redis_test.c). Header-only like test.h;
 * each backend's own test adds what only it does (reopening, two replicas,
 * outages). `a` and `b` are two handles on the same state (two replicas); a
 * backend whose handles do not share in-process caches passes the same one. */
#ifndef LD_TEST_STORE_CONTRACT_H
#define LD_TEST_STORE_CONTRACT_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/jobs_store.h"
#include "store/store.h"
#include "test.h"
#include "util/time.h"

/* Sliding windows with explicit clocks. */
static inline void contract_window(ld_store *s)
{
    ld_window w;
    const int64_t t0 = 1000000, W = 60000;
    /* Three hits at t0, t0+10 s, t0+20 s fill a limit of 3. */
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0, &w, NULL) == LD_OK && w.allowed && w.count == 1);
    CHECK(w.oldest_ms == t0);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 10000, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 20000, &w, NULL) == LD_OK && w.allowed && w.count == 3);
    /* Fourth refused; the oldest leaves at exactly t0 + 60 s. */
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + 30000, &w, NULL) == LD_OK && !w.allowed && w.count == 3);
    CHECK(w.oldest_ms == t0);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + W - 1, &w, NULL) == LD_OK && !w.allowed);
    /* Peek does not record. */
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 3);
    CHECK(w.oldest_ms == t0 + 10000);
    /* Undo gives the slot back. */
    ld_store_window_undo(s, "k_a");
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    /* Long after, the window is empty again. */
    CHECK(ld_store_window_peek(s, "k_a", 3, W, t0 + 10 * W, &w, NULL) == LD_OK && w.count == 0 && w.oldest_ms == 0);
    /* A clock stepping back does not break ordering: the hit counts as "now". */
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0, &w, NULL) == LD_OK && w.allowed);
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0 - 5000, &w, NULL) == LD_OK && w.allowed && w.count == 2);
    CHECK(ld_store_window_hit(s, "k_b", 2, W, t0 + W, &w, NULL) == LD_OK && w.allowed && w.count == 1);
    /* Two hits in the same millisecond are two hits. */
    CHECK(ld_store_window_hit(s, "k_same", 5, W, t0, &w, NULL) == LD_OK && w.count == 1);
    CHECK(ld_store_window_hit(s, "k_same", 5, W, t0, &w, NULL) == LD_OK && w.count == 2);
    /* A lowered limit keeps the newest hits. */
    CHECK(ld_store_window_peek(s, "k_same", 1, W, t0, &w, NULL) == LD_OK && !w.allowed && w.count == 1);
    /* Subjects are independent; bad arguments are errors, not admissions. */
    CHECK(ld_store_window_peek(s, "k_c", 3, W, t0, &w, NULL) == LD_OK && w.allowed && w.count == 0);
    ld_error err;
    CHECK(ld_store_window_hit(s, "k_c", 0, W, t0, &w, &err) == LD_ERR_INTERNAL);
    CHECK(ld_store_window_hit(s, "", 3, W, t0, &w, &err) == LD_ERR_INTERNAL);
}

/* Concurrency leases: limit, release, renewal, expiry. */
static inline void contract_leases(ld_store *s)
{
    char a[32], b[32], c[32];
    bool ok;
    int held;
    const int64_t t0 = 2000000;
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, a, &ok, &held, NULL) == LD_OK && ok && held == 1);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, b, &ok, &held, NULL) == LD_OK && ok && held == 2);
    CHECK(strcmp(a, b) != 0 && strncmp(a, "lease_", 6) == 0);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, c, &ok, &held, NULL) == LD_OK && !ok && held == 2);
    CHECK(ld_store_lease_count(s, "k_l", t0) == 2);
    ld_store_lease_release(s, "k_l", a);
    ld_store_lease_release(s, "k_l", a); /* double release is harmless */
    CHECK(ld_store_lease_count(s, "k_l", t0) == 1);
    CHECK(ld_store_lease_acquire(s, "k_l", 2, 1000, t0, c, &ok, &held, NULL) == LD_OK && ok && held == 2);
    /* Renewal keeps b alive past its first expiry; c expires and frees its slot. */
    CHECK(ld_store_lease_renew(s, "k_l", b, 5000, t0 + 900, NULL) == LD_OK);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 1000) == 1);
    CHECK(ld_store_lease_renew(s, "k_l", c, 5000, t0 + 1000, NULL) == LD_ERR_NOT_FOUND);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 5899) == 1);
    CHECK(ld_store_lease_count(s, "k_l", t0 + 5900) == 0);
    /* A crashed replica never releases: its slots come back at expiry. */
    CHECK(ld_store_lease_acquire(s, "k_crash", 1, 3000, t0, a, &ok, &held, NULL) == LD_OK && ok);
    CHECK(ld_store_lease_acquire(s, "k_crash", 1, 3000, t0 + 2999, b, &ok, &held, NULL) == LD_OK && !ok);
    CHECK(ld_store_lease_acquire(s, "k_crash", 1, 3000, t0 + 3000, b, &ok, &held, NULL) == LD_OK && ok &&
          held == 1);
}

/* Daily usage, revocations and key records, written through a and read through b. */
static inline void contract_shared(ld_store *a, ld_store *b)
{
    ld_error err;
    double total = -1, got = -1;
    CHECK(ld_store_usage_get(a, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 0);
    CHECK(ld_store_usage_add(a, "k_u", "2030-01-01", 12.5, &total, &err) == LD_OK && total == 12.5);
    CHECK(ld_store_usage_add(b, "k_u", "2030-01-01", 7.5, &total, &err) == LD_OK && total == 20);
    CHECK(ld_store_usage_get(a, "k_u", "2030-01-02", &got, &err) == LD_OK && got == 0);
    CHECK(ld_store_usage_get(a, "k_u", "2030-01-01", &got, &err) == LD_OK && got == 20);

    bool rev = true;
    CHECK(ld_store_is_revoked(b, "k_r", &rev, &err) == LD_OK && !rev);
    CHECK(ld_store_revoke(a, "k_r", 1700000000, &err) == LD_OK);
    CHECK(ld_store_revoke(a, "k_r", 1800000000, &err) == LD_OK);      /* keeps the first time */
    CHECK(ld_store_is_revoked(a, "k_r", &rev, &err) == LD_OK && rev); /* own handle: at once */
    rev = false;
    for (int i = 0; i < 40 && !rev; i++) { /* the other handle within 2 s */
        CHECK(ld_store_is_revoked(b, "k_r", &rev, &err) == LD_OK);
        if (!rev)
            usleep(50 * 1000);
    }
    CHECK(rev);
    CHECK(ld_store_is_revoked(b, "k_other", &rev, &err) == LD_OK && !rev);

    ld_store_key k = {.key_id = "k_1",
                      .name = "first",
                      .issuer = "abcd0123",
                      .issued_at = 100,
                      .rpm = 5,
                      .concurrency = 2,
                      .hours_per_day = 1.5};
    CHECK(ld_store_key_put(a, &k, &err) == LD_OK);
    k = (ld_store_key){.key_id = "k_r",
                       .name = "second",
                       .issuer = "abcd0123",
                       .issued_at = 200,
                       .expires_at = 300,
                       .rpm = 60,
                       .concurrency = 10,
                       .hours_per_day = 100};
    CHECK(ld_store_key_put(a, &k, &err) == LD_OK);
    ld_store_key *keys = NULL;
    size_t n = 0;
    CHECK(ld_store_key_list(b, &keys, &n, &err) == LD_OK && n == 2);
    if (n == 2) {
        CHECK_STR(keys[0].key_id, "k_1");
        CHECK_STR(keys[0].name, "first");
        CHECK(keys[0].rpm == 5 && keys[0].concurrency == 2 && keys[0].hours_per_day == 1.5);
        CHECK(keys[0].revoked_at == 0);
        CHECK_STR(keys[1].key_id, "k_r");
        CHECK(keys[1].revoked_at == 1700000000 && keys[1].expires_at == 300);
    }
    ld_store_free_keys(keys);
    ld_store_key one;
    bool found = false;
    CHECK(ld_store_key_get(b, "k_1", &one, &found, &err) == LD_OK && found && one.issued_at == 100);
    CHECK(ld_store_key_get(b, "k_none", &one, &found, &err) == LD_OK && !found);

    /* Once-only marks: one first per name and period, whichever handle asks. */
    bool first = false;
    int64_t now = ld_time_now_ms();
    CHECK(ld_store_mark_once(a, "warn:k_u:2030-01-01:80", 300, now, &first, &err) == LD_OK && first);
    CHECK(ld_store_mark_once(b, "warn:k_u:2030-01-01:80", 300, now, &first, &err) == LD_OK && !first);
    CHECK(ld_store_mark_once(a, "warn:k_u:2030-01-01:80", 300, now + 10, &first, &err) == LD_OK && !first);
    CHECK(ld_store_mark_once(b, "warn:k_u:2030-01-01:95", 300, now, &first, &err) == LD_OK && first);
    usleep(450 * 1000); /* past the TTL: the next period's first */
    now = ld_time_now_ms();
    CHECK(ld_store_mark_once(b, "warn:k_u:2030-01-01:80", 300, now, &first, &err) == LD_OK && first);
    CHECK(ld_store_mark_once(a, "warn:k_u:2030-01-01:80", 300, now, &first, &err) == LD_OK && !first);
    CHECK(ld_store_mark_once(a, "", 300, now, &first, &err) != LD_OK && !first);
}

/* ---- job store ---- */

/* A queued job of `key`; `audio` is an upload's path, NULL for a URL job. */
static inline ld_job contract_job(const char *id, const char *key, int64_t created, const char *audio)
{
    ld_job j = {0};
    snprintf(j.id, sizeof j.id, "%s", id);
    snprintf(j.key_id, sizeof j.key_id, "%s", key);
    snprintf(j.request_id, sizeof j.request_id, "req_%s", id);
    j.state = LD_JOB_QUEUED;
    j.created_ms = created;
    j.key_json = strdup("{\"key_id\":\"k\"}");
    j.opts_json = strdup("{\"language\":\"en\"}");
    j.callback_url = strdup("http://127.0.0.1:9/hook");
    if (audio)
        j.audio_path = strdup(audio);
    else
        j.url = strdup("https://example.com/a.wav");
    return j;
}

static int contract_gone;
static inline void contract_on_gone(void *ud, const ld_job *job)
{
    (void)ud;
    (void)job;
    contract_gone++;
}

/* The job lifecycle on an empty job store, through two handles: insert and
 * get, claim order, progress, finish once, delivery bookkeeping, cancel,
 * list, count, purge. URL jobs only (uploads move differently per backend). */
static inline void contract_jobs(ld_job_store *a, ld_job_store *b)
{
    const ld_job_store_ops *op = a->ops;
    ld_error err = {0};
    const char *ids[] = {"job_c1", "job_c2", "job_c3"};
    for (int i = 0; i < 3; i++) {
        ld_job j = contract_job(ids[i], "k_one", 1000 * (i + 1), NULL);
        CHECK(op->insert(a, &j, &err) == LD_OK);
        CHECK(i || op->insert(a, &j, &err) != LD_OK); /* duplicate id */
        ld_job_clear(&j);
    }
    ld_job other = contract_job("job_c0", "k_two", 500, NULL);
    CHECK(op->insert(a, &other, &err) == LD_OK);
    ld_job_clear(&other);
    CHECK(op->count(b, LD_JOB_QUEUED) == 4 && op->exists(b, "job_c2") && !op->exists(b, "job_nope"));

    /* get round-trips the fields; a missing id is NOT_FOUND */
    ld_job g = {0};
    CHECK(op->get(b, "job_c2", &g, &err) == LD_OK);
    CHECK_STR(g.key_id, "k_one");
    CHECK_STR(g.request_id, "req_job_c2");
    CHECK(g.state == LD_JOB_QUEUED && g.created_ms == 2000 && g.audio_path == NULL);
    CHECK(g.url && !strcmp(g.url, "https://example.com/a.wav"));
    CHECK(g.callback_url && !strcmp(g.callback_url, "http://127.0.0.1:9/hook"));
    CHECK(g.opts_json && strstr(g.opts_json, "\"en\""));
    ld_job_clear(&g);
    CHECK(op->get(b, "job_nope", &g, &err) == LD_ERR_NOT_FOUND);

    /* claim takes the oldest queued job, whichever handle asks */
    ld_job c = {0};
    bool found = false;
    CHECK(op->claim(b, 5000, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_c0");
    CHECK(c.state == LD_JOB_PROCESSING && c.runs == 1 && c.started_ms == 5000);
    ld_job_clear(&c);
    CHECK(op->claim(a, 5001, &c, &found, &err) == LD_OK && found);
    CHECK_STR(c.id, "job_c1");
    ld_job_clear(&c);
    CHECK(op->count(a, LD_JOB_PROCESSING) == 2 && op->count(a, LD_JOB_QUEUED) == 2);

    /* progress, then finish once: delivery is armed for now */
    CHECK(op->set_progress(a, "job_c1", 0.5, &err) == LD_OK);
    CHECK(op->get(b, "job_c1", &g, &err) == LD_OK);
    CHECK_NEAR(g.progress, 0.5, 1e-9);
    ld_job_clear(&g);
    CHECK(op->finish(a, "job_c1", LD_JOB_COMPLETED, "{\"text\":\"hi\"}", NULL, 6000, &err) == LD_OK);
    CHECK(op->finish(b, "job_c1", LD_JOB_FAILED, NULL, "{}", 6001, &err) == LD_ERR_NOT_FOUND);
    CHECK(op->get(b, "job_c1", &g, &err) == LD_OK);
    CHECK(g.state == LD_JOB_COMPLETED && g.finished_ms == 6000);
    CHECK_NEAR(g.progress, 1.0, 1e-9);
    CHECK(g.result_json && !strcmp(g.result_json, "{\"text\":\"hi\"}"));
    CHECK(g.delivery == LD_DELIVERY_PENDING && g.next_attempt_ms == 6000);
    ld_job_clear(&g);

    /* due / record_attempt / next_due */
    ld_job *rows = NULL;
    size_t n = 0;
    CHECK(op->due(b, 5999, 10, &rows, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(rows, n);
    CHECK(op->due(b, 6000, 10, &rows, &n, &err) == LD_OK && n == 1 && !strcmp(rows[0].id, "job_c1"));
    ld_job_list_free(rows, n);
    CHECK(op->record_attempt(a, "job_c1", "[{\"status\":500}]", LD_DELIVERY_PENDING, 7000, 0, &err) == LD_OK);
    CHECK(op->next_due(b) == 7000);
    CHECK(op->record_attempt(b, "job_c1", "[{\"status\":500},{\"status\":200}]", LD_DELIVERY_DELIVERED, 0, 7100,
                             &err) == LD_OK);
    CHECK(op->next_due(a) == 0);
    CHECK(op->get(a, "job_c1", &g, &err) == LD_OK && g.delivery == LD_DELIVERY_DELIVERED &&
          g.delivered_ms == 7100 && g.attempts_json && strstr(g.attempts_json, "200"));
    ld_job_clear(&g);

    /* cancel: another key's job is not found; queued -> cancelled; processing -> flagged */
    ld_job_state st;
    CHECK(op->cancel(a, "job_c2", "k_two", 6100, &st, &err) == LD_ERR_NOT_FOUND);
    CHECK(op->cancel(a, "job_c2", "k_one", 6100, &st, &err) == LD_OK && st == LD_JOB_CANCELLED);
    CHECK(op->count(b, LD_JOB_CANCELLED) == 1);
    CHECK(op->cancel(b, "job_c0", "k_two", 6200, &st, &err) == LD_OK && st == LD_JOB_PROCESSING);
    CHECK(op->get(a, "job_c0", &g, &err) == LD_OK && g.cancel_requested);
    ld_job_clear(&g);
    CHECK(op->claim(a, 6300, &c, &found, &err) == LD_OK && found); /* job_c2 is no longer claimable */
    CHECK_STR(c.id, "job_c3");
    ld_job_clear(&c);
    CHECK(op->requeue(a, "job_c3", &err) == LD_OK && op->count(b, LD_JOB_QUEUED) == 1);

    /* list: newest first, limited, only the key's own jobs */
    CHECK(op->list(b, "k_one", -1, 2, &rows, &n, &err) == LD_OK && n == 2);
    CHECK(n == 2 && !strcmp(rows[0].id, "job_c3") && !strcmp(rows[1].id, "job_c2"));
    ld_job_list_free(rows, n);
    CHECK(op->list(b, "k_one", -1, 20, &rows, &n, &err) == LD_OK && n == 3);
    ld_job_list_free(rows, n);
    CHECK(op->list(b, "k_nobody", -1, 20, &rows, &n, &err) == LD_OK && n == 0);
    ld_job_list_free(rows, n);
    /* ... and by state (GET /v1/jobs?status=) */
    CHECK(op->list(b, "k_one", LD_JOB_CANCELLED, 20, &rows, &n, &err) == LD_OK && n == 1);
    CHECK(n == 1 && !strcmp(rows[0].id, "job_c2") && rows[0].state == LD_JOB_CANCELLED);
    ld_job_list_free(rows, n);
    CHECK(op->list(a, "k_one", LD_JOB_QUEUED, 20, &rows, &n, &err) == LD_OK && n == 1);
    CHECK(n == 1 && !strcmp(rows[0].id, "job_c3"));
    ld_job_list_free(rows, n);
    CHECK(op->list(b, "k_one", LD_JOB_FAILED, 20, &rows, &n, &err) == LD_OK && n == 0 && !rows);
    ld_job_list_free(rows, n);
    CHECK(op->list(b, "k_two", LD_JOB_PROCESSING, 20, &rows, &n, &err) == LD_OK && n == 1);
    CHECK(n == 1 && !strcmp(rows[0].id, "job_c0"));
    ld_job_list_free(rows, n);

    /* purge: only finished jobs older than the cutoff */
    contract_gone = 0;
    CHECK(op->purge(a, 6050, contract_on_gone, NULL) == 1 && contract_gone == 1); /* job_c1 (6000) */
    CHECK(!op->exists(b, "job_c1") && op->exists(b, "job_c2"));
    CHECK(op->purge(b, 1000000, contract_on_gone, NULL) == 1 && contract_gone == 2); /* job_c2 */
    CHECK(op->exists(a, "job_c3") && op->exists(a, "job_c0"));                       /* unfinished: kept */
    CHECK(op->count(a, LD_JOB_COMPLETED) == 0 && op->count(a, LD_JOB_CANCELLED) == 0);

    /* Leave the store empty for the backend's own tests. */
    CHECK(op->cancel(a, "job_c3", "k_one", 8000, &st, &err) == LD_OK && st == LD_JOB_CANCELLED);
    CHECK(op->finish(b, "job_c0", LD_JOB_CANCELLED, NULL, NULL, 8000, &err) == LD_OK);
    CHECK(op->purge(a, 1000000, contract_on_gone, NULL) == 2);
    for (ld_job_state k = LD_JOB_QUEUED; k <= LD_JOB_CANCELLED; k++)
        CHECK(op->count(b, k) == 0);
}

#endif
