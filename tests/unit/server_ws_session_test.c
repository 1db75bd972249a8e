/* Stream session logic with a scripted engine: utterance start/end in audio
 * time (eou_timeout_ms), interim results only on change, VAD events and their
 * order, finalize, close_stream, the forced final after 20 s of speech, and
 * garbage audio. No server, no model: the fake engine "hears" speech where the
 * signal is loud, like PocketSphinx's VAD with its 0.5 s hang-over. */
#include "server/ws_internal.h"
#include "test.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>

#include "util/log.h"

/* ---- fake engine ---- */
typedef struct {
    size_t fed, last_loud, speech_from;
    size_t decoded, skipped; /* samples the session fed / let pass undecoded */
    bool loud_seen, in_utt;
} fake;

static ld_err f_start(void *d, ld_error *e)
{
    (void)e;
    memset(d, 0, sizeof(fake));
    return LD_OK;
}

static ld_err f_feed(void *d, const int16_t *pcm, size_t n, ld_error *e)
{
    (void)e;
    fake *f = d;
    double en = 0;
    for (size_t i = 0; i < n; i++)
        en += (double)pcm[i] * pcm[i];
    if (n && en / n > 1000.0 * 1000.0) {
        if (!f->loud_seen || !f->in_utt)
            f->speech_from = f->fed;
        f->loud_seen = f->in_utt = true;
        f->last_loud = f->fed + n;
    }
    f->fed += n;
    f->decoded += n;
    return LD_OK;
}

static ld_err f_skip(void *d, size_t n, ld_error *e)
{
    fake *f = d;
    if (f->in_utt && f->loud_seen)
        return ld_error_set(e, LD_ERR_INTERNAL, "skip inside an utterance");
    f->fed += n;
    f->skipped += n;
    return LD_OK;
}

static bool f_in_speech(void *d)
{
    fake *f = d;
    return f->loud_seen && f->fed - f->last_loud < 8000 &&
           f->fed - f->speech_from >= 3200; /* 0.2 s onset, 0.5 s hang */
}

/* what the fake "hears": its interim after one second, and its final word */
static const char *heard_text = "hello world", *heard_word = "hello";

static char *f_partial(void *d)
{
    fake *f = d;
    if (!f->in_utt)
        return strdup("");
    size_t heard = (f->last_loud - f->speech_from) / 16000;
    return strdup(heard >= 1 ? heard_text : "hello");
}

static ld_err f_end(void *d, ld_word **w, size_t *n, ld_error *e)
{
    (void)e;
    fake *f = d;
    *w = NULL;
    *n = 0;
    if (f->in_utt) {
        *w = calloc(1, sizeof **w);
        (*w)[0].word = strdup(heard_word);
        (*w)[0].start = (double)f->speech_from / 16000;
        (*w)[0].end = (double)f->last_loud / 16000;
        (*w)[0].confidence = 0.9;
        *n = 1;
    }
    f->in_utt = false;
    return LD_OK;
}

static const ld_engine_ops fake_ops = {.name = "fake",
                                       .stream_start = f_start,
                                       .stream_feed = f_feed,
                                       .stream_partial = f_partial,
                                       .stream_in_speech = f_in_speech,
                                       .stream_end = f_end,
                                       .stream_skip = f_skip};

/* ---- harness ---- */
static ld_ws *ws;
static fake fdec;
static ld_stream_decoder sd = {.ops = &fake_ops, .dec = &fdec, .language = "en"};

static const char *no_params(void *ud, const char *name)
{
    (void)ud;
    (void)name;
    return NULL;
}

static bool profanity_filter; /* for the next conn() */

static ws_conn *conn(int eou_ms, bool vad, bool interim)
{
    ws_conn *c = ws_conn_new(ws);
    ld_error err;
    ld_ws_params_parse(no_params, NULL, &c->params, &err);
    c->params.eou_timeout_ms = eou_ms;
    c->params.vad_events = vad;
    c->params.interim_results = interim;
    c->params.profanity_filter = profanity_filter;
    c->decoder = &sd;
    c->sess = ws_session_new(c, NULL, &err);
    CHECK(c->sess != NULL);
    return c;
}

static void run_task(ws_conn *c, ws_task_kind kind, const uint8_t *data, size_t len)
{
    ws_task *t = malloc(sizeof *t + len);
    t->next = NULL;
    t->kind = kind;
    t->len = len;
    if (len)
        memcpy(t->data, data, len);
    ws_session_run(c, t);
    free(t);
}

/* seconds of "speech" (a 440 Hz tone with 4 syllable-like dips per second, so
 * the adaptive noise floor does not take it for steady noise) or silence, in
 * 100 ms frames */
static void audio(ws_conn *c, double seconds, bool loud)
{
    static size_t phase;
    uint8_t buf[3200];
    for (int f = 0; f < (int)(seconds * 10 + 0.5); f++) {
        for (int i = 0; i < 1600; i++) {
            double t = (double)(phase++) / 16000;
            int16_t v = loud ? (int16_t)(9000 * fabs(sin(2 * M_PI * 2 * t)) * sin(2 * M_PI * 440 * t)) : 0;
            buf[2 * i] = (uint8_t)(v & 0xff);
            buf[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
        }
        run_task(c, WS_TASK_AUDIO, buf, sizeof buf);
    }
}

/* Takes the posted messages (JSON array; close code into *close). */
static json_t *take(ws_conn *c, int *close)
{
    json_t *arr = json_array();
    *close = 0;
    pthread_mutex_lock(&c->mu);
    ws_out *o = c->out_head;
    c->out_head = c->out_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (o) {
        ws_out *n = o->next;
        if (o->close_code)
            *close = o->close_code;
        else
            json_array_append_new(arr, json_loads(o->data, 0, NULL));
        free(o);
        o = n;
    }
    return arr;
}

static const char *type_of(json_t *m) { return json_string_value(json_object_get(m, "type")); }
static bool is_final(json_t *m) { return json_is_true(json_object_get(m, "is_final")); }
static double num(json_t *m, const char *k) { return json_number_value(json_object_get(m, k)); }

static void test_utterance_end_in_audio_time(void)
{
    ws_conn *c = conn(800, true, true);
    int close;
    audio(c, 1.0, false);
    audio(c, 1.5, true);
    audio(c, 0.7, false); /* 700 ms of silence: not yet the end */
    json_t *m = take(c, &close);
    size_t i;
    json_t *x;
    int interims = 0, started = 0, finals = 0;
    json_array_foreach(m, i, x)
    {
        if (!strcmp(type_of(x), "speech_started")) {
            started++;
            CHECK_NEAR(num(x, "timestamp"), 1.0, 0.011);
        } else if (!strcmp(type_of(x), "transcription")) {
            if (is_final(x))
                finals++;
            else
                interims++;
        }
    }
    CHECK(started == 1 && finals == 0);
    CHECK(interims == 2); /* "hello", then "hello world": unchanged text is not repeated */
    json_decref(m);

    audio(c, 0.1, false); /* 800 ms: the end of the utterance */
    m = take(c, &close);
    CHECK(json_array_size(m) == 2 && close == 0);
    CHECK_STR(type_of(json_array_get(m, 0)), "speech_ended");
    CHECK_NEAR(num(json_array_get(m, 0), "timestamp"), 2.5, 0.05); /* the envelope dips to 0 at 2.5 */
    json_t *fin = json_array_get(m, 1);
    CHECK(is_final(fin) && !json_is_true(json_object_get(fin, "is_last")));
    CHECK_STR(json_string_value(json_object_get(fin, "transcript")), "Hello.");
    CHECK(json_object_get(fin, "from_finalize") == NULL);
    CHECK_NEAR(num(fin, "start"), 1.0, 0.01);
    json_decref(m);

    run_task(c, WS_TASK_CLOSE_STREAM, NULL, 0);
    m = take(c, &close);
    CHECK(close == 1000 && json_array_size(m) == 1);
    CHECK(json_is_true(json_object_get(json_array_get(m, 0), "is_last")));
    CHECK_STR(json_string_value(json_object_get(json_array_get(m, 0), "transcript")), "");
    json_decref(m);
    ws_conn_unref(c);
}

static void test_short_eou_and_no_events(void)
{
    ws_conn *c = conn(300, false, false);
    int close;
    audio(c, 1.0, true);
    audio(c, 0.2, false);
    json_t *m = take(c, &close);
    CHECK(json_array_size(m) == 0); /* no events, no interims, not yet 300 ms */
    json_decref(m);
    /* 300 ms of silence end it, although the engine still hears speech (its
     * VAD hangs on 0.5 s): eou_timeout_ms below that works too */
    audio(c, 0.1, false);
    m = take(c, &close);
    CHECK(json_array_size(m) == 1 && is_final(json_array_get(m, 0)));
    json_decref(m);
    ws_conn_unref(c);
}

/* Long silences are not decoded: the engine gets speech, HOLD after it and a
 * pre-roll before the next onset; times still count the skipped audio. */
static void test_silence_is_not_decoded(void)
{
    ws_conn *c = conn(800, false, false);
    int close;
    fdec.decoded = fdec.skipped = 0;
    audio(c, 5.0, false);
    CHECK(fdec.decoded == 0 && fdec.skipped >= 4 * 16000); /* only a pre-roll is held */
    audio(c, 1.5, true);
    audio(c, 3.0, false);
    audio(c, 1.0, true);
    audio(c, 0.5, false); /* a pause shorter than eou: the held silence is fed after all */
    audio(c, 1.0, true);
    audio(c, 2.0, false);
    json_t *m = take(c, &close);
    CHECK(json_array_size(m) == 2);
    CHECK_NEAR(num(json_array_get(m, 0), "start"), 5.0, 0.02);
    CHECK_NEAR(num(json_array_get(m, 1), "start"), 9.5, 0.02);
    CHECK_NEAR(num(json_array_get(m, 1), "duration"), 2.5, 0.1); /* one utterance across the short pause */
    json_decref(m);
    /* decoded: the speech (3.5 s), the short pause, and per utterance at most a
     * 0.5 s pre-roll and the 0.6 s HOLD (+ 100 ms frames): not the 8.5 s of silence */
    CHECK(fdec.decoded <= (size_t)(16000 * (3.5 + 0.5 + 2 * (0.5 + 0.6 + 0.1))));
    CHECK(fdec.decoded + fdec.skipped <= (size_t)(16000 * 14.0)); /* nothing counted twice */
    ws_conn_unref(c);
}

static void test_finalize_and_forced_final(void)
{
    ws_conn *c = conn(800, false, false);
    int close;
    audio(c, 0.6, true);
    run_task(c, WS_TASK_FINALIZE, NULL, 0);
    json_t *m = take(c, &close);
    CHECK(json_array_size(m) == 1);
    json_t *f = json_array_get(m, 0);
    CHECK(is_final(f) && json_is_true(json_object_get(f, "from_finalize")) && close == 0);
    json_decref(m);
    run_task(c, WS_TASK_FINALIZE, NULL, 0); /* nothing pending: still answered, empty */
    m = take(c, &close);
    CHECK(json_array_size(m) == 1 &&
          !strcmp(json_string_value(json_object_get(json_array_get(m, 0), "transcript")), ""));
    json_decref(m);

    audio(c, 25.0, true); /* no pause at all */
    m = take(c, &close);
    CHECK(json_array_size(m) >= 1);
    CHECK(is_final(json_array_get(m, 0)));
    double dur = num(json_array_get(m, 0), "duration");
    CHECK(dur > 19 && dur <= 20.1);
    CHECK_NEAR(num(json_array_get(m, 0), "start"), 0.6, 0.01); /* times run on after the finalize */
    json_decref(m);
    ws_conn_unref(c);
}

static void test_garbage_audio_fails_1003(void)
{
    ws_conn *c = ws_conn_new(ws);
    ld_error err;
    ld_ws_params_parse(no_params, NULL, &c->params, &err);
    c->params.encoding = LD_STREAM_OGG_OPUS;
    c->decoder = &sd;
    c->sess = ws_session_new(c, NULL, &err);
    int close;
    run_task(c, WS_TASK_AUDIO, (const uint8_t *)"not ogg at all", 14);
    json_t *m = take(c, &close);
    CHECK(close == 1003 && json_array_size(m) == 1);
    CHECK_STR(type_of(json_array_get(m, 0)), "error");
    CHECK_STR(json_string_value(json_object_get(json_array_get(m, 0), "code")), "INVALID_AUDIO");
    json_decref(m);
    audio(c, 0.5, true); /* ignored after the failure */
    m = take(c, &close);
    CHECK(json_array_size(m) == 0);
    json_decref(m);
    ws_conn_unref(c);
}

/* profanity_filter masks a listed word in interims and finals alike; the
 * words as heard without it */
static void test_profanity_filter(void)
{
    heard_text = "oh shit";
    heard_word = "shit";
    for (int on = 0; on < 2; on++) {
        profanity_filter = on;
        ws_conn *c = conn(300, false, true);
        int close;
        audio(c, 1.5, true);
        audio(c, 0.5, false);
        json_t *m = take(c, &close), *x;
        size_t i;
        int interims = 0, finals = 0;
        json_array_foreach(m, i, x)
        {
            const char *t = json_string_value(json_object_get(x, "transcript"));
            if (!t || !*t)
                continue;
            if (is_final(x)) {
                finals++;
                CHECK_STR(t, on ? "****." : "Shit.");
            } else if (strchr(t, ' ')) {
                interims++;
                CHECK_STR(t, on ? "oh ****" : "oh shit");
            }
        }
        CHECK(interims == 1 && finals == 1);
        json_decref(m);
        ws_conn_unref(c);
    }
    heard_text = "hello world";
    heard_word = "hello";
    profanity_filter = false;
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ld_log_set_level(LD_LOG_CRITICAL);
    ld_ws_config cfg = {0};
    ld_error err;
    ws = ld_ws_new(&cfg, &err);
    CHECK(ws != NULL);
    test_utterance_end_in_audio_time();
    test_short_eou_and_no_events();
    test_silence_is_not_decoded();
    test_finalize_and_forced_final();
    test_garbage_audio_fails_1003();
    test_profanity_filter();
    ld_ws_free(ws);
    TEST_MAIN_END();
}
