/* `listend keys list|inspect|revoke`. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/key.h"
#include "cli/keys_internal.h"
#include "util/time.h"

static const char usage_list[] =
    "usage: listend keys list [--json] [--data DIR]\n"
    "\n"
    "Lists the keys issued from DIR (id, name, issuer, dates, limits, status). Key text is never\n"
    "stored, so it is never shown.\n"
    "\n"
    "  --json       one JSON array instead of a table\n"
    "  --data DIR   data directory (default $LISTEND_DATA, else ./listend-data)\n"
    "  --redis-url URL  use the shared Redis of several replicas (default $REDIS_URL)\n";

static const char usage_inspect[] =
    "usage: listend keys inspect KEY [--data DIR]\n"
    "\n"
    "Decodes KEY (\"-\" reads it from stdin) and prints its claims as JSON with signature_valid\n"
    "(against DIR/issuer.pub and DIR/trusted/*.pub), issuer_known, expired, revoked and valid.\n"
    "Exit status: 0 valid, 1 decoded but not valid, 2 not a license key or bad usage.\n"
    "\n"
    "  --data DIR   data directory (default $LISTEND_DATA, else ./listend-data)\n"
    "  --redis-url URL  use the shared Redis of several replicas (default $REDIS_URL)\n";

static const char usage_revoke[] =
    "usage: listend keys revoke KEY_OR_ID [--data DIR]\n"
    "\n"
    "Revokes a key given by its text (\"-\" reads it from stdin) or its id (k_ + 16 hex digits).\n"
    "Servers using DIR refuse it within a second, without a restart. Revocation is permanent.\n"
    "\n"
    "  --data DIR   data directory (default $LISTEND_DATA, else ./listend-data)\n"
    "  --redis-url URL  use the shared Redis of several replicas (default $REDIS_URL)\n";

/* inspect and revoke take --data and --redis-url only. */
static const struct option data_and_redis[] = {{"data", required_argument, NULL, KEYS_OPT_DATA},
                                               {"redis-url", required_argument, NULL, KEYS_OPT_REDIS_URL},
                                               {0}};

static const char *status_of(const ld_store_key *k, int64_t now)
{
    if (k->revoked_at)
        return "revoked";
    if (k->expires_at && now >= k->expires_at)
        return "expired";
    return "active";
}

int ld_keys_list(int argc, char **argv)
{
    static const struct option accepted[] = {{"data", required_argument, NULL, KEYS_OPT_DATA},
                                             {"json", no_argument, NULL, KEYS_OPT_JSON},
                                             {"redis-url", required_argument, NULL, KEYS_OPT_REDIS_URL},
                                             {0}};
    ld_keys_args o;
    int parsed = ld_keys_parse(argc, argv, accepted, usage_list, NULL, &o);
    if (parsed)
        return parsed < 0 ? 2 : 0;
    const char *dir = ld_keys_data_dir(o.data);
    bool failed;
    ld_store *s = ld_keys_store_if_exists(dir, &failed);
    if (failed)
        return 1;
    char pub[4200];
    snprintf(pub, sizeof pub, "%s/issuer.pub", dir);
    if (!s && access(pub, R_OK)) { /* no keys yet is an empty list; no data dir at all is a mistake */
        fprintf(stderr, "listend keys list: no listend data in %s (%s; wrong --data? run `listend keys init`)\n",
                dir, strerror(errno));
        return 1;
    }
    ld_store_key *keys = NULL;
    size_t n = 0;
    ld_error err;
    if (s && ld_store_key_list(s, &keys, &n, &err)) {
        fprintf(stderr, "listend keys list: %s\n", err.msg);
        ld_store_close(s);
        return 1;
    }
    ld_store_close(s);
    int64_t now = ld_time_now();
    if (o.json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            ld_store_key *k = &keys[i];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o, s:o, s:i, s:i, s:f, s:o, s:s}", "key_id",
                                                 k->key_id, "name", k->name, "issuer", k->issuer, "issued_at",
                                                 ld_time_json(k->issued_at), "expires_at",
                                                 ld_time_json(k->expires_at), "rpm", k->rpm, "concurrency",
                                                 k->concurrency, "hours_per_day", k->hours_per_day, "revoked_at",
                                                 ld_time_json(k->revoked_at), "status", status_of(k, now)));
        }
        json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(arr);
    } else {
        printf("%-18s  %-24s  %-8s  %-20s  %-20s  %6s  %4s  %9s  %s\n", "ID", "NAME", "ISSUER", "ISSUED", "EXPIRES",
               "RPM", "CONC", "HOURS/DAY", "STATUS");
        for (size_t i = 0; i < n; i++) {
            ld_store_key *k = &keys[i];
            char issued[21], expires[21] = "never";
            ld_time_iso8601(k->issued_at, issued);
            if (k->expires_at)
                ld_time_iso8601(k->expires_at, expires);
            printf("%-18s  %-24s  %-8s  %-20s  %-20s  %6d  %4d  %9g  %s\n", k->key_id, k->name, k->issuer, issued,
                   expires, k->rpm, k->concurrency, k->hours_per_day, status_of(k, now));
        }
    }
    ld_store_free_keys(keys);
    return 0;
}

int ld_keys_inspect(int argc, char **argv)
{
    ld_keys_args o;
    int parsed = ld_keys_parse(argc, argv, data_and_redis, usage_inspect, "KEY", &o);
    if (parsed)
        return parsed < 0 ? 2 : 0;
    const char *key = ld_keys_key_arg(o.arg);
    ld_key_claims c;
    uint8_t fp[4];
    if (!key || ld_key_decode(key, &c, fp, NULL)) {
        fprintf(stderr, "listend keys inspect: not a listend license key (malformed or truncated)\n");
        return 2;
    }
    const char *dir = ld_keys_data_dir(o.data);
    ld_issuer_pub *issuers = NULL;
    size_t n = ld_key_issuers_load(dir, &issuers);
    bool known = false;
    for (size_t i = 0; i < n; i++)
        known = known || !memcmp(issuers[i].fp, fp, 4);
    ld_key_claims verified;
    bool sig_ok = ld_key_verify(key, issuers, n, &verified, NULL) == LD_OK;
    free(issuers);

    bool revoked = false, failed;
    ld_store *s = ld_keys_store_if_exists(dir, &failed);
    if (failed)
        return 1;
    if (s)
        ld_store_is_revoked(s, c.key_id, &revoked, NULL);
    ld_store_close(s);
    bool expired = c.expires_at && ld_time_now() >= c.expires_at;
    bool valid = sig_ok && !revoked && !expired;

    char fphex[9];
    sodium_bin2hex(fphex, sizeof fphex, fp, 4);
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:i, s:i, s:f, s:b, s:b, s:b, s:b, s:b, s:i}", "key_id",
                            c.key_id, "name", c.name, "issuer", fphex, "issued_at", ld_time_json(c.issued_at),
                            "expires_at", ld_time_json(c.expires_at), "rpm", c.rpm, "concurrency", c.concurrency,
                            "hours_per_day", c.hours_per_day, "signature_valid", sig_ok, "issuer_known", known,
                            "expired", expired, "revoked", revoked, "valid", valid, "length", (int)strlen(key));
    json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(out);
    return valid ? 0 : 1;
}

int ld_keys_revoke(int argc, char **argv)
{
    ld_keys_args o;
    int parsed = ld_keys_parse(argc, argv, data_and_redis, usage_revoke, "KEY_OR_ID", &o);
    if (parsed)
        return parsed < 0 ? 2 : 0;
    const char *arg = ld_keys_key_arg(o.arg);
    char id[32];
    ld_key_claims c;
    uint8_t fp[4];
    if (arg && ld_key_id_valid(arg)) {
        snprintf(id, sizeof id, "%s", arg);
    } else if (arg && ld_key_decode(arg, &c, fp, NULL) == LD_OK) {
        snprintf(id, sizeof id, "%s", c.key_id);
    } else {
        fprintf(stderr, "listend keys revoke: '%s' is neither a license key nor a key id (k_ + 16 hex digits)\n",
                arg && strlen(arg) < 40 ? arg : "argument");
        return 2;
    }
    const char *dir = ld_keys_data_dir(o.data);
    bool failed;
    ld_store *s = ld_keys_store_if_exists(dir, &failed);
    if (failed)
        return 1;
    if (!s) {
        fprintf(stderr, "listend keys revoke: no database in %s (wrong --data? run `listend keys init`)\n", dir);
        return 1;
    }
    ld_store_key rec;
    bool found = false;
    ld_error err;
    int rc = 0;
    if (ld_store_key_get(s, id, &rec, &found, &err)) {
        fprintf(stderr, "listend keys revoke: %s\n", err.msg);
        rc = 1;
    } else if (found && rec.revoked_at) {
        char when[21];
        ld_time_iso8601(rec.revoked_at, when);
        printf("%s was already revoked at %s\n", id, when);
    } else {
        if (!found)
            fprintf(stderr, "listend keys revoke: warning: %s was not issued from %s; revoking it anyway\n", id,
                    ld_keys_redis_configured() ? "the shared Redis" : dir);
        if (ld_store_revoke(s, id, ld_time_now(), &err)) {
            fprintf(stderr, "listend keys revoke: %s\n", err.msg);
            rc = 1;
        } else {
            printf("revoked %s%s%s%s\n", id, found ? " (" : "", found ? rec.name : "", found ? ")" : "");
        }
    }
    ld_store_close(s);
    return rc;
}
