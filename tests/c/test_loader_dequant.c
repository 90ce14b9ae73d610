/* Unit tests of the GGML dequantizers on hand-built blocks. Expected values come from the block
 * layouts in ggml-quants.h written out by hand, and the half-precision decoder is checked on all
 * 65536 inputs against a formula built on ldexp. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "formats/dequant.h"
#include "test_util.h"

/* Independent half-precision decoding: value = (-1)^s * 2^(e-15) * (1 + m/1024), with
 * subnormals m * 2^-24. */
static double reference_half(uint16_t bits) {
    int sign = bits >> 15;
    int exponent = (bits >> 10) & 0x1f;
    int mantissa = bits & 0x3ff;
    double magnitude;
    if (exponent == 0) {
        magnitude = ldexp((double)mantissa, -24);
    } else if (exponent == 31) {
        magnitude = mantissa == 0 ? INFINITY : NAN;
    } else {
        magnitude = ldexp((double)(1024 + mantissa), exponent - 25);
    }
    return sign ? -magnitude : magnitude;
}

static void test_fp16_all_values(void) {
    int mismatches = 0;
    for (uint32_t bits = 0; bits <= 0xffff; bits++) {
        float actual = sq_fp16_to_fp32((uint16_t)bits);
        double expected = reference_half((uint16_t)bits);
        int same = isnan(expected) ? isnan(actual) : ((double)actual == expected && !signbit(actual) == !signbit(expected));
        if (!same) {
            mismatches++;
        }
    }
    CHECK_MSG(mismatches == 0, "%d half-precision values decode wrongly", mismatches);
}

static void test_fp16_known_values(void) {
    CHECK(sq_fp16_to_fp32(0x3c00) == 1.0f);
    CHECK(sq_fp16_to_fp32(0xc000) == -2.0f);
    CHECK(sq_fp16_to_fp32(0x7bff) == 65504.0f);
    CHECK(sq_fp16_to_fp32(0x3555) == 0.333251953125f);
    CHECK(sq_fp16_to_fp32(0x0001) == 5.9604644775390625e-8f); /* smallest subnormal, 2^-24 */
    CHECK(sq_fp16_to_fp32(0x0400) == 6.103515625e-5f);        /* smallest normal, 2^-14 */
    CHECK(isinf(sq_fp16_to_fp32(0xfc00)));
    CHECK(sq_fp16_to_fp32(0xfc00) < 0);
    CHECK(isnan(sq_fp16_to_fp32(0x7e00)));
    CHECK(sq_fp16_to_fp32(0x8000) == 0.0f);
    CHECK(signbit(sq_fp16_to_fp32(0x8000)));
}

static void test_bf16_known_values(void) {
    CHECK(sq_bf16_to_fp32(0x3f80) == 1.0f);
    CHECK(sq_bf16_to_fp32(0xc040) == -3.0f);
    CHECK(sq_bf16_to_fp32(0x3e20) == 0.15625f);
    CHECK(sq_bf16_to_fp32(0x0001) == 9.18354961579912115600575419705e-41f); /* 2^-133 */
    CHECK(isinf(sq_bf16_to_fp32(0x7f80)));
    CHECK(isnan(sq_bf16_to_fp32(0x7fc0)));

    /* Little-endian byte order and an odd (unaligned) start. */
    uint8_t bytes[5] = {0xee, 0x80, 0x3f, 0x40, 0xc0};
    float out[2];
    sq_dequantize_bf16(bytes + 1, out, 2);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -3.0f);
}

static void test_f16_and_f32_rows(void) {
    uint8_t f16[6] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38}; /* 1, -2, 0.5 */
    float out[3];
    sq_dequantize_f16(f16, out, 3);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -2.0f);
    CHECK(out[2] == 0.5f);

    uint8_t f32[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x20, 0xc1}; /* 1, -10 */
    sq_dequantize_f32(f32, out, 2);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -10.0f);
}

static void test_q8_0_block(void) {
    /* Two blocks: d = 0.5 (0x3800) and d = -0.25 (0xb400); q[j] = j - 16 and 127 - j. */
    uint8_t blocks[68];
    blocks[0] = 0x00;
    blocks[1] = 0x38;
    blocks[34] = 0x00;
    blocks[35] = 0xb4;
    for (int j = 0; j < 32; j++) {
        blocks[2 + j] = (uint8_t)(int8_t)(j - 16);
        blocks[36 + j] = (uint8_t)(int8_t)(127 - j);
    }
    blocks[2 + 31] = (uint8_t)(int8_t)-128;
    float out[64];
    sq_dequantize_q8_0(blocks, out, 64);
    CHECK(out[0] == -8.0f);
    CHECK(out[16] == 0.0f);
    CHECK(out[30] == 7.0f);
    CHECK(out[31] == -64.0f);
    CHECK(out[32] == -31.75f);
    CHECK(out[63] == -24.0f);
    for (int j = 0; j < 31; j++) {
        CHECK(out[j] == (float)(j - 16) * 0.5f);
    }
}

static void test_q4_0_block(void) {
    /* d = 2 (0x4000); qs[j] = j | (15 - j) << 4, so value j = (j - 8) * 2 and value j + 16 =
     * (7 - j) * 2. */
    uint8_t block[18] = {0x00, 0x40};
    for (int j = 0; j < 16; j++) {
        block[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    }
    float out[32];
    sq_dequantize_q4_0(block, out, 32);
    CHECK(out[0] == -16.0f);
    CHECK(out[8] == 0.0f);
    CHECK(out[15] == 14.0f);
    CHECK(out[16] == 14.0f);
    CHECK(out[31] == -16.0f);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == (float)((j - 8) * 2));
        CHECK(out[j + 16] == (float)((7 - j) * 2));
    }
}

static void test_q4_1_block(void) {
    /* Two blocks. First: d = 0.25 (0x3400), m = -1.5 (0xbe00), qs[j] = j | (15 - j) << 4, so
     * value j = j / 4 - 1.5 and value j + 16 = (15 - j) / 4 - 1.5. Second: d = 1, m = 10,
     * every nibble 3, so every value is 13. */
    uint8_t blocks[40] = {0x00, 0x34, 0x00, 0xbe};
    for (int j = 0; j < 16; j++) {
        blocks[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    }
    blocks[20] = 0x00;
    blocks[21] = 0x3c;
    blocks[22] = 0x00;
    blocks[23] = 0x49;
    memset(blocks + 24, 0x33, 16);
    float out[64];
    sq_dequantize_q4_1(blocks, out, 64);
    CHECK(out[0] == -1.5f);
    CHECK(out[15] == 2.25f);
    CHECK(out[16] == 2.25f);
    CHECK(out[31] == -1.5f);
    for (int j = 0; j < 16; j++) {
        CHECK(out[j] == (float)j * 0.25f - 1.5f);
        CHECK(out[j + 16] == (float)(15 - j) * 0.25f - 1.5f);
    }
    for (int j = 32; j < 64; j++) {
        CHECK(out[j] == 13.0f);
    }
}

static void test_dispatch_checks_sizes(void) {
    uint8_t block[20] = {0x00, 0x3c, 0x00, 0x00};
    float out[32];
    sq_error err;

    sq_error_clear(&err);
    CHECK(sq_dequantize(SQ_GGML_TYPE_Q4_1, block, 20, out, 32, &err) == SQ_OK);
    CHECK(out[0] == 0.0f);

    sq_error_clear(&err);
    CHECK(sq_dequantize(SQ_GGML_TYPE_Q4_1, block, 19, out, 32, &err) == SQ_ERR_FORMAT);
    CHECK(err.message[0] != '\0');

    sq_error_clear(&err);
    CHECK(sq_dequantize(SQ_GGML_TYPE_Q4_1, block, 20, out, 31, &err) == SQ_ERR_FORMAT);

    sq_error_clear(&err);
    CHECK(sq_dequantize(SQ_GGML_TYPE_Q4_K, block, 20, out, 32, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "12") != NULL);

    sq_error_clear(&err);
    CHECK(sq_dequantize(999, block, 20, out, 32, &err) == SQ_ERR_UNSUPPORTED);
}

static void test_type_layouts(void) {
    uint32_t values = 0;
    uint32_t bytes = 0;
    CHECK(sq_ggml_type_layout(SQ_GGML_TYPE_Q4_1, &values, &bytes));
    CHECK(values == 32);
    CHECK(bytes == 20);
    CHECK(sq_ggml_type_layout(SQ_GGML_TYPE_Q4_0, &values, &bytes));
    CHECK(values == 32);
    CHECK(bytes == 18);
    CHECK(sq_ggml_type_layout(SQ_GGML_TYPE_Q8_0, &values, &bytes));
    CHECK(values == 32);
    CHECK(bytes == 34);
    CHECK(sq_ggml_type_layout(SQ_GGML_TYPE_Q6_K, &values, &bytes));
    CHECK(values == 256);
    CHECK(bytes == 210);
    CHECK(!sq_ggml_type_layout(4, &values, &bytes)); /* removed Q4_2 */
    CHECK(strcmp(sq_ggml_type_name(SQ_GGML_TYPE_BF16), "BF16") == 0);
    CHECK(sq_ggml_type_is_supported(SQ_GGML_TYPE_Q4_1));
    CHECK(!sq_ggml_type_is_supported(SQ_GGML_TYPE_Q5_0));
}

int main(void) {
    RUN_TEST(test_fp16_all_values);
    RUN_TEST(test_fp16_known_values);
    RUN_TEST(test_bf16_known_values);
    RUN_TEST(test_f16_and_f32_rows);
    RUN_TEST(test_q8_0_block);
    RUN_TEST(test_q4_0_block);
    RUN_TEST(test_q4_1_block);
    RUN_TEST(test_dispatch_checks_sizes);
    RUN_TEST(test_type_layouts);
    TEST_MAIN_END();
}
