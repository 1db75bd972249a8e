#include "audio/resample.h"
#include "audio/audio.h"
#include "audio/narrowband.h"

#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <string.h>

#define MAX_RATE 768000
#define MAX_CHANNELS 64

void ld_resampler_init(ld_resampler *r) { memset(r, 0, sizeof *r); }

void ld_resampler_init_channel(ld_resampler *r, int channel)
{
    memset(r, 0, sizeof *r);
    r->pick = channel + 1;
}

/* Multichannel: a 1 × channels mix matrix that keeps one input channel at unit
 * gain, so each channel is resampled exactly like a mono file would be. */
static int pick_channel(struct SwrContext *swr, int pick, int channels)
{
    if (pick < 1 || pick > channels)
        return -1;
    double m[MAX_CHANNELS] = {0};
    m[pick - 1] = 1.0;
    return swr_set_matrix(swr, m, channels);
}

void ld_resampler_free(ld_resampler *r)
{
    swr_free(&r->swr);
    av_channel_layout_uninit(&r->layout);
    av_freep(&r->buf);
    r->cap = 0;
}

static int reserve(ld_resampler *r, int n)
{
    if (n <= r->cap)
        return 0;
    int cap = n + 4096;
    int16_t *b = av_realloc(r->buf, (size_t)cap * sizeof *b);
    if (!b)
        return -1;
    r->buf = b;
    r->cap = cap;
    return 0;
}

/* Runs swr_convert appending after buf[0..have) (nb == 0 and in == NULL: flush),
 * zero-inserting the output of a narrowband configuration. Returns the new total. */
static int convert(ld_resampler *r, int have, const uint8_t **in, int nb)
{
    int64_t want = swr_get_out_samples(r->swr, nb);
    int f = r->mirror ? 2 : 1;
    if (want < 0 || want > INT32_MAX / 8 || reserve(r, have + f * ((int)want + 16)))
        return -1;
    uint8_t *o = (uint8_t *)(r->buf + have);
    int got = swr_convert(r->swr, &o, (int)want + 16, in, nb);
    if (got < 0)
        return -1;
    if (r->mirror)
        ld_audio_zero_insert(r->buf + have, (size_t)got);
    return have + f * got;
}

/* Output already produced at buf[0..have); flushes the filter after it. */
static int flush_into(ld_resampler *r, int have)
{
    if (!r->swr)
        return have;
    return convert(r, have, NULL, 0);
}

static int configure(ld_resampler *r, int rate, int fmt, const AVChannelLayout *layout)
{
    AVChannelLayout in = {0};
    /* Unknown channel orders (e.g. WAV without a mask) get the default for their count. */
    if (layout->order == AV_CHANNEL_ORDER_NATIVE)
        av_channel_layout_copy(&in, layout);
    else
        av_channel_layout_default(&in, layout->nb_channels);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    swr_free(&r->swr);
    bool mirror = ld_audio_rate_is_narrowband(rate);
    int ret = swr_alloc_set_opts2(&r->swr, &mono, AV_SAMPLE_FMT_S16, mirror ? LD_NARROWBAND_RATE : LD_SAMPLE_RATE,
                                  &in, (enum AVSampleFormat)fmt, rate, 0, NULL);
    if (ret >= 0 && r->pick)
        ret = pick_channel(r->swr, r->pick, in.nb_channels);
    if (ret >= 0)
        ret = swr_init(r->swr);
    av_channel_layout_uninit(&in);
    if (ret < 0) {
        swr_free(&r->swr);
        return -1;
    }
    av_channel_layout_uninit(&r->layout);
    av_channel_layout_copy(&r->layout, layout);
    r->rate = rate;
    r->fmt = fmt;
    r->mirror = mirror;
    r->narrowband |= mirror;
    return 0;
}

int ld_resampler_push(ld_resampler *r, const uint8_t *const *in, int nb, int rate, int fmt,
                      const AVChannelLayout *layout, const int16_t **out)
{
    *out = r->buf;
    if (rate < LD_AUDIO_MIN_RATE || rate > MAX_RATE || layout->nb_channels < 1 ||
        layout->nb_channels > MAX_CHANNELS || fmt < 0 || fmt >= AV_SAMPLE_FMT_NB || nb < 0)
        return -1;
    int have = 0;
    if (!r->swr || rate != r->rate || fmt != r->fmt || av_channel_layout_compare(layout, &r->layout)) {
        if ((have = flush_into(r, 0)) < 0 || configure(r, rate, fmt, layout))
            return -1;
    }
    int total = convert(r, have, (const uint8_t **)in, nb);
    *out = r->buf;
    return total;
}

int ld_resampler_frame(ld_resampler *r, const AVFrame *f, const int16_t **out)
{
    return ld_resampler_push(r, (const uint8_t *const *)f->extended_data, f->nb_samples, f->sample_rate, f->format,
                             &f->ch_layout, out);
}

int ld_resampler_flush(ld_resampler *r, const int16_t **out)
{
    int n = flush_into(r, 0);
    *out = r->buf;
    return n;
}
