/* Headerless audio (s16le or G.711, interleaved channels): copied when already
 * 16 kHz s16le mono, converted and resampled otherwise. */
#include "audio/audio.h"
#include "audio/resample.h"
#include "util/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Native samples at `rate` -> out (16 kHz). Takes `in` (malloc'd): kept as the
 * output at 16 kHz, freed after resampling otherwise. */
static ld_err from_samples(int16_t *in, size_t n, int rate, ld_pcm *out, ld_error *err)
{
    if (rate == LD_SAMPLE_RATE) {
        out->samples = in;
        out->n = n;
        return LD_OK;
    }
    ld_resampler r;
    ld_resampler_init(&r);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    const uint8_t *planes[1] = {(const uint8_t *)in};
    const int16_t *s;
    int a = ld_resampler_push(&r, planes, (int)n, rate, AV_SAMPLE_FMT_S16, &mono, &s);
    int16_t *res = a >= 0 ? malloc(((size_t)a + 1) * sizeof *res) : NULL;
    if (res && a > 0)
        memcpy(res, s, (size_t)a * sizeof *res);
    int b = res ? ld_resampler_flush(&r, &s) : -1;
    if (b > 0) {
        int16_t *g = realloc(res, ((size_t)a + (size_t)b) * sizeof *res);
        if (g)
            memcpy(g + a, s, (size_t)b * sizeof *g);
        else
            b = -1;
        res = g ? g : res;
    }
    bool narrowband = r.narrowband;
    ld_resampler_free(&r);
    free(in);
    if (b < 0) {
        free(res);
        return ld_error_set(err, LD_ERR_INTERNAL, "Resampling failed");
    }
    out->samples = res;
    out->n = (size_t)a + (size_t)b;
    out->narrowband = narrowband;
    return LD_OK;
}

/* Checks shared by every headerless form; n = samples of one channel. */
static ld_err check(int rate, size_t n, ld_error *err)
{
    if (rate < LD_AUDIO_MIN_RATE || rate > 768000)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid sample_rate %d (%d-768000)", rate,
                            LD_AUDIO_MIN_RATE);
    if (n == 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio is empty");
    if (n > (size_t)INT32_MAX / 4)
        return ld_error_set(err, LD_ERR_FILE_TOO_LARGE, "Raw audio too large");
    return LD_OK;
}

ld_err ld_audio_decode_raw_channels(const uint8_t *data, size_t len, ld_stream_encoding enc, int rate, int channels,
                                    ld_pcm *out, ld_error *err)
{
    if (channels < 1 || channels > LD_MAX_CHANNELS)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER, "Invalid value for parameter 'channels': 1 to %d",
                            LD_MAX_CHANNELS);
    if (!ld_audio_stream_sample_bytes(enc))
        return ld_error_set(
            err, LD_ERR_INVALID_PARAMETER,
            "Headerless audio must be linear16, linear32, mulaw or alaw (Opus needs its container)");
    memset(out, 0, sizeof *out * (size_t)channels);
    /* a trailing incomplete frame (an odd byte, a partial set of channels) is dropped */
    size_t width = (size_t)ld_audio_stream_sample_bytes(enc), step = width * (size_t)channels, frames = len / step;
    ld_err rc = check(rate, frames, err);
    /* One channel at a time: its native samples, then its 16 kHz output, so an
     * upload's extra memory is one channel's samples, not all of them. Input
     * bytes are little-endian whatever the host. */
    for (int c = 0; c < channels && !rc; c++) {
        int16_t *in = malloc(frames * sizeof *in);
        if (!in) {
            rc = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
            break;
        }
        const uint8_t *p = data + width * (size_t)c;
        for (size_t i = 0; i < frames; i++, p += step)
            in[i] = ld_audio_pcm_sample(enc, p);
        rc = from_samples(in, frames, rate, &out[c], err);
        out[c].narrowband |= ld_audio_stream_g711(enc);
    }
    if (rc)
        for (int c = 0; c < channels; c++)
            ld_pcm_free(&out[c]);
    return rc;
}

bool ld_audio_raw_by_name(const char *path, ld_stream_encoding *enc, int *rate)
{
    static const struct {
        const char *ext;
        ld_stream_encoding enc;
        int rate;
    } names[] = {{".raw", LD_STREAM_LINEAR16, LD_SAMPLE_RATE},
                 {".pcm", LD_STREAM_LINEAR16, LD_SAMPLE_RATE},
                 {".ul", LD_STREAM_MULAW, 8000},
                 {".ulaw", LD_STREAM_MULAW, 8000},
                 {".mu", LD_STREAM_MULAW, 8000},
                 {".al", LD_STREAM_ALAW, 8000},
                 {".alaw", LD_STREAM_ALAW, 8000}};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t m = strlen(names[i].ext);
        if (n > m && !strcasecmp(path + n - m, names[i].ext)) {
            *enc = names[i].enc;
            *rate = names[i].rate;
            return true;
        }
    }
    return false;
}

ld_err ld_audio_decode_named(const char *path, const ld_decode_opts *o, ld_pcm *out, ld_error *err)
{
    ld_stream_encoding enc;
    int rate;
    if (!ld_audio_raw_by_name(path, &enc, &rate)) {
        if (access(path, R_OK) != 0) /* why: a dangling link and a permission look alike otherwise */
            return ld_error_set(err, LD_ERR_INVALID_AUDIO, "cannot read '%s': %s", path, strerror(errno));
        return ld_audio_decode_file(path, o, out, err);
    }
    size_t len = 0;
    char *data = ld_fs_read(path, (size_t)4 << 30, &len);
    if (!data)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "cannot read '%s'", path);
    ld_err rc = ld_audio_decode_raw_channels((const uint8_t *)data, len, enc, rate, 1, out, err);
    free(data);
    return rc;
}
