/* Incremental audio conversion for live streams: chunks of client audio in one
 * of the stream encodings, at the client's rate, in -> 16 kHz mono s16 out.
 *
 * Chunks may be cut anywhere: an odd linear16 byte or a partial Ogg page is
 * carried to the next push. Internal buffers are bounded (an Ogg page or packet
 * larger than the format allows is an error, not growth).
 *
 * Thread-safety: one converter is used by one thread at a time; different
 * converters are independent. Ownership: ld_audio_stream_new returns an owned
 * converter (ld_audio_stream_free). The sample pointer returned by push/flush
 * belongs to the converter and stays valid until its next call. */
#ifndef LD_AUDIO_STREAM_H
#define LD_AUDIO_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum {
    LD_STREAM_LINEAR16,  /* signed 16-bit little-endian PCM, mono */
    LD_STREAM_MULAW,     /* G.711 mu-law, 8 bits per sample, mono */
    LD_STREAM_ALAW,      /* G.711 A-law, 8 bits per sample, mono */
    LD_STREAM_OPUS,      /* one raw Opus packet per push (rate is always 48 kHz) */
    LD_STREAM_OGG_OPUS,  /* an Ogg Opus byte stream, cut anywhere */
    LD_STREAM_LINEAR32,  /* 32-bit little-endian IEEE float PCM in [-1, 1], mono (Deepgram's meaning) */
    LD_STREAM_WEBM_OPUS, /* a WebM (Matroska) byte stream with an Opus track (MediaRecorder), cut anywhere */
} ld_stream_encoding;

#define LD_AUDIO_STREAM_MIN_RATE 8000
#define LD_AUDIO_STREAM_MAX_RATE 48000

/* "linear16", "linear32", "mulaw", "alaw", "opus", "ogg_opus", "webm_opus" (also
 * "pcm_s16le", "pcm_f32le", "ulaw", "pcm_mulaw", "pcm_alaw"); 0 on success,
 * -1 when unknown. */
int ld_audio_stream_encoding_parse(const char *s, ld_stream_encoding *out);
const char *ld_audio_stream_encoding_name(ld_stream_encoding e);

typedef struct ld_audio_stream ld_audio_stream;

/* sample_rate is the client's rate (8000–48000) for the PCM encodings; it is
 * ignored for Opus. Bad rate -> LD_ERR_INVALID_PARAMETER. */
ld_audio_stream *ld_audio_stream_new(ld_stream_encoding enc, int sample_rate, ld_error *err);
void ld_audio_stream_free(ld_audio_stream *s);

/* Telephone band (G.711, or PCM at 8 kHz, which is zero-inserted as in
 * audio/narrowband.h): such streams are decoded with the telephony model. */
bool ld_audio_stream_narrowband(const ld_audio_stream *s);

/* Converts one chunk. `out` and `n` receive the 16 kHz samples it produced (possibly
 * none). Garbage (not Ogg, undecodable Opus, oversized page) ->
 * LD_ERR_INVALID_AUDIO; the converter is unusable afterwards. */
ld_err ld_audio_stream_push(ld_audio_stream *s, const uint8_t *data, size_t len, const int16_t **out, size_t *n,
                            ld_error *err);
/* Drains what the resampler/decoder still holds (end of stream). */
ld_err ld_audio_stream_flush(ld_audio_stream *s, const int16_t **out, size_t *n, ld_error *err);

/* Bytes of one sample of the PCM encodings (linear16 2, linear32 4, G.711 1);
 * 0 for Opus, which is framed. */
int ld_audio_stream_sample_bytes(ld_stream_encoding e);
/* G.711 (mu-law, A-law): telephone band whatever the rate. */
bool ld_audio_stream_g711(ld_stream_encoding e);
/* One sample of a PCM encoding at p (sample_bytes of it) as s16; linear32 is
 * clamped to [-1, 1] and NaN is silence. */
int16_t ld_audio_pcm_sample(ld_stream_encoding e, const uint8_t *p);

/* G.711 decoders (pure), exposed for tests. */
int16_t ld_audio_mulaw_decode(uint8_t u);
int16_t ld_audio_alaw_decode(uint8_t a);

/* Incremental Ogg demuxer (first logical stream only): bytes in, whole packets
 * out through `fn` (a non-zero return stops with that error). Pages are checked
 * (capture pattern, version, CRC); a page is at most 65,307 bytes and a packet
 * at most LD_OGG_MAX_PACKET, so memory is bounded. Same threading/ownership
 * rules as the converter. */
#define LD_OGG_MAX_PACKET (256 * 1024)
typedef struct ld_ogg_reader ld_ogg_reader;
typedef ld_err (*ld_ogg_packet_fn)(void *ud, const uint8_t *pkt, size_t len, ld_error *err);
ld_ogg_reader *ld_audio_ogg_new(void);
void ld_audio_ogg_free(ld_ogg_reader *r);
ld_err ld_audio_ogg_push(ld_ogg_reader *r, const uint8_t *data, size_t len, ld_ogg_packet_fn fn, void *ud,
                         ld_error *err);

/* Incremental WebM demuxer (stream_webm.c): bytes in; the first Opus track's
 * CodecPrivate (head = true; NULL when it has none) once, then each of its
 * frames, through `fn`. Other tracks are skipped; laced blocks are refused.
 * Memory is bounded as for Ogg. Same threading/ownership rules. */
typedef struct ld_webm_reader ld_webm_reader;
typedef ld_err (*ld_webm_fn)(void *ud, bool head, const uint8_t *data, size_t len, ld_error *err);
ld_webm_reader *ld_audio_webm_new(void);
void ld_audio_webm_free(ld_webm_reader *r);
ld_err ld_audio_webm_push(ld_webm_reader *r, const uint8_t *data, size_t len, ld_webm_fn fn, void *ud,
                          ld_error *err);

/* What a stream's first audio message holds when the client named no
 * encoding (Deepgram: "omit encoding for containerized audio"): a WAV header
 * (PCM 16-bit, float 32-bit, mu-law or A-law, mono) sets *enc and *rate and
 * *skip = the header's length (it must be whole in this message); Ogg or WebM
 * sets *enc (Opus); *found says whether it was a container: otherwise the
 * message is raw audio as asked.
 * Containers a stream cannot take (MP3, FLAC, MP4, multichannel WAV, another
 * WAV codec) -> LD_ERR_INVALID_AUDIO saying what to send instead. */
ld_err ld_audio_stream_sniff(const uint8_t *data, size_t len, ld_stream_encoding *enc, int *rate, size_t *skip,
                             bool *found, ld_error *err);
/* Whether data starts like a container file (WAV, Ogg, FLAC, MP3 with ID3,
 * WebM/Matroska, MP4, AIFF, CAF, AMR) rather than raw samples: an upload
 * sent with a raw `encoding` that is a file is decoded as the file. MP3's
 * bare frame sync is not counted: raw PCM may begin with the same bytes. */
bool ld_audio_container_magic(const uint8_t *data, size_t len);

#endif
