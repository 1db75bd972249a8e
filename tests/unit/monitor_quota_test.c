/* Quota thresholds through the real embedded store: a charge that crosses
 * 80 % or 95 % reports once; a second monitor on the same store (another
 * replica, or this one after a restart) that sees the same crossing stays
 * quiet; the gauge follows every charge and admission. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "test.h"
#include "util/metrics.h"

static ld_metric *family(const char *name, ld_metric_type type, const char *label)
{
    return ld_metrics_register(ld_metrics_global(),
                               &(ld_metric_desc){.name = name,
                                                 .help = "",
                                                 .type = type,
                                                 .nlabels = 1,
                                                 .labels = {label},
                                                 .max_series = type == LD_METRIC_GAUGE ? 100 : 4});
}

static double value(ld_metric *m, const char *label)
{
    return ld_series_value(ld_metric_series(m, (const char *const[]){label}));
}

int main(void)
{
    char dir[] = "/tmp/ld_monitor_quota_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    ld_error err;
    ld_store *store = ld_store_open_embedded(dir, &err);
    CHECK(store != NULL);
    ld_monitor_config cfg = {0};
    ld_monitor *a = store ? ld_monitor_new(&cfg, store, &err) : NULL;
    ld_monitor *b = store ? ld_monitor_new(&cfg, store, &err) : NULL;
    CHECK(a && b);
    if (a && b) {
        ld_metric *warnings = family("listend_key_quota_warnings_total", LD_METRIC_COUNTER, "threshold");
        ld_metric *ratio = family("listend_key_quota_used_ratio", LD_METRIC_GAUGE, "key_id");
        CHECK(warnings && ratio);
        ld_key_claims k = {.key_id = "k_unit", .name = "unit", .hours_per_day = 100.0 / 3600};
        ld_monitor_charged(a, &k, 50, 50); /* 50 % */
        CHECK(value(warnings, "80") == 0 && value(warnings, "95") == 0);
        CHECK_NEAR(value(ratio, "k_unit"), 0.5, 1e-9);
        ld_monitor_charged(a, &k, 30.5, 80.5); /* 80 % crossed */
        CHECK(value(warnings, "80") == 1 && value(warnings, "95") == 0);
        ld_monitor_charged(b, &k, 5, 81); /* b also saw 80 crossed (a fallback total): quiet */
        CHECK(value(warnings, "80") == 1);
        ld_monitor_charged(a, &k, 1, 82); /* no line crossed */
        CHECK(value(warnings, "80") == 1 && value(warnings, "95") == 0);
        ld_monitor_charged(b, &k, 20, 102); /* 95 crossed, on b */
        CHECK(value(warnings, "95") == 1);
        ld_monitor_charged(a, &k, 30, 102); /* a's view crosses both: both already reported */
        CHECK(value(warnings, "80") == 1 && value(warnings, "95") == 1);
        CHECK_NEAR(value(ratio, "k_unit"), 1.02, 1e-9);
        ld_monitor_request(a, &k, 10); /* admission refreshes the gauge; -1 leaves it */
        CHECK_NEAR(value(ratio, "k_unit"), 0.1, 1e-9);
        ld_monitor_request(a, &k, -1);
        CHECK_NEAR(value(ratio, "k_unit"), 0.1, 1e-9);
        /* one charge across both lines reports both (another key) */
        ld_key_claims k2 = {.key_id = "k_jump", .name = "jump", .hours_per_day = 100.0 / 3600};
        ld_monitor_charged(b, &k2, 99, 99);
        CHECK(value(warnings, "80") == 2 && value(warnings, "95") == 2);
        /* a key without a quota reports nothing */
        ld_key_claims k0 = {.key_id = "k_zero", .name = "zero", .hours_per_day = 0};
        ld_monitor_charged(a, &k0, 10, 10);
        CHECK(value(warnings, "80") == 2);
        ld_monitor_stats st;
        ld_monitor_get_stats(a, &st); /* no --usage-webhook: nothing queued */
        CHECK(st.queued == 0 && st.delivered == 0 && st.dropped == 0);
    }
    ld_monitor_free(a);
    ld_monitor_free(b);
    ld_store_close(store);
    /* a webhook URL the SSRF policy refuses fails creation */
    ld_monitor_config bad = {.webhook_url = "http://169.254.169.254/latest", .data_dir = dir};
    CHECK(ld_monitor_new(&bad, NULL, &err) == NULL);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    TEST_MAIN_END();
}
