#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/rand.h"
#include "util/time.h"

static void test_err(void)
{
    CHECK(ld_err_status(LD_ERR_INVALID_LICENSE) == 401);
    CHECK_STR(ld_err_code(LD_ERR_INVALID_LICENSE), "INVALID_LICENSE");
    CHECK_STR(ld_err_code(LD_ERR_RATE_LIMITED), "RATE_LIMIT_EXCEEDED");
    CHECK(ld_err_status(LD_ERR_FILE_TOO_LARGE) == 422);
    CHECK(ld_err_status((ld_err)999) == 500);
    ld_error e;
    CHECK(ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "bad %s", "x") == LD_ERR_INVALID_PARAMETER);
    CHECK_STR(e.msg, "bad x");
    ld_error_set(&e, LD_ERR_MISSING_PARAMETER, NULL);
    CHECK_STR(e.msg, "Missing required parameter: url or audio file");

    /* client bytes that are not UTF-8 would void the JSON envelope's "error" (json_string -> NULL) */
    ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "Invalid value '%s'", "a\xff\xfe\xc3\xa9\xe2\x82");
    CHECK_STR(e.msg, "Invalid value 'a?\?\xc3\xa9?\?'");
    json_t *j = ld_error_json(&e, "req_1", NULL);
    CHECK(json_string_value(json_object_get(j, "error")) != NULL);
    json_decref(j);
    static const char *const kept[] = {"plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x8e\xa4", "\xed\x9f\xbf"};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        char b[16];
        snprintf(b, sizeof b, "%s", kept[i]);
        ld_err_utf8_clean(b);
        CHECK_STR(b, kept[i]);
    }
    static const char *const bad[][2] = {{"\xc0\xaf", "??"},      /* overlong '/' */
                                         {"\xed\xa0\x80", "???"}, /* a surrogate */
                                         {"\xf4\x90\x80\x80", "????"},
                                         {"\x80x", "?x"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char b[16];
        snprintf(b, sizeof b, "%s", bad[i][0]);
        ld_err_utf8_clean(b);
        CHECK_STR(b, bad[i][1]);
    }
    char longer[300]; /* a message cut inside a character by its buffer (255 bytes and the NUL) */
    memset(longer, 'a', 254);
    snprintf(longer + 254, sizeof longer - 254, "\xc3\xa9 and more");
    ld_error_set(&e, LD_ERR_INVALID_PARAMETER, "%s", longer);
    CHECK(strlen(e.msg) == 255 && e.msg[254] == '?');
}

static void test_time(void)
{
    int64_t t;
    CHECK(ld_time_parse_iso8601("2024-12-31T23:59:59Z", &t) == 0);
    CHECK(t == 1735689599);
    char buf[21];
    ld_time_iso8601(t, buf);
    CHECK_STR(buf, "2024-12-31T23:59:59Z");
    CHECK(ld_time_parse_iso8601("2024-12-31", &t) == 0 && t == 1735603200);
    CHECK(ld_time_parse_iso8601("2024-02-29", &t) == 0); /* a leap year */
    static const char *const no_such[] = {
        "2027-02-29", "2027-02-30", "2027-04-31", "1900-02-29", "2027-01-01T10:00+25:00", "2027-01-01T10:00+01:60"};
    for (size_t i = 0; i < sizeof no_such / sizeof *no_such; i++)
        CHECK(ld_time_parse_iso8601(no_such[i], &t) == -1);
    CHECK(ld_time_parse_iso8601("2000-02-29T23:59:59Z", &t) == 0);
    CHECK(ld_time_parse_iso8601("2025-01-01T01:00:00+01:00", &t) == 0 && t == 1735689600);
    CHECK(ld_time_parse_iso8601("2024-13-01", &t) != 0);
    CHECK(ld_time_parse_iso8601("garbage", &t) != 0);
    CHECK(ld_time_parse_duration("90d", &t) == 0 && t == 90 * 86400);
    CHECK(ld_time_parse_duration("15", &t) == 0 && t == 15);
    CHECK(ld_time_parse_duration("1x", &t) != 0);
    CHECK(ld_time_parse_duration("213503982334602d", &t) != 0);     /* would wrap to 61184 s */
    CHECK(ld_time_parse_duration("99999999999999999999", &t) != 0); /* beyond long long */
    CHECK(ld_time_parse_duration("-1d", &t) != 0);
    char day[11];
    ld_time_utc_day(1735689599, day);
    CHECK_STR(day, "2024-12-31");

    /* ISO time or null: 0 means "never" / "not yet". */
    json_t *j = ld_time_json(1735689599);
    CHECK(json_is_string(j) && !strcmp(json_string_value(j), "2024-12-31T23:59:59Z"));
    json_decref(j);
    j = ld_time_json(0);
    CHECK(json_is_null(j));
    json_decref(j);

    /* Deadlines for timed waits: normalised, in the future, never in the past. */
    struct timespec now, d = ld_time_deadline(1999);
    clock_gettime(CLOCK_REALTIME, &now);
    double ahead = (double)(d.tv_sec - now.tv_sec) + (double)(d.tv_nsec - now.tv_nsec) / 1e9;
    CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L && ahead > 1.9 && ahead <= 1.999);
    d = ld_time_deadline(-5000);
    CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L && d.tv_sec >= now.tv_sec - 1 && d.tv_sec <= now.tv_sec + 1);
}

static void test_fs(void)
{
    char path[] = "/tmp/ld_util_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    static char big[300000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    CHECK(ld_fs_write_all(fd, big, sizeof big) == 0);
    close(fd);
    size_t len = 0;
    char *back = ld_fs_read(path, sizeof big, &len);
    CHECK(back && len == sizeof big && memcmp(back, big, len) == 0);
    free(back);
    CHECK(ld_fs_write_all(-1, "x", 1) == -1);
    unlink(path);
}

static void test_rand(void)
{
    char a[32], b[32];
    ld_rand_id("req_", a, sizeof a);
    ld_rand_id("req_", b, sizeof b);
    CHECK(strncmp(a, "req_", 4) == 0 && strlen(a) == 24);
    CHECK(strcmp(a, b) != 0);
}

int main(void)
{
    test_err();
    test_time();
    test_fs();
    test_rand();
    TEST_MAIN_END();
}
