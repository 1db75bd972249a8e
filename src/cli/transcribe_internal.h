/* Client mode of `listend transcribe` (--server URL, transcribe_client.c);
 * internal to src/cli/. The same command and output as local mode, but the
 * work is done by a running server through POST /v1/listen. Files are streamed from disk (multipart field `audio`);
 * http(s):// and s3:// arguments are sent as {"url": …} for the server to fetch.
 * Not thread-safe (a command-line entry point: one call per process). */
#ifndef LD_CLI_TRANSCRIBE_INTERNAL_H
#define LD_CLI_TRANSCRIBE_INTERNAL_H

#include <stdbool.h>

#include "asr/transcript.h"

typedef struct {
    const char *server; /* base URL ("http://host:7100") or the full …/v1/listen URL */
    const char *key;    /* license key, sent as "Authorization: Token KEY" */
    const char *cacert; /* CA bundle for an https server; NULL = system store */
    bool insecure;      /* --insecure: no certificate verification */
    bool verbose;       /* request ids and timings on stderr */
} ld_transcribe_client_cfg;

/* Transcribes each input in turn and prints like local mode. Returns the exit
 * status: 0 all done, 1 an input failed (message on stderr, e.g.
 * "listend: 401 INVALID_LICENSE: Invalid license key"). A refused key stops at
 * the first input (every other one would fail the same way). */
int ld_transcribe_client_main(const ld_transcribe_client_cfg *cfg, const ld_transcribe_opts *o, char **inputs,
                              int n);

#endif
