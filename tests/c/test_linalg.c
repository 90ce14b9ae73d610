/* Tests for src/linalg: RNG, products, transpose, QR, Cholesky, triangular solves,
 * orthogonality error and Haar random orthogonal matrices. Expected values come from hand
 * computation, naive reference loops written here, or algebraic identities. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linalg/linalg.h"
#include "linalg/rng.h"
#include "test_util.h"

static double *random_matrix_f64(int rows, int cols, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    double *m = malloc((size_t)rows * (size_t)cols * sizeof(double) + 1);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        m[i] = 2.0 * sq_rng_uniform(&rng) - 1.0;
    }
    return m;
}

static float *random_matrix_f32(int rows, int cols, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    float *m = malloc((size_t)rows * (size_t)cols * sizeof(float) + 1);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        m[i] = (float)(2.0 * sq_rng_uniform(&rng) - 1.0);
    }
    return m;
}

/* ---- RNG ---- */

static void test_pcg32_reference_stream(void) {
    /* The PCG32 reference demo seeds with state 42 and sequence 54; its first outputs are
     * published with the reference implementation. Seed the struct the same way. */
    sq_rng rng = {0};
    rng.increment = (54u << 1) | 1u;
    sq_rng_next_u32(&rng);
    rng.state += 42u;
    sq_rng_next_u32(&rng);
    const uint32_t expected[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                  0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    for (int i = 0; i < 6; i++) {
        uint32_t value = sq_rng_next_u32(&rng);
        CHECK_MSG(value == expected[i], "output %d: 0x%08x, expected 0x%08x", i, value,
                  expected[i]);
    }
}

static void test_rng_seed_reproducible(void) {
    sq_rng a;
    sq_rng b;
    sq_rng c;
    sq_rng_seed(&a, 1234);
    sq_rng_seed(&b, 1234);
    sq_rng_seed(&c, 1235);
    int same_as_b = 0;
    int same_as_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = sq_rng_next_u64(&a);
        same_as_b += x == sq_rng_next_u64(&b);
        same_as_c += x == sq_rng_next_u64(&c);
    }
    CHECK(same_as_b == 1000);
    CHECK(same_as_c == 0);
}

static void test_rng_uniform_and_below(void) {
    sq_rng rng;
    sq_rng_seed(&rng, 7);
    int counts[10] = {0};
    double sum = 0.0;
    int out_of_range = 0;
    const int samples = 200000;
    for (int i = 0; i < samples; i++) {
        double u = sq_rng_uniform(&rng);
        out_of_range += !(u >= 0.0 && u < 1.0);
        sum += u;
        uint32_t k = sq_rng_below(&rng, 10);
        if (k < 10) {
            counts[k]++;
        } else {
            out_of_range++;
        }
    }
    CHECK(out_of_range == 0);
    CHECK_CLOSE(sum / samples, 0.5, 0.01);
    for (int k = 0; k < 10; k++) {
        /* Expected 20000 per bucket; 5 standard deviations is about 670. */
        CHECK_MSG(abs(counts[k] - samples / 10) < 700, "bucket %d has %d", k, counts[k]);
    }
    CHECK(sq_rng_below(&rng, 1) == 0);
}

static void test_rng_gaussian_matches_libm_polar(void) {
    /* Replays the polar Box-Muller method with libm's log on the same uniform stream; the
     * library's own logarithm must agree to a few ulp. */
    sq_rng rng;
    sq_rng reference;
    sq_rng_seed(&rng, 99);
    sq_rng_seed(&reference, 99);
    double max_relative = 0.0;
    double sum = 0.0;
    double sum2 = 0.0;
    const int pairs = 50000;

    for (int i = 0; i < pairs; i++) {
        double u = 0.0;
        double v = 0.0;
        double s = 0.0;
        do {
            u = 2.0 * sq_rng_uniform(&reference) - 1.0;
            v = 2.0 * sq_rng_uniform(&reference) - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        double factor = sqrt(-2.0 * log(s) / s);

        double expected[2] = {u * factor, v * factor};
        for (int j = 0; j < 2; j++) {
            double g = sq_rng_gaussian(&rng);
            double relative = fabs(g - expected[j]) / fmax(fabs(expected[j]), 1e-300);
            max_relative = fmax(max_relative, relative);
            sum += g;
            sum2 += g * g;
        }
    }

    CHECK_MSG(max_relative < 1e-14, "max relative difference %.3g", max_relative);
    CHECK_CLOSE(sum / (2 * pairs), 0.0, 0.02);
    CHECK_CLOSE(sum2 / (2 * pairs), 1.0, 0.02);
}

/* ---- products and transpose ---- */

static void test_matmul_matches_naive_loop_bits(void) {
    /* The kernel sums c[i][j] from 0 in increasing p order, exactly like this naive loop. */
    const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {33, 129, 17}, {64, 64, 64}, {70, 300, 259}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int m = sizes[s][0];
        int k = sizes[s][1];
        int n = sizes[s][2];
        float *a = random_matrix_f32(m, k, 10 + s);
        float *b = random_matrix_f32(k, n, 20 + s);
        float *c = malloc((size_t)m * n * sizeof(float));
        float *c_baseline = malloc((size_t)m * n * sizeof(float));
        sq_linalg_matmul_f32(a, b, c, m, k, n);
        sq_linalg_matmul_baseline_f32(a, b, c_baseline, m, k, n);
        int mismatches = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float sum = 0.0f;
                for (int p = 0; p < k; p++) {
                    float product = a[i * k + p] * b[p * n + j];
                    sum = sum + product;
                }
                mismatches += memcmp(&sum, &c[i * n + j], sizeof(float)) != 0;
            }
        }
        CHECK_MSG(mismatches == 0, "%dx%dx%d: %d entries differ from the naive loop", m, k, n,
                  mismatches);
        CHECK_MSG(memcmp(c, c_baseline, (size_t)m * n * sizeof(float)) == 0,
                  "%dx%dx%d: run-time kernel and baseline kernel differ", m, k, n);
        free(a);
        free(b);
        free(c);
        free(c_baseline);
    }
}

static void test_matmul_f64_against_exact_sums(void) {
    /* Small integer entries make every product and sum exact in double. */
    const int m = 37;
    const int k = 131;
    const int n = 45;
    double *a = malloc((size_t)m * k * sizeof(double));
    double *b = malloc((size_t)k * n * sizeof(double));
    double *c = malloc((size_t)m * n * sizeof(double));
    double *c_baseline = malloc((size_t)m * n * sizeof(double));
    for (int i = 0; i < m * k; i++) {
        a[i] = (double)((i * 7) % 11 - 5);
    }
    for (int i = 0; i < k * n; i++) {
        b[i] = (double)((i * 5) % 13 - 6);
    }

    sq_linalg_matmul_f64(a, b, c, m, k, n);
    sq_linalg_matmul_baseline_f64(a, b, c_baseline, m, k, n);

    int mismatches = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            long long exact = 0;
            for (int p = 0; p < k; p++) {
                exact += (long long)a[i * k + p] * (long long)b[p * n + j];
            }
            mismatches += c[i * n + j] != (double)exact;
        }
    }
    CHECK(mismatches == 0);
    CHECK(memcmp(c, c_baseline, (size_t)m * n * sizeof(double)) == 0);
    free(a);
    free(b);
    free(c);
    free(c_baseline);
}

static void test_matmul_hand_example(void) {
    const float a[2 * 3] = {1, 2, 3, 4, 5, 6};
    const float b[3 * 2] = {7, 8, 9, 10, 11, 12};
    const float expected[4] = {58, 64, 139, 154};
    float c[4];
    sq_linalg_matmul_f32(a, b, c, 2, 3, 2);
    for (int i = 0; i < 4; i++) {
        CHECK(c[i] == expected[i]);
    }
}

static void test_gemm_transposes(void) {
    const int m = 19;
    const int n = 23;
    const int k = 29;
    double *a = random_matrix_f64(m, k, 1);
    double *b = random_matrix_f64(k, n, 2);
    double *a_t = malloc((size_t)m * k * sizeof(double));
    double *b_t = malloc((size_t)k * n * sizeof(double));
    for (int i = 0; i < m; i++) {
        for (int p = 0; p < k; p++) {
            a_t[p * m + i] = a[i * k + p];
        }
    }
    for (int p = 0; p < k; p++) {
        for (int j = 0; j < n; j++) {
            b_t[j * k + p] = b[p * n + j];
        }
    }
    double *expected = malloc((size_t)m * n * sizeof(double));
    double *c = malloc((size_t)m * n * sizeof(double));
    sq_linalg_matmul_f64(a, b, expected, m, k, n);

    const double *a_inputs[2] = {a, a_t};
    const double *b_inputs[2] = {b, b_t};
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sq_error err = {0};
            sq_status status = sq_linalg_gemm_f64((sq_linalg_op)ta, (sq_linalg_op)tb, m, n, k,
                                                  a_inputs[ta], b_inputs[tb], c, &err);
            CHECK(status == SQ_OK);
            CHECK_MSG(memcmp(c, expected, (size_t)m * n * sizeof(double)) == 0,
                      "op_a=%d op_b=%d differs from the explicit product", ta, tb);
        }
    }

    sq_error err = {0};
    CHECK(sq_linalg_gemm_f64(SQ_LINALG_NO_TRANSPOSE, SQ_LINALG_NO_TRANSPOSE, -1, n, k, a, b, c,
                             &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "m=-1") != NULL);

    float af[6] = {1, 2, 3, 4, 5, 6}; /* stored (3, 2), used transposed as (2, 3) */
    float bf[6] = {1, 0, 0, 1, 1, 1}; /* stored (2, 3), used transposed as (3, 2) */
    float cf[4];
    CHECK(sq_linalg_gemm_f32(SQ_LINALG_TRANSPOSE, SQ_LINALG_TRANSPOSE, 2, 2, 3, af, bf, cf,
                             NULL) == SQ_OK);
    /* Aᵀ = [[1,3,5],[2,4,6]], Bᵀ = [[1,1],[0,1],[0,1]] -> [[1,9],[2,12]]. */
    CHECK(cf[0] == 1);
    CHECK(cf[1] == 9);
    CHECK(cf[2] == 2);
    CHECK(cf[3] == 12);

    free(a);
    free(b);
    free(a_t);
    free(b_t);
    free(expected);
    free(c);
}

static void test_transpose_shapes(void) {
    const int shapes[][2] = {{1, 1}, {1, 7}, {7, 1}, {33, 65}, {100, 31}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int rows = shapes[s][0];
        int cols = shapes[s][1];
        float *in = random_matrix_f32(rows, cols, s);
        float *out = malloc((size_t)rows * cols * sizeof(float));
        sq_linalg_transpose_f32(in, out, rows, cols);
        int mismatches = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                mismatches += out[c * rows + r] != in[r * cols + c];
            }
        }
        CHECK(mismatches == 0);
        free(in);
        free(out);
    }
}

/* ---- QR ---- */

static void test_qr_hand_example(void) {
    /* A = [[3, 1], [4, 2]]: |R00| = 5, |R01| = (3·1 + 4·2)/5 = 2.2, |R11| = |det A|/5 = 0.4. */
    const double a[4] = {3, 1, 4, 2};
    double q[4];
    double r[4];
    CHECK(sq_linalg_qr(a, 2, 2, q, r, NULL) == SQ_OK);
    CHECK_CLOSE(fabs(r[0]), 5.0, 1e-15);
    CHECK_CLOSE(fabs(r[1]), 2.2, 1e-15);
    CHECK(r[2] == 0.0);
    CHECK_CLOSE(fabs(r[3]), 0.4, 1e-15);
    CHECK_CLOSE(fabs(q[0]), 0.6, 1e-15);
    CHECK_CLOSE(fabs(q[2]), 0.8, 1e-15);
}

static void check_qr_reconstruction(int rows, int cols, const double *a) {
    double *q = malloc((size_t)rows * cols * sizeof(double) + 1);
    double *r = malloc((size_t)cols * cols * sizeof(double) + 1);
    CHECK(sq_linalg_qr(a, rows, cols, q, r, NULL) == SQ_OK);

    double max_reconstruction = 0.0;
    for (int i = 0; i < rows; i++) {
        for (int j = 0; j < cols; j++) {
            double sum = 0.0;
            for (int p = 0; p < cols; p++) {
                sum += q[i * cols + p] * r[p * cols + j];
            }
            max_reconstruction = fmax(max_reconstruction, fabs(sum - a[i * cols + j]));
        }
    }
    double max_orthogonality = 0.0;
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
            double sum = 0.0;
            for (int p = 0; p < rows; p++) {
                sum += q[p * cols + i] * q[p * cols + j];
            }
            max_orthogonality = fmax(max_orthogonality, fabs(sum - (i == j ? 1.0 : 0.0)));
        }
    }
    int lower_nonzero = 0;
    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < i; j++) {
            lower_nonzero += r[i * cols + j] != 0.0;
        }
    }
    CHECK_MSG(max_reconstruction < 1e-12, "%dx%d: |QR - A| = %.3g", rows, cols,
              max_reconstruction);
    CHECK_MSG(max_orthogonality < 1e-12, "%dx%d: |QᵀQ - I| = %.3g", rows, cols,
              max_orthogonality);
    CHECK(lower_nonzero == 0);
    free(q);
    free(r);
}

static void test_qr_random_shapes(void) {
    const int shapes[][2] = {{1, 1}, {5, 5}, {7, 3}, {64, 64}, {130, 40}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        double *a = random_matrix_f64(shapes[s][0], shapes[s][1], 100 + s);
        check_qr_reconstruction(shapes[s][0], shapes[s][1], a);
        free(a);
    }
}

static void test_qr_rank_deficient(void) {
    /* A zero column and a column already upper triangular give tau = 0 reflectors. */
    double a[4 * 3] = {
        2, 0, 1,
        0, 0, 2,
        0, 0, 3,
        0, 0, 4,
    };
    check_qr_reconstruction(4, 3, a);
}

static void test_qr_rejects_wide_matrix(void) {
    double a[6] = {0};
    double q[6];
    sq_error err = {0};
    CHECK(sq_linalg_qr(a, 2, 3, q, NULL, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "2 x 3") != NULL);
}

/* ---- orthogonality error ---- */

static void test_orthogonality_error_values(void) {
    const float identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    const float permutation[9] = {0, 1, 0, 0, 0, 1, 1, 0, 0};
    const float stretched[4] = {1, 0, 0, 1.5f}; /* QᵀQ - I = diag(0, 1.25) */
    const double twice[4] = {2, 0, 0, 2};       /* QᵀQ - I = 3·I */
    const double rotation[4] = {0.6, -0.8, 0.8, 0.6};
    const double skewed[4] = {1, 1, 0, 1}; /* QᵀQ = [[1,1],[1,2]] */
    CHECK(sq_linalg_orthogonality_error_f32(identity, 3) == 0.0);
    CHECK(sq_linalg_orthogonality_error_f32(permutation, 3) == 0.0);
    CHECK(sq_linalg_orthogonality_error_f32(stretched, 2) == 1.25);
    CHECK(sq_linalg_orthogonality_error_f64(twice, 2) == 3.0);
    CHECK(sq_linalg_orthogonality_error_f64(rotation, 2) < 1e-15);
    CHECK(sq_linalg_orthogonality_error_f64(skewed, 2) == 1.0);
    CHECK(sq_linalg_orthogonality_error_f64(NULL, 0) == 0.0);
}

static void test_orthogonality_error_large_tiles(void) {
    /* 70 columns span three 32-column tiles; one off-diagonal entry of QᵀQ is perturbed. */
    const int n = 70;
    double *q = calloc((size_t)n * n, sizeof(double));
    for (int i = 0; i < n; i++) {
        q[i * n + i] = 1.0;
    }
    q[5 * n + 66] = 0.125; /* QᵀQ[5][66] = QᵀQ[66][5] = 0.125, QᵀQ[66][66] = 1 + 1/64 */
    CHECK(sq_linalg_orthogonality_error_f64(q, n) == 0.125);
    free(q);
}

/* ---- Cholesky and triangular solves ---- */

static void test_cholesky_hand_example(void) {
    double a[9] = {4, 12, -16, 12, 37, -43, -16, -43, 98};
    const double expected[9] = {2, 0, 0, 6, 1, 0, -8, 5, 3};
    CHECK(sq_linalg_cholesky(a, 3, NULL) == SQ_OK);
    for (int i = 0; i < 9; i++) {
        CHECK_MSG(a[i] == expected[i], "entry %d: %g, expected %g", i, a[i], expected[i]);
    }
}

static void test_cholesky_rejects_indefinite(void) {
    double a[4] = {1, 2, 2, 1}; /* eigenvalues 3 and -1 */
    sq_error err = {0};
    CHECK(sq_linalg_cholesky(a, 2, &err) == SQ_ERR_NUMERIC);
    CHECK(strstr(err.message, "column 1") != NULL);
    double nan_matrix[1] = {NAN};
    CHECK(sq_linalg_cholesky(nan_matrix, 1, NULL) == SQ_ERR_NUMERIC);
}

static double *random_spd(int n, uint64_t seed) {
    double *b = random_matrix_f64(n, n, seed);
    double *a = malloc((size_t)n * n * sizeof(double));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double sum = i == j ? (double)n : 0.0;
            for (int p = 0; p < n; p++) {
                sum += b[i * n + p] * b[j * n + p];
            }
            a[i * n + j] = sum;
        }
    }
    free(b);
    return a;
}

static void test_cholesky_random_spd(void) {
    const int n = 100;
    double *a = random_spd(n, 5);
    double *l = malloc((size_t)n * n * sizeof(double));
    memcpy(l, a, (size_t)n * n * sizeof(double));
    CHECK(sq_linalg_cholesky(l, n, NULL) == SQ_OK);
    double max_error = 0.0;
    int upper_nonzero = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int p = 0; p < n; p++) {
                sum += l[i * n + p] * l[j * n + p];
            }
            max_error = fmax(max_error, fabs(sum - a[i * n + j]));
            upper_nonzero += j > i && l[i * n + j] != 0.0;
        }
    }
    CHECK_MSG(max_error < 1e-10, "|LLᵀ - A| = %.3g", max_error);
    CHECK(upper_nonzero == 0);

    /* Cholesky inverse: A·A⁻¹ = I, and the result is exactly symmetric. */
    double *inverse = malloc((size_t)n * n * sizeof(double));
    CHECK(sq_linalg_cholesky_inverse(l, n, inverse, NULL) == SQ_OK);
    double max_identity_error = 0.0;
    int asymmetric = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int p = 0; p < n; p++) {
                sum += a[i * n + p] * inverse[p * n + j];
            }
            max_identity_error = fmax(max_identity_error, fabs(sum - (i == j ? 1.0 : 0.0)));
            asymmetric += inverse[i * n + j] != inverse[j * n + i];
        }
    }
    CHECK_MSG(max_identity_error < 1e-10, "|A·A⁻¹ - I| = %.3g", max_identity_error);
    CHECK(asymmetric == 0);
    free(a);
    free(l);
    free(inverse);
}

static void test_solve_triangular_all_cases(void) {
    const int n = 40;
    const int nrhs = 3;
    double *t = random_matrix_f64(n, n, 11);
    for (int i = 0; i < n; i++) {
        t[i * n + i] = 2.0 + (double)(i % 3); /* well conditioned */
    }
    double *x_true = random_matrix_f64(n, nrhs, 12);
    double *b = malloc((size_t)n * nrhs * sizeof(double));

    for (int lower = 0; lower <= 1; lower++) {
        for (int transposed = 0; transposed <= 1; transposed++) {
            /* b = op(T_triangle)·x_true, reading only the requested triangle of t. */
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < nrhs; c++) {
                    double sum = 0.0;
                    for (int p = 0; p < n; p++) {
                        int row = transposed ? p : i;
                        int col = transposed ? i : p;
                        bool inside = lower ? col <= row : col >= row;
                        if (inside) {
                            sum += t[row * n + col] * x_true[p * nrhs + c];
                        }
                    }
                    b[i * nrhs + c] = sum;
                }
            }
            sq_linalg_op op = transposed ? SQ_LINALG_TRANSPOSE : SQ_LINALG_NO_TRANSPOSE;
            CHECK(sq_linalg_solve_triangular(t, n, lower, op, b, nrhs, NULL) == SQ_OK);
            double max_error = 0.0;
            for (int i = 0; i < n * nrhs; i++) {
                max_error = fmax(max_error, fabs(b[i] - x_true[i]));
            }
            CHECK_MSG(max_error < 1e-10, "lower=%d transposed=%d: error %.3g", lower, transposed,
                      max_error);
        }
    }

    /* A zero pivot is rejected before b is touched. */
    t[7 * n + 7] = 0.0;
    for (int i = 0; i < n * nrhs; i++) {
        b[i] = 1.0;
    }
    sq_error err = {0};
    CHECK(sq_linalg_solve_triangular(t, n, true, SQ_LINALG_NO_TRANSPOSE, b, nrhs, &err) ==
          SQ_ERR_NUMERIC);
    CHECK(strstr(err.message, "entry 7") != NULL);
    int changed = 0;
    for (int i = 0; i < n * nrhs; i++) {
        changed += b[i] != 1.0;
    }
    CHECK(changed == 0);
    free(t);
    free(x_true);
    free(b);
}

/* ---- Haar random orthogonal ---- */

static void test_random_orthogonal_properties(void) {
    const int sizes[] = {1, 2, 10, 100, 257};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        double *q = malloc((size_t)n * n * sizeof(double));
        float *qf = malloc((size_t)n * n * sizeof(float));
        CHECK(sq_linalg_random_orthogonal_f64(n, 42, q, NULL) == SQ_OK);
        CHECK(sq_linalg_random_orthogonal_f32(n, 42, qf, NULL) == SQ_OK);
        double error = sq_linalg_orthogonality_error_f64(q, n);
        double error_f32 = sq_linalg_orthogonality_error_f32(qf, n);
        CHECK_MSG(error < 1e-12, "n=%d: f64 orthogonality error %.3g", n, error);
        CHECK_MSG(error_f32 < 1e-5, "n=%d: f32 orthogonality error %.3g", n, error_f32);
        int rounding_mismatches = 0;
        for (int i = 0; i < n * n; i++) {
            rounding_mismatches += qf[i] != (float)q[i];
        }
        CHECK(rounding_mismatches == 0);
        free(q);
        free(qf);
    }
}

static void test_random_orthogonal_r_diagonal_positive(void) {
    /* Regenerate the Gaussian matrix G from the same seed; R = QᵀG must be upper triangular
     * with a positive diagonal. */
    const int n = 20;
    const uint64_t seed = 77;
    double *q = malloc((size_t)n * n * sizeof(double));
    double *g = malloc((size_t)n * n * sizeof(double));
    CHECK(sq_linalg_random_orthogonal_f64(n, seed, q, NULL) == SQ_OK);
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (int i = 0; i < n * n; i++) {
        g[i] = sq_rng_gaussian(&rng);
    }

    int bad_diagonal = 0;
    double max_below = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double r = 0.0;
            for (int p = 0; p < n; p++) {
                r += q[p * n + i] * g[p * n + j];
            }
            if (i == j) {
                bad_diagonal += !(r > 0.0);
            } else {
                max_below = fmax(max_below, fabs(r));
            }
        }
    }
    CHECK(bad_diagonal == 0);
    CHECK_MSG(max_below < 1e-12, "largest entry below the diagonal of QᵀG: %.3g", max_below);
    free(q);
    free(g);
}

static void test_random_orthogonal_seeds(void) {
    const int n = 16;
    float *a = malloc(n * n * sizeof(float));
    float *b = malloc(n * n * sizeof(float));
    float *c = malloc(n * n * sizeof(float));
    CHECK(sq_linalg_random_orthogonal_f32(n, 5, a, NULL) == SQ_OK);
    CHECK(sq_linalg_random_orthogonal_f32(n, 5, b, NULL) == SQ_OK);
    CHECK(sq_linalg_random_orthogonal_f32(n, 6, c, NULL) == SQ_OK);
    CHECK(memcmp(a, b, n * n * sizeof(float)) == 0);
    int equal = 0;
    for (int i = 0; i < n * n; i++) {
        equal += a[i] == c[i];
    }
    CHECK(equal == 0);
    free(a);
    free(b);
    free(c);
}

static void test_random_orthogonal_haar_moments(void) {
    /* For Haar Q of size 3, every entry has mean 0 and E[q²] = 1/3 (q² is Beta(1/2, 1)). The
     * sign fix matters: without it Householder QR makes q[0][0] negative for every seed. */
    const int n = 3;
    const int trials = 3000;
    double diagonal_sum = 0.0;
    double corner_square_sum = 0.0;
    double q[9];
    for (int t = 0; t < trials; t++) {
        CHECK(sq_linalg_random_orthogonal_f64(n, 1000 + t, q, NULL) == SQ_OK);
        for (int i = 0; i < n; i++) {
            diagonal_sum += q[i * n + i];
        }
        corner_square_sum += q[0] * q[0];
    }
    /* Standard deviations of the two means: 0.006 and 0.0055. */
    CHECK_CLOSE(diagonal_sum / (trials * n), 0.0, 0.03);
    CHECK_CLOSE(corner_square_sum / trials, 1.0 / 3.0, 0.03);
}

int main(void) {
    RUN_TEST(test_pcg32_reference_stream);
    RUN_TEST(test_rng_seed_reproducible);
    RUN_TEST(test_rng_uniform_and_below);
    RUN_TEST(test_rng_gaussian_matches_libm_polar);
    RUN_TEST(test_matmul_matches_naive_loop_bits);
    RUN_TEST(test_matmul_f64_against_exact_sums);
    RUN_TEST(test_matmul_hand_example);
    RUN_TEST(test_gemm_transposes);
    RUN_TEST(test_transpose_shapes);
    RUN_TEST(test_qr_hand_example);
    RUN_TEST(test_qr_random_shapes);
    RUN_TEST(test_qr_rank_deficient);
    RUN_TEST(test_qr_rejects_wide_matrix);
    RUN_TEST(test_orthogonality_error_values);
    RUN_TEST(test_orthogonality_error_large_tiles);
    RUN_TEST(test_cholesky_hand_example);
    RUN_TEST(test_cholesky_rejects_indefinite);
    RUN_TEST(test_cholesky_random_spd);
    RUN_TEST(test_solve_triangular_all_cases);
    RUN_TEST(test_random_orthogonal_properties);
    RUN_TEST(test_random_orthogonal_r_diagonal_positive);
    RUN_TEST(test_random_orthogonal_seeds);
    RUN_TEST(test_random_orthogonal_haar_moments);
    TEST_MAIN_END();
}
