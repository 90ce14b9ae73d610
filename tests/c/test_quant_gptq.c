/* Tests of GPTQ and its Hessian accumulator (src/quant/gptq.h). They cover hand-computed
 * small layers and agreement with an independent unblocked implementation (the
 * optimal-brain-quantizer update with an explicit inverse). They also cover equality with RTN
 * for an identity Hessian, lower output error than RTN on correlated inputs, and argument
 * errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/gptq.h"
#include "test_util.h"

/* Test data: SplitMix64 and Box-Muller, independent of the engine's own generator. */

static uint64_t test_random_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double test_random_uniform(uint64_t *state) {
    return (double)(test_random_next(state) >> 11) / 9007199254740992.0;
}

static double test_random_gaussian(uint64_t *state) {
    const double u = 1.0 - test_random_uniform(state);
    const double v = test_random_uniform(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Fills x (tokens, cols) with correlated rows X = Z * A * D: Z Gaussian, A a dense Gaussian
 * mixing matrix and D a diagonal of column scales between about 0.3 and 3, so the Hessian has
 * large off-diagonal entries and an uneven diagonal. */
static void make_correlated_inputs(float *x, int tokens, int cols, uint64_t seed) {
    double *mixing = malloc((size_t)cols * (size_t)cols * sizeof(double));
    double *column_scale = malloc((size_t)cols * sizeof(double));
    double *z = malloc((size_t)cols * sizeof(double));
    for (int i = 0; i < cols * cols; i++) {
        mixing[i] = test_random_gaussian(&seed) / sqrt((double)cols);
    }
    for (int c = 0; c < cols; c++) {
        column_scale[c] = exp(0.6 * test_random_gaussian(&seed));
    }
    for (int t = 0; t < tokens; t++) {
        for (int k = 0; k < cols; k++) {
            z[k] = test_random_gaussian(&seed);
        }
        for (int c = 0; c < cols; c++) {
            double sum = 0.0;
            for (int k = 0; k < cols; k++) {
                sum += z[k] * mixing[k * cols + c];
            }
            x[(size_t)t * cols + c] = (float)(sum * column_scale[c]);
        }
    }
    free(mixing);
    free(column_scale);
    free(z);
}

static void make_gaussian_weights(float *w, int count, uint64_t seed) {
    for (int i = 0; i < count; i++) {
        w[i] = (float)test_random_gaussian(&seed);
    }
}

/* Returns ||X W^T - X Wq^T||^2 summed over tokens and output rows. */
static double output_error(const float *x, int tokens, const float *w, const float *wq,
                           int rows, int cols) {
    double total = 0.0;
    for (int t = 0; t < tokens; t++) {
        for (int r = 0; r < rows; r++) {
            double sum = 0.0;
            for (int c = 0; c < cols; c++) {
                sum += (double)x[(size_t)t * cols + c] *
                       ((double)w[(size_t)r * cols + c] - (double)wq[(size_t)r * cols + c]);
            }
            total += sum * sum;
        }
    }
    return total;
}

/* Independent reference: unblocked GPTQ written as the optimal-brain-quantizer update. After
 * quantizing column i, every later column j moves by -(w_i - q_i) * Hinv[i][j] / Hinv[i][i],
 * and column i is eliminated from the inverse Hessian of the remaining columns:
 * Hinv -= Hinv[:, i] Hinv[i, :] / Hinv[i][i]. This is mathematically the same as GPTQ's
 * Cholesky form but shares no code or intermediate values with it. Uses its own RTN rule:
 * scale = max|v| / qmax in float, q = clamp(nearbyint(v / scale)). */

static float reference_scale(const double *values, int count, int bits) {
    float max_abs = 0.0f;
    for (int i = 0; i < count; i++) {
        max_abs = fmaxf(max_abs, (float)fabs(values[i]));
    }
    return max_abs / (float)((1 << (bits - 1)) - 1);
}

static double reference_dequantize(double value, float scale, int bits) {
    if (scale == 0.0f) {
        return 0.0;
    }
    const float qmax = (float)((1 << (bits - 1)) - 1);
    float q = nearbyintf((float)value / scale);
    q = q < -qmax - 1.0f ? -qmax - 1.0f : (q > qmax ? qmax : q);
    return (double)(q * scale);
}

/* Inverts the (n, n) matrix a in place by Gauss-Jordan elimination with partial pivoting. */
static void reference_invert(double *a, int n) {
    double *augmented = calloc((size_t)n * 2 * n, sizeof(double));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            augmented[i * 2 * n + j] = a[i * n + j];
        }
        augmented[i * 2 * n + n + i] = 1.0;
    }
    for (int col = 0; col < n; col++) {
        int pivot = col;
        for (int i = col + 1; i < n; i++) {
            if (fabs(augmented[i * 2 * n + col]) > fabs(augmented[pivot * 2 * n + col])) {
                pivot = i;
            }
        }
        for (int j = 0; j < 2 * n; j++) {
            const double swap = augmented[col * 2 * n + j];
            augmented[col * 2 * n + j] = augmented[pivot * 2 * n + j];
            augmented[pivot * 2 * n + j] = swap;
        }
        const double diagonal = augmented[col * 2 * n + col];
        for (int j = 0; j < 2 * n; j++) {
            augmented[col * 2 * n + j] /= diagonal;
        }
        for (int i = 0; i < n; i++) {
            const double factor = augmented[i * 2 * n + col];
            if (i != col && factor != 0.0) {
                for (int j = 0; j < 2 * n; j++) {
                    augmented[i * 2 * n + j] -= factor * augmented[col * 2 * n + j];
                }
            }
        }
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            a[i * n + j] = augmented[i * 2 * n + n + j];
        }
    }
    free(augmented);
}

static void reference_gptq(float *w_out, const float *w_in, int rows, int cols,
                           const double *hessian, int bits, int group, int act_order,
                           double damp_ratio) {
    int *order = malloc((size_t)cols * sizeof(int));
    double *diag = malloc((size_t)cols * sizeof(double));
    double *hinv = malloc((size_t)cols * cols * sizeof(double));
    double *w = malloc((size_t)rows * cols * sizeof(double));
    double *values = malloc((size_t)cols * sizeof(double));
    float *scale = malloc((size_t)rows * sizeof(float));

    double diagonal_mean = 0.0;
    for (int c = 0; c < cols; c++) {
        diag[c] = hessian[c * cols + c] == 0.0 ? 1.0 : hessian[c * cols + c];
        diagonal_mean += diag[c] / cols;
        order[c] = c;
    }
    if (act_order) {
        /* Insertion sort by descending diagonal, where equal keys keep index order. */
        for (int i = 1; i < cols; i++) {
            const int moving = order[i];
            int j = i;
            while (j > 0 && diag[order[j - 1]] < diag[moving]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = moving;
        }
    }
    for (int a = 0; a < cols; a++) {
        for (int b = 0; b < cols; b++) {
            hinv[a * cols + b] = hessian[order[a] * cols + order[b]];
        }
        hinv[a * cols + a] = diag[order[a]] + damp_ratio * diagonal_mean;
        for (int r = 0; r < rows; r++) {
            const int dead = hessian[order[a] * cols + order[a]] == 0.0;
            w[r * cols + a] = dead ? 0.0 : w_in[r * cols + order[a]];
        }
    }
    reference_invert(hinv, cols);

    if (group == 0) {
        for (int r = 0; r < rows; r++) {
            scale[r] = reference_scale(w + r * cols, cols, bits);
        }
    }
    for (int i = 0; i < cols; i++) {
        if (group > 0 && i % group == 0) {
            for (int r = 0; r < rows; r++) {
                for (int k = 0; k < group; k++) {
                    values[k] = w[r * cols + i + k];
                }
                scale[r] = reference_scale(values, group, bits);
            }
        }
        const double pivot = hinv[i * cols + i];
        for (int r = 0; r < rows; r++) {
            const double q = reference_dequantize(w[r * cols + i], scale[r], bits);
            const double error = w[r * cols + i] - q;
            w[r * cols + i] = q;
            for (int j = i + 1; j < cols; j++) {
                w[r * cols + j] -= error * hinv[i * cols + j] / pivot;
            }
        }
        for (int a = i + 1; a < cols; a++) {
            for (int b = i + 1; b < cols; b++) {
                hinv[a * cols + b] -= hinv[a * cols + i] * hinv[i * cols + b] / pivot;
            }
        }
    }

    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++) {
            w_out[r * cols + order[k]] = (float)w[r * cols + k];
        }
    }
    free(order);
    free(diag);
    free(hinv);
    free(w);
    free(values);
    free(scale);
}

/* Builds H = 2 X^T X / n for correlated random inputs. */
static double *make_correlated_hessian(float *x, int tokens, int cols, uint64_t seed) {
    make_correlated_inputs(x, tokens, cols, seed);
    double *h = calloc((size_t)cols * cols, sizeof(double));
    long seen = 0;
    sq_error err;
    CHECK(sq_gptq_hessian_add(h, x, tokens, cols, &seen, &err) == SQ_OK);
    return h;
}

/* Hessian accumulator. */

/* Tokens {1, 2} and {3, 4}: X^T X = [[1 + 9, 2 + 12], [2 + 12, 4 + 16]] = [[10, 14], [14, 20]],
 * H = 2/2 * X^T X. Adding {1, 0}: H = H * 2/3 + 2/3 * [[1, 0], [0, 0]]
 * = [[22/3, 28/3], [28/3, 40/3]], which is 2/3 of X^T X over all three tokens. */
static void test_hessian_add_hand_case(void) {
    const float first[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const float second[2] = {1.0f, 0.0f};
    double h[4] = {0, 0, 0, 0};
    long seen = 0;
    sq_error err;

    CHECK(sq_gptq_hessian_add(h, first, 2, 2, &seen, &err) == SQ_OK);
    CHECK(seen == 2);
    CHECK_CLOSE(h[0], 10.0, 1e-15);
    CHECK_CLOSE(h[1], 14.0, 1e-15);
    CHECK_CLOSE(h[2], 14.0, 1e-15);
    CHECK_CLOSE(h[3], 20.0, 1e-15);

    CHECK(sq_gptq_hessian_add(h, second, 1, 2, &seen, &err) == SQ_OK);
    CHECK(seen == 3);
    CHECK_CLOSE(h[0], 22.0 / 3.0, 1e-15);
    CHECK_CLOSE(h[1], 28.0 / 3.0, 1e-15);
    CHECK_CLOSE(h[2], 28.0 / 3.0, 1e-15);
    CHECK_CLOSE(h[3], 40.0 / 3.0, 1e-15);

    CHECK(sq_gptq_hessian_add(h, NULL, 0, 2, &seen, &err) == SQ_OK);
    CHECK(seen == 3);
}

/* Three calls of 37, 100 and 63 tokens (crossing the 64-token chunks) against the plain sum
 * 2/200 * sum_t x_t x_t^T. */
static void test_hessian_add_matches_direct_sum(void) {
    enum { tokens = 200, cols = 7 };
    static float x[tokens * cols];
    uint64_t seed = 21;
    for (int i = 0; i < tokens * cols; i++) {
        x[i] = (float)test_random_gaussian(&seed);
    }
    double h[cols * cols] = {0};
    long seen = 0;
    sq_error err;
    CHECK(sq_gptq_hessian_add(h, x, 37, cols, &seen, &err) == SQ_OK);
    CHECK(sq_gptq_hessian_add(h, x + 37 * cols, 100, cols, &seen, &err) == SQ_OK);
    CHECK(sq_gptq_hessian_add(h, x + 137 * cols, 63, cols, &seen, &err) == SQ_OK);
    CHECK(seen == tokens);

    for (int i = 0; i < cols; i++) {
        for (int j = 0; j < cols; j++) {
            double expected = 0.0;
            for (int t = 0; t < tokens; t++) {
                expected += (double)x[t * cols + i] * (double)x[t * cols + j];
            }
            expected *= 2.0 / (double)tokens;
            CHECK_CLOSE(h[i * cols + j], expected, 1e-12);
        }
    }
}

static void test_hessian_add_rejects_invalid_input(void) {
    const float x[4] = {1.0f, NAN, 2.0f, 3.0f};
    double h[4] = {1, 2, 3, 4};
    long seen = 5;
    sq_error err;
    CHECK(sq_gptq_hessian_add(h, x, 2, 2, &seen, &err) == SQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "token 0, column 1") != NULL, "message: %s", err.message);
    CHECK(h[0] == 1.0);
    CHECK(h[1] == 2.0);
    CHECK(h[2] == 3.0);
    CHECK(h[3] == 4.0);
    CHECK(seen == 5);
    CHECK(sq_gptq_hessian_add(h, x, -1, 2, &seen, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_gptq_hessian_add(h, x, 1, 0, &seen, &err) == SQ_ERR_INVALID_ARG);
    seen = -1;
    CHECK(sq_gptq_hessian_add(h, x, 1, 2, &seen, &err) == SQ_ERR_INVALID_ARG);
}

/* GPTQ on hand-computed layers (4 bits, no dampening). */

/* H = [[9, 4], [4, 2]], so H^-1 = [[1, -2], [-2, 4.5]] and its upper Cholesky factor is
 * U = [[1, -2], [0, sqrt(0.5)]]. Row {0.36, 0.7}: scale 0.7 / 7 = 0.1; column 0: 3.6 -> 4,
 * value 0.4, e = (0.36 - 0.4) / U00 = -0.04; column 1 becomes 0.7 - e * U01 = 0.7 - 0.08 =
 * 0.62 -> 6 -> 0.6. RTN would give {0.4, 0.7}. Row {0.7, 0.36}: column 0 is on the grid,
 * e = 0, so column 1 stays 0.36 -> 0.4. */
static void test_gptq_hand_case(void) {
    const double h[4] = {9.0, 4.0, 4.0, 2.0};
    float w[4] = {0.36f, 0.7f, 0.7f, 0.36f};
    const float expected[4] = {0.4f, 0.6f, 0.7f, 0.4f};
    sq_gptq_params params = sq_gptq_params_default(4);
    params.damp_ratio = 0.0;
    sq_error err;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_OK);
    for (int i = 0; i < 4; i++) {
        CHECK_CLOSE(w[i], expected[i], 1e-6);
    }
}

/* H = [[2, 4], [4, 9]], row {0.7, 0.36}. In index order, column 0 is on the grid, so the result
 * is {0.7, 0.4}. With activation order, column 1 (diagonal 9) goes first: that is the first
 * row of test_gptq_hand_case mirrored, so the result is {0.6, 0.4}. */
static void test_gptq_act_order_hand_case(void) {
    const double h[4] = {2.0, 4.0, 4.0, 9.0};
    sq_gptq_params params = sq_gptq_params_default(4);
    params.damp_ratio = 0.0;
    sq_error err;

    float in_order[2] = {0.7f, 0.36f};
    CHECK(sq_gptq_quantize(in_order, 1, 2, h, &params, &err) == SQ_OK);
    CHECK_CLOSE(in_order[0], 0.7, 1e-6);
    CHECK_CLOSE(in_order[1], 0.4, 1e-6);

    float by_diagonal[2] = {0.7f, 0.36f};
    params.act_order = 1;
    CHECK(sq_gptq_quantize(by_diagonal, 1, 2, h, &params, &err) == SQ_OK);
    CHECK_CLOSE(by_diagonal[0], 0.6, 1e-6);
    CHECK_CLOSE(by_diagonal[1], 0.4, 1e-6);
}

/* Groups of 2 on four columns, H coupling only columns 1 and 3 ([[9, 4], [4, 2]] on them,
 * 1 elsewhere on the diagonal), so U has U11 = 1, U13 = -2, U33 = sqrt(0.5), U00 = U22 = 1.
 * Row {0.7, 0.26, 0.12, 0.58}:
 *   group 0 scale 0.7 / 7 = 0.1: column 0 -> 0.7; column 1: 2.6 -> 3, value 0.3, e = -0.04,
 *   so column 3 becomes 0.58 - 0.08 = 0.5;
 *   group 1 scale from the updated {0.12, 0.5}: 0.5 / 7; column 2: 0.12 * 14 = 1.68 -> 2,
 *   value 1/7; column 3: 7 -> 0.5.
 * Scales from the stale {0.12, 0.58} would instead give column 2 code 1 and column 3 code 6.
 * The result must be the same for every block size, including 3, where the group starts
 * inside the first block and column 3 lies in the next one. */
static void test_gptq_groups_use_updated_weights(void) {
    double h[16] = {0};
    h[0] = 1.0;
    h[5] = 9.0;
    h[7] = 4.0;
    h[13] = 4.0;
    h[15] = 2.0;
    h[10] = 1.0;
    const float expected[4] = {0.7f, 0.3f, 1.0f / 7.0f, 0.5f};
    const int8_t expected_codes[4] = {7, 3, 2, 7};
    const int block_sizes[5] = {1, 2, 3, 4, 128};

    for (int b = 0; b < 5; b++) {
        float w[4] = {0.7f, 0.26f, 0.12f, 0.58f};
        int8_t codes[4];
        float scales[2];
        sq_gptq_params params = sq_gptq_params_default(4);
        params.damp_ratio = 0.0;
        params.weight.group_size = 2;
        params.block_size = block_sizes[b];
        sq_error err;
        CHECK(sq_gptq_quantize_codes(w, 1, 4, h, &params, codes, scales, &err) == SQ_OK);
        for (int i = 0; i < 4; i++) {
            CHECK_MSG(fabsf(w[i] - expected[i]) < 1e-6f, "block size %d, column %d: %g, "
                      "expected %g", block_sizes[b], i, (double)w[i], (double)expected[i]);
            CHECK_MSG(codes[i] == expected_codes[i], "block size %d, column %d: code %d, "
                      "expected %d", block_sizes[b], i, codes[i], expected_codes[i]);
        }
        CHECK_CLOSE(scales[0], 0.1, 1e-7);
        CHECK_CLOSE(scales[1], 0.5 / 7.0, 1e-7);
    }
}

/* With H = c * I every U_ij above the diagonal is 0, so no error is moved and GPTQ must return
 * exactly the RTN result with the same quantizer settings. */
static void test_gptq_identity_hessian_equals_rtn(void) {
    enum { rows = 64, cols = 256 };
    static float w[rows * cols];
    static float rtn[rows * cols];
    static float gptq[rows * cols];
    static double h[cols * cols];
    make_gaussian_weights(w, rows * cols, 7);

    const double diagonal_values[2] = {1.0, 3.7};
    const int group_sizes[3] = {0, 32, 0};
    const int clip_search[3] = {0, 1, 1};
    for (int d = 0; d < 2; d++) {
        memset(h, 0, sizeof(h));
        for (int i = 0; i < cols; i++) {
            h[i * cols + i] = diagonal_values[d];
        }
        for (int v = 0; v < 3; v++) {
            for (int act_order = 0; act_order < 2; act_order++) {
                sq_gptq_params params = sq_gptq_params_default(4);
                params.weight.group_size = group_sizes[v];
                params.weight.clip_search = clip_search[v];
                params.act_order = act_order;
                sq_error err;
                memcpy(rtn, w, sizeof(w));
                memcpy(gptq, w, sizeof(w));
                CHECK(sq_quant_weight_rtn_fake(rtn, rows, cols, &params.weight, &err) == SQ_OK);
                CHECK(sq_gptq_quantize(gptq, rows, cols, h, &params, &err) == SQ_OK);
                CHECK_MSG(memcmp(rtn, gptq, sizeof(w)) == 0,
                          "H = %g I, group %d, clip %d, act order %d differs from RTN",
                          diagonal_values[d], group_sizes[v], clip_search[v], act_order);
            }
        }
    }
}

/* GPTQ (float, blocked, Cholesky form) against reference_gptq (double, unblocked, explicit
 * inverse) on a correlated Hessian with two dead columns. A code can flip where a value sits
 * within float rounding of a rounding boundary, and a flip changes the rest of its row, so
 * at most one row of 16 may differ. */
static void test_gptq_matches_reference(void) {
    enum { rows = 16, cols = 48, tokens = 256 };
    static float x[tokens * cols];
    static float w[rows * cols];
    static float actual[rows * cols];
    static float expected[rows * cols];
    double *h = make_correlated_hessian(x, tokens, cols, 17);
    for (int i = 0; i < cols; i++) {
        h[5 * cols + i] = h[i * cols + 5] = 0.0;
        h[30 * cols + i] = h[i * cols + 30] = 0.0;
    }
    make_gaussian_weights(w, rows * cols, 18);

    const struct {
        int group_size;
        int block_size;
        int act_order;
    } cases[5] = {{0, 128, 0}, {0, 7, 1}, {16, 20, 0}, {16, 5, 1}, {8, 128, 1}};
    for (int v = 0; v < 5; v++) {
        sq_gptq_params params = sq_gptq_params_default(4);
        params.weight.group_size = cases[v].group_size;
        params.block_size = cases[v].block_size;
        params.act_order = cases[v].act_order;
        sq_error err;
        memcpy(actual, w, sizeof(w));
        CHECK(sq_gptq_quantize(actual, rows, cols, h, &params, &err) == SQ_OK);
        reference_gptq(expected, w, rows, cols, h, 4, cases[v].group_size, cases[v].act_order,
                       params.damp_ratio);

        int differing_rows = 0;
        for (int r = 0; r < rows; r++) {
            int differs = 0;
            for (int c = 0; c < cols; c++) {
                differs |= fabsf(actual[r * cols + c] - expected[r * cols + c]) > 1e-4f;
            }
            differing_rows += differs;
            CHECK(actual[r * cols + 5] == 0.0f);
            CHECK(actual[r * cols + 30] == 0.0f);
        }
        CHECK_MSG(differing_rows <= 1, "case %d: %d of %d rows differ from the reference", v,
                  differing_rows, rows);
    }
    free(h);
}

/* The codes variant must describe the returned weights exactly, in the RTN layout. */
static void test_gptq_codes_match_weights(void) {
    enum { rows = 8, cols = 64, tokens = 256 };
    static float x[tokens * cols];
    static float w[rows * cols];
    static float plain[rows * cols];
    static int8_t codes[rows * cols];
    static float scales[rows * cols];
    double *h = make_correlated_hessian(x, tokens, cols, 31);
    make_gaussian_weights(w, rows * cols, 32);

    const int group_sizes[2] = {0, 16};
    const int act_orders[2] = {1, 0};
    for (int v = 0; v < 2; v++) {
        sq_gptq_params params = sq_gptq_params_default(4);
        params.weight.group_size = group_sizes[v];
        params.act_order = act_orders[v];
        params.block_size = 24;
        sq_error err;
        float quantized[rows * cols];
        memcpy(quantized, w, sizeof(w));
        memcpy(plain, w, sizeof(w));
        CHECK(sq_gptq_quantize_codes(quantized, rows, cols, h, &params, codes, scales, &err) ==
              SQ_OK);
        CHECK(sq_gptq_quantize(plain, rows, cols, h, &params, &err) == SQ_OK);
        CHECK(memcmp(plain, quantized, sizeof(w)) == 0);

        const int group = group_sizes[v] > 0 ? group_sizes[v] : cols;
        int mismatches = 0;
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                const float scale = scales[r * (cols / group) + c / group];
                mismatches += quantized[r * cols + c] != (float)codes[r * cols + c] * scale;
            }
        }
        CHECK_MSG(mismatches == 0, "group %d: %d weights differ from codes * scales",
                  group_sizes[v], mismatches);
    }
    free(h);
}

/* The acceptance test of GPTQ: a (64, 256) layer with correlated inputs, where GPTQ must cut
 * the output error ||X W^T - X Wq^T||^2 of RTN by a clear margin in every configuration. */
static void test_gptq_beats_rtn_on_correlated_inputs(void) {
    enum { rows = 64, cols = 256, tokens = 1024 };
    static float x[tokens * cols];
    static float w[rows * cols];
    static float rtn[rows * cols];
    static float gptq[rows * cols];
    double *h = make_correlated_hessian(x, tokens, cols, 41);
    make_gaussian_weights(w, rows * cols, 42);

    const struct {
        int group_size;
        int act_order;
        int clip_search;
    } cases[5] = {{0, 0, 0}, {0, 1, 0}, {64, 0, 0}, {64, 1, 0}, {0, 0, 1}};
    for (int v = 0; v < 5; v++) {
        sq_gptq_params params = sq_gptq_params_default(4);
        params.weight.group_size = cases[v].group_size;
        params.weight.clip_search = cases[v].clip_search;
        params.act_order = cases[v].act_order;
        sq_error err;
        memcpy(rtn, w, sizeof(w));
        memcpy(gptq, w, sizeof(w));
        CHECK(sq_quant_weight_rtn_fake(rtn, rows, cols, &params.weight, &err) == SQ_OK);
        CHECK(sq_gptq_quantize(gptq, rows, cols, h, &params, &err) == SQ_OK);
        const double rtn_error = output_error(x, tokens, w, rtn, rows, cols);
        const double gptq_error = output_error(x, tokens, w, gptq, rows, cols);
        fprintf(stderr, "  group %d, act order %d, clip %d: RTN %.4g, GPTQ %.4g (ratio %.3f)\n",
                cases[v].group_size, cases[v].act_order, cases[v].clip_search, rtn_error,
                gptq_error, gptq_error / rtn_error);
        CHECK_MSG(gptq_error < 0.7 * rtn_error, "case %d: GPTQ %g, RTN %g", v, gptq_error,
                  rtn_error);
    }
    free(h);
}

static void test_gptq_16_bits_is_identity(void) {
    const double h[4] = {9.0, 4.0, 4.0, 2.0};
    float w[4] = {0.36f, 0.7f, -1e-9f, 123.0f};
    const float copy[4] = {0.36f, 0.7f, -1e-9f, 123.0f};
    const sq_gptq_params params = sq_gptq_params_default(16);
    sq_error err;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_OK);
    CHECK(memcmp(w, copy, sizeof(w)) == 0);
}

static void test_gptq_rejects_invalid_args(void) {
    const double h[4] = {9.0, 4.0, 4.0, 2.0};
    const float copy[4] = {0.36f, 0.7f, 0.7f, 0.36f};
    float w[4];
    int8_t codes[4];
    float scales[4];
    sq_error err;
    memcpy(w, copy, sizeof(w));

    sq_gptq_params params = sq_gptq_params_default(17);
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "bit width 17") != NULL, "message: %s", err.message);
    params = sq_gptq_params_default(1);
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);

    params = sq_gptq_params_default(4);
    params.weight.group_size = 3;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "group size 3") != NULL, "message: %s", err.message);

    params = sq_gptq_params_default(4);
    params.block_size = 0;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);
    params = sq_gptq_params_default(4);
    params.damp_ratio = -0.01;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);
    params.damp_ratio = NAN;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_INVALID_ARG);

    params = sq_gptq_params_default(4);
    const double asymmetric[4] = {9.0, 4.0, 3.0, 2.0};
    CHECK(sq_gptq_quantize(w, 2, 2, asymmetric, &params, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "not symmetric") != NULL, "message: %s", err.message);
    const double with_nan[4] = {9.0, NAN, NAN, 2.0};
    CHECK(sq_gptq_quantize(w, 2, 2, with_nan, &params, &err) == SQ_ERR_NUMERIC);

    /* [[1, 2], [2, 1]] has eigenvalues 3 and -1, which 1 % dampening cannot fix. */
    const double indefinite[4] = {1.0, 2.0, 2.0, 1.0};
    CHECK(sq_gptq_quantize(w, 2, 2, indefinite, &params, &err) == SQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "not positive definite") != NULL, "message: %s",
              err.message);
    CHECK(memcmp(w, copy, sizeof(w)) == 0);

    w[3] = INFINITY;
    CHECK(sq_gptq_quantize(w, 2, 2, h, &params, &err) == SQ_ERR_NUMERIC);
    memcpy(w, copy, sizeof(w));

    params.weight.group_size = 1;
    params.act_order = 1;
    CHECK(sq_gptq_quantize_codes(w, 2, 2, h, &params, codes, scales, &err) ==
          SQ_ERR_UNSUPPORTED);
    params = sq_gptq_params_default(9);
    CHECK(sq_gptq_quantize_codes(w, 2, 2, h, &params, codes, scales, &err) ==
          SQ_ERR_INVALID_ARG);
    params = sq_gptq_params_default(4);
    CHECK(sq_gptq_quantize_codes(w, 2, 2, h, &params, codes, NULL, &err) == SQ_ERR_INVALID_ARG);
    CHECK(memcmp(w, copy, sizeof(w)) == 0);
}

int main(void) {
    RUN_TEST(test_hessian_add_hand_case);
    RUN_TEST(test_hessian_add_matches_direct_sum);
    RUN_TEST(test_hessian_add_rejects_invalid_input);
    RUN_TEST(test_gptq_hand_case);
    RUN_TEST(test_gptq_act_order_hand_case);
    RUN_TEST(test_gptq_groups_use_updated_weights);
    RUN_TEST(test_gptq_identity_hessian_equals_rtn);
    RUN_TEST(test_gptq_matches_reference);
    RUN_TEST(test_gptq_codes_match_weights);
    RUN_TEST(test_gptq_beats_rtn_on_correlated_inputs);
    RUN_TEST(test_gptq_16_bits_is_identity);
    RUN_TEST(test_gptq_rejects_invalid_args);
    TEST_MAIN_END();
}
