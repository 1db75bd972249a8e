/* The traffic-anomaly rule (monitor/anomaly.h) on a synthetic clock: a steady
 * key never fires, a jump fires once, the cooldown holds, the baseline
 * learns a new level, warm-up and floor protect new and quiet keys. */
#include "monitor/anomaly.h"
#include "test.h"

static const ld_anomaly_rule RULE = {
    .window_ms = 1000, .history = 5, .factor = 4, .floor = 10, .cooldown_ms = 60000};

/* Sends n requests spread over window w; returns how many fired. */
static int send(ld_anomaly_state *s, int64_t w, int n, ld_anomaly_figures *f)
{
    int fired = 0;
    for (int i = 0; i < n; i++)
        fired += ld_anomaly_hit(&RULE, s, w * 1000 + (int64_t)i * 999 / (n ? n : 1), f);
    return fired;
}

static void test_steady_then_jump(void)
{
    ld_anomaly_state s = {0};
    ld_anomaly_figures f = {0};
    int fired = 0;
    for (int w = 0; w < 20; w++)
        fired += send(&s, w, 3, &f);
    CHECK(fired == 0);
    CHECK_NEAR(s.baseline, 3, 0.01); /* converged on the steady rate */
    /* threshold = max(4 x ~3, 10) ~ 12 (the EWMA approaches 3 from below): the
     * 12th request of a window fires, once */
    CHECK(send(&s, 20, 11, &f) == 0);
    CHECK(send(&s, 20, 1, &f) == 1);
    CHECK(f.count == 12 && fabs(f.threshold - 12) < 0.05 && fabs(f.baseline - 3) < 0.01);
    CHECK(send(&s, 20, 100, &f) == 0); /* same window: already reported */
    /* the jump goes on: the cooldown (60 windows) holds, then the sustained
     * level has become the key's usual one */
    int later = 0;
    for (int w = 21; w < 100; w++)
        later += send(&s, w, 100, &f);
    CHECK(later == 0);
    CHECK(s.baseline > 90);
}

static void test_below_floor_and_warmup(void)
{
    ld_anomaly_state s = {0};
    ld_anomaly_figures f;
    /* a quiet key jumping from 0 to 10 (the floor) is not anomalous */
    CHECK(send(&s, 0, 1, &f) == 0);
    for (int w = 1; w < 10; w++)
        CHECK(send(&s, w, 0, &f) == 0);
    CHECK(send(&s, 10, 10, &f) == 0);
    /* a new key is not judged during its warm-up, however busy */
    ld_anomaly_state n = {0};
    int fired = 0;
    for (int w = 0; w < RULE.history; w++)
        fired += send(&n, w, 50, &f);
    CHECK(fired == 0);
}

static void test_gap_decays_baseline(void)
{
    ld_anomaly_state s = {0};
    ld_anomaly_figures f;
    for (int w = 0; w < 20; w++)
        send(&s, w, 8, &f); /* threshold 32 */
    CHECK(send(&s, 20, 30, &f) == 0);
    /* an hour of silence: the usual rate decays to ~0, so 11 requests (> floor) fire */
    CHECK(send(&s, 3620, 10, &f) == 0);
    CHECK(send(&s, 3620, 1, &f) == 1);
    CHECK(f.count == 11 && f.threshold == 10 && f.baseline < 0.01);
}

static void test_defaults(void)
{
    ld_anomaly_rule r = {0};
    ld_anomaly_rule_defaults(&r);
    CHECK(r.window_ms == 60000 && r.history == 15 && r.factor == 5 && r.floor == 60 && r.cooldown_ms == 3600000);
}

int main(void)
{
    test_steady_then_jump();
    test_below_floor_and_warmup();
    test_gap_decays_baseline();
    test_defaults();
    TEST_MAIN_END();
}
