/* Tests for the integer kernels. Every variant this build and CPU can run must write exactly the
 * int32 sums of a naive loop over the unpacked codes, for odd and aligned sizes, several group
 * sizes, row and token counts around the kernels' tiles of four, with and without the optional
 * group sums, and for the extreme codes that stress the int16 accumulators. The q4
 * layout is checked against hand-packed bytes, and the int8 × fp32 product against its scalar
 * reference bit for bit.
 *
 * The same file runs natively (CTest) and as a WASI module, where it covers the SIMD128 and
 * relaxed-SIMD variants; test_kernels_wasm builds and runs it under Node.js. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul_i8.h"
#include "kernels/qdot.h"
#include "test_util.h"

/* xorshift64*: a self-contained generator, so the test needs nothing else from the library. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t next_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static int random_in(int lo, int hi) {
    return lo + (int)(next_u32() % (uint32_t)(hi - lo + 1));
}

/* Packs signed weight codes (rows, cols) by the documented rule: element i of a row goes to
 * byte 16·(i / 32) + i % 16, low nibble when i % 32 < 16, as code + 8. Padding nibbles are 8. */
static uint8_t *pack_weights(const int *codes, int rows, int cols, size_t stride) {
    uint8_t *packed = malloc((size_t)rows * stride + 1);
    memset(packed, 0x88, (size_t)rows * stride + 1);
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) {
            uint8_t *byte = packed + (size_t)r * stride + (size_t)(i / 32) * 16 + (size_t)(i % 16);
            int nibble = codes[r * cols + i] + 8;
            if (i % 32 < 16) {
                *byte = (uint8_t)((*byte & 0xF0) | nibble);
            } else {
                *byte = (uint8_t)((*byte & 0x0F) | (nibble << 4));
            }
        }
    }
    return packed;
}

/* Packs unsigned activation codes (0..15) by the same rule, without the offset. */
static uint8_t *pack_u4(const int *codes, int tokens, int cols, size_t stride) {
    uint8_t *packed = calloc((size_t)tokens * stride + 1, 1);
    for (int t = 0; t < tokens; t++) {
        for (int i = 0; i < cols; i++) {
            uint8_t *byte = packed + (size_t)t * stride + (size_t)(i / 32) * 16 + (size_t)(i % 16);
            int nibble = codes[t * cols + i];
            *byte = (uint8_t)(i % 32 < 16 ? (*byte & 0xF0) | nibble : (*byte & 0x0F) | (nibble << 4));
        }
    }
    return packed;
}

typedef enum fill_kind { FILL_RANDOM, FILL_MIN_WEIGHTS_MAX_ACTS, FILL_MAX_WEIGHTS_MAX_ACTS } fill_kind;

typedef struct case_spec {
    int batch;
    int rows;
    int cols;
    int group;
    fill_kind fill;
} case_spec;

/* Runs one case on every available variant for both activation widths and compares each
 * output with the naive sum. Returns the number of mismatching outputs. */
static int run_case(const case_spec *spec) {
    int batch = spec->batch, rows = spec->rows, cols = spec->cols, group = spec->group;
    int n_groups = cols / group;
    size_t w_stride = sq_q4_row_bytes(cols) + 16; /* a wider stride than needed, as a caller may use */
    size_t a8_stride = (size_t)cols + 3;
    size_t a4_stride = sq_q4_row_bytes(cols);

    int *w = malloc(sizeof(int) * (size_t)rows * cols);
    int *a8 = malloc(sizeof(int) * (size_t)batch * cols);
    int *a4 = malloc(sizeof(int) * (size_t)batch * cols);
    for (int i = 0; i < rows * cols; i++) {
        w[i] = spec->fill == FILL_RANDOM ? random_in(-8, 7) : spec->fill == FILL_MIN_WEIGHTS_MAX_ACTS ? -8 : 7;
    }
    for (int i = 0; i < batch * cols; i++) {
        a8[i] = spec->fill == FILL_RANDOM ? random_in(0, 255) : 255;
        a4[i] = spec->fill == FILL_RANDOM ? random_in(0, 15) : 15;
    }
    uint8_t *w_packed = pack_weights(w, rows, cols, w_stride);
    uint8_t *a8_bytes = malloc((size_t)batch * a8_stride);
    for (int t = 0; t < batch; t++) {
        for (int i = 0; i < cols; i++) {
            a8_bytes[(size_t)t * a8_stride + (size_t)i] = (uint8_t)a8[t * cols + i];
        }
    }
    uint8_t *a4_packed = pack_u4(a4, batch, cols, a4_stride);

    /* Expected sums and the group sums the relaxed kernel reads. */
    int64_t *expected8 = calloc((size_t)batch * rows * n_groups, sizeof(int64_t));
    int64_t *expected4 = calloc((size_t)batch * rows * n_groups, sizeof(int64_t));
    int32_t *weight_sums = calloc((size_t)rows * n_groups, sizeof(int32_t));
    int32_t *act_sums = calloc((size_t)batch * n_groups, sizeof(int32_t));
    int32_t *act_sums4 = calloc((size_t)batch * n_groups, sizeof(int32_t));
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) {
            weight_sums[r * n_groups + i / group] += w[r * cols + i];
        }
    }
    for (int t = 0; t < batch; t++) {
        for (int i = 0; i < cols; i++) {
            act_sums[t * n_groups + i / group] += a8[t * cols + i];
            act_sums4[t * n_groups + i / group] += a4[t * cols + i];
        }
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                size_t index = ((size_t)t * rows + (size_t)r) * n_groups + (size_t)(i / group);
                expected8[index] += (int64_t)w[r * cols + i] * a8[t * cols + i];
                expected4[index] += (int64_t)w[r * cols + i] * a4[t * cols + i];
            }
        }
    }

    size_t out_stride = (size_t)rows * n_groups + 5;
    int32_t *out = malloc(sizeof(int32_t) * out_stride * (size_t)batch);
    int mismatches = 0;
    for (int isa = 0; isa < SQ_KERNEL_ISA_COUNT; isa++) {
        const sq_qdot_kernels *kernels = sq_qdot_kernels_for((sq_kernel_isa)isa);
        if (kernels == NULL) {
            continue;
        }
        /* Each width runs with the group sums and without them (NULL), which callers may pass. */
        for (int run = 0; run < 4; run++) {
            int width = run % 2;
            int with_sums = run < 2;
            const int32_t *width_act_sums = width == 0 ? act_sums : act_sums4;
            sq_qdot_args args = {out, out_stride, w_packed, w_stride, width == 0 ? a8_bytes : a4_packed,
                                 width == 0 ? a8_stride : a4_stride, with_sums ? weight_sums : NULL,
                                 with_sums ? width_act_sums : NULL, batch, rows, cols, group};
            memset(out, 0x5A, sizeof(int32_t) * out_stride * (size_t)batch);
            (width == 0 ? kernels->q4_u8 : kernels->q4_u4)(&args);
            const int64_t *expected = width == 0 ? expected8 : expected4;
            for (int t = 0; t < batch; t++) {
                for (int j = 0; j < rows * n_groups; j++) {
                    int64_t want = expected[(size_t)t * rows * n_groups + (size_t)j];
                    int32_t got = out[(size_t)t * out_stride + (size_t)j];
                    if (got != want) {
                        if (mismatches < 5) {
                            fprintf(stderr,
                                    "%s %s%s: batch %d rows %d cols %d group %d: token %d output %d is %d, expected %lld\n",
                                    sq_kernel_isa_name(kernels->isa), width == 0 ? "q4_u8" : "q4_u4",
                                    with_sums ? "" : " without group sums", batch, rows, cols, group, t, j, got,
                                    (long long)want);
                        }
                        mismatches++;
                    }
                }
            }
        }
    }
    free(w);
    free(a8);
    free(a4);
    free(w_packed);
    free(a8_bytes);
    free(a4_packed);
    free(expected8);
    free(expected4);
    free(weight_sums);
    free(act_sums);
    free(act_sums4);
    free(out);
    return mismatches;
}

static void test_q4_layout_hand_packed(void) {
    /* Elements 0..31 with codes -8..7, -8..7: element i has nibble i % 16. Byte k contains element k
     * (low) and element 16 + k (high), so every byte is k | k << 4. */
    uint8_t row[16];
    for (int k = 0; k < 16; k++) {
        row[k] = (uint8_t)(k | (k << 4));
    }
    for (int i = 0; i < 32; i++) {
        CHECK(sq_q4_get_weight(row, i) == (i % 16) - 8);
    }
    CHECK(sq_q4_row_bytes(1) == 16);
    CHECK(sq_q4_row_bytes(32) == 16);
    CHECK(sq_q4_row_bytes(33) == 32);
    CHECK(sq_q4_byte_index(33) == 17);
    CHECK(sq_q4_is_high(48) == 1);

    uint8_t packed[32] = {0};
    sq_q4_set_nibble(packed, 40, 0xB);
    sq_q4_set_nibble(packed, 56, 0x3);
    CHECK(packed[16 + 8] == 0x3B);
}

static void test_scalar_hand_example(void) {
    /* cols 3: w = (7, -8, 1), a = (2, 3, 255): 14 - 24 + 255 = 245. */
    int w[3] = {7, -8, 1};
    uint8_t *packed = pack_weights(w, 1, 3, 16);
    uint8_t acts[3] = {2, 3, 255};
    int32_t out = 0;
    sq_qdot_args args = {&out, 1, packed, 16, acts, 3, NULL, NULL, 1, 1, 3, 3};
    sq_qdot_q4_u8_scalar(&args);
    CHECK(out == 245);
    free(packed);
}

static void test_variants_match_naive_sums(void) {
    static const int cols_list[] = {1, 7, 16, 31, 32, 33, 64, 95, 172, 576};
    static const int batch_list[] = {1, 2, 5};
    int failures = 0;
    for (size_t ci = 0; ci < sizeof(cols_list) / sizeof(cols_list[0]); ci++) {
        int cols = cols_list[ci];
        for (size_t bi = 0; bi < sizeof(batch_list) / sizeof(batch_list[0]); bi++) {
            /* One group per row, then every listed group size that divides cols. */
            static const int groups[] = {0, 4, 8, 32, 43, 64, 96};
            for (size_t gi = 0; gi < sizeof(groups) / sizeof(groups[0]); gi++) {
                int group = groups[gi] == 0 ? cols : groups[gi];
                if (group > cols || cols % group != 0) {
                    continue;
                }
                case_spec spec = {batch_list[bi], 1 + (int)(ci % 3) * 8, cols, group, FILL_RANDOM};
                failures += run_case(&spec);
            }
        }
    }
    CHECK_MSG(failures == 0, "%d outputs differ from the naive sums", failures);
}

static void test_row_and_token_tiles(void) {
    /* The SIMD kernels take four weight rows or four tokens at a time: rows and batches around
     * multiples of 4, with one-block groups (32), longer whole-block groups and one group per row. */
    static const int rows_list[] = {3, 4, 8, 13};
    static const int batch_list[] = {1, 3, 4, 16, 18};
    static const int group_list[] = {32, 64, 0};
    int failures = 0;
    for (size_t ri = 0; ri < sizeof(rows_list) / sizeof(rows_list[0]); ri++) {
        for (size_t bi = 0; bi < sizeof(batch_list) / sizeof(batch_list[0]); bi++) {
            for (size_t gi = 0; gi < sizeof(group_list) / sizeof(group_list[0]); gi++) {
                int cols = 192;
                case_spec spec = {batch_list[bi], rows_list[ri], cols, group_list[gi] == 0 ? cols : group_list[gi],
                                  FILL_RANDOM};
                failures += run_case(&spec);
            }
        }
    }
    CHECK_MSG(failures == 0, "%d outputs differ from the naive sums", failures);
}

static void test_extreme_codes_long_rows(void) {
    /* 4160 columns = 130 blocks: crosses the int16 flush points of every variant. */
    case_spec cases[] = {
        {1, 8, 4160, 4160, FILL_MIN_WEIGHTS_MAX_ACTS},
        {6, 4, 4160, 4160, FILL_MAX_WEIGHTS_MAX_ACTS},
        {5, 9, 4160, 32, FILL_MIN_WEIGHTS_MAX_ACTS},
        {1, 3, 4160, 4160, FILL_MIN_WEIGHTS_MAX_ACTS},
        {1, 6, 4160, 4160, FILL_MIN_WEIGHTS_MAX_ACTS},
        {2, 8, 4160, 1040, FILL_MAX_WEIGHTS_MAX_ACTS},
        {5, 2, 4160, 4160, FILL_MAX_WEIGHTS_MAX_ACTS},
        {4, 2, 4160, 320, FILL_MIN_WEIGHTS_MAX_ACTS},
        {3, 4, 8192, 8192, FILL_RANDOM},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(run_case(&cases[i]) == 0);
    }
}

static void test_i8_i16_matches_scalar(void) {
    static const int in_list[] = {1, 7, 16, 17, 64, 172, 577, 2100};
    for (size_t k = 0; k < sizeof(in_list) / sizeof(in_list[0]); k++) {
        int in = in_list[k];
        int out = 13;
        int8_t *codes = malloc((size_t)out * in);
        float *scales = malloc(sizeof(float) * out);
        float *x = malloc(sizeof(float) * (size_t)5 * in);
        int16_t *x_codes = malloc(sizeof(int16_t) * (size_t)5 * in);
        float x_scales[5];
        float *y = malloc(sizeof(float) * (size_t)5 * out);
        for (int i = 0; i < out * in; i++) {
            codes[i] = (int8_t)random_in(-128, 127);
        }
        /* Row 2 contains the extreme codes, so the int32 lanes of the SIMD kernels come closest to
         * overflowing against the extreme activation codes of token 0 (in 2100 spans three
         * flushes of the lane sums). */
        for (int c = 0; c < in; c++) {
            codes[2 * in + c] = (int8_t)(c % 3 == 0 ? 127 : -128);
        }
        for (int r = 0; r < out; r++) {
            scales[r] = (float)random_in(1, 1000) * 1e-4f;
        }
        for (int i = 0; i < 5 * in; i++) {
            x[i] = (float)random_in(-100000, 100000) * 1.234567e-5f;
        }
        for (int c = 0; c < in; c++) {
            x[c] = c % 3 == 0 ? 2.0f : -2.0f;
        }
        sq_quantize_rows_i16(x_codes, x_scales, x, 5, in);
        CHECK(x_codes[0] == SQ_I16_CODE_MAX);
        CHECK(x_scales[0] == 2.0f / (float)SQ_I16_CODE_MAX);

        /* Every variant against the scalar reference, for every row and token. */
        for (int isa = 0; isa < SQ_KERNEL_ISA_COUNT; isa++) {
            const sq_qdot_kernels *kernels = sq_qdot_kernels_for((sq_kernel_isa)isa);
            if (kernels == NULL) {
                continue;
            }
            int mismatches = 0;
            for (int t = 0; t < 5; t++) {
                const int16_t *xt = x_codes + (size_t)t * in;
                for (int r = 0; r < out; r++) {
                    const int8_t *row = codes + (size_t)in * r;
                    mismatches += kernels->i8_i16(row, xt, in) != sq_dot_i8_i16_scalar(row, xt, in);
                }
            }
            CHECK_MSG(mismatches == 0, "%s: in %d: %d sums differ from the scalar reference",
                      sq_kernel_isa_name(kernels->isa), in, mismatches);
        }

        /* The batched product gives every token what it gets alone. */
        sq_matmul_i8_i16_parallel(NULL, y, x_codes, x_scales, codes, scales, 5, in, out);
        int mismatches = 0;
        for (int t = 0; t < 5; t++) {
            for (int r = 0; r < out; r++) {
                float single;
                sq_matmul_i8_i16_rows(&single, x_codes + (size_t)t * in, &x_scales[t], codes + (size_t)r * in,
                                      &scales[r], 1, in, 1, 0, 1);
                float want = scales[r] * (x_scales[t] *
                                          (float)sq_dot_i8_i16_scalar(codes + (size_t)r * in, x_codes + (size_t)t * in, in));
                mismatches += memcmp(&want, &y[t * out + r], sizeof(float)) != 0;
                mismatches += memcmp(&single, &y[t * out + r], sizeof(float)) != 0;
            }
        }
        CHECK_MSG(mismatches == 0, "in %d: %d batched outputs differ", in, mismatches);

        /* Against the exact product with fp32 inputs, the error stays within half an int16 step per
         * unit of weight code, plus float rounding. */
        double worst = 0.0;
        for (int t = 0; t < 5; t++) {
            for (int r = 0; r < out; r++) {
                double exact = 0.0, size = 0.0;
                for (int c = 0; c < in; c++) {
                    exact += (double)codes[r * in + c] * (double)x[t * in + c];
                    size += fabs((double)codes[r * in + c]);
                }
                double error = fabs((double)y[t * out + r] / scales[r] - exact) / (size * x_scales[t] + 1e-30);
                worst = error > worst ? error : worst;
            }
        }
        CHECK_MSG(worst <= 0.52, "in %d: the int16 product is off by %g codes per weight", in, worst);
        free(codes);
        free(scales);
        free(x);
        free(x_codes);
        free(y);
    }

    /* Hand-checkable cases: all codes 1 against x = 0.5, zeros, and NaN. */
    int8_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    float halves[9] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    int16_t q[9];
    float q_scale, unit_scale = 1.0f, y1;
    sq_quantize_rows_i16(q, &q_scale, halves, 1, 9);
    sq_matmul_i8_i16_rows(&y1, q, &q_scale, ones, &unit_scale, 1, 9, 1, 0, 1);
    CHECK(q[4] == SQ_I16_CODE_MAX);
    CHECK(sq_dot_i8_i16_scalar(ones, q, 9) == 9 * SQ_I16_CODE_MAX);
    CHECK(y1 == 4.5f);
    float zeros[9] = {0};
    sq_quantize_rows_i16(q, &q_scale, zeros, 1, 9);
    CHECK(q_scale == 1.0f);
    CHECK(q[0] == 0);
    halves[3] = NAN;
    sq_quantize_rows_i16(q, &q_scale, halves, 1, 9);
    CHECK(isnan(q_scale));
    CHECK(q[0] == 0);
    CHECK(q[3] == 0);
}

static void test_reports_variants(void) {
    int available = 0;
    for (int isa = 0; isa < SQ_KERNEL_ISA_COUNT; isa++) {
        if (sq_qdot_kernels_for((sq_kernel_isa)isa) != NULL) {
            fprintf(stderr, "kernel variant available: %s\n", sq_kernel_isa_name((sq_kernel_isa)isa));
            available++;
        }
    }
    CHECK(available >= 1);
    CHECK(sq_qdot_select() != NULL);
    CHECK(sq_qdot_kernels_for(SQ_KERNEL_ISA_SCALAR) != NULL);
}

int main(void) {
    RUN_TEST(test_q4_layout_hand_packed);
    RUN_TEST(test_scalar_hand_example);
    RUN_TEST(test_variants_match_naive_sums);
    RUN_TEST(test_row_and_token_tiles);
    RUN_TEST(test_extreme_codes_long_rows);
    RUN_TEST(test_i8_i16_matches_scalar);
    RUN_TEST(test_reports_variants);
    TEST_MAIN_END();
}
