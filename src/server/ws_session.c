/* One stream's decoding, run on a worker thread (one task at a time per stream):
 * convert the client's audio, feed the stream decoder in slices of at most
 * 100 ms, and decide utterance boundaries.
 *
 * End of utterance: PocketSphinx's own VAD (stream_in_speech) only drops ≈ 0.5 s
 * after speech stops, too late for an 800 ms eou_timeout budget, so the
 * trailing silence is measured with a 10 ms energy VAD against an adaptive
 * noise floor; the engine VAD starts an utterance (it rejects most noise) and
 * ends one when the energy VAD is fooled by steady background noise.
 * All times are audio time, so results do not depend on how fast the client
 * sends.
 *
 * Deferred feeding: decoding costs about as much CPU in silence or background
 * noise as in speech, and the engine is ~97 % of a stream's CPU (docs/
 * streaming.md, "Where the CPU goes"). So audio the words cannot depend on is
 * held back: after the last voiced frame the engine gets HOLD more, the rest
 * waits (and is fed after all, unchanged, if voice returns before the end of
 * the utterance); between utterances at most PREROLL of the latest audio
 * waits for an onset and older audio is skipped (the engine's clock still
 * counts it). Engines without stream_skip get every sample.
 *
 * Noise: a wideband stream with model auto or noisy picks its route at its
 * first speech, once the speech's level is known (ROUTE_VOICE): below the
 * noisy route's SNR the engine decodes that utterance again from its start
 * (stream_restart), now hearing the audio through the batch route's denoiser
 * (audio/denoise.h), LD_DENOISE_DELAY samples late, flushed at each end of
 * utterance. Nothing waits for the pick; the energy VAD, speakers and times
 * keep the audio as it came. */
#include "server/ws_internal.h"

#include <gnutls/crypto.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "asr/diarize.h"
#include "asr/redact.h"
#include "audio/denoise.h"
#include "server/ws_deepgram.h"
#include "server/ws_flux.h"
#include "server/ws_openai.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/time.h"

#define RATE LD_SAMPLE_RATE /* what the stream converter hands the engine */
#define FRAME 160           /* 10 ms energy frames */
#define SLICE 1600          /* feed the engine at most 100 ms at a time */
#define STEP 320            /* ends of utterances are checked every 20 ms (telephony frames) */
#define MIN_THRESHOLD 200.0 /* RMS below this is never speech (≈ -44 dBFS) */
#define NOISE_FACTOR 3.5
#define VOICE_RECENT (RATE * 3 / 10) /* the engine's onset needs energy within 300 ms */
#define IDLE_UTT_MAX (10 * RATE)     /* end a speechless engine utterance after this */
#define HOLD (RATE * 6 / 10)         /* feed the engine this long after the last voiced frame */
#define PREROLL (RATE / 2)           /* audio before an onset that the engine gets */
#define ROUTE_VOICE (RATE * 3 / 10)  /* voiced audio heard before the route is picked … */
#define ROUTE_WAIT (RATE / 2)        /* … or this long into a run of voice (< HOLD: still fed) */

/* One channel's decoding (a mono stream has one). */
typedef struct track {
    const ld_engine_ops *ops;
    void *dec;
    ld_audio_stream *conv;
    size_t pos; /* samples received so far (audio time) */
    /* deferred feeding: [fed, pos) is held back, in held[] */
    size_t fed;
    int16_t *held;
    size_t held_cap;
    bool engine_open; /* the engine's utterance has decoded audio */
    /* energy VAD */
    int16_t frame[FRAME];
    size_t frame_fill;
    double noise;
    double dc;         /* the signal's DC offset, followed slowly: energy is measured without it */
    size_t dc_frames;  /* frames it was followed over, up to 100 */
    size_t last_voice; /* end of the last voiced frame */
    size_t run_start;  /* start of the current run of voiced frames */
    bool have_voice;
    /* utterance state */
    size_t engine_utt_start; /* where the engine's current utterance began */
    size_t last_engine_speech;
    bool speaking;
    size_t speech_start;
    char *last_partial;
    double usage_pending; /* audio seconds not yet counted against the quota */
    bool ended;
    /* Deepgram mode (ws_deepgram.h) */
    bool natural_end;     /* the utterance ending now ended in silence (speech_final) */
    bool utt_end_pending; /* an UtteranceEnd is due after utterance_end_ms of silence */
    double last_word_end; /* of the last final's words */
    /* OpenAI mode (ws_openai.h): each utterance is an item; Flux mode (ws_flux.h): a turn */
    unsigned items;     /* items committed / turns ended so far; the current one is number `items` */
    bool clearing;      /* input_audio_buffer.clear: the utterance ending now loses its words */
    bool vocab_pending; /* Flux's Configure changed the key terms: switch before the next utterance */
    char *take;         /* no turn detection: text of the engine utterances the item holds before its commit */
    size_t take_start;
    /* multichannel (issue 14) */
    ld_ws_params params;    /* the stream's, with `channel` set: what this channel's messages say */
    ld_stream_decoder *own; /* channels after the first hold their own decoder (the first: c->decoder) */
    ld_diarize_live *spk;   /* diarize=true: this channel's speakers (asr/diarize.h) */
    char *full;             /* full_transcript=true: this channel's finals so far */
    ld_redactor redactor;   /* redact: this channel's token numbers (asr/redact.h) */
    /* noise: the route is picked at the first speech (route_pending until then) */
    char asked[32]; /* the model the client asked for */
    bool route_pending;
    bool ending; /* finalize or the end of the stream: pick the route now */
    ld_audio_snr_meter snr;
    size_t voiced;   /* energy-voiced samples so far */
    int16_t *replay; /* until the pick: what the engine's utterance was fed */
    size_t replay_n, replay_cap;
    ld_audio_denoiser *dn; /* the noisy route's, else NULL */
} track;

/* The stream: its channels, and how interleaved input is cut into them. */
struct ws_session {
    track *tr[LD_MAX_CHANNELS];
    int n;
    size_t bps;                         /* bytes per sample of the encoding (4 linear32, 2 linear16, 1 G.711) */
    uint8_t carry[4 * LD_MAX_CHANNELS]; /* an incomplete frame (4 = linear32's sample), for the next chunk */
    size_t carry_len;
    uint8_t *one; /* one channel's bytes of a chunk */
    size_t one_cap;
    bool ended;
    gnutls_hash_hd_t sha; /* of the audio bytes received, for Metadata; NULL unless Deepgram mode */
};

static void track_free(ws_conn *c, track *s);

/* Channel `ch`: its converter and decoder (the first channel's is c->decoder,
 * released with the session by ws.c; the others' are released in track_free). */
static track *track_new(ws_conn *c, int ch, const char *asked, ld_error *err)
{
    track *s = calloc(1, sizeof *s);
    if (!s) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->noise = MIN_THRESHOLD / NOISE_FACTOR;
    s->redactor.kinds = c->params.redact;
    s->redactor.stream = true;
    snprintf(s->asked, sizeof s->asked, "%s", asked);
    s->conv = ld_audio_stream_new(c->params.encoding, c->params.sample_rate, err);
    if (!s->conv) {
        free(s);
        return NULL;
    }
    if (c->params.diarize &&
        !(s->spk = ld_diarize_live_new(c->params.num_speakers, ld_audio_stream_narrowband(s->conv)))) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        track_free(c, s);
        return NULL;
    }
    ld_pool *pool = c->ws->cfg.pool;
    ld_stream_decoder **slot = ch ? &s->own : &c->decoder;
    s->params = c->params;
    s->params.channel = ch;
    if (pool && ld_pool_stream_acquire(pool, c->params.language, slot, err) != LD_OK) {
        track_free(c, s);
        return NULL;
    }
    if (*slot) { /* telephone-band streams get the telephony pack by default */
        bool narrowband = ld_audio_stream_narrowband(s->conv);
        if (pool && ld_pool_stream_use_model(pool, *slot, asked, narrowband, 99.0, err) != LD_OK) {
            track_free(c, s);
            return NULL;
        }
        s->route_pending = pool && !narrowband &&
                           (ld_pool_model_is_auto(pool, (*slot)->language, asked) ||
                            !strcmp((*slot)->model, "noisy"));
        if (!ch)
            snprintf(c->params.model, sizeof c->params.model, "%s", (*slot)->model);
        snprintf(s->params.model, sizeof s->params.model, "%s", (*slot)->model);
        /* keywords switch the decoder's dictionary (≈ 0.2–0.6 s, only when they differ from its last stream's) */
        if (pool && ld_pool_stream_use_keywords(pool, *slot, c->params.keywords, err) != LD_OK) {
            track_free(c, s);
            return NULL;
        }
        s->ops = (*slot)->ops;
        s->dec = (*slot)->dec;
        if (s->ops->stream_start(s->dec, err) != LD_OK) {
            s->ops = NULL;
            track_free(c, s);
            return NULL;
        }
    }
    return s;
}

static void session_free(ws_conn *c, ws_session *s)
{
    for (int i = 0; i < s->n; i++)
        track_free(c, s->tr[i]);
    if (s->sha)
        gnutls_hash_deinit(s->sha, NULL);
    free(s->one);
    free(s);
}

/* No encoding asked: the first message tells a container from raw audio
 * (audio/stream.h); a WAV header is taken off it. False: err set. */
static bool sniff(ws_conn *c, ws_task *first, size_t *header, ld_error *err)
{
    *header = 0;
    if (!c->params.encoding_sniff || c->params.channels > 1 || !first || first->kind != WS_TASK_AUDIO)
        return true;
    c->params.encoding_sniff = false;
    ld_stream_encoding enc;
    int rate = c->params.sample_rate;
    bool found;
    if (ld_audio_stream_sniff(first->data, first->len, &enc, &rate, header, &found, err) != LD_OK)
        return false;
    if (found) {
        ld_log(LD_LOG_INFO, "stream %s: the audio is %s at %d Hz (from its first bytes)", c->session_id,
               ld_audio_stream_encoding_name(enc), rate);
        c->params.encoding = enc;
        c->params.sample_rate = rate;
    }
    return true;
}

ws_session *ws_session_new(ws_conn *c, ws_task *first, ld_error *err)
{
    size_t header;
    if (!sniff(c, first, &header, err))
        return NULL;
    ws_session *s = calloc(1, sizeof *s);
    if (!s) {
        ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    int n = c->params.channels > 1 ? c->params.channels : 1;
    s->bps = ld_audio_stream_sample_bytes(c->params.encoding);
    s->bps = s->bps ? s->bps : 1;       /* Opus: one channel, whole frames */
    char asked[sizeof c->params.model]; /* the first channel's sets c->params.model to the pack in use */
    memcpy(asked, c->params.model, sizeof asked);
    for (s->n = 0; s->n < n; s->n++)
        if (!(s->tr[s->n] = track_new(c, s->n, asked, err))) {
            session_free(c, s);
            return NULL;
        }
    if (c->params.deepgram && gnutls_hash_init(&s->sha, GNUTLS_DIG_SHA256) < 0)
        s->sha = NULL;
    if (header) { /* the WAV header is no audio, but Metadata's sha256 is of what was sent */
        if (s->sha)
            gnutls_hash(s->sha, first->data, header);
        memmove(first->data, first->data + header, first->len - header);
        first->len -= header;
    }
    return s;
}

static ld_err count_usage(ws_conn *c, track *s, bool force, ld_error *err);

static void track_free(ws_conn *c, track *s)
{
    ld_error err;
    count_usage(c, s, true, &err); /* the last partial second of an abruptly ended stream */
    ld_audio_stream_free(s->conv);
    free(s->last_partial);
    free(s->held);
    free(s->replay);
    free(s->take);
    ld_audio_denoiser_free(s->dn);
    ld_diarize_live_free(s->spk);
    free(s->full);
    if (s->own && c->ws->cfg.pool)
        ld_pool_stream_release(c->ws->cfg.pool, s->own);
    free(s);
}

void ws_session_free(ws_conn *c, ws_session *s)
{
    if (s)
        session_free(c, s);
}

static double secs(size_t samples) { return (double)samples / RATE; }

/* When the utterance's speech ended, for speech_ended / speech_stopped: the
 * last voiced frame, never before its speech_started (an utterance that began
 * at a finalize, or after a short eou_timeout_ms, may have heard its last
 * voice just before that point). */
static double speech_end(const track *s)
{
    return secs(s->last_voice > s->speech_start ? s->last_voice : s->speech_start);
}

static void energy_frame(track *s, const int16_t *f, size_t end)
{
    /* A microphone's DC offset lifted every frame's energy and with it the noise
     * floor, so speech never stood out (as in audio/snr.c for uploads). */
    double mean = 0;
    for (int i = 0; i < FRAME; i++)
        mean += f[i];
    mean /= FRAME;
    /* the mean so far, then over ≈ 1 s: an offset, not low sounds */
    s->dc += (mean - s->dc) / (double)(s->dc_frames < 100 ? ++s->dc_frames : 100);
    double e = 0, dc = ld_audio_dc_used(s->dc);
    for (int i = 0; i < FRAME; i++)
        e += (f[i] - dc) * (f[i] - dc);
    double rms = sqrt(e / FRAME);
    double thr = fmax(MIN_THRESHOLD, s->noise * NOISE_FACTOR);
    if (rms > thr) {
        if (!s->have_voice || end - FRAME > s->last_voice + RATE / 5)
            s->run_start = end - FRAME; /* a new run after ≥ 200 ms without voice */
        s->voiced += FRAME;
        s->last_voice = end;
        s->have_voice = true;
    }
    /* noise floor: follows quiet frames quickly, loud ones very slowly */
    s->noise += (rms < s->noise ? 0.2 : 0.002) * (rms - s->noise);
}

static void energy(track *s, const int16_t *pcm, size_t n, size_t start)
{
    for (size_t i = 0; i < n; i++) {
        s->frame[s->frame_fill++] = pcm[i];
        if (s->frame_fill == FRAME) {
            energy_frame(s, s->frame, start + i + 1);
            s->frame_fill = 0;
        }
    }
}

/* Audio the engine will never need: the oldest n held samples pass undecoded
 * (only between engine utterances). */
static bool skip(track *s, size_t n, ld_error *err)
{
    if (!n)
        return true;
    if (s->ops->stream_skip(s->dec, n, err) != LD_OK)
        return false;
    size_t held = s->pos - s->fed;
    memmove(s->held, s->held + n, (held - n) * sizeof *s->held);
    s->fed += n;
    s->engine_utt_start = s->fed; /* the next engine utterance starts no earlier */
    return true;
}

/* The engine hears n samples, through the denoiser on the noisy route. */
static bool feed_engine(track *s, const int16_t *pcm, size_t n, ld_error *err)
{
    const int16_t *out = pcm;
    size_t m = n;
    if (s->dn && ld_audio_denoiser_push(s->dn, pcm, n, &out, &m, err) != LD_OK)
        return false;
    return !m || s->ops->stream_feed(s->dec, out, m, err) == LD_OK;
}

/* Keeps what the engine's utterance is fed while the route is pending. */
static bool keep_replay(track *s, const int16_t *pcm, size_t n, ld_error *err)
{
    if (!s->engine_open)
        s->replay_n = 0; /* a new engine utterance */
    if (s->replay_n + n > s->replay_cap) {
        size_t cap = s->replay_cap ? s->replay_cap : 8 * SLICE;
        while (cap < s->replay_n + n)
            cap *= 2;
        int16_t *p = realloc(s->replay, cap * sizeof *p);
        if (!p) {
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            return false;
        }
        s->replay = p, s->replay_cap = cap;
    }
    memcpy(s->replay + s->replay_n, pcm, n * sizeof *pcm);
    s->replay_n += n;
    return true;
}

/* Feeds held audio up to `to` (at most 100 ms per call, so interim results
 * and the engine's VAD advance as with live input). */
static bool feed_held(ws_conn *c, track *s, size_t to, ld_error *err)
{
    if (s->vocab_pending && !s->engine_open && s->fed < to) { /* between utterances: a new search is safe */
        s->vocab_pending = false;
        ld_stream_decoder *sd = s->own ? s->own : c->decoder;
        if (c->ws->cfg.pool && sd && ld_pool_stream_use_keywords(c->ws->cfg.pool, sd, s->params.keywords, err))
            return false;
    }
    while (s->fed < to) {
        size_t k = SLICE - s->fed % SLICE; /* slices at fixed points of audio time */
        if (k > to - s->fed)
            k = to - s->fed;
        if (s->route_pending && !keep_replay(s, s->held, k, err))
            return false;
        if (!feed_engine(s, s->held, k, err))
            return false;
        s->engine_open = true;
        size_t left = s->pos - s->fed - k;
        memmove(s->held, s->held + k, left * sizeof *s->held);
        s->fed += k;
    }
    return true;
}

/* The engine gets what the denoiser still holds of its utterance. */
static bool flush_denoiser(track *s, ld_error *err)
{
    const int16_t *out;
    size_t m;
    if (!s->dn || !s->engine_open)
        return true;
    return ld_audio_denoiser_flush(s->dn, &out, &m, err) == LD_OK &&
           (!m || s->ops->stream_feed(s->dec, out, m, err) == LD_OK);
}

/* Picks a pending route once the speech's level is known (false: error).
 * The noisy route decodes the engine's utterance so far again, through the
 * denoiser, in the slices it was fed in. An engine that cannot skip or restart
 * is fed from the start, so it picks at once. */
static bool pick_route(ws_conn *c, track *s, ld_error *err)
{
    bool can_wait = s->ops->stream_skip && s->ops->stream_restart;
    if (!s->ending && can_wait && s->voiced < ROUTE_VOICE && s->pos - s->run_start < ROUTE_WAIT)
        return true;
    s->route_pending = false;
    double noise_dbfs, snr = ld_audio_snr_meter_db(&s->snr, &noise_dbfs);
    ld_stream_decoder *sd = s->params.channel ? s->own : c->decoder;
    ld_pool *pool = c->ws->cfg.pool;
    const char *next = ld_pool_stream_pick_model(pool, sd, s->asked, false, snr, err);
    if (!next)
        return false;
    char chain[128];
    const char *f = strcmp(next, "noisy") ? NULL : ld_audio_denoise_chain(noise_dbfs, chain, sizeof chain);
    ld_log(LD_LOG_DEBUG, "stream %s channel %d: SNR %.1f dB, noise %.1f dBFS: model %s, denoiser %s", c->session_id,
           s->params.channel, snr, noise_dbfs, next, f ? f : "none");
    /* another route: the utterance so far is decoded again (ended first: packs switch between utterances) */
    size_t again = s->engine_open && (f || strcmp(next, sd->model)) ? s->replay_n : 0;
    if (again && s->ops->stream_restart(s->dec, err) != LD_OK)
        return false;
    if (ld_pool_stream_use_model(pool, sd, s->asked, false, snr, err) != LD_OK)
        return false;
    snprintf(s->params.model, sizeof s->params.model, "%s", sd->model);
    if (!s->params.channel)
        snprintf(c->params.model, sizeof c->params.model, "%s", sd->model);
    if (f && !(s->dn = ld_audio_denoiser_new(f, err)))
        return false;
    for (size_t at = s->fed - again, i = 0; i < again;) { /* the same slices as the first time */
        size_t k = SLICE - at % SLICE < again - i ? SLICE - at % SLICE : again - i;
        if (!feed_engine(s, s->replay + i, k, err))
            return false;
        at += k, i += k;
    }
    free(s->replay);
    s->replay = NULL;
    s->replay_n = s->replay_cap = 0;
    return true;
}

/* OpenAI's id of item number k of the stream (one channel: ld_ws_oa_params_parse). */
static const char *item_id(const ws_conn *c, unsigned k, char out[64])
{
    snprintf(out, 64, "item_%.20s_%u", c->session_id + (strncmp(c->session_id, "sess_", 5) ? 0 : 5), k);
    return out;
}

/* OpenAI mode's end of an utterance: speech_stopped (when speech_started was
 * sent), then, when there are words, the client committed or speech_started
 * announced the item, the item: committed, the transcript as one delta (none
 * when empty), completed. Without turn detection an item is what the client
 * commits: utterances the engine ends inside it (the 20 s cap) are kept in
 * s->take until the commit. False: out of memory. */
static bool openai_final(ws_conn *c, track *s, bool had_speech, bool committed, const ld_word *w, size_t n,
                         size_t utt_start)
{
    char item[64], prev[64];
    item_id(c, s->items, item);
    bool announced = had_speech && c->params.vad_events;
    if (announced)
        ws_conn_post(c, ld_ws_oa_speech(false, item, speech_end(s)));
    if (s->clearing) { /* what the take held is dropped too */
        free(s->take);
        s->take = NULL;
    }
    if (!n && !committed && !announced && !s->take)
        return true; /* a quiet stretch ended: no item */
    ld_ws_final fin = {NULL, NULL, c->params.full_transcript ? &s->full : NULL, &s->redactor};
    char *text = ld_ws_final_text(&s->params, w, n, &fin);
    if (!text)
        return false;
    if (!c->params.finalize_on_words && !committed && !s->clearing) {
        /* no turn detection: the engine ended an utterance inside a take (the
         * 20 s cap, a long silence); its text waits for the client's commit */
        if (*text && !s->take)
            s->take_start = utt_start;
        bool ok = ld_ws_text_append(&s->take, text);
        free(text);
        return ok;
    }
    if (s->take) { /* the commit: the take's earlier text first */
        utt_start = s->take_start;
        bool ok = ld_ws_text_append(&s->take, text);
        free(text);
        text = s->take;
        s->take = NULL;
        if (!ok) {
            free(text);
            return false;
        }
    }
    ws_conn_post(c, ld_ws_oa_committed(item, s->items ? item_id(c, s->items - 1, prev) : NULL));
    if (*text)
        ws_conn_post(c, ld_ws_oa_delta(item, text));
    ws_conn_post(c, ld_ws_oa_completed(item, text, secs(s->pos - utt_start)));
    free(text);
    s->items++;
    return true;
}

/* Flux's StartOfTurn for the turn in progress, its speech from `start`. */
static void flux_start(ws_conn *c, track *s, double start)
{
    ws_conn_post(c, ld_ws_flux_turn(c->request_id, ws_conn_seq(c), &s->params, LD_FLUX_START, s->items, start,
                                    secs(s->pos), "", NULL, 0, NULL, NULL));
}

/* Flux mode's end of an utterance: the turn StartOfTurn opened (or one with
 * words) ends with EndOfTurn; its trigger says why. False: out of memory. */
static bool flux_final(ws_conn *c, track *s, bool had_speech, bool by_client, const ld_word *w, size_t n,
                       size_t utt_start)
{
    if (!had_speech && !n)
        return true; /* a quiet stretch ended: no turn */
    const char *trigger = ld_ws_flux_trigger(&c->params, by_client, s->natural_end);
    double start = secs(had_speech ? s->speech_start : utt_start);
    if (!had_speech) /* words the energy VAD never called speech (e.g. a ForceEndTurn): open the turn first */
        flux_start(c, s, start);
    if (n && w[0].start < start) /* the window holds its words (the engine may place the first one earlier) */
        start = w[0].start;
    ld_ws_final fin = {NULL, NULL, NULL, &s->redactor};
    char *m = ld_ws_flux_turn(c->request_id, ws_conn_seq(c), &s->params, LD_FLUX_END, s->items, start, secs(s->pos),
                              NULL, w, n, &fin, trigger);
    if (!m)
        return false;
    ws_conn_post(c, m);
    s->items++;
    return true;
}

/* Ends the engine's utterance; held audio beyond the last `keep` samples is
 * dropped with it. */
static bool emit_final_keep(ws_conn *c, track *s, bool from_finalize, bool is_last, size_t keep, ld_error *err)
{
    ld_word *w = NULL;
    size_t n = 0;
    if (s->ops && (!flush_denoiser(s, err) || s->ops->stream_end(s->dec, &w, &n, err) != LD_OK))
        return false;
    s->engine_open = false;
    size_t utt_start = s->engine_utt_start;
    s->engine_utt_start = s->pos;
    size_t held = s->pos - s->fed;
    if (s->ops && s->ops->stream_skip && held > keep && !skip(s, held - keep, err)) {
        ld_words_free(w, n);
        return false;
    }
    bool had_speech = s->speaking;
    bool dg = c->params.deepgram;
    if (c->params.openai || c->params.flux) { /* items and turns: their own messages */
        if (s->clearing) {
            ld_words_free(w, n);
            w = NULL, n = 0;
        }
        bool ok = c->params.openai ? openai_final(c, s, had_speech, from_finalize, w, n, utt_start)
                                   : flux_final(c, s, had_speech, from_finalize || is_last, w, n, utt_start);
        ld_words_free(w, n);
        s->speaking = false;
        free(s->last_partial);
        s->last_partial = NULL;
        if (!ok)
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        return ok;
    }
    if (had_speech && c->params.vad_events && !dg) /* the event first: the final closes what it reports */
        ws_conn_post(c, ld_ws_msg_event_in("speech_ended", c->session_id, speech_end(s), &s->params));
    if (n || from_finalize || is_last) {
        double start = n ? w[0].start : secs(had_speech ? s->speech_start : s->pos);
        double end = n ? w[n - 1].end : start;
        bool speech_final = c->params.speech_final && s->natural_end && !from_finalize && !is_last;
        int *who = s->spk && n ? malloc(n * sizeof *who) : NULL;
        float *sure = who ? malloc(n * sizeof *sure) : NULL;
        if (s->spk && n && (!sure || !ld_diarize_live_label(s->spk, w, n, who, sure))) {
            free(who);
            free(sure);
            ld_words_free(w, n);
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory in speaker diarization");
            return false;
        }
        ld_ws_final fin = {who, sure, c->params.full_transcript ? &s->full : NULL, &s->redactor};
        ws_conn_post(c, dg ? ld_ws_dg_results(c->request_id, &s->params, NULL, w, n, &fin, true, speech_final,
                                              from_finalize, start, end - start)
                           : ld_ws_msg_transcription(c->session_id, &s->params, NULL, w, n, &fin, true, is_last,
                                                     from_finalize, start, end - start));
        free(who);
        free(sure);
    }
    if (n && dg) {
        s->utt_end_pending = c->params.utterance_end_ms > 0;
        s->last_word_end = w[n - 1].end;
    }
    ld_words_free(w, n);
    s->speaking = false;
    free(s->last_partial);
    s->last_partial = NULL;
    return true;
}

static bool emit_final(ws_conn *c, track *s, bool from_finalize, bool is_last, ld_error *err)
{
    return emit_final_keep(c, s, from_finalize, is_last, 0, err);
}

static void maybe_interim(ws_conn *c, track *s)
{
    /* holding: nothing new was decoded; OpenAI's deltas only append, so its text comes with the final */
    if (!c->params.interim_results || c->params.openai || !s->ops || s->fed < s->pos)
        return;
    char *p = s->ops->stream_partial(s->dec);
    if (!p)
        return;
    if (!*p || (s->last_partial && !strcmp(p, s->last_partial))) {
        free(p);
        return;
    }
    double start = secs(s->speech_start), duration = secs(s->pos - s->speech_start);
    /* an interim must not show what its final will redact */
    char *shown = s->redactor.kinds ? ld_redact_text(&s->redactor, p) : p;
    if (shown && s->params.profanity_filter) { /* masked on a copy: p is kept to compare the next one */
        if (shown == p)
            shown = strdup(p);
        ld_profanity_mask_text(shown);
    }
    if (shown && c->params.flux)
        ws_conn_post(c, ld_ws_flux_turn(c->request_id, ws_conn_seq(c), &s->params, LD_FLUX_UPDATE, s->items, start,
                                        secs(s->pos), shown, NULL, 0, NULL, NULL));
    else if (shown)
        ws_conn_post(c, c->params.deepgram ? ld_ws_dg_results(c->request_id, &s->params, shown, NULL, 0, NULL,
                                                              false, false, false, start, duration)
                                           : ld_ws_msg_transcription(c->session_id, &s->params, shown, NULL, 0,
                                                                     NULL, false, false, false, start, duration));
    if (shown != p)
        free(shown);
    free(s->last_partial);
    s->last_partial = p;
}

/* Deepgram's UtteranceEnd, once utterance_end_ms have passed since the last
 * final's last word without a new utterance. */
static void maybe_utterance_end(ws_conn *c, track *s)
{
    if (s->utt_end_pending && secs(s->pos) - s->last_word_end >= c->params.utterance_end_ms / 1000.0) {
        ws_conn_post(c, ld_ws_dg_utterance_end_in(s->last_word_end, &s->params));
        s->utt_end_pending = false;
    }
}

/* Deepgram's UtteranceEnd is a gap in *words*: sound without words (a cough, a
 * click, the cut-off tail of a word) must not cancel it, or it is lost until the
 * caller says something. Once the gap is long enough during such an utterance,
 * the engine's hypothesis so far decides: no words yet -> UtteranceEnd now;
 * words -> speech came back in time, none is due. */
static void pending_utterance_end(ws_conn *c, track *s)
{
    if (!s->utt_end_pending || !s->ops || s->fed != s->pos ||
        secs(s->pos) - s->last_word_end < c->params.utterance_end_ms / 1000.0)
        return;
    char *p = s->ops->stream_partial(s->dec);
    if (p && !*p)
        maybe_utterance_end(c, s);
    else if (p)
        s->utt_end_pending = false;
    free(p);
}

/* Whether the utterance in progress has ended in silence by now: eou of
 * energy silence, or of the engine hearing none (steady noise). */
static bool quiet_now(ws_conn *c, const track *s)
{
    size_t eou = (size_t)c->params.eou_timeout_ms * RATE / 1000;
    size_t silence = s->have_voice ? s->pos - s->last_voice : s->pos;
    return silence >= eou || s->pos - s->last_engine_speech >= eou;
}

/* Ends the utterance in progress; `quiet` says it ended in silence (a forced
 * end is no endpoint). */
static bool end_utterance(ws_conn *c, track *s, bool quiet, ld_error *err)
{
    s->natural_end = quiet;
    bool ok = emit_final(c, s, false, false, err);
    s->natural_end = false;
    return ok;
}

static bool advance(ws_conn *c, track *s, ld_error *err);

/* max_words: whether the utterance in progress has that many words (the
 * engine's hypothesis, as an interim would show it) and is at a gap between
 * words — cut at once, its last word would be cut in two — or has twice that
 * many (fluent speech with no gap). */
#define WORD_GAP (RATE / 10)
static bool word_cap_reached(ws_conn *c, track *s)
{
    if (!c->params.max_words || !s->ops || s->fed < s->pos)
        return false;
    char *p = s->ops->stream_partial(s->dec);
    int n = 0;
    for (char *q = p; q && *q;) {
        q += strspn(q, " ");
        n += *q != 0;
        q += strcspn(q, " ");
    }
    free(p);
    bool gap = !s->have_voice || s->pos - s->last_voice >= WORD_GAP;
    return n >= 2 * c->params.max_words || (n >= c->params.max_words && gap);
}

/* At a 20 ms point inside a slice: only an end of utterance (and Deepgram's
 * UtteranceEnd) is decided here, so a client sending 20 ms frames gets its
 * final when the silence is long enough, not at the next 100 ms point. The
 * engine's VAD, onsets and interim results stay on the 100 ms points. Held
 * audio goes to the engine first by the usual rules (advance), so a final
 * here has the words it would have had at the slice's end. */
static bool decide_between(ws_conn *c, track *s, ld_error *err)
{
    if (!s->speaking) {
        maybe_utterance_end(c, s);
        return true;
    }
    if (!c->params.finalize_on_words || !quiet_now(c, s)) /* false: the client's finalize ends utterances */
        return true;
    return advance(c, s, err) && end_utterance(c, s, true, err);
}

/* After each slice: start/end utterances, interim results. */
static bool decide(ws_conn *c, track *s, ld_error *err)
{
    /* the engine's VAD is current only when it has been fed up to now */
    bool eng = s->ops && s->fed == s->pos ? s->ops->stream_in_speech(s->dec) : false;
    if (eng)
        s->last_engine_speech = s->pos;
    if (!s->speaking) {
        maybe_utterance_end(c, s);
        if (eng && s->have_voice && s->pos - s->last_voice <= VOICE_RECENT) {
            s->speaking = true; /* a pending UtteranceEnd waits for words, not sound (below) */
            /* a run of voice that began before a finalize belongs to the new utterance from there */
            s->speech_start = s->run_start > s->engine_utt_start ? s->run_start : s->engine_utt_start;
            if (c->params.flux) {
                flux_start(c, s, secs(s->speech_start));
            } else if (c->params.vad_events && c->params.openai) {
                char item[64];
                ws_conn_post(c, ld_ws_oa_speech(true, item_id(c, s->items, item), secs(s->speech_start)));
            } else if (c->params.vad_events) {
                ws_conn_post(c, c->params.deepgram ? ld_ws_dg_speech_started_in(secs(s->speech_start), &s->params)
                                                   : ld_ws_msg_event_in("speech_started", c->session_id,
                                                                        secs(s->speech_start), &s->params));
            }
        } else if (s->pos - s->engine_utt_start > IDLE_UTT_MAX) {
            return emit_final(c, s, false, false, err); /* keep a silent engine utterance short */
        }
        return true;
    }
    pending_utterance_end(c, s);
    /* Energy silence alone decides, also below the engine's own 0.5 s hang-over
     * (eou_timeout_ms from 100: short pauses then split sentences). */
    bool quiet = c->params.finalize_on_words && quiet_now(c, s);
    if (quiet || secs(s->pos - s->speech_start) >= WS_MAX_UTTERANCE_S || word_cap_reached(c, s))
        return end_utterance(c, s, quiet, err);
    maybe_interim(c, s);
    return true;
}

static ld_err count_usage(ws_conn *c, track *s, bool force, ld_error *err)
{
    if (s->usage_pending <= 0 || (!force && s->usage_pending < WS_USAGE_STEP_S))
        return LD_OK;
    ld_auth *a = c->ws->cfg.auth;
    double d = s->usage_pending;
    s->usage_pending = 0;
    c->charged += d;
    ld_metrics_audio("stream", c->claims.key_id, d);
    if (!a)
        return LD_OK;
    ld_error e2;
    if (ld_auth_add_usage(a, &c->claims, d, &e2) != LD_OK)
        ld_log(LD_LOG_WARNING, "stream %s: usage not recorded: %s", c->session_id, e2.msg);
    if (!force && ld_auth_check_quota(a, &c->claims, err) == LD_ERR_QUOTA_EXCEEDED)
        return LD_ERR_QUOTA_EXCEEDED;
    return LD_OK;
}

/* Decides what the engine gets of the audio received up to s->pos. */
static bool advance(ws_conn *c, track *s, ld_error *err)
{
    if (!s->ops) {
        s->fed = s->pos;
        return true;
    }
    size_t held = s->pos - s->fed;
    bool voice = s->have_voice && s->pos - s->last_voice <= HOLD;
    if (!s->ops->stream_skip || voice)
        return (!s->route_pending || pick_route(c, s, err)) && feed_held(c, s, s->pos, err);
    if (s->speaking || held <= PREROLL)
        return true;    /* trailing silence (fed later if voice returns), or a pre-roll */
    if (s->engine_open) /* a speechless engine utterance: end it (a final only if it has words) */
        return emit_final_keep(c, s, false, false, PREROLL, err);
    return skip(s, held - PREROLL, err);
}

static bool hold(track *s, const int16_t *pcm, size_t k, ld_error *err)
{
    size_t held = s->pos - s->fed;
    if (held + k > s->held_cap) {
        size_t cap = s->held_cap ? s->held_cap : 4 * SLICE;
        while (cap < held + k)
            cap *= 2;
        int16_t *p = realloc(s->held, cap * sizeof *p);
        if (!p) {
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            return false;
        }
        s->held = p;
        s->held_cap = cap;
    }
    memcpy(s->held + held, pcm, k * sizeof *pcm);
    return true;
}

/* Decisions (feeding, skipping, ending utterances) are taken at fixed points
 * of audio time, whatever the client's frame sizes: taken after each frame,
 * they fell at other samples with other framings and the engine got other
 * chunks, so the same audio gave other words and times (docs/streaming.md,
 * "Same audio, same results"). Every 100 ms point feeds and decides; the 20 ms
 * points between them only check for an end of utterance. A partial slice
 * waits for the rest of it (or for finalize / the end of the stream). */
static bool feed(ws_conn *c, track *s, const int16_t *pcm, size_t n, ld_error *err)
{
    s->usage_pending += secs(n);
    while (n > 0) {
        size_t k = STEP - s->pos % STEP;
        if (k > n)
            k = n;
        if (!hold(s, pcm, k, err))
            return false;
        energy(s, pcm, k, s->pos);
        if (s->route_pending)
            ld_audio_snr_meter_push(&s->snr, pcm, k);
        if (s->spk && !ld_diarize_live_audio(s->spk, pcm, k)) {
            ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            return false;
        }
        s->pos += k;
        pcm += k;
        n -= k;
        if (s->pos % STEP)
            continue;
        if (ws_conn_gone(c)) { /* nobody will read the rest, and the next stream waits for this decoder */
            s->usage_pending -= secs(n);
            return true;
        }
        if (s->pos % SLICE ? !decide_between(c, s, err) : !advance(c, s, err) || !decide(c, s, err))
            return false;
    }
    return true;
}

/* The audio of a partial slice, when the client finalizes or ends the stream. */
static bool feed_partial(ws_conn *c, track *s, ld_error *err)
{
    bool waiting = s->route_pending && s->have_voice; /* audio held for the route's pick */
    s->ending = true;
    bool ok = (s->pos % SLICE == 0 && !waiting) || (advance(c, s, err) && decide(c, s, err));
    s->ending = false;
    return ok;
}

/* Deepgram's CloseStream answer after the last Results: each channel's due
 * UtteranceEnd, then Metadata. */
static void deepgram_close(ws_conn *c, ws_session *ss)
{
    for (int i = 0; i < ss->n; i++)
        if (ss->tr[i]->utt_end_pending)
            ws_conn_post(c, ld_ws_dg_utterance_end_in(ss->tr[i]->last_word_end, &ss->tr[i]->params));
    unsigned char h[32];
    char hex[65] = "";
    if (ss->sha) {
        gnutls_hash_output(ss->sha, h);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    }
    long long created = (long long)ld_time_now_ms() - (long long)((ld_time_mono() - c->created) * 1000);
    ws_conn_post(c, ld_ws_dg_metadata_channels(c->request_id, hex, created, secs(ss->tr[0]->pos),
                                               c->params.language, ss->tr[0]->params.model, ss->n));
}

/* One channel's audio bytes (in the stream's encoding). */
static bool track_audio(ws_conn *c, track *s, const uint8_t *data, size_t len)
{
    ld_error err = {0};
    const int16_t *pcm;
    size_t n;
    if (ld_audio_stream_push(s->conv, data, len, &pcm, &n, &err) != LD_OK) {
        s->ended = true;
        ws_conn_fail(c, err.code, err.msg);
        return false;
    }
    if (!feed(c, s, pcm, n, &err)) {
        s->ended = true;
        ws_conn_fail(c, err.code ? err.code : LD_ERR_INTERNAL, err.msg[0] ? err.msg : "speech engine failed");
        return false;
    }
    if (count_usage(c, s, false, &err) == LD_ERR_QUOTA_EXCEEDED) {
        s->ended = true;
        ws_conn_fail(c, LD_ERR_QUOTA_EXCEEDED, "Daily audio quota exceeded");
        return false;
    }
    return true;
}

/* Interleaved input: whole frames go to the channels, a partial one waits
 * for the next chunk. */
static bool split_audio(ws_conn *c, ws_session *ss, const uint8_t *data, size_t len)
{
    size_t frame = ss->bps * (size_t)ss->n, have = ss->carry_len + len, frames = have / frame;
    if (frames * ss->bps > ss->one_cap) {
        uint8_t *p = realloc(ss->one, frames * ss->bps);
        if (!p) {
            ws_conn_fail(c, LD_ERR_INTERNAL, "out of memory");
            return false;
        }
        ss->one = p;
        ss->one_cap = frames * ss->bps;
    }
    for (int ch = 0; ch < ss->n; ch++) {
        for (size_t f = 0; f < frames; f++)
            for (size_t b = 0; b < ss->bps; b++) {
                size_t at = f * frame + (size_t)ch * ss->bps + b; /* offset in carry ++ data */
                ss->one[f * ss->bps + b] = at < ss->carry_len ? ss->carry[at] : data[at - ss->carry_len];
            }
        if (frames && !track_audio(c, ss->tr[ch], ss->one, frames * ss->bps))
            return false;
    }
    size_t used = frames * frame, left = have - used;
    uint8_t tail[sizeof ss->carry];
    for (size_t i = 0; i < left; i++) {
        size_t at = used + i;
        tail[i] = at < ss->carry_len ? ss->carry[at] : data[at - ss->carry_len];
    }
    memcpy(ss->carry, tail, left);
    ss->carry_len = left;
    return true;
}

/* All audio received so far, decoded: what the converter holds, then a partial slice. */
static bool feed_rest(ws_conn *c, track *s, ld_error *err)
{
    const int16_t *pcm;
    size_t n;
    if (ld_audio_stream_flush(s->conv, &pcm, &n, err) != LD_OK)
        return true;
    return feed(c, s, pcm, n, err) && feed_partial(c, s, err);
}

/* End of stream for one channel: the rest of its audio, then the last final. */
static bool track_close(ws_conn *c, track *s, bool is_last, ld_error *err)
{
    bool ok = feed_rest(c, s, err) && emit_final(c, s, false, is_last, err);
    count_usage(c, s, true, err);
    s->ended = true;
    return ok;
}

/* The server stops: the rest of the audio and, if it holds words, a final
 * (neither from_finalize nor is_last: the client did not end the stream). */
static bool track_shutdown(ws_conn *c, track *s, ld_error *err)
{
    return feed_rest(c, s, err) && emit_final(c, s, false, false, err); /* natural_end is false here */
}

/* OpenAI's input_audio_buffer.clear: the audio sent so far is dropped. What
 * the engine decoded of it ends as an utterance whose words are thrown away
 * (an item speech_started announced still completes, with no transcript, so a
 * client never waits for it); audio held back is skipped; the energy VAD
 * forgets the voice it heard (its noise floor stays). */
static bool track_clear(ws_conn *c, track *s, ld_error *err)
{
    s->clearing = true;
    bool ok = emit_final(c, s, false, false, err);
    s->clearing = false;
    s->have_voice = false;                                 /* the dropped voice must not start the next item, */
    memset(s->frame, 0, s->frame_fill * sizeof *s->frame); /* nor its last samples' energy */
    return ok;
}

/* Flux's Configure: the new settings hold from the audio after it (key terms
 * from the next utterance: the decoder's search is rebuilt between two). */
static void flux_configure(ws_conn *c, ws_session *ss, const char *data, size_t len)
{
    ld_ws_params p = c->params;
    ld_error e = {0};
    if (ld_ws_flux_configure(data, len, &p, &e) != LD_OK) {
        ld_log(LD_LOG_INFO, "stream %s: Configure refused: %s", c->session_id, e.msg);
        ws_conn_post(c, ld_ws_flux_configure_failure(c->request_id, ws_conn_seq(c)));
        return;
    }
    /* field by field: the loop thread reads other members of c->params meanwhile */
    bool vocab = strcmp(p.keywords, c->params.keywords) != 0;
    ld_ws_params *all[1 + LD_MAX_CHANNELS] = {&c->params};
    for (int i = 0; i < ss->n; i++)
        all[1 + i] = &ss->tr[i]->params;
    for (int i = 0; i <= ss->n; i++) {
        all[i]->eot_threshold = p.eot_threshold;
        all[i]->eager_eot_threshold = p.eager_eot_threshold;
        all[i]->eot_timeout_ms = p.eot_timeout_ms;
        all[i]->eou_timeout_ms = p.eou_timeout_ms;
        all[i]->numerals = p.numerals;
        memcpy(all[i]->keywords, p.keywords, sizeof p.keywords);
    }
    for (int i = 0; vocab && i < ss->n; i++)
        ss->tr[i]->vocab_pending = true;
    ws_conn_post(c, ld_ws_flux_configure_success(c->request_id, ws_conn_seq(c), &c->params));
}

bool ws_session_run(ws_conn *c, ws_task *t)
{
    ws_session *ss = c->sess;
    if (ss->ended)
        return false;
    ld_error err = {0};
    bool ok = true;
    switch (t->kind) {
    case WS_TASK_AUDIO:
        if (ss->sha)
            gnutls_hash(ss->sha, t->data, t->len);
        if (ss->n == 1 ? !track_audio(c, ss->tr[0], t->data, t->len) : !split_audio(c, ss, t->data, t->len)) {
            ss->ended = true;
            return false;
        }
        break;
    case WS_TASK_FINALIZE:
        for (int i = 0; ok && i < ss->n; i++)
            ok = feed_partial(c, ss->tr[i], &err) && emit_final(c, ss->tr[i], true, false, &err);
        break;
    case WS_TASK_CLEAR:
        for (int i = 0; ok && i < ss->n; i++)
            ok = track_clear(c, ss->tr[i], &err);
        if (ok)
            ws_conn_post(c, ld_ws_oa_cleared());
        break;
    case WS_TASK_CONFIGURE: flux_configure(c, ss, (const char *)t->data, t->len); break;
    case WS_TASK_SHUTDOWN: /* not the client's finalize: a final only where there are words */
    case WS_TASK_IDLE:     /* the idle timeout keeps what was recognised too */
        for (int i = 0; ok && i < ss->n; i++)
            ok = track_shutdown(c, ss->tr[i], &err);
        ss->ended = true; /* shutdown: the loop sends the error and the 1001 */
        if (ok && t->kind == WS_TASK_IDLE)
            ws_conn_fail(c, LD_ERR_REQUEST_TIMEOUT, (const char *)t->data);
        break;
    case WS_TASK_CLOSE_STREAM:
        for (int i = 0; ok && i < ss->n; i++) /* is_last: on the last channel's final */
            ok = track_close(c, ss->tr[i], i == ss->n - 1, &err);
        ss->ended = true;
        if (ok && c->params.deepgram)
            deepgram_close(c, ss);
        if (ok)
            ws_conn_post_close(c, LD_WS_CLOSE_NORMAL, "stream closed");
        break;
    }
    if (!ok) {
        ss->ended = true;
        ws_conn_fail(c, err.code ? err.code : LD_ERR_INTERNAL, err.msg[0] ? err.msg : "speech engine failed");
        return false;
    }
    return true;
}
