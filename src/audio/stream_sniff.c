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

/* Files by their first bytes, and what a live stream does with each: one list
 * for uploads (any of them is a file, not samples) and for streams. */
typedef enum {
    LIVE_WAV,     /* its header is read, then its samples (RIFF/WAVE only) */
    LIVE_OGG,     /* Ogg Opus */
    LIVE_WEBM,    /* WebM Opus */
    LIVE_REFUSED, /* said so: a stream cannot take it */
    LIVE_RAW,     /* not looked for on streams: read as raw samples there (noted in the issue) */
} live_use;

static const struct {
    size_t off;
    const char *magic, *name;
    live_use live;
} containers[] = {
    {0, "RIFF", "WAV", LIVE_WAV},      {0, "OggS", "Ogg", LIVE_OGG},    {0, "\x1A\x45\xDF\xA3", "WebM", LIVE_WEBM},
    {0, "fLaC", "FLAC", LIVE_REFUSED}, {0, "ID3", "MP3", LIVE_REFUSED}, {4, "ftyp", "MP4/M4A", LIVE_REFUSED},
    {0, "FORM", "AIFF", LIVE_RAW},     {0, "caff", "CAF", LIVE_RAW},    {0, "#!AMR", "AMR", LIVE_RAW},
};

/* The entry data starts like, or -1. */
static int container_of(const uint8_t *d, size_t len)
{
    for (size_t i = 0; i < sizeof containers / sizeof *containers; i++) {
        size_t n = strlen(containers[i].magic);
        if (len >= containers[i].off + n && !memcmp(d + containers[i].off, containers[i].magic, n))
            return (int)i;
    }
    return -1;
}

bool ld_audio_container_magic(const uint8_t *d, size_t len) { return container_of(d, len) >= 0; }

ld_err ld_audio_stream_sniff(const uint8_t *data, size_t len, ld_stream_encoding *enc, int *rate, size_t *skip,
                             bool *found, ld_error *err)
{
    *skip = 0;
    *found = true;
    int c = container_of(data, len);
    switch (c < 0 ? LIVE_RAW : containers[c].live) {
    case LIVE_WAV:
        if (len >= 12 && !memcmp(data + 8, "WAVE", 4))
            return wav(data, len, enc, rate, skip, err);
        break; /* another RIFF form: raw, as before */
    case LIVE_OGG: *enc = LD_STREAM_OGG_OPUS; return LD_OK;
    case LIVE_WEBM: *enc = LD_STREAM_WEBM_OPUS; return LD_OK;
    case LIVE_REFUSED: return unsupported(err, containers[c].name);
    case LIVE_RAW: break;
    }
    *found = false;
    return LD_OK;
}
