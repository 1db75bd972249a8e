/* Speech enhancement for the noisy route (denoise.h): FFmpeg's afftdn spectral
 * denoiser through libavfilter. A batch request runs over the whole upload in
 * the request's thread; a stream keeps one filter per channel and pushes its
 * audio as it comes. One thread per filter: the decoder pool already uses every
 * core, and RTF is counted per core (docs/engine.md § Noise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>

#include "audio/audio.h"
#include "audio/denoise.h"
#include "util/log.h"

#define CHUNK 4096
#define MAX_PADS 16 /* padding ranges not yet out of the filter (one per flush) */
#define FILTER_MAX 256

struct ld_audio_denoiser {
    AVFilterGraph *g;
    AVFilterContext *src, *sink;
    AVFrame *f;
    char filter[FILTER_MAX];
    /* Output sample i is input sample i - delay. Input counts real samples and
     * the zeros a flush adds; pads[] are the zeros' ranges [start, end) of
     * input, which never reach the caller. */
    uint64_t delay, in, out, real_in, real_out;
    uint64_t pads[MAX_PADS][2];
    int npads;
    int16_t *buf; /* what the last push or flush gave */
    size_t len, cap;
};

static ld_err av_fail(ld_audio_denoiser *d, int rc, ld_error *err)
{
    char msg[AV_ERROR_MAX_STRING_SIZE] = "out of memory";
    if (rc != AVERROR(ENOMEM))
        av_strerror(rc, msg, sizeof msg);
    return ld_error_set(err, LD_ERR_INTERNAL, "denoise filter '%s': %s", d ? d->filter : "?", msg);
}

void ld_audio_denoiser_free(ld_audio_denoiser *d)
{
    if (!d)
        return;
    av_frame_free(&d->f);
    avfilter_graph_free(&d->g);
    free(d->buf);
    free(d);
}

ld_audio_denoiser *ld_audio_denoiser_new(const char *filter, ld_error *err)
{
    if (strlen(filter) >= FILTER_MAX) {
        ld_error_set(err, LD_ERR_INTERNAL, "denoise filter too long");
        return NULL;
    }
    ld_audio_denoiser *d = calloc(1, sizeof *d);
    AVFilterInOut *in = avfilter_inout_alloc(), *out = avfilter_inout_alloc();
    int rc = AVERROR(ENOMEM);
    if (!d || !in || !out)
        goto fail;
    snprintf(d->filter, sizeof d->filter, "%s", filter);
    /* afftdn's output lags its input by a fixed delay its timestamps do not show */
    d->delay = strncmp(filter, "afftdn", 6) ? 0 : LD_DENOISE_DELAY;
    if (!(d->g = avfilter_graph_alloc()) || !(d->f = av_frame_alloc()))
        goto fail;
    d->g->nb_threads = 1;
    rc = avfilter_graph_create_filter(&d->src, avfilter_get_by_name("abuffer"), "in",
                                      "time_base=1/16000:sample_rate=16000:sample_fmt=s16:channel_layout=mono",
                                      NULL, d->g);
    if (rc >= 0)
        rc = avfilter_graph_create_filter(&d->sink, avfilter_get_by_name("abuffersink"), "out", NULL, NULL, d->g);
    if (rc < 0)
        goto fail;
    /* the filter may work in float: aformat brings it back to the engine's format */
    char chain[512];
    snprintf(chain, sizeof chain, "%s,aformat=sample_fmts=s16:sample_rates=16000:channel_layouts=mono", filter);
    out->name = av_strdup("in");
    out->filter_ctx = d->src;
    in->name = av_strdup("out");
    in->filter_ctx = d->sink;
    rc = avfilter_graph_parse_ptr(d->g, chain, &in, &out, NULL);
    if (rc >= 0)
        rc = avfilter_graph_config(d->g, NULL);
    if (rc < 0)
        goto fail;
    avfilter_inout_free(&in);
    avfilter_inout_free(&out);
    return d;
fail:
    avfilter_inout_free(&in);
    avfilter_inout_free(&out);
    av_fail(d, rc, err);
    ld_audio_denoiser_free(d);
    return NULL;
}

static bool is_pad(ld_audio_denoiser *d, uint64_t i)
{
    while (d->npads && d->pads[0][1] <= i) { /* ranges the output has passed */
        memmove(d->pads, d->pads + 1, (size_t)--d->npads * sizeof d->pads[0]);
    }
    return d->npads && d->pads[0][0] <= i;
}

/* Appends what the sink has to buf, without the delay's first samples and the
 * flushes' zeros. */
static int drain(ld_audio_denoiser *d)
{
    for (;;) {
        int rc = av_buffersink_get_frame(d->sink, d->f);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return rc;
        size_t k = (size_t)d->f->nb_samples;
        if (d->len + k > d->cap) {
            size_t cap = d->cap ? d->cap : CHUNK;
            while (cap < d->len + k)
                cap *= 2;
            int16_t *p = realloc(d->buf, cap * sizeof *p);
            if (!p) {
                av_frame_unref(d->f);
                return AVERROR(ENOMEM);
            }
            d->buf = p, d->cap = cap;
        }
        const int16_t *s = (const int16_t *)d->f->data[0];
        for (size_t i = 0; i < k; i++, d->out++)
            if (d->out >= d->delay && !is_pad(d, d->out - d->delay))
                d->buf[d->len++] = s[i], d->real_out++;
        av_frame_unref(d->f);
    }
}

/* Pushes n samples (zeros if pcm is NULL) and drains what comes out. */
static int push(ld_audio_denoiser *d, const int16_t *pcm, size_t n)
{
    int rc = 0;
    for (size_t at = 0; rc >= 0 && at < n;) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        d->f->nb_samples = (int)k;
        d->f->format = AV_SAMPLE_FMT_S16;
        d->f->sample_rate = LD_SAMPLE_RATE;
        d->f->ch_layout = (AVChannelLayout)AV_CHANNEL_LAYOUT_MONO;
        d->f->pts = (int64_t)d->in;
        if ((rc = av_frame_get_buffer(d->f, 0)) < 0)
            break;
        if (pcm)
            memcpy(d->f->data[0], pcm + at, k * sizeof *pcm);
        else
            memset(d->f->data[0], 0, k * sizeof *pcm);
        d->in += k, at += k;
        rc = av_buffersrc_add_frame(d->src, d->f); /* takes the frame's reference */
        av_frame_unref(d->f);
        if (rc >= 0)
            rc = drain(d);
    }
    return rc;
}

static const int16_t none[1]; /* what an empty output points to (never NULL) */

ld_err ld_audio_denoiser_push(ld_audio_denoiser *d, const int16_t *pcm, size_t n, const int16_t **out,
                              size_t *out_n, ld_error *err)
{
    d->len = 0;
    int rc = push(d, pcm, n);
    d->real_in += n;
    *out = d->buf ? d->buf : none, *out_n = d->len;
    return rc < 0 ? av_fail(d, rc, err) : LD_OK;
}

ld_err ld_audio_denoiser_flush(ld_audio_denoiser *d, const int16_t **out, size_t *out_n, ld_error *err)
{
    d->len = 0;
    int rc = 0;
    /* zeros push the held samples out (afftdn's end of stream does not); a
     * filter that lost samples (a custom chain) stops after a few rounds */
    for (int round = 0; rc >= 0 && d->real_out < d->real_in && round < 8; round++) {
        if (d->npads == MAX_PADS)
            return ld_error_set(err, LD_ERR_INTERNAL, "denoise filter: too many flushes in a row");
        uint64_t z = d->delay ? d->delay : CHUNK;
        d->pads[d->npads][0] = d->in, d->pads[d->npads][1] = d->in + z;
        d->npads++;
        rc = push(d, NULL, z);
    }
    d->real_out = d->real_in; /* what a shortening filter lost is not owed any more */
    *out = d->buf ? d->buf : none, *out_n = d->len;
    return rc < 0 ? av_fail(d, rc, err) : LD_OK;
}

ld_err ld_audio_denoise(int16_t *pcm, size_t n, const char *filter, ld_error *err)
{
    if (n == 0)
        return LD_OK;
    ld_audio_denoiser *d = ld_audio_denoiser_new(filter, err);
    if (!d)
        return err->code;
    const int16_t *o;
    size_t k, pos_out = 0;
    ld_err rc = LD_OK;
    /* in place: the output trails the input, so what it writes was already read */
    for (size_t at = 0; rc == LD_OK && at < n; at += CHUNK) {
        size_t m = n - at < CHUNK ? n - at : CHUNK;
        if ((rc = ld_audio_denoiser_push(d, pcm + at, m, &o, &k, err)) == LD_OK) {
            memcpy(pcm + pos_out, o, k * sizeof *pcm);
            pos_out += k;
        }
    }
    if (rc == LD_OK && (rc = ld_audio_denoiser_flush(d, &o, &k, err)) == LD_OK) {
        k = k < n - pos_out ? k : n - pos_out;
        memcpy(pcm + pos_out, o, k * sizeof *pcm);
        pos_out += k;
    }
    if (rc == LD_OK && pos_out < n) /* a filter that shortened the signal: pad with silence */
        memset(pcm + pos_out, 0, (n - pos_out) * sizeof *pcm);
    ld_audio_denoiser_free(d);
    return rc;
}

const char *ld_audio_denoise_chain(double noise_dbfs, char *buf, size_t size)
{
    const char *f = getenv("LISTEND_DENOISE");
    if (!f || !*f) {
        ld_audio_denoise_filter(noise_dbfs, buf, size);
        f = buf;
    }
    return strcmp(f, "none") ? f : NULL;
}

ld_err ld_audio_denoise_route(int16_t *pcm, size_t n, double noise_dbfs, ld_error *err)
{
    char chain[128];
    const char *f = ld_audio_denoise_chain(noise_dbfs, chain, sizeof chain);
    ld_log(LD_LOG_DEBUG, "noisy route: denoising %.1f s with %s", (double)n / LD_SAMPLE_RATE, f ? f : "none");
    return f ? ld_audio_denoise(pcm, n, f, err) : LD_OK;
}

void ld_audio_denoise_filter(double noise_dbfs, char *buf, size_t size)
{
    double nf = noise_dbfs + LD_DENOISE_NF_OFFSET;
    nf = nf < -80 ? -80 : nf > -20 ? -20 : nf;
    snprintf(buf, size, "afftdn=nr=%.1f:nf=%.1f", LD_DENOISE_NR, nf);
}
