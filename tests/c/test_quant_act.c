/* Tests of the per-token activation and KV-cache fake quantizer (src/quant/quant_act.h):
 * hand-computed asymmetric and symmetric cases, clip ratio, groups, KV parameters, identity at
 * 16 bits, argument errors and the error trend over bit widths. Expected values are worked out
 * by hand in the comments. */
#include <stdint.h>
#include <string.h>

#include "quant/quant_act.h"
#include "test_util.h"

/* SplitMix64, so the test data does not depend on the engine's own generator. */
static uint64_t test_random_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float test_random_signed(uint64_t *state) {
    return (float)((double)(test_random_next(state) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void check_values(const float *actual, const float *expected, int count) {
    for (int i = 0; i < count; i++) {
        CHECK_MSG(actual[i] == expected[i], "element %d: %.9g, expected %.9g", i,
                  (double)actual[i], (double)expected[i]);
    }
}

/* 4 bits asymmetric, maxq 15. Row {-1.25, 0, 0.6, 2.5, 0.625, -0.375}: lo -1.25, hi 2.5,
 * scale 3.75 / 15 = 0.25, zero round(1.25 / 0.25) = 5. x / scale = {-5, 0, 2.4, 10, 2.5, -1.5}
 * rounds (half to even) to {-5, 0, 2, 10, 2, -2}, codes {0, 5, 7, 15, 7, 3}, values
 * {-1.25, 0, 0.5, 2.5, 0.5, -0.5}. */
static void test_act_asymmetric_hand_case(void) {
    float x[6] = {-1.25f, 0.0f, 0.6f, 2.5f, 0.625f, -0.375f};
    const float expected[6] = {-1.25f, 0.0f, 0.5f, 2.5f, 0.5f, -0.5f};
    const sq_act_quant_params params = {4, 0, 1.0f, 0};
    sq_error err;
    CHECK(sq_quant_act_fake(x, 1, 6, &params, &err) == SQ_OK);
    check_values(x, expected, 6);
}

/* A positive row {0.3, 3.75}: lo is clamped to 0, so scale = 3.75 / 15 = 0.25, zero 0, and
 * 0.3 / 0.25 = 1.2 -> 1 gives {0.25, 3.75}. (Without the clamp, lo 0.3 would give scale 0.23.)
 * The second token {-3.75, -0.3} mirrors it: hi clamped to 0, scale 0.25, zero 15,
 * -0.3 / 0.25 = -1.2 -> -1 gives {-3.75, -0.25}. Each token has its own scale. */
static void test_act_range_includes_zero(void) {
    float x[4] = {0.3f, 3.75f, -3.75f, -0.3f};
    const float expected[4] = {0.25f, 3.75f, -3.75f, -0.25f};
    const sq_act_quant_params params = {4, 0, 1.0f, 0};
    sq_error err;
    CHECK(sq_quant_act_fake(x, 2, 2, &params, &err) == SQ_OK);
    check_values(x, expected, 4);
}

/* Clip ratio 0.5 on {-2.5, 5, 1.1}: lo -1.25, hi 2.5, scale 0.25, zero 5.
 * -2.5 / 0.25 + 5 = -5 -> clamped to 0 -> -1.25; 5 / 0.25 + 5 = 25 -> clamped to 15 -> 2.5;
 * 1.1 / 0.25 = 4.4 -> 4, code 9 -> 1.0. */
static void test_act_clip_ratio(void) {
    float x[3] = {-2.5f, 5.0f, 1.1f};
    const float expected[3] = {-1.25f, 2.5f, 1.0f};
    const sq_act_quant_params params = {4, 0, 0.5f, 0};
    sq_error err;
    CHECK(sq_quant_act_fake(x, 1, 3, &params, &err) == SQ_OK);
    check_values(x, expected, 3);
}

/* An all-zero row uses lo -1, hi 1 (scale 2/15, zero round(7.5) = 8) and stays zero. */
static void test_act_zero_row(void) {
    float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const float expected[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const sq_act_quant_params params = {4, 0, 1.0f, 0};
    sq_error err;
    CHECK(sq_quant_act_fake(x, 1, 4, &params, &err) == SQ_OK);
    check_values(x, expected, 4);
}

/* 4 bits symmetric, maxq 7. {-3.5, 1.25, 0.2, -0.75}: scale 3.5 / 7 = 0.5, x / scale =
 * {-7, 2.5, 0.4, -1.5} -> {-7, 2, 0, -2}, values {-3.5, 1, 0, -1}.
 * With clip 0.5, {-7, 1}: scale 3.5 / 7 = 0.5, -14 is clamped to -8 -> -4, 1 -> 2 -> 1. */
static void test_act_symmetric_hand_case(void) {
    float x[4] = {-3.5f, 1.25f, 0.2f, -0.75f};
    const float expected[4] = {-3.5f, 1.0f, 0.0f, -1.0f};
    const sq_act_quant_params params = {4, 1, 1.0f, 0};
    sq_error err;
    CHECK(sq_quant_act_fake(x, 1, 4, &params, &err) == SQ_OK);
    check_values(x, expected, 4);

    float clipped[2] = {-7.0f, 1.0f};
    const float expected_clipped[2] = {-4.0f, 1.0f};
    const sq_act_quant_params clip_params = {4, 1, 0.5f, 0};
    CHECK(sq_quant_act_fake(clipped, 1, 2, &clip_params, &err) == SQ_OK);
    check_values(clipped, expected_clipped, 2);
}

/* Groups of 2 on {-1.25, 2.5, 0.3, 3.75}: group 0 has lo -1.25, hi 2.5, scale 0.25, zero 5, so
 * both values are exact; group 1 is the positive case above, {0.25, 3.75}. One scale for the
 * whole row (lo -1.25, hi 3.75, scale 1/3) would give other values. The KV parameters with
 * head_dim 2 are the same quantizer. */
static void test_act_groups_and_kv(void) {
    const float input[4] = {-1.25f, 2.5f, 0.3f, 3.75f};
    const float expected[4] = {-1.25f, 2.5f, 0.25f, 3.75f};
    sq_error err;

    float x[4];
    memcpy(x, input, sizeof(x));
    const sq_act_quant_params params = {4, 0, 1.0f, 2};
    CHECK(sq_quant_act_fake(x, 1, 4, &params, &err) == SQ_OK);
    check_values(x, expected, 4);

    const sq_act_quant_params kv = sq_kv_quant_params(4, 1.0f, 2);
    CHECK(kv.bits == 4);
    CHECK(kv.symmetric == 0);
    CHECK(kv.clip_ratio == 1.0f);
    CHECK(kv.group_size == 2);
    memcpy(x, input, sizeof(x));
    CHECK(sq_quant_act_fake(x, 1, 4, &kv, &err) == SQ_OK);
    check_values(x, expected, 4);

    memcpy(x, input, sizeof(x));
    const sq_act_quant_params whole_row = {4, 0, 1.0f, 0};
    CHECK(sq_quant_act_fake(x, 1, 4, &whole_row, &err) == SQ_OK);
    CHECK(x[2] != expected[2]);
}

static void test_act_16_bits_is_identity(void) {
    float x[6] = {0.1f, -1e-8f, 3.3f, -7.77f, 0.0f, 1e20f};
    float copy[6];
    memcpy(copy, x, sizeof(x));
    const int widths[2] = {16, 32};
    for (int i = 0; i < 2; i++) {
        const sq_act_quant_params params = {widths[i], 0, 1.0f, 0};
        sq_error err;
        CHECK(sq_quant_act_fake(x, 2, 3, &params, &err) == SQ_OK);
        CHECK(memcmp(x, copy, sizeof(x)) == 0);
    }
}

static void test_act_rejects_invalid_args(void) {
    float x[4] = {1, 2, 3, 4};
    sq_error err;

    const int bad_bits[3] = {1, 0, -4};
    for (int i = 0; i < 3; i++) {
        const sq_act_quant_params params = {bad_bits[i], 0, 1.0f, 0};
        CHECK(sq_quant_act_fake(x, 1, 4, &params, &err) == SQ_ERR_INVALID_ARG);
        CHECK_MSG(strstr(err.message, "bit width") != NULL, "message: %s", err.message);
    }

    const float bad_clips[3] = {0.0f, 1.5f, NAN};
    for (int i = 0; i < 3; i++) {
        const sq_act_quant_params params = {4, 0, bad_clips[i], 0};
        CHECK(sq_quant_act_fake(x, 1, 4, &params, &err) == SQ_ERR_INVALID_ARG);
        CHECK_MSG(strstr(err.message, "clip ratio") != NULL, "message: %s", err.message);
    }

    const sq_act_quant_params not_dividing = {4, 0, 1.0f, 3};
    CHECK(sq_quant_act_fake(x, 1, 4, &not_dividing, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "group size 3") != NULL && strstr(err.message, "4 elements"),
              "message: %s", err.message);

    const sq_act_quant_params good = {4, 0, 1.0f, 0};
    CHECK(sq_quant_act_fake(x, -1, 4, &good, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_quant_act_fake(x, 1, 0, &good, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_quant_act_fake(NULL, 0, 4, &good, &err) == SQ_OK);

    float with_inf[4] = {1, 2, 3, INFINITY};
    CHECK(sq_quant_act_fake(with_inf, 2, 2, &good, &err) == SQ_ERR_NUMERIC);
    CHECK_MSG(strstr(err.message, "token 1, element 1") != NULL, "message: %s", err.message);
}

/* Mean squared error on random rows must fall with every added bit, in both modes. */
static void test_act_error_falls_with_bits(void) {
    enum { tokens = 16, dim = 128 };
    uint64_t seed = 3;
    static float x[tokens * dim];
    static float fake[tokens * dim];
    for (int i = 0; i < tokens * dim; i++) {
        x[i] = test_random_signed(&seed) * (float)(1 + i % 5);
    }
    for (int symmetric = 0; symmetric < 2; symmetric++) {
        double previous = INFINITY;
        for (int bits = 2; bits <= 8; bits++) {
            memcpy(fake, x, sizeof(x));
            const sq_act_quant_params params = {bits, symmetric, 1.0f, 32};
            sq_error err;
            CHECK(sq_quant_act_fake(fake, tokens, dim, &params, &err) == SQ_OK);
            double error = 0.0;
            for (int i = 0; i < tokens * dim; i++) {
                error += ((double)x[i] - fake[i]) * ((double)x[i] - fake[i]);
            }
            CHECK_MSG(error < previous * 0.6, "symmetric %d, bits %d: error %g, previous %g",
                      symmetric, bits, error, previous);
            previous = error;
        }
    }
}

int main(void) {
    RUN_TEST(test_act_asymmetric_hand_case);
    RUN_TEST(test_act_range_includes_zero);
    RUN_TEST(test_act_clip_ratio);
    RUN_TEST(test_act_zero_row);
    RUN_TEST(test_act_symmetric_hand_case);
    RUN_TEST(test_act_groups_and_kv);
    RUN_TEST(test_act_16_bits_is_identity);
    RUN_TEST(test_act_rejects_invalid_args);
    RUN_TEST(test_act_error_falls_with_bits);
    TEST_MAIN_END();
}
