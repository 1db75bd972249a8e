/* Speech enhancement for the noisy route (audio.h ld_audio_denoise): FFmpeg's
 * afftdn spectral denoiser through libavfilter, run in place over the whole
 * request. One thread per call: the decoder pool already uses every core, and
 * RTF is counted per core (docs/engine.md § Noise). */
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

/* Copies every frame the sink has into out[*pos..n), after dropping the first
 * *skip samples (the filter's delay). */
static int drain(AVFilterContext *sink, AVFrame *f, int16_t *out, size_t n, size_t *pos, size_t *skip)
{
    for (;;) {
        int rc = av_buffersink_get_frame(sink, f);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc < 0)
            return rc;
        const int16_t *s = (const int16_t *)f->data[0];
        size_t k = (size_t)f->nb_samples, drop = *skip < k ? *skip : k;
        *skip -= drop;
        s += drop, k -= drop;
        if (k > n - *pos)
            k = n - *pos;
        memcpy(out + *pos, s, k * sizeof *out);
        *pos += k;
        av_frame_unref(f);
    }
}

ld_err ld_audio_denoise(int16_t *pcm, size_t n, const char *filter, ld_error *err)
{
    if (n == 0)
        return LD_OK;
    AVFilterGraph *g = avfilter_graph_alloc();
    AVFilterContext *src = NULL, *sink = NULL;
    AVFilterInOut *in = avfilter_inout_alloc(), *out = avfilter_inout_alloc();
    AVFrame *f = av_frame_alloc();
    char chain[512];
    int rc = -1;
    if (!g || !in || !out || !f)
        goto done;
    g->nb_threads = 1;
    rc = avfilter_graph_create_filter(&src, avfilter_get_by_name("abuffer"), "in",
                                      "time_base=1/16000:sample_rate=16000:sample_fmt=s16:channel_layout=mono",
                                      NULL, g);
    if (rc >= 0)
        rc = avfilter_graph_create_filter(&sink, avfilter_get_by_name("abuffersink"), "out", NULL, NULL, g);
    if (rc < 0)
        goto done;
    /* the filter may work in float: aformat brings it back to the engine's format */
    snprintf(chain, sizeof chain, "%s,aformat=sample_fmts=s16:sample_rates=16000:channel_layouts=mono", filter);
    out->name = av_strdup("in");
    out->filter_ctx = src;
    in->name = av_strdup("out");
    in->filter_ctx = sink;
    rc = avfilter_graph_parse_ptr(g, chain, &in, &out, NULL);
    if (rc >= 0)
        rc = avfilter_graph_config(g, NULL);
    if (rc < 0)
        goto done;
    /* afftdn's output lags its input by a fixed delay its timestamps do not show, and
     * its end of stream does not flush it: the input gets that many zeros more, and
     * as many output samples are dropped at the start */
    size_t delay = strncmp(filter, "afftdn", 6) ? 0 : LD_DENOISE_DELAY;
    size_t pos_in = 0, pos_out = 0, skip = delay;
    while (rc >= 0 && pos_in < n + delay) {
        size_t k = n + delay - pos_in < CHUNK ? n + delay - pos_in : CHUNK;
        f->nb_samples = (int)k;
        f->format = AV_SAMPLE_FMT_S16;
        f->sample_rate = LD_SAMPLE_RATE;
        f->ch_layout = (AVChannelLayout)AV_CHANNEL_LAYOUT_MONO;
        f->pts = (int64_t)pos_in;
        rc = av_frame_get_buffer(f, 0);
        if (rc < 0)
            break;
        size_t real = pos_in < n ? (n - pos_in < k ? n - pos_in : k) : 0;
        memcpy(f->data[0], pcm + pos_in, real * sizeof *pcm);
        memset((int16_t *)f->data[0] + real, 0, (k - real) * sizeof *pcm);
        pos_in += k;
        rc = av_buffersrc_add_frame(src, f); /* takes the frame's reference */
        av_frame_unref(f);
        if (rc >= 0) /* the output trails the input: what it writes was already read */
            rc = drain(sink, f, pcm, pos_in < n ? pos_in : n, &pos_out, &skip);
    }
    if (rc >= 0)
        rc = av_buffersrc_add_frame(src, NULL); /* end of stream: flush the filter's delay */
    if (rc >= 0)
        rc = drain(sink, f, pcm, n, &pos_out, &skip);
    if (rc >= 0 && pos_out < n) /* a filter that shortened the signal: pad with silence */
        memset(pcm + pos_out, 0, (n - pos_out) * sizeof *pcm);
done:
    av_frame_free(&f);
    avfilter_inout_free(&in);
    avfilter_inout_free(&out);
    avfilter_graph_free(&g);
    if (rc < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE] = "out of memory";
        if (rc != -1)
            av_strerror(rc, msg, sizeof msg);
        return ld_error_set(err, LD_ERR_INTERNAL, "denoise filter '%s': %s", filter, msg);
    }
    return LD_OK;
}

ld_err ld_audio_denoise_route(int16_t *pcm, size_t n, double noise_dbfs, ld_error *err)
{
    char chain[128];
    const char *f = getenv("LISTEND_DENOISE");
    if (!f || !*f) {
        ld_audio_denoise_filter(noise_dbfs, chain, sizeof chain);
        f = chain;
    }
    ld_log(LD_LOG_DEBUG, "noisy route: denoising %.1f s with %s", (double)n / LD_SAMPLE_RATE, f);
    return strcmp(f, "none") ? ld_audio_denoise(pcm, n, f, err) : LD_OK;
}

void ld_audio_denoise_filter(double noise_dbfs, char *buf, size_t size)
{
    double nf = noise_dbfs + LD_DENOISE_NF_OFFSET;
    nf = nf < -80 ? -80 : nf > -20 ? -20 : nf;
    snprintf(buf, size, "afftdn=nr=%.1f:nf=%.1f", LD_DENOISE_NR, nf);
}
