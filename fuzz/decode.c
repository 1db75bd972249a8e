/* libFuzzer entry: arbitrary bytes through the whole decode path (probe,
 * allow-lists, demux, decode, resample, duration cap), and the same bytes as
 * headerless audio (the first byte picks encoding, channels and rate). Any
 * crash, leak or sanitizer report is a bug; every error code is fine. */
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
    if (size > 1) {
        static const int rates[] = {8000, 16000, 11025, 44100};
        static const ld_stream_encoding encs[] = {LD_STREAM_LINEAR16, LD_STREAM_MULAW, LD_STREAM_ALAW,
                                                  LD_STREAM_LINEAR32, LD_STREAM_OPUS}; /* Opus: refused */
        ld_stream_encoding enc = encs[data[0] % 5];
        int ch = 1 + (data[0] / 5) % LD_MAX_CHANNELS, rate = rates[data[0] >> 6 & 3];
        ld_pcm out[LD_MAX_CHANNELS];
        if (ld_audio_decode_raw_channels(data + 1, size - 1, enc, rate, ch, out, &err) == LD_OK)
            for (int c = 0; c < ch; c++)
                ld_pcm_free(&out[c]);
    }
    return 0;
}
