/* The metrics registry: exact exposition text, escaping, histogram buckets,
 * the label-set cap, re-registration, and exact totals under concurrent
 * updates from several threads. */
#include <pthread.h>
#include <stdlib.h>

#include "test.h"
#include "util/metrics.h"

static void test_exposition(void)
{
    ld_metrics *reg = ld_metrics_new();
    ld_metric *c = ld_metrics_register(reg, &(ld_metric_desc){.name = "t_requests_total",
                                                              .help = "Requests\nby \\ code",
                                                              .type = LD_METRIC_COUNTER,
                                                              .nlabels = 2,
                                                              .labels = {"route", "code"}});
    ld_metric *g = ld_metrics_register(
        reg, &(ld_metric_desc){.name = "t_depth", .help = "Depth", .type = LD_METRIC_GAUGE});
    ld_metric *h = ld_metrics_register(reg, &(ld_metric_desc){.name = "t_seconds",
                                                              .help = "Latency",
                                                              .type = LD_METRIC_HISTOGRAM,
                                                              .nlabels = 1,
                                                              .labels = {"route"},
                                                              .nbuckets = 3,
                                                              .buckets = {0.1, 0.5, 2.5}});
    CHECK(c && g && h);
    ld_metric_add(c, (const char *const[]){"/v1/listen", "200"}, 2);
    ld_metric_add(c, (const char *const[]){"/v1/listen", "200"}, 1);
    ld_metric_add(c, (const char *const[]){"a\"b\\c\nd", "401"}, 1);
    ld_metric_set(g, NULL, 2.5);
    ld_metric_add(g, NULL, -1);
    const char *const hv[] = {"/x"};
    ld_metric_observe(h, hv, 0.1); /* le is inclusive */
    ld_metric_observe(h, hv, 0.3);
    ld_metric_observe(h, hv, 0.3);
    ld_metric_observe(h, hv, 100); /* only +Inf */
    size_t len = 0;
    char *text = ld_metrics_render(reg, &len);
    const char *want =
        "# HELP t_requests_total Requests\\nby \\\\ code\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total{route=\"/v1/listen\",code=\"200\"} 3\n"
        "t_requests_total{route=\"a\\\"b\\\\c\\nd\",code=\"401\"} 1\n"
        "# HELP t_depth Depth\n"
        "# TYPE t_depth gauge\n"
        "t_depth 1.5\n"
        "# HELP t_seconds Latency\n"
        "# TYPE t_seconds histogram\n"
        "t_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"
        "t_seconds_bucket{route=\"/x\",le=\"0.5\"} 3\n"
        "t_seconds_bucket{route=\"/x\",le=\"2.5\"} 3\n"
        "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
        "t_seconds_sum{route=\"/x\"} 100.7\n"
        "t_seconds_count{route=\"/x\"} 4\n";
    CHECK(text != NULL);
    if (text) {
        CHECK_STR(text, want);
        CHECK(len == strlen(want));
        if (strcmp(text, want))
            fprintf(stderr, "got:\n%s", text);
    }
    free(text);
    CHECK(ld_series_count(ld_metric_series(h, hv)) == 4);
    ld_metrics_free(reg);
}

static void test_registration(void)
{
    ld_metrics *reg = ld_metrics_new();
    ld_metric_desc d = {.name = "t_x_total", .help = "x", .type = LD_METRIC_COUNTER, .nlabels = 1, .labels = {"a"}};
    ld_metric *m = ld_metrics_register(reg, &d);
    CHECK(m && ld_metrics_register(reg, &d) == m); /* same name and shape: the same family */
    d.labels[0] = "b";
    CHECK(ld_metrics_register(reg, &d) == NULL); /* same name, other labels: refused */
    CHECK(!ld_metrics_register(reg, &(ld_metric_desc){.name = "9bad", .type = LD_METRIC_COUNTER}));
    CHECK(!ld_metrics_register(reg, &(ld_metric_desc){.name = "t_h",
                                                      .type = LD_METRIC_HISTOGRAM,
                                                      .nlabels = 1,
                                                      .labels = {"le"},
                                                      .nbuckets = 1,
                                                      .buckets = {1}}));
    CHECK(!ld_metrics_register(reg, &(ld_metric_desc){.name = "t_h",
                                                      .type = LD_METRIC_HISTOGRAM,
                                                      .nbuckets = 2,
                                                      .buckets = {2, 1}})); /* bounds must ascend */
    CHECK(!ld_metrics_register(
        reg, &(ld_metric_desc){.name = "t_l", .type = LD_METRIC_GAUGE, .nlabels = 1, .labels = {"__x"}}));
    /* An unlabelled counter is rendered at 0 before its first event. */
    ld_metrics_register(reg, &(ld_metric_desc){.name = "t_plain_total", .help = "p", .type = LD_METRIC_COUNTER});
    char *text = ld_metrics_render(reg, NULL);
    CHECK(text && strstr(text, "\nt_plain_total 0\n"));
    free(text);
    ld_metrics_free(reg);
}

static void test_cap(void)
{
    ld_metrics *reg = ld_metrics_new();
    ld_metric *m = ld_metrics_register(reg, &(ld_metric_desc){.name = "t_key_total",
                                                              .help = "k",
                                                              .type = LD_METRIC_COUNTER,
                                                              .nlabels = 1,
                                                              .labels = {"key_id"},
                                                              .max_series = 3});
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "k_%d", i);
        ld_metric_add(m, (const char *const[]){id}, 1);
    }
    ld_metric_add(m, (const char *const[]){"k_0"}, 1); /* an existing one keeps its own series */
    char *text = ld_metrics_render(reg, NULL);
    CHECK(text && strstr(text, "t_key_total{key_id=\"k_0\"} 2\n"));
    CHECK(text && strstr(text, "t_key_total{key_id=\"k_2\"} 1\n"));
    CHECK(text && !strstr(text, "k_3"));
    CHECK(text && strstr(text, "t_key_total{key_id=\"other\"} 7\n"));
    /* A real "other" value is the overflow series, never a duplicate line. */
    ld_metric_add(m, (const char *const[]){"other"}, 1);
    free(text);
    text = ld_metrics_render(reg, NULL);
    CHECK(text && strstr(text, "t_key_total{key_id=\"other\"} 8\n"));
    const char *first = text ? strstr(text, "key_id=\"other\"") : NULL;
    CHECK(first && !strstr(first + 1, "key_id=\"other\""));
    free(text);
    ld_metrics_free(reg);
}

#define THREADS 4
#define ITERS 50000

typedef struct {
    ld_metric *c, *h;
    int id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    char label[8];
    for (int i = 0; i < ITERS; i++) {
        snprintf(label, sizeof label, "s%d", i % 8); /* all threads race to create the same 8 series */
        ld_metric_add(a->c, (const char *const[]){label}, 1);
        ld_metric_observe(a->h, NULL, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
    }
    return NULL;
}

static void test_concurrency(void)
{
    ld_metrics *reg = ld_metrics_new();
    worker_arg args[THREADS];
    ld_metric *c = ld_metrics_register(
        reg, &(ld_metric_desc){
                 .name = "t_c_total", .help = "c", .type = LD_METRIC_COUNTER, .nlabels = 1, .labels = {"s"}});
    ld_metric *h = ld_metrics_register(
        reg, &(ld_metric_desc){
                 .name = "t_h", .help = "h", .type = LD_METRIC_HISTOGRAM, .nbuckets = 2, .buckets = {0.5, 1}});
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){c, h, i};
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    double total = 0;
    for (int i = 0; i < 8; i++) {
        char label[8];
        snprintf(label, sizeof label, "s%d", i);
        double v = ld_series_value(ld_metric_series(c, (const char *const[]){label}));
        CHECK(v == THREADS * ITERS / 8);
        total += v;
    }
    CHECK(total == THREADS * ITERS);
    ld_series *hs = ld_metric_series(h, NULL);
    CHECK(ld_series_count(hs) == THREADS * ITERS);
    CHECK(ld_series_value(hs) == THREADS * (ITERS / 4) * 3.0); /* 0 + 0.5 + 1 + 1.5 per four */
    char *text = ld_metrics_render(reg, NULL);
    char want[128];
    snprintf(want, sizeof want, "t_h_bucket{le=\"0.5\"} %d\nt_h_bucket{le=\"1\"} %d\nt_h_bucket{le=\"+Inf\"} %d\n",
             THREADS * ITERS / 2, THREADS * ITERS * 3 / 4, THREADS * ITERS);
    CHECK(text && strstr(text, want));
    /* Eight series exactly: no duplicates from the creation race. */
    int lines = 0;
    for (const char *p = text; p && (p = strstr(p, "t_c_total{")); p++)
        lines++;
    CHECK(lines == 8);
    free(text);
    ld_metrics_free(reg);
}

static int hook_calls;
static void hook(void *ud)
{
    hook_calls++;
    ld_metric_set(ud, NULL, 42);
}

static void test_hooks_and_events(void)
{
    ld_metrics *reg = ld_metrics_new();
    ld_metric *g = ld_metrics_register(reg, &(ld_metric_desc){.name = "t_g", .help = "g", .type = LD_METRIC_GAUGE});
    CHECK(ld_metrics_on_render(reg, hook, g) == 0);
    char *text = ld_metrics_render(reg, NULL);
    CHECK(hook_calls == 1 && text && strstr(text, "\nt_g 42\n"));
    free(text);
    ld_metrics_remove_hook(reg, hook, g);
    free(ld_metrics_render(reg, NULL));
    CHECK(hook_calls == 1);
    ld_metrics_free(reg);

    /* Global events: unknown label values fold into "other". */
    ld_metrics_auth_failure("revoked");
    ld_metrics_auth_failure("bogus");
    ld_metrics_audio("batch", "k_1", 2.5);
    ld_metrics_rtf("batch", 1, 4);
    text = ld_metrics_render(ld_metrics_global(), NULL);
    CHECK(text && strstr(text, "listend_auth_failures_total{reason=\"revoked\"} 1\n"));
    CHECK(text && strstr(text, "listend_auth_failures_total{reason=\"missing\"} 0\n"));
    CHECK(text && strstr(text, "listend_auth_failures_total{reason=\"other\"} 1\n"));
    CHECK(text && strstr(text, "listend_audio_seconds_total{mode=\"batch\"} 2.5\n"));
    CHECK(text && strstr(text, "listend_key_audio_seconds_total{key_id=\"k_1\"} 2.5\n"));
    CHECK(text && strstr(text, "listend_asr_real_time_factor_bucket{mode=\"batch\",le=\"0.2\"} 0\n"));
    CHECK(text && strstr(text, "listend_asr_real_time_factor_bucket{mode=\"batch\",le=\"0.3\"} 1\n"));
    free(text);
}

int main(void)
{
    test_exposition();
    test_registration();
    test_cap();
    test_concurrency();
    test_hooks_and_events();
    TEST_MAIN_END();
}
