/* Shared pieces of the `listend keys` command (internal to the auth module).
 * Single-threaded CLI code. */
#ifndef LD_AUTH_CLI_H
#define LD_AUTH_CLI_H

#include <stdbool.h>

#include "store/store.h"

#define LD_CLI_MAX_OPTS 10
#define LD_CLI_MAX_POS 4

typedef struct {
    const char *name; /* without the leading "--" */
    bool takes_value;
} ld_cli_optdef;

typedef struct {
    const char *val[LD_CLI_MAX_OPTS]; /* by index into the optdef list; NULL when absent */
    bool set[LD_CLI_MAX_OPTS];
    const char *pos[LD_CLI_MAX_POS];
    int npos;
} ld_cli_args;

/* Parses argv[2..] ("keys <sub> …"): `--opt value`, `--opt=value`, flags,
 * positionals anywhere. Prints a message and returns -1 on a usage error. */
int ld_cli_parse(int argc, char **argv, const ld_cli_optdef *defs, ld_cli_args *out);
/* Index of `name` in defs (the caller's own table, so always found). */
int ld_cli_idx(const ld_cli_optdef *defs, const char *name);

/* --data, else $LISTEND_DATA, else ./listend-data. */
const char *ld_cli_data_dir(const char *opt);
/* The key text from an argument, or from stdin when it is "-" (keeps keys out
 * of `ps` and shell history). Returns a static buffer or NULL. */
const char *ld_cli_key_arg(const char *arg);
/* Opens the existing listend.db of data_dir; NULL (no message) when it does
 * not exist yet, NULL with a message on stderr when it cannot be opened. */
ld_store *ld_cli_store_if_exists(const char *data_dir, bool *failed);
/* --redis-url: keys live in that shared Redis (as with $REDIS_URL / $REDIS_HOST)
 * instead of DIR/listend.db; NULL keeps the environment's choice. */
void ld_cli_use_redis(const char *url);
bool ld_cli_redis_configured(void);

int ld_cli_list(int argc, char **argv);
int ld_cli_inspect(int argc, char **argv);
int ld_cli_revoke(int argc, char **argv);

#endif
