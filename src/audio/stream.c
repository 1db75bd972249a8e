/* Incremental converter: client encoding + rate -> 16 kHz mono s16.
 * PCM encodings are expanded to s16 here; Opus goes through FFmpeg's decoder;
 * anything not at 16 kHz goes through one swresample context kept for the
 * stream's life (so the filter state carries across chunks). */
#include "audio/stream.h"
#include "audio/audio.h"
#include "audio/narrowband.h"

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ld_audio_stream {
    ld_stream_encoding enc;
    int rate;
    bool failed;
    bool mirror;      /* 8 kHz PCM: zero insertion instead of the resampler (narrowband.h) */
    uint8_t carry[4]; /* PCM: the bytes of a sample cut by the previous chunk */
    size_t n_carry;
    SwrContext *swr;
    AVCodecContext *dec; /* Opus */
    AVPacket *pkt;
    AVFrame *frame;
    ld_ogg_reader *ogg;
    ld_webm_reader *webm;
    int ogg_packets; /* packets seen: 0 = expect OpusHead, 1 = OpusTags */
    int16_t *in;     /* PCM expanded at the client's rate */
    size_t in_cap;
    int16_t *out; /* 16 kHz result of the current call */
    size_t out_n, out_cap;
};

static const struct {
    const char *name;
    ld_stream_encoding enc;
} encodings[] = {
    {"linear16", LD_STREAM_LINEAR16},  {"mulaw", LD_STREAM_MULAW},        {"alaw", LD_STREAM_ALAW},
    {"opus", LD_STREAM_OPUS},          {"ogg_opus", LD_STREAM_OGG_OPUS},  {"linear32", LD_STREAM_LINEAR32},
    {"pcm_s16le", LD_STREAM_LINEAR16}, {"pcm_f32le", LD_STREAM_LINEAR32}, {"ulaw", LD_STREAM_MULAW},
    {"pcm_mulaw", LD_STREAM_MULAW},    {"pcm_alaw", LD_STREAM_ALAW},      {"webm_opus", LD_STREAM_WEBM_OPUS},
};

int ld_audio_stream_encoding_parse(const char *s, ld_stream_encoding *out)
{
    for (size_t i = 0; s && i < sizeof encodings / sizeof *encodings; i++)
        if (!strcasecmp(s, encodings[i].name)) {
            *out = encodings[i].enc;
            return 0;
        }
    return -1;
}

const char *ld_audio_stream_encoding_name(ld_stream_encoding e)
{
    for (size_t i = 0; i < sizeof encodings / sizeof *encodings; i++)
        if (encodings[i].enc == e)
            return encodings[i].name;
    return "?";
}

/* G.711 expansion (ITU-T G.711 tables in closed form). */
int16_t ld_audio_mulaw_decode(uint8_t u)
{
    u = (uint8_t)~u;
    int exponent = (u >> 4) & 7, mantissa = u & 0x0f;
    int mag = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    return (int16_t)((u & 0x80) ? -mag : mag);
}

int16_t ld_audio_alaw_decode(uint8_t a)
{
    a ^= 0x55;
    int seg = (a & 0x70) >> 4;
    int t = (a & 0x0f) << 4;
    if (seg == 0)
        t += 8;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

int ld_audio_stream_sample_bytes(ld_stream_encoding e)
{
    switch (e) {
    case LD_STREAM_LINEAR16: return 2;
    case LD_STREAM_LINEAR32: return 4;
    case LD_STREAM_MULAW:
    case LD_STREAM_ALAW: return 1;
    default: return 0;
    }
}

bool ld_audio_stream_g711(ld_stream_encoding e) { return e == LD_STREAM_MULAW || e == LD_STREAM_ALAW; }

int16_t ld_audio_pcm_sample(ld_stream_encoding e, const uint8_t *p)
{
    switch (e) {
    case LD_STREAM_LINEAR16: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case LD_STREAM_MULAW: return ld_audio_mulaw_decode(p[0]);
    case LD_STREAM_ALAW: return ld_audio_alaw_decode(p[0]);
    default: { /* little-endian whatever the host */
        uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!(f == f))
            return 0;
        f = f > 1.0f ? 1.0f : f < -1.0f ? -1.0f : f;
        return (int16_t)lrintf(f * 32767.0f);
    }
    }
}

static ld_err oom(ld_error *err) { return ld_error_set(err, LD_ERR_INTERNAL, "out of memory"); }

static ld_err reserve(int16_t **buf, size_t *cap, size_t need, ld_error *err)
{
    if (need <= *cap)
        return LD_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    int16_t *p = realloc(*buf, c * sizeof *p);
    if (!p)
        return oom(err);
    *buf = p;
    *cap = c;
    return LD_OK;
}

static ld_err swr_open(ld_audio_stream *s, AVChannelLayout *in_layout, enum AVSampleFormat in_fmt, int in_rate,
                       ld_error *err)
{
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if (swr_alloc_set_opts2(&s->swr, &mono, AV_SAMPLE_FMT_S16, LD_SAMPLE_RATE, in_layout, in_fmt, in_rate, 0,
                            NULL) < 0 ||
        swr_init(s->swr) < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "cannot set up the resampler");
    return LD_OK;
}

/* Resamples n input samples (planes in `in`, NULL to drain) and appends to out. */
static ld_err resample(ld_audio_stream *s, const uint8_t **in, int n, ld_error *err)
{
    int room = swr_get_out_samples(s->swr, n);
    if (room < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "resampler failed");
    ld_err e = reserve(&s->out, &s->out_cap, s->out_n + (size_t)room + 16, err);
    if (e)
        return e;
    uint8_t *dst = (uint8_t *)(s->out + s->out_n);
    int got = swr_convert(s->swr, &dst, room + 16, in, n);
    if (got < 0)
        return ld_error_set(err, LD_ERR_INTERNAL, "resampler failed");
    s->out_n += (size_t)got;
    return LD_OK;
}

static ld_err emit_pcm(ld_audio_stream *s, const int16_t *pcm, size_t n, ld_error *err)
{
    if (n == 0)
        return LD_OK;
    if (s->mirror) {
        ld_err e = reserve(&s->out, &s->out_cap, s->out_n + 2 * n, err);
        if (e)
            return e;
        memcpy(s->out + s->out_n, pcm, n * sizeof *pcm);
        ld_audio_zero_insert(s->out + s->out_n, n);
        s->out_n += 2 * n;
        return LD_OK;
    }
    if (!s->swr) {
        ld_err e = reserve(&s->out, &s->out_cap, s->out_n + n, err);
        if (e)
            return e;
        memcpy(s->out + s->out_n, pcm, n * sizeof *pcm);
        s->out_n += n;
        return LD_OK;
    }
    const uint8_t *planes[1] = {(const uint8_t *)pcm};
    return resample(s, planes, (int)n, err);
}

static ld_err opus_open(ld_audio_stream *s, const uint8_t *head, size_t head_len, ld_error *err)
{
    const AVCodec *codec = avcodec_find_decoder(AV_CODEC_ID_OPUS);
    if (!codec || !(s->dec = avcodec_alloc_context3(codec)) || !(s->pkt = av_packet_alloc()) ||
        !(s->frame = av_frame_alloc()))
        return ld_error_set(err, LD_ERR_INTERNAL, "Opus decoder unavailable");
    s->dec->sample_rate = 48000;
    int channels = head && head_len >= 10 ? head[9] : 1;
    if (channels < 1 || channels > 2)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Only mono or stereo Opus is supported");
    av_channel_layout_default(&s->dec->ch_layout, channels);
    if (head) {
        s->dec->extradata = av_mallocz(head_len + AV_INPUT_BUFFER_PADDING_SIZE);
        if (!s->dec->extradata)
            return oom(err);
        memcpy(s->dec->extradata, head, head_len);
        s->dec->extradata_size = (int)head_len;
    }
    if (avcodec_open2(s->dec, codec, NULL) < 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid Opus stream header");
    return LD_OK;
}

static ld_err opus_packet(ld_audio_stream *s, const uint8_t *data, size_t len, ld_error *err)
{
    if (len == 0)
        return LD_OK;
    if (av_new_packet(s->pkt, (int)len) < 0)
        return oom(err);
    memcpy(s->pkt->data, data, len);
    int rc = avcodec_send_packet(s->dec, s->pkt);
    av_packet_unref(s->pkt);
    if (rc < 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid Opus packet");
    while ((rc = avcodec_receive_frame(s->dec, s->frame)) >= 0) {
        ld_err e = LD_OK;
        if (!s->swr)
            e = swr_open(s, &s->frame->ch_layout, s->frame->format, s->frame->sample_rate, err);
        if (!e)
            e = resample(s, (const uint8_t **)s->frame->extended_data, s->frame->nb_samples, err);
        av_frame_unref(s->frame);
        if (e)
            return e;
    }
    if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid Opus packet");
    return LD_OK;
}

static ld_err ogg_packet(void *ud, const uint8_t *pkt, size_t len, ld_error *err)
{
    ld_audio_stream *s = ud;
    int idx = s->ogg_packets++;
    if (idx == 0) {
        if (len < 19 || memcmp(pkt, "OpusHead", 8))
            return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Ogg stream does not carry Opus");
        return opus_open(s, pkt, len, err);
    }
    if (idx == 1 && len >= 8 && !memcmp(pkt, "OpusTags", 8))
        return LD_OK;
    return opus_packet(s, pkt, len, err);
}

static ld_err webm_packet(void *ud, bool head, const uint8_t *data, size_t len, ld_error *err)
{
    ld_audio_stream *s = ud;
    if (head)
        return data && (len < 19 || memcmp(data, "OpusHead", 8))
                   ? ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid Opus header in the WebM stream")
                   : opus_open(s, data, len, err);
    return opus_packet(s, data, len, err);
}

ld_audio_stream *ld_audio_stream_new(ld_stream_encoding enc, int sample_rate, ld_error *err)
{
    bool pcm = ld_audio_stream_sample_bytes(enc) > 0;
    if (pcm && (sample_rate < LD_AUDIO_STREAM_MIN_RATE || sample_rate > LD_AUDIO_STREAM_MAX_RATE)) {
        ld_error_set(err, LD_ERR_INVALID_PARAMETER, "sample_rate must be between %d and %d",
                     LD_AUDIO_STREAM_MIN_RATE, LD_AUDIO_STREAM_MAX_RATE);
        return NULL;
    }
    ld_audio_stream *s = calloc(1, sizeof *s);
    if (!s) {
        oom(err);
        return NULL;
    }
    s->enc = enc;
    s->rate = pcm ? sample_rate : 48000;
    ld_err e = LD_OK;
    if (pcm && ld_audio_rate_is_narrowband(sample_rate)) {
        s->mirror = true;
    } else if (pcm && sample_rate != LD_SAMPLE_RATE) {
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        e = swr_open(s, &mono, AV_SAMPLE_FMT_S16, sample_rate, err);
    } else if (enc == LD_STREAM_OPUS) {
        e = opus_open(s, NULL, 0, err);
    } else if (enc == LD_STREAM_OGG_OPUS) {
        if (!(s->ogg = ld_audio_ogg_new()))
            e = oom(err);
    } else if (enc == LD_STREAM_WEBM_OPUS) {
        if (!(s->webm = ld_audio_webm_new()))
            e = oom(err);
    }
    if (e) {
        ld_audio_stream_free(s);
        return NULL;
    }
    return s;
}

void ld_audio_stream_free(ld_audio_stream *s)
{
    if (!s)
        return;
    swr_free(&s->swr);
    avcodec_free_context(&s->dec);
    av_packet_free(&s->pkt);
    av_frame_free(&s->frame);
    ld_audio_ogg_free(s->ogg);
    ld_audio_webm_free(s->webm);
    free(s->in);
    free(s->out);
    free(s);
}

static ld_err expand_pcm(ld_audio_stream *s, const uint8_t *data, size_t len, ld_error *err)
{
    size_t w = (size_t)ld_audio_stream_sample_bytes(s->enc), n = 0, i = 0;
    ld_err e = reserve(&s->in, &s->in_cap, len / w + 1, err);
    if (e)
        return e;
    if (s->n_carry) { /* complete the sample the last chunk cut */
        while (i < len && s->n_carry < w)
            s->carry[s->n_carry++] = data[i++];
        if (s->n_carry < w)
            return LD_OK;
        s->in[n++] = ld_audio_pcm_sample(s->enc, s->carry);
        s->n_carry = 0;
    }
    for (; i + w <= len; i += w)
        s->in[n++] = ld_audio_pcm_sample(s->enc, data + i);
    while (i < len)
        s->carry[s->n_carry++] = data[i++];
    return emit_pcm(s, s->in, n, err);
}

bool ld_audio_stream_narrowband(const ld_audio_stream *s) { return s->mirror || ld_audio_stream_g711(s->enc); }

ld_err ld_audio_stream_push(ld_audio_stream *s, const uint8_t *data, size_t len, const int16_t **out, size_t *n,
                            ld_error *err)
{
    *out = NULL;
    *n = 0;
    if (s->failed)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio stream already failed");
    s->out_n = 0;
    ld_err e;
    switch (s->enc) {
    case LD_STREAM_OPUS: e = opus_packet(s, data, len, err); break;
    case LD_STREAM_OGG_OPUS: e = ld_audio_ogg_push(s->ogg, data, len, ogg_packet, s, err); break;
    case LD_STREAM_WEBM_OPUS: e = ld_audio_webm_push(s->webm, data, len, webm_packet, s, err); break;
    default: e = expand_pcm(s, data, len, err); break;
    }
    if (e) {
        s->failed = true;
        return e;
    }
    *out = s->out;
    *n = s->out_n;
    return LD_OK;
}

ld_err ld_audio_stream_flush(ld_audio_stream *s, const int16_t **out, size_t *n, ld_error *err)
{
    *out = NULL;
    *n = 0;
    if (s->failed)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio stream already failed");
    s->out_n = 0;
    if (s->swr) {
        ld_err e = resample(s, NULL, 0, err);
        if (e)
            return e;
    }
    *out = s->out;
    *n = s->out_n;
    return LD_OK;
}
