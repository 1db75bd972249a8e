#include <stdlib.h>

#include "test.h"
#include "util/err.h"
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
    CHECK(ld_time_parse_iso8601("2025-01-01T01:00:00+01:00", &t) == 0 && t == 1735689600);
    CHECK(ld_time_parse_iso8601("2024-13-01", &t) != 0);
    CHECK(ld_time_parse_iso8601("garbage", &t) != 0);
    CHECK(ld_time_parse_duration("90d", &t) == 0 && t == 90 * 86400);
    CHECK(ld_time_parse_duration("15", &t) == 0 && t == 15);
    CHECK(ld_time_parse_duration("1x", &t) != 0);
    CHECK(ld_time_parse_duration("-1d", &t) != 0);
    char day[11];
    ld_time_utc_day(1735689599, day);
    CHECK_STR(day, "2024-12-31");
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
    test_rand();
    TEST_MAIN_END();
}
