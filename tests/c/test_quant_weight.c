/* Tests of the RTN weight quantizer (src/quant/quant_weight.h): hand-computed codes and scales,
 * groups, the clipping search, 8-bit per-channel codes, argument errors, and error trends on
 * random matrices. Expected values are worked out by hand in the comments. */
#include <stdint.h>
#include <string.h>

#include "quant/quant_weight.h"
#include "quant/rounding.h"
#include "test_util.h"

/* SplitMix64, so the test data does not depend on the engine's own generator. */
static uint64_t test_random_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Returns a uniform value in [-1, 1). */
static float test_random_signed(uint64_t *state) {
    return (float)((double)(test_random_next(state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* Returns sum |a - b|^2.4, the clipping-search metric, computed independently of the library. */
static double clip_metric(const float *a, const float *b, int count) {
    double total = 0.0;
    for (int i = 0; i < count; i++) {
        total += pow(fabs((double)a[i] - (double)b[i]), 2.4);
    }
    return total;
}

static void test_round_half_even(void) {
    CHECK(sq_round_half_even(0.5f) == 0.0f);
    CHECK(sq_round_half_even(1.5f) == 2.0f);
    CHECK(sq_round_half_even(2.5f) == 2.0f);
    CHECK(sq_round_half_even(-0.5f) == 0.0f);
    CHECK(sq_round_half_even(-1.5f) == -2.0f);
    CHECK(sq_round_half_even(-2.5f) == -2.0f);
    CHECK(sq_round_half_even(3.49f) == 3.0f);
    CHECK(sq_round_half_even(-3.51f) == -4.0f);
}

/* 4 bits: qmax 7, qmin -8. Row 0 has max |w| = 3.5, so scale = 3.5 / 7 = 0.5 and
 * w / scale = {7, 2.5, -2.5, 1.5, -7, 0.4, -0.6, 5.2}; half to even gives
 * codes {7, 2, -2, 2, -7, 0, -1, 5} and values {3.5, 1, -1, 1, -3.5, 0, -0.5, 2.5}.
 * Row 1 is all zeros: scale 0, codes 0. */
static void test_rtn_4bit_hand_case(void) {
    const float w[16] = {3.5f, 1.25f, -1.25f, 0.75f, -3.5f, 0.2f, -0.3f, 2.6f,
                         0,    0,     0,      0,     0,     0,    0,     0};
    const int8_t expected_codes[16] = {7, 2, -2, 2, -7, 0, -1, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    const float expected_values[8] = {3.5f, 1.0f, -1.0f, 1.0f, -3.5f, 0.0f, -0.5f, 2.5f};
    const sq_weight_quant_params params = {4, 0, 0};
    int8_t codes[16];
    float scales[2];
    sq_error err;

    CHECK(sq_quant_weight_rtn(w, 2, 8, &params, codes, scales, &err) == SQ_OK);
    CHECK(memcmp(codes, expected_codes, sizeof(codes)) == 0);
    CHECK(scales[0] == 0.5f);
    CHECK(scales[1] == 0.0f);

    float fake[16];
    memcpy(fake, w, sizeof(fake));
    CHECK(sq_quant_weight_rtn_fake(fake, 2, 8, &params, &err) == SQ_OK);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(fake[i] == expected_values[i], "element %d: %g, expected %g", i,
                  (double)fake[i], (double)expected_values[i]);
    }
    for (int i = 8; i < 16; i++) {
        CHECK(fake[i] == 0.0f);
    }
}

/* 4 bits, group size 2 on a (2, 4) matrix:
 *   row 0, group 0 {1.75, -0.5}: scale 1.75/7 = 0.25, codes {7, -2};
 *   row 0, group 1 {0.4375, -0.1}: scale 0.4375/7 = 0.0625, -0.1/0.0625 = -1.6 -> -2,
 *     codes {7, -2}, values {0.4375, -0.125};
 *   row 1, group 0 {-3.5, 0.9}: scale 0.5, 0.9/0.5 = 1.8 -> 2, codes {-7, 2};
 *   row 1, group 1 {0, 0}: scale 0, codes {0, 0}.
 * One scale per row instead would give row 0 the scale 0.25 and code 0 for 0.1. */
static void test_rtn_groups_hand_case(void) {
    const float w[8] = {1.75f, -0.5f, 0.4375f, -0.1f, -3.5f, 0.9f, 0.0f, 0.0f};
    const int8_t expected_codes[8] = {7, -2, 7, -2, -7, 2, 0, 0};
    const float expected_scales[4] = {0.25f, 0.0625f, 0.5f, 0.0f};
    const float expected_values[8] = {1.75f, -0.5f, 0.4375f, -0.125f, -3.5f, 1.0f, 0.0f, 0.0f};
    const sq_weight_quant_params params = {4, 2, 0};
    int8_t codes[8];
    float scales[4];
    sq_error err;

    CHECK(sq_quant_weight_rtn(w, 2, 4, &params, codes, scales, &err) == SQ_OK);
    CHECK(memcmp(codes, expected_codes, sizeof(codes)) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(scales[i] == expected_scales[i], "scale %d: %g, expected %g", i,
                  (double)scales[i], (double)expected_scales[i]);
    }

    float fake[8];
    memcpy(fake, w, sizeof(fake));
    CHECK(sq_quant_weight_rtn_fake(fake, 2, 4, &params, &err) == SQ_OK);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(fake[i] == expected_values[i], "element %d: %g, expected %g", i,
                  (double)fake[i], (double)expected_values[i]);
    }
}

/* 8 bits per channel (embeddings and classifier): qmax 127. Row {127, -1.5, 0.5, 63.5}: scale 1,
 * codes {127, -2, 0, 64} (ties -1.5 -> -2, 0.5 -> 0, 63.5 -> 64). Row {-254, 3, 1, -1}:
 * scale 2, codes {-127, 2 (1.5 -> 2), 0 (0.5 -> 0), 0 (-0.5 -> -0)}. */
static void test_rtn_8bit_per_channel(void) {
    const float w[8] = {127.0f, -1.5f, 0.5f, 63.5f, -254.0f, 3.0f, 1.0f, -1.0f};
    const int8_t expected_codes[8] = {127, -2, 0, 64, -127, 2, 0, 0};
    const sq_weight_quant_params params = {8, 0, 0};
    int8_t codes[8];
    float scales[2];
    sq_error err;

    CHECK(sq_quant_weight_rtn(w, 2, 4, &params, codes, scales, &err) == SQ_OK);
    CHECK(memcmp(codes, expected_codes, sizeof(codes)) == 0);
    CHECK(scales[0] == 1.0f);
    CHECK(scales[1] == 2.0f);
}

/* 2 bits: qmax 1, qmin -2. Row {-1, 0.5}:
 *   no clipping: scale 1, codes {-1, 0} (0.5 -> 0), error |0.5|^2.4 > 0;
 *   clipping search: p = 0.5 (i = 50) gives scale 0.5 and codes {-2, 1}, exact, so error 0;
 *   every other p in 1.00..0.21 leaves an error (scale in (0.5, 1) moves -1 or 0.5 off the
 *   grid, scale < 0.5 clamps -1 to -2 * scale > -1), so the search must pick scale 0.5.
 * Row {-1} alone is exact both at p = 1 (code -1) and at p = 0.5 (code -2); ties keep the
 * larger ratio, so the search must keep scale 1. */
static void test_rtn_clip_search_hand_case(void) {
    const float w[2] = {-1.0f, 0.5f};
    int8_t codes[2];
    float scale;
    sq_error err;

    const sq_weight_quant_params plain = {2, 0, 0};
    CHECK(sq_quant_weight_rtn(w, 1, 2, &plain, codes, &scale, &err) == SQ_OK);
    CHECK(scale == 1.0f);
    CHECK(codes[0] == -1);
    CHECK(codes[1] == 0);

    const sq_weight_quant_params clipped = {2, 0, 1};
    CHECK(sq_quant_weight_rtn(w, 1, 2, &clipped, codes, &scale, &err) == SQ_OK);
    CHECK(scale == 0.5f);
    CHECK(codes[0] == -2);
    CHECK(codes[1] == 1);

    CHECK(sq_quant_weight_rtn(w, 1, 1, &clipped, codes, &scale, &err) == SQ_OK);
    CHECK(scale == 1.0f);
    CHECK(codes[0] == -1);
}

static void test_rtn_fake_matches_codes(void) {
    enum { rows = 8, cols = 64 };
    uint64_t seed = 11;
    float w[rows * cols];
    for (int i = 0; i < rows * cols; i++) {
        w[i] = test_random_signed(&seed);
    }
    const sq_weight_quant_params params = {3, 16, 1};
    int8_t codes[rows * cols];
    float scales[rows * cols / 16];
    sq_error err;
    CHECK(sq_quant_weight_rtn(w, rows, cols, &params, codes, scales, &err) == SQ_OK);

    float fake[rows * cols];
    memcpy(fake, w, sizeof(fake));
    CHECK(sq_quant_weight_rtn_fake(fake, rows, cols, &params, &err) == SQ_OK);
    int mismatches = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            const int i = r * cols + c;
            mismatches += fake[i] != (float)codes[i] * scales[r * (cols / 16) + c / 16];
            mismatches += codes[i] < -4 || codes[i] > 3;
        }
    }
    CHECK_MSG(mismatches == 0, "%d elements differ from codes * scales or leave [-4, 3]",
              mismatches);
}

static void test_rtn_16_bits_is_identity(void) {
    float w[6] = {0.1f, -1e-8f, 3.3f, -7.77f, 0.0f, 1e20f};
    float copy[6];
    memcpy(copy, w, sizeof(w));
    const sq_weight_quant_params params = {16, 0, 1};
    sq_error err;
    CHECK(sq_quant_weight_rtn_fake(w, 2, 3, &params, &err) == SQ_OK);
    CHECK(memcmp(w, copy, sizeof(w)) == 0);
}

static void test_rtn_rejects_invalid_args(void) {
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int8_t codes[8];
    float scales[8];
    sq_error err;

    const int bad_bits[3] = {1, 17, 0};
    for (int i = 0; i < 3; i++) {
        const sq_weight_quant_params params = {bad_bits[i], 0, 0};
        sq_error_clear(&err);
        CHECK(sq_quant_weight_rtn_fake(w, 1, 8, &params, &err) == SQ_ERR_INVALID_ARG);
        CHECK_MSG(strstr(err.message, "bit width") != NULL, "message: %s", err.message);
    }

    const sq_weight_quant_params not_dividing = {4, 3, 0};
    CHECK(sq_quant_weight_rtn_fake(w, 1, 8, &not_dividing, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "group size 3") != NULL && strstr(err.message, "8 columns"),
              "message: %s", err.message);

    const sq_weight_quant_params negative_group = {4, -1, 0};
    CHECK(sq_quant_weight_rtn(w, 1, 8, &negative_group, codes, scales, &err) ==
          SQ_ERR_INVALID_ARG);

    const sq_weight_quant_params too_wide_for_int8 = {9, 0, 0};
    CHECK(sq_quant_weight_rtn(w, 1, 8, &too_wide_for_int8, codes, scales, &err) ==
          SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "int8") != NULL, "message: %s", err.message);

    const sq_weight_quant_params good = {4, 0, 0};
    CHECK(sq_quant_weight_rtn_fake(w, 0, 8, &good, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_quant_weight_rtn_fake(w, 1, 0, &good, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_quant_weight_rtn(w, 1, 8, &good, NULL, scales, &err) == SQ_ERR_INVALID_ARG);

    w[5] = NAN;
    CHECK(sq_quant_weight_rtn_fake(w, 2, 4, &good, &err) == SQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "row 1, column 1") != NULL, "message: %s", err.message);
    CHECK(w[4] == 5.0f);
}

/* Mean squared error on a random (32, 128) matrix must fall strictly with every added bit. */
static void test_rtn_error_falls_with_bits(void) {
    enum { rows = 32, cols = 128 };
    uint64_t seed = 5;
    static float w[rows * cols];
    static float fake[rows * cols];
    for (int i = 0; i < rows * cols; i++) {
        w[i] = test_random_signed(&seed) * (1.0f + (float)(i % 7));
    }
    double previous = INFINITY;
    for (int bits = 2; bits <= 8; bits++) {
        memcpy(fake, w, sizeof(w));
        const sq_weight_quant_params params = {bits, 0, 0};
        sq_error err;
        CHECK(sq_quant_weight_rtn_fake(fake, rows, cols, &params, &err) == SQ_OK);
        double error = 0.0;
        for (int i = 0; i < rows * cols; i++) {
            error += ((double)w[i] - fake[i]) * ((double)w[i] - fake[i]);
        }
        CHECK_MSG(error < previous * 0.6, "bits %d: error %g, previous %g", bits, error,
                  previous);
        previous = error;
    }
}

/* Rows with one large outlier: the search must never be worse than plain RTN under its own
 * metric (step 0 is the plain scale), and it must gain on rows where clipping helps. */
static void test_rtn_clip_never_worse(void) {
    enum { rows = 24, cols = 96, group = 32 };
    uint64_t seed = 99;
    static float w[rows * cols];
    static float plain[rows * cols];
    static float clipped[rows * cols];
    for (int i = 0; i < rows * cols; i++) {
        w[i] = test_random_signed(&seed);
    }
    for (int r = 0; r < rows; r++) {
        w[r * cols + (r * 7) % cols] = 6.0f * (r % 2 ? 1.0f : -1.0f);
    }

    const int group_sizes[2] = {0, group};
    for (int g = 0; g < 2; g++) {
        const sq_weight_quant_params plain_params = {4, group_sizes[g], 0};
        const sq_weight_quant_params clip_params = {4, group_sizes[g], 1};
        sq_error err;
        memcpy(plain, w, sizeof(w));
        memcpy(clipped, w, sizeof(w));
        CHECK(sq_quant_weight_rtn_fake(plain, rows, cols, &plain_params, &err) == SQ_OK);
        CHECK(sq_quant_weight_rtn_fake(clipped, rows, cols, &clip_params, &err) == SQ_OK);

        const int segment = group_sizes[g] > 0 ? group_sizes[g] : cols;
        int worse = 0;
        int better = 0;
        for (int start = 0; start < rows * cols; start += segment) {
            const double plain_error = clip_metric(w + start, plain + start, segment);
            const double clip_error = clip_metric(w + start, clipped + start, segment);
            worse += clip_error > plain_error * (1.0 + 1e-9);
            better += clip_error < plain_error * 0.9;
        }
        CHECK_MSG(worse == 0, "group size %d: %d segments worse with clipping", group_sizes[g],
                  worse);
        CHECK_MSG(better >= rows / 2, "group size %d: only %d segments gained 10%%",
                  group_sizes[g], better);
    }
}

int main(void) {
    RUN_TEST(test_round_half_even);
    RUN_TEST(test_rtn_4bit_hand_case);
    RUN_TEST(test_rtn_groups_hand_case);
    RUN_TEST(test_rtn_8bit_per_channel);
    RUN_TEST(test_rtn_clip_search_hand_case);
    RUN_TEST(test_rtn_fake_matches_codes);
    RUN_TEST(test_rtn_16_bits_is_identity);
    RUN_TEST(test_rtn_rejects_invalid_args);
    RUN_TEST(test_rtn_error_falls_with_bits);
    RUN_TEST(test_rtn_clip_never_worse);
    TEST_MAIN_END();
}
