/* Incremental Ogg page reader (RFC 3533) for ogg_opus streams. Written here
 * rather than through libavformat because avformat's demuxers pull from a
 * blocking reader, while stream chunks arrive when the client sends them. */
#include "audio/stream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_HEADER 27
#define MAX_PAGE (PAGE_HEADER + 255 + 255 * 255)

struct ld_ogg_reader {
    uint8_t buf[MAX_PAGE];
    size_t len;   /* bytes buffered (at most one page) */
    uint8_t *pkt; /* packet being assembled across segments/pages */
    size_t pkt_len, pkt_cap;
    bool have_serial;
    uint32_t serial;
};

static uint32_t crc_table[256];

static void crc_init(void)
{
    /* Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i << 24;
        for (int j = 0; j < 8; j++)
            r = (r & 0x80000000u) ? (r << 1) ^ 0x04c11db7u : r << 1;
        crc_table[i] = r;
    }
}

static uint32_t crc_page(const uint8_t *p, size_t n)
{
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (i >= 22 && i < 26) ? 0 : p[i]; /* the CRC field counts as zero */
        crc = (crc << 8) ^ crc_table[((crc >> 24) ^ b) & 0xff];
    }
    return crc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

ld_ogg_reader *ld_audio_ogg_new(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc_init);
    return calloc(1, sizeof(ld_ogg_reader));
}

void ld_audio_ogg_free(ld_ogg_reader *r)
{
    if (!r)
        return;
    free(r->pkt);
    free(r);
}

static ld_err pkt_append(ld_ogg_reader *r, const uint8_t *d, size_t n, ld_error *err)
{
    if (r->pkt_len + n > LD_OGG_MAX_PACKET)
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Ogg packet larger than %d bytes", LD_OGG_MAX_PACKET);
    if (r->pkt_len + n > r->pkt_cap) {
        size_t cap = r->pkt_cap ? r->pkt_cap * 2 : 4096;
        while (cap < r->pkt_len + n)
            cap *= 2;
        uint8_t *p = realloc(r->pkt, cap);
        if (!p)
            return ld_error_set(err, LD_ERR_INTERNAL, "out of memory");
        r->pkt = p;
        r->pkt_cap = cap;
    }
    memcpy(r->pkt + r->pkt_len, d, n);
    r->pkt_len += n;
    return LD_OK;
}

/* Size of the complete page at the start of buf, 0 if incomplete, -1 if garbage. */
static long page_size(const uint8_t *b, size_t len)
{
    size_t check = len < 4 ? len : 4;
    if (memcmp(b, "OggS", check))
        return -1;
    if (len >= 5 && b[4] != 0)
        return -1;
    if (len < PAGE_HEADER)
        return 0;
    size_t nseg = b[26];
    if (len < PAGE_HEADER + nseg)
        return 0;
    size_t body = 0;
    for (size_t i = 0; i < nseg; i++)
        body += b[PAGE_HEADER + i];
    size_t total = PAGE_HEADER + nseg + body;
    return len < total ? 0 : (long)total;
}

static ld_err page_packets(ld_ogg_reader *r, const uint8_t *p, size_t size, ld_ogg_packet_fn fn, void *ud,
                           ld_error *err)
{
    if (crc_page(p, size) != le32(p + 22))
        return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Ogg page CRC mismatch");
    uint32_t serial = le32(p + 14);
    if (!r->have_serial) {
        r->serial = serial;
        r->have_serial = true;
    } else if (serial != r->serial) {
        return LD_OK; /* another multiplexed stream: not ours */
    }
    if (!(p[5] & 0x01)) /* no continuation flag: drop a dangling partial packet */
        r->pkt_len = 0;
    size_t nseg = p[26];
    const uint8_t *data = p + PAGE_HEADER + nseg;
    for (size_t i = 0; i < nseg; i++) {
        size_t lace = p[PAGE_HEADER + i];
        ld_err e = pkt_append(r, data, lace, err);
        if (e)
            return e;
        data += lace;
        if (lace < 255) {
            e = fn(ud, r->pkt, r->pkt_len, err);
            r->pkt_len = 0;
            if (e)
                return e;
        }
    }
    return LD_OK;
}

ld_err ld_audio_ogg_push(ld_ogg_reader *r, const uint8_t *data, size_t len, ld_ogg_packet_fn fn, void *ud,
                         ld_error *err)
{
    while (len > 0) {
        size_t take = sizeof r->buf - r->len;
        if (take > len)
            take = len;
        memcpy(r->buf + r->len, data, take);
        r->len += take;
        data += take;
        len -= take;
        for (;;) {
            long size = page_size(r->buf, r->len);
            if (size < 0)
                return ld_error_set(err, LD_ERR_INVALID_AUDIO, "Audio is not an Ogg stream");
            if (size == 0)
                break;
            ld_err e = page_packets(r, r->buf, (size_t)size, fn, ud, err);
            if (e)
                return e;
            memmove(r->buf, r->buf + size, r->len - (size_t)size);
            r->len -= (size_t)size;
            if (r->len == 0)
                break;
        }
    }
    return LD_OK;
}
