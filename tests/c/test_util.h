/* A minimal unit-test harness: each CHECK reports file, line and the failed condition, and
 * TEST_MAIN_END returns non-zero when any check failed. Tests run from the repository root,
 * so paths such as "models/stories260K/stories260K.bin" resolve. */
#ifndef SQ_TEST_UTIL_H
#define SQ_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int sq_test_failures = 0;
static int sq_test_checks = 0;

#define CHECK(condition)                                                                     \
    do {                                                                                     \
        sq_test_checks++;                                                                    \
        if (!(condition)) {                                                                  \
            sq_test_failures++;                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition);     \
        }                                                                                    \
    } while (0)

#define CHECK_MSG(condition, ...)                                                            \
    do {                                                                                     \
        sq_test_checks++;                                                                    \
        if (!(condition)) {                                                                  \
            sq_test_failures++;                                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #condition);     \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fprintf(stderr, "\n");                                                           \
        }                                                                                    \
    } while (0)

/* Checks |actual - expected| <= tolerance * max(1, |expected|). */
#define CHECK_CLOSE(actual, expected, tolerance)                                             \
    CHECK_MSG(fabs((double)(actual) - (double)(expected)) <=                                 \
                  (tolerance) * fmax(1.0, fabs((double)(expected))),                         \
              "actual %.9g, expected %.9g", (double)(actual), (double)(expected))

#define RUN_TEST(fn)                                                                         \
    do {                                                                                     \
        int before = sq_test_failures;                                                       \
        fn();                                                                                \
        fprintf(stderr, "%s %s\n", sq_test_failures == before ? "ok  " : "FAIL", #fn);       \
    } while (0)

#define TEST_MAIN_END()                                                                      \
    do {                                                                                     \
        fprintf(stderr, "%d checks, %d failed\n", sq_test_checks, sq_test_failures);        \
        return sq_test_failures == 0 ? 0 : 1;                                                \
    } while (0)

#endif
