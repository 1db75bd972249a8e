/* Minimal unit-test harness: CHECK records a failure and continues; main returns
 * non-zero when any check failed. */
#ifndef LD_TEST_H
#define LD_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ld_test_failures;
static int ld_test_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        ld_test_checks++;                                                            \
        if (!(cond)) {                                                               \
            ld_test_failures++;                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)
#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)
#define CHECK_NEAR(a, b, eps) CHECK(fabs((double)(a) - (double)(b)) <= (eps))

#define TEST_MAIN_END()                                                              \
    do {                                                                             \
        fprintf(stderr, "%d checks, %d failed\n", ld_test_checks, ld_test_failures); \
        return ld_test_failures ? 1 : 0;                                             \
    } while (0)

#endif
