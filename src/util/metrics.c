/* The metrics registry (see metrics.h): families, lock-free series lookup,
 * atomic updates and the text exposition format. */
#include "util/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HOOKS 16
#define MAX_SERIES_CAP 100000

struct ld_series {
    uint64_t hash;
    const double *bounds;                /* the family's bucket bounds */
    char *values[LD_METRICS_MAX_LABELS]; /* into the same allocation */
    _Atomic uint64_t bits;               /* counter/gauge value or histogram sum, as double bits */
    int nbuckets;
    _Atomic unsigned long long buckets[]; /* per bucket, not cumulative; [nbuckets] is +Inf */
};

struct ld_metric {
    ld_metric_desc d;
    char *name, *help;
    char *labels[LD_METRICS_MAX_LABELS];
    pthread_mutex_t mu; /* serialises inserts */
    ld_series **slots;  /* [max_series], filled in order */
    atomic_int nslots;  /* published slots */
    atomic_int *index;  /* open addressing: slot + 1, 0 = empty */
    unsigned mask;
    ld_series *other; /* overflow series (families with labels) */
    atomic_bool other_used;
    struct ld_metric *next;
};

struct ld_metrics {
    pthread_mutex_t mu; /* guards the family list and hooks */
    ld_metric *head, *tail;
    struct {
        ld_metrics_hook fn;
        void *ud;
    } hooks[MAX_HOOKS];
    int nhooks;
};

/* ---- doubles in atomics ---- */

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, to_bits(from_bits(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* ---- registry ---- */

ld_metrics *ld_metrics_new(void)
{
    ld_metrics *reg = calloc(1, sizeof *reg);
    if (reg)
        pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

static void free_metric(ld_metric *m)
{
    int n = atomic_load(&m->nslots);
    for (int i = 0; i < n; i++)
        free(m->slots[i]);
    free(m->other);
    free(m->slots);
    free(m->index);
    free(m->name);
    free(m->help);
    for (int i = 0; i < m->d.nlabels; i++)
        free(m->labels[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void ld_metrics_free(ld_metrics *reg)
{
    if (!reg)
        return;
    for (ld_metric *m = reg->head, *next; m; m = next) {
        next = m->next;
        free_metric(m);
    }
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static ld_metrics *global;
static void global_init(void) { global = ld_metrics_new(); }

ld_metrics *ld_metrics_global(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    return global;
}

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
                  (p > s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool valid_desc(const ld_metric_desc *d)
{
    if (!d || !valid_name(d->name, true) || d->nlabels < 0 || d->nlabels > LD_METRICS_MAX_LABELS ||
        d->max_series < 0 || d->max_series > MAX_SERIES_CAP)
        return false;
    if (d->type != LD_METRIC_COUNTER && d->type != LD_METRIC_GAUGE && d->type != LD_METRIC_HISTOGRAM)
        return false;
    for (int i = 0; i < d->nlabels; i++) {
        if (!valid_name(d->labels[i], false) || !strncmp(d->labels[i], "__", 2))
            return false;
        if (d->type == LD_METRIC_HISTOGRAM && !strcmp(d->labels[i], "le"))
            return false;
        for (int k = 0; k < i; k++)
            if (!strcmp(d->labels[i], d->labels[k]))
                return false;
    }
    if (d->type == LD_METRIC_HISTOGRAM) {
        if (d->nbuckets < 1 || d->nbuckets > LD_METRICS_MAX_BUCKETS)
            return false;
        for (int i = 0; i < d->nbuckets; i++)
            if (!isfinite(d->buckets[i]) || (i && d->buckets[i] <= d->buckets[i - 1]))
                return false;
    }
    return true;
}

static bool same_shape(const ld_metric *m, const ld_metric_desc *d)
{
    if (m->d.type != d->type || m->d.nlabels != d->nlabels)
        return false;
    for (int i = 0; i < d->nlabels; i++)
        if (strcmp(m->labels[i], d->labels[i]))
            return false;
    return true;
}

static uint64_t hash_values(int n, const char *const *values)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, a separator byte between values */
    for (int i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static ld_series *new_series(const ld_metric *m, const char *const *values, uint64_t h)
{
    int nb = m->d.type == LD_METRIC_HISTOGRAM ? m->d.nbuckets + 1 : 0;
    size_t head = sizeof(ld_series) + (size_t)nb * sizeof(unsigned long long), text = 0;
    for (int i = 0; i < m->d.nlabels; i++)
        text += strlen(values[i]) + 1;
    ld_series *s = calloc(1, head + text);
    if (!s)
        return NULL;
    s->hash = h;
    s->bounds = m->d.buckets;
    s->nbuckets = nb;
    char *p = (char *)s + head;
    for (int i = 0; i < m->d.nlabels; i++) {
        size_t n = strlen(values[i]) + 1;
        memcpy(p, values[i], n);
        s->values[i] = p;
        p += n;
    }
    return s;
}

ld_metric *ld_metrics_register(ld_metrics *reg, const ld_metric_desc *d)
{
    if (!reg || !valid_desc(d))
        return NULL;
    pthread_mutex_lock(&reg->mu);
    for (ld_metric *m = reg->head; m; m = m->next) {
        if (!strcmp(m->name, d->name)) {
            pthread_mutex_unlock(&reg->mu);
            return same_shape(m, d) ? m : NULL;
        }
    }
    ld_metric *m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    m->d = *d;
    if (!m->d.max_series)
        m->d.max_series = LD_METRICS_DEFAULT_SERIES;
    if (!d->nlabels)
        m->d.max_series = 1;
    unsigned size = 16;
    while (size < 2u * (unsigned)m->d.max_series)
        size <<= 1;
    m->mask = size - 1;
    pthread_mutex_init(&m->mu, NULL);
    m->name = strdup(d->name);
    m->help = strdup(d->help ? d->help : "");
    m->slots = calloc((size_t)m->d.max_series, sizeof *m->slots);
    m->index = calloc(size, sizeof *m->index);
    bool ok = m->name && m->help && m->slots && m->index;
    for (int i = 0; i < d->nlabels; i++)
        ok = (m->labels[i] = strdup(d->labels[i])) && ok;
    if (ok && d->nlabels) {
        const char *other[LD_METRICS_MAX_LABELS] = {"other", "other", "other", "other"};
        ok = (m->other = new_series(m, other, hash_values(d->nlabels, other))) != NULL;
    }
    if (!ok) {
        free_metric(m);
        goto oom;
    }
    if (reg->tail)
        reg->tail->next = m;
    else
        reg->head = m;
    reg->tail = m;
    if (!d->nlabels)
        ld_metric_series(m, NULL); /* a plain counter shows 0 before its first event */
    pthread_mutex_unlock(&reg->mu);
    return m;
oom:
    pthread_mutex_unlock(&reg->mu);
    return NULL;
}

static bool same_values(const ld_series *s, int n, const char *const *values)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s->values[i], values[i]))
            return false;
    return true;
}

/* Probes the index; returns the series or NULL with *pos at the empty cell. */
static ld_series *probe(ld_metric *m, const char *const *values, uint64_t h, unsigned *pos)
{
    for (unsigned i = (unsigned)h & m->mask;; i = (i + 1) & m->mask) {
        int e = atomic_load_explicit(&m->index[i], memory_order_acquire);
        if (!e) {
            *pos = i;
            return NULL;
        }
        ld_series *s = m->slots[e - 1];
        if (s->hash == h && same_values(s, m->d.nlabels, values))
            return s;
    }
}

static bool all_other(int n, const char *const *values)
{
    for (int i = 0; i < n; i++)
        if (strcmp(values[i], "other"))
            return false;
    return true;
}

ld_series *ld_metric_series(ld_metric *m, const char *const *values)
{
    static const char *const none[1] = {""};
    int n = m->d.nlabels;
    if (!n)
        values = none;
    for (int i = 0; i < n; i++)
        if (!values[i])
            return NULL;
    uint64_t h = hash_values(n, values);
    unsigned pos;
    ld_series *s = probe(m, values, h, &pos);
    if (s)
        return s;
    if (n && all_other(n, values)) {
        atomic_store_explicit(&m->other_used, true, memory_order_relaxed);
        return m->other;
    }
    pthread_mutex_lock(&m->mu);
    s = probe(m, values, h, &pos); /* somebody may have added it meanwhile */
    int used = atomic_load_explicit(&m->nslots, memory_order_relaxed);
    if (!s && used < m->d.max_series && (s = new_series(m, values, h))) {
        m->slots[used] = s;
        atomic_store_explicit(&m->nslots, used + 1, memory_order_release);
        atomic_store_explicit(&m->index[pos], used + 1, memory_order_release);
    }
    pthread_mutex_unlock(&m->mu);
    if (!s && n) { /* at the cap (or out of memory): counted, under "other" */
        atomic_store_explicit(&m->other_used, true, memory_order_relaxed);
        s = m->other;
    }
    return s;
}

void ld_series_add(ld_series *s, double v)
{
    if (s)
        atomic_add_double(&s->bits, v);
}

void ld_series_set(ld_series *s, double v)
{
    if (s)
        atomic_store_explicit(&s->bits, to_bits(v), memory_order_relaxed);
}

void ld_series_observe(ld_series *s, double v)
{
    if (!s || !s->nbuckets)
        return;
    int b = 0, n = s->nbuckets - 1; /* first bound >= v, else +Inf; few bounds: linear */
    while (b < n && v > s->bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
}

double ld_series_value(ld_series *s) { return s ? from_bits(atomic_load(&s->bits)) : 0; }

unsigned long long ld_series_count(ld_series *s)
{
    unsigned long long n = 0;
    for (int i = 0; s && i < s->nbuckets; i++)
        n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    return n;
}

void ld_metric_add(ld_metric *m, const char *const *values, double v)
{
    if (m)
        ld_series_add(ld_metric_series(m, values), v);
}

void ld_metric_set(ld_metric *m, const char *const *values, double v)
{
    if (m)
        ld_series_set(ld_metric_series(m, values), v);
}

void ld_metric_observe(ld_metric *m, const char *const *values, double v)
{
    if (m)
        ld_series_observe(ld_metric_series(m, values), v);
}

/* ---- render hooks ---- */

int ld_metrics_on_render(ld_metrics *reg, ld_metrics_hook fn, void *ud)
{
    pthread_mutex_lock(&reg->mu);
    int rc = -1;
    if (reg->nhooks < MAX_HOOKS) {
        reg->hooks[reg->nhooks].fn = fn;
        reg->hooks[reg->nhooks].ud = ud;
        reg->nhooks++;
        rc = 0;
    }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

void ld_metrics_remove_hook(ld_metrics *reg, ld_metrics_hook fn, void *ud)
{
    pthread_mutex_lock(&reg->mu);
    for (int i = 0; i < reg->nhooks; i++) {
        if (reg->hooks[i].fn == fn && reg->hooks[i].ud == ud) {
            memmove(&reg->hooks[i], &reg->hooks[i + 1], (size_t)(reg->nhooks - i - 1) * sizeof reg->hooks[0]);
            reg->nhooks--;
            break;
        }
    }
    pthread_mutex_unlock(&reg->mu);
}

/* ---- exposition ---- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* Shortest text that reads back as the same double; Prometheus spellings for
 * the infinities and NaN. */
static void put_double(buf *b, double v)
{
    char t[40];
    if (isnan(v))
        snprintf(t, sizeof t, "NaN");
    else if (isinf(v))
        snprintf(t, sizeof t, v > 0 ? "+Inf" : "-Inf");
    else {
        snprintf(t, sizeof t, "%.15g", v);
        if (strtod(t, NULL) != v)
            snprintf(t, sizeof t, "%.17g", v);
    }
    puts_(b, t);
}

/* HELP text escapes \ and newline; label values also escape ". */
static void put_escaped(buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            puts_(b, "\\\\");
        else if (*s == '\n')
            puts_(b, "\\n");
        else if (quote && *s == '"')
            puts_(b, "\\\"");
        else
            put(b, s, 1);
    }
}

/* name{l1="v1",…[,le="x"]} value\n */
static void put_sample(buf *b, const ld_metric *m, const char *suffix, const ld_series *s, const char *le, double v)
{
    puts_(b, m->name);
    puts_(b, suffix);
    int n = m->d.nlabels;
    if (n || le) {
        puts_(b, "{");
        for (int i = 0; i < n; i++) {
            if (i)
                puts_(b, ",");
            puts_(b, m->labels[i]);
            puts_(b, "=\"");
            put_escaped(b, s->values[i], true);
            puts_(b, "\"");
        }
        if (le) {
            puts_(b, n ? ",le=\"" : "le=\"");
            puts_(b, le);
            puts_(b, "\"");
        }
        puts_(b, "}");
    }
    puts_(b, " ");
    put_double(b, v);
    puts_(b, "\n");
}

static void put_series(buf *b, const ld_metric *m, ld_series *s)
{
    if (m->d.type != LD_METRIC_HISTOGRAM) {
        put_sample(b, m, "", s, NULL, ld_series_value(s));
        return;
    }
    /* Count and +Inf come from the same bucket reads, so they always agree. */
    unsigned long long cum = 0;
    for (int i = 0; i < s->nbuckets; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        buf le = {0};
        if (i < s->nbuckets - 1)
            put_double(&le, s->bounds[i]);
        put_sample(b, m, "_bucket", s, le.p ? le.p : "+Inf", (double)cum);
        free(le.p);
    }
    put_sample(b, m, "_sum", s, NULL, ld_series_value(s));
    put_sample(b, m, "_count", s, NULL, (double)cum);
}

static const char *type_name(ld_metric_type t)
{
    return t == LD_METRIC_COUNTER ? "counter" : t == LD_METRIC_GAUGE ? "gauge" : "histogram";
}

char *ld_metrics_render(ld_metrics *reg, size_t *len)
{
    struct {
        ld_metrics_hook fn;
        void *ud;
    } hooks[MAX_HOOKS];
    pthread_mutex_lock(&reg->mu);
    int nh = reg->nhooks;
    memcpy(hooks, reg->hooks, sizeof hooks[0] * (size_t)nh);
    pthread_mutex_unlock(&reg->mu);
    for (int i = 0; i < nh; i++) /* outside the lock: hooks may register families */
        hooks[i].fn(hooks[i].ud);

    buf b = {0};
    puts_(&b, "");
    pthread_mutex_lock(&reg->mu);
    for (ld_metric *m = reg->head; m; m = m->next) {
        puts_(&b, "# HELP ");
        puts_(&b, m->name);
        puts_(&b, " ");
        put_escaped(&b, m->help, false);
        puts_(&b, "\n# TYPE ");
        puts_(&b, m->name);
        puts_(&b, " ");
        puts_(&b, type_name(m->d.type));
        puts_(&b, "\n");
        int n = atomic_load_explicit(&m->nslots, memory_order_acquire);
        for (int i = 0; i < n; i++)
            put_series(&b, m, m->slots[i]);
        if (m->other && atomic_load_explicit(&m->other_used, memory_order_relaxed))
            put_series(&b, m, m->other);
    }
    pthread_mutex_unlock(&reg->mu);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
