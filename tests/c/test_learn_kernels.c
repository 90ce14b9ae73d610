/* Tests of the double-precision kernels of rotation learning. The nt, nn and tn products must
 * equal scalar loops written here in the documented summation order bit for bit, for sizes
 * with and without tails and for one or two threads. The double-precision online transforms
 * must equal the float plans' dense matrices (to float precision) and invert with Mᵀ. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hadamard/hadamard_plan.h"
#include "learn/learn_matmul.h"
#include "learn/learn_transform.h"
#include "linalg/rng.h"
#include "test_util.h"

static double *random_doubles(int64_t count, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    double *x = malloc((size_t)count * sizeof(double) + 1);
    for (int64_t i = 0; i < count; i++) {
        x[i] = 2.0 * sq_rng_uniform(&rng) - 1.0;
    }
    return x;
}

static float *random_floats(int64_t count, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    float *x = malloc((size_t)count * sizeof(float) + 1);
    for (int64_t i = 0; i < count; i++) {
        x[i] = (float)(2.0 * sq_rng_uniform(&rng) - 1.0);
    }
    return x;
}

/* Dot product in the nt order: eight interleaved lanes, the tail into lanes 0.., then
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). */
static double reference_dot(const double *a, const double *b, int n) {
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int body = n - n % 8;
    for (int i = 0; i < body; i++) {
        lanes[i % 8] += a[i] * b[i];
    }
    for (int i = body, j = 0; i < n; i++, j++) {
        lanes[j] += a[i] * b[i];
    }
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

static const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {9, 17, 33}, {32, 64, 64}, {5, 300, 19}, {7, 8, 600}, {300, 21, 37}};

static void check_nt(sq_threadpool *pool) {
    sq_error err = {0};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int rows = sizes[s][0], in = sizes[s][1], out = sizes[s][2];
        double *x = random_doubles((int64_t)rows * in, 1);
        float *w32 = random_floats((int64_t)out * in, 2);
        double *w64 = random_doubles((int64_t)out * in, 3);
        double *y32 = malloc((size_t)rows * out * sizeof(double));
        double *y64 = malloc((size_t)rows * out * sizeof(double));
        double *widened = malloc((size_t)out * in * sizeof(double));
        for (int64_t i = 0; i < (int64_t)out * in; i++) {
            widened[i] = w32[i];
        }
        CHECK(sq_learn_matmul_nt_f32(pool, y32, x, w32, rows, in, out, &err) == SQ_OK);
        CHECK(sq_learn_matmul_nt_f64(pool, y64, x, w64, rows, in, out, &err) == SQ_OK);
        int same32 = 1;
        int same64 = 1;
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                same32 &= y32[r * out + o] == reference_dot(x + r * in, widened + o * in, in);
                same64 &= y64[r * out + o] == reference_dot(x + r * in, w64 + o * in, in);
            }
        }
        CHECK_MSG(same32, "nt f32 %d x %d x %d differs from the scalar order", rows, in, out);
        CHECK_MSG(same64, "nt f64 %d x %d x %d differs from the scalar order", rows, in, out);
        free(x);
        free(w32);
        free(w64);
        free(y32);
        free(y64);
        free(widened);
    }
}

static void check_nn(sq_threadpool *pool) {
    sq_error err = {0};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int rows = sizes[s][0], in = sizes[s][1], out = sizes[s][2];
        double *x = random_doubles((int64_t)rows * in, 4);
        float *w32 = random_floats((int64_t)in * out, 5);
        double *w64 = random_doubles((int64_t)in * out, 6);
        double *y32 = malloc((size_t)rows * out * sizeof(double));
        double *y64 = malloc((size_t)rows * out * sizeof(double));
        CHECK(sq_learn_matmul_nn_f32(pool, y32, x, w32, rows, in, out, &err) == SQ_OK);
        CHECK(sq_learn_matmul_nn_f64(pool, y64, x, w64, rows, in, out, &err) == SQ_OK);
        int same32 = 1;
        int same64 = 1;
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double sum32 = 0.0;
                double sum64 = 0.0;
                for (int k = 0; k < in; k++) {
                    sum32 += x[r * in + k] * (double)w32[k * out + o];
                    sum64 += x[r * in + k] * w64[k * out + o];
                }
                same32 &= y32[r * out + o] == sum32;
                same64 &= y64[r * out + o] == sum64;
            }
        }
        CHECK_MSG(same32, "nn f32 %d x %d x %d differs from the scalar order", rows, in, out);
        CHECK_MSG(same64, "nn f64 %d x %d x %d differs from the scalar order", rows, in, out);
        free(x);
        free(w32);
        free(w64);
        free(y32);
        free(y64);
    }
}

static void check_tn(sq_threadpool *pool) {
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int rows = sizes[s][0], m = sizes[s][1], n = sizes[s][2];
        double *a = random_doubles((int64_t)rows * m, 7);
        double *b = random_doubles((int64_t)rows * n, 8);
        double *c = random_doubles((int64_t)m * n, 9);
        double *expected = malloc((size_t)m * n * sizeof(double));
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = c[i * n + j];
                for (int r = 0; r < rows; r++) {
                    sum += a[r * m + i] * b[r * n + j];
                }
                expected[i * n + j] = sum;
            }
        }
        sq_learn_matmul_tn_accumulate(pool, c, a, b, rows, m, n);
        CHECK_MSG(memcmp(c, expected, (size_t)m * n * sizeof(double)) == 0,
                  "tn %d x %d x %d differs from the scalar order", rows, m, n);
        free(a);
        free(b);
        free(c);
        free(expected);
    }
}

static void test_products_serial(void) {
    check_nt(NULL);
    check_nn(NULL);
    check_tn(NULL);
}

static void test_products_two_threads(void) {
    sq_threadpool *pool = NULL;
    sq_error err = {0};
    CHECK(sq_threadpool_create(2, &pool, &err) == SQ_OK);
    check_nt(pool);
    check_nn(pool);
    check_tn(pool);
    sq_threadpool_free(pool);
}

/* Sizes 8 (Sylvester), 12 (base matrix 12), 172 (random orthogonal fallback), 1536 (12·128). */
static void test_transforms_match_plans(void) {
    const int ns[] = {8, 12, 172, 1536};
    for (size_t s = 0; s < sizeof(ns) / sizeof(ns[0]); s++) {
        int n = ns[s];
        sq_error err = {0};
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 5, NULL, &plan, &err) == SQ_OK);
        float *dense = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_hadamard_plan_to_dense(plan, dense, &err) == SQ_OK);
        sq_learn_transform t;
        CHECK(sq_learn_transform_init(&t, plan, &err) == SQ_OK);

        const int rows = 3;
        double *x = random_doubles((int64_t)rows * n, 10 + s);
        double *y = malloc((size_t)rows * n * sizeof(double));
        memcpy(y, x, (size_t)rows * n * sizeof(double));
        CHECK(sq_learn_transform_rows(&t, SQ_HADAMARD_APPLY_M, y, rows, NULL, &err) == SQ_OK);
        double max_error = 0.0;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < n; i++) {
                double expected = 0.0;
                for (int j = 0; j < n; j++) {
                    expected += (double)dense[i * n + j] * x[r * n + j];
                }
                max_error = fmax(max_error, fabs(y[r * n + i] - expected));
            }
        }
        CHECK_MSG(max_error < 1e-5, "size %d: M·x off by %.3e from the plan's dense matrix", n, max_error);

        CHECK(sq_learn_transform_rows(&t, SQ_HADAMARD_APPLY_MT, y, rows, NULL, &err) == SQ_OK);
        double round_trip = 0.0;
        for (int i = 0; i < rows * n; i++) {
            round_trip = fmax(round_trip, fabs(y[i] - x[i]));
        }
        CHECK_MSG(round_trip < 1e-12 || (plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL && round_trip < 1e-5),
                  "size %d: Mᵀ·M·x differs from x by %.3e", n, round_trip);
        free(x);
        free(y);
        free(dense);
        sq_learn_transform_free(&t);
        sq_hadamard_plan_free(plan);
    }
}

int main(void) {
    RUN_TEST(test_products_serial);
    RUN_TEST(test_products_two_threads);
    RUN_TEST(test_transforms_match_plans);
    TEST_MAIN_END();
}
