/* A 2 h 10 min file against a 2 h cap: AUDIO_TOO_LONG, found while decoding,
 * with peak RSS far below the 250 MB of PCM the file would decode to. */
#include <stdint.h>

#include "audio/audio.h"
#include "audio_fixture.h"
#include "test.h"

/* Under AddressSanitizer, freed blocks sit in a 256 MB quarantine and would
 * count as RSS; keep it small so the check measures our allocations. */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void) { return "quarantine_size_mb=8"; }

static long vm_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl))
            v = atol(line + fl + 1);
    if (f)
        fclose(f);
    return v;
}

int main(void)
{
    fx_init();
    /* 10 min of low-bitrate silent MP3 (no Xing/ID3 header, so the demuxer
     * cannot know the total length), repeated 13 times by concatenation. */
    CHECK(fx_ffmpeg("-f lavfi -i anullsrc=r=8000:cl=mono -t 600 -c:a libmp3lame -b:a 8k "
                    "-write_xing 0 -id3v2_version 0 ten.mp3") == 0);
    size_t len;
    unsigned char *ten = fx_read(fx_path("ten.mp3"), &len);
    CHECK(ten != NULL);
    if (!ten)
        TEST_MAIN_END();
    FILE *f = fopen(fx_path("long.mp3"), "wb");
    for (int i = 0; f && i < 13; i++)
        CHECK(fwrite(ten, 1, len, f) == len);
    CHECK(f && fclose(f) == 0);
    free(ten);

    long before = vm_kb("VmHWM:");
    ld_decode_opts o = {.max_seconds = 7200, .tmp_dir = fx_dir};
    ld_pcm p = {0};
    ld_error err;
    ld_err e = ld_audio_decode_file(fx_path("long.mp3"), &o, &p, &err);
    long after = vm_kb("VmHWM:");
    fprintf(stderr, "result %s (%s); peak RSS %ld kB -> %ld kB\n", ld_err_code(e), err.msg, before, after);
    CHECK(e == LD_ERR_AUDIO_TOO_LONG);
    CHECK(p.samples == NULL);
    CHECK(before > 0 && after - before < 64 * 1024); /* PCM for 2 h would be 230 MB */

    /* Under the cap the same kind of file decodes, spilled to an mmap. */
    o.max_seconds = 0;
    o.spill_seconds = 60;
    CHECK(ld_audio_decode_file(fx_path("ten.mp3"), &o, &p, &err) == LD_OK);
    /* No LAME header: encoder delay and padding (~0.2 s at 8 kHz) stay in. */
    CHECK_NEAR(ld_pcm_seconds(&p), 600, 0.3);
    CHECK(p.priv_ != NULL);
    ld_pcm_free(&p);
    TEST_MAIN_END();
}
