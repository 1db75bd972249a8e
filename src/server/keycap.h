/* Per-key caps on a shared resource (keycap.c); internal to src/server/.
 * Counts how many units of one resource (URL fetch threads) each key holds,
 * so one key can never take all of it (docs/hardening.md).
 * Thread-safety: every function may be called from any thread.
 * Ownership: ld_keycap_new returns an owned table (ld_keycap_free). */
#ifndef LD_SERVER_KEYCAP_H
#define LD_SERVER_KEYCAP_H

#include <stdbool.h>

typedef struct ld_keycap ld_keycap;

ld_keycap *ld_keycap_new(int per_key);
void ld_keycap_free(ld_keycap *c);
/* Takes one unit for key_id; false when the key holds per_key already. */
bool ld_keycap_take(ld_keycap *c, const char *key_id);
void ld_keycap_give(ld_keycap *c, const char *key_id);
int ld_keycap_limit(const ld_keycap *c);

#endif
