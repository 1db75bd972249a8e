/* Multichannel decode (audio.h, "multichannel"): each channel comes out alone,
 * at any rate and sample format, with nothing of the other channels in it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "test.h"

/* An in-memory PCM WAV: `ch` channels of s16 at `rate`, channel c a sine of
 * amplitude amp[c] (0 = digital silence) at 300 + 200·c Hz. */
static uint8_t *make_wav(int ch, int rate, double seconds, const double *amp, size_t *len)
{
    size_t frames = (size_t)(seconds * rate), data = frames * (size_t)ch * 2;
    uint8_t *w = calloc(1, 44 + data);
    uint32_t u32;
    uint16_t u16;
    memcpy(w, "RIFF", 4);
    u32 = (uint32_t)(36 + data), memcpy(w + 4, &u32, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    u32 = 16, memcpy(w + 16, &u32, 4);
    u16 = 1, memcpy(w + 20, &u16, 2);
    u16 = (uint16_t)ch, memcpy(w + 22, &u16, 2);
    u32 = (uint32_t)rate, memcpy(w + 24, &u32, 4);
    u32 = (uint32_t)(rate * ch * 2), memcpy(w + 28, &u32, 4);
    u16 = (uint16_t)(ch * 2), memcpy(w + 32, &u16, 2);
    u16 = 16, memcpy(w + 34, &u16, 2);
    memcpy(w + 36, "data", 4);
    u32 = (uint32_t)data, memcpy(w + 40, &u32, 4);
    int16_t *s = (int16_t *)(w + 44);
    for (size_t i = 0; i < frames; i++)
        for (int c = 0; c < ch; c++)
            s[i * (size_t)ch + (size_t)c] = (int16_t)(amp[c] * sin(2 * M_PI * (300 + 200 * c) * (double)i / rate));
    *len = 44 + data;
    return w;
}

static double rms(const ld_pcm *p)
{
    double e = 0;
    for (size_t i = 0; i < p->n; i++)
        e += (double)p->samples[i] * p->samples[i];
    return p->n ? sqrt(e / (double)p->n) : 0;
}

static void test_split(int rate)
{
    const double amp[4] = {8000, 0, 2000, 16000};
    size_t len, n = 0;
    uint8_t *w = make_wav(4, rate, 1.0, amp, &len);
    ld_pcm out[LD_MAX_CHANNELS];
    ld_error e = {0};
    CHECK(ld_audio_decode_mem_channels(w, len, NULL, out, LD_MAX_CHANNELS, &n, &e) == LD_OK);
    CHECK(n == 4);
    for (size_t c = 0; c < n; c++) {
        CHECK_NEAR(ld_pcm_seconds(&out[c]), 1.0, 0.02);
        CHECK(out[c].n == out[0].n);
        /* a sine's RMS is amp/√2: each channel keeps its own level (unit gain,
         * nothing mixed in); the silent one stays silent */
        double want = amp[c] / sqrt(2.0);
        if (rate > 8000) /* narrowband: zero insertion halves the energy per sample */
            CHECK(fabs(rms(&out[c]) - want) <= 0.05 * want + 2);
        else
            CHECK(fabs(rms(&out[c]) - want / sqrt(2.0)) <= 0.07 * want + 2);
        CHECK(out[c].narrowband == (rate <= 8000));
    }
    CHECK(rms(&out[1]) < 2);
    for (size_t c = 0; c < n; c++)
        ld_pcm_free(&out[c]);
    /* the same file without multichannel is one downmix */
    ld_pcm mix;
    CHECK(ld_audio_decode_mem(w, len, NULL, &mix, &e) == LD_OK);
    CHECK(rms(&mix) > 0);
    ld_pcm_free(&mix);
    free(w);
}

static void test_limits(void)
{
    double amp[10];
    for (int c = 0; c < 10; c++)
        amp[c] = 1000;
    size_t len, n = 7;
    uint8_t *w = make_wav(10, 16000, 0.5, amp, &len);
    ld_pcm out[LD_MAX_CHANNELS];
    ld_error e = {0};
    CHECK(ld_audio_decode_mem_channels(w, len, NULL, out, LD_MAX_CHANNELS, &n, &e) == LD_ERR_INVALID_PARAMETER);
    CHECK(n == 0 && strstr(e.msg, "10 channels") && strstr(e.msg, "8"));
    for (int c = 0; c < LD_MAX_CHANNELS; c++)
        CHECK(out[c].samples == NULL);
    free(w);
    /* a mono file is one channel */
    w = make_wav(1, 16000, 0.5, amp, &len);
    CHECK(ld_audio_decode_mem_channels(w, len, NULL, out, 2, &n, &e) == LD_OK && n == 1);
    ld_pcm_free(&out[0]);
    free(w);
    /* too long is checked per channel, like mono */
    w = make_wav(2, 16000, 2.0, amp, &len);
    ld_decode_opts o = {.max_seconds = 1.0};
    CHECK(ld_audio_decode_mem_channels(w, len, &o, out, 2, &n, &e) == LD_ERR_AUDIO_TOO_LONG);
    o.max_seconds = 3.0;
    CHECK(ld_audio_decode_mem_channels(w, len, &o, out, 2, &n, &e) == LD_OK && n == 2);
    ld_pcm_free(&out[0]);
    ld_pcm_free(&out[1]);
    free(w);
}

static void test_raw(void)
{
    /* interleaved s16le at 16 kHz: exact de-interleave; an incomplete last frame is dropped */
    enum { FRAMES = 1600, CH = 3 };
    uint8_t raw[FRAMES * CH * 2 + 3];
    for (int i = 0; i < FRAMES; i++)
        for (int c = 0; c < CH; c++) {
            int16_t v = (int16_t)(c * 1000 + i % 500 - 250);
            raw[(i * CH + c) * 2] = (uint8_t)(v & 0xff);
            raw[(i * CH + c) * 2 + 1] = (uint8_t)((uint16_t)v >> 8);
        }
    memset(raw + FRAMES * CH * 2, 0x7f, 3);
    ld_pcm out[LD_MAX_CHANNELS];
    ld_error e = {0};
    CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, LD_STREAM_LINEAR16, 16000, CH, out, &e) == LD_OK);
    for (int c = 0; c < CH; c++) {
        CHECK(out[c].n == FRAMES);
        bool same = true;
        for (int i = 0; i < FRAMES && out[c].samples; i++)
            same &= out[c].samples[i] == (int16_t)(c * 1000 + i % 500 - 250);
        CHECK(same);
        ld_pcm_free(&out[c]);
    }
    /* other rates are resampled per channel */
    CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, LD_STREAM_LINEAR16, 8000, CH, out, &e) == LD_OK);
    CHECK_NEAR((double)out[2].n, 2.0 * FRAMES, 64);
    for (int c = 0; c < CH; c++)
        ld_pcm_free(&out[c]);
    CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, LD_STREAM_LINEAR16, 16000, 9, out, &e) ==
          LD_ERR_INVALID_PARAMETER);
    CHECK(ld_audio_decode_raw_channels(raw, 5, LD_STREAM_LINEAR16, 16000, 3, out, &e) == LD_ERR_INVALID_AUDIO);
    CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, LD_STREAM_OPUS, 16000, 1, out, &e) ==
          LD_ERR_INVALID_PARAMETER);
}

/* Headerless G.711 (a SIP trunk's or a PBX's recording): one byte a sample,
 * channels interleaved, decoded exactly as the stream decoder does, and
 * telephone band at any rate. */
static void test_raw_g711(void)
{
    enum { FRAMES = 1600, CH = 2 };
    uint8_t raw[FRAMES * CH + 1];
    for (int i = 0; i < FRAMES * CH; i++)
        raw[i] = (uint8_t)(i * 7 + i / CH);
    raw[FRAMES * CH] = 0x55; /* an incomplete frame: dropped */
    ld_pcm out[LD_MAX_CHANNELS];
    ld_error e = {0};
    for (int a = 0; a < 2; a++) {
        ld_stream_encoding enc = a ? LD_STREAM_ALAW : LD_STREAM_MULAW;
        CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, enc, 16000, CH, out, &e) == LD_OK);
        for (int c = 0; c < CH; c++) {
            bool same = out[c].n == FRAMES && out[c].narrowband;
            for (int i = 0; same && i < FRAMES; i++) {
                uint8_t b = raw[i * CH + c];
                same = out[c].samples[i] == (a ? ld_audio_alaw_decode(b) : ld_audio_mulaw_decode(b));
            }
            CHECK(same);
            ld_pcm_free(&out[c]);
        }
        /* at its usual 8 kHz: upsampled like any 8 kHz input */
        CHECK(ld_audio_decode_raw_channels(raw, FRAMES, enc, 8000, 1, out, &e) == LD_OK && out[0].narrowband);
        CHECK_NEAR((double)out[0].n, 2.0 * FRAMES, 64);
        ld_pcm_free(&out[0]);
    }
}

/* Headerless linear32 (float) with channels: each channel's samples as the stream decoder gives them. */
static void test_raw_linear32(void)
{
    enum { FRAMES = 1600, CH = 2 };
    uint8_t raw[FRAMES * CH * 4];
    for (int i = 0; i < FRAMES * CH; i++) {
        float f = (float)((i * 13) % 200 - 100) / 100.0f;
        uint32_t b;
        memcpy(&b, &f, sizeof b);
        for (int k = 0; k < 4; k++)
            raw[4 * i + k] = (uint8_t)(b >> (8 * k));
    }
    ld_pcm out[LD_MAX_CHANNELS];
    ld_error e = {0};
    CHECK(ld_audio_decode_raw_channels(raw, sizeof raw, LD_STREAM_LINEAR32, 16000, CH, out, &e) == LD_OK);
    for (int c = 0; c < CH; c++) {
        bool same = out[c].n == FRAMES && !out[c].narrowband;
        for (int i = 0; same && i < FRAMES; i++)
            same = out[c].samples[i] == ld_audio_pcm_sample(LD_STREAM_LINEAR32, raw + 4 * (i * CH + c));
        CHECK(same);
        ld_pcm_free(&out[c]);
    }
}

static void test_raw_names(void)
{
    ld_stream_encoding enc;
    int rate;
    CHECK(ld_audio_raw_by_name("goforward.raw", &enc, &rate) && enc == LD_STREAM_LINEAR16 && rate == 16000);
    CHECK(ld_audio_raw_by_name("CALL.UL", &enc, &rate) && enc == LD_STREAM_MULAW && rate == 8000);
    CHECK(ld_audio_raw_by_name("call.alaw", &enc, &rate) && enc == LD_STREAM_ALAW && rate == 8000);
    CHECK(!ld_audio_raw_by_name("call.wav", &enc, &rate) && !ld_audio_raw_by_name(".ul", &enc, &rate));
}

int main(void)
{
    test_raw_g711();
    test_raw_names();
    test_raw_linear32();
    test_split(16000);
    test_split(44100);
    test_split(48000);
    test_split(8000);
    test_limits();
    test_raw();
    TEST_MAIN_END();
}
