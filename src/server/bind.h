/* Where a daemon of the server listens: --host resolved once for the API port
 * (http.c) and the metrics port (metrics.c). Stateless; thread-safe. */
#ifndef LD_SERVER_BIND_H
#define LD_SERVER_BIND_H

#include <sys/socket.h>

#include "util/err.h"

/* The listen address of --host and `port` into *addr, and the MHD_USE_IPv6 /
 * MHD_USE_DUAL_STACK ("::": IPv4 too) bits it needs added to *flags. -1 + err
 * when the host does not resolve. */
int ld_bind_addr(const char *host, int port, struct sockaddr_storage *addr, unsigned *flags, ld_error *err);

#endif
