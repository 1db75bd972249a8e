/* libFuzzer entry: live-stream audio as WebSocket binary frames deliver it.
 * The first byte picks the encoding (linear16, mulaw, alaw, raw Opus packets,
 * Ogg Opus, linear32) and the client's sample rate, or (from 240) a stream
 * that named no encoding: its first chunk is sniffed as the server does (WAV
 * header, Ogg, WebM) and the WebM demuxer gets it when it is one; the rest is
 * pushed in chunks whose sizes come from the data, then flushed. Any crash,
 * leak or sanitizer report is a bug, and so is a sample count without samples. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "audio/stream.h"
#include "util/log.h"

static const int rates[] = {8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 7999, 48001};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        ld_log_set_level(LD_LOG_CRITICAL);
        init = 1;
    }
    if (size < 1)
        return 0;
    ld_stream_encoding enc = (ld_stream_encoding)(data[0] % 6);
    int rate = rates[(data[0] / 6) % 10];
    bool sniff = data[0] >= 240;
    data++, size--;
    ld_error err;
    if (sniff) {
        size_t skip;
        bool found;
        enc = LD_STREAM_LINEAR16, rate = 16000;
        if (ld_audio_stream_sniff(data, size, &enc, &rate, &skip, &found, &err) != LD_OK)
            return 0;
        if (skip > size)
            abort();
        data += skip, size -= skip;
    }
    ld_audio_stream *s = ld_audio_stream_new(enc, rate, &err);
    if (!s)
        return 0;
    const int16_t *out;
    size_t n;
    while (size) {
        size_t chunk = size < 2 ? size : 1 + (size_t)(data[0] | data[1] << 8) % size;
        if (ld_audio_stream_push(s, data, chunk, &out, &n, &err) != LD_OK)
            break;
        if (n && !out)
            abort();
        data += chunk, size -= chunk;
    }
    if (ld_audio_stream_flush(s, &out, &n, &err) == LD_OK && n && !out)
        abort();
    ld_audio_stream_free(s);
    return 0;
}
