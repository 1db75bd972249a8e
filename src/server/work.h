/* The server's own small work pool: fetches, decodes and hands audio to the
 * decoder pool, so libmicrohttpd threads never block. Bounded: a slot is
 * reserved before the connection is suspended, and a full pool means 503.
 * Thread-safety: every function may be called from any thread.
 * Ownership: ld_work_new returns an owned pool; ld_work_free joins its threads
 * and gives still-queued items to `cancel`. */
#ifndef LD_SERVER_WORK_H
#define LD_SERVER_WORK_H

#include <stdbool.h>

typedef struct ld_work ld_work;
typedef void (*ld_work_fn)(void *arg);

ld_work *ld_work_new(int threads, int capacity);
void ld_work_free(ld_work *w, ld_work_fn cancel);
/* Claims a queue slot; false when full or stopping. */
bool ld_work_reserve(ld_work *w);
void ld_work_unreserve(ld_work *w);
/* Queues an item into a reserved slot (never fails). */
void ld_work_push(ld_work *w, ld_work_fn fn, void *arg);
int ld_work_depth(ld_work *w); /* reserved + queued + running */

#endif
