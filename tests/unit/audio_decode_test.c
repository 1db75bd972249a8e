/* Decoding: every allow-listed format of the same clip decodes to the same
 * duration at 16 kHz; bad inputs get their documented error. */
#include <stdint.h>

#include "audio/audio.h"
#include "audio_fixture.h"
#include "test.h"

static double ref_seconds;

static ld_err decode(const char *name, double max_s, ld_pcm *pcm, ld_error *err)
{
    ld_decode_opts o = {.max_seconds = max_s, .tmp_dir = fx_dir};
    memset(err, 0, sizeof *err);
    return ld_audio_decode_file(fx_path(name), &o, pcm, err);
}

static void expect_duration(const char *name, double tol)
{
    ld_pcm p;
    ld_error err;
    ld_err e = decode(name, 0, &p, &err);
    if (e)
        fprintf(stderr, "%s: %s (%s)\n", name, ld_err_code(e), err.msg);
    CHECK(e == LD_OK);
    if (e)
        return;
    double d = ld_pcm_seconds(&p);
    if (fabs(d - ref_seconds) > tol)
        fprintf(stderr, "%s: %.3f s, want %.3f s\n", name, d, ref_seconds);
    CHECK_NEAR(d, ref_seconds, tol);
    /* Real audio, not silence: the decode kept the signal. */
    double energy = 0;
    for (size_t i = 0; i < p.n; i++)
        energy += (double)p.samples[i] * p.samples[i];
    CHECK(p.n && sqrt(energy / (double)p.n) > 100);
    ld_pcm_free(&p);
}

static void expect_error(const char *name, ld_err want, const char *msg_part)
{
    ld_pcm p = {0};
    ld_error err;
    ld_err e = decode(name, 0, &p, &err);
    if (e != want || (msg_part && !strstr(err.msg, msg_part)))
        fprintf(stderr, "%s: got %s \"%s\", want %s \"%s\"\n", name, ld_err_code(e), err.msg, ld_err_code(want),
                msg_part ? msg_part : "");
    CHECK(e == want);
    CHECK(!msg_part || strstr(err.msg, msg_part));
    CHECK(p.samples == NULL && p.n == 0);
    ld_pcm_free(&p);
}

static void test_formats(void)
{
    ld_pcm p;
    ld_error err;
    CHECK(fx_ffmpeg("-i " CLIP " -c:a pcm_s16le ref.wav") == 0);
    CHECK(decode("ref.wav", 0, &p, &err) == LD_OK);
    ref_seconds = ld_pcm_seconds(&p);
    CHECK_NEAR(ref_seconds, 2.99, 0.01);
    ld_pcm_free(&p);

    static const struct {
        const char *name, *args;
        double tol;
    } f[] = {
        {"a8k.wav", "-ar 8000", 0.05},
        {"a44.wav", "-ar 44100 -ac 2", 0.05},
        {"a48.wav", "-ar 48000 -ac 2 -c:a pcm_s24le", 0.05},
        {"f32.wav", "-ar 22050 -c:a pcm_f32le", 0.05},
        {"a.mp3", "-ar 44100 -ac 2 -c:a libmp3lame -b:a 64k", 0.05},
        {"a.flac", "-ar 48000 -c:a flac", 0.05},
        {"vorbis.ogg", "-ar 44100 -c:a libvorbis", 0.05},
        {"opus.ogg", "-c:a libopus -b:a 24k", 0.05},
        {"a.m4a", "-ar 44100 -c:a aac -b:a 64k", 0.05},
        {"a.webm", "-ar 48000 -c:a libopus -b:a 24k", 0.05},
        {"vorbis.webm", "-ar 44100 -c:a libvorbis", 0.05},
        {"a.mkv", "-c:a flac", 0.05},
        /* Raw ADTS has no priming/padding info: the encoder delay (1024+ samples) stays. */
        {"a.aac", "-ar 16000 -c:a aac -f adts", 0.20},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        CHECK(fx_ffmpeg("-i " CLIP " %s %s", f[i].args, f[i].name) == 0);
        expect_duration(f[i].name, f[i].tol);
    }

    /* decode_mem and decode_file agree sample for sample. */
    size_t len;
    unsigned char *data = fx_read(fx_path("a.mp3"), &len);
    ld_pcm a, b;
    ld_decode_opts o = {0};
    CHECK(data && ld_audio_decode_mem(data, len, &o, &a, &err) == LD_OK);
    CHECK(ld_audio_decode_file(fx_path("a.mp3"), NULL, &b, &err) == LD_OK);
    CHECK(a.n == b.n && a.n && !memcmp(a.samples, b.samples, a.n * 2));
    ld_pcm_free(&a);
    ld_pcm_free(&b);

    /* Truncated MP3: decodes what is there (documented). */
    CHECK(data && fx_write(fx_path("trunc.mp3"), data, len / 2) == 0);
    CHECK(decode("trunc.mp3", 0, &p, &err) == LD_OK);
    CHECK(ld_pcm_seconds(&p) > 0.3 * ref_seconds && ld_pcm_seconds(&p) < 0.7 * ref_seconds);
    ld_pcm_free(&p);
    free(data);
    /* An MP3 cut inside its first frames has nothing to decode. */
    data = fx_read(fx_path("a.mp3"), &len);
    CHECK(data && fx_write(fx_path("tiny.mp3"), data, 300) == 0);
    free(data);
    ld_err e = decode("tiny.mp3", 0, &p, &err);
    CHECK(e == LD_ERR_INVALID_AUDIO || e == LD_ERR_UNSUPPORTED_FORMAT);
}

static void test_bad_inputs(void)
{
    /* Random bytes (fixed seed, so the test is reproducible). */
    unsigned char rnd[65536];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1664525u + 1013904223u;
        rnd[i] = (unsigned char)(x >> 24);
    }
    CHECK(fx_write(fx_path("random.wav"), rnd, sizeof rnd) == 0);
    expect_error("random.wav", LD_ERR_UNSUPPORTED_FORMAT, "not a recognised audio file");

    const char *text = "This is not audio at all, just a text file someone renamed.\n";
    char big[8192] = "";
    while (strlen(big) + strlen(text) < sizeof big)
        strcat(big, text);
    CHECK(fx_write(fx_path("text.wav"), big, strlen(big)) == 0);
    expect_error("text.wav", LD_ERR_UNSUPPORTED_FORMAT, "Unsupported audio format");

    CHECK(fx_ffmpeg("-f lavfi -i testsrc=size=64x64 -frames:v 1 img.png && mv img.png png.wav") == 0);
    expect_error("png.wav", LD_ERR_UNSUPPORTED_FORMAT, "Unsupported audio format");

    CHECK(fx_write(fx_path("empty.wav"), "", 0) == 0);
    expect_error("empty.wav", LD_ERR_INVALID_AUDIO, "empty");
    ld_pcm p;
    ld_error err;
    CHECK(ld_audio_decode_mem(NULL, 0, NULL, &p, &err) == LD_ERR_INVALID_AUDIO);

    /* Video-only MP4: a documented INVALID_AUDIO. */
    CHECK(fx_ffmpeg("-f lavfi -i testsrc=size=64x64:rate=10 -t 1 -an -c:v mpeg4 video.mp4") == 0);
    expect_error("video.mp4", LD_ERR_INVALID_AUDIO, "no audio stream");

    /* Allowed container, codec outside the allow-list. */
    CHECK(fx_ffmpeg("-i " CLIP " -ar 48000 -c:a ac3 ac3.mp4") == 0);
    expect_error("ac3.mp4", LD_ERR_UNSUPPORTED_FORMAT, "ac3");
    /* A real audio container that is not allow-listed. */
    CHECK(fx_ffmpeg("-i " CLIP " a.aiff") == 0);
    expect_error("a.aiff", LD_ERR_UNSUPPORTED_FORMAT, "aiff");

    /* Corrupt WAV header: zero channels and sample rate in the fmt chunk. */
    size_t len;
    unsigned char *w = fx_read(fx_path("ref.wav"), &len);
    CHECK(w && len > 100 && !memcmp(w + 12, "fmt ", 4));
    if (w) {
        memset(w + 22, 0, 10); /* channels, sample rate, byte rate */
        CHECK(fx_write(fx_path("badhdr.wav"), w, len) == 0);
        free(w);
    }
    expect_error("badhdr.wav", LD_ERR_INVALID_AUDIO, "corrupted or invalid");

    /* Truncated WAV: the header survives, half the samples are there. */
    w = fx_read(fx_path("ref.wav"), &len);
    CHECK(w && fx_write(fx_path("trunc.wav"), w, len / 2) == 0);
    free(w);
    CHECK(decode("trunc.wav", 0, &p, &err) == LD_OK);
    CHECK_NEAR(ld_pcm_seconds(&p), ref_seconds / 2, 0.05);
    ld_pcm_free(&p);
    /* Header only: nothing to transcribe. */
    w = fx_read(fx_path("ref.wav"), &len);
    unsigned char *data = w ? memmem(w, len, "data", 4) : NULL;
    CHECK(data && fx_write(fx_path("hdronly.wav"), w, (size_t)(data - w) + 8) == 0);
    free(w);
    expect_error("hdronly.wav", LD_ERR_INVALID_AUDIO, "no audio could be decoded");

    /* A header's rate below telephone audio's is refused before anything is
     * decoded: at 1 Hz each sample became 16,000 (a 14 KB upload, two hours of
     * PCM and gigabytes of resampler output for 8 channels). */
    w = fx_read(fx_path("ref.wav"), &len);
    CHECK(w && len > 100 && !memcmp(w + 12, "fmt ", 4) && w[22] == 1);
    if (w) {
        const uint32_t rates[] = {1, 7999};
        for (size_t i = 0; i < 2; i++) {
            for (int k = 0; k < 4; k++) { /* sample rate, byte rate (mono s16) */
                w[24 + k] = (unsigned char)(rates[i] >> (8 * k));
                w[28 + k] = (unsigned char)((rates[i] * 2) >> (8 * k));
            }
            CHECK(fx_write(fx_path("lowrate.wav"), w, len) == 0);
            expect_error("lowrate.wav", LD_ERR_INVALID_AUDIO,
                         i ? "7999 Hz is not supported" : "1 Hz is not supported");
        }
        free(w);
    }
    CHECK(fx_ffmpeg("-i " CLIP " -ar 6000 r6k.flac") == 0);
    expect_error("r6k.flac", LD_ERR_INVALID_AUDIO, "at least 8000 Hz");
    /* a chained Ogg whose second part drops to 6 kHz: the frame's rate is checked too, with the same words */
    CHECK(fx_ffmpeg("-i " CLIP " -c:a flac -f ogg p1.oga && ffmpeg -nostdin -loglevel error -y -i " CLIP
                    " -ar 6000 -c:a flac -f ogg p2.oga && cat p1.oga p2.oga > chained.oga") == 0);
    expect_error("chained.oga", LD_ERR_INVALID_AUDIO, "6000 Hz is not supported");
}

static bool abort_after(void *ud) { return ++*(int *)ud > 3; } /* false three times, then true */

static void test_limits(void)
{
    ld_pcm p = {0};
    ld_error err;
    CHECK(decode("a.flac", 2.0, &p, &err) == LD_ERR_AUDIO_TOO_LONG);
    CHECK(strstr(err.msg, "2 seconds") != NULL);
    CHECK(p.samples == NULL);
    CHECK(decode("a.flac", 3.5, &p, &err) == LD_OK);
    ld_pcm_free(&p);

    /* Spilled to an mmap'd temp file: same samples as the heap result. */
    ld_pcm heap, mapped;
    ld_decode_opts o = {.tmp_dir = fx_dir, .spill_seconds = 0.5};
    CHECK(ld_audio_decode_file(fx_path("a44.wav"), NULL, &heap, &err) == LD_OK);
    CHECK(ld_audio_decode_file(fx_path("a44.wav"), &o, &mapped, &err) == LD_OK);
    CHECK(heap.priv_ == NULL && mapped.priv_ != NULL);
    CHECK(heap.n == mapped.n && !memcmp(heap.samples, mapped.samples, heap.n * 2));
    ld_pcm_free(&heap);
    ld_pcm_free(&mapped);
    CHECK(mapped.samples == NULL && mapped.priv_ == NULL);
    /* An abort (the client left) stops the decode between packets. */
    int polls = 0;
    ld_decode_opts ab = {.abort = abort_after, .abort_ud = &polls};
    CHECK(ld_audio_decode_file(fx_path("a44.wav"), &ab, &p, &err) == LD_ERR_SERVICE_UNAVAILABLE);
    CHECK(strstr(err.msg, "cancelled") && polls == 4 && p.samples == NULL);
    /* The spill file is unlinked at once: nothing is left in tmp_dir. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q listend-pcm", fx_dir);
    CHECK(system(cmd) != 0);
}

static void test_raw(void)
{
    size_t len;
    unsigned char *raw = fx_read("/usr/share/pocketsphinx/test/data/goforward.raw", &len);
    CHECK(raw != NULL);
    ld_pcm p;
    ld_error err;
    if (raw) {
        CHECK(ld_audio_decode_raw_channels(raw, len, LD_STREAM_LINEAR16, 16000, 1, &p, &err) == LD_OK);
        CHECK(p.n == len / 2);
        CHECK(p.samples[100] == (int16_t)(raw[200] | raw[201] << 8));
        ld_pcm_free(&p);
        CHECK(ld_audio_decode_raw_channels(raw, len | 1, LD_STREAM_LINEAR16, 16000, 1, &p, &err) == LD_OK ||
              len % 2);
        ld_pcm_free(&p);
        free(raw);
    }
    CHECK(fx_ffmpeg("-i " CLIP " -f s16le -ar 8000 clip8k.raw") == 0);
    raw = fx_read(fx_path("clip8k.raw"), &len);
    CHECK(raw && ld_audio_decode_raw_channels(raw, len, LD_STREAM_LINEAR16, 8000, 1, &p, &err) == LD_OK);
    CHECK_NEAR(ld_pcm_seconds(&p), ref_seconds, 0.01);
    ld_pcm_free(&p);
    free(raw);
    CHECK(ld_audio_decode_raw_channels((const uint8_t *)"\1", 1, LD_STREAM_LINEAR16, 16000, 1, &p, &err) ==
          LD_ERR_INVALID_AUDIO);
    CHECK(ld_audio_decode_raw_channels((const uint8_t *)"\1\2", 2, LD_STREAM_LINEAR16, 0, 1, &p, &err) ==
          LD_ERR_INVALID_PARAMETER);
}

int main(void)
{
    fx_init();
    CHECK(ld_audio_supported_formats_count == 6);
    test_formats();
    test_bad_inputs();
    test_limits();
    test_raw();
    TEST_MAIN_END();
}
