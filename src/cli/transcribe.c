/* `listend transcribe FILE…`: the server's pipeline (decode, segment, pool,
 * render) run locally, or with --server, sent to a running server
 * (transcribe_client.c). One file prints the body the API would return;
 * several files print JSON Lines (each object with a "file" field) or, for
 * text/srt/vtt, each result under a "==> FILE <==" header. */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "asr/channels.h"
#include "asr/diarize.h"
#include "asr/pool.h"
#include "asr/redact.h"
#include "cli/cli.h"
#include "cli/transcribe_internal.h"
#include "server/opts.h"
#include "util/fs.h"
#include "util/log.h"
#include "util/rand.h"

#define PROGRESS_MIN_S 60.0 /* only long files get a progress bar */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: listend transcribe FILE... [options]\n"
            "       listend transcribe --server URL [--key KEY] FILE|URL... [options]\n"
            "\n"
            "Transcribes audio files (wav, mp3, flac, ogg, m4a, webm; headerless mono: .raw/.pcm = 16 kHz\n"
            "s16le, .ul/.ulaw/.mu = 8 kHz mu-law, .al/.alaw = 8 kHz A-law)\n"
            "and prints the result to stdout: one file prints the API body, several print JSON Lines\n"
            "(with a \"file\" field) or text/srt/vtt under \"==> FILE <==\" headers.\n"
            "\n"
            "Local mode (default): the server's pipeline runs in this process.\n"
            "Client mode (--server): each FILE is uploaded (streamed) to POST URL/v1/listen; an\n"
            "http://, https:// or s3:// argument is fetched by the server instead.\n"
            "\n"
            "options:\n"
            "  --format json|text|srt|vtt  output format (default json)\n"
            "  --timestamps                include per-word timings in JSON\n"
            "  --no-punctuate              plain lowercase words, no punctuation\n"
            "  --numerals                  spoken numbers as digits (\"ten\" -> 10, \"nine oh two\" -> 902)\n"
            "  --redact LIST               hide pci (card numbers, CVV, expiry), pii (names, phone numbers,\n"
            "                              SSNs, e-mail), ssn, numbers: comma-separated, e.g. pci,pii\n"
            "  --profanity-filter          swear words as asterisks (\"****\"; the list: docs/compat.md)\n"
            "  --diarize                   label speakers (JSON: speaker on words and utterances)\n"
            "  --num-speakers N            exactly N speakers (1-8; default: estimated); implies --diarize\n"
            "  --multichannel              transcribe each channel on its own (a call recording: agent left,\n"
            "                              caller right); JSON: channel on words and utterances, channels[]\n"
            "  --language CODE             ISO 639-1 language, or a tag/locale (en-US, en_US) (default en)\n"
            "  --model NAME                auto (default: telephony for <= 8 kHz or G.711 audio, noisy in\n"
            "                              steady noise), general, telephony, noisy, or a model pack\n"
            "                              (--models DIR/NAME/, listend adapt)\n"
            "  --keywords WORD[:BOOST]     custom vocabulary (repeatable; boost 1-10): words to recognise\n"
            "                              even if the dictionary lacks them (docs/api.md)\n"
            "  --server URL                client mode: a listend server (default $LISTEND_API_URL)\n"
            "  --key KEY                   client mode: license key (default $LICENSE_KEY)\n"
            "  --cacert FILE               client mode: CA bundle for an https server\n"
            "  --insecure                  client mode: do not verify the https server's certificate\n"
            "  --local                     local mode even when LISTEND_API_URL is set\n"
            "  --models DIR                local mode: extra languages DIR/<code>/ and model packs\n"
            "                              DIR/<pack>/ (docs/engine.md)\n"
            "  --workers N                 local mode: decoders in parallel (default: cores)\n"
            "  --verbose                   engine details (local) or request ids and timings (client)\n"
            "  -h, --help                  this text\n"
            "\n"
            "exit status: 0 done, 1 an input failed (reason on stderr), 2 usage error\n");
}

/* The progress bar of one long file; the pool's progress callback gets this,
 * and only this, as its user pointer. */
typedef struct {
    const char *name;
    int last_pct;
} progress_bar;

static void on_progress(void *ud, double f)
{
    progress_bar *ps = ud;
    int pct = (int)(f * 100.0 + 0.5);
    if (pct == ps->last_pct)
        return;
    ps->last_pct = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%% %s", bar, pct, ps->name);
    if (pct >= 100)
        fputc('\n', stderr);
    fflush(stderr);
}

/* pcm gets one entry (the downmix), or with multichannel one per channel
 * (room for LD_MAX_CHANNELS); *n says how many. */
static ld_err load(const char *path, bool multichannel, ld_pcm *pcm, size_t *n, ld_error *err)
{
    *n = 1;
    ld_stream_encoding enc;
    int rate;
    ld_decode_opts o = {0};
    if (!multichannel || ld_audio_raw_by_name(path, &enc, &rate)) /* headerless names are mono */
        return ld_audio_decode_named(path, &o, pcm, err);
    if (access(path, R_OK) != 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "cannot read '%s'", path);
    return ld_audio_decode_file_channels(path, &o, pcm, LD_MAX_CHANNELS, n, err);
}

#define MAX_AHEAD 64

/* A file in flight (local mode): the pool finishes each channel's `wait`
 * (done callback; one entry unless --multichannel) and moves `bar` (progress
 * callback, channel 0's: channels decode side by side), each through its own
 * pointer. */
typedef struct {
    int index; /* argv index */
    const char *path;
    size_t n_ch;
    ld_pool_waiter wait[LD_MAX_CHANNELS];
    progress_bar bar;
} pending;

static char *render(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char *file);

/* Waits for w, prints its result (or error) and releases it. Returns false on failure. */
static bool print_pending(pending *w, const ld_transcribe_opts *o, int nfiles, int first_index)
{
    ld_error err = {0}, e;
    ld_transcript *t[LD_MAX_CHANNELS] = {0};
    bool all = true;
    for (size_t c = 0; c < w->n_ch; c++) { /* every waiter is released; the first error is told */
        t[c] = ld_pool_waiter_wait(&w->wait[c], &e);
        if (!t[c] && all)
            err = e;
        all = all && t[c];
    }
    char *out = all ? render(t, w->n_ch, o, nfiles > 1 && o->format == LD_FORMAT_JSON ? w->path : NULL) : NULL;
    if (!out) {
        if (all)
            ld_error_set(&err, LD_ERR_INTERNAL, "out of memory rendering the transcript");
        fprintf(stderr, "listend transcribe: %s: %s\n", w->path, err.msg);
    } else {
        if (nfiles > 1 && o->format != LD_FORMAT_JSON)
            printf("%s==> %s <==\n", w->index > first_index ? "\n" : "", w->path);
        fputs(out, stdout);
        if (o->format == LD_FORMAT_JSON)
            fputc('\n', stdout); /* text, SRT and VTT end with theirs */
        fflush(stdout);
    }
    free(out);
    for (size_t c = 0; c < w->n_ch; c++)
        ld_transcript_free(t[c]);
    return out != NULL;
}

/* The output for one file (t[0..n) its channels; one unless --multichannel):
 * the API's body; JSON gets a "file" field when several files print as JSON
 * Lines. */
static char *render(ld_transcript *const *t, size_t n, const ld_transcribe_opts *o, const char *file)
{
    if (o->format != LD_FORMAT_JSON)
        return o->multichannel ? ld_channels_render(t, n, o, NULL) : ld_transcript_render(t[0], o, NULL);
    char rid[32];
    ld_rand_id("req_", rid, sizeof rid);
    json_t *j = o->multichannel ? ld_channels_json(t, n, o, rid) : ld_transcript_json(t[0], o, rid);
    if (!j)
        return NULL;
    if (file)
        json_object_set_new(j, "file", json_string(file));
    /* precision 10: times print as 1.23, not 1.2299999999999999 */
    char *s = json_dumps(j, JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER | (file ? JSON_COMPACT : JSON_INDENT(2)));
    json_decref(j);
    return s;
}

int ld_cli_transcribe_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, 0, 'f'},
        {"timestamps", no_argument, 0, 't'},
        {"no-punctuate", no_argument, 0, 'P'},
        {"language", required_argument, 0, 'l'},
        {"models", required_argument, 0, 'm'},
        {"model", required_argument, 0, 'M'},
        {"workers", required_argument, 0, 'w'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {"server", required_argument, 0, 'S'},
        {"key", required_argument, 0, 'K'},
        {"cacert", required_argument, 0, 'C'},
        {"insecure", no_argument, 0, 'I'},
        {"local", no_argument, 0, 'L'},
        {"diarize", no_argument, 0, 'D'},
        {"num-speakers", required_argument, 0, 'N'},
        {"keywords", required_argument, 0, 'k'},
        {"multichannel", no_argument, 0, 'c'},
        {"numerals", no_argument, 0, '9'},
        {"redact", required_argument, 0, 'R'},
        {"profanity-filter", no_argument, 0, 'X'},
        {0, 0, 0, 0},
    };
    ld_transcribe_client_cfg client = {.server = getenv("LISTEND_API_URL"), .key = getenv("LICENSE_KEY")};
    bool local = false, local_only_opts = false, client_only_opts = false, server_given = false;
    ld_transcribe_opts o;
    ld_transcribe_opts_default(&o);
    ld_pool_config cfg = {0};
    bool verbose = false;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1;) {
        switch (c) {
        case 'f':
            if (ld_format_parse(optarg, &o.format)) {
                fprintf(stderr, "listend transcribe: --format must be json, text, srt or vtt\n");
                return 2;
            }
            break;
        case 't': o.timestamps = true; break;
        case 'P': o.punctuate = false; break;
        case 'l':
            if (!*optarg || strlen(optarg) > 64) {
                fprintf(stderr, "listend transcribe: --language: not a language code: %s\n", optarg);
                return 2;
            }
            ld_opts_language(optarg, o.language, sizeof o.language); /* en-US, en_US -> en, as the server */
            break;
        case 'm':
            cfg.models_dir = optarg;
            local_only_opts = true;
            break;
        case 'M':
            if (strlen(optarg) >= sizeof o.model) {
                fprintf(stderr, "listend transcribe: --model: name too long: %s\n", optarg);
                return 2;
            }
            snprintf(o.model, sizeof o.model, "%s", optarg);
            break;
        case 'k': {
            ld_error ke;
            if (ld_vocab_add_items(o.keywords, sizeof o.keywords, optarg, &ke) != LD_OK) {
                fprintf(stderr, "listend transcribe: --keywords: %s\n", ke.msg);
                return 2;
            }
            break;
        }
        case 'S': client.server = optarg, server_given = true; break;
        case 'K': client.key = optarg, client_only_opts = true; break;
        case 'C': client.cacert = optarg, client_only_opts = true; break;
        case 'I': client.insecure = true, client_only_opts = true; break;
        case 'L': local = true; break;
        case 'w': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > LD_POOL_MAX_WORKERS) {
                fprintf(stderr, "listend transcribe: --workers must be a number from 1 to %d\n",
                        LD_POOL_MAX_WORKERS);
                return 2;
            }
            cfg.workers = (int)n;
            local_only_opts = true;
            break;
        }
        case 'v': verbose = true; break;
        case 'D': o.diarize = true; break;
        case '9': o.numerals = true; break;
        case 'X': o.profanity_filter = true; break;
        case 'R': {
            ld_error e = {0};
            if (ld_redact_parse(optarg, &o.redact, &e)) {
                fprintf(stderr, "listend transcribe: %s\n", e.msg);
                return 2;
            }
            break;
        }
        case 'c': o.multichannel = true; break;
        case 'N': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > LD_DIARIZE_MAX_SPEAKERS) {
                fprintf(stderr, "listend transcribe: --num-speakers must be a number from 1 to %d\n",
                        LD_DIARIZE_MAX_SPEAKERS);
                return 2;
            }
            o.num_speakers = (int)n;
            o.diarize = true; /* asking for a count is asking for speakers */
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "listend transcribe: no input file\n\n");
        usage(stderr);
        return 2;
    }
    if (local && server_given) { /* --local is for ignoring $LISTEND_API_URL, not a --server given too */
        fprintf(stderr, "listend transcribe: --local and --server contradict each other: choose one\n");
        return 2;
    }
    if (!local && client.server && *client.server) {
        if (local_only_opts) {
            fprintf(stderr, "listend transcribe: --models and --workers apply to local mode only\n");
            return 2;
        }
        if (!client.key || !*client.key) {
            fprintf(stderr, "listend transcribe: client mode needs a license key: --key KEY or LICENSE_KEY\n");
            return 2;
        }
        static char key_buf[1024];
        if (ld_cli_key_arg("transcribe", client.key, key_buf, sizeof key_buf))
            return 2;
        client.key = key_buf;
        if (strncasecmp(client.server, "http://", 7) && strncasecmp(client.server, "https://", 8)) {
            fprintf(stderr, "listend transcribe: --server must be an http:// or https:// URL\n");
            return 2;
        }
        client.verbose = verbose;
        return ld_transcribe_client_main(&client, &o, argv + optind, argc - optind);
    }
    if (client_only_opts) { /* silently ignored, they hid a forgotten --server */
        fprintf(stderr,
                "listend transcribe: --key, --cacert and --insecure apply to client mode only (--server URL "
                "or $LISTEND_API_URL)\n");
        return 2;
    }
    ld_log_set_level(verbose ? LD_LOG_DEBUG : LD_LOG_WARNING);

    ld_error err = {0};
    ld_pool *pool = ld_pool_new(&cfg, &err);
    if (!pool) {
        fprintf(stderr, "listend transcribe: %s\n", err.msg);
        return 1;
    }
    if (!ld_pool_has_language(pool, o.language)) {
        ld_transcribe_opts probe = o;
        ld_pcm none = {0};
        ld_pool_submit(pool, &none, &probe, &(ld_pool_callbacks){0}, &err); /* only builds the message */
        fprintf(stderr, "listend transcribe: %s\n", err.msg);
        ld_pool_free(pool);
        return 2;
    }
    if (!ld_pool_check_model(pool, o.language, o.model, &err)) {
        fprintf(stderr, "listend transcribe: %s\n", err.msg);
        ld_pool_free(pool);
        return 2;
    }
    if (o.keywords[0] && strcmp(o.language, "en")) {
        fprintf(stderr, "listend transcribe: --keywords: custom vocabulary is available for English (en) only\n");
        ld_pool_free(pool);
        return 2;
    }
    int nfiles = argc - optind, failed = 0;
    bool tty = isatty(STDERR_FILENO);
    /* Files are submitted ahead (up to one per decoder) so that many short
     * files keep every decoder busy; results print in argument order. */
    int ahead = ld_pool_workers(pool);
    if (ahead > MAX_AHEAD)
        ahead = MAX_AHEAD;
    pending *win = calloc((size_t)ahead, sizeof *win);
    if (!win) {
        fprintf(stderr, "listend transcribe: out of memory\n");
        ld_pool_free(pool);
        return 1;
    }
    int head = 0, count = 0; /* ring of files submitted, oldest at head */
    for (int i = optind; i <= argc; i++) {
        ld_pcm pcm[LD_MAX_CHANNELS] = {0};
        size_t n_ch = 1;
        bool loaded = i < argc && load(argv[i], o.multichannel, pcm, &n_ch, &err) == LD_OK;
        /* A long file uses every decoder by itself, and its progress bar
         * needs the terminal alone: let the others finish first. */
        bool bar = loaded && tty && ld_pcm_seconds(&pcm[0]) >= PROGRESS_MIN_S;
        while (count > 0 && (count == ahead || bar || i == argc)) {
            failed += !print_pending(&win[head], &o, nfiles, optind);
            head = (head + 1) % ahead;
            count--;
        }
        if (i == argc)
            break;
        pending *w = &win[(head + count++) % ahead];
        *w = (pending){.index = i, .path = argv[i], .n_ch = loaded ? n_ch : 1, .bar = {argv[i], -1}};
        /* Each channel is its own pool request, so a call's two sides decode
         * in parallel (as the server does with multichannel=true). */
        for (size_t c = 0; c < w->n_ch; c++) {
            ld_pool_waiter_init(&w->wait[c]);
            ld_pool_callbacks cb = {.progress = bar && c == 0 ? on_progress : NULL,
                                    .progress_ud = &w->bar,
                                    .done = ld_pool_waiter_done,
                                    .done_ud = &w->wait[c]};
            if (!loaded || ld_pool_submit(pool, &pcm[c], &o, &cb, &err) != LD_OK)
                ld_pool_waiter_done(&w->wait[c], NULL, &err); /* the reason prints in turn */
            ld_pcm_free(&pcm[c]);                             /* no-op when the pool took it */
        }
    }
    free(win);
    ld_pool_free(pool);
    return failed ? 1 : 0;
}
