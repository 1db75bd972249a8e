/* PocketSphinx engine (ld_engine_pocketsphinx).
 *
 * Batch decoders only ever see whole segments (full_utt, batch CMN), so a
 * result never depends on what the decoder decoded before. Stream decoders take
 * chunked input (live CMN); each stream starts from the same fixed CMN vector
 * (its transform's, if it has one) so streams do not depend on each other either.
 *
 * Transforms (model packs) are one-class MLLR: ps_update_mllr reloads the
 * model's means/variances from disk and transforms them in place, so switching
 * costs milliseconds and no memory; "no transform" is the identity. */
#include <pocketsphinx.h>
#include <pocketsphinx/ps_mllr.h>
#include <pthread.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/engine.h"
#include "asr/engine_ps.h"
#include "asr/model.h"
#include "asr/packs.h"
#include "audio/audio.h"
#include "util/log.h"

#define FRAME_RATE 100.0 /* -frate default: 10 ms frames */
#define CEP_LEN 13

/* Live-CMN start vector for streams on the Debian en-us model: for now its
 * feat.params -cmninit; a measured mean cepstrum may replace it (docs/engine.md).
 * The point is that every stream starts from the same fixed value. */
static const mfcc_t en_us_cmn_init[CEP_LEN] = {LD_PS_CMN_INIT_EN_US};

typedef struct {
    ps_mllr_t *mllr;
    bool has_cmn;
    mfcc_t cmn_init[CEP_LEN];
} ps_transform;

typedef struct {
    ps_decoder_t *ps;
    logmath_t *lmath;
    const ps_transform *cur;        /* transform in use; NULL = none */
    mfcc_t model_cmn_init[CEP_LEN]; /* the model's own start vector */
    mfcc_t cmn_init[CEP_LEN];       /* start vector of streams: model's or cur's */
    /* streaming state */
    bool in_utt;
    size_t fed;       /* samples fed since stream_start */
    size_t utt_start; /* sample index where the current utterance began */
    /* adaptive live CMN: the stream's own cepstra so far (see cmn_adapt) */
    double cmn_sum[CEP_LEN];
    double cmn_n;
    double cmn_sum0[CEP_LEN]; /* … as the current utterance began (stream_restart) */
    double cmn_n0;
    mfcc_t cmn_set_sum[CEP_LEN]; /* cmn_t's sum and count as last set by us */
    int32 cmn_set_n;
    ld_ps_vocab *vocab; /* keywords (engine_ps_vocab.c) */
} ps_dec;

/* PocketSphinx logs ~200 INFO lines per decode; route warnings and errors into
 * our JSON log and keep INFO only at debug level. Process-wide, set once. */
static void ps_log_cb(void *ud, err_lvl_t lvl, const char *fmt, ...)
{
    (void)ud;
    /* Its errors are per-utterance (e.g. "Couldn't find <s>" on silence) and
     * never fatal to us: warnings at most. */
    ld_log_level l = lvl >= ERR_FATAL ? LD_LOG_ERROR : lvl >= ERR_WARN ? LD_LOG_WARNING : LD_LOG_DEBUG;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (strstr(buf, "Couldn't find <s>"))
        l = LD_LOG_DEBUG; /* silence-only input: expected */
    if (!ld_log_enabled(l))
        return;
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    if (n)
        ld_log(l, "pocketsphinx: %s", buf);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void log_init(void)
{
    /* NULL log file first (only honoured while the default callback is set):
     * the config table is printed straight to that file, not via the callback. */
    err_set_logfp(NULL);
    err_set_callback(ps_log_cb, NULL);
}

void ld_engine_ps_quiet(void) { pthread_once(&log_once, log_init); }

/* Base settings, then LISTEND_PS_ARGS pairs replacing same-named ones (the
 * strict parser rejects duplicates). */
static cmd_ln_t *make_config(const ld_model_files *f)
{
    const char *base[] = {"-hmm", f->acoustic, "-lm", f->lm, "-dict", f->dict, LD_PS_TUNING};
    enum { NBASE = sizeof base / sizeof *base, MAXARG = NBASE + 64 };
    char *argv[MAXARG];
    int argc = 0;
    for (int i = 0; i < NBASE; i++)
        argv[argc++] = (char *)base[i];
    const char *env = getenv("LISTEND_PS_ARGS");
    char *copy = env ? strdup(env) : NULL, *save = NULL;
    for (char *k = copy ? strtok_r(copy, " ", &save) : NULL; k; k = strtok_r(NULL, " ", &save)) {
        char *v = strtok_r(NULL, " ", &save);
        if (!v)
            break;
        int i = 0;
        while (i < argc && strcmp(argv[i], k))
            i += 2;
        if (i < argc)
            argv[i + 1] = v;
        else if (argc + 2 <= MAXARG) {
            argv[argc++] = k;
            argv[argc++] = v;
        }
    }
    cmd_ln_t *cfg = cmd_ln_parse_r(NULL, ps_args(), argc, argv, TRUE);
    free(copy);
    return cfg;
}

static void *ps_decoder_new(const ld_engine_model *m, ld_error *err)
{
    ld_engine_ps_quiet();
    ld_model_files f;
    if (ld_model_resolve(m->model_dir, &f, err) != LD_OK)
        return NULL;
    cmd_ln_t *cfg = make_config(&f);
    if (!cfg) {
        ld_error_set(err, LD_ERR_INTERNAL, "speech engine: bad configuration for model '%s'", m->model_dir);
        return NULL;
    }
    ps_dec *d = calloc(1, sizeof *d);
    d->ps = d ? ps_init(cfg) : NULL;
    cmd_ln_free_r(cfg); /* ps_init keeps its own reference */
    if (!d || !d->ps) {
        free(d);
        ld_error_set(err, LD_ERR_INTERNAL, "speech engine: cannot load model from '%s'", m->model_dir);
        return NULL;
    }
    d->lmath = ps_get_logmath(d->ps);
    cmn_t *cmn = ps_get_feat(d->ps)->cmn_struct;
    if (ld_model_is_default(m->model_dir))
        memcpy(d->cmn_init, en_us_cmn_init, sizeof d->cmn_init);
    else if (cmn)
        cmn_live_get(cmn, d->cmn_init);
    memcpy(d->model_cmn_init, d->cmn_init, sizeof d->cmn_init);
    d->vocab = ld_ps_vocab_new(d->ps, f.dict, m->vocabulary);
    if (!d->vocab || ld_ps_vocab_use(d->vocab, "", err) != LD_OK) {
        if (d->vocab)
            ld_log(LD_LOG_ERROR, "vocabulary: %s", err ? err->msg : "cannot apply");
        else
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        ld_ps_vocab_free(d->vocab);
        ps_free(d->ps);
        free(d);
        return NULL;
    }
    return d;
}

/* ps_mllr_t reference counts are plain ints: every retain/free of a shared
 * transform (ps_update_mllr and ps_free free the previous one) runs under this. */
static pthread_mutex_t mllr_mu = PTHREAD_MUTEX_INITIALIZER;

static void ps_decoder_free(void *dec)
{
    ps_dec *d = dec;
    if (!d)
        return;
    ld_ps_vocab_free(d->vocab);
    pthread_mutex_lock(&mllr_mu);
    ps_free(d->ps);
    pthread_mutex_unlock(&mllr_mu);
    free(d);
}

/* ps_mllr_read only reads files: the text goes through a private temp file. */
static ps_mllr_t *mllr_from_text(const char *text, ld_error *err)
{
    const char *dir = getenv("TMPDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/listend-mllr-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        ld_error_set(err, LD_ERR_INTERNAL, "cannot create a temporary file in %s", dir && *dir ? dir : "/tmp");
        return NULL;
    }
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    ps_mllr_t *m = off == n ? ps_mllr_read(path) : NULL;
    unlink(path);
    if (!m)
        ld_error_set(err, LD_ERR_INTERNAL, "not a valid MLLR transform");
    return m;
}

/* One class, three 13-dimensional streams: A = I, b = 0, h = 1. */
static ps_mllr_t *identity;
static pthread_once_t identity_once = PTHREAD_ONCE_INIT;
static void identity_init(void)
{
    char text[4096], *p = text;
    p += sprintf(p, "1\n3\n");
    for (int f = 0; f < 3; f++) {
        p += sprintf(p, "%d\n", CEP_LEN);
        for (int r = 0; r < CEP_LEN; r++, *p++ = '\n')
            for (int c = 0; c < CEP_LEN; c++)
                p += sprintf(p, "%d ", r == c);
        for (int row = 0; row < 2; row++, *p++ = '\n') /* b, then h */
            for (int c = 0; c < CEP_LEN; c++)
                p += sprintf(p, "%d ", row);
    }
    *p = 0;
    identity = mllr_from_text(text, NULL);
}

static uint32_t bswap(uint32_t u) { return (u >> 24) | ((u >> 8) & 0xff00) | ((u << 8) & 0xff0000) | (u << 24); }

/* The layout a transform must fit: ps_update_mllr transforms the means file's
 * densities stream by stream with the transform's A/b/h of the same index, so
 * its streams and their lengths are the means file's (s3 text header up to
 * an "endhdr" line, byte-order magic, then n_mgau, n_feat, n_density, featlen[]). */
static ld_err model_shape(const char *model_dir, ld_mllr_shape *shape, ld_error *err)
{
    ld_model_files f;
    if (ld_model_resolve(model_dir, &f, err) != LD_OK)
        return err ? err->code : LD_ERR_INTERNAL;
    char path[1100];
    snprintf(path, sizeof path, "%s/means", f.acoustic);
    FILE *in = fopen(path, "rb");
    char line[512];
    bool hdr = false;
    while (in && !hdr && fgets(line, sizeof line, in)) {
        char word[16];
        hdr = sscanf(line, "%15s", word) == 1 && !strcmp(word, "endhdr"); /* indented in Debian's */
    }
    uint32_t v[3 + LD_MLLR_MAX_STREAMS], magic = 0;
    bool ok = hdr && fread(&magic, 4, 1, in) == 1 && (magic == 0x11223344 || bswap(magic) == 0x11223344) &&
              fread(v, 4, 3, in) == 3;
    for (int i = 0; ok && i < 3; i++)
        v[i] = magic == 0x11223344 ? v[i] : bswap(v[i]);
    ok = ok && v[1] >= 1 && v[1] <= LD_MLLR_MAX_STREAMS && fread(v + 3, 4, v[1], in) == v[1];
    if (in)
        fclose(in);
    if (!ok)
        return ld_error_set(err, LD_ERR_INTERNAL, "%s: not a means file of 1 to %d streams", path,
                            LD_MLLR_MAX_STREAMS);
    shape->n_streams = (int)v[1];
    for (int i = 0; i < shape->n_streams; i++)
        shape->veclen[i] = (int)(magic == 0x11223344 ? v[3 + i] : bswap(v[3 + i]));
    return LD_OK;
}

/* The transform is checked against the model before PocketSphinx reads it:
 * ps_mllr_read allocates by the header's sizes (a huge length aborts the
 * process) and ps_update_mllr trusts them (a mismatch crashes the decoder). */
static void *ps_transform_new(const ld_engine_model *m, const char *mllr_text, const float *cmn_init, ld_error *err)
{
    ld_engine_ps_quiet();
    ld_mllr_shape shape;
    if (model_shape(m->model_dir, &shape, err) != LD_OK || ld_pack_check_mllr(mllr_text, &shape, err) != LD_OK)
        return NULL;
    ps_transform *t = calloc(1, sizeof *t);
    if (!t) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (!(t->mllr = mllr_from_text(mllr_text, err))) {
        free(t);
        return NULL;
    }
    if (cmn_init) {
        t->has_cmn = true;
        for (int i = 0; i < CEP_LEN; i++)
            t->cmn_init[i] = cmn_init[i];
    }
    return t;
}

static void ps_transform_free(void *tp)
{
    ps_transform *t = tp;
    if (!t)
        return;
    pthread_mutex_lock(&mllr_mu);
    ps_mllr_free(t->mllr);
    pthread_mutex_unlock(&mllr_mu);
    free(t);
}

static ld_err ps_decoder_use(void *dec, void *tp, ld_error *err)
{
    ps_dec *d = dec;
    const ps_transform *t = tp;
    if (t == d->cur)
        return LD_OK;
    pthread_once(&identity_once, identity_init);
    ps_mllr_t *m = t ? t->mllr : identity;
    if (!m)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: cannot build the identity transform");
    pthread_mutex_lock(&mllr_mu);
    ps_update_mllr(d->ps, ps_mllr_retain(m)); /* the decoder releases its previous one */
    pthread_mutex_unlock(&mllr_mu);
    d->cur = t;
    memcpy(d->cmn_init, t && t->has_cmn ? t->cmn_init : d->model_cmn_init, sizeof d->cmn_init);
    return LD_OK;
}

/* Strips <s>, </s>, <sil>, [NOISE]-style fillers and "(2)" variant marks. */
static bool clean_word(const char *w, char *out, size_t outsz)
{
    if (!w || !*w || w[0] == '<' || w[0] == '[' || w[0] == '+')
        return false;
    size_t n = strcspn(w, "(");
    if (n == 0 || n >= outsz)
        return false;
    memcpy(out, w, n);
    out[n] = 0;
    return true;
}

/* Words of the utterance just ended; `offset_s` is added to every time. */
static ld_err collect_words(ps_dec *d, double offset_s, ld_word **words, size_t *n_words, ld_error *err)
{
    size_t cap = 16, n = 0;
    ld_word *w = malloc(cap * sizeof *w);
    if (!w)
        return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
    for (ps_seg_t *s = ps_seg_iter(d->ps); s; s = ps_seg_next(s)) {
        char buf[128];
        if (!clean_word(ps_seg_word(s), buf, sizeof buf))
            continue;
        const char *kw = ld_ps_vocab_word(d->vocab, buf); /* a keyword's placeholder */
        if (kw)
            snprintf(buf, sizeof buf, "%s", kw);
        if (n == cap) {
            ld_word *nw = realloc(w, (cap *= 2) * sizeof *w);
            if (!nw) {
                ps_seg_free(s);
                ld_words_free(w, n);
                return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            }
            w = nw;
        }
        int sf, ef;
        ps_seg_frames(s, &sf, &ef);
        int32 ascr, lscr, lback;
        /* Posterior from the bestpath lattice (log domain); 0 when unavailable. */
        double conf = logmath_exp(d->lmath, ps_seg_prob(s, &ascr, &lscr, &lback));
        w[n].word = strdup(buf);
        w[n].start = offset_s + sf / FRAME_RATE;
        w[n].end = offset_s + (ef + 1) / FRAME_RATE;
        w[n].confidence = conf < 0 ? 0 : conf > 1 ? 1 : conf;
        if (!w[n].word) {
            ps_seg_free(s);
            ld_words_free(w, n);
            return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        }
        n++;
    }
    *words = w;
    *n_words = n;
    return LD_OK;
}

static ld_err ps_decode(void *dec, const int16_t *pcm, size_t n, ld_word **words, size_t *n_words, ld_error *err)
{
    ps_dec *d = dec;
    *words = NULL;
    *n_words = 0;
    /* start_stream resets frame counters so times start at 0 for this segment. */
    if (ps_start_stream(d->ps) < 0 || ps_start_utt(d->ps) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: cannot start utterance");
    if (n && ps_process_raw(d->ps, pcm, n, FALSE, TRUE) < 0) {
        ps_end_utt(d->ps);
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: decoding failed");
    }
    if (ps_end_utt(d->ps) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: decoding failed");
    return collect_words(d, 0.0, words, n_words, err);
}

/* Adaptive live CMN for streams. PocketSphinx's live CMN holds its start
 * vector for the first 300 frames (it re-estimates only past CMN_WIN_HWM), so
 * an utterance shorter than 3 s is normalised with a fixed global mean that
 * fits neither this speaker nor this channel or level. Between the engine's
 * 100 ms slices (fixed points of audio time, so results stay repeatable) we
 * set the mean to a MAP-style estimate: the start vector weighted as `prior`
 * frames plus every frame of this stream so far (across its utterances,
 * at most `cap` frames, older ones fading). prior 0 = PocketSphinx's own
 * behaviour. LISTEND_STREAM_CMN="prior,cap" overrides, for experiments only
 * (cap 0: each utterance starts again from the start vector). */
static double cmn_prior = 150, cmn_cap = 1000;
static pthread_once_t cmn_once = PTHREAD_ONCE_INIT;
static void cmn_conf(void)
{
    const char *e = getenv("LISTEND_STREAM_CMN");
    if (e && *e)
        sscanf(e, "%lf,%lf", &cmn_prior, &cmn_cap);
}

/* The decoder's live CMN when it is ours to adapt (13 cepstra, as every
 * Sphinx model we load; anything else keeps PocketSphinx's own handling). */
static cmn_t *adaptive_cmn(ps_dec *d)
{
    cmn_t *cmn = ps_get_feat(d->ps)->cmn_struct;
    return cmn_prior > 0 && cmn && cmn->veclen == CEP_LEN ? cmn : NULL;
}

/* Sets the live mean from the start vector and the stream's statistics. */
static void cmn_apply(ps_dec *d, cmn_t *cmn)
{
    double w = cmn_prior;
    /* cmn_live_set's effect without its two INFO lines per call: the mean,
     * and sums that keep PocketSphinx from re-estimating it (< CMN_WIN_HWM). */
    for (int i = 0; i < CEP_LEN; i++) {
        mfcc_t m = w > 0 ? (mfcc_t)((w * d->cmn_init[i] + d->cmn_sum[i]) / (w + d->cmn_n)) : d->cmn_init[i];
        cmn->cmn_mean[i] = m;
        cmn->sum[i] = d->cmn_set_sum[i] = m * CMN_WIN;
    }
    cmn->nframe = d->cmn_set_n = CMN_WIN;
}

/* Takes the frames PocketSphinx added to its sums since cmn_apply. */
static void cmn_absorb(ps_dec *d, cmn_t *cmn)
{
    if (cmn->nframe <= d->cmn_set_n) /* nothing new (or it re-windowed: >300 frames at once) */
        return;
    for (int i = 0; i < CEP_LEN; i++)
        d->cmn_sum[i] += cmn->sum[i] - d->cmn_set_sum[i];
    d->cmn_n += cmn->nframe - d->cmn_set_n;
    if (cmn_cap > 0 && d->cmn_n > cmn_cap) {
        double f = cmn_cap / d->cmn_n;
        for (int i = 0; i < CEP_LEN; i++)
            d->cmn_sum[i] *= f;
        d->cmn_n = cmn_cap;
    }
}

static ld_err begin_utt(ps_dec *d, ld_error *err)
{
    pthread_once(&cmn_once, cmn_conf);
    cmn_t *cmn = adaptive_cmn(d);
    if (cmn && cmn_cap <= 0) { /* experiment: every utterance from the start vector */
        memset(d->cmn_sum, 0, sizeof d->cmn_sum);
        d->cmn_n = 0;
    }
    if (cmn)
        cmn_apply(d, cmn);
    else if ((cmn = ps_get_feat(d->ps)->cmn_struct))
        cmn_live_set(cmn, d->cmn_init);
    if (ps_start_stream(d->ps) < 0 || ps_start_utt(d->ps) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: cannot start stream");
    d->in_utt = true;
    d->utt_start = d->fed;
    memcpy(d->cmn_sum0, d->cmn_sum, sizeof d->cmn_sum);
    d->cmn_n0 = d->cmn_n;
    return LD_OK;
}

static ld_err ps_stream_start(void *dec, ld_error *err)
{
    ps_dec *d = dec;
    if (d->in_utt) {
        ps_end_utt(d->ps);
        d->in_utt = false;
    }
    d->fed = 0;
    memset(d->cmn_sum, 0, sizeof d->cmn_sum);
    d->cmn_n = 0;
    return begin_utt(d, err);
}

static ld_err ps_stream_feed(void *dec, const int16_t *pcm, size_t n, ld_error *err)
{
    ps_dec *d = dec;
    if (!d->in_utt && begin_utt(d, err) != LD_OK)
        return err ? err->code : LD_ERR_INTERNAL;
    if (n && ps_process_raw(d->ps, pcm, n, FALSE, FALSE) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: decoding failed");
    d->fed += n;
    cmn_t *cmn = adaptive_cmn(d);
    if (cmn) {
        cmn_absorb(d, cmn);
        cmn_apply(d, cmn);
    }
    return LD_OK;
}

static char *ps_stream_partial(void *dec)
{
    ps_dec *d = dec;
    const char *h = d->in_utt ? ps_get_hyp(d->ps, NULL) : NULL;
    if (!h || !strstr(h, "__kw"))
        return strdup(h ? h : "");
    /* keywords' placeholders back to their words */
    size_t cap = strlen(h) + LD_VOCAB_MAX_WORDS * (LD_VOCAB_MAX_WORD_LEN + 1) + 1, off = 0;
    char *out = malloc(cap);
    for (const char *p = h; out && *p;) {
        size_t n = strcspn(p, " ");
        char w[128];
        snprintf(w, sizeof w, "%.*s", (int)(n < sizeof w ? n : sizeof w - 1), p);
        const char *kw = ld_ps_vocab_word(d->vocab, w);
        int k = kw ? snprintf(out + off, cap - off, "%s", kw) : snprintf(out + off, cap - off, "%.*s", (int)n, p);
        off += k > 0 && (size_t)k < cap - off ? (size_t)k : 0;
        p += n;
        for (; *p == ' '; p++)
            if (off + 1 < cap)
                out[off++] = ' ';
        out[off] = 0;
    }
    return out;
}

static bool ps_stream_in_speech(void *dec)
{
    ps_dec *d = dec;
    return d->in_utt && ps_get_in_speech(d->ps);
}

/* Ends the utterance in progress, if any (*ended: whether there was one). */
static ld_err end_utt(ps_dec *d, bool *ended, ld_error *err)
{
    *ended = d->in_utt;
    if (!d->in_utt)
        return LD_OK;
    d->in_utt = false;
    return ps_end_utt(d->ps) < 0 ? ld_error_set(err, LD_ERR_INTERNAL, "speech engine: decoding failed") : LD_OK;
}

static ld_err ps_stream_end(void *dec, ld_word **words, size_t *n_words, ld_error *err)
{
    ps_dec *d = dec;
    *words = NULL;
    *n_words = 0;
    bool ended;
    ld_err rc = end_utt(d, &ended, err);
    if (rc != LD_OK || !ended)
        return rc;
    cmn_t *cmn = adaptive_cmn(d);
    if (cmn)
        cmn_absorb(d, cmn); /* the utterance's last frames count for the next one */
    return collect_words(d, (double)d->utt_start / LD_SAMPLE_RATE, words, n_words, err);
}

static ld_err ps_stream_skip(void *dec, size_t n, ld_error *err)
{
    ps_dec *d = dec;
    if (d->in_utt && d->fed > d->utt_start)
        return ld_error_set(err, LD_ERR_INTERNAL, "speech engine: cannot skip audio inside an utterance");
    d->fed += n;
    if (d->in_utt)
        d->utt_start = d->fed; /* started, nothing decoded yet: it starts later */
    return LD_OK;
}

static ld_err ps_stream_restart(void *dec, ld_error *err)
{
    ps_dec *d = dec;
    bool ended;
    ld_err rc = end_utt(d, &ended, err);
    if (rc != LD_OK || !ended)
        return rc;
    d->fed = d->utt_start;
    memcpy(d->cmn_sum, d->cmn_sum0, sizeof d->cmn_sum);
    d->cmn_n = d->cmn_n0;
    return LD_OK;
}

static ld_err ps_decoder_vocab(void *dec, const char *keywords, ld_error *err)
{
    ps_dec *d = dec;
    if (d->in_utt) { /* a stream decoder released mid-utterance (client gone): that utterance is over */
        ps_end_utt(d->ps);
        d->in_utt = false;
    }
    return ld_ps_vocab_use(d->vocab, keywords, err);
}

const ld_engine_ops ld_engine_pocketsphinx = {
    .name = "pocketsphinx",
    .decoder_new = ps_decoder_new,
    .decoder_free = ps_decoder_free,
    .decode = ps_decode,
    .stream_start = ps_stream_start,
    .stream_feed = ps_stream_feed,
    .stream_partial = ps_stream_partial,
    .stream_in_speech = ps_stream_in_speech,
    .stream_end = ps_stream_end,
    .transform_new = ps_transform_new,
    .transform_free = ps_transform_free,
    .decoder_use = ps_decoder_use,
    .stream_skip = ps_stream_skip,
    .stream_restart = ps_stream_restart,
    .decoder_vocab = ps_decoder_vocab,
};
