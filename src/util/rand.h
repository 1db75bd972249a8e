/* Random identifiers from libsodium's CSPRNG. Thread-safe after sodium_init(). */
#ifndef LD_UTIL_RAND_H
#define LD_UTIL_RAND_H

#include <stddef.h>

/* prefix + 20 lowercase base32 chars, e.g. "req_k3j9…"; out must hold strlen(prefix)+21. */
void ld_rand_id(const char *prefix, char *out, size_t outsz);

#endif
