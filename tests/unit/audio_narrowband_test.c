/* Telephone band: zero insertion, and which decoded inputs are flagged
 * narrowband (G.711 at any rate, anything at <= 8 kHz) — the flag that makes
 * `model=auto` pick the telephony pack. */
#include <stdint.h>
#include <stdlib.h>

#include "audio/audio.h"
#include "audio/narrowband.h"
#include "test.h"

/* A minimal WAV: format tag 1 (PCM s16) or 7 (mu-law), mono. */
static uint8_t *wav(int tag, int rate, int bits, const uint8_t *data, uint32_t len, size_t *out_len)
{
    uint8_t *b = malloc(44 + len);
    uint32_t byte_rate = (uint32_t)rate * (uint32_t)bits / 8;
    uint8_t h[44] = {'R',
                     'I',
                     'F',
                     'F',
                     0,
                     0,
                     0,
                     0,
                     'W',
                     'A',
                     'V',
                     'E',
                     'f',
                     'm',
                     't',
                     ' ',
                     16,
                     0,
                     0,
                     0,
                     (uint8_t)tag,
                     0,
                     1,
                     0,
                     (uint8_t)rate,
                     (uint8_t)(rate >> 8),
                     0,
                     0,
                     (uint8_t)byte_rate,
                     (uint8_t)(byte_rate >> 8),
                     (uint8_t)(byte_rate >> 16),
                     0,
                     (uint8_t)(bits / 8),
                     0,
                     (uint8_t)bits,
                     0,
                     'd',
                     'a',
                     't',
                     'a'};
    uint32_t riff = 36 + len;
    for (int i = 0; i < 4; i++) {
        h[4 + i] = (uint8_t)(riff >> (8 * i));
        h[40 + i] = (uint8_t)(len >> (8 * i));
    }
    memcpy(b, h, 44);
    memcpy(b + 44, data, len);
    *out_len = 44 + len;
    return b;
}

static void test_zero_insert(void)
{
    int16_t buf[8] = {1, -2, 3, 4};
    ld_audio_zero_insert(buf, 4);
    int16_t want[8] = {1, 0, -2, 0, 3, 0, 4, 0};
    CHECK(!memcmp(buf, want, sizeof want));
}

static void test_flags(void)
{
    enum { N = 8000 };
    static uint8_t data[2 * N];
    for (int i = 0; i < N; i++) { /* 300 Hz tone, mu-law bytes or s16le */
        int16_t v = (int16_t)(6000 * sin(2 * M_PI * 300 * i / 8000.0));
        data[i] = (uint8_t)(0x80 ^ (i & 0x7f)); /* any byte is valid mu-law */
        data[N + 2 * (i / 2)] = (uint8_t)v, data[N + 2 * (i / 2) + 1] = (uint8_t)(v >> 8);
    }
    struct {
        int tag, rate, bits;
        uint32_t len;
        bool narrow;
        size_t samples; /* at 16 kHz */
    } cases[] = {
        {7, 8000, 8, N, true, 2 * N},    /* G.711 mu-law, 8 kHz: 1 s */
        {7, 16000, 8, N, true, N},       /* mu-law at 16 kHz is still G.711 */
        {1, 8000, 16, N, true, N},       /* linear PCM at 8 kHz: 0.5 s */
        {1, 16000, 16, N, false, N / 2}, /* wideband */
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        size_t len;
        const uint8_t *src = cases[c].bits == 8 ? data : data + N;
        uint8_t *w = wav(cases[c].tag, cases[c].rate, cases[c].bits, src, cases[c].len, &len);
        ld_pcm p;
        ld_error err;
        ld_decode_opts o = {0};
        CHECK(ld_audio_decode_mem(w, len, &o, &p, &err) == LD_OK);
        CHECK(p.narrowband == cases[c].narrow);
        if (p.n < cases[c].samples - 64 || p.n > cases[c].samples + 64)
            fprintf(stderr, "case %zu: %zu samples, want %zu\n", c, p.n, cases[c].samples);
        CHECK(p.n + 64 >= cases[c].samples && p.n <= cases[c].samples + 64);
        if (cases[c].narrow && cases[c].rate == 8000) { /* every other sample is the inserted zero */
            size_t zeros = 0;
            for (size_t i = 1; i < p.n; i += 2)
                zeros += p.samples[i] == 0;
            CHECK(zeros == p.n / 2);
        }
        ld_pcm_free(&p);
        free(w);
    }
    /* headerless linear16 at 8 kHz (encoding=linear16&sample_rate=8000) */
    ld_pcm p;
    ld_error err;
    CHECK(ld_audio_decode_raw_channels(data + N, N, LD_STREAM_LINEAR16, 8000, 1, &p, &err) == LD_OK &&
          p.narrowband && p.n >= N - 64);
    ld_pcm_free(&p);
    CHECK(ld_audio_decode_raw_channels(data + N, N, LD_STREAM_LINEAR16, 16000, 1, &p, &err) == LD_OK &&
          !p.narrowband);
    ld_pcm_free(&p);
}

/* SNR estimate: speech-like bursts with quiet pauses vs the same with steady noise. */
static void test_snr(void)
{
    enum { N = 3 * 16000 };
    static int16_t clean[N], noisy[N];
    unsigned r = 1;
    for (int i = 0; i < N; i++) {
        bool burst = (i / 4000) % 2 == 0; /* 0.25 s on, 0.25 s off */
        int16_t v = burst ? (int16_t)(8000 * sin(2 * M_PI * 220 * i / 16000.0)) : 0;
        r = r * 1103515245u + 12345u;
        int n = (int)((r >> 16) % 801) - 400; /* white noise, RMS ≈ 231: ≈ 28 dB below the tone */
        clean[i] = (int16_t)(v + (burst ? 0 : n / 100));
        noisy[i] = (int16_t)(v + n);
    }
    double c = ld_audio_snr_db(clean, N, NULL), n = ld_audio_snr_db(noisy, N, NULL);
    fprintf(stderr, "snr: clean %.1f dB, noisy %.1f dB\n", c, n);
    CHECK(c > 45 && n > 20 && n < 35);
    CHECK(ld_audio_snr_db(clean, 100, NULL) == 99.0); /* too short to tell */
    /* a DC offset is not noise (it read as a 36 dB lower SNR and sent clean uploads to the denoiser) */
    static int16_t shifted[N];
    for (int i = 0; i < N; i++)
        shifted[i] = (int16_t)(clean[i] + 1500);
    double floor_clean, floor_shifted;
    CHECK(fabs(ld_audio_snr_db(shifted, N, &floor_shifted) - ld_audio_snr_db(clean, N, &floor_clean)) < 0.01);
    CHECK(fabs(floor_shifted - floor_clean) < 0.01);
    ld_audio_snr_meter ms = {0}; /* a stream follows the offset (≈ 1 s): the same estimate once it has */
    for (int k = 0; k < 4; k++)
        ld_audio_snr_meter_push(&ms, shifted, N);
    double ms_floor, ms_db = ld_audio_snr_meter_db(&ms, &ms_floor);
    fprintf(stderr, "snr meter with DC: %.1f dB, noise %.1f dBFS (batch %.1f, %.1f)\n", ms_db, ms_floor, c,
            floor_clean);
    /* (the followed offset wanders by ~2 LSB on the tone: visible only at this −85 dBFS floor) */
    CHECK(ms_db > 45 && fabs(ms_floor - floor_clean) < 8);
    /* nor is digital silence: 30 s of zeros and then the same 3 s read as the 3 s */
    size_t lead = 30 * 16000;
    int16_t *late = calloc(lead + N, sizeof *late);
    if (late) {
        memcpy(late + lead, clean, sizeof clean);
        CHECK(ld_audio_lead_silence(late, lead + N) >= lead);
        double whole = ld_audio_snr_db(late, lead + N, NULL);
        fprintf(stderr, "snr after 30 s of digital silence: %.1f dB (clean %.1f)\n", whole, c);
        CHECK(whole > 45);                                /* the loud percentile is taken over frames with sound */
        CHECK(ld_audio_snr_db(late, lead, NULL) == 99.0); /* nothing but zeros: nothing to tell */
        free(late);
    }

    /* a stream's meter: the same noise level in any pieces */
    const int16_t *sig[2] = {clean, noisy};
    for (int k = 0; k < 2; k++) {
        ld_audio_snr_meter m = {0};
        double floor_db, batch_floor;
        ld_audio_snr_meter_push(&m, sig[k], 100);
        CHECK(ld_audio_snr_meter_db(&m, &floor_db) == 99.0 && floor_db < -90); /* too short to tell */
        for (size_t at = 100; at < N; at += 777)
            ld_audio_snr_meter_push(&m, sig[k] + at, N - at < 777 ? N - at : 777);
        double db = ld_audio_snr_meter_db(&m, &floor_db), batch = ld_audio_snr_db(sig[k], N, &batch_floor);
        fprintf(stderr, "snr meter: %.2f dB (batch %.2f), noise %.2f dBFS (batch %.2f)\n", db, batch, floor_db,
                batch_floor);
        CHECK(fabs(floor_db - batch_floor) < 1e-3);
        CHECK(fabs(db - batch) < 0.5); /* a steady signal: its last second is like the whole */
        CHECK(k ? db < 35 : db > 45);  /* it tells noise from clean */
    }
}

int main(void)
{
    test_snr();
    test_zero_insert();
    test_flags();
    TEST_MAIN_END();
}
