/* Shared state behind one interface: the embedded backend (SQLite in the data
 * dir + in-process counters) today, Redis for many replicas later.
 *
 * Thread-safety: every operation may be called from any thread.
 * Ownership: ld_store_open_* return a store owned by the caller (ld_store_close).
 *
 * The operations (rate windows, concurrency leases with expiry, daily usage,
 * revocations, issued-key records, and later jobs) are defined by the backend
 * author in this header as a struct of function pointers `ld_store_ops`. */
#ifndef LD_STORE_STORE_H
#define LD_STORE_STORE_H

#include "util/err.h"

typedef struct ld_store ld_store;

/* Embedded store: <data_dir>/listend.db (WAL) plus in-memory windows/leases. */
ld_store *ld_store_open_embedded(const char *data_dir, ld_error *err);
void ld_store_close(ld_store *s);

#endif
