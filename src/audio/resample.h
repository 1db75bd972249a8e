/* Internal to src/audio/: converts any FFmpeg sample layout/rate/format to the
 * engine format (16 kHz mono s16), re-configuring itself when the input
 * changes mid-stream (chained Ogg, MP3 rate switches). Input at 8 kHz or
 * below is brought to 8 kHz and upsampled by zero insertion (narrowband.h),
 * and `narrowband` is set. Not thread-safe. */
#ifndef LD_AUDIO_RESAMPLE_H
#define LD_AUDIO_RESAMPLE_H

#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <stdbool.h>
#include <stdint.h>

struct SwrContext;
typedef struct {
    struct SwrContext *swr;
    int rate, fmt;
    AVChannelLayout layout;
    int16_t *buf;    /* output of the last call, owned here */
    int cap;         /* samples */
    bool mirror;     /* current configuration: 8 kHz + zero insertion */
    bool narrowband; /* some input so far was <= 8 kHz */
    int pick;        /* 0: downmix every channel; c + 1: input channel c alone (multichannel) */
} ld_resampler;

void ld_resampler_init(ld_resampler *r);
/* Like init, but the output is input channel `channel` alone (0-based; input
 * with fewer channels is a bad input description). */
void ld_resampler_init_channel(ld_resampler *r, int channel);
void ld_resampler_free(ld_resampler *r);
/* Converts nb input samples; *out points into r (valid until the next call).
 * Returns the number of output samples, or -1 on a bad input description. */
int ld_resampler_push(ld_resampler *r, const uint8_t *const *in, int nb, int rate, int fmt,
                      const AVChannelLayout *layout, const int16_t **out);
int ld_resampler_frame(ld_resampler *r, const AVFrame *f, const int16_t **out);
/* Emits what the filter still holds. */
int ld_resampler_flush(ld_resampler *r, const int16_t **out);

#endif
