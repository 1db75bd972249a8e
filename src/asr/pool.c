/* Decoder pool: one worker thread per batch decoder, one list of requests.
 *
 * Scheduling policy (fair round-robin by segment): a request's audio is cut into
 * segments at submit time. A free worker takes the next undecoded segment of the
 * request *after* the one it served last (in arrival order, wrapping), so every
 * request with work left gets a decoder in turn: one long file uses every idle
 * decoder, yet a short request arriving behind it waits for at most one segment
 * per busy decoder, not for the whole file. Within a request, segments are
 * handed out longest first (the short ones fill the end, so decoders finish
 * together); results are stored by index and merged in order when the last one
 * finishes.
 *
 * Queue bound: max_queue counts requests *waiting* (no segment started), not
 * the ones being decoded. At most LD_POOL_RUNNING_PER_DECODER × decoders
 * requests of a language are in progress; the rest wait. Requests that share
 * an owner (a multichannel upload's channels) count once in both: an 8-channel
 * file is one request, not a full queue, and its channels cannot take every
 * place in progress from a short request behind them.
 *
 * Cancel: the segments not started are dropped, `done` follows (with an error)
 * once the ones already running finish. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/diarize.h"
#include "asr/engine_ps.h"
#include "asr/pool.h"
#include "asr/pool_internal.h"
#include "audio/denoise.h"
#include "util/log.h"
#include "util/time.h"

typedef struct request {
    struct request *next;
    int lang;
    int pack; /* index into p->packs, picked at submit */
    ld_pcm pcm;
    ld_transcribe_opts opts;
    ld_segment *segs;
    size_t n_segs;
    size_t *order;   /* segment indexes, longest first (NULL: silence) */
    size_t next_seg; /* next position in order[] to hand out */
    size_t n_done;   /* segments finished */
    size_t n_tasks;  /* max(n_segs, 1): silence still needs one (empty) task;
                        * cut to next_seg by a cancel */
    bool started;    /* a segment was handed out: no longer waiting */
    bool cancelled;
    int progress_calls;          /* progress callbacks in flight: done waits for them */
    pthread_mutex_t progress_mu; /* serialises progress so it stays monotonic */
    double reported;             /* last progress reported */
    ld_word **seg_words;
    size_t *seg_nwords;
    bool *seg_finished; /* decoded (for cb.segment) */
    size_t next_report; /* first segment not yet given to cb.segment */
    ld_error err;       /* first failure */
    ld_pool_callbacks cb;
} request;

typedef struct {
    ld_pool *pool;
    int lang;
    int index; /* for the debug log */
    void *dec;
} worker;

ld_engine_model ld_pool_engine_model(ld_pool *p, int lang)
{
    /* flite's letter-to-sound rules and the CMU phones are English */
    bool en = !strcmp(p->langs[lang].code, "en") && p->vocab.n;
    return (ld_engine_model){p->langs[lang].code, p->langs[lang].model_dir, en ? &p->vocab : NULL};
}

static int lang_index(ld_pool *p, const char *code)
{
    for (int i = 0; i < p->n_langs; i++)
        if (p->langs[i].live > 0 && !strcmp(p->langs[i].code, code))
            return i;
    return -1;
}

bool ld_pool_has_language(ld_pool *p, const char *lang) { return lang && lang_index(p, lang) >= 0; }

json_t *ld_pool_languages(ld_pool *p)
{
    json_t *a = json_array();
    for (int i = 0; i < p->n_langs; i++)
        if (p->langs[i].live > 0)
            json_array_append_new(a, json_string(p->langs[i].code));
    return a;
}

int ld_pool_workers(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->live_workers;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int ld_pool_busy(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->busy;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int ld_pool_queue_depth(ld_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_requests;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* The other requests of r's owner in the list (its group: a multichannel
 * upload's channels): whether there is one, and one started. Called with p->mu held. */
static void siblings(const ld_pool *p, const request *r, bool *any, bool *started)
{
    *any = *started = false;
    for (const request *q = p->head; r->cb.owner && q; q = q->next)
        if (q != r && q->cb.owner == r->cb.owner) {
            *any = true;
            *started |= q->started;
        }
}

/* A task of r that a decoder of `lang` may take now. Called with p->mu held. */
static bool eligible(ld_pool *p, int lang, const request *r)
{
    if (r->lang != lang || r->next_seg >= r->n_tasks)
        return false;
    if (r->started || p->langs[lang].running < LD_POOL_RUNNING_PER_DECODER * p->langs[lang].live)
        return true;
    bool any, started;
    siblings(p, r, &any, &started);
    return started; /* its group is in progress already */
}

/* r's first segment is handed out: its group (or r alone) leaves the queue and
 * is in progress, unless a sibling started first. Called with p->mu held. */
static void mark_started(ld_pool *p, request *r)
{
    bool any, started;
    siblings(p, r, &any, &started);
    r->started = true;
    if (!started) {
        p->n_waiting--;
        p->langs[r->lang].running++;
    }
}

/* Picks the next request of `lang` with a task left, round-robin after the one
 * this language served last. Called with p->mu held. */
static request *pick(ld_pool *p, int lang)
{
    request *cur = p->langs[lang].cursor;
    request *start = cur && cur->next ? cur->next : p->head;
    for (request *r = start; r; r = r->next)
        if (eligible(p, lang, r))
            return p->langs[lang].cursor = r;
    for (request *r = p->head; r && r != start; r = r->next)
        if (eligible(p, lang, r))
            return p->langs[lang].cursor = r;
    return NULL;
}

static void unlink_request(ld_pool *p, request *r)
{
    request *prev = NULL;
    for (request **pp = &p->head; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    /* the turn goes on after it, not back to the oldest request (a short request
     * finishing every round would hand the head one turn after another) */
    for (int l = 0; l < p->n_langs; l++)
        if (p->langs[l].cursor == r)
            p->langs[l].cursor = prev;
    /* a group counts once: what it counted with r, less what it counts without */
    bool any, started;
    siblings(p, r, &any, &started);
    if (!any)
        p->n_requests--;
    if (r->started && !started) { /* its last member in progress */
        p->langs[r->lang].running--;
        if (any) /* the rest wait again */
            p->n_waiting++;
    }
    if (!r->started && !any && !started)
        p->n_waiting--;
}

static void free_request(request *r)
{
    for (size_t i = 0; r->seg_words && i < r->n_segs; i++)
        ld_words_free(r->seg_words[i], r->seg_nwords[i]);
    free(r->seg_words);
    free(r->seg_nwords);
    free(r->seg_finished);
    free(r->segs);
    free(r->order);
    ld_pcm_free(&r->pcm);
    pthread_mutex_destroy(&r->progress_mu);
    free(r);
}

/* Merges segment results in order; words move into the transcript. */
static ld_transcript *merge(ld_pool *p, request *r)
{
    ld_transcript *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < r->n_segs; i++)
        total += r->seg_nwords[i];
    t->words = calloc(total ? total : 1, sizeof *t->words);
    t->utts = calloc(r->n_segs ? r->n_segs : 1, sizeof *t->utts);
    if (!t->words || !t->utts) {
        ld_transcript_free(t);
        return NULL;
    }
    double conf = 0;
    for (size_t i = 0; i < r->n_segs; i++) {
        size_t nw = r->seg_nwords[i];
        if (!nw)
            continue;
        memcpy(t->words + t->n_words, r->seg_words[i], nw * sizeof *t->words);
        free(r->seg_words[i]);
        r->seg_words[i] = NULL;
        r->seg_nwords[i] = 0;
        t->utts[t->n_utts++] = (ld_utterance){.first = t->n_words,
                                              .count = nw,
                                              .start = t->words[t->n_words].start,
                                              .end = t->words[t->n_words + nw - 1].end};
        for (size_t k = 0; k < nw; k++)
            conf += t->words[t->n_words + k].confidence;
        t->n_words += nw;
    }
    t->confidence = t->n_words ? conf / (double)t->n_words : 0.0;
    t->duration = ld_pcm_seconds(&r->pcm);
    snprintf(t->language, sizeof t->language, "%s", p->langs[r->lang].code);
    snprintf(t->model, sizeof t->model, "%s", p->packs[r->pack].name);
    return t;
}

/* Hands the segments decoded since the last call, in time order, to
 * cb.segment: the run of finished ones from next_report. Called with
 * r->progress_mu held (so reports never overtake each other) and without
 * p->mu; a finished segment's words are not touched again until the merge,
 * which waits for progress_calls to drop to zero. */
static void report_segments(ld_pool *p, request *r)
{
    pthread_mutex_lock(&p->mu);
    size_t from = r->next_report, to = from;
    while (to < r->n_segs && r->seg_finished[to] && !r->err.code && !r->cancelled)
        to++;
    r->next_report = to;
    pthread_mutex_unlock(&p->mu);
    for (size_t i = from; i < to; i++)
        r->cb.segment(r->cb.segment_ud, r->seg_words[i], r->seg_nwords[i]);
}

/* Speakers of a merged transcript from the request's own PCM (asr/diarize.h):
 * on the thread that finished the last segment, once per request. */
static ld_err diarize(request *r, ld_transcript *t, ld_error *err)
{
    double t0 = ld_time_mono();
    ld_err rc = ld_diarize_transcript(t, r->pcm.samples, r->pcm.n, r->pcm.narrowband, r->opts.num_speakers, err);
    ld_log(LD_LOG_DEBUG, "diarization: %.2f s of audio, %zu words, %d speakers in %.4f s", t->duration, t->n_words,
           t->n_speakers, ld_time_mono() - t0);
    return rc;
}

/* Calls `done` for an unlinked request whose tasks have all finished, then
 * frees it. Called without p->mu. */
static void finish_request(ld_pool *p, request *r)
{
    pthread_mutex_lock(&p->mu);
    while (r->progress_calls > 0) /* no progress may follow done */
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (r->err.code) {
        r->cb.done(r->cb.done_ud, NULL, &r->err);
    } else {
        if (r->cb.segment) { /* nobody else reports any more */
            pthread_mutex_lock(&r->progress_mu);
            report_segments(p, r);
            pthread_mutex_unlock(&r->progress_mu);
        }
        ld_transcript *t = merge(p, r);
        ld_error oom;
        ld_error_set(&oom, LD_ERR_INTERNAL, "out of memory merging the transcript");
        if (t && r->opts.diarize && diarize(r, t, &oom) != LD_OK) {
            ld_transcript_free(t);
            t = NULL;
        }
        if (t && r->cb.progress)
            r->cb.progress(r->cb.progress_ud, 1.0);
        r->cb.done(r->cb.done_ud, t, t ? NULL : &oom);
    }
    free_request(r);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Drops r's tasks not handed out yet. When none of it is running any more, r
 * is unlinked and true returned: the caller must finish_request it.
 * Called with p->mu held. */
static bool cancel_locked(ld_pool *p, request *r)
{
    r->cancelled = true;
    r->n_tasks = r->next_seg;
    ld_error_set(&r->err, LD_ERR_SERVICE_UNAVAILABLE, "cancelled");
    if (r->n_done < r->n_tasks)
        return false; /* the worker of its last running segment finishes it */
    unlink_request(p, r);
    return true;
}

bool ld_pool_cancel(ld_pool *p, void *owner)
{
    request *now = NULL; /* unlinked here, finished below (done may take the caller's locks) */
    bool found = false;
    pthread_mutex_lock(&p->mu);
    for (request *r = p->head, *next; r; r = next) {
        next = r->next;
        if (r->cancelled || (r->cb.owner ? r->cb.owner : r->cb.done_ud) != owner)
            continue;
        found = true;
        if (cancel_locked(p, r)) {
            r->next = now;
            now = r;
        }
    }
    pthread_cond_broadcast(&p->cv); /* a waiting request may start in its place */
    pthread_mutex_unlock(&p->mu);
    for (request *r = now, *next; r; r = next) {
        next = r->next;
        finish_request(p, r);
    }
    return found;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ld_pool *p = w->pool;
    const ld_engine_ops *ops = p->engine;
    ld_error err = {0};
    ld_engine_model m = ld_pool_engine_model(p, w->lang);
    w->dec = ops->decoder_new(&m, &err);
    pthread_mutex_lock(&p->mu);
    p->starting--;
    if (w->dec) {
        p->live_workers++;
        p->langs[w->lang].live++;
    } else
        ld_log(LD_LOG_ERROR, "decoder for '%s' failed to load: %s", p->langs[w->lang].code, err.msg);
    pthread_cond_broadcast(&p->cv);
    if (!w->dec) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    for (;;) {
        request *r = NULL;
        while (!(r = pick(p, w->lang)) && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!r)
            break;
        size_t i = r->order ? r->order[r->next_seg] : 0;
        r->next_seg++;
        if (!r->started)
            mark_started(p, r);
        p->busy++;
        bool skip = r->err.code != LD_OK;
        pthread_mutex_unlock(&p->mu);

        ld_error e = {0};
        ld_word *words = NULL;
        size_t nw = 0;
        ld_err rc = LD_OK;
        if (i < r->n_segs && !skip && ops->decoder_use) /* no-op when already in use */
            rc = ops->decoder_use(w->dec, p->packs[r->pack].transform, &e);
        if (i < r->n_segs && !skip && rc == LD_OK && ops->decoder_vocab) /* likewise */
            rc = ops->decoder_vocab(w->dec, r->opts.keywords, &e);
        if (i < r->n_segs && !skip && rc == LD_OK) {
            const ld_segment *s = &r->segs[i];
            double t0 = ld_log_enabled(LD_LOG_DEBUG) ? ld_time_mono() : 0;
            rc = ops->decode(w->dec, r->pcm.samples + s->start, s->end - s->start, &words, &nw, &e);
            double off = (double)s->start / LD_SAMPLE_RATE;
            for (size_t k = 0; k < nw; k++) {
                words[k].start += off;
                words[k].end += off;
            }
            if (t0 > 0) /* per-decoder timeline, to check that decoders really overlap */
                ld_log(LD_LOG_DEBUG, "decoder %d: segment %zu (%.2f s of audio) from %.3f to %.3f", w->index, i,
                       (double)(s->end - s->start) / LD_SAMPLE_RATE, t0, ld_time_mono());
        }

        pthread_mutex_lock(&p->mu);
        p->busy--;
        if (rc != LD_OK && !r->err.code)
            r->err = e;
        if (i < r->n_segs) {
            r->seg_words[i] = words;
            r->seg_nwords[i] = nw;
            r->seg_finished[i] = true;
        }
        size_t done = ++r->n_done, tasks = r->n_tasks;
        bool last = done == tasks;
        bool report = !last && (r->cb.progress || r->cb.segment) && !r->cancelled;
        if (report)
            r->progress_calls++;
        if (last)
            unlink_request(p, r);
        pthread_mutex_unlock(&p->mu);

        if (report) {
            /* r stays alive: its last segment's worker waits for progress_calls == 0 */
            double f = (double)done / (double)tasks;
            pthread_mutex_lock(&r->progress_mu);
            if (r->cb.progress && f > r->reported) {
                r->reported = f;
                r->cb.progress(r->cb.progress_ud, f);
            }
            if (r->cb.segment)
                report_segments(p, r);
            pthread_mutex_unlock(&r->progress_mu);
            pthread_mutex_lock(&p->mu);
            r->progress_calls--;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
        if (last)
            finish_request(p, r);
        pthread_mutex_lock(&p->mu);
    }
    p->live_workers--;
    p->langs[w->lang].live--;
    pthread_mutex_unlock(&p->mu);
    ops->decoder_free(w->dec);
    w->dec = NULL;
    return NULL;
}

typedef struct {
    size_t len, idx;
} seg_key;

static int by_length_desc(const void *a, const void *b)
{
    const seg_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? 1 : -1;
    return (x->idx > y->idx) - (x->idx < y->idx); /* ties in time order */
}

/* Segment indexes by decreasing length (malloc'd; NULL on OOM). */
static size_t *longest_first(const ld_segment *segs, size_t n)
{
    seg_key *k = malloc(n * sizeof *k);
    size_t *order = malloc(n * sizeof *order);
    if (k && order) {
        for (size_t i = 0; i < n; i++)
            k[i] = (seg_key){segs[i].end - segs[i].start, i};
        qsort(k, n, sizeof *k, by_length_desc);
        for (size_t i = 0; i < n; i++)
            order[i] = k[i].idx;
    } else {
        free(order);
        order = NULL;
    }
    free(k);
    return order;
}

static size_t *in_time_order(size_t n)
{
    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; order && i < n; i++)
        order[i] = i;
    return order;
}

ld_err ld_pool_submit(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o, const ld_pool_callbacks *cb,
                      ld_error *err)
{
    int lang = lang_index(p, o->language);
    if (lang < 0) {
        char list[200] = "";
        for (int i = 0; i < p->n_langs; i++)
            if (p->langs[i].live > 0)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                         p->langs[i].code);
        return ld_error_set(err, LD_ERR_UNSUPPORTED_LANGUAGE, "Unsupported language '%s'; available: %s",
                            o->language, list);
    }
    ld_error pe;
    /* the first 10 minutes of sound tell whether it is noisy (model=auto, asr/packs.h) */
    size_t lead = ld_audio_lead_silence(pcm->samples, pcm->n), left = pcm->n - lead;
    const int16_t *from = pcm->samples + lead;
    size_t head = left < (size_t)600 * LD_SAMPLE_RATE ? left : (size_t)600 * LD_SAMPLE_RATE;
    double noise_dbfs = NAN, snr = pcm->narrowband ? 99.0 : ld_audio_snr_db(from, head, &noise_dbfs);
    int pack = ld_pool_pack_pick(p, lang, o->model, pcm->narrowband, snr, &pe);
    if (pack < 0) {
        if (err)
            *err = pe;
        return pe.code;
    }
    /* the noisy route hears the audio through the denoiser first (audio/denoise.h);
     * the noise level comes from the SNR estimate's pass unless that was skipped */
    if (!strcmp(p->packs[pack].name, "noisy")) {
        if (isnan(noise_dbfs))
            noise_dbfs = ld_audio_noise_dbfs(from, head);
        ld_err rc = ld_audio_denoise_route(pcm->samples, pcm->n, noise_dbfs, err);
        if (rc != LD_OK)
            return rc;
    }
    pthread_mutex_lock(&p->mu);
    /* a channel of an upload already here joins its group: no place of its own */
    bool joins = false, started;
    if (cb->owner)
        siblings(p, &(request){.cb = *cb}, &joins, &started);
    bool full = !joins && (p->n_waiting >= p->max_queue || p->stopping);
    if (!full && !joins) { /* reserve the slot while segmenting outside the lock */
        p->n_requests++;
        p->n_waiting++;
    }
    pthread_mutex_unlock(&p->mu);
    if (full)
        return ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE,
                            "Server busy: transcription queue is full, retry later");

    request *r = calloc(1, sizeof *r);
    if (r) {
        r->lang = lang;
        r->pack = pack;
        r->opts = *o;
        r->cb = *cb;
        r->n_segs = ld_audio_segment(pcm->samples, pcm->n, p->max_segment_s, &r->segs);
        r->n_tasks = r->n_segs ? r->n_segs : 1;
        r->seg_words = calloc(r->n_tasks, sizeof *r->seg_words);
        r->seg_nwords = calloc(r->n_tasks, sizeof *r->seg_nwords);
        r->seg_finished = calloc(r->n_tasks, sizeof *r->seg_finished);
        /* progressive output wants the beginning first */
        r->order = r->n_segs ? (cb->segment ? in_time_order(r->n_segs) : longest_first(r->segs, r->n_segs)) : NULL;
    }
    if (!r || !r->seg_words || !r->seg_nwords || !r->seg_finished || (r->n_segs && !r->order)) {
        if (r) {
            free(r->seg_words);
            free(r->seg_nwords);
            free(r->seg_finished);
            free(r->segs);
            free(r->order);
            free(r);
        }
        pthread_mutex_lock(&p->mu);
        if (!joins) {
            p->n_requests--;
            p->n_waiting--;
        }
        pthread_mutex_unlock(&p->mu);
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    }
    r->pcm = *pcm;
    memset(pcm, 0, sizeof *pcm);
    pthread_mutex_init(&r->progress_mu, NULL);

    pthread_mutex_lock(&p->mu);
    bool any = false;
    if (joins) /* its group may have finished meanwhile: then it counts on its own */
        siblings(p, r, &any, &started);
    if (joins && !any) {
        p->n_requests++;
        p->n_waiting++;
    }
    request **tail = &p->head;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;
    /* ld_pool_free began while we segmented: done (cancelled) still comes once */
    bool now = p->stopping && cancel_locked(p, r);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (now)
        finish_request(p, r);
    return LD_OK;
}

void ld_pool_waiter_init(ld_pool_waiter *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

void ld_pool_waiter_done(void *waiter, ld_transcript *t, const ld_error *err)
{
    ld_pool_waiter *w = waiter;
    pthread_mutex_lock(&w->mu);
    w->t = t;
    if (err)
        w->err = *err;
    else if (!t)
        ld_error_set(&w->err, LD_ERR_INTERNAL, "Transcription failed");
    w->finished = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

ld_transcript *ld_pool_waiter_wait(ld_pool_waiter *w, ld_error *err)
{
    pthread_mutex_lock(&w->mu);
    while (!w->finished)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (!w->t && err)
        *err = w->err;
    return w->t;
}

ld_transcript *ld_pool_transcribe(ld_pool *p, ld_pcm *pcm, const ld_transcribe_opts *o,
                                  ld_pool_progress_fn progress, void *progress_ud, ld_error *err)
{
    ld_pool_waiter w;
    ld_pool_waiter_init(&w);
    ld_pool_callbacks cb = {
        .progress = progress, .progress_ud = progress_ud, .done = ld_pool_waiter_done, .done_ud = &w};
    if (ld_pool_submit(p, pcm, o, &cb, err) != LD_OK) {
        ld_pool_waiter_done(&w, NULL, NULL); /* nothing will: release the waiter */
        ld_pool_waiter_wait(&w, NULL);
        return NULL;
    }
    return ld_pool_waiter_wait(&w, err);
}

/* Starts `n` workers for language `lang`; they load their decoders in parallel. */
static void start_workers(ld_pool *p, int lang, int n)
{
    for (int i = 0; i < n; i++) {
        worker *w = &((worker *)p->workers)[p->n_workers];
        *w = (worker){.pool = p, .lang = lang, .index = p->n_workers};
        p->starting++;
        if (pthread_create(&p->threads[p->n_workers], NULL, worker_main, w) != 0) {
            p->starting--;
            ld_log(LD_LOG_ERROR, "cannot start a decoder thread");
            continue;
        }
        p->n_workers++;
    }
}

ld_pool *ld_pool_new(const ld_pool_config *cfg, ld_error *err)
{
    ld_pool_config c = cfg ? *cfg : (ld_pool_config){0};
    if (c.workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c.workers = n > 0 ? (int)n : 1;
    }
    if (c.max_queue <= 0)
        c.max_queue = 4 * c.workers;
    if (c.max_segment_s <= 0)
        c.max_segment_s = LD_POOL_DEFAULT_SEGMENT_S;
    ld_pool *p = calloc(1, sizeof *p);
    if (!p) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    ld_engine_ps_quiet();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->warm_cv, NULL);
    pthread_cond_init(&p->stream_cv, NULL);
    p->engine = c.engine ? c.engine : &ld_engine_pocketsphinx;
    p->max_queue = c.max_queue;
    p->max_segment_s = c.max_segment_s;
    p->max_streams = LD_DEFAULT_MAX_STREAMS;
    if (c.vocabulary && ld_vocab_load_file(c.vocabulary, &p->vocab, err) != LD_OK) {
        ld_pool_free(p);
        return NULL;
    }
    if (ld_pool_find_languages(p, c.models_dir, err) != LD_OK ||
        ld_pool_load_packs(p, c.models_dir, err) != LD_OK) {
        ld_pool_free(p);
        return NULL;
    }
    p->workers = calloc((size_t)(p->n_langs * c.workers), sizeof(worker));
    p->threads = calloc((size_t)(p->n_langs * c.workers), sizeof *p->threads);
    if (!p->workers || !p->threads) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        ld_pool_free(p);
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    for (int l = 0; l < p->n_langs; l++)
        start_workers(p, l, c.workers);
    while (p->starting > 0)
        pthread_cond_wait(&p->cv, &p->mu);
    int live = p->live_workers;
    pthread_mutex_unlock(&p->mu);
    if (live == 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "no speech decoder could be loaded (see the log)");
        ld_pool_free(p);
        return NULL;
    }
    ld_log(LD_LOG_INFO, "decoder pool ready: %d decoders, %d languages", live, p->n_langs);
    return p;
}

void ld_pool_free(ld_pool *p)
{
    if (!p)
        return;
    /* Every accepted request still gets its done callback: cancelled, once the
     * segments already running finish (so a shutdown does not decode on). */
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    request *idle = NULL; /* cancelled with nothing running: finished here */
    for (request *r = p->head, *next; r; r = next) {
        next = r->next;
        if (!r->cancelled && cancel_locked(p, r)) {
            r->next = idle;
            idle = r;
        }
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (request *r = idle, *next; r; r = next) {
        next = r->next;
        finish_request(p, r);
    }
    for (int i = 0; i < p->n_workers; i++)
        pthread_join(p->threads[i], NULL);
    if (!ld_pool_streams_free(p)) {
        /* The warmer still uses p and the models: the process exit ends both.
         * Kept reachable so leak checkers do not report what it builds (atomic:
         * a plain store that nothing reads may be optimised away). */
        static ld_pool *_Atomic left_to_exit;
        atomic_store(&left_to_exit, p);
        return;
    }
    ld_pool_free_packs(p);
    ld_vocab_free(&p->vocab);
    free(p->workers);
    free(p->threads);
    free(p->langs);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->warm_cv);
    pthread_cond_destroy(&p->stream_cv);
    free(p);
}
