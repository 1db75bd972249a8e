/* The usage monitor's event delivery (notify.c); internal to src/monitor/.
 * Thread-safety: push/free from any thread. Ownership: the notifier owns
 * queued events. */
#ifndef LD_MONITOR_INTERNAL_H
#define LD_MONITOR_INTERNAL_H

#include <jansson.h>

#include "monitor/monitor.h"

typedef struct ld_notifier ld_notifier;

/* NULL (err set) when the URL is refused or the secret cannot be read. */
ld_notifier *ld_notifier_new(const ld_monitor_config *cfg, ld_error *err);
/* Stops the thread (an attempt in flight is aborted); drops what is queued. */
void ld_notifier_free(ld_notifier *n);
/* Queues one event (stolen) for delivery; returns at once. */
void ld_notifier_push(ld_notifier *n, json_t *event);
void ld_notifier_stats(ld_notifier *n, ld_monitor_stats *out);

#endif
