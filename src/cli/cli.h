/* The command-line clients: `listend keys`, `listend transcribe` (local, or
 * through a server with --server), `listend stream` and `listend adapt`. Each takes the
 * subcommand's argv (argv[0] = the subcommand) and returns the exit status.
 * Command-line code: one call per process, not thread-safe. */
#ifndef LD_CLI_CLI_H
#define LD_CLI_CLI_H

#include <gnutls/gnutls.h>
#include <stddef.h>

/* init, issue, list, inspect, revoke: license keys in a data dir or Redis. */
int ld_cli_keys_main(int argc, char **argv);
/* FILE...: local decoder pool, or POST /v1/listen of a server. */
int ld_cli_transcribe_main(int argc, char **argv);
/* FILE: stream to a server's /v1/listen/stream and print live results. */
int ld_cli_stream_main(int argc, char **argv);
/* --audio DIR --out PACK: adapt the model to an operator's recordings and
 * write a model pack (docs/engine.md § Model packs). */
int ld_cli_adapt_main(int argc, char **argv);

/* The license key `raw` (--key or $LICENSE_KEY) with surrounding whitespace
 * trimmed, into out (n bytes); -1 with a message naming `cmd` on stderr when
 * it is empty, too long, or holds a space or control character inside. */
int ld_cli_key_arg(const char *cmd, const char *raw, char *out, size_t n);

/* --cacert FILE: trusts the PEM bundle at `path` in `cred` (owned by the
 * caller); -1 with a message naming `cmd` when it holds no certificate. */
int ld_cli_cacert_load(const char *cmd, const char *path, gnutls_certificate_credentials_t cred);
/* The same check without keeping the credentials (for clients whose TLS is libcurl's). */
int ld_cli_cacert_check(const char *cmd, const char *path);

#endif
