/* `listend keys`: argument handling, dispatch, `init` and `issue`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/cli.h"
#include "auth/key.h"
#include "util/fs.h"
#include "util/time.h"

int ld_cli_idx(const ld_cli_optdef *defs, const char *name)
{
    for (int i = 0; defs[i].name; i++)
        if (!strcmp(defs[i].name, name))
            return i;
    return -1;
}

int ld_cli_parse(int argc, char **argv, const ld_cli_optdef *defs, ld_cli_args *out)
{
    memset(out, 0, sizeof *out);
    bool only_pos = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!only_pos && !strcmp(a, "-h"))
            a = "--help";
        if (only_pos || strncmp(a, "--", 2) || !a[2]) {
            if (out->npos == LD_CLI_MAX_POS) {
                fprintf(stderr, "listend keys %s: too many arguments\n", argv[1]);
                return -1;
            }
            out->pos[out->npos++] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        snprintf(name, sizeof name, "%.*s", (int)nlen, a + 2);
        int k = ld_cli_idx(defs, name);
        if (k < 0) {
            fprintf(stderr, "listend keys %s: unknown option --%s (see --help)\n", argv[1], name);
            return -1;
        }
        if (defs[k].takes_value) {
            if (!eq && i + 1 >= argc) {
                fprintf(stderr, "listend keys %s: --%s needs a value\n", argv[1], name);
                return -1;
            }
            out->val[k] = eq ? eq + 1 : argv[++i];
        } else if (eq) {
            fprintf(stderr, "listend keys %s: --%s takes no value\n", argv[1], name);
            return -1;
        }
        out->set[k] = true;
    }
    return 0;
}

const char *ld_cli_data_dir(const char *opt)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("LISTEND_DATA");
    return env && *env ? env : "./listend-data";
}

const char *ld_cli_key_arg(const char *arg)
{
    static char buf[1024];
    if (!arg)
        return NULL;
    if (strcmp(arg, "-"))
        return arg;
    if (!fgets(buf, sizeof buf, stdin))
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

void ld_cli_use_redis(const char *url)
{
    if (url)
        setenv("REDIS_URL", url, 1);
}

bool ld_cli_redis_configured(void)
{
    const char *u = getenv("REDIS_URL"), *h = getenv("REDIS_HOST");
    return (u && *u) || (h && *h);
}

ld_store *ld_cli_store_if_exists(const char *data_dir, bool *failed)
{
    char path[PATH_MAX];
    *failed = false;
    if (ld_cli_redis_configured()) {
        ld_error rerr;
        ld_store *rs = ld_store_open_configured(NULL, NULL, 0, &rerr);
        if (!rs) {
            fprintf(stderr, "listend keys: %s\n", rerr.msg);
            *failed = true;
        }
        return rs;
    }
    snprintf(path, sizeof path, "%s/listend.db", data_dir);
    if (access(path, F_OK))
        return NULL;
    ld_error err;
    ld_store *s = ld_store_open_embedded(data_dir, &err);
    if (!s) {
        fprintf(stderr, "listend keys: %s\n", err.msg);
        *failed = true;
    }
    return s;
}

static const char usage_main[] =
    "usage: listend keys <command> [--data DIR] [options]\n"
    "\n"
    "Manage license keys: Ed25519-signed tokens the server verifies offline.\n"
    "\n"
    "commands:\n"
    "  init      create the data dir and the issuer key pair (--rotate replaces it)\n"
    "  issue     sign a new key and print it\n"
    "  list      list issued keys (never their text)\n"
    "  inspect   decode a key and check signature, expiry and revocation\n"
    "  revoke    revoke a key by its text or id (running servers notice within a second)\n"
    "\n"
    "DIR defaults to $LISTEND_DATA, else ./listend-data. `listend keys <command> --help` for details.\n";

static const char usage_init[] =
    "usage: listend keys init [--data DIR] [--rotate]\n"
    "\n"
    "Creates DIR (mode 0700), the issuer secret key DIR/issuer.key (0600) and its public key\n"
    "DIR/issuer.pub, and the database DIR/listend.db. Refuses to overwrite an existing issuer key.\n"
    "\n"
    "  --data DIR   data directory (default $LISTEND_DATA, else ./listend-data)\n"
    "  --rotate     replace an existing issuer key pair: the old public key is kept as\n"
    "               DIR/trusted/<fingerprint>.pub so keys it signed stay valid; new keys are\n"
    "               signed with the new pair. Copy the new issuer.pub to every server.\n";

static const char usage_issue[] =
    "usage: listend keys issue --name NAME [--expires ISO8601 | --expires-in DURATION]\n"
    "                          [--rpm N] [--concurrency N] [--hours-per-day H] [--data DIR]\n"
    "\n"
    "Signs a new license key with DIR/issuer.key, records it (id, name, expiry, limits; never\n"
    "the key text) in DIR/listend.db and prints the key alone on stdout.\n"
    "\n"
    "  --name NAME          who the key is for (at most 47 bytes, stored in the key)\n"
    "  --expires TIME       expiry, e.g. 2026-12-31 or 2026-12-31T23:59:59Z (a past time is\n"
    "                       allowed with a warning)\n"
    "  --expires-in DUR     expiry relative to now: 90d, 12h, 30m, 45s, 2w\n"
    "                       (no expiry option: the key never expires)\n"
    "  --rpm N              requests per minute (default 60)\n"
    "  --concurrency N      concurrent requests/streams (default 10)\n"
    "  --hours-per-day H    audio hours per UTC day, fractions allowed (default 100)\n"
    "  --data DIR           data directory (default $LISTEND_DATA, else ./listend-data)\n"
    "  --redis-url URL      record the key in this shared Redis (default $REDIS_URL)\n";

static int cmd_init(int argc, char **argv)
{
    static const ld_cli_optdef defs[] = {{"data", true}, {"rotate", false}, {"help", false}, {0}};
    ld_cli_args o;
    if (ld_cli_parse(argc, argv, defs, &o))
        return 2;
    if (o.set[2]) {
        fputs(usage_init, stdout);
        return 0;
    }
    if (o.npos) {
        fprintf(stderr, "listend keys init: unexpected argument '%s'\n", o.pos[0]);
        return 2;
    }
    const char *dir = ld_cli_data_dir(o.val[0]);
    bool rotate = o.set[1];
    struct stat st;
    bool existed = stat(dir, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "listend keys init: %s exists and is not a directory\n", dir);
        return 1;
    }
    if (ld_fs_mkdirs(dir, 0700)) {
        fprintf(stderr, "listend keys init: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (!existed)
        chmod(dir, 0700);
    char sk_path[PATH_MAX], pk_path[PATH_MAX];
    snprintf(sk_path, sizeof sk_path, "%s/issuer.key", dir);
    snprintf(pk_path, sizeof pk_path, "%s/issuer.pub", dir);
    bool have_sk = access(sk_path, F_OK) == 0, have_pk = access(pk_path, F_OK) == 0;

    ld_issuer_secret old;
    if (rotate) {
        if (!have_sk || ld_key_secret_load(sk_path, &old)) {
            fprintf(stderr, "listend keys init --rotate: no readable issuer key at %s to rotate\n", sk_path);
            return 1;
        }
        char tdir[PATH_MAX], tpath[PATH_MAX + 32];
        snprintf(tdir, sizeof tdir, "%s/trusted", dir);
        snprintf(tpath, sizeof tpath, "%s/%s.pub", tdir, old.pub.fp_hex);
        if (ld_fs_mkdirs(tdir, 0700) || ld_key_pub_save(tpath, &old.pub)) {
            fprintf(stderr, "listend keys init --rotate: cannot write %s: %s\n", tpath, strerror(errno));
            return 1;
        }
        sodium_memzero(&old, sizeof old);
    } else if (have_sk || have_pk) {
        fprintf(stderr,
                "listend keys init: refusing to overwrite the existing issuer key in %s "
                "(keys it signed would stop working; use --rotate to replace it and keep trusting the old one)\n",
                dir);
        return 1;
    }

    ld_issuer_secret s;
    ld_key_issuer_generate(&s);
    int rc = ld_key_secret_save(sk_path, &s) || ld_key_pub_save(pk_path, &s.pub);
    char fp[9];
    memcpy(fp, s.pub.fp_hex, sizeof fp);
    sodium_memzero(&s, sizeof s);
    if (rc) {
        fprintf(stderr, "listend keys init: cannot write the issuer key in %s: %s\n", dir, strerror(errno));
        return 1;
    }
    ld_error err;
    ld_store *store = ld_store_open_embedded(dir, &err);
    if (!store) {
        fprintf(stderr, "listend keys init: %s\n", err.msg);
        return 1;
    }
    ld_store_close(store);
    printf("%s issuer key %s in %s\n", rotate ? "rotated to" : "created", fp, dir);
    if (rotate)
        printf("the previous public key stays trusted from %s/trusted/; restart servers after copying issuer.pub\n",
               dir);
    return 0;
}

static int parse_limit(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > LD_KEY_LIMIT_MAX) {
        fprintf(stderr, "listend keys issue: --%s must be an integer between 1 and %d\n", opt, LD_KEY_LIMIT_MAX);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int cmd_issue(int argc, char **argv)
{
    static const ld_cli_optdef defs[] = {{"data", true},        {"name", true},          {"expires", true},
                                         {"expires-in", true},  {"rpm", true},           {"concurrency", true},
                                         {"hours-per-day", true}, {"help", false},       {"redis-url", true},
                                         {0}};
    ld_cli_args o;
    if (ld_cli_parse(argc, argv, defs, &o))
        return 2;
    if (o.set[7]) {
        fputs(usage_issue, stdout);
        return 0;
    }
    ld_cli_use_redis(o.val[8]);
    if (o.npos) {
        fprintf(stderr, "listend keys issue: unexpected argument '%s'\n", o.pos[0]);
        return 2;
    }
    const char *dir = ld_cli_data_dir(o.val[0]);
    ld_key_claims c = {.rpm = LD_DEFAULT_RPM, .concurrency = LD_DEFAULT_CONCURRENCY,
                       .hours_per_day = LD_DEFAULT_HOURS_PER_DAY};
    if (!o.val[1] || !*o.val[1]) {
        fprintf(stderr, "listend keys issue: --name is required\n");
        return 2;
    }
    snprintf(c.name, sizeof c.name, "%.63s", o.val[1]);
    if (strlen(o.val[1]) > LD_KEY_NAME_MAX) {
        fprintf(stderr, "listend keys issue: --name is %zu bytes; at most %d fit in a key\n", strlen(o.val[1]),
                LD_KEY_NAME_MAX);
        return 2;
    }
    c.issued_at = ld_time_now();
    if (o.val[2] && o.val[3]) {
        fprintf(stderr, "listend keys issue: give --expires or --expires-in, not both\n");
        return 2;
    }
    if (o.val[2] && ld_time_parse_iso8601(o.val[2], &c.expires_at)) {
        fprintf(stderr, "listend keys issue: --expires '%s' is not an ISO 8601 date/time\n", o.val[2]);
        return 2;
    }
    if (o.val[3]) {
        int64_t d;
        if (ld_time_parse_duration(o.val[3], &d) || d <= 0) {
            fprintf(stderr, "listend keys issue: --expires-in '%s' is not a positive duration (e.g. 90d)\n",
                    o.val[3]);
            return 2;
        }
        c.expires_at = c.issued_at + d;
    }
    if (o.val[2] && c.expires_at <= 0) {
        fprintf(stderr, "listend keys issue: --expires must be after 1970-01-01T00:00:00Z\n");
        return 2;
    }
    if ((o.val[4] && parse_limit("rpm", o.val[4], &c.rpm)) ||
        (o.val[5] && parse_limit("concurrency", o.val[5], &c.concurrency)))
        return 2;
    if (o.val[6]) {
        char *end;
        double h = strtod(o.val[6], &end);
        if (end == o.val[6] || *end || !(h > 0) || h > LD_KEY_HOURS_MAX) {
            fprintf(stderr, "listend keys issue: --hours-per-day must be a number > 0 and <= %.0f\n",
                    LD_KEY_HOURS_MAX);
            return 2;
        }
        c.hours_per_day = h;
    }

    char sk_path[PATH_MAX];
    snprintf(sk_path, sizeof sk_path, "%s/issuer.key", dir);
    ld_issuer_secret iss;
    if (ld_key_secret_load(sk_path, &iss)) {
        fprintf(stderr, "listend keys issue: no readable issuer key at %s (run `listend keys init --data %s`)\n",
                sk_path, dir);
        return 1;
    }
    ld_key_new_id(c.key_id);
    char key[LD_KEY_MAX_LEN + 1];
    ld_error err;
    ld_err rc = ld_key_encode(&iss, &c, key, sizeof key, &err);
    char fp[9];
    memcpy(fp, iss.pub.fp_hex, sizeof fp);
    sodium_memzero(&iss, sizeof iss);
    if (rc) {
        fprintf(stderr, "listend keys issue: %s\n", err.msg);
        return 2;
    }
    /* The key carries its limits rounded to what the format holds. */
    ld_key_claims stored;
    uint8_t kfp[4];
    ld_key_decode(key, &stored, kfp, NULL);

    ld_store *store = ld_cli_redis_configured() ? ld_store_open_configured(NULL, NULL, 0, &err)
                                                : ld_store_open_embedded(dir, &err);
    ld_store_key rec = {.issued_at = stored.issued_at, .expires_at = stored.expires_at, .rpm = stored.rpm,
                        .concurrency = stored.concurrency, .hours_per_day = stored.hours_per_day};
    snprintf(rec.key_id, sizeof rec.key_id, "%s", stored.key_id);
    snprintf(rec.name, sizeof rec.name, "%s", stored.name);
    snprintf(rec.issuer, sizeof rec.issuer, "%s", fp);
    if (!store || ld_store_key_put(store, &rec, &err)) {
        fprintf(stderr, "listend keys issue: cannot record the key: %s\n", err.msg);
        ld_store_close(store);
        return 1;
    }
    ld_store_close(store);
    if (c.expires_at && c.expires_at <= ld_time_now()) {
        char when[21];
        ld_time_iso8601(c.expires_at, when);
        fprintf(stderr, "listend keys issue: warning: expiry %s is in the past; the key is already expired\n", when);
    }
    printf("%s\n", key);
    fprintf(stderr, "issued %s (%s)\n", rec.key_id, rec.name);
    return 0;
}

int ld_auth_keys_main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "listend keys: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(sub, "init"))
        return cmd_init(argc, argv);
    if (!strcmp(sub, "issue"))
        return cmd_issue(argc, argv);
    if (!strcmp(sub, "list"))
        return ld_cli_list(argc, argv);
    if (!strcmp(sub, "inspect"))
        return ld_cli_inspect(argc, argv);
    if (!strcmp(sub, "revoke"))
        return ld_cli_revoke(argc, argv);
    fprintf(stderr, "listend keys: unknown command '%s'\n\n%s", sub, usage_main);
    return 2;
}
