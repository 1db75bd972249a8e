#include "server/bind.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int ld_bind_addr(const char *host, int port, struct sockaddr_storage *addr, unsigned *flags, ld_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    int gai = getaddrinfo(host, p, &hints, &ai);
    if (gai || !ai) {
        ld_error_set(err, LD_ERR_INTERNAL, "cannot resolve listen address '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    /* "::" means every address, IPv4 ones too (as with the system's bindv6only=0 default) */
    if (ai->ai_family == AF_INET6)
        *flags |= IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)(void *)addr)->sin6_addr) ? MHD_USE_DUAL_STACK
                                                                                             : MHD_USE_IPv6;
    freeaddrinfo(ai);
    return 0;
}
