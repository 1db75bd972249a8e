/* The traffic-anomaly rule for one key, kept pure so it can be tested on its
 * own (tests/unit/monitor_anomaly_test.c) and documented exactly
 * (docs/operations.md, "Usage monitoring"):
 *
 *   Time is cut into windows of `window_ms`. A key's requests in the current
 *   window are anomalous when
 *       count > max(factor x baseline, floor)
 *   where baseline is the exponentially weighted moving average of the key's
 *   counts in earlier windows (span `history` windows: alpha = 2/(history+1);
 *   windows without requests count as 0). Nothing fires before the key has
 *   been watched for `history` windows (the baseline means nothing yet), nor
 *   within `cooldown_ms` of the last anomaly: one event per jump.
 *
 * Thread-safety: none (the caller locks a state). Ownership: plain values. */
#ifndef LD_MONITOR_ANOMALY_H
#define LD_MONITOR_ANOMALY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t window_ms;   /* length of one window (--usage-anomaly-window) */
    int history;         /* EWMA span and warm-up, in windows (--usage-anomaly-history) */
    double factor;       /* K (--usage-anomaly-factor) */
    int floor;           /* requests per window never anomalous (--usage-anomaly-floor) */
    int64_t cooldown_ms; /* quiet time after an anomaly (--usage-anomaly-cooldown) */
} ld_anomaly_rule;

typedef struct {
    bool started;
    int64_t window;         /* index of the current window (now_ms / window_ms) */
    int count;              /* requests in it so far */
    double baseline;        /* EWMA of earlier windows' counts */
    int watched;            /* windows folded into the baseline, capped at history */
    int64_t quiet_until_ms; /* no anomaly before this (cooldown) */
} ld_anomaly_state;

/* Figures of the window that fired, for the log line and the event. */
typedef struct {
    int count;
    double baseline;
    double threshold; /* max(factor x baseline, floor) */
} ld_anomaly_figures;

/* Counts one request at now_ms (non-decreasing per state). True when it makes
 * the current window anomalous (then the cooldown starts and *out is filled). */
bool ld_anomaly_hit(const ld_anomaly_rule *r, ld_anomaly_state *s, int64_t now_ms, ld_anomaly_figures *out);

/* Fills defaults into zero fields: 60 s, 15 windows, x5, 60 requests, 1 h. */
void ld_anomaly_rule_defaults(ld_anomaly_rule *r);

#endif
