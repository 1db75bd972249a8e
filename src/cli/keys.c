/* `listend keys`: argument handling, dispatch, `init` and `issue`. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/key.h"
#include "cli/cli.h"
#include "cli/keys_internal.h"
#include "util/fs.h"
#include "util/time.h"

int ld_keys_parse(int argc, char **argv, const struct option *accepted, const char *usage, const char *positional,
                  ld_keys_args *out)
{
    memset(out, 0, sizeof *out);
    struct option opts[16];
    int n = 0;
    for (; accepted[n].name && n < 14; n++)
        opts[n] = accepted[n];
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){0};
    const char *sub = argv[1];
    /* getopt_long over argv[1..]: the subcommand plays argv[0]. */
    char **args = argv + 1;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc - 1, args, ":h", opts, NULL)) != -1;) {
        switch (c) {
        case 'h': out->help = true; break;
        case KEYS_OPT_DATA: out->data = optarg; break;
        case KEYS_OPT_REDIS_URL: out->redis_url = optarg; break;
        case KEYS_OPT_ROTATE: out->rotate = true; break;
        case KEYS_OPT_JSON: out->json = true; break;
        case KEYS_OPT_NAME: out->name = optarg; break;
        case KEYS_OPT_EXPIRES: out->expires = optarg; break;
        case KEYS_OPT_EXPIRES_IN: out->expires_in = optarg; break;
        case KEYS_OPT_RPM: out->rpm = optarg; break;
        case KEYS_OPT_CONCURRENCY: out->concurrency = optarg; break;
        case KEYS_OPT_HOURS_PER_DAY: out->hours_per_day = optarg; break;
        case ':': fprintf(stderr, "listend keys %s: %s needs a value\n", sub, args[optind - 1]); return -1;
        default: /* '?': unknown, or a value given to a flag (then optopt is its KEYS_OPT_*) */
            if (optopt >= KEYS_OPT_DATA)
                fprintf(stderr, "listend keys %s: %s takes no value\n", sub, args[optind - 1]);
            else
                fprintf(stderr, "listend keys %s: unknown option %s (see --help)\n", sub, args[optind - 1]);
            return -1;
        }
    }
    if (out->help) {
        fputs(usage, stdout);
        return 1;
    }
    int npos = argc - 1 - optind;
    if (!positional && npos) {
        fprintf(stderr, "listend keys %s: unexpected argument '%s'\n", sub, args[optind]);
        return -1;
    }
    if (positional && npos != 1) {
        fprintf(stderr, "listend keys %s: give exactly one %s (see --help)\n", sub, positional);
        return -1;
    }
    out->arg = positional ? args[optind] : NULL;
    if (out->redis_url) /* keys live in that shared Redis, as with $REDIS_URL */
        setenv("REDIS_URL", out->redis_url, 1);
    return 0;
}

const char *ld_keys_data_dir(const char *opt)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("LISTEND_DATA");
    return env && *env ? env : "./listend-data";
}

const char *ld_keys_key_arg(const char *arg)
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

bool ld_keys_redis_configured(void)
{
    const char *u = getenv("REDIS_URL"), *h = getenv("REDIS_HOST");
    return (u && *u) || (h && *h);
}

ld_store *ld_keys_store_if_exists(const char *data_dir, bool *failed)
{
    char path[PATH_MAX];
    *failed = false;
    if (ld_keys_redis_configured()) {
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
    static const struct option accepted[] = {
        {"data", required_argument, NULL, KEYS_OPT_DATA}, {"rotate", no_argument, NULL, KEYS_OPT_ROTATE}, {0}};
    ld_keys_args o;
    int parsed = ld_keys_parse(argc, argv, accepted, usage_init, NULL, &o);
    if (parsed)
        return parsed < 0 ? 2 : 0;
    const char *dir = ld_keys_data_dir(o.data);
    bool rotate = o.rotate;
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
    static const struct option accepted[] = {
        {"data", required_argument, NULL, KEYS_OPT_DATA},
        {"name", required_argument, NULL, KEYS_OPT_NAME},
        {"expires", required_argument, NULL, KEYS_OPT_EXPIRES},
        {"expires-in", required_argument, NULL, KEYS_OPT_EXPIRES_IN},
        {"rpm", required_argument, NULL, KEYS_OPT_RPM},
        {"concurrency", required_argument, NULL, KEYS_OPT_CONCURRENCY},
        {"hours-per-day", required_argument, NULL, KEYS_OPT_HOURS_PER_DAY},
        {"redis-url", required_argument, NULL, KEYS_OPT_REDIS_URL},
        {0},
    };
    ld_keys_args o;
    int parsed = ld_keys_parse(argc, argv, accepted, usage_issue, NULL, &o);
    if (parsed)
        return parsed < 0 ? 2 : 0;
    const char *dir = ld_keys_data_dir(o.data);
    ld_key_claims c = {
        .rpm = LD_DEFAULT_RPM, .concurrency = LD_DEFAULT_CONCURRENCY, .hours_per_day = LD_DEFAULT_HOURS_PER_DAY};
    if (!o.name || !*o.name) {
        fprintf(stderr, "listend keys issue: --name is required\n");
        return 2;
    }
    snprintf(c.name, sizeof c.name, "%.63s", o.name);
    if (strlen(o.name) > LD_KEY_NAME_MAX) {
        fprintf(stderr, "listend keys issue: --name is %zu bytes; at most %d fit in a key\n", strlen(o.name),
                LD_KEY_NAME_MAX);
        return 2;
    }
    c.issued_at = ld_time_now();
    if (o.expires && o.expires_in) {
        fprintf(stderr, "listend keys issue: give --expires or --expires-in, not both\n");
        return 2;
    }
    if (o.expires && ld_time_parse_iso8601(o.expires, &c.expires_at)) {
        fprintf(stderr, "listend keys issue: --expires '%s' is not an ISO 8601 date/time\n", o.expires);
        return 2;
    }
    if (o.expires_in) {
        int64_t d;
        if (ld_time_parse_duration(o.expires_in, &d) || d <= 0) {
            fprintf(stderr, "listend keys issue: --expires-in '%s' is not a positive duration (e.g. 90d)\n",
                    o.expires_in);
            return 2;
        }
        c.expires_at = c.issued_at + d;
    }
    if (o.expires && c.expires_at <= 0) {
        fprintf(stderr, "listend keys issue: --expires must be after 1970-01-01T00:00:00Z\n");
        return 2;
    }
    if ((o.rpm && parse_limit("rpm", o.rpm, &c.rpm)) ||
        (o.concurrency && parse_limit("concurrency", o.concurrency, &c.concurrency)))
        return 2;
    if (o.hours_per_day) {
        char *end;
        double h = strtod(o.hours_per_day, &end);
        if (end == o.hours_per_day || *end || !(h > 0) || h > LD_KEY_HOURS_MAX) {
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

    ld_store *store = ld_keys_redis_configured() ? ld_store_open_configured(NULL, NULL, 0, &err)
                                                 : ld_store_open_embedded(dir, &err);
    ld_store_key rec = {.issued_at = stored.issued_at,
                        .expires_at = stored.expires_at,
                        .rpm = stored.rpm,
                        .concurrency = stored.concurrency,
                        .hours_per_day = stored.hours_per_day};
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
        fprintf(stderr, "listend keys issue: warning: expiry %s is in the past; the key is already expired\n",
                when);
    }
    printf("%s\n", key);
    fprintf(stderr, "issued %s (%s)\n", rec.key_id, rec.name);
    return 0;
}

int ld_cli_keys_main(int argc, char **argv)
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
        return ld_keys_list(argc, argv);
    if (!strcmp(sub, "inspect"))
        return ld_keys_inspect(argc, argv);
    if (!strcmp(sub, "revoke"))
        return ld_keys_revoke(argc, argv);
    fprintf(stderr, "listend keys: unknown command '%s'\n\n%s", sub, usage_main);
    return 2;
}
