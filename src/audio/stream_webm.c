/* Incremental WebM (Matroska) demuxer for a live Opus stream — what a browser's
 * MediaRecorder sends (stream.h). A flat walk over EBML elements: the master
 * elements on the way to the audio (Segment, Tracks, TrackEntry, Cluster,
 * BlockGroup) are entered rather than read whole, so the unknown sizes of a
 * live recording need no bookkeeping; the few leaf elements needed are read
 * (at most LD_OGG_MAX_PACKET bytes each) and every other one is skipped as it
 * arrives, so memory stays bounded whatever the client sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/stream.h"

#define UNKNOWN_SIZE UINT64_MAX

enum {
    ID_SEGMENT = 0x18538067,
    ID_TRACKS = 0x1654AE6B,
    ID_TRACK_ENTRY = 0xAE,
    ID_TRACK_NUMBER = 0xD7,
    ID_CODEC_ID = 0x86,
    ID_CODEC_PRIVATE = 0x63A2,
    ID_CLUSTER = 0x1F43B675,
    ID_BLOCK_GROUP = 0xA0,
    ID_BLOCK = 0xA1,
    ID_SIMPLE_BLOCK = 0xA3,
};

typedef struct {
    uint64_t number;
    bool opus;
    uint8_t *priv;
    size_t priv_len;
} track_entry;

struct ld_webm_reader {
    uint8_t *buf; /* bytes not parsed yet */
    size_t len, cap;
    uint64_t skip;   /* payload bytes of a skipped element still to come */
    track_entry cur; /* the TrackEntry being read */
    uint64_t track;  /* the Opus track's number; 0 until a TrackEntry said so */
    uint8_t *head;   /* its CodecPrivate (OpusHead), handed over before the first frame */
    size_t head_len;
    bool head_sent;
};

ld_webm_reader *ld_audio_webm_new(void) { return calloc(1, sizeof(ld_webm_reader)); }

void ld_audio_webm_free(ld_webm_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r->cur.priv);
    free(r->head);
    free(r);
}

/* An EBML variable-length integer at p (at most `avail` bytes): its length, 0
 * when incomplete, -1 when invalid. keep_marker: element IDs keep it. */
static int vint(const uint8_t *p, size_t avail, int max_len, bool keep_marker, uint64_t *out)
{
    if (!avail)
        return 0;
    int n = 1;
    while (n <= max_len && !(p[0] & (0x80 >> (n - 1))))
        n++;
    if (n > max_len)
        return -1;
    if ((size_t)n > avail)
        return 0;
    uint64_t v = keep_marker ? p[0] : p[0] & (0xFF >> n);
    bool all_ones = v == (uint64_t)(0xFF >> n);
    for (int i = 1; i < n; i++) {
        v = v << 8 | p[i];
        all_ones = all_ones && p[i] == 0xFF;
    }
    *out = !keep_marker && all_ones ? UNKNOWN_SIZE : v;
    return n;
}

/* The entry read so far: the stream's Opus track if it is the first one. */
static void end_entry(ld_webm_reader *r)
{
    if (!r->track && r->cur.opus && r->cur.number) {
        r->track = r->cur.number;
        r->head = r->cur.priv, r->head_len = r->cur.priv_len;
        r->cur.priv = NULL;
    }
    free(r->cur.priv);
    r->cur = (track_entry){0};
}

static ld_err block(ld_webm_reader *r, const uint8_t *p, size_t len, ld_webm_fn fn, void *ud, ld_error *err)
{
    uint64_t track;
    int n = vint(p, len, 8, false, &track);
    if (n <= 0 || len < (size_t)n + 3)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid WebM block");
    if (track != r->track)
        return LD_OK; /* another track (video) */
    if (p[n + 2] & 0x06)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "WebM blocks with lacing are not supported");
    if (!r->head_sent) {
        r->head_sent = true;
        ld_err e = fn(ud, true, r->head, r->head_len, err);
        if (e)
            return e;
    }
    return fn(ud, false, p + n + 3, len - (size_t)n - 3, err);
}

/* One leaf element that matters, whole. */
static ld_err leaf(ld_webm_reader *r, uint64_t id, const uint8_t *p, size_t len, ld_webm_fn fn, void *ud,
                   ld_error *err)
{
    switch (id) {
    case ID_TRACK_NUMBER:
        r->cur.number = 0;
        for (size_t i = 0; i < len && i < 8; i++)
            r->cur.number = r->cur.number << 8 | p[i];
        return LD_OK;
    case ID_CODEC_ID: r->cur.opus = len == 6 && !memcmp(p, "A_OPUS", 6); return LD_OK;
    case ID_CODEC_PRIVATE:
        free(r->cur.priv);
        r->cur.priv = malloc(len ? len : 1);
        if (!r->cur.priv)
            return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        memcpy(r->cur.priv, p, len);
        r->cur.priv_len = len;
        return LD_OK;
    default: /* a block */
        if (!r->track)
            end_entry(r); /* the last TrackEntry ends where the first block comes */
        if (!r->track)
            return ld_error_set(err, LD_ERR_INVALID_AUDIO, "WebM stream has no Opus audio track");
        return block(r, p, len, fn, ud, err);
    }
}

static ld_err walk(ld_webm_reader *r, ld_webm_fn fn, void *ud, ld_error *err)
{
    size_t pos = 0;
    ld_err e = LD_OK;
    while (!e) {
        if (r->skip) {
            size_t k = r->len - pos < r->skip ? r->len - pos : (size_t)r->skip;
            pos += k, r->skip -= k;
            if (r->skip)
                break;
            continue;
        }
        uint64_t id, size;
        int a = vint(r->buf + pos, r->len - pos, 4, true, &id), b = 0;
        if (a > 0)
            b = vint(r->buf + pos + a, r->len - pos - (size_t)a, 8, false, &size);
        if (a < 0 || b < 0) {
            e = ld_error_set(err, LD_ERR_INVALID_AUDIO, "Not a WebM stream");
            break;
        }
        if (!a || !b)
            break; /* the rest of the header comes with the next chunk */
        size_t hdr = (size_t)(a + b);
        if (id == ID_SEGMENT || id == ID_TRACKS || id == ID_CLUSTER || id == ID_BLOCK_GROUP ||
            id == ID_TRACK_ENTRY) {
            if (id == ID_TRACK_ENTRY || id == ID_CLUSTER)
                end_entry(r);
            pos += hdr; /* enter: its children follow */
            continue;
        }
        if (size == UNKNOWN_SIZE) {
            e = ld_error_set(err, LD_ERR_INVALID_AUDIO, "Invalid WebM element size");
            break;
        }
        bool wanted = id == ID_TRACK_NUMBER || id == ID_CODEC_ID || id == ID_CODEC_PRIVATE || id == ID_BLOCK ||
                      id == ID_SIMPLE_BLOCK;
        if (!wanted) {
            pos += hdr;
            r->skip = size;
            continue;
        }
        if (size > LD_OGG_MAX_PACKET) {
            e = ld_error_set(err, LD_ERR_INVALID_AUDIO, "WebM element too large");
            break;
        }
        if (r->len - pos - hdr < size)
            break; /* wait for the whole element */
        e = leaf(r, id, r->buf + pos + hdr, (size_t)size, fn, ud, err);
        pos += hdr + (size_t)size;
    }
    memmove(r->buf, r->buf + pos, r->len - pos);
    r->len -= pos;
    return e;
}

ld_err ld_audio_webm_push(ld_webm_reader *r, const uint8_t *data, size_t len, ld_webm_fn fn, void *ud,
                          ld_error *err)
{
    while (len) {
        if (r->skip && !r->len) { /* skipped payload straight from the input, never buffered */
            size_t k = len < r->skip ? len : (size_t)r->skip;
            data += k, len -= k, r->skip -= k;
            continue;
        }
        size_t room = LD_OGG_MAX_PACKET + 64 - r->len; /* an element and its header at most */
        size_t k = len < room ? len : room;
        if (r->len + k > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + k)
                cap *= 2;
            uint8_t *b = realloc(r->buf, cap);
            if (!b)
                return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
            r->buf = b, r->cap = cap;
        }
        memcpy(r->buf + r->len, data, k);
        r->len += k, data += k, len -= k;
        size_t before = r->len;
        ld_err e = walk(r, fn, ud, err);
        if (e)
            return e;
        if (r->len == before && r->len >= LD_OGG_MAX_PACKET + 64) /* no progress on a full buffer */
            return ld_error_set(err, LD_ERR_INVALID_AUDIO, "WebM element too large");
    }
    return LD_OK;
}
