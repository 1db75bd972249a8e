/* The anomaly rule (anomaly.h): fold finished windows into the EWMA, count,
 * compare. */
#include "monitor/anomaly.h"

#include <math.h>

void ld_anomaly_rule_defaults(ld_anomaly_rule *r)
{
    if (r->window_ms <= 0)
        r->window_ms = 60000;
    if (r->history <= 0)
        r->history = 15;
    if (!(r->factor > 0))
        r->factor = 5;
    if (r->floor <= 0)
        r->floor = 60;
    if (r->cooldown_ms <= 0)
        r->cooldown_ms = 3600 * 1000;
}

/* Moves the state to window w: the finished window's count enters the EWMA,
 * then each window skipped without requests enters as a 0. */
static void roll(const ld_anomaly_rule *r, ld_anomaly_state *s, int64_t w)
{
    if (w <= s->window)
        return;
    double alpha = 2.0 / (r->history + 1);
    s->baseline = alpha * s->count + (1 - alpha) * s->baseline;
    int64_t empty = w - s->window - 1;
    if (empty > 0)
        s->baseline *= empty > 10000 ? 0 : pow(1 - alpha, (double)empty);
    int64_t watched = s->watched + (w - s->window);
    s->watched = watched > r->history ? r->history : (int)watched;
    s->window = w;
    s->count = 0;
}

bool ld_anomaly_hit(const ld_anomaly_rule *r, ld_anomaly_state *s, int64_t now_ms, ld_anomaly_figures *out)
{
    int64_t w = now_ms / r->window_ms;
    if (!s->started) {
        *s = (ld_anomaly_state){.started = true, .window = w};
    }
    roll(r, s, w);
    s->count++;
    double threshold = r->factor * s->baseline;
    if (threshold < r->floor)
        threshold = r->floor;
    if (s->watched < r->history || now_ms < s->quiet_until_ms || !(s->count > threshold))
        return false;
    s->quiet_until_ms = now_ms + r->cooldown_ms;
    if (out)
        *out = (ld_anomaly_figures){.count = s->count, .baseline = s->baseline, .threshold = threshold};
    return true;
}
