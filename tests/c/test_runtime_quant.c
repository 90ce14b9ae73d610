/* Tests for the integer runtime's quantizers and products against independent references.
 * Activation codes and KV-cache entries must dequantize to exactly the values of the fake-quant
 * evaluator's quantizer (quant/quant_act.c). The integer product with its scale and zero-point
 * epilogue must match a double-precision sum over the dequantized operands, with identical bits
 * for every kernel variant. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q4_layout.h"
#include "model/model.h"
#include "quant/quant_act.h"
#include "runtime/rt_kv_cache.h"
#include "runtime/rt_model.h"
#include "runtime/rt_qmatmul.h"
#include "runtime/rt_quantize.h"
#include "test_util.h"

static uint64_t rng_state = 0x13198A2E03707344ull;

static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Fills x with values of mixed scale, an outlier per row and a few exact zeros. */
static void fill_activations(float *x, int tokens, int cols) {
    for (int t = 0; t < tokens; t++) {
        for (int i = 0; i < cols; i++) {
            x[t * cols + i] = (float)((uniform() - 0.3) * (1.0 + 4.0 * uniform()));
        }
        x[t * cols + (t * 7) % cols] = 25.0f;
        x[t * cols + (t * 3 + 1) % cols] = 0.0f;
    }
}

static int code_at(const sq_rt_act *act, int bits, int t, int i) {
    const uint8_t *row = act->codes + (size_t)t * act->stride;
    return bits > 4 ? row[i] : sq_q4_get_nibble(row, i);
}

static void test_activation_codes_match_fake_quant(void) {
    enum { TOKENS = 3, COLS = 96 };
    static const struct { int bits, symmetric, group; float clip; } cases[] = {
        {8, 0, COLS, 1.0f}, {8, 0, 32, 1.0f}, {4, 0, COLS, 1.0f}, {4, 0, 16, 0.9f},
        {6, 0, COLS, 0.95f}, {3, 0, 48, 1.0f}, {8, 1, COLS, 1.0f}, {4, 1, 32, 1.0f},
    };
    float x[TOKENS * COLS], expected[TOKENS * COLS];
    uint8_t codes[TOKENS * COLS];
    float scales[TOKENS * COLS];
    int32_t zeros[TOKENS * COLS], sums[TOKENS * COLS];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        fill_activations(x, TOKENS, COLS);
        memcpy(expected, x, sizeof(x));
        sq_act_quant_params fake = {cases[k].bits, cases[k].symmetric, cases[k].clip,
                                    cases[k].group == COLS ? 0 : cases[k].group};
        CHECK(sq_quant_act_fake(expected, TOKENS, COLS, &fake, NULL) == SQ_OK);

        sq_rt_quant_params params = {cases[k].bits, cases[k].symmetric, cases[k].clip, cases[k].group};
        sq_rt_act act = {codes, cases[k].bits > 4 ? COLS : sq_q4_row_bytes(COLS), scales, zeros, sums, 0};
        int32_t sum_group = 16;
        sq_rt_quantize_rows(x, TOKENS, COLS, &params, sum_group, &act);
        int mismatches = 0, wrong_sums = 0;
        for (int t = 0; t < TOKENS; t++) {
            for (int i = 0; i < COLS; i++) {
                int g = i / cases[k].group;
                int code = code_at(&act, cases[k].bits, t, i);
                float value = (float)(code - zeros[t * act.groups_per_token + g]) * scales[t * act.groups_per_token + g];
                /* Equal values; the symmetric fake quantizer may give -0 where the codes give +0. */
                mismatches += value != expected[t * COLS + i];
                mismatches += code < 0 || code >= (1 << cases[k].bits);
            }
            for (int s = 0; s < COLS / sum_group; s++) {
                int32_t sum = 0;
                for (int i = s * sum_group; i < (s + 1) * sum_group; i++) {
                    sum += code_at(&act, cases[k].bits, t, i);
                }
                wrong_sums += sum != sums[t * (COLS / sum_group) + s];
            }
        }
        CHECK_MSG(mismatches == 0, "case %zu (%d bits, group %d): %d values differ from the fake quantizer", k,
                  cases[k].bits, cases[k].group, mismatches);
        CHECK(wrong_sums == 0);
    }
}

static void test_kv_cache_matches_fake_quant(void) {
    sq_config config = {0};
    config.n_layers = 2;
    config.n_kv_heads = 3;
    config.head_dim = 16;
    static const int bits_list[] = {8, 4, 3, 16};
    enum { KV_DIM = 48, POSITIONS = 5 };
    for (size_t k = 0; k < sizeof(bits_list) / sizeof(bits_list[0]); k++) {
        int bits = bits_list[k];
        sq_rt_kv_cache cache;
        CHECK(sq_rt_kv_cache_init(&cache, &config, bits, 1.0f, POSITIONS, NULL) == SQ_OK);
        float keys[POSITIONS][KV_DIM], values[POSITIONS][KV_DIM];
        fill_activations(&keys[0][0], POSITIONS, KV_DIM);
        fill_activations(&values[0][0], POSITIONS, KV_DIM);
        for (int p = 0; p < POSITIONS; p++) {
            sq_rt_kv_store(&cache, 1, p, keys[p], values[p]);
        }
        sq_act_quant_params fake = sq_kv_quant_params(bits, 1.0f, 16);
        CHECK(sq_quant_act_fake(&keys[0][0], POSITIONS, KV_DIM, &fake, NULL) == SQ_OK);
        CHECK(sq_quant_act_fake(&values[0][0], POSITIONS, KV_DIM, &fake, NULL) == SQ_OK);
        int mismatches = 0;
        for (int head = 0; head < 3; head++) {
            float loaded_keys[POSITIONS * 16], loaded_values[POSITIONS * 16];
            sq_rt_kv_load_keys(&cache, 1, 0, POSITIONS, head, loaded_keys);
            sq_rt_kv_load_values(&cache, 1, 0, POSITIONS, head, loaded_values);
            for (int p = 0; p < POSITIONS; p++) {
                mismatches += memcmp(&loaded_keys[p * 16], &keys[p][head * 16], 16 * sizeof(float)) != 0;
                mismatches += memcmp(&loaded_values[p * 16], &values[p][head * 16], 16 * sizeof(float)) != 0;
            }
        }
        CHECK_MSG(mismatches == 0, "%d-bit cache: %d heads differ from the fake quantizer", bits, mismatches);
        sq_rt_kv_cache_free(&cache);
    }
}

/* Packs signed codes (rows, cols) in the q4 layout of kernels/q4_layout.h. */
static void pack(const int *codes, int rows, int cols, uint8_t *out) {
    size_t stride = sq_q4_row_bytes(cols);
    memset(out, 0x88, stride * (size_t)rows);
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) {
            sq_q4_set_nibble(out + (size_t)r * stride, i, codes[r * cols + i] + 8);
        }
    }
}

/* One product with weight groups of w_group columns and activation groups of a_group. */
static void check_products_match_double_reference(int w_group, int a_group) {
    enum { ROWS = 37, COLS = 128, TOKENS = 5 };
    int codes[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++) {
        codes[i] = -8 + (int)(uniform() * 16.0);
    }
    uint8_t packed[ROWS * 64];
    pack(codes, ROWS, COLS, packed);
    float weight_scales[ROWS * COLS];
    for (int i = 0; i < ROWS * (COLS / w_group); i++) {
        weight_scales[i] = (float)(0.01 + 0.1 * uniform());
    }
    sq_spq_qmatrix weights = {packed, weight_scales, ROWS, COLS, w_group, 64};
    sq_rt_matrix matrix = {0};
    size_t matrix_bytes = 0;
    sq_error err = {0};
    CHECK(sq_rt_matrix_prepare(&weights, a_group, &matrix, &matrix_bytes, &err) == SQ_OK);
    CHECK(matrix.kernel_group == (w_group < a_group ? w_group : a_group));

    for (int bits = 4; bits <= 8; bits += 4) {
        float x[TOKENS * COLS];
        fill_activations(x, TOKENS, COLS);
        uint8_t act_codes[TOKENS * COLS];
        float act_scales[TOKENS * COLS];
        int32_t zeros[TOKENS * COLS], sums[TOKENS * COLS];
        sq_rt_act act = {act_codes, COLS, act_scales, zeros, sums, 0};
        sq_rt_quant_params params = {bits, 0, 1.0f, a_group};
        sq_rt_quantize_rows(x, TOKENS, COLS, &params, a_group, &act);

        /* Reference: Σ (code·s_w)·((a - zero)·s_a) in double over the unpacked codes. */
        double expected[TOKENS * ROWS];
        for (int t = 0; t < TOKENS; t++) {
            for (int r = 0; r < ROWS; r++) {
                double sum = 0.0;
                for (int i = 0; i < COLS; i++) {
                    int g = i / a_group;
                    int a = code_at(&act, bits, t, i);
                    double w = (double)codes[r * COLS + i] * weight_scales[r * (COLS / w_group) + i / w_group];
                    sum += w * (double)(a - zeros[t * (COLS / a_group) + g]) * act_scales[t * (COLS / a_group) + g];
                }
                expected[t * ROWS + r] = sum;
            }
        }

        float first[TOKENS * ROWS];
        int32_t *dots = malloc(sq_rt_qmatmul_scratch_count(NULL, TOKENS, matrix.n_kernel_groups) * sizeof(int32_t));
        CHECK(dots != NULL);
        for (int isa = 0; isa < SQ_KERNEL_ISA_COUNT; isa++) {
            const sq_qdot_kernels *kernels = sq_qdot_kernels_for((sq_kernel_isa)isa);
            if (kernels == NULL) {
                continue;
            }
            float y[TOKENS * ROWS];
            sq_rt_product product = {&matrix, y};
            sq_rt_qmatmul(NULL, kernels, &act, bits, TOKENS, &product, 1, dots);
            double worst = 0.0;
            for (int i = 0; i < TOKENS * ROWS; i++) {
                worst = fmax(worst, fabs((double)y[i] - expected[i]) / fmax(1.0, fabs(expected[i])));
            }
            CHECK_MSG(worst < 1e-5, "%s, %d-bit activations: relative error %g", sq_kernel_isa_name(kernels->isa), bits,
                      worst);
            if (isa == SQ_KERNEL_ISA_SCALAR) {
                memcpy(first, y, sizeof(y));
            } else {
                CHECK(memcmp(first, y, sizeof(y)) == 0);
            }
        }
        free(dots);
    }
    sq_rt_matrix_free(&matrix);
}

static void test_products_match_double_reference(void) {
    /* o_proj-like: every kernel group pairs one weight scale with one activation scale (one per
     * head). */
    check_products_match_double_reference(32, 16);
    /* gate/up-like: one activation group per token spans eight weight groups of 16. */
    check_products_match_double_reference(16, 128);
    /* two weight groups per activation group, fewer than the four partial sums. */
    check_products_match_double_reference(32, 64);
}

int main(void) {
    RUN_TEST(test_activation_codes_match_fake_quant);
    RUN_TEST(test_kv_cache_matches_fake_quant);
    RUN_TEST(test_products_match_double_reference);
    TEST_MAIN_END();
}
