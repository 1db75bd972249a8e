/* FFmpeg decode through a custom AVIOContext (no FFmpeg protocols ever), with
 * allow-listed demuxers/decoders, capped probing, resampling to 16 kHz mono s16
 * and a duration cap enforced while decoding. */
#include "audio/audio.h"
#include "audio/pcm_buf.h"
#include "audio/resample.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/log.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_BUF 65536
#define PROBE_MAX (1 << 20)                 /* bytes looked at to recognise the container */
#define ANALYZE_US (5 * 1000000LL)          /* stream-info analysis window */
#define MIN_PROBE_SCORE AVPROBE_SCORE_RETRY /* below: a guess, not a recognition */
#define DEFAULT_SPILL_S 300.0

const char *const ld_audio_supported_formats[] = {"wav", "mp3", "flac", "ogg", "m4a", "webm"};
const size_t ld_audio_supported_formats_count = sizeof ld_audio_supported_formats /
                                                sizeof ld_audio_supported_formats[0];

/* Demuxer short names (matched against any of a demuxer's comma names). */
static const char *const demuxers[] = {"wav", "mp3", "flac", "ogg", "mov", "matroska", "aac"};
#define DEMUXER_LIST "wav,mp3,flac,ogg,mov,mp4,m4a,matroska,webm,aac"
/* Decoders FFmpeg may open for us (names, as codec_whitelist wants). */
#define DECODER_LIST                                                                   \
    "pcm_s16le,pcm_s16be,pcm_s24le,pcm_s24be,pcm_s32le,pcm_s32be,pcm_f32le,pcm_f32be," \
    "pcm_f64le,pcm_f64be,pcm_u8,pcm_s8,pcm_alaw,pcm_mulaw,adpcm_ms,adpcm_ima_wav,"     \
    "mp3float,mp3,flac,vorbis,libvorbis,opus,libopus,aac,aac_fixed,alac"
static const enum AVCodecID codecs[] = {
    AV_CODEC_ID_PCM_S16LE, AV_CODEC_ID_PCM_S16BE, AV_CODEC_ID_PCM_S24LE, AV_CODEC_ID_PCM_S24BE,
    AV_CODEC_ID_PCM_S32LE, AV_CODEC_ID_PCM_S32BE, AV_CODEC_ID_PCM_F32LE, AV_CODEC_ID_PCM_F32BE,
    AV_CODEC_ID_PCM_F64LE, AV_CODEC_ID_PCM_F64BE, AV_CODEC_ID_PCM_U8,    AV_CODEC_ID_PCM_S8,
    AV_CODEC_ID_PCM_ALAW,  AV_CODEC_ID_PCM_MULAW, AV_CODEC_ID_ADPCM_MS,  AV_CODEC_ID_ADPCM_IMA_WAV,
    AV_CODEC_ID_MP3,       AV_CODEC_ID_FLAC,      AV_CODEC_ID_VORBIS,    AV_CODEC_ID_OPUS,
    AV_CODEC_ID_AAC,       AV_CODEC_ID_ALAC,
};

/* ---- FFmpeg's log goes to ours, at debug level: corrupt uploads are the
 * client's problem and must not flood the server log. ---- */
static void av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_WARNING || !ld_log_enabled(LD_LOG_DEBUG))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
        line[--l] = '\0';
    if (l)
        ld_log(LD_LOG_DEBUG, "ffmpeg: %s", line);
}
static pthread_once_t av_once = PTHREAD_ONCE_INIT;
static void av_setup(void) { av_log_set_callback(av_log_cb); }

/* ---- byte sources for the custom AVIOContext ---- */
typedef struct {
    const uint8_t *data; /* memory source, or NULL for fd */
    int fd;
    int64_t size, pos;
} src_t;

static int src_read(void *opaque, uint8_t *buf, int n)
{
    src_t *s = opaque;
    if (s->data) {
        int64_t left = s->size - s->pos;
        if (left <= 0)
            return AVERROR_EOF;
        if (n > left)
            n = (int)left;
        memcpy(buf, s->data + s->pos, (size_t)n);
        s->pos += n;
        return n;
    }
    for (;;) {
        ssize_t r = read(s->fd, buf, (size_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return AVERROR(errno);
        if (r == 0)
            return AVERROR_EOF;
        s->pos += r;
        return (int)r;
    }
}

static int64_t src_seek(void *opaque, int64_t off, int whence)
{
    src_t *s = opaque;
    if (whence & AVSEEK_SIZE)
        return s->size;
    whence &= ~AVSEEK_FORCE;
    int64_t np = whence == SEEK_SET   ? off
                 : whence == SEEK_CUR ? s->pos + off
                 : whence == SEEK_END ? s->size + off
                                      : -1;
    if (np < 0)
        return AVERROR(EINVAL);
    if (!s->data && lseek(s->fd, np, SEEK_SET) < 0)
        return AVERROR(errno);
    s->pos = np;
    return np;
}

/* Nested opens (playlists, references to other files) are never allowed. */
static int deny_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                        AVDictionary **options)
{
    (void)s, (void)pb, (void)flags, (void)options;
    ld_log(LD_LOG_DEBUG, "refused nested open of %s", url);
    return AVERROR(EPERM);
}

static bool allowed_demuxer(const AVInputFormat *f)
{
    for (size_t i = 0; i < sizeof demuxers / sizeof *demuxers; i++)
        if (av_match_name(demuxers[i], f->name))
            return true;
    return false;
}

static bool allowed_codec(enum AVCodecID id)
{
    for (size_t i = 0; i < sizeof codecs / sizeof *codecs; i++)
        if (codecs[i] == id)
            return true;
    return false;
}

typedef struct {
    AVIOContext *pb;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    /* One sink (resampler + PCM) for the downmix, or one per channel when
     * split (multichannel, up to LD_MAX_CHANNELS). */
    ld_resampler rs[LD_MAX_CHANNELS];
    ld_pcm_buf out[LD_MAX_CHANNELS];
    size_t nsink;
    size_t max_split;   /* 0: downmix; else the channel cap of a split decode */
    size_t max_samples; /* 0 = unlimited */
    double max_seconds;
} dec_t;

static void dec_free(dec_t *d)
{
    for (size_t c = 0; c < d->nsink; c++) {
        ld_resampler_free(&d->rs[c]);
        ld_pcm_buf_discard(&d->out[c]);
    }
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    if (d->pb) {
        av_freep(&d->pb->buffer);
        avio_context_free(&d->pb);
    }
}

static ld_err too_long(dec_t *d, ld_error *err)
{
    return ld_error_set(err, LD_ERR_AUDIO_TOO_LONG, "Audio is longer than the maximum of %g seconds",
                        d->max_seconds);
}

/* A source rate below LD_AUDIO_MIN_RATE (audio.h), in a header or a chained file's later part. */
static ld_err low_rate(int rate, ld_error *err)
{
    return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                        "Audio sample rate of %d Hz is not supported: at least %d Hz is needed", rate,
                        LD_AUDIO_MIN_RATE);
}

/* Resamples one frame (or flushes when f == NULL) into every sink and appends it. */
static ld_err push(dec_t *d, const AVFrame *f, ld_error *err)
{
    if (f && f->sample_rate > 0 && f->sample_rate < LD_AUDIO_MIN_RATE) /* a chained file's later part */
        return low_rate(f->sample_rate, err);
    for (size_t c = 0; c < d->nsink; c++) {
        const int16_t *s;
        int n = f ? ld_resampler_frame(&d->rs[c], f, &s) : ld_resampler_flush(&d->rs[c], &s);
        if (n < 0)
            return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                                "Audio could not be resampled (bad sample rate or channel layout%s)",
                                d->max_split ? ", or the channel count changed" : "");
        if (d->max_samples && d->out[c].total + (size_t)n > d->max_samples)
            return too_long(d, err);
        if (n && ld_pcm_buf_append(&d->out[c], s, (size_t)n))
            return ld_error_set(err, LD_ERR_INTERNAL, "Out of memory or temp space while decoding audio");
    }
    return LD_OK;
}

/* Multichannel: one sink per channel of the chosen stream, each resampler
 * keeping its channel alone. More than max_split channels is the client's
 * choice of file, refused with the limit. */
static ld_err split_sinks(dec_t *d, const ld_decode_opts *o, size_t spill, ld_error *err)
{
    int ch = d->dec->ch_layout.nb_channels;
    if (ch < 1)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio file corrupted or invalid: no channels");
    if ((size_t)ch > d->max_split)
        return ld_error_set(err, LD_ERR_INVALID_PARAMETER,
                            "Invalid parameter 'multichannel': the audio has %d channels; at most %zu are "
                            "transcribed separately",
                            ch, d->max_split);
    ld_resampler_free(&d->rs[0]);
    for (int c = 0; c < ch; c++) {
        ld_resampler_init_channel(&d->rs[c], c);
        if (c)
            ld_pcm_buf_init(&d->out[c], o ? o->tmp_dir : NULL, spill);
    }
    d->nsink = (size_t)ch;
    return LD_OK;
}

/* Drains decoded frames. Decoder errors on single packets are tolerated and
 * counted (players skip them too); the caller decides what too many mean. */
static ld_err drain(dec_t *d, long *bad, ld_error *err)
{
    for (;;) {
        int r = avcodec_receive_frame(d->dec, d->frame);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return LD_OK;
        if (r < 0) {
            (*bad)++;
            return LD_OK;
        }
        ld_err e = push(d, d->frame, err);
        av_frame_unref(d->frame);
        if (e)
            return e;
    }
}

static ld_err open_input(dec_t *d, src_t *src, ld_error *err)
{
    uint8_t *buf = av_malloc(IO_BUF);
    d->pb = buf ? avio_alloc_context(buf, IO_BUF, 0, src, src_read, NULL, src_seek) : NULL;
    d->fmt = avformat_alloc_context();
    if (!d->pb || !d->fmt) {
        if (!d->pb)
            av_free(buf);
        return ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    }
    const AVInputFormat *ifmt = NULL;
    int score = av_probe_input_buffer2(d->pb, &ifmt, "", NULL, 0, PROBE_MAX);
    if (score < MIN_PROBE_SCORE || !ifmt)
        return ld_error_set(err, LD_ERR_UNSUPPORTED_FORMAT,
                            "Unsupported audio format: the data is not a recognised audio file");
    if (!allowed_demuxer(ifmt))
        return ld_error_set(err, LD_ERR_UNSUPPORTED_FORMAT, "Unsupported audio format: %s", ifmt->name);

    d->fmt->pb = d->pb;
    d->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    d->fmt->io_open = deny_io_open;
    d->fmt->probesize = PROBE_MAX;
    d->fmt->max_analyze_duration = ANALYZE_US;
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "format_whitelist", DEMUXER_LIST, 0);
    av_dict_set(&opts, "codec_whitelist", DECODER_LIST, 0);
    av_dict_set(&opts, "protocol_whitelist", "none", 0);
    av_dict_set(&opts, "max_streams", "32", 0);
    int r = avformat_open_input(&d->fmt, NULL, ifmt, &opts);
    av_dict_free(&opts);
    if (r < 0) /* avformat_open_input freed the context on failure */
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio file corrupted or invalid: cannot read the %s header",
                            ifmt->name);
    if (avformat_find_stream_info(d->fmt, NULL) < 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio file corrupted or invalid: no readable stream in %s",
                            ifmt->name);
    return LD_OK;
}

static ld_err open_decoder(dec_t *d, int *idx, ld_error *err)
{
    const AVCodec *codec = NULL;
    int si = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (si < 0) {
        bool any = false;
        for (unsigned i = 0; i < d->fmt->nb_streams; i++)
            any |= d->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
        if (any)
            return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                                "Audio file corrupted or invalid: the audio stream cannot be read");
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "The file contains no audio stream");
    }
    AVCodecParameters *par = d->fmt->streams[si]->codecpar;
    if (!allowed_codec(par->codec_id))
        return ld_error_set(err, LD_ERR_UNSUPPORTED_FORMAT, "Unsupported audio codec: %s",
                            avcodec_get_name(par->codec_id));
    codec = avcodec_find_decoder(par->codec_id);
    d->dec = codec ? avcodec_alloc_context3(codec) : NULL;
    if (!d->dec)
        return ld_error_set(err, LD_ERR_UNSUPPORTED_FORMAT, "Unsupported audio codec: %s",
                            avcodec_get_name(par->codec_id));
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "codec_whitelist", DECODER_LIST, 0);
    av_dict_set(&opts, "threads", "1", 0); /* parallelism comes from requests, not decoders */
    int r = avcodec_parameters_to_context(d->dec, par);
    if (r >= 0)
        r = avcodec_open2(d->dec, codec, &opts);
    av_dict_free(&opts);
    if (r < 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO,
                            "Audio file corrupted or invalid: cannot open the %s decoder", codec->name);
    if (d->dec->sample_rate > 0 && d->dec->sample_rate < LD_AUDIO_MIN_RATE)
        return low_rate(d->dec->sample_rate, err);
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if ((int)i != si)
            d->fmt->streams[i]->discard = AVDISCARD_ALL;
    *idx = si;
    return LD_OK;
}

/* The duration the container states (header, index or bitrate estimate), 0 if none. */
static double probed_seconds(const dec_t *d, int si)
{
    if (d->fmt->duration != AV_NOPTS_VALUE && d->fmt->duration > 0)
        return (double)d->fmt->duration / AV_TIME_BASE;
    const AVStream *st = d->fmt->streams[si];
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        return (double)st->duration * av_q2d(st->time_base);
    return 0;
}

/* out[] has max(1, max_split) entries; *n_out gets how many were filled. */
static ld_err decode_src(src_t *src, const ld_decode_opts *o, ld_pcm *out, size_t max_split, size_t *n_out,
                         ld_error *err)
{
    pthread_once(&av_once, av_setup);
    memset(out, 0, sizeof *out * (max_split ? max_split : 1));
    *n_out = 0;
    if (src->size == 0)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio file is empty (0 bytes)");

    dec_t d = {0};
    d.nsink = 1;
    d.max_split = max_split > LD_MAX_CHANNELS ? LD_MAX_CHANNELS : max_split;
    d.max_seconds = o ? o->max_seconds : 0;
    d.max_samples = d.max_seconds > 0 ? (size_t)(d.max_seconds * LD_SAMPLE_RATE + 0.5) : 0;
    double spill_s = o && o->spill_seconds > 0 ? o->spill_seconds : DEFAULT_SPILL_S;
    size_t spill = (size_t)(spill_s * LD_SAMPLE_RATE);
    ld_pcm_buf_init(&d.out[0], o ? o->tmp_dir : NULL, spill);
    ld_resampler_init(&d.rs[0]);

    int si = -1;
    long bad = 0, packets = 0;
    ld_err e = open_input(&d, src, err);
    if (!e)
        e = open_decoder(&d, &si, err);
    if (!e && d.max_split)
        e = split_sinks(&d, o, spill, err);
    if (!e && o && o->on_probe) /* per channel when split: each channel is charged (docs/api.md) */
        e = o->on_probe(o->probe_ud, probed_seconds(&d, si) * (d.max_split ? d.dec->ch_layout.nb_channels : 1),
                        err);
    if (!e && (!(d.pkt = av_packet_alloc()) || !(d.frame = av_frame_alloc())))
        e = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory");
    bool read_error = false;
    while (!e) {
        if (o && o->abort && o->abort(o->abort_ud)) {
            e = ld_error_set(err, LD_ERR_SERVICE_UNAVAILABLE, "cancelled: decoding stopped");
            break;
        }
        int r = av_read_frame(d.fmt, d.pkt);
        if (r < 0) {
            /* A damaged tail ends the input like EOF: keep what decoded. */
            read_error = r != AVERROR_EOF;
            break;
        }
        if (d.pkt->stream_index == si) {
            packets++;
            if (avcodec_send_packet(d.dec, d.pkt) < 0)
                bad++;
            e = drain(&d, &bad, err);
        }
        av_packet_unref(d.pkt);
    }
    if (!e) {
        avcodec_send_packet(d.dec, NULL);
        e = drain(&d, &bad, err);
    }
    if (!e)
        e = push(&d, NULL, err);
    if (!e && d.out[0].total == 0)
        e = ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio file corrupted or invalid: no audio could be decoded");
    /* Mostly-undecodable input is garbage that happened to look like audio. */
    if (!e && bad > 8 && bad * 2 > packets)
        e = ld_error_set(err, LD_ERR_INVALID_AUDIO,
                         "Audio file corrupted or invalid: %ld of %ld packets failed to decode", bad, packets);
    if (!e) {
        if (bad || read_error)
            ld_log(LD_LOG_DEBUG, "decoded %.2f s with %ld bad packets%s", (double)d.out[0].total / LD_SAMPLE_RATE,
                   bad, read_error ? " and a damaged tail" : "");
        for (size_t c = 0; !e && c < d.nsink; c++) {
            if (ld_pcm_buf_finish(&d.out[c], &out[c]))
                e = ld_error_set(err, LD_ERR_INTERNAL, "Out of memory or temp space while decoding audio");
            else /* telephone band: G.711 at any rate, anything at <= 8 kHz */
                out[c].narrowband = d.rs[c].narrowband || d.dec->codec_id == AV_CODEC_ID_PCM_MULAW ||
                                    d.dec->codec_id == AV_CODEC_ID_PCM_ALAW;
        }
        if (e)
            for (size_t c = 0; c < d.nsink; c++)
                ld_pcm_free(&out[c]);
        else
            *n_out = d.nsink;
    }
    dec_free(&d);
    return e;
}

ld_err ld_audio_decode_mem(const uint8_t *data, size_t len, const ld_decode_opts *o, ld_pcm *out, ld_error *err)
{
    size_t n;
    src_t s = {.data = data ? data : (const uint8_t *)"", .fd = -1, .size = (int64_t)len};
    return decode_src(&s, o, out, 0, &n, err);
}

ld_err ld_audio_decode_mem_channels(const uint8_t *data, size_t len, const ld_decode_opts *o, ld_pcm *out,
                                    size_t max_ch, size_t *n_ch, ld_error *err)
{
    src_t s = {.data = data ? data : (const uint8_t *)"", .fd = -1, .size = (int64_t)len};
    return decode_src(&s, o, out, max_ch ? max_ch : 1, n_ch, err);
}

/* max_split 0: downmix into out[0]. */
static ld_err decode_path(const char *path, const ld_decode_opts *o, ld_pcm *out, size_t max_split, size_t *n_out,
                          ld_error *err)
{
    memset(out, 0, sizeof *out * (max_split ? max_split : 1));
    *n_out = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int stat_rc = fd >= 0 ? fstat(fd, &st) : -1;
    if (stat_rc || !S_ISREG(st.st_mode)) {
        /* errno says nothing when the file opened but is no regular file (a directory given to the CLI) */
        const char *why = stat_rc               ? strerror(errno)
                          : S_ISDIR(st.st_mode) ? "it is a directory"
                                                : "it is not a regular file";
        ld_log(LD_LOG_ERROR, "cannot open audio file %s: %s", path, why);
        if (fd >= 0)
            close(fd);
        return ld_error_set(err, LD_ERR_INTERNAL, "Cannot read the audio file: %s", why);
    }
    src_t s = {.fd = fd, .size = st.st_size};
    ld_err e = decode_src(&s, o, out, max_split, n_out, err);
    close(fd);
    return e;
}

ld_err ld_audio_decode_file(const char *path, const ld_decode_opts *o, ld_pcm *out, ld_error *err)
{
    size_t n;
    return decode_path(path, o, out, 0, &n, err);
}

ld_err ld_audio_decode_file_channels(const char *path, const ld_decode_opts *o, ld_pcm *out, size_t max_ch,
                                     size_t *n_ch, ld_error *err)
{
    return decode_path(path, o, out, max_ch ? max_ch : 1, n_ch, err);
}
