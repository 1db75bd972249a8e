/* Job webhooks in the schema of the route a job came in on (docs/jobs.md,
 * "Webhook body by route"): at submit the server describes the route in a
 * small JSON "hook" the job keeps (ld_webhooks_hook); at delivery the jobs
 * module hands it back with the finished job (ld_webhooks_shape, the
 * ld_jobs_shape_fn of server.c) and gets the Lightning/Pulse or Deepgram body.
 * Internal to src/server/.
 * Thread-safety: pure functions on caller memory.
 * Ownership: returned json_t are new references; arguments are borrowed. */
#ifndef LD_SERVER_WEBHOOKS_H
#define LD_SERVER_WEBHOOKS_H

#include <jansson.h>

#include "jobs/jobs.h"
#include "server/req.h"

/* The request's hook: {"route": "pulse"|"deepgram", Deepgram's utterances/
 * paragraphs/utt_split, "method": "PUT", "extra": {webhook_extra's pairs}},
 * each member only when it applies; NULL when none does (listend's webhook). */
json_t *ld_webhooks_hook(const ld_req *r);

/* ld_jobs_shape_fn: the Pulse or Deepgram body for a hook naming that route
 * (Deepgram's also sets the header "dg-token: <key id>"), else NULL. */
json_t *ld_webhooks_shape(const json_t *hook, const ld_job_outcome *o, char *header, size_t headersz);

/* The Lightning/Pulse pre-recorded schema from listend's JSON body (`j`,
 * stolen): the 200 of /api/v1/lightning/get_text and /waves/v1/pulse/get_text.
 * file_bytes < 0 leaves metadata.fileSize out. */
json_t *ld_webhooks_pulse_body(json_t *j, long long file_bytes);

#endif
