/* SSRF address policy: which connect targets a URL fetched on a client's
 * behalf may reach. Anything not plainly public unicast is refused. */
#include "audio/audio.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static const char *v4_refusal(uint32_t a) /* host byte order */
{
    static const struct {
        uint32_t net;
        int bits;
        const char *why;
    } t[] = {
        {0xA9FEA9FE, 32, "cloud metadata"}, /* 169.254.169.254 */
        {0x00000000, 8, "unspecified"},     /* 0.0.0.0/8 "this network" */
        {0x0A000000, 8, "private network"},  {0x64400000, 10, "carrier-grade NAT"},
        {0x7F000000, 8, "loopback"},         {0xA9FE0000, 16, "link-local"},
        {0xAC100000, 12, "private network"}, {0xC0000000, 24, "reserved"}, /* IETF protocol assignments */
        {0xC0000200, 24, "reserved"},                                      /* TEST-NET-1 */
        {0xC0A80000, 16, "private network"}, {0xC6120000, 15, "reserved"}, /* benchmarking */
        {0xC6336400, 24, "reserved"},                                      /* TEST-NET-2 */
        {0xCB007100, 24, "reserved"},                                      /* TEST-NET-3 */
        {0xE0000000, 4, "multicast"},        {0xF0000000, 4, "reserved"},  /* incl. 255.255.255.255 broadcast */
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        uint32_t mask = t[i].bits ? ~0u << (32 - t[i].bits) : 0;
        if ((a & mask) == t[i].net)
            return t[i].why;
    }
    return NULL;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool prefix(const uint8_t *a, const uint8_t *p, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, p, (size_t)bytes))
        return false;
    return !rest || ((a[bytes] ^ p[bytes]) & (0xFF << (8 - rest))) == 0;
}

static const char *v6_refusal(const uint8_t *a)
{
    static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xFF, 0x9B}, six2four[2] = {0x20, 0x02};
    static const uint8_t meta[16] = {0xFD, 0x00, 0x0E, 0xC2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54};
    static const uint8_t doc[4] = {0x20, 0x01, 0x0D, 0xB8}, discard[8] = {0x01, 0x00};
    if (!memcmp(a, zero, 16))
        return "unspecified";
    if (!memcmp(a, zero, 15) && a[15] == 1)
        return "loopback";
    if (!memcmp(a, meta, 16))
        return "cloud metadata";
    /* Forms that carry an IPv4 address are judged by it. */
    if (!memcmp(a, mapped, 12) || !memcmp(a, zero, 12) || !memcmp(a, nat64, 12))
        return v4_refusal(be32(a + 12));
    if (!memcmp(a, six2four, 2))
        return v4_refusal(be32(a + 2));
    if ((a[0] & 0xFE) == 0xFC)
        return "private network"; /* fc00::/7 unique local */
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0x80)
        return "link-local";
    if (a[0] == 0xFE && (a[1] & 0xC0) == 0xC0)
        return "private network"; /* fec0::/10 deprecated site-local */
    if (a[0] == 0xFF)
        return "multicast";
    if (prefix(a, doc, 32) || prefix(a, discard, 64))
        return "reserved";
    if ((a[0] & 0xE0) != 0x20)
        return "reserved"; /* outside 2000::/3 global unicast */
    return NULL;
}

const char *ld_audio_addr_refusal(const struct sockaddr *sa)
{
    if (!sa)
        return "invalid address";
    if (sa->sa_family == AF_INET)
        return v4_refusal(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return v6_refusal(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return "not an internet address";
}

bool ld_audio_addr_is_private(const struct sockaddr *sa) { return ld_audio_addr_refusal(sa) != NULL; }

const char *ld_audio_ip_refusal(const char *ip)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    if (ip && inet_pton(AF_INET, ip, &s4.sin_addr) == 1)
        return ld_audio_addr_refusal((const struct sockaddr *)&s4);
    if (ip && inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1)
        return ld_audio_addr_refusal((const struct sockaddr *)&s6);
    return "invalid address";
}
