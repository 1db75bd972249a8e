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

#include "audio/stream.h"
#include "util/err.h"

#define LD_SAMPLE_RATE 16000

typedef struct {
    int16_t *samples;
    size_t n;        /* number of samples */
    void *priv_;     /* backend bookkeeping (mmap length, …) */
    bool narrowband; /* telephone band: the source was <= 8 kHz or G.711 (mu-law/A-law);
                        * <= 8 kHz sources are upsampled by zero insertion (narrowband.h) */
} ld_pcm;

void ld_pcm_free(ld_pcm *pcm);
static inline double ld_pcm_seconds(const ld_pcm *p) { return (double)p->n / LD_SAMPLE_RATE; }

/* ---- decode ---- */
typedef struct {
    double max_seconds;   /* longer audio -> LD_ERR_AUDIO_TOO_LONG (0 = no cap) */
    const char *tmp_dir;  /* where long PCM may be spilled (mmap); NULL = $TMPDIR or /tmp */
    double spill_seconds; /* PCM longer than this lives in an mmap'd temp file (0 = 300 s) */
    /* Called once the container is probed, before any audio is decoded, with
     * its duration in seconds (0 when the container does not say); an error
     * ends the decode with it (quota reservation, server/pipeline.c). */
    ld_err (*on_probe)(void *ud, double seconds, ld_error *err);
    void *probe_ud;
    /* Polled between packets: true ends the decode with LD_ERR_SERVICE_UNAVAILABLE
     * "cancelled" (the client left or the job was cancelled: hours of audio
     * are not decoded for no one). NULL = never. */
    bool (*abort)(void *ud);
    void *abort_ud;
} ld_decode_opts;

/* The lowest source sample rate decoded (telephone audio): below it a header's
 * rate is refused, as a headerless upload's `sample_rate` is — each sample of a
 * 1 Hz "WAV" would become 16,000, a small upload hours of audio. */
#define LD_AUDIO_MIN_RATE 8000

/* Accepted container names for 415 bodies: wav, mp3, flac, ogg, m4a, webm (static). */
extern const char *const ld_audio_supported_formats[];
extern const size_t ld_audio_supported_formats_count;

/* Decodes any allow-listed format (WAV, MP3, FLAC, Ogg Vorbis/Opus, M4A/AAC,
 * WebM/Opus) from a file through FFmpeg with a custom I/O context (no FFmpeg
 * protocols). Not audio -> LD_ERR_UNSUPPORTED_FORMAT; corrupt/truncated or
 * below LD_AUDIO_MIN_RATE -> LD_ERR_INVALID_AUDIO; too long -> LD_ERR_AUDIO_TOO_LONG. */
ld_err ld_audio_decode_file(const char *path, const ld_decode_opts *o, ld_pcm *out, ld_error *err);
ld_err ld_audio_decode_mem(const uint8_t *data, size_t len, const ld_decode_opts *o, ld_pcm *out, ld_error *err);
/* The command line's names for headerless files: .raw/.pcm = linear16 at 16 kHz
 * (e.g. goforward.raw), .ul/.ulaw/.mu = G.711 mu-law and .al/.alaw = A-law at
 * 8 kHz (SoX's and Asterisk's names); mono. False for any other name. */
bool ld_audio_raw_by_name(const char *path, ld_stream_encoding *enc, int *rate);
/* A file named on the command line: a headerless name (above) is read whole as
 * such, mono (`o` applies to the other files); anything else goes through
 * ld_audio_decode_file. Unreadable -> LD_ERR_INVALID_AUDIO "cannot read 'PATH'". */
ld_err ld_audio_decode_named(const char *path, const ld_decode_opts *o, ld_pcm *out, ld_error *err);

/* ---- multichannel (issue 14): one engine-format PCM per channel ----
 * Each channel of the file's audio stream is resampled on its own (no
 * downmix) into out[0..*n_ch); out must have room for max_ch entries
 * (max_ch <= LD_MAX_CHANNELS). A file with more than max_ch channels ->
 * LD_ERR_INVALID_PARAMETER naming the limit; other errors as above. On error
 * nothing is left to free. A mono file gives one channel. */
#define LD_MAX_CHANNELS 8
ld_err ld_audio_decode_file_channels(const char *path, const ld_decode_opts *o, ld_pcm *out, size_t max_ch,
                                     size_t *n_ch, ld_error *err);
ld_err ld_audio_decode_mem_channels(const uint8_t *data, size_t len, const ld_decode_opts *o, ld_pcm *out,
                                    size_t max_ch, size_t *n_ch, ld_error *err);
/* Interleaved headerless audio with `channels` (1..LD_MAX_CHANNELS) channels
 * in one of the PCM stream encodings (linear16, linear32, or G.711 mu-law /
 * A-law, which is marked narrowband at any rate, as G.711 WAV files are).
 * out[c] is channel c (a trailing incomplete frame is dropped); Opus ->
 * LD_ERR_INVALID_PARAMETER (it needs framing: a container or a stream). */
ld_err ld_audio_decode_raw_channels(const uint8_t *data, size_t len, ld_stream_encoding enc, int rate, int channels,
                                    ld_pcm *out, ld_error *err);

/* ---- fetch ---- */
typedef struct {
    bool allow_private;      /* allow loopback/private/link-local/metadata targets */
    size_t max_bytes;        /* exceeded -> LD_ERR_FILE_TOO_LARGE */
    long connect_timeout_ms; /* default 10 000 */
    long total_timeout_ms;   /* default 300 000 */
    int max_redirects;       /* default 5 */
    /* A transfer slower than low_speed_bytes per second over low_speed_time_s
     * is abandoned (also while waiting for the answer after connecting): a
     * server that accepts and never answers cannot hold a thread for the whole
     * total_timeout_ms. Defaults 1024 B/s over 30 s; negative = off. */
    long low_speed_bytes;
    long low_speed_time_s;
    /* Polled about once a second: true abandons the transfer with
     * URL_FETCH_FAILED "cancelled" (the client left, the job was cancelled). */
    bool (*abort)(void *ud);
    void *abort_ud;
} ld_fetch_opts;

/* Downloads http(s):// or s3://bucket/key (SigV4 from AWS_* env, endpoint from
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / AWS_S3_ENDPOINT) into the open file
 * descriptor `fd` (written from its current offset). Zero fields of `o` take
 * the defaults; o == NULL means all defaults and no size cap.
 * Failures -> LD_ERR_URL_FETCH_FAILED with the reason (status, refused address,
 * timeout), except the size cap -> LD_ERR_FILE_TOO_LARGE. */
ld_err ld_audio_fetch(const char *url, const ld_fetch_opts *o, int fd, size_t *bytes, ld_error *err);
/* The address policy alone, for callback URLs (http/https): resolves the
 * host and returns LD_OK when every address may be used, else
 * LD_ERR_INVALID_PARAMETER with the reason. A well-formed s3://bucket/key is
 * LD_OK (it only reaches AWS or the operator's endpoint). A check up front cannot stop DNS
 * rebinding: whoever connects later should also use ld_audio_curl_guard. */
ld_err ld_audio_check_url(const char *url, bool allow_private, ld_error *err);

/* Address policy: NULL when `sa` (AF_INET/AF_INET6) is a public unicast
 * address, else a static reason ("loopback", "private network", "link-local",
 * "cloud metadata", "multicast", "unspecified", "carrier-grade NAT",
 * "reserved"). IPv4-mapped/compatible, NAT64 and 6to4 IPv6 forms are judged
 * by the IPv4 address they embed. Pure, thread-safe. */
struct sockaddr;
const char *ld_audio_addr_refusal(const struct sockaddr *sa);
bool ld_audio_addr_is_private(const struct sockaddr *sa);
/* Same for a numeric address string ("10.0.0.1", "::1"); unparsable -> "invalid address". */
const char *ld_audio_ip_refusal(const char *ip);

/* Connect-time guard for any libcurl easy handle (e.g. webhook delivery):
 * installs an open-socket callback that refuses non-public addresses (after
 * every redirect and DNS answer), limits protocols to http/https, and ignores
 * proxy environment variables. `g` must outlive the transfer; after a failed
 * transfer g->refused holds "refused address 10.0.0.1 (private network)" or "". */
typedef struct {
    bool allow_private;
    char refused[128];
} ld_net_guard;
void ld_audio_curl_guard(void *curl_easy, ld_net_guard *g);

/* AWS Signature Version 4 (exposed for tests). Header names must be lowercase
 * and values trimmed; they are sorted here. Writes the full Authorization
 * header value ("AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…")
 * into out. amz_date is "YYYYMMDDTHHMMSSZ". 0 on success, -1 if out is too small. */
typedef struct {
    const char *name, *value;
} ld_sigv4_header;
int ld_audio_sigv4_authorization(const char *method, const char *canonical_uri, const char *canonical_query,
                                 const ld_sigv4_header *headers, size_t n_headers, const char *payload_sha256_hex,
                                 const char *access_key, const char *secret_key, const char *region,
                                 const char *service, const char *amz_date, char *out, size_t outsz);

/* Estimated signal-to-noise ratio in dB of 16 kHz PCM: the 95th percentile of
 * 10 ms frame energies over the quietest 50 ms (audio/snr.c). Clean recordings
 * give ≥ 35 dB, speech in steady noise about its SNR + 10 dB; 99 for input too
 * short to tell. Used by model=auto to pick the noise pack (asr/packs.h).
 * noise_dbfs (may be NULL) gets ld_audio_noise_dbfs of the same pass. */
double ld_audio_snr_db(const int16_t *pcm, size_t n, double *noise_dbfs);
/* The same estimate's noise level: the quietest 50 ms in dB re full scale (-90.3
 * for input too short to tell). Sets the denoiser's noise floor (audio/denoise.h). */
double ld_audio_noise_dbfs(const int16_t *pcm, size_t n);
/* Mean power of each 10 ms frame of 16 kHz PCM (LD_AUDIO_FRAME samples; a
 * short last frame counts when `partial`), without the DC offset: when the
 * whole signal's mean reaches LD_DC_MIN, each second's mean is taken out first. A
 * recorder's constant offset lifted every frame's energy, so the segmenter and
 * the SNR estimate found no speech above it (5 % of full scale gave empty
 * transcripts); the recognizer never minds it (0 Hz is below its filterbank),
 * so the samples themselves are not changed. Smaller offsets (the eval
 * recordings have up to 22) are left alone: what they move is within the
 * noise, and ordinary recordings keep exactly the measures they had.
 * Returns the frame count; out has room for n / LD_AUDIO_FRAME + 1. */
#define LD_AUDIO_FRAME 160
#define LD_DC_MIN 64.0 /* −54 dBFS */
size_t ld_audio_frame_power(const int16_t *pcm, size_t n, bool partial, double *out);
/* Samples of digital silence (|x| ≤ 1) before the first sound, in whole frames,
 * when there is at least a second of it (else 0): a lead-in of minutes must not
 * be all the SNR estimate sees. */
#define LD_LEAD_SILENCE_MIN 16000
size_t ld_audio_lead_silence(const int16_t *pcm, size_t n);
/* The estimate for a stream, as its audio arrives: the quietest 50 ms so far
 * against the 95th percentile of the last second's 10 ms frames (a stream
 * decides at the start of speech, before most of it is heard). Caller-owned,
 * zero-initialised; one thread at a time. */
#define LD_SNR_RECENT 100
typedef struct {
    double acc, sum;             /* the 10 ms frame being summed: squares, samples */
    double dc;                   /* the DC offset, followed slowly (as ld_audio_frame_power leaves it out) */
    size_t fill, frames;         /* its samples; frames so far */
    float recent[LD_SNR_RECENT]; /* the last second's frame energies (dB), a ring */
    double floor_db;             /* the quietest 50 ms so far; valid once frames >= 5 */
} ld_audio_snr_meter;
void ld_audio_snr_meter_push(ld_audio_snr_meter *m, const int16_t *pcm, size_t n);
/* A followed DC offset as live energy measures leave it out: the offset, or 0
 * while it is under LD_DC_MIN (as for uploads). */
static inline double ld_audio_dc_used(double dc) { return dc >= LD_DC_MIN || dc <= -LD_DC_MIN ? dc : 0; }
/* As ld_audio_snr_db (99 and -90.3 dBFS until 0.14 s were heard). */
double ld_audio_snr_meter_db(const ld_audio_snr_meter *m, double *noise_dbfs);

/* ---- segmentation ---- */
typedef struct {
    size_t start, end; /* sample indices, [start, end) */
} ld_segment;

/* Cuts at silences into speech segments of at most max_seconds (forcing a cut at
 * the quietest point when no pause exists). Returns the count; *out is malloc'd
 * and owned by the caller (NULL when the count is 0). Pure silence or steady
 * low noise gives 0 segments. Segments are ordered, disjoint and include
 * ~0.25 s of padding around speech. max_seconds <= 0 means 20 s. */
size_t ld_audio_segment(const int16_t *pcm, size_t n, double max_seconds, ld_segment **out);

#endif
