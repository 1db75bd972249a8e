/* A live stream's container, from its first message (stream.h). Clients
 * written for Deepgram omit `encoding` for containerized audio and send a file
 * or a MediaRecorder's output as it is; decoding that as raw linear16 gave
 * made-up words and no error. */
#include <string.h>

#include "audio/stream.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static unsigned le16(const uint8_t *p) { return p[0] | p[1] << 8; }

static ld_err unsupported(ld_error *err, const char *what)
{
    return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                        "%s cannot be streamed live: send raw audio with encoding and sample_rate, or WAV, "
                        "Ogg Opus or WebM Opus",
                        what);
}

/* RIFF/WAVE: the fmt chunk says what follows; the data chunk's payload is the audio. */
static ld_err wav(const uint8_t *p, size_t len, ld_stream_encoding *enc, int *rate, size_t *skip, ld_error *err)
{
    bool have_fmt = false;
    for (size_t at = 12; at + 8 <= len;) {
        uint32_t size = le32(p + at + 4);
        const uint8_t *c = p + at + 8;
        if (!memcmp(p + at, "fmt ", 4)) {
            if (size < 16 || at + 8 + 16 > len)
                break;
            unsigned fmt = le16(c), channels = le16(c + 2), bits = le16(c + 14);
            if (fmt == 0xFFFE && size >= 26 && at + 8 + 26 <= len)
                fmt = le16(c + 24); /* WAVE_FORMAT_EXTENSIBLE: the subformat's tag */
            if (channels != 1)
                return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                                    "WAV with %u channels: a live stream takes mono WAV, or raw interleaved audio "
                                    "with encoding and channels",
                                    channels);
            if (fmt == 1 && bits == 16)
                *enc = LD_STREAM_LINEAR16;
            else if (fmt == 3 && bits == 32)
                *enc = LD_STREAM_LINEAR32;
            else if (fmt == 7 && bits == 8)
                *enc = LD_STREAM_MULAW;
            else if (fmt == 6 && bits == 8)
                *enc = LD_STREAM_ALAW;
            else
                return unsupported(err, "This WAV codec");
            *rate = (int)le32(c + 4);
            have_fmt = true;
        } else if (!memcmp(p + at, "data", 4)) {
            if (!have_fmt)
                break;
            *skip = at + 8;
            return LD_OK;
        }
        at += 8 + (size_t)size + (size & 1);
    }
    return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                        "The WAV header must come whole in the stream's first message (up to its data chunk)");
}

bool ld_audio_container_magic(const uint8_t *d, size_t len)
{
    static const struct {
        size_t off;
        const char *magic;
    } magics[] = {{0, "RIFF"}, {0, "OggS"}, {0, "fLaC"}, {0, "ID3"},  {0, "\x1A\x45\xDF\xA3"},
                  {4, "ftyp"}, {0, "FORM"}, {0, "caff"}, {0, "#!AMR"}};
    for (size_t i = 0; i < sizeof magics / sizeof *magics; i++) {
        size_t n = strlen(magics[i].magic);
        if (len >= magics[i].off + n && !memcmp(d + magics[i].off, magics[i].magic, n))
            return true;
    }
    return false;
}

ld_err ld_audio_stream_sniff(const uint8_t *data, size_t len, ld_stream_encoding *enc, int *rate, size_t *skip,
                             bool *found, ld_error *err)
{
    *skip = 0;
    *found = true;
    if (len >= 12 && !memcmp(data, "RIFF", 4) && !memcmp(data + 8, "WAVE", 4))
        return wav(data, len, enc, rate, skip, err);
    if (len >= 4 && !memcmp(data, "OggS", 4)) {
        *enc = LD_STREAM_OGG_OPUS;
        return LD_OK;
    }
    if (len >= 4 && !memcmp(data, "\x1A\x45\xDF\xA3", 4)) {
        *enc = LD_STREAM_WEBM_OPUS;
        return LD_OK;
    }
    if (len >= 4 && !memcmp(data, "fLaC", 4))
        return unsupported(err, "FLAC");
    if (len >= 3 && !memcmp(data, "ID3", 3))
        return unsupported(err, "MP3");
    if (len >= 8 && !memcmp(data + 4, "ftyp", 4))
        return unsupported(err, "MP4/M4A");
    *found = false;
    return LD_OK;
}
