/* Shared pieces of the `listend keys` command (keys.c, keys_query.c);
 * internal to src/cli/. Single-threaded command-line code. */
#ifndef LD_CLI_KEYS_INTERNAL_H
#define LD_CLI_KEYS_INTERNAL_H

#include <getopt.h>
#include <stdbool.h>

#include "store/store.h"

/* Every option of every `keys` subcommand, by name; each subcommand lists the
 * ones it accepts in its own getopt_long table (val = one of these). */
enum {
    KEYS_OPT_DATA = 256,
    KEYS_OPT_REDIS_URL,
    KEYS_OPT_ROTATE,
    KEYS_OPT_JSON,
    KEYS_OPT_NAME,
    KEYS_OPT_EXPIRES,
    KEYS_OPT_EXPIRES_IN,
    KEYS_OPT_RPM,
    KEYS_OPT_CONCURRENCY,
    KEYS_OPT_HOURS_PER_DAY,
};

typedef struct {
    const char *data, *redis_url;                  /* --data DIR, --redis-url URL */
    bool rotate, json, help;                       /* --rotate, --json, --help / -h */
    const char *name, *expires, *expires_in;       /* issue */
    const char *rpm, *concurrency, *hours_per_day; /* issue: validated by the caller */
    const char *arg;                               /* the positional argument, if taken */
} ld_keys_args;

/* Parses argv[2..] of `keys <sub> …` with getopt_long and `accepted` (the
 * subcommand's options; --help / -h prints `usage`): `--opt value`,
 * `--opt=value`, flags, positionals anywhere, `--` ends options. The
 * subcommand takes exactly one positional argument named `positional`
 * ("KEY"), or none when it is NULL. --redis-url is applied (setenv).
 * Returns 0 to go on, 1 when --help was printed (exit 0), -1 after printing
 * a usage error (exit 2). */
int ld_keys_parse(int argc, char **argv, const struct option *accepted, const char *usage, const char *positional,
                  ld_keys_args *out);

/* --data, else $LISTEND_DATA, else ./listend-data. */
const char *ld_keys_data_dir(const char *opt);
/* The key text from an argument, or from stdin when it is "-" (keeps keys out
 * of `ps` and shell history). Returns a static buffer or NULL. */
const char *ld_keys_key_arg(const char *arg);
/* Opens the existing listend.db of data_dir; NULL (no message) when it does
 * not exist yet, NULL with a message on stderr when it cannot be opened. With
 * Redis configured ($REDIS_URL, $REDIS_HOST or --redis-url), that store. */
ld_store *ld_keys_store_if_exists(const char *data_dir, bool *failed);
bool ld_keys_redis_configured(void);

int ld_keys_list(int argc, char **argv);
int ld_keys_inspect(int argc, char **argv);
int ld_keys_revoke(int argc, char **argv);

#endif
