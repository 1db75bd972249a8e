/* `listend stream FILE …`: a small WebSocket client (TCP or TLS via gnutls,
 * framing by wslay) that streams a file to /v1/listen/stream and prints
 * results as they arrive. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "asr/redact.h"
#include "asr/vocab.h"
#include "audio/audio.h"
#include "server/ws_proto.h"
#include "util/time.h"

typedef struct {
    int fd;
    gnutls_session_t tls; /* NULL for ws:// */
    ld_ws_leftover extra; /* bytes read past the 101 response head */
    bool json, got_last, closed, failed;
    int close_code;
} client;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: listend stream FILE [--server URL] [--key KEY] [--realtime] [--language CODE] [--model NAME]\n"
            "                            [--encoding ENC --sample-rate HZ [--channels N]] [--multichannel]\n"
            "                            [--diarize] [--num-speakers N] [--redact LIST] [--no-interim] [--json]\n"
            "                            [--keywords WORD[:BOOST]] [--cacert FILE | --insecure]\n\n"
            "Streams FILE to the server's /v1/listen/stream and prints interim (~) and final results.\n"
            "Without --encoding the file (any format) is decoded and sent as 16 kHz linear16 in\n"
            "100 ms frames; with --encoding (linear16, linear32, mulaw, alaw) the file's bytes are\n"
            "sent as they are, at --sample-rate (default %d). Headerless names imply it:\n"
            ".raw/.pcm = linear16 16 kHz, .ul/.ulaw/.mu = mulaw 8 kHz, .al/.alaw = alaw 8 kHz.\n"
            "FILE - reads raw --encoding bytes from standard input (to its end, then streams them).\n"
            "  --multichannel each channel of FILE is transcribed on its own (a call: agent left, caller\n"
            "                 right); finals print as \"ch N [start - end] text\"\n"
            "  --channels N   with --encoding: FILE holds N interleaved channels (2-%d), each\n"
            "                 transcribed on its own\n"
            "  --diarize      label speakers, final by final: \"[start - end] Speaker N: text\", a line\n"
            "                 per speaker's run of words\n"
            "  --num-speakers N at most N speakers (1-8); implies --diarize\n"
            "  --redact LIST  hide pci (card numbers, CVV, expiry), pii (names, phone numbers, SSNs,\n"
            "                 e-mail), ssn, numbers in interims and finals: comma-separated, e.g. pci,pii\n"
            "  --keywords WORD[:BOOST] custom vocabulary (repeatable; boost 1-10): words to recognise\n"
            "                 or prefer, e.g. --keywords kubernetes:2 (English only)\n"
            "  --server URL   default $LISTEND_API_URL or http://localhost:7100 (http, https, ws, wss)\n"
            "  --cacert FILE  with https/wss: CA bundle (PEM) to verify the server with (default: system)\n"
            "  --insecure     with https/wss: do not verify the server certificate\n"
            "  --key KEY      default $LICENSE_KEY\n"
            "  --realtime     pace the audio at real time (default: as fast as the server takes it)\n"
            "  --language CODE language of the audio (default en)\n"
            "  --model NAME   auto (default: picked by the audio: telephony for phone audio, noisy in\n"
            "                 steady noise), general, telephony, noisy or a pack name (--json:\n"
            "                 each final says which)\n"
            "  --no-interim   finals only (no interim results)\n"
            "  --json         print the server's messages as they are\n",
            LD_SAMPLE_RATE, LD_MAX_CHANNELS);
}

/* Transport: >0 bytes, 0 EOF, -1 error, LD_WS_IO_AGAIN (after the handshake
 * the socket is non-blocking, so wslay's read loop never waits). */
static ssize_t io_recv(client *c, void *buf, size_t len)
{
    if (c->tls) {
        ssize_t r = gnutls_record_recv(c->tls, buf, len);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            return LD_WS_IO_AGAIN;
        if (r == GNUTLS_E_PREMATURE_TERMINATION)
            return 0;
        return r < 0 ? -1 : r;
    }
    ssize_t r = recv(c->fd, buf, len, 0);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? LD_WS_IO_AGAIN : -1;
    return r;
}

static ssize_t io_send(client *c, const void *buf, size_t len)
{
    if (c->tls) {
        ssize_t r = gnutls_record_send(c->tls, buf, len);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            return LD_WS_IO_AGAIN;
        return r < 0 ? -1 : r;
    }
    ssize_t r = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? LD_WS_IO_AGAIN : -1;
    return r;
}

static int tls_start(client *c, const char *host, const char *cacert, bool insecure,
                     gnutls_certificate_credentials_t *cred)
{
    if (gnutls_certificate_allocate_credentials(cred) < 0)
        return -1;
    if (!cacert)
        gnutls_certificate_set_x509_system_trust(*cred);
    else if (ld_cli_cacert_load("stream", cacert, *cred) < 0)
        return -1;
    if (gnutls_init(&c->tls, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(c->tls) < 0 ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, *cred) < 0)
        return -1;
    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host, strlen(host));
    if (!insecure)
        gnutls_session_set_verify_cert(c->tls, host, 0);
    gnutls_transport_set_int(c->tls, c->fd);
    gnutls_handshake_set_timeout(c->tls, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
    int r;
    do
        r = gnutls_handshake(c->tls);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0) {
        fprintf(stderr, "listend stream: TLS handshake failed: %s%s\n", gnutls_strerror(r),
                r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR
                    ? " (--cacert FILE trusts your own CA; --insecure skips verification)"
                    : "");
        return -1;
    }
    return 0;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    size_t n = ld_ws_leftover_take(&c->extra, buf, len);
    if (n)
        return (ssize_t)n;
    return ld_ws_recv_result(ctx, io_recv(c, buf, len));
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)flags;
    client *c = ud;
    return ld_ws_send_result(ctx, io_send(c, data, len));
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx;
    (void)ud;
    randombytes_buf(buf, len);
    return 0;
}

/* A diarized final (words with "speaker"): a line per speaker's run of words,
 * "[start - end] Speaker N: text" (N from 1). false when not diarized. */
static bool print_speakers(const char *label, json_t *words)
{
    size_t n = json_array_size(words), i = 0;
    if (!n || !json_is_integer(json_object_get(json_array_get(words, 0), "speaker")))
        return false;
    while (i < n) {
        json_t *w0 = json_array_get(words, i);
        json_int_t who = json_integer_value(json_object_get(w0, "speaker"));
        double start = json_number_value(json_object_get(w0, "start")), end = start;
        printf("%s[%7.2f - ", label, start);
        char line[4096] = "";
        size_t len = 0;
        for (; i < n && json_integer_value(json_object_get(json_array_get(words, i), "speaker")) == who; i++) {
            json_t *w = json_array_get(words, i);
            const char *t = json_string_value(json_object_get(w, "word"));
            bool punct = t && t[0] && !t[1] && strchr(".,?!", t[0]);
            if (t && len < sizeof line)
                len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", len && !punct ? " " : "", t);
            end = json_number_value(json_object_get(w, "end"));
        }
        printf("%7.2f] Speaker %d: %s\n", end, (int)who + 1, line);
    }
    return true;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *ud)
{
    (void)ctx;
    client *c = ud;
    if (m->opcode == WSLAY_CONNECTION_CLOSE) {
        c->closed = true;
        c->close_code = m->status_code;
        return;
    }
    if (m->opcode != WSLAY_TEXT_FRAME)
        return;
    if (c->json)
        printf("%.*s\n", (int)m->msg_length, (const char *)m->msg);
    json_t *j = json_loadb((const char *)m->msg, m->msg_length, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *ch = json_object_get(j, "channel"); /* only on streams with channels > 1 */
    char label[16] = "";
    if (json_is_integer(ch))
        snprintf(label, sizeof label, "ch %d ", (int)json_integer_value(ch));
    if (type && !strcmp(type, "transcription")) {
        bool final = json_is_true(json_object_get(j, "is_final"));
        if (json_is_true(json_object_get(j, "is_last")))
            c->got_last = true;
        const char *text = json_string_value(json_object_get(j, "transcript"));
        double start = json_number_value(json_object_get(j, "start"));
        double dur = json_number_value(json_object_get(j, "duration"));
        if (!c->json && final && text && *text && !print_speakers(label, json_object_get(j, "words")))
            printf("%s[%7.2f - %7.2f] %s\n", label, start, start + dur, text);
        else if (!c->json && !final && isatty(STDOUT_FILENO))
            printf("  %s~ %s\n", label, text ? text : "");
    } else if (type && !strcmp(type, "error")) {
        fprintf(stderr, "listend stream: server error: %s\n", json_string_value(json_object_get(j, "message")));
        c->failed = true;
    } else if (type && !c->json && isatty(STDOUT_FILENO)) {
        printf("  %s(%s at %.2f s)\n", label, type, json_number_value(json_object_get(j, "timestamp")));
    }
    fflush(stdout);
    json_decref(j);
}

/* http://host:port[/prefix] or ws://… -> host, port, path prefix. */
static int parse_url(const char *url, bool *tls, char *host, size_t hsz, char *port, size_t psz, char *prefix,
                     size_t prsz)
{
    const char *p = url;
    *tls = !strncmp(p, "https://", 8) || !strncmp(p, "wss://", 6);
    if (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8))
        p = strchr(p, '/') + 2;
    else if (!strncmp(p, "ws://", 5) || !strncmp(p, "wss://", 6))
        p = strchr(p, '/') + 2;
    else
        return -1;
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    snprintf(prefix, prsz, "%s", slash ? slash : "");
    size_t pl = strlen(prefix);
    if (pl && prefix[pl - 1] == '/')
        prefix[pl - 1] = 0;
    const char *colon = memchr(p, ':', hostport);
    size_t hl = colon ? (size_t)(colon - p) : hostport;
    if (!hl || hl >= hsz)
        return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    if (colon)
        snprintf(port, psz, "%.*s", (int)(hostport - hl - 1), colon + 1);
    else
        snprintf(port, psz, "%s", *tls ? "443" : "80");
    return 0;
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends the upgrade request; returns 0 on 101 with the right accept key. */
static int handshake(client *c, const char *host, const char *port, const char *path, const char *key)
{
    unsigned char nonce[16];
    char nonce64[25], expect[29];
    randombytes_buf(nonce, sizeof nonce);
    sodium_bin2base64(nonce64, sizeof nonce64, nonce, sizeof nonce, sodium_base64_VARIANT_ORIGINAL);
    ld_ws_accept_key(nonce64, expect);
    char req[4096 + LD_VOCAB_TEXT_MAX * 2];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Token %s\r\n\r\n",
                     path, host, port, nonce64, key);
    if (n <= 0 || (size_t)n >= sizeof req || io_send(c, req, (size_t)n) != n)
        return -1;
    char buf[16384];
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof buf - 1) {
        ssize_t r = io_recv(c, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end) {
        fprintf(stderr, "listend stream: no HTTP response from the server\n");
        return -1;
    }
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    if (status != 101) {
        /* The JSON envelope follows the head (read what is there). */
        fprintf(stderr, "listend stream: server answered %d: %s\n", status, end + 4);
        return -1;
    }
    *end = 0;
    char *h = strcasestr(buf, "\r\nSec-WebSocket-Accept:");
    if (!h) {
        fprintf(stderr, "listend stream: bad handshake (no Sec-WebSocket-Accept)\n");
        return -1;
    }
    h += 23;
    while (*h == ' ')
        h++;
    if (strncmp(h, expect, 28)) {
        fprintf(stderr, "listend stream: bad handshake (wrong Sec-WebSocket-Accept)\n");
        return -1;
    }
    size_t head = (size_t)(end + 4 - buf);
    if (len > head) {
        ld_ws_leftover_set(&c->extra, buf + head, len - head);
    }
    return 0;
}

typedef struct {
    const char *server, *key, *encoding, *language, *model, *file;
    const char *cacert; /* --cacert: CA bundle for wss/https; NULL = the system store */
    char key_buf[1024]; /* the checked key (ld_cli_key_arg); key points here */
    int rate;           /* --sample-rate with --encoding */
    int channels;       /* --channels with --encoding; else set from the file with --multichannel */
    bool realtime, interim, json, insecure, multichannel, diarize;
    unsigned redact;                  /* LD_REDACT_* (asr/redact.h) */
    int num_speakers;                 /* with --diarize: a cap, 0 = none */
    char keywords[LD_VOCAB_TEXT_MAX]; /* --keywords: canonical list (asr/vocab.h), "" = none */
} stream_opts;

/* 0 run, 1 --help printed, 2 usage error (printed). */
static int parse_opts(int argc, char **argv, stream_opts *o)
{
    static const struct option opts[] = {
        {"server", required_argument, 0, 's'},
        {"key", required_argument, 0, 'k'},
        {"realtime", no_argument, 0, 'r'},
        {"encoding", required_argument, 0, 'e'},
        {"sample-rate", required_argument, 0, 'R'},
        {"language", required_argument, 0, 'l'},
        {"model", required_argument, 0, 'M'},
        {"no-interim", no_argument, 0, 'n'},
        {"json", no_argument, 0, 'j'},
        {"insecure", no_argument, 0, 'i'},
        {"cacert", required_argument, 0, 'C'},
        {"multichannel", no_argument, 0, 'm'},
        {"channels", required_argument, 0, 'c'},
        {"diarize", no_argument, 0, 'D'},
        {"redact", required_argument, 0, 'X'},
        {"num-speakers", required_argument, 0, 'N'},
        {"keywords", required_argument, 0, 'K'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (stream_opts){
        .server = getenv("LISTEND_API_URL"), .key = getenv("LICENSE_KEY"), .channels = 1, .interim = true};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's': o->server = optarg; break;
        case 'k': o->key = optarg; break;
        case 'r': o->realtime = true; break;
        case 'e': o->encoding = optarg; break;
        case 'R': {
            char *end;
            long r = strtol(optarg, &end, 10);
            if (*end || r < LD_AUDIO_STREAM_MIN_RATE || r > LD_AUDIO_STREAM_MAX_RATE) {
                fprintf(stderr, "listend stream: --sample-rate must be a number from %d to %d (Hz)\n",
                        LD_AUDIO_STREAM_MIN_RATE, LD_AUDIO_STREAM_MAX_RATE);
                return 2;
            }
            o->rate = (int)r;
            break;
        }
        case 'l': o->language = optarg; break;
        case 'M': /* goes into the URL as it is */
            if (!*optarg || strlen(optarg) >= 32 ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
                    strlen(optarg)) {
                fprintf(stderr, "listend stream: --model must be a model name (letters, digits, - _ .)\n");
                return 2;
            }
            o->model = optarg;
            break;
        case 'n': o->interim = false; break;
        case 'j': o->json = true; break;
        case 'i': o->insecure = true; break;
        case 'C': o->cacert = optarg; break;
        case 'm': o->multichannel = true; break;
        case 'D': o->diarize = true; break;
        case 'X': {
            ld_error e = {0};
            if (ld_redact_parse(optarg, &o->redact, &e)) {
                fprintf(stderr, "listend stream: %s\n", e.msg);
                return 2;
            }
            break;
        }
        case 'K': {
            ld_error e = {0};
            if (ld_vocab_add_items(o->keywords, sizeof o->keywords, optarg, &e) != LD_OK) {
                fprintf(stderr, "listend stream: --keywords: %s\n", e.msg);
                return 2;
            }
            break;
        }
        case 'N': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 8) {
                fprintf(stderr, "listend stream: --num-speakers must be a number from 1 to 8\n");
                return 2;
            }
            o->num_speakers = (int)n;
            o->diarize = true; /* asking for a count is asking for speakers */
            break;
        }
        case 'c': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > LD_MAX_CHANNELS) {
                fprintf(stderr, "listend stream: --channels must be a number from 1 to %d\n", LD_MAX_CHANNELS);
                return 2;
            }
            o->channels = (int)n;
            break;
        }
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    o->file = argv[optind];
    ld_stream_encoding by_name;
    int name_rate;
    if (ld_audio_raw_by_name(o->file, &by_name, &name_rate)) { /* as `listend transcribe` reads them */
        if (!o->encoding)
            o->encoding = ld_audio_stream_encoding_name(by_name);
        if (!o->rate && !strcmp(o->encoding, ld_audio_stream_encoding_name(by_name))) /* x.ul --encoding mulaw */
            o->rate = name_rate;
    }
    if (!strcmp(o->file, "-") && !o->encoding) {
        fprintf(stderr, "listend stream: - (standard input) takes raw audio: give --encoding and --sample-rate\n");
        return 2;
    }
    if (o->rate && !o->encoding) {
        fprintf(stderr,
                "listend stream: --sample-rate describes raw --encoding input; a file's own rate is read "
                "from it\n");
        return 2;
    }
    o->rate = o->rate ? o->rate : LD_SAMPLE_RATE;
    if (o->multichannel && o->encoding) {
        fprintf(stderr,
                "listend stream: --multichannel reads a file's own channels; raw --encoding input says "
                "how many it interleaves with --channels N\n");
        return 2;
    }
    if (o->channels > 1 && !o->encoding) {
        fprintf(stderr,
                "listend stream: --channels describes raw --encoding input; a file's own channels: "
                "--multichannel\n");
        return 2;
    }
    if (!o->server || !*o->server)
        o->server = "http://localhost:7100";
    if (!o->key || !*o->key) {
        fprintf(stderr, "listend stream: no license key (--key or $LICENSE_KEY)\n");
        return 2;
    }
    if (ld_cli_key_arg("stream", o->key, o->key_buf, sizeof o->key_buf))
        return 2;
    o->key = o->key_buf;
    return 0;
}

/* The bytes to send and the size of 100 ms of them: the file as it is with
 * --encoding (o->channels interleaved), else decoded to 16 kHz linear16
 * (little-endian on the wire): the downmix, or with --multichannel each of the
 * file's channels, interleaved (o->channels is set to how many).
 * Returns 0, or the exit status after printing why. */
static int load_audio(stream_opts *o, ld_stream_encoding enc, int *rate, uint8_t **audio, size_t *len,
                      size_t *frame)
{
    const size_t linear16_100ms = (size_t)LD_SAMPLE_RATE / 10 * 2;
    *frame = linear16_100ms;
    if (o->encoding) {
        bool std_in = !strcmp(o->file, "-");
        FILE *f = std_in ? stdin : fopen(o->file, "rb");
        if (!f) {
            fprintf(stderr, "listend stream: %s: %s\n", o->file, strerror(errno));
            return 1;
        }
        /* read to the end rather than by the file's size: a pipe has none */
        size_t cap = 1 << 20, got;
        *audio = malloc(cap);
        *len = 0;
        while (*audio && (got = fread(*audio + *len, 1, cap - *len, f)) > 0)
            if ((*len += got) == cap) {
                uint8_t *more = cap < ((size_t)1 << 32) ? realloc(*audio, cap *= 2) : NULL;
                if (!more)
                    free(*audio);
                *audio = more;
            }
        bool bad = ferror(f);
        if (!std_in)
            fclose(f);
        if (!*audio || bad) {
            fprintf(stderr, "listend stream: %s: %s\n", o->file, *audio ? "read error" : "too large to load");
            return 1;
        }
        if (!*len) {
            fprintf(stderr, "listend stream: %s: no audio (the input is empty)\n", o->file);
            return 1;
        }
        *frame = (size_t)*rate / 10 * (size_t)ld_audio_stream_sample_bytes(enc) * (size_t)o->channels;
    } else {
        ld_pcm pcm[LD_MAX_CHANNELS] = {0};
        size_t n_ch = 1, n = 0;
        ld_decode_opts dopts = {0};
        ld_error err;
        if ((o->multichannel ? ld_audio_decode_file_channels(o->file, &dopts, pcm, LD_MAX_CHANNELS, &n_ch, &err)
                             : ld_audio_decode_file(o->file, &dopts, pcm, &err)) != LD_OK) {
            fprintf(stderr, "listend stream: %s: %s\n", o->file, err.msg);
            return 1;
        }
        for (size_t c = 0; c < n_ch; c++) /* channels of one file: the same length; the longest rules */
            n = pcm[c].n > n ? pcm[c].n : n;
        *len = n * n_ch * 2;
        *audio = calloc(*len ? *len : 1, 1);
        for (size_t c = 0; *audio && c < n_ch; c++)
            for (size_t i = 0; i < pcm[c].n; i++) {
                uint8_t *b = *audio + 2 * (i * n_ch + c);
                b[0] = (uint8_t)(pcm[c].samples[i] & 0xff);
                b[1] = (uint8_t)((uint16_t)pcm[c].samples[i] >> 8);
            }
        for (size_t c = 0; c < n_ch; c++)
            ld_pcm_free(&pcm[c]);
        if (!*audio) {
            fprintf(stderr, "listend stream: out of memory\n");
            return 1;
        }
        *rate = LD_SAMPLE_RATE;
        o->channels = (int)n_ch;
        *frame = linear16_100ms * n_ch;
    }
    if (!*frame)
        *frame = linear16_100ms * (size_t)o->channels;
    return 0;
}

/* Sends `audio` in frames (paced at real time with --realtime), then
 * close_stream, and prints results until the server's last one or close. */
static void pump(client *c, const stream_opts *o, const uint8_t *audio, size_t audio_len, size_t frame)
{
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct wslay_event_callbacks cb = {.recv_callback = recv_cb,
                                       .send_callback = send_cb,
                                       .genmask_callback = genmask_cb,
                                       .on_msg_recv_callback = on_msg};
    wslay_event_context_ptr ctx;
    wslay_event_context_client_init(&ctx, &cb, c);
    size_t sent = 0;
    bool ended = false;
    double t0 = ld_time_mono(), deadline = 0;
    while (!c->closed) {
        double now = ld_time_mono();
        /* Queue audio: on schedule in real time, else while the send queue is short. */
        while (!ended && sent < audio_len && wslay_event_get_queued_msg_count(ctx) < 8 &&
               (!o->realtime || (double)sent / (frame * 10) <= now - t0)) {
            size_t n = audio_len - sent < frame ? audio_len - sent : frame;
            struct wslay_event_msg m = {WSLAY_BINARY_FRAME, audio + sent, n};
            wslay_event_queue_msg(ctx, &m);
            sent += n;
        }
        if (!ended && sent >= audio_len) {
            const char *cs = "{\"type\":\"close_stream\"}";
            struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)cs, strlen(cs)};
            wslay_event_queue_msg(ctx, &m);
            ended = true;
            deadline = now + 60;
        }
        if (c->got_last && !wslay_event_get_close_sent(ctx) && wslay_event_get_queued_msg_count(ctx) == 0)
            wslay_event_queue_close(ctx, 1000, NULL, 0);
        /* Faster than real time: wake as soon as the socket takes more. */
        bool more = !ended && !o->realtime;
        struct pollfd p = {.fd = c->fd, .events = POLLIN | (wslay_event_want_write(ctx) || more ? POLLOUT : 0)};
        int timeout = o->realtime && !ended ? 20 : 200;
        /* bytes already inside gnutls or left from the handshake do not wake poll */
        bool buffered = ld_ws_leftover_pending(&c->extra) || (c->tls && gnutls_record_check_pending(c->tls) > 0);
        if (poll(&p, 1, buffered ? 0 : timeout) < 0 && errno != EINTR)
            break;
        if (((p.revents & (POLLIN | POLLHUP | POLLERR)) || buffered) && wslay_event_recv(ctx) != 0)
            break;
        if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0)
            break;
        if (!wslay_event_want_read(ctx) && !wslay_event_want_write(ctx))
            break;
        if (ended && ld_time_mono() > deadline) {
            fprintf(stderr, "listend stream: no final result within 60 s\n");
            break;
        }
    }
    wslay_event_context_free(ctx);
}

int ld_cli_stream_main(int argc, char **argv)
{
    stream_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    ld_stream_encoding enc = LD_STREAM_LINEAR16;
    if (o.encoding && (ld_audio_stream_encoding_parse(o.encoding, &enc) || !ld_audio_stream_sample_bytes(enc))) {
        fprintf(stderr, "listend stream: --encoding must be linear16, linear32, mulaw or alaw\n");
        return 2;
    }
    uint8_t *audio = NULL;
    size_t audio_len = 0, frame;
    int rate = o.rate;
    if ((rc = load_audio(&o, enc, &rate, &audio, &audio_len, &frame))) {
        free(audio);
        return rc;
    }
    char host[256], port[16], prefix[256], path[1024 + LD_VOCAB_TEXT_MAX * 2];
    bool tls = false;
    if (parse_url(o.server, &tls, host, sizeof host, port, sizeof port, prefix, sizeof prefix)) {
        fprintf(stderr, "listend stream: unsupported server URL '%s' (http, https, ws or wss)\n", o.server);
        free(audio);
        return 2;
    }
    char chans[128] = "", red[32];
    int at = o.channels > 1 ? snprintf(chans, sizeof chans, "&channels=%d", o.channels) : 0;
    if (o.diarize)
        at += snprintf(chans + at, sizeof chans - (size_t)at, "&diarize=true");
    if (o.diarize && o.num_speakers)
        at += snprintf(chans + at, sizeof chans - (size_t)at, "&num_speakers=%d", o.num_speakers);
    ld_redact_list(o.redact, red);
    if (*red)
        snprintf(chans + at, sizeof chans - (size_t)at, "&redact=%s", red);
    at = snprintf(path, sizeof path, "%s/v1/listen/stream?encoding=%s&sample_rate=%d&interim_results=%s%s%s%s%s%s",
                  prefix, ld_audio_stream_encoding_name(enc), rate, o.interim ? "true" : "false", chans,
                  o.language ? "&language=" : "", o.language ? o.language : "", o.model ? "&model=" : "",
                  o.model ? o.model : "");
    /* one `keywords` per word: canonical entries are letters, apostrophes and ":boost", safe in a query */
    for (const char *k = o.keywords; *k && at < (int)sizeof path;) {
        size_t n = strcspn(k, " ");
        at += snprintf(path + at, sizeof path - (size_t)at, "&keywords=%.*s", (int)n, k);
        k += n + (k[n] == ' ');
    }
    client c = {.json = o.json};
    c.fd = dial(host, port);
    if (c.fd < 0) {
        fprintf(stderr, "listend stream: cannot connect to %s:%s\n", host, port);
        free(audio);
        return 1;
    }
    gnutls_certificate_credentials_t cred = NULL;
    bool connected = !(tls && tls_start(&c, host, o.cacert, o.insecure, &cred)) &&
                     !handshake(&c, host, port, path, o.key);
    if (connected)
        pump(&c, &o, audio, audio_len, frame);
    if (c.tls) {
        if (connected)
            gnutls_bye(c.tls, GNUTLS_SHUT_WR);
        gnutls_deinit(c.tls);
    }
    if (cred)
        gnutls_certificate_free_credentials(cred);
    close(c.fd);
    free(audio);
    ld_ws_leftover_free(&c.extra);
    if (!connected)
        return 1;
    if (!c.got_last && !c.failed)
        fprintf(stderr, "listend stream: connection closed (code %d) before the last result\n", c.close_code);
    return c.got_last && !c.failed ? 0 : 1;
}
