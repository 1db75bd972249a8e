/* libFuzzer entry: arbitrary bytes through the whole decode path (probe,
 * allow-lists, demux, decode, resample, duration cap). Any crash, leak or
 * sanitizer report is a bug; every error code is fine. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "audio/audio.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        ld_log_set_level(LD_LOG_CRITICAL);
        init = 1;
    }
    ld_decode_opts o = {.max_seconds = 30, .spill_seconds = 5, .tmp_dir = "/tmp"};
    ld_pcm pcm;
    ld_error err;
    if (ld_audio_decode_mem(data, size, &o, &pcm, &err) == LD_OK) {
        ld_segment *seg = NULL;
        ld_audio_segment(pcm.samples, pcm.n, 10, &seg);
        free(seg);
        ld_pcm_free(&pcm);
    }
    return 0;
}
