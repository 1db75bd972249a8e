/* A request body on its way in: kept in memory up to a small threshold, then
 * spilled to an unlinked-on-free temp file, so large uploads never sit in RAM.
 * Thread-safety: one thread at a time per spool (ownership moves from the
 * libmicrohttpd thread to the work pool). Ownership: ld_spool_new returns an
 * owned object; ld_spool_free unlinks its file unless it was moved away. */
#ifndef LD_SERVER_SPOOL_H
#define LD_SERVER_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct ld_spool ld_spool;

ld_spool *ld_spool_new(const char *dir, size_t mem_limit);
void ld_spool_free(ld_spool *s);
/* 0 on success, -1 on an I/O error (disk full, …). */
int ld_spool_write(ld_spool *s, const void *data, size_t n);
uint64_t ld_spool_size(const ld_spool *s);
/* The data as a file (memory contents are written out first). The path stays
 * owned by the spool; NULL on I/O error. */
const char *ld_spool_path(ld_spool *s);
/* The data in memory when it never spilled, else NULL. */
const uint8_t *ld_spool_mem(const ld_spool *s, size_t *len);
/* The whole content readable in memory (mmap when on disk; unmapped by free). */
const uint8_t *ld_spool_map(ld_spool *s, size_t *len);

#endif
