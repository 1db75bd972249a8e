/* X-Forwarded-For from trusted proxies only: anyone can send the header, so
 * it means something only when the hop that added it is one of ours.
 * Addresses are compared as 16-byte IPv6 (IPv4 as ::ffff:a.b.c.d). */
#include "server/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t addr[16];
    int bits; /* prefix length over the 16 bytes */
} cidr;

struct ld_proxy_list {
    int n;
    cidr *v;
};

/* Text -> 16 bytes (IPv4 mapped); false when not an address. */
static bool parse_addr(const char *s, uint8_t out[16], bool *v4)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, s, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        *v4 = true;
        return true;
    }
    *v4 = false;
    return inet_pton(AF_INET6, s, out) == 1;
}

static bool matches(const cidr *c, const uint8_t a[16])
{
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, (size_t)full))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

static bool trusted(const ld_proxy_list *l, const uint8_t a[16])
{
    for (int i = 0; l && i < l->n; i++)
        if (matches(&l->v[i], a))
            return true;
    return false;
}

ld_proxy_list *ld_proxy_parse(const char *csv, char *why, size_t whysz)
{
    ld_proxy_list *l = calloc(1, sizeof *l);
    char *copy = strdup(csv ? csv : "");
    if (!l || !copy) {
        free(l);
        free(copy);
        snprintf(why, whysz, "out of memory");
        return NULL;
    }
    char *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        cidr c = {0};
        char *slash = strchr(t, '/');
        if (slash)
            *slash = 0;
        bool v4;
        if (!parse_addr(t, c.addr, &v4)) {
            snprintf(why, whysz, "'%s' is not an IP address or CIDR", t);
            goto bad;
        }
        int max = v4 ? 32 : 128, bits = max;
        if (slash) {
            char *end;
            long b = strtol(slash + 1, &end, 10);
            if (end == slash + 1 || *end || b < 0 || b > max) {
                snprintf(why, whysz, "'%s/%s': prefix length must be 0..%d", t, slash + 1, max);
                goto bad;
            }
            bits = (int)b;
        }
        c.bits = v4 ? bits + 96 : bits;
        cidr *nv = realloc(l->v, (size_t)(l->n + 1) * sizeof *nv);
        if (!nv) {
            snprintf(why, whysz, "out of memory");
            goto bad;
        }
        l->v = nv;
        l->v[l->n++] = c;
    }
    free(copy);
    return l;
bad:
    free(copy);
    ld_proxy_free(l);
    return NULL;
}

void ld_proxy_free(ld_proxy_list *l)
{
    if (!l)
        return;
    free(l->v);
    free(l);
}

int ld_proxy_count(const ld_proxy_list *l) { return l ? l->n : 0; }

static void to_text(const uint8_t a[16], char *out, size_t outsz)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a, mapped, 12))
        inet_ntop(AF_INET, a + 12, out, (socklen_t)outsz);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
}

void ld_proxy_client(const ld_proxy_list *l, const struct sockaddr *peer, const char *xff, char *out, size_t outsz)
{
    snprintf(out, outsz, "unknown");
    uint8_t a[16];
    if (peer && peer->sa_family == AF_INET) {
        memset(a, 0, 10);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &((const struct sockaddr_in *)peer)->sin_addr, 4);
    } else if (peer && peer->sa_family == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
    } else {
        return;
    }
    /* Walk from the nearest hop outwards while the hops are ours. */
    if (xff && trusted(l, a)) {
        size_t n = strlen(xff);
        while (n > 0) {
            size_t end = n;
            while (n > 0 && xff[n - 1] != ',')
                n--;
            char item[64];
            const char *p = xff + n;
            size_t len = end - n;
            while (len && (*p == ' ' || *p == '\t'))
                p++, len--;
            while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            if (n > 0)
                n--; /* past the comma */
            if (!len || len >= sizeof item)
                break; /* garbage: keep the last good hop */
            memcpy(item, p, len);
            item[len] = 0;
            uint8_t hop[16];
            bool v4;
            if (!parse_addr(item, hop, &v4))
                break;
            memcpy(a, hop, 16);
            if (!trusted(l, a))
                break;
        }
    }
    to_text(a, out, outsz);
}
