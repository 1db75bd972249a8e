/* A small Prometheus-style metrics registry: counters, gauges and histograms
 * with fixed buckets, each a family of label sets (series) with a bounded
 * number of distinct label sets, rendered in the text exposition format 0.0.4.
 *
 * Hot path: looking up a series is a lock-free hash probe; updates are
 * atomics (no lock). Only the first use of a new label set takes the family's
 * mutex. Once a family holds `max_series` label sets, further new ones are
 * counted in one overflow series whose labels are all "other", so an
 * unbounded label (a key id, say) cannot grow memory or the scrape.
 *
 * Thread-safety: every function may be called from any thread.
 * Ownership: a registry owns its families and series; pointers returned by
 * ld_metrics_register / ld_metric_series stay valid until ld_metrics_free
 * (never, for the global registry). Strings passed in are copied.
 * ld_metrics_render returns a malloc'd string the caller frees. */
#ifndef LD_UTIL_METRICS_H
#define LD_UTIL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#define LD_METRICS_MAX_LABELS 4
#define LD_METRICS_MAX_BUCKETS 24
#define LD_METRICS_DEFAULT_SERIES 64

typedef enum { LD_METRIC_COUNTER, LD_METRIC_GAUGE, LD_METRIC_HISTOGRAM } ld_metric_type;

typedef struct ld_metrics ld_metrics; /* registry */
typedef struct ld_metric ld_metric;   /* a family: one name, HELP, TYPE */
typedef struct ld_series ld_series;   /* one label set of a family */

typedef struct {
    const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help;
    ld_metric_type type;
    int nlabels;                               /* 0..LD_METRICS_MAX_LABELS */
    const char *labels[LD_METRICS_MAX_LABELS]; /* label names; not "le" for histograms */
    int max_series; /* distinct label sets before "other" (0 = LD_METRICS_DEFAULT_SERIES) */
    int nbuckets;   /* histograms: upper bounds, ascending, +Inf implied */
    double buckets[LD_METRICS_MAX_BUCKETS];
} ld_metric_desc;

ld_metrics *ld_metrics_new(void);
void ld_metrics_free(ld_metrics *reg);
/* The process-wide registry that /metrics renders. */
ld_metrics *ld_metrics_global(void);

/* Adds a family, or returns the existing one of that name when its type and
 * label names match. NULL for an invalid description or a clash. */
ld_metric *ld_metrics_register(ld_metrics *reg, const ld_metric_desc *d);

/* The series for these label values (nlabels strings; NULL when nlabels is 0).
 * Never NULL for a valid family: past the cap it is the "other" series. */
ld_series *ld_metric_series(ld_metric *m, const char *const *values);

void ld_series_add(ld_series *s, double v);       /* counters (v >= 0) and gauges */
void ld_series_set(ld_series *s, double v);       /* gauges */
void ld_series_observe(ld_series *s, double v);   /* histograms */
double ld_series_value(ld_series *s);             /* counter/gauge value; histogram sum */
unsigned long long ld_series_count(ld_series *s); /* histogram observations */

/* Shorthands: look up the series and update it. m may be NULL (no-op). */
void ld_metric_add(ld_metric *m, const char *const *values, double v);
void ld_metric_set(ld_metric *m, const char *const *values, double v);
void ld_metric_observe(ld_metric *m, const char *const *values, double v);

/* Called at the start of every render, to refresh gauges whose value lives
 * elsewhere (queue depths, process RSS). At most 16 hooks per registry. */
typedef void (*ld_metrics_hook)(void *ud);
int ld_metrics_on_render(ld_metrics *reg, ld_metrics_hook fn, void *ud);
void ld_metrics_remove_hook(ld_metrics *reg, ld_metrics_hook fn, void *ud);

/* The whole registry in the text exposition format 0.0.4 (families in
 * registration order, each with # HELP and # TYPE). */
char *ld_metrics_render(ld_metrics *reg, size_t *len);

/* ---- events counted by several modules, in the global registry ----
 * Families are registered on first use (and all at once by
 * ld_metrics_events_init, so a scrape shows them at zero). Arguments outside
 * the documented sets are counted under "other". */
void ld_metrics_events_init(void);
/* reason: missing, invalid, expired, revoked, throttled */
void ld_metrics_auth_failure(const char *reason);
/* kind: rpm, concurrency, quota */
void ld_metrics_rate_limited(const char *kind);
/* result: delivered, retry, failed (one webhook attempt) */
void ld_metrics_webhook(const char *result);
/* A failed Redis operation (connect, timeout, "cannot serve" reply, probe). */
void ld_metrics_redis_error(void);
/* listend_usage_write_failures_total: a usage addition the database refused. */
void ld_metrics_usage_write_failed(void);
/* Transcribed audio: mode batch, stream or job; key_id may be NULL. */
void ld_metrics_audio(const char *mode, const char *key_id, double seconds);
/* Decoding time over audio duration of one finished transcription. */
void ld_metrics_rtf(const char *mode, double processing_seconds, double audio_seconds);

#endif
