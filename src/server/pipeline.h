/* The work-pool side of POST /v1/listen (pipeline.c); internal to src/server/.
 * Both take over the reference the intake gave with the request. */
#ifndef LD_SERVER_PIPELINE_H
#define LD_SERVER_PIPELINE_H

/* Fetch, decode, quota, transcribe or store the job; finishes the request. */
void ld_pipeline_run(void *req);
/* A queued request never ran (shutdown): 503 "shutting down". */
void ld_pipeline_cancel(void *req);

#endif
