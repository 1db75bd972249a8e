#include "util/rand.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void ld_rand_id(const char *prefix, char *out, size_t outsz)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char raw[20];
    randombytes_buf(raw, sizeof raw);
    size_t p = (size_t)snprintf(out, outsz, "%s", prefix);
    for (size_t i = 0; i < sizeof raw && p + 1 < outsz; i++)
        out[p++] = alphabet[raw[i] & 31];
    if (p < outsz)
        out[p] = '\0';
}
