/* Stream converter: G.711 against FFmpeg's own decoders, linear16 byte carry,
 * resampling lengths, Ogg and WebM Opus through the incremental demuxers, the
 * first-message container sniff, and garbage. */
#include "audio/stream.h"
#include "test.h"

#include <libavcodec/avcodec.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define GOFORWARD "/usr/share/pocketsphinx/test/data/goforward.raw"

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void check_g711_against_ffmpeg(enum AVCodecID id, int16_t (*mine)(uint8_t))
{
    const AVCodec *c = avcodec_find_decoder(id);
    AVCodecContext *ctx = avcodec_alloc_context3(c);
    ctx->sample_rate = 8000;
    av_channel_layout_default(&ctx->ch_layout, 1);
    CHECK(avcodec_open2(ctx, c, NULL) == 0);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    av_new_packet(pkt, 256);
    for (int i = 0; i < 256; i++)
        pkt->data[i] = (uint8_t)i;
    CHECK(avcodec_send_packet(ctx, pkt) == 0);
    CHECK(avcodec_receive_frame(ctx, fr) == 0);
    CHECK(fr->nb_samples == 256);
    int mismatches = 0;
    for (int i = 0; i < 256 && fr->nb_samples == 256; i++)
        if (((int16_t *)fr->data[0])[i] != mine((uint8_t)i))
            mismatches++;
    CHECK(mismatches == 0);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
}

static size_t push_all(ld_audio_stream *s, const uint8_t *d, size_t len, size_t chunk, int16_t *dst, size_t cap)
{
    size_t total = 0;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        const int16_t *o;
        size_t got;
        ld_error err;
        if (ld_audio_stream_push(s, d + off, n, &o, &got, &err) != LD_OK) {
            fprintf(stderr, "push failed: %s\n", err.msg);
            return (size_t)-1;
        }
        for (size_t i = 0; i < got && total < cap; i++)
            dst[total++] = o[i];
    }
    const int16_t *o;
    size_t got;
    ld_error err;
    if (ld_audio_stream_flush(s, &o, &got, &err) == LD_OK)
        for (size_t i = 0; i < got && total < cap; i++)
            dst[total++] = o[i];
    return total;
}

static void test_linear16_carry(void)
{
    uint8_t bytes[2001];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    ld_error err;
    ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_LINEAR16, 16000, &err);
    CHECK(s != NULL);
    int16_t out[1200];
    size_t n = push_all(s, bytes, sizeof bytes, 7, out, 1200); /* odd chunk: every other chunk splits a sample */
    CHECK(n == 1000);
    int bad = 0;
    for (size_t i = 0; i < n && i < 1000; i++)
        if (out[i] != (int16_t)(uint16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8))
            bad++;
    CHECK(bad == 0);
    ld_audio_stream_free(s);
}

/* linear32 = little-endian float (Deepgram's meaning): full scale is 32767,
 * beyond +-1 clamps, NaN is silence, and a chunk may cut a sample anywhere. */
static void put_f32(uint8_t *p, float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    p[0] = (uint8_t)b, p[1] = (uint8_t)(b >> 8), p[2] = (uint8_t)(b >> 16), p[3] = (uint8_t)(b >> 24);
}

static void test_linear32(void)
{
    uint8_t one[4];
    const float cases[][2] = {{0.0f, 0},     {1.0f, 32767}, {-1.0f, -32767},
                              {0.5f, 16384}, {3.0f, 32767}, {-7.0f, -32767}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        put_f32(one, cases[i][0]);
        CHECK(ld_audio_pcm_sample(LD_STREAM_LINEAR32, one) == (int16_t)cases[i][1]);
    }
    put_f32(one, NAN);
    CHECK(ld_audio_pcm_sample(LD_STREAM_LINEAR32, one) == 0);
    CHECK(ld_audio_stream_sample_bytes(LD_STREAM_LINEAR32) == 4 &&
          ld_audio_stream_sample_bytes(LD_STREAM_OPUS) == 0);
    enum { N = 1000 };
    uint8_t bytes[4 * N + 3];
    for (size_t i = 0; i < N; i++)
        put_f32(bytes + 4 * i, (float)((int)(i * 37 % 2001) - 1000) / 1000.0f);
    memset(bytes + 4 * N, 0x7f, 3); /* an incomplete last sample: never emitted */
    ld_error err;
    ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_LINEAR32, 16000, &err);
    CHECK(s != NULL);
    int16_t out[N + 10];
    size_t n = push_all(s, bytes, sizeof bytes, 7, out, N + 10); /* 7-byte chunks cut most samples */
    CHECK(n == N);
    int bad = 0;
    for (size_t i = 0; i < n && i < N; i++)
        bad += out[i] != ld_audio_pcm_sample(LD_STREAM_LINEAR32, bytes + 4 * i);
    CHECK(bad == 0);
    ld_audio_stream_free(s);
    ld_stream_encoding e;
    CHECK(ld_audio_stream_encoding_parse("LINEAR32", &e) == 0 && e == LD_STREAM_LINEAR32);
    CHECK(ld_audio_stream_encoding_parse("pcm_f32le", &e) == 0 && e == LD_STREAM_LINEAR32);
    CHECK_STR(ld_audio_stream_encoding_name(LD_STREAM_LINEAR32), "linear32");
}

static void test_resample_lengths(void)
{
    static const int rates[] = {8000, 22050, 44100, 48000};
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        int rate = rates[r];
        size_t ns = (size_t)rate; /* one second of a 440 Hz tone */
        uint8_t *b = malloc(ns * 2);
        for (size_t i = 0; i < ns; i++) {
            int16_t v = (int16_t)(8000 * sin(2 * M_PI * 440 * (double)i / rate));
            b[2 * i] = (uint8_t)(v & 0xff);
            b[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
        }
        ld_error err;
        ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_LINEAR16, rate, &err);
        CHECK(s != NULL);
        int16_t *out = malloc(20000 * sizeof *out);
        size_t n = push_all(s, b, ns * 2, 3201, out, 20000);
        CHECK(n >= 15990 && n <= 16010);
        double e = 0;
        for (size_t i = 4000; i < 12000 && i < n; i++)
            e += (double)out[i] * out[i];
        /* the tone survives (RMS of 8000 sine ≈ 5657); 8 kHz is zero-inserted
         * (audio/narrowband.h): half the samples are 0, so RMS / sqrt(2) */
        CHECK(sqrt(e / 8000) > (rate == 8000 ? 2800 : 4000));
        CHECK(ld_audio_stream_narrowband(s) == (rate == 8000));
        free(out);
        free(b);
        ld_audio_stream_free(s);
    }
}

static void test_g711_stream(void)
{
    uint8_t ulaw[800];
    for (size_t i = 0; i < sizeof ulaw; i++)
        ulaw[i] = (uint8_t)i;
    ld_error err;
    ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_MULAW, 8000, &err);
    int16_t out[2000];
    size_t n = push_all(s, ulaw, sizeof ulaw, 160, out, 2000);
    CHECK(n >= 1590 && n <= 1610); /* 100 ms at 8 kHz -> 100 ms at 16 kHz */
    ld_audio_stream_free(s);
    s = ld_audio_stream_new(LD_STREAM_ALAW, 16000, &err);
    const int16_t *o;
    CHECK(ld_audio_stream_push(s, ulaw, 4, &o, &n, &err) == LD_OK);
    CHECK(n == 4 && o[0] == ld_audio_alaw_decode(0) && o[3] == ld_audio_alaw_decode(3));
    ld_audio_stream_free(s);
}

static void test_params(void)
{
    ld_error err;
    CHECK(ld_audio_stream_new(LD_STREAM_LINEAR16, 7999, &err) == NULL && err.code == LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_stream_new(LD_STREAM_MULAW, 48001, &err) == NULL && err.code == LD_ERR_INVALID_PARAMETER);
    ld_stream_encoding e;
    CHECK(ld_audio_stream_encoding_parse("linear16", &e) == 0 && e == LD_STREAM_LINEAR16);
    CHECK(ld_audio_stream_encoding_parse("ogg_opus", &e) == 0 && e == LD_STREAM_OGG_OPUS);
    CHECK(ld_audio_stream_encoding_parse("mp3", &e) == -1);
    CHECK(ld_audio_stream_encoding_parse(NULL, &e) == -1);
    CHECK_STR(ld_audio_stream_encoding_name(LD_STREAM_ALAW), "alaw");
}

typedef struct {
    uint8_t *pkts[2000];
    size_t lens[2000];
    size_t n;
} packets;

static ld_err collect(void *ud, const uint8_t *p, size_t len, ld_error *err)
{
    (void)err;
    packets *ps = ud;
    if (ps->n < 2000) {
        ps->pkts[ps->n] = malloc(len ? len : 1);
        memcpy(ps->pkts[ps->n], p, len);
        ps->lens[ps->n++] = len;
    }
    return LD_OK;
}

static void test_ogg_opus(void)
{
    char dir[] = "/tmp/ld_stream_testXXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/a.opus", dir);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -loglevel error -f s16le -ar 16000 -ac 1 -i " GOFORWARD " -c:a libopus -b:a 32k %s",
             path);
    if (system(cmd) != 0) {
        fprintf(stderr, "ffmpeg CLI missing: cannot build the Opus fixture\n");
        CHECK(0);
        return;
    }
    size_t len = 0;
    uint8_t *ogg = read_all(path, &len);
    CHECK(ogg != NULL && len > 1000);
    if (!ogg)
        return;
    ld_error err;
    ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_OGG_OPUS, 16000, &err);
    int16_t *out = malloc(100000 * sizeof *out);
    size_t n = push_all(s, ogg, len, 333, out, 100000); /* pages split at odd places */
    /* goforward.raw is 44,580 samples; Opus adds pre-skip/padding of a few ms. */
    CHECK(n > 44000 && n < 45500);
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += (double)out[i] * out[i];
    CHECK(n && sqrt(e / (double)n) > 200); /* speech, not silence */
    ld_audio_stream_free(s);

    /* The same packets one per push as raw Opus. */
    packets ps = {0};
    ld_ogg_reader *r = ld_audio_ogg_new();
    CHECK(ld_audio_ogg_push(r, ogg, len, collect, &ps, &err) == LD_OK);
    ld_audio_ogg_free(r);
    CHECK(ps.n > 100);
    CHECK(ps.n > 2 && !memcmp(ps.pkts[0], "OpusHead", 8) && !memcmp(ps.pkts[1], "OpusTags", 8));
    s = ld_audio_stream_new(LD_STREAM_OPUS, 0, &err);
    CHECK(s != NULL);
    size_t total = 0;
    for (size_t i = 2; i < ps.n; i++) {
        const int16_t *o;
        size_t got;
        CHECK(ld_audio_stream_push(s, ps.pkts[i], ps.lens[i], &o, &got, &err) == LD_OK);
        total += got;
    }
    CHECK(total > 44000 && total < 45500);
    ld_audio_stream_free(s);
    for (size_t i = 0; i < ps.n; i++)
        free(ps.pkts[i]);

    /* A flipped byte inside a page fails the CRC. */
    ogg[len / 2] ^= 0x5a;
    s = ld_audio_stream_new(LD_STREAM_OGG_OPUS, 16000, &err);
    CHECK(push_all(s, ogg, len, 4096, out, 100000) == (size_t)-1);
    const int16_t *o;
    CHECK(ld_audio_stream_push(s, ogg, 10, &o, &n, &err) == LD_ERR_INVALID_AUDIO); /* stays failed */
    ld_audio_stream_free(s);
    free(out);
    free(ogg);
    unlink(path);
    rmdir(dir);
}

/* goforward.raw rendered by the ffmpeg CLI with `args` into dir/name; NULL when it cannot run. */
static uint8_t *render(const char *dir, const char *name, const char *args, size_t *len)
{
    char path[160], cmd[640];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -loglevel error -y -f s16le -ar 16000 -ac 1 -i " GOFORWARD " %s %s",
             args, path);
    if (system(cmd) != 0) {
        fprintf(stderr, "ffmpeg CLI missing: cannot build the %s fixture\n", name);
        return NULL;
    }
    uint8_t *b = read_all(path, len);
    unlink(path);
    return b;
}

/* WebM Opus as MediaRecorder sends it (a live file: unknown sizes) and as a file, cut anywhere. */
static void test_webm_opus(void)
{
    char dir[] = "/tmp/ld_stream_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static const char *const args[] = {"-c:a libopus -b:a 32k -f webm -live 1 -cluster_time_limit 200",
                                       "-c:a libopus -b:a 32k -f webm"};
    int16_t *out = malloc(100000 * sizeof *out);
    for (size_t k = 0; k < 2; k++) {
        size_t len = 0;
        uint8_t *webm = render(dir, "a.webm", args[k], &len);
        CHECK(webm && len > 1000);
        if (!webm)
            continue;
        bool found;
        ld_stream_encoding enc;
        int rate = 16000;
        size_t skip;
        ld_error err;
        CHECK(ld_audio_stream_sniff(webm, len, &enc, &rate, &skip, &found, &err) == LD_OK && found &&
              enc == LD_STREAM_WEBM_OPUS && !skip);
        static const size_t chunks[] = {1, 7, 333, 1 << 20};
        for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
            ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_WEBM_OPUS, 16000, &err);
            size_t n = push_all(s, webm, len, chunks[c], out, 100000);
            CHECK(n > 44000 && n < 45500); /* as the Ogg file: 44,580 samples and Opus's padding */
            double e = 0;
            for (size_t i = 0; i < n && n != (size_t)-1; i++)
                e += (double)out[i] * out[i];
            CHECK(n && sqrt(e / (double)n) > 200);
            ld_audio_stream_free(s);
        }
        webm[len / 2] = 0; /* garbage in a block or a header: an error or audio, never a crash */
        ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_WEBM_OPUS, 16000, &err);
        push_all(s, webm, len, 4096, out, 100000);
        ld_audio_stream_free(s);
        free(webm);
    }
    free(out);
    rmdir(dir);
}

/* The first message of a stream with no encoding: WAV headers (ffmpeg's carry a LIST chunk), Ogg, raw. */
static void test_sniff(void)
{
    char dir[] = "/tmp/ld_stream_testXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static const struct {
        const char *args;
        ld_stream_encoding enc;
        int rate;
    } wavs[] = {{"-c:a pcm_s16le", LD_STREAM_LINEAR16, 16000},
                {"-ar 8000 -c:a pcm_mulaw", LD_STREAM_MULAW, 8000},
                {"-ar 8000 -c:a pcm_alaw", LD_STREAM_ALAW, 8000},
                {"-ar 44100 -c:a pcm_f32le", LD_STREAM_LINEAR32, 44100}};
    ld_stream_encoding enc;
    int rate;
    size_t skip, len;
    bool found;
    ld_error err;
    for (size_t i = 0; i < sizeof wavs / sizeof *wavs; i++) {
        uint8_t *w = render(dir, "a.wav", wavs[i].args, &len);
        CHECK(w != NULL);
        if (!w)
            continue;
        CHECK(ld_audio_stream_sniff(w, len, &enc, &rate, &skip, &found, &err) == LD_OK && found);
        CHECK(enc == wavs[i].enc && rate == wavs[i].rate && skip >= 44 && skip < 200 &&
              !memcmp(w + skip - 8, "data", 4));
        CHECK(ld_audio_stream_sniff(w, skip - 1, &enc, &rate, &skip, &found, &err) == LD_ERR_INVALID_AUDIO);
        free(w);
    }
    uint8_t *w = render(dir, "b.wav", "-ac 2 -c:a pcm_s16le", &len);
    CHECK(w && ld_audio_stream_sniff(w, len, &enc, &rate, &skip, &found, &err) == LD_ERR_INVALID_AUDIO &&
          strstr(err.msg, "2 channels"));
    free(w);
    static const char *const refused[] = {"ID3\x04\0\0\0\0\0\0", "fLaC\0\0\0\0\0\0", "\0\0\0 ftypM4A "};
    for (size_t i = 0; i < 3; i++)
        CHECK(ld_audio_stream_sniff((const uint8_t *)refused[i], 10, &enc, &rate, &skip, &found, &err) ==
                  LD_ERR_INVALID_AUDIO &&
              strstr(err.msg, "cannot be streamed live"));
    CHECK(ld_audio_stream_sniff((const uint8_t *)"OggS\0\2", 6, &enc, &rate, &skip, &found, &err) == LD_OK &&
          found && enc == LD_STREAM_OGG_OPUS);
    const uint8_t raw[6] = {1, 0, 255, 255, 3, 0};
    CHECK(ld_audio_stream_sniff(raw, 6, &enc, &rate, &skip, &found, &err) == LD_OK && !found);
    CHECK(ld_audio_stream_sniff(raw, 0, &enc, &rate, &skip, &found, &err) == LD_OK && !found);
    rmdir(dir);
}

static void test_garbage(void)
{
    ld_error err;
    ld_audio_stream *s = ld_audio_stream_new(LD_STREAM_OGG_OPUS, 16000, &err);
    const int16_t *o;
    size_t n;
    CHECK(ld_audio_stream_push(s, (const uint8_t *)"RIFF....WAVEfmt ", 16, &o, &n, &err) == LD_ERR_INVALID_AUDIO);
    ld_audio_stream_free(s);
    /* A partial capture pattern waits for more bytes; a wrong one fails. */
    s = ld_audio_stream_new(LD_STREAM_OGG_OPUS, 16000, &err);
    CHECK(ld_audio_stream_push(s, (const uint8_t *)"Og", 2, &o, &n, &err) == LD_OK && n == 0);
    CHECK(ld_audio_stream_push(s, (const uint8_t *)"xS", 2, &o, &n, &err) == LD_ERR_INVALID_AUDIO);
    ld_audio_stream_free(s);
    /* Random bytes as raw Opus: an error or some samples, never a crash. */
    s = ld_audio_stream_new(LD_STREAM_OPUS, 0, &err);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    ld_err e = ld_audio_stream_push(s, junk, sizeof junk, &o, &n, &err);
    CHECK(e == LD_OK || e == LD_ERR_INVALID_AUDIO);
    ld_audio_stream_free(s);
}

int main(void)
{
    test_linear32();
    av_log_set_level(AV_LOG_ERROR);
    CHECK(ld_audio_mulaw_decode(0xff) == 0);
    CHECK(ld_audio_mulaw_decode(0x00) == -32124);
    CHECK(ld_audio_alaw_decode(0xd5) == 8);
    check_g711_against_ffmpeg(AV_CODEC_ID_PCM_MULAW, ld_audio_mulaw_decode);
    check_g711_against_ffmpeg(AV_CODEC_ID_PCM_ALAW, ld_audio_alaw_decode);
    test_params();
    test_linear16_carry();
    test_resample_lengths();
    test_g711_stream();
    test_ogg_opus();
    test_webm_opus();
    test_sniff();
    test_garbage();
    TEST_MAIN_END();
}
