/* In-process sliding windows and concurrency leases for the embedded store
 * (internal to src/store/). Subjects live in a hash map split into
 * mutex-protected stripes, so unrelated keys do not contend; idle subjects
 * (empty window, no live lease) are swept so client addresses cannot grow the
 * map without bound.
 *
 * Thread-safety: all functions are thread-safe. Ownership: ld_store_mem_new
 * returns an owned object (ld_store_mem_free). */
#ifndef LD_STORE_MEM_H
#define LD_STORE_MEM_H

#include "store/store.h"

typedef struct ld_store_mem ld_store_mem;

ld_store_mem *ld_store_mem_new(void);
void ld_store_mem_free(ld_store_mem *m);

ld_err ld_store_mem_window(ld_store_mem *m, const char *subject, int limit, int64_t window_ms, int64_t now_ms,
                           bool record, ld_window *out, ld_error *err);
void ld_store_mem_window_undo(ld_store_mem *m, const char *subject);

ld_err ld_store_mem_lease_acquire(ld_store_mem *m, const char *subject, int limit, int64_t ttl_ms, int64_t now_ms,
                                  char *lease_id, bool *acquired, int *held, ld_error *err);
ld_err ld_store_mem_lease_renew(ld_store_mem *m, const char *subject, const char *lease_id, int64_t ttl_ms,
                                int64_t now_ms, ld_error *err);
/* Returns whether this table held the lease. */
bool ld_store_mem_lease_release(ld_store_mem *m, const char *subject, const char *lease_id);
int ld_store_mem_lease_count(ld_store_mem *m, const char *subject, int64_t now_ms);

/* Subjects currently tracked (for tests of the sweep). */
size_t ld_store_mem_size(ld_store_mem *m);

/* Largest window limit / lease limit accepted (bounds memory per subject). */
#define LD_STORE_MEM_MAX_LIMIT 1000000

#endif
