/* Tests for sq_hadamard_plan (Kronecker transforms, fallbacks, vector/row/column application)
 * and for the random rotation initializations. The reference transform is computed here
 * entry by entry from the base matrix H_m and the Sylvester closed form, in double. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "hadamard/hadamard_plan.h"
#include "hadamard/random_hadamard.h"
#include "linalg/linalg.h"
#include "linalg/rng.h"
#include "test_util.h"

typedef struct captured_log {
    int lines;
    char last[512];
} captured_log;

static void capture_line(sq_log_level level, const char *function, const char *message,
                         void *user_data) {
    (void)level;
    (void)function;
    captured_log *log = user_data;
    log->lines++;
    snprintf(log->last, sizeof(log->last), "%s", message);
}

static int parity(unsigned v) {
    int result = 0;
    for (; v != 0; v &= v - 1) {
        result ^= 1;
    }
    return result;
}

static float *random_vector(int n, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    float *x = malloc((size_t)n * sizeof(float) + 1);
    for (int i = 0; i < n; i++) {
        x[i] = (float)sq_rng_gaussian(&rng);
    }
    return x;
}

/* Reference M·x (or Mᵀ·x) in double for a Kronecker or block-diagonal plan, from the block
 * entry H_m[a][b]·(-1)^popcount(j & l)/sqrt(b). Only outputs i with i % step == 0 are
 * computed. */
static void reference_apply(const sq_hadamard_plan *plan, int transposed, const float *x,
                            double *y, int step) {
    int b = plan->block_size;
    int m = plan->base_order;
    int power = plan->power_of_two;
    double scale = 1.0 / sqrt((double)b);
    for (int block = 0; block < plan->n; block += b) {
        for (int i = 0; i < b; i++) {
            if ((block + i) % step != 0) {
                continue;
            }
            double sum = 0.0;
            for (int k = 0; k < b; k++) {
                int row = transposed ? k : i;
                int col = transposed ? i : k;
                int sign = plan->base_matrix[(row / power) * m + col / power];
                if (parity((unsigned)((row % power) & (col % power)))) {
                    sign = -sign;
                }
                sum += sign * (double)x[block + k];
            }
            y[block + i] = sum * scale;
        }
    }
}

static void test_plan_kinds_for_real_sizes(void) {
    const int cases[][3] = {{576, 36, 16}, {1536, 12, 128}, {4864, 76, 64}, {11008, 344, 32},
                            {64, 1, 64},   {24, 12, 2},     {12, 12, 1},    {1, 1, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        captured_log log = {0};
        sq_logger logger = {capture_line, &log, SQ_LOG_DEBUG};
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(cases[i][0], 1, &logger, &plan, NULL) == SQ_OK);
        CHECK(plan->kind == SQ_HADAMARD_PLAN_KRONECKER);
        CHECK(plan->block_size == cases[i][0]);
        CHECK_MSG(plan->base_order == cases[i][1] && plan->power_of_two == cases[i][2],
                  "n=%d: m=%d power=%d", cases[i][0], plan->base_order, plan->power_of_two);
        CHECK(plan->scale == (float)(1.0 / sqrt((double)cases[i][0])));
        CHECK(log.lines == 0);
        sq_hadamard_plan_free(plan);
    }
}

static void test_plan_power_of_two_equals_fwht(void) {
    /* For n = 2^k the plan is the FWHT itself, bit for bit. */
    for (int n = 1; n <= 4096; n *= 4) {
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 0, NULL, &plan, NULL) == SQ_OK);
        float *x = random_vector(n, 4);
        float *y = malloc((size_t)n * sizeof(float));
        memcpy(y, x, (size_t)n * sizeof(float));
        CHECK(sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_M, x, NULL, NULL) == SQ_OK);
        CHECK(sq_hadamard_fwht(y, n, NULL) == SQ_OK);
        CHECK_MSG(memcmp(x, y, (size_t)n * sizeof(float)) == 0, "n=%d", n);
        free(x);
        free(y);
        sq_hadamard_plan_free(plan);
    }
}

static void check_plan_against_reference(int n, uint64_t seed) {
    sq_hadamard_plan *plan = NULL;
    CHECK(sq_hadamard_plan_create(n, seed, NULL, &plan, NULL) == SQ_OK);
    if (plan == NULL) {
        return;
    }
    float *x = random_vector(n, (uint64_t)n);
    double *expected = malloc((size_t)n * sizeof(double));
    for (int transposed = 0; transposed <= 1; transposed++) {
        float *y = malloc((size_t)n * sizeof(float));
        memcpy(y, x, (size_t)n * sizeof(float));
        sq_hadamard_op op = transposed ? SQ_HADAMARD_APPLY_MT : SQ_HADAMARD_APPLY_M;
        CHECK(sq_hadamard_plan_apply(plan, op, y, NULL, NULL) == SQ_OK);
        int step = n > 2048 ? 7 : 1; /* a spread of outputs for the largest sizes */
        reference_apply(plan, transposed, x, expected, step);
        double max_error = 0.0;
        for (int i = 0; i < n; i += step) {
            max_error = fmax(max_error, fabs((double)y[i] - expected[i]));
        }
        CHECK_MSG(max_error < 1e-5, "n=%d transposed=%d: max error %.3g", n, transposed,
                  max_error);
        free(y);
    }
    free(x);
    free(expected);
    sq_hadamard_plan_free(plan);
}

static void test_plan_matches_dense_product(void) {
    const int sizes[] = {1, 2, 64, 12, 24, 20, 40, 36, 52, 28, 140, 576, 1536, 4864, 11008, 156};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_plan_against_reference(sizes[i], 9);
    }
}

static void test_plan_to_dense_entries(void) {
    /* Every entry of M is exactly ±1/sqrt(n) with the sign of H_n. */
    const int sizes[] = {12, 24, 64, 576};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 0, NULL, &plan, NULL) == SQ_OK);
        float *dense = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_hadamard_plan_to_dense(plan, dense, NULL) == SQ_OK);
        int mismatches = 0;
        int power = plan->power_of_two;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                int sign = plan->base_matrix[(i / power) * plan->base_order + k / power];
                if (parity((unsigned)((i % power) & (k % power)))) {
                    sign = -sign;
                }
                mismatches += dense[(size_t)i * n + k] != (float)sign * plan->scale;
            }
        }
        CHECK_MSG(mismatches == 0, "n=%d: %d entries differ", n, mismatches);
        CHECK(sq_linalg_orthogonality_error_f32(dense, n) < 1e-5);
        free(dense);
        sq_hadamard_plan_free(plan);
    }
}

/* Rows, columns and single vectors must give the same bits, for M and Mᵀ. */
static void check_rows_and_columns_consistent(int n) {
    const int count = 3;
    sq_hadamard_plan *plan = NULL;
    CHECK(sq_hadamard_plan_create(n, 5, NULL, &plan, NULL) == SQ_OK);
    if (plan == NULL) {
        return;
    }
    float *matrix = random_vector(n * count, 77);
    float *rows = malloc((size_t)n * count * sizeof(float));
    float *columns = malloc((size_t)n * count * sizeof(float));
    float *vector = malloc((size_t)n * sizeof(float));
    float *scratch = malloc((sq_hadamard_plan_scratch_floats(plan) + 1) * sizeof(float));

    for (int op = 0; op <= 1; op++) {
        /* rows: a (count, n); columns: the transpose, (n, count). */
        memcpy(rows, matrix, (size_t)n * count * sizeof(float));
        sq_linalg_transpose_f32(matrix, columns, count, n);
        CHECK(sq_hadamard_plan_apply_rows(plan, (sq_hadamard_op)op, rows, count, scratch, NULL) ==
              SQ_OK);
        CHECK(sq_hadamard_plan_apply_columns(plan, (sq_hadamard_op)op, columns, count, NULL) ==
              SQ_OK);

        int row_mismatches = 0;
        int column_mismatches = 0;
        for (int r = 0; r < count; r++) {
            memcpy(vector, matrix + (size_t)r * n, (size_t)n * sizeof(float));
            CHECK(sq_hadamard_plan_apply(plan, (sq_hadamard_op)op, vector, NULL, NULL) == SQ_OK);
            for (int i = 0; i < n; i++) {
                row_mismatches += memcmp(&vector[i], &rows[(size_t)r * n + i], sizeof(float)) != 0;
                column_mismatches +=
                    memcmp(&vector[i], &columns[(size_t)i * count + r], sizeof(float)) != 0;
            }
        }
        CHECK_MSG(row_mismatches == 0, "n=%d op=%d: %d row entries differ", n, op, row_mismatches);
        CHECK_MSG(column_mismatches == 0, "n=%d op=%d: %d column entries differ", n, op,
                  column_mismatches);
    }
    free(matrix);
    free(rows);
    free(columns);
    free(vector);
    free(scratch);
    sq_hadamard_plan_free(plan);
}

static void test_plan_rows_columns_bit_identical(void) {
    const int sizes[] = {1, 64, 24, 576, 1536, 156, 172, 7};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        check_rows_and_columns_consistent(sizes[i]);
    }
}

static void test_plan_round_trip_and_r4_identity(void) {
    /* (W·Mᵀ)·(M·x) = W·x is how R4 is folded into down_proj; Mᵀ·M·x = x. */
    const int sizes[] = {576, 1536, 156, 172, 13696};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        const int out = 4;
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 3, NULL, &plan, NULL) == SQ_OK);
        float *w = random_vector(out * n, 1);
        float *x = random_vector(n, 2);
        float *w_rotated = malloc((size_t)out * n * sizeof(float));
        float *x_rotated = malloc((size_t)n * sizeof(float));
        memcpy(w_rotated, w, (size_t)out * n * sizeof(float));
        memcpy(x_rotated, x, (size_t)n * sizeof(float));
        CHECK(sq_hadamard_plan_apply_rows(plan, SQ_HADAMARD_APPLY_M, w_rotated, out, NULL, NULL) ==
              SQ_OK);
        CHECK(sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_M, x_rotated, NULL, NULL) == SQ_OK);
        double max_error = 0.0;
        for (int r = 0; r < out; r++) {
            double plain = 0.0;
            double rotated = 0.0;
            for (int i = 0; i < n; i++) {
                plain += (double)w[(size_t)r * n + i] * x[i];
                rotated += (double)w_rotated[(size_t)r * n + i] * x_rotated[i];
            }
            max_error = fmax(max_error, fabs(plain - rotated) / sqrt((double)n));
        }
        CHECK_MSG(max_error < 1e-5, "n=%d: W·x changed by %.3g", n, max_error);

        CHECK(sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_MT, x_rotated, NULL, NULL) == SQ_OK);
        double round_trip = 0.0;
        for (int i = 0; i < n; i++) {
            round_trip = fmax(round_trip, fabs((double)x_rotated[i] - x[i]));
        }
        CHECK_MSG(round_trip < 1e-5, "n=%d: Mᵀ·M·x differs from x by %.3g", n, round_trip);
        free(w);
        free(x);
        free(w_rotated);
        free(x_rotated);
        sq_hadamard_plan_free(plan);
    }
}

static void test_plan_simd_bit_identical(void) {
    const int sizes[] = {12, 24, 64, 576, 1536, 4864, 156, 13696};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 0, NULL, &plan, NULL) == SQ_OK);
        float *x = random_vector(n, 31);
        float *reference = malloc((size_t)n * sizeof(float));
        float *simd = malloc((size_t)n * sizeof(float));
        for (int op = 0; op <= 1; op++) {
            memcpy(reference, x, (size_t)n * sizeof(float));
            CHECK(sq_hadamard_plan_set_isa(plan, SQ_HADAMARD_ISA_SCALAR, NULL) == SQ_OK);
            CHECK(sq_hadamard_plan_apply(plan, (sq_hadamard_op)op, reference, NULL, NULL) ==
                  SQ_OK);
            for (int isa = 1; isa < SQ_HADAMARD_ISA_COUNT; isa++) {
                if (!sq_hadamard_isa_available((sq_hadamard_isa)isa)) {
                    continue;
                }
                memcpy(simd, x, (size_t)n * sizeof(float));
                CHECK(sq_hadamard_plan_set_isa(plan, (sq_hadamard_isa)isa, NULL) == SQ_OK);
                CHECK(sq_hadamard_plan_apply(plan, (sq_hadamard_op)op, simd, NULL, NULL) == SQ_OK);
                CHECK_MSG(memcmp(reference, simd, (size_t)n * sizeof(float)) == 0,
                          "n=%d op=%d: %s differs from scalar", n, op,
                          sq_hadamard_isa_name((sq_hadamard_isa)isa));
            }
        }
        free(x);
        free(reference);
        free(simd);
        sq_hadamard_plan_free(plan);
    }
}

static void test_fallback_block_diagonal(void) {
    const int cases[][2] = {{156, 52}, {324, 108}, {184, 8}, {13696, 128}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = cases[i][0];
        captured_log log = {0};
        sq_logger logger = {capture_line, &log, SQ_LOG_DEBUG};
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 1, &logger, &plan, NULL) == SQ_OK);
        CHECK(plan->kind == SQ_HADAMARD_PLAN_BLOCK_DIAGONAL);
        CHECK_MSG(plan->block_size == cases[i][1], "n=%d: block %d", n, plan->block_size);
        CHECK(log.lines == 1);
        char expected[64];
        snprintf(expected, sizeof(expected), "order %d", n);
        CHECK_MSG(strstr(log.last, expected) != NULL && strstr(log.last, "block-diagonal"),
                  "log: %s", log.last);
        if (n <= 1024) {
            float *dense = malloc((size_t)n * n * sizeof(float));
            CHECK(sq_hadamard_plan_to_dense(plan, dense, NULL) == SQ_OK);
            CHECK(sq_linalg_orthogonality_error_f32(dense, n) < 1e-5);
            free(dense);
        }
        sq_hadamard_plan_free(plan);
    }
}

static void test_fallback_random_orthogonal(void) {
    const int sizes[] = {172, 7, 6, 3, 254};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        int n = sizes[i];
        captured_log log = {0};
        sq_logger logger = {capture_line, &log, SQ_LOG_DEBUG};
        sq_hadamard_plan *plan = NULL;
        CHECK(sq_hadamard_plan_create(n, 11, &logger, &plan, NULL) == SQ_OK);
        CHECK(plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL);
        CHECK(log.lines == 1);
        CHECK_MSG(strstr(log.last, "random orthogonal") != NULL, "log: %s", log.last);
        float *dense = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_hadamard_plan_to_dense(plan, dense, NULL) == SQ_OK);
        double error = sq_linalg_orthogonality_error_f32(dense, n);
        CHECK_MSG(error < 1e-5, "n=%d: orthogonality error %.3g", n, error);
        /* The plan's matrix is the Haar matrix of its seed. */
        float *haar = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_linalg_random_orthogonal_f32(n, 11, haar, NULL) == SQ_OK);
        CHECK(memcmp(haar, plan->dense, (size_t)n * n * sizeof(float)) == 0);
        free(dense);
        free(haar);
        sq_hadamard_plan_free(plan);
    }

    /* Same seed, same transform; different seed, different transform. */
    sq_hadamard_plan *a = NULL;
    sq_hadamard_plan *b = NULL;
    sq_hadamard_plan *c = NULL;
    CHECK(sq_hadamard_plan_create(172, 1, NULL, &a, NULL) == SQ_OK);
    CHECK(sq_hadamard_plan_create(172, 1, NULL, &b, NULL) == SQ_OK);
    CHECK(sq_hadamard_plan_create(172, 2, NULL, &c, NULL) == SQ_OK);
    CHECK(memcmp(a->dense, b->dense, 172 * 172 * sizeof(float)) == 0);
    CHECK(memcmp(a->dense, c->dense, 172 * 172 * sizeof(float)) != 0);
    sq_hadamard_plan_free(a);
    sq_hadamard_plan_free(b);
    sq_hadamard_plan_free(c);
}

static void test_plan_rejects_impossible_sizes(void) {
    const int invalid[] = {0, -5};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        sq_hadamard_plan *plan = (sq_hadamard_plan *)&plan; /* must be reset to NULL */
        sq_error err = {0};
        CHECK(sq_hadamard_plan_create(invalid[i], 0, NULL, &plan, &err) == SQ_ERR_INVALID_ARG);
        CHECK(plan == NULL);
    }
    /* A prime above the dense fallback limit has no transform. */
    const int unsupported[] = {4099, 2 * 4111};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        sq_hadamard_plan *plan = NULL;
        sq_error err = {0};
        CHECK(sq_hadamard_plan_create(unsupported[i], 0, NULL, &plan, &err) == SQ_ERR_UNSUPPORTED);
        CHECK(plan == NULL);
        char expected[32];
        snprintf(expected, sizeof(expected), "size %d", unsupported[i]);
        CHECK_MSG(strstr(err.message, expected) != NULL, "message: %s", err.message);
    }
    sq_hadamard_plan_free(NULL);

    sq_hadamard_plan *plan = NULL;
    CHECK(sq_hadamard_plan_create(64, 0, NULL, &plan, NULL) == SQ_OK);
    sq_error err = {0};
    CHECK(sq_hadamard_plan_set_isa(plan, (sq_hadamard_isa)42, &err) == SQ_ERR_UNSUPPORTED);
    float x[64] = {0};
    CHECK(sq_hadamard_plan_apply_rows(plan, SQ_HADAMARD_APPLY_M, x, -1, NULL, &err) ==
          SQ_ERR_INVALID_ARG);
    CHECK(sq_hadamard_plan_apply_columns(plan, SQ_HADAMARD_APPLY_M, x, -1, &err) ==
          SQ_ERR_INVALID_ARG);
    CHECK(sq_hadamard_plan_scratch_floats(plan) == 0);
    sq_hadamard_plan_free(plan);
}

/* ---- rotation initializations ---- */

static void test_random_hadamard_rotation(void) {
    const int sizes[] = {1, 12, 64, 576, 156, 7};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        float *r = malloc((size_t)n * n * sizeof(float));
        float *same = malloc((size_t)n * n * sizeof(float));
        float *other = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_hadamard_random_rotation(n, 100, NULL, r, NULL) == SQ_OK);
        CHECK(sq_hadamard_random_rotation(n, 100, NULL, same, NULL) == SQ_OK);
        CHECK(sq_hadamard_random_rotation(n, 101, NULL, other, NULL) == SQ_OK);
        double error = sq_linalg_orthogonality_error_f32(r, n);
        CHECK_MSG(error < 1e-5, "n=%d: orthogonality error %.3g", n, error);
        CHECK(memcmp(r, same, (size_t)n * n * sizeof(float)) == 0);
        if (n >= 12) {
            CHECK_MSG(memcmp(r, other, (size_t)n * n * sizeof(float)) != 0, "n=%d", n);
        }
        free(r);
        free(same);
        free(other);
    }
}

static void test_random_hadamard_is_signed_rows(void) {
    /* R = D·M: row i of R is ±(row i of M), and both signs occur. */
    const int n = 576;
    float *r = malloc((size_t)n * n * sizeof(float));
    float *m = malloc((size_t)n * n * sizeof(float));
    sq_hadamard_plan *plan = NULL;
    CHECK(sq_hadamard_plan_create(n, 0, NULL, &plan, NULL) == SQ_OK);
    CHECK(sq_hadamard_plan_to_dense(plan, m, NULL) == SQ_OK);
    CHECK(sq_hadamard_random_rotation(n, 5, NULL, r, NULL) == SQ_OK);

    int positive_rows = 0;
    int negative_rows = 0;
    int bad_rows = 0;
    for (int i = 0; i < n; i++) {
        int same = 0;
        int flipped = 0;
        for (int j = 0; j < n; j++) {
            float a = r[(size_t)i * n + j];
            float b = m[(size_t)i * n + j];
            same += a == b;
            flipped += a == -b;
        }
        positive_rows += same == n;
        negative_rows += flipped == n;
        bad_rows += same != n && flipped != n;
    }
    CHECK(bad_rows == 0);

    /* 576 fair signs: both counts are 288 ± 12 (one standard deviation). */
    CHECK_MSG(positive_rows > 200 && negative_rows > 200, "%d positive, %d negative",
              positive_rows, negative_rows);
    free(r);
    free(m);
    sq_hadamard_plan_free(plan);
}

static void test_haar_rotation_sizes(void) {
    const int sizes[] = {64, 576};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        float *q = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_linalg_random_orthogonal_f32(n, 8, q, NULL) == SQ_OK);
        double error = sq_linalg_orthogonality_error_f32(q, n);
        CHECK_MSG(error < 1e-5, "n=%d: orthogonality error %.3g", n, error);
        free(q);
    }
}

int main(void) {
    RUN_TEST(test_plan_kinds_for_real_sizes);
    RUN_TEST(test_plan_power_of_two_equals_fwht);
    RUN_TEST(test_plan_matches_dense_product);
    RUN_TEST(test_plan_to_dense_entries);
    RUN_TEST(test_plan_rows_columns_bit_identical);
    RUN_TEST(test_plan_round_trip_and_r4_identity);
    RUN_TEST(test_plan_simd_bit_identical);
    RUN_TEST(test_fallback_block_diagonal);
    RUN_TEST(test_fallback_random_orthogonal);
    RUN_TEST(test_plan_rejects_impossible_sizes);
    RUN_TEST(test_random_hadamard_rotation);
    RUN_TEST(test_random_hadamard_is_signed_rows);
    RUN_TEST(test_haar_rotation_sizes);
    TEST_MAIN_END();
}
