/* Decoder pool: fair scheduling, queue limit (waiting requests only), progress
 * and cancel with a scripted fake engine; languages from a --models folder; a ~60 s real recording decoded
 * with 1 and 2 workers gives the same, ordered words. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asr/model.h"
#include "asr/pool.h"
#include "test.h"

#define EVAL LD_SHARED_DIR "/eval/real/"
#define GOFORWARD "/usr/share/pocketsphinx/test/data/goforward.raw"
#define GAP 8000 /* 0.5 s of digital silence between pieces */

/* Stand-in segmenter (weak: the real one wins when audio/ provides it): cuts
 * at runs of >= GAP/2 exact zeros, and at max_seconds. */
__attribute__((weak)) size_t ld_audio_segment(const int16_t *pcm, size_t n, double max_seconds, ld_segment **out)
{
    size_t cap = 16, k = 0, maxlen = (size_t)((max_seconds > 0 ? max_seconds : 20) * 16000);
    ld_segment *s = malloc(cap * sizeof *s);
    size_t i = 0;
    while (i < n) {
        while (i < n && pcm[i] == 0)
            i++;
        if (i >= n)
            break;
        size_t start = i, zeros = 0;
        while (i < n && zeros < GAP / 2 && i - start < maxlen) {
            zeros = pcm[i] == 0 ? zeros + 1 : 0;
            i++;
        }
        if (k == cap)
            s = realloc(s, (cap *= 2) * sizeof *s);
        s[k++] = (ld_segment){start, i - zeros};
    }
    *out = k ? s : (free(s), NULL);
    return k;
}

/* ---- fake engine: decode blocks until the gate opens and logs pcm[0] ---- */
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fcv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int order[64], n_order;

static void *fake_new(const ld_engine_model *m, ld_error *err)
{
    ld_model_files f;
    if (ld_model_resolve(m->model_dir, &f, err) != LD_OK)
        return NULL;
    return malloc(1);
}
static void fake_free(void *d) { free(d); }
static ld_err fake_decode(void *d, const int16_t *pcm, size_t n, ld_word **w, size_t *nw, ld_error *err)
{
    (void)d, (void)err;
    pthread_mutex_lock(&fmu);
    while (!gate_open)
        pthread_cond_wait(&fcv, &fmu);
    size_t k = 0; /* first non-zero sample: a real segmenter pads with silence */
    while (k + 1 < n && pcm[k] == 0)
        k++;
    if (n_order < 64)
        order[n_order++] = pcm[k];
    pthread_mutex_unlock(&fmu);
    *w = calloc(1, sizeof **w);
    char buf[16];
    snprintf(buf, sizeof buf, "w%d", pcm[k]);
    (*w)[0] = (ld_word){strdup(buf), 0.0, (double)n / 16000, 0.5};
    *nw = 1;
    return LD_OK;
}
static const ld_engine_ops fake = {
    .name = "fake", .decoder_new = fake_new, .decoder_free = fake_free, .decode = fake_decode};

/* pieces of level v[i] (a square wave: the segmenter does not count DC as sound),
 * 1600 samples each, GAP zeros apart */
static ld_pcm blocks(const int *v, int nv)
{
    ld_pcm p = {0};
    p.n = (size_t)nv * (1600 + GAP) + GAP;
    p.samples = calloc(p.n, sizeof *p.samples);
    for (int i = 0; i < nv; i++)
        for (size_t k = 0; k < 1600; k++)
            p.samples[GAP + (size_t)i * (1600 + GAP) + k] = (int16_t)(k & 1 ? -v[i] : v[i]); /* sound, not DC */
    return p;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ld_transcript *t;
    bool done;
    ld_error err;
    int calls;
} result;

/* Progress goes to its own struct (as the CLI's progress bar does): each
 * callback gets the pointer registered for it. */
typedef struct {
    pthread_mutex_t mu;
    double last;
    bool monotonic;
    int calls;
} progress_log;

static void on_done(void *ud, ld_transcript *t, const ld_error *err)
{
    result *r = ud;
    pthread_mutex_lock(&r->mu);
    r->t = t;
    if (err)
        r->err = *err;
    r->calls++;
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}
static void on_progress(void *ud, double f)
{
    progress_log *pl = ud;
    pthread_mutex_lock(&pl->mu);
    if (f < pl->last || f > 1.0)
        pl->monotonic = false;
    pl->last = f;
    pl->calls++;
    pthread_mutex_unlock(&pl->mu);
}
static void wait_result(result *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}
#define RESULT_INIT                                                              \
    {                                                                            \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false, {0}, 0 \
    }
#define PROGRESS_INIT                         \
    {                                         \
        PTHREAD_MUTEX_INITIALIZER, 0, true, 0 \
    }
/* Callbacks for a result r, with progress into pl (CB) or without (CB_DONE). */
#define CB(r, pl) \
    (&(ld_pool_callbacks){.progress = on_progress, .progress_ud = (pl), .done = on_done, .done_ud = (r)})
#define CB_DONE(r) (&(ld_pool_callbacks){.done = on_done, .done_ud = (r)})

static void set_gate(bool open)
{
    pthread_mutex_lock(&fmu);
    gate_open = open;
    pthread_cond_broadcast(&fcv);
    pthread_mutex_unlock(&fmu);
}

/* Waits until `n` decoders are inside decode (blocked at the closed gate). */
static void wait_busy(ld_pool *p, int n)
{
    for (int i = 0; i < 5000 && ld_pool_busy(p) != n; i++)
        usleep(1000);
    CHECK(ld_pool_busy(p) == n);
}

static bool is_done(result *r)
{
    pthread_mutex_lock(&r->mu);
    bool d = r->done;
    pthread_mutex_unlock(&r->mu);
    return d;
}

static void test_scheduling(void)
{
    ld_error err = {0};
    ld_pool *p = ld_pool_new(&(ld_pool_config){.workers = 1, .max_queue = 1, .engine = &fake}, &err);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(ld_pool_workers(p) == 1);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    int va[10], vb[1] = {200};
    for (int i = 0; i < 10; i++)
        va[i] = 100 + i;
    ld_pcm a = blocks(va, 10), b = blocks(vb, 1), c = blocks(vb, 1);
    result ra = RESULT_INIT, rb = RESULT_INIT;
    progress_log pa = PROGRESS_INIT;
    CHECK(ld_pool_submit(p, &a, &o, CB(&ra, &pa), &err) == LD_OK);
    CHECK(a.samples == NULL); /* ownership taken */
    wait_busy(p, 1);          /* A is being decoded: it no longer counts toward max_queue */
    CHECK(ld_pool_submit(p, &b, &o, CB_DONE(&rb), &err) == LD_OK);
    CHECK(ld_pool_queue_depth(p) == 2); /* the gauge: waiting + running */
    /* one waiting = max_queue: 503 and the audio stays with the caller */
    CHECK(ld_pool_submit(p, &c, &o, CB_DONE(NULL), &err) == LD_ERR_SERVICE_UNAVAILABLE);
    CHECK(err.code == LD_ERR_SERVICE_UNAVAILABLE && c.samples != NULL);
    free(c.samples);
    ld_transcribe_opts bad = o;
    snprintf(bad.language, sizeof bad.language, "zz");
    CHECK(ld_pool_submit(p, &c, &bad, CB_DONE(NULL), &err) == LD_ERR_UNSUPPORTED_LANGUAGE);
    CHECK(strstr(err.msg, "zz") && strstr(err.msg, "en"));

    set_gate(true);
    wait_result(&ra);
    wait_result(&rb);
    /* round-robin: the short request runs right after A's first segment */
    CHECK(n_order == 11 && order[0] == 100 && order[1] == 200);
    CHECK(pa.monotonic && pa.last == 1.0 && pa.calls == 10); /* 9 segments done, then 1.0 */
    CHECK(ra.t && ra.t->n_words == 10 && ra.t->n_utts == 10);
    for (size_t i = 0; ra.t && i < ra.t->n_words; i++) {
        char want[16];
        snprintf(want, sizeof want, "w%zu", 100 + i);
        CHECK_STR(ra.t->words[i].word, want);
        /* segment offset added: piece i starts at GAP + i*(1600+GAP) samples */
        CHECK_NEAR(ra.t->words[i].start, (GAP + i * (1600.0 + GAP)) / 16000, 0.3);
    }
    CHECK(rb.t && rb.t->n_words == 1 && !strcmp(rb.t->language, "en"));
    CHECK_NEAR(ra.t ? ra.t->confidence : 0, 0.5, 1e-9);
    ld_transcript_free(ra.t);
    ld_transcript_free(rb.t);

    /* silence only: no segments, still exactly one done with an empty transcript */
    ld_pcm z = {.samples = calloc(16000, 2), .n = 16000};
    ld_transcript *t = ld_pool_transcribe(p, &z, &o, NULL, NULL, &err);
    CHECK(t && t->n_words == 0 && t->n_utts == 0 && t->confidence == 0.0);
    CHECK(t && fabs(t->duration - 1.0) < 1e-9);
    ld_transcript_free(t);
    CHECK(ld_pool_queue_depth(p) == 0 && ld_pool_busy(p) == 0);
    ld_pool_free(p);
}

static void *free_pool(void *p)
{
    ld_pool_free(p);
    return NULL;
}

/* One decoder, a queue of one, the gate closed: the decoder holds the first segment it takes. */
static ld_pool *gated_pool(void)
{
    set_gate(false);
    n_order = 0;
    ld_error err = {0};
    ld_pool *p = ld_pool_new(&(ld_pool_config){.workers = 1, .max_queue = 1, .engine = &fake}, &err);
    CHECK(p != NULL);
    return p;
}

static void test_cancel(void)
{
    ld_error err = {0};
    ld_pool *p = gated_pool();
    if (!p)
        return;
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    int va[10], vb[1] = {300};
    for (int i = 0; i < 10; i++)
        va[i] = 100 + i;
    ld_pcm a = blocks(va, 10), b = blocks(vb, 1);
    result ra = RESULT_INIT, rb = RESULT_INIT;
    progress_log pa = PROGRESS_INIT;
    CHECK(ld_pool_submit(p, &a, &o, CB(&ra, &pa), &err) == LD_OK);
    wait_busy(p, 1);
    CHECK(ld_pool_submit(p, &b, &o, CB_DONE(&rb), &err) == LD_OK);

    /* B waits: cancelled at once, done called on this thread before cancel returns */
    CHECK(ld_pool_cancel(p, &rb));
    CHECK(is_done(&rb) && rb.calls == 1 && rb.t == NULL);
    CHECK(rb.err.code == LD_ERR_SERVICE_UNAVAILABLE && !strcmp(rb.err.msg, "cancelled"));
    CHECK(ld_pool_queue_depth(p) == 1);

    /* A has a segment running: done only after it, and its other 9 are dropped */
    CHECK(ld_pool_cancel(p, &ra));
    CHECK(!is_done(&ra));
    CHECK(!ld_pool_cancel(p, &ra)); /* already cancelled */
    set_gate(true);
    wait_result(&ra);
    CHECK(ra.calls == 1 && ra.t == NULL && !strcmp(ra.err.msg, "cancelled"));
    CHECK(n_order == 1 && order[0] == 100);
    CHECK(!ld_pool_cancel(p, &ra)); /* gone */
    CHECK(ld_pool_queue_depth(p) == 0 && ld_pool_busy(p) == 0);

    /* ld_pool_free cancels: C's first segment finishes, the rest never runs */
    set_gate(false);
    n_order = 0;
    ld_pcm c = blocks(va, 10), d = blocks(vb, 1);
    result rc = RESULT_INIT, rd = RESULT_INIT;
    progress_log pc = PROGRESS_INIT;
    CHECK(ld_pool_submit(p, &c, &o, CB(&rc, &pc), &err) == LD_OK);
    wait_busy(p, 1);
    CHECK(ld_pool_submit(p, &d, &o, CB_DONE(&rd), &err) == LD_OK);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, free_pool, p) == 0);
    wait_result(&rd); /* waiting D is cancelled right away, while C's segment still runs */
    CHECK(!strcmp(rd.err.msg, "cancelled") && !is_done(&rc));
    set_gate(true);
    pthread_join(th, NULL);
    CHECK(rc.calls == 1 && rd.calls == 1 && rc.t == NULL && !strcmp(rc.err.msg, "cancelled"));
    CHECK(n_order == 1 && pc.monotonic);
}

/* Progressive output: segments reported in time order, each once, all before done. */
typedef struct {
    pthread_mutex_t mu;
    char seen[256];
    int calls;
    bool after_done;
    result *res;
} segment_log;

static void on_segment(void *ud, const ld_word *w, size_t n)
{
    segment_log *sl = ud;
    pthread_mutex_lock(&sl->mu);
    for (size_t i = 0; i < n; i++)
        snprintf(sl->seen + strlen(sl->seen), sizeof sl->seen - strlen(sl->seen), "%s ", w[i].word);
    sl->calls++;
    sl->after_done |= is_done(sl->res);
    pthread_mutex_unlock(&sl->mu);
}

static void test_segments(void)
{
    for (int workers = 1; workers <= 2; workers++) {
        set_gate(true);
        n_order = 0;
        ld_error err = {0};
        ld_pool *p = ld_pool_new(&(ld_pool_config){.workers = workers, .engine = &fake}, &err);
        CHECK(p != NULL);
        if (!p)
            return;
        ld_transcribe_opts o;
        ld_transcribe_opts_default(&o);
        /* pieces growing in length: longest-first would decode the last one first */
        ld_pcm a = {0};
        a.n = GAP;
        for (int i = 0; i < 5; i++)
            a.n += 1600 * (size_t)(i + 1) + GAP;
        a.samples = calloc(a.n, sizeof *a.samples);
        for (size_t i = 0, at = GAP; i < 5; at += 1600 * (i + 1) + GAP, i++)
            for (size_t k = 0; k < 1600 * (i + 1); k++)
                a.samples[at + k] = (int16_t)(k & 1 ? -(100 + (int)i) : 100 + (int)i);
        result ra = RESULT_INIT;
        segment_log sl = {PTHREAD_MUTEX_INITIALIZER, "", 0, false, &ra};
        ld_pool_callbacks cb = {.done = on_done, .done_ud = &ra, .segment = on_segment, .segment_ud = &sl};
        CHECK(ld_pool_submit(p, &a, &o, &cb, &err) == LD_OK);
        wait_result(&ra);
        CHECK_STR(sl.seen, "w100 w101 w102 w103 w104 ");
        CHECK(sl.calls >= 1 && sl.calls <= 5 && !sl.after_done);
        if (workers == 1) /* decoded in time order, one report per segment */
            CHECK(n_order == 5 && order[0] == 100 && order[4] == 104 && sl.calls == 5);
        CHECK(ra.t && ra.t->n_words == 5);
        ld_transcript_free(ra.t);
        ld_pool_free(p);
    }
}

static int16_t *read_raw(const char *path, size_t skip, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, (long)skip, SEEK_SET);
    *n = (size_t)(len - (long)skip) / 2;
    int16_t *p = malloc(*n * 2);
    if (fread(p, 2, *n, f) != *n)
        *n = 0;
    fclose(f);
    return p;
}

/* ~60 s: real LibriVox clips joined by 0.5 s of silence. */
static ld_pcm long_recording(void)
{
    ld_pcm p = {0};
    FILE *m = fopen(EVAL "manifest.tsv", "r");
    char line[2048];
    size_t cap = 0;
    while (m && fgets(line, sizeof line, m) && p.n < 60 * 16000) {
        char file[256];
        if (!strncmp(line, "id\t", 3) || sscanf(line, "%*s %255s", file) != 1)
            continue;
        char path[512];
        snprintf(path, sizeof path, EVAL "%s", file);
        size_t n = 0;
        int16_t *s = read_raw(path, 44, &n);
        if (!s)
            continue;
        if (p.n + n + GAP > cap)
            p.samples = realloc(p.samples, (cap = (p.n + n + GAP) * 2) * sizeof *p.samples);
        memcpy(p.samples + p.n, s, n * 2);
        memset(p.samples + p.n + n, 0, GAP * 2);
        p.n += n + GAP;
        free(s);
    }
    if (m)
        fclose(m);
    return p;
}

static ld_transcript *run(ld_pool *p, const ld_pcm *src, const char *lang)
{
    ld_pcm c = {.samples = malloc(src->n * 2), .n = src->n};
    memcpy(c.samples, src->samples, src->n * 2);
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    snprintf(o.language, sizeof o.language, "%s", lang);
    ld_error err = {0};
    ld_transcript *t = ld_pool_transcribe(p, &c, &o, NULL, NULL, &err);
    if (!t)
        fprintf(stderr, "transcribe failed: %s\n", err.msg);
    ld_pcm_free(&c);
    return t;
}

static void test_real(void)
{
    /* a models folder: xx/ reuses the en-us files; yy/ lacks a dictionary; "notes" is no code */
    char dir[] = "/tmp/ld_pool_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/xx", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/yy", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/notes", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/xx/acoustic", dir);
    CHECK(symlink(LD_MODEL_DEFAULT_DIR "/en-us", path) == 0);
    snprintf(path, sizeof path, "%s/xx/xx.lm.bin", dir);
    CHECK(symlink(LD_MODEL_DEFAULT_DIR "/en-us.lm.bin", path) == 0);
    snprintf(path, sizeof path, "%s/xx/xx.dict", dir);
    CHECK(symlink(LD_MODEL_DEFAULT_DIR "/cmudict-en-us.dict", path) == 0);
    snprintf(path, sizeof path, "%s/yy/acoustic", dir);
    CHECK(symlink(LD_MODEL_DEFAULT_DIR "/en-us", path) == 0);

    ld_error err = {0};
    ld_pool *p1 = ld_pool_new(&(ld_pool_config){.workers = 1, .models_dir = dir}, &err);
    ld_pool *p2 = ld_pool_new(&(ld_pool_config){.workers = 2}, &err);
    CHECK(p1 && p2);
    if (!p1 || !p2)
        return;
    json_t *langs = ld_pool_languages(p1);
    char *ls = json_dumps(langs, JSON_COMPACT);
    CHECK_STR(ls, "[\"en\",\"xx\"]");
    free(ls);
    json_decref(langs);
    CHECK(ld_pool_has_language(p1, "xx") && !ld_pool_has_language(p1, "yy") && !ld_pool_has_language(p2, "xx"));
    CHECK(ld_pool_workers(p1) == 2 && ld_pool_workers(p2) == 2);

    size_t ngo = 0;
    int16_t *go = read_raw(GOFORWARD, 0, &ngo);
    ld_pcm gp = {.samples = go, .n = ngo};
    ld_transcript *tx = run(p1, &gp, "xx");
    CHECK(tx && tx->n_words >= 3 && !strcmp(tx->words[1].word, "forward") && !strcmp(tx->language, "xx"));
    ld_transcript_free(tx);
    free(go);

    ld_pcm rec = long_recording();
    CHECK(rec.n > 50 * 16000);
    ld_transcript *t1 = run(p1, &rec, "en");
    ld_transcript *t2 = run(p2, &rec, "en");
    CHECK(t1 && t2);
    if (t1 && t2) {
        fprintf(stderr, "%zu words, %zu utterances in %.1f s\n", t1->n_words, t1->n_utts, t1->duration);
        CHECK(t1->n_words > 100 && t1->n_utts > 5);
        CHECK(t1->n_words == t2->n_words);
        for (size_t i = 0; i < t1->n_words && i < t2->n_words; i++) {
            CHECK(!strcmp(t1->words[i].word, t2->words[i].word));
            CHECK(t1->words[i].start == t2->words[i].start);
            CHECK(t2->words[i].start >= 0 && t2->words[i].end > t2->words[i].start);
            CHECK(t2->words[i].end <= t2->duration);
            if (i)
                CHECK(t2->words[i].start >= t2->words[i - 1].end - 1e-9);
        }
        CHECK(t2->confidence > 0 && t2->confidence <= 1);
    }
    ld_transcript_free(t1);
    ld_transcript_free(t2);
    free(rec.samples);
    ld_pool_free(p1);
    ld_pool_free(p2);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The channels of one upload (one owner) are one request to the queue and to
 * the places in progress: eight of them fit a queue of one, and a short request
 * behind two long channels starts after one segment of each, not after both. */
static void test_owner_groups(void)
{
    ld_error err = {0};
    ld_pool *p = gated_pool();
    if (!p)
        return;
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    int owner, v0[8], v1[8], vs[1] = {300};
    for (int i = 0; i < 8; i++)
        v0[i] = 100 + i, v1[i] = 200 + i;
    result rc[8], rs = RESULT_INIT;
    for (int c = 0; c < 8; c++) {
        rc[c] = (result)RESULT_INIT;
        ld_pcm a = c < 2 ? blocks(c ? v1 : v0, 8) : blocks(vs, 1);
        if (c >= 2)
            a.samples[GAP] = (int16_t)(400 + c); /* what the fake reports for it */
        ld_pool_callbacks cb = {.done = on_done, .done_ud = &rc[c], .owner = &owner};
        if (ld_pool_submit(p, &a, &o, &cb, &err) != LD_OK) { /* a queue of one holds all eight */
            CHECK(0);
            rc[c].done = true; /* nothing to wait for */
            free(a.samples);
        }
        if (c == 0)
            wait_busy(p, 1); /* channel 0 is being decoded: the group is in progress */
    }
    CHECK(ld_pool_queue_depth(p) == 1); /* one request, waiting + running */
    /* a short request waits beside the group (a queue of one), the next one is refused */
    ld_pcm s1 = blocks(vs, 1), s2 = blocks(vs, 1);
    CHECK(ld_pool_submit(p, &s1, &o, CB_DONE(&rs), &err) == LD_OK);
    CHECK(ld_pool_queue_depth(p) == 2);
    CHECK(ld_pool_submit(p, &s2, &o, CB_DONE(NULL), &err) == LD_ERR_SERVICE_UNAVAILABLE);
    free(s2.samples);
    set_gate(true);
    for (int c = 0; c < 8; c++)
        wait_result(&rc[c]);
    wait_result(&rs);
    int at = -1;
    for (int i = 0; i < n_order; i++)
        if (order[i] == 300 && at < 0)
            at = i;
    /* round-robin by request: at most one segment of each channel and each other request before it */
    for (int i = 0; i < n_order; i++)
        fprintf(stderr, "%d ", order[i]);
    CHECK(at >= 0 && at <= 8);
    CHECK(rc[0].t && rc[0].t->n_words == 8 && rc[1].t && rc[1].t->n_words == 8 && rs.t);
    for (int c = 0; c < 8; c++)
        ld_transcript_free(rc[c].t);
    ld_transcript_free(rs.t);
    CHECK(ld_pool_queue_depth(p) == 0 && ld_pool_busy(p) == 0);
    /* cancelling by the owner reaches every channel */
    set_gate(false);
    result rk[3] = {RESULT_INIT, RESULT_INIT, RESULT_INIT};
    for (int c = 0; c < 3; c++) {
        ld_pcm a = blocks(v0, 8);
        ld_pool_callbacks cb = {.done = on_done, .done_ud = &rk[c], .owner = &owner};
        CHECK(ld_pool_submit(p, &a, &o, &cb, &err) == LD_OK);
    }
    wait_busy(p, 1);
    CHECK(ld_pool_cancel(p, &owner));
    set_gate(true);
    for (int c = 0; c < 3; c++) {
        wait_result(&rk[c]);
        CHECK(rk[c].t == NULL && rk[c].err.code == LD_ERR_SERVICE_UNAVAILABLE);
    }
    CHECK(ld_pool_queue_depth(p) == 0);
    ld_pool_free(p);
}

int main(void)
{
    test_scheduling();
    test_owner_groups();
    test_cancel();
    test_segments();
    test_real();
    TEST_MAIN_END();
}
