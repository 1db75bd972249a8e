/* Trusted reverse proxies (--trusted-proxy CIDR, repeatable; proxy.c);
 * internal to src/server/. The client address of a request is its TCP peer,
 * unless the peer is a trusted proxy: then it is the right-most address of
 * X-Forwarded-For that is not itself a trusted proxy. The failed-auth
 * throttle, access log and limits then see the real client.
 * Thread-safety: a parsed list is read-only and may be shared.
 * Ownership: ld_proxy_parse returns an owned list (ld_proxy_free). */
#ifndef LD_SERVER_PROXY_H
#define LD_SERVER_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct ld_proxy_list ld_proxy_list;

/* csv: "10.0.0.0/8,192.168.1.7,fd00::/8" ("" = none). NULL with a message in
 * why on a malformed entry. */
ld_proxy_list *ld_proxy_parse(const char *csv, char *why, size_t whysz);
void ld_proxy_free(ld_proxy_list *l);
int ld_proxy_count(const ld_proxy_list *l);
/* The client address as text into out: `peer` itself unless it is trusted
 * and xff (the X-Forwarded-For values joined by commas, may be NULL) names
 * one. */
void ld_proxy_client(const ld_proxy_list *l, const struct sockaddr *peer, const char *xff, char *out, size_t outsz);

#endif
