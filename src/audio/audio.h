/* Audio in: URL fetch (SSRF-guarded), decode + resample to the engine's format,
 * and silence-based segmentation.
 *
 * Engine format everywhere: 16 kHz, mono, signed 16-bit native-endian PCM.
 * Thread-safety: all functions are reentrant; nothing is shared between calls.
 * Ownership: an ld_pcm filled by these functions is owned by the caller and
 * released with ld_pcm_free (it may be heap- or mmap-backed). */
#ifndef LD_AUDIO_AUDIO_H
#define LD_AUDIO_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define LD_SAMPLE_RATE 16000

typedef struct {
    int16_t *samples;
    size_t n;          /* number of samples */
    void *priv_;       /* backend bookkeeping (mmap length, …) */
} ld_pcm;

void ld_pcm_free(ld_pcm *pcm);
static inline double ld_pcm_seconds(const ld_pcm *p) { return (double)p->n / LD_SAMPLE_RATE; }

/* ---- decode ---- */
typedef struct {
    double max_seconds;    /* longer audio -> LD_ERR_AUDIO_TOO_LONG (0 = no cap) */
    const char *tmp_dir;   /* where long PCM may be spilled (mmap); NULL = $TMPDIR or /tmp */
} ld_decode_opts;

/* Comma list of accepted container names for 415 bodies: wav, mp3, flac, ogg, m4a, webm. */
extern const char *const ld_audio_supported_formats[];
extern const size_t ld_audio_supported_formats_count;

/* Decodes any allow-listed format (WAV, MP3, FLAC, Ogg Vorbis/Opus, M4A/AAC,
 * WebM/Opus) from a file through FFmpeg with a custom I/O context (no FFmpeg
 * protocols). Not audio -> LD_ERR_UNSUPPORTED_FORMAT; corrupt/truncated ->
 * LD_ERR_INVALID_AUDIO; too long -> LD_ERR_AUDIO_TOO_LONG. */
ld_err ld_audio_decode_file(const char *path, const ld_decode_opts *o, ld_pcm *out, ld_error *err);
ld_err ld_audio_decode_mem(const uint8_t *data, size_t len, const ld_decode_opts *o, ld_pcm *out, ld_error *err);
/* Headerless PCM (raw 16-bit little-endian mono at `rate`), e.g. goforward.raw. */
ld_err ld_audio_decode_raw_s16(const uint8_t *data, size_t len, int rate, ld_pcm *out, ld_error *err);

/* ---- fetch ---- */
typedef struct {
    bool allow_private;        /* allow loopback/private/link-local/metadata targets */
    size_t max_bytes;          /* exceeded -> LD_ERR_FILE_TOO_LARGE */
    long connect_timeout_ms;   /* default 10 000 */
    long total_timeout_ms;     /* default 300 000 */
    int max_redirects;         /* default 5 */
} ld_fetch_opts;

/* Downloads http(s):// or s3://bucket/key (SigV4 from AWS_* env, endpoint from
 * AWS_ENDPOINT_URL / AWS_S3_ENDPOINT) into the open file descriptor `fd`.
 * Failures -> LD_ERR_URL_FETCH_FAILED with the reason (status, refused address,
 * timeout), except the size cap -> LD_ERR_FILE_TOO_LARGE. */
ld_err ld_audio_fetch(const char *url, const ld_fetch_opts *o, int fd, size_t *bytes, ld_error *err);
/* The address policy alone, for callback URLs: LD_OK when `url` may be used. */
ld_err ld_audio_check_url(const char *url, bool allow_private, ld_error *err);

/* ---- segmentation ---- */
typedef struct {
    size_t start, end;   /* sample indices, [start, end) */
} ld_segment;

/* Cuts at silences into speech segments of at most max_seconds (forcing a cut at
 * the quietest point when no pause exists). Returns the count; *out is malloc'd
 * and owned by the caller. Pure silence gives 0 segments. */
size_t ld_audio_segment(const int16_t *pcm, size_t n, double max_seconds, ld_segment **out);

#endif
