/* Tests for the FWHT kernels (scalar and every SIMD variant this machine runs) and for the
 * Sylvester and Paley Hadamard matrices. Reference values come from hand computation, the
 * closed form H[i][j] = (-1)^popcount(i & j) of the Sylvester matrix, or exact integer checks
 * of H·Hᵀ = n·I. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hadamard/galois_field.h"
#include "hadamard/hadamard.h"
#include "hadamard/hadamard_matrix.h"
#include "linalg/rng.h"
#include "test_util.h"

/* The base orders that must be supported. */
static const int required_base_orders[] = {12, 20, 28, 36, 44, 52, 60, 76, 108, 140};
#define REQUIRED_BASE_COUNT (int)(sizeof(required_base_orders) / sizeof(required_base_orders[0]))

static int popcount_parity(unsigned v) {
    int parity = 0;
    for (; v != 0; v &= v - 1) {
        parity ^= 1;
    }
    return parity;
}

/* Fills x (n) with values of mixed magnitude and sign so that additions round. */
static void fill_mixed(float *x, int n, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        double magnitude = ldexp(1.0, (int)sq_rng_below(&rng, 40) - 20);
        x[i] = (float)(sq_rng_gaussian(&rng) * magnitude);
    }
}

/* ---- FWHT ---- */

static void test_fwht_hand_examples(void) {
    float one[1] = {3.5f};
    CHECK(sq_hadamard_fwht(one, 1, NULL) == SQ_OK);
    CHECK(one[0] == 3.5f);

    float two[2] = {1.0f, 2.0f};
    CHECK(sq_hadamard_fwht(two, 2, NULL) == SQ_OK);
    CHECK(two[0] == 3.0f * (float)(1.0 / sqrt(2.0)));
    CHECK(two[1] == -1.0f * (float)(1.0 / sqrt(2.0)));

    /* H_4·(1, 2, 3, 4) = (10, -2, -4, 0), and 1/sqrt(4) = 0.5. */
    float four[4] = {1, 2, 3, 4};
    CHECK(sq_hadamard_fwht(four, 4, NULL) == SQ_OK);
    CHECK(four[0] == 5.0f);
    CHECK(four[1] == -1.0f);
    CHECK(four[2] == -2.0f);
    CHECK(four[3] == 0.0f);

    float unit[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    CHECK(sq_hadamard_fwht_unscaled_isa(SQ_HADAMARD_ISA_SCALAR, unit, 8, NULL) == SQ_OK);
    for (int i = 0; i < 8; i++) {
        CHECK(unit[i] == 1.0f);
    }
}

static void test_fwht_scale_constants(void) {
    CHECK(sq_hadamard_scale(1) == 1.0f);
    CHECK(sq_hadamard_scale(4) == 0.5f);
    CHECK(sq_hadamard_scale(64) == 0.125f);
    CHECK(sq_hadamard_scale(2) == 0.70710678118654752f);
    CHECK(sq_hadamard_scale(576) == 1.0f / 24.0f);
}

static void test_fwht_matches_sylvester_product(void) {
    for (int n = 1; n <= 8192; n *= 2) {
        float *x = malloc((size_t)n * sizeof(float));
        float *input = malloc((size_t)n * sizeof(float));
        sq_rng rng;
        sq_rng_seed(&rng, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            input[i] = (float)(2.0 * sq_rng_uniform(&rng) - 1.0);
        }
        memcpy(x, input, (size_t)n * sizeof(float));
        CHECK(sq_hadamard_fwht(x, n, NULL) == SQ_OK);

        /* Check every output for n <= 1024 and a spread of rows above. */
        int step = n <= 1024 ? 1 : 61;
        double max_error = 0.0;
        for (int i = 0; i < n; i += step) {
            double sum = 0.0;
            for (int j = 0; j < n; j++) {
                sum += popcount_parity((unsigned)(i & j)) ? -(double)input[j] : (double)input[j];
            }
            max_error = fmax(max_error, fabs(sum / sqrt((double)n) - (double)x[i]));
        }
        CHECK_MSG(max_error < 1e-5, "n=%d: max error %.3g", n, max_error);
        free(x);
        free(input);
    }
}

static void test_fwht_simd_bit_identical(void) {
    int variants_run = 0;
    for (int isa = 1; isa < SQ_HADAMARD_ISA_COUNT; isa++) {
        if (!sq_hadamard_isa_available((sq_hadamard_isa)isa)) {
            continue;
        }
        variants_run++;
        int mismatched_sizes = 0;
        for (int n = 1; n <= (1 << 15); n *= 2) {
            for (int trial = 0; trial < 3; trial++) {
                float *reference = malloc((size_t)n * sizeof(float));
                float *simd = malloc((size_t)n * sizeof(float));
                float *unscaled_reference = malloc((size_t)n * sizeof(float));
                float *unscaled_simd = malloc((size_t)n * sizeof(float));
                fill_mixed(reference, n, (uint64_t)(n * 10 + trial));
                if (trial == 2 && n >= 4) {
                    reference[0] = 0x1p-140f; /* subnormal */
                    reference[1] = -0.0f;
                    reference[2] = 3.0e38f; /* overflows to infinity in the sums */
                    reference[3] = -3.0e38f;
                }
                memcpy(simd, reference, (size_t)n * sizeof(float));
                memcpy(unscaled_reference, reference, (size_t)n * sizeof(float));
                memcpy(unscaled_simd, reference, (size_t)n * sizeof(float));

                CHECK(sq_hadamard_fwht_isa(SQ_HADAMARD_ISA_SCALAR, reference, n, NULL) == SQ_OK);
                CHECK(sq_hadamard_fwht_isa((sq_hadamard_isa)isa, simd, n, NULL) == SQ_OK);
                CHECK(sq_hadamard_fwht_unscaled_isa(SQ_HADAMARD_ISA_SCALAR, unscaled_reference, n,
                                                    NULL) == SQ_OK);
                CHECK(sq_hadamard_fwht_unscaled_isa((sq_hadamard_isa)isa, unscaled_simd, n,
                                                    NULL) == SQ_OK);
                if (memcmp(reference, simd, (size_t)n * sizeof(float)) != 0 ||
                    memcmp(unscaled_reference, unscaled_simd, (size_t)n * sizeof(float)) != 0) {
                    mismatched_sizes++;
                    fprintf(stderr, "  %s differs from scalar at n=%d, trial %d\n",
                            sq_hadamard_isa_name((sq_hadamard_isa)isa), n, trial);
                }
                free(reference);
                free(simd);
                free(unscaled_reference);
                free(unscaled_simd);
            }
        }
        CHECK(mismatched_sizes == 0);
        fprintf(stderr, "  checked %s against scalar for n = 1 .. 32768\n",
                sq_hadamard_isa_name((sq_hadamard_isa)isa));
    }
    if (variants_run == 0) {
        fprintf(stderr, "  no SIMD FWHT variant available in this build\n");
    }
}

static void test_fwht_rows_matches_vectors(void) {
    const int rows = 5;
    const int n = 256;
    float *a = malloc((size_t)rows * n * sizeof(float));
    float *b = malloc((size_t)rows * n * sizeof(float));
    fill_mixed(a, rows * n, 3);
    memcpy(b, a, (size_t)rows * n * sizeof(float));
    CHECK(sq_hadamard_fwht_rows(a, rows, n, NULL) == SQ_OK);
    for (int r = 0; r < rows; r++) {
        CHECK(sq_hadamard_fwht_isa(SQ_HADAMARD_ISA_SCALAR, b + r * n, n, NULL) == SQ_OK);
    }
    CHECK(memcmp(a, b, (size_t)rows * n * sizeof(float)) == 0);
    free(a);
    free(b);
}

static void test_fwht_rejects_invalid_sizes(void) {
    float x[16] = {0};
    const int invalid[] = {0, -4, 3, 12, 576};
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        sq_error err = {0};
        CHECK(sq_hadamard_fwht(x, invalid[i], &err) == SQ_ERR_INVALID_ARG);
        char expected[32];
        snprintf(expected, sizeof(expected), "size %d", invalid[i]);
        CHECK_MSG(strstr(err.message, expected) != NULL, "message: %s", err.message);
    }
    sq_error err = {0};
    CHECK(sq_hadamard_fwht_rows(x, -1, 4, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_hadamard_fwht_isa((sq_hadamard_isa)99, x, 4, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strcmp(sq_hadamard_isa_name((sq_hadamard_isa)99), "unknown") == 0);
}

static void test_best_isa_is_available(void) {
    sq_hadamard_isa best = sq_hadamard_best_isa();
    CHECK(sq_hadamard_isa_available(best));
    CHECK(sq_hadamard_isa_available(SQ_HADAMARD_ISA_SCALAR));
    fprintf(stderr, "  best FWHT kernel: %s\n", sq_hadamard_isa_name(best));
}

/* ---- finite fields and Hadamard matrices ---- */

static void test_prime_power_detection(void) {
    const int cases[][3] = {{3, 3, 1}, {25, 5, 2}, {27, 3, 3}, {343, 7, 3}, {4096, 2, 12},
                            {4093, 4093, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int p = 0;
        int e = 0;
        CHECK(sq_galois_prime_power(cases[i][0], &p, &e));
        CHECK_MSG(p == cases[i][1] && e == cases[i][2], "q=%d: p=%d e=%d", cases[i][0], p, e);
    }
    const int not_prime_powers[] = {0, 1, 6, 12, 35, 85, 4095};
    for (size_t i = 0; i < sizeof(not_prime_powers) / sizeof(not_prime_powers[0]); i++) {
        int p = 0;
        int e = 0;
        CHECK_MSG(!sq_galois_prime_power(not_prime_powers[i], &p, &e), "q=%d",
                  not_prime_powers[i]);
    }
}

static void test_jacobsthal_gf9_squares(void) {
    /* GF(9) has 4 nonzero squares; GF(3) = {0, 1, 2} has squares {1}, so χ(1) = 1 and
     * χ(2) = -1. In GF(9) every element of GF(3) is a square. */
    int8_t q3[9];
    CHECK(sq_galois_jacobsthal(3, q3, NULL) == SQ_OK);
    CHECK(q3[0 * 3 + 1] == -1); /* χ(0 - 1) = χ(2) */
    CHECK(q3[1 * 3 + 0] == 1);  /* χ(1) */
    CHECK(q3[0] == 0);

    int8_t q9[81];
    CHECK(sq_galois_jacobsthal(9, q9, NULL) == SQ_OK);
    int squares = 0;
    for (int j = 0; j < 9; j++) {
        squares += q9[j * 9 + 0] == 1; /* χ(x_j - 0) */
    }
    CHECK(squares == 4);
    CHECK(q9[1 * 9 + 0] == 1); /* 1 is a square */
    CHECK(q9[2 * 9 + 0] == 1); /* 2 = -1 is a square in GF(9) */
    CHECK(sq_galois_jacobsthal(8, q9, NULL) == SQ_ERR_INVALID_ARG);
}

/* Returns the number of row pairs (i < j, plus i == j) of h (n, n) that violate H·Hᵀ = n·I,
 * using bit-packed rows: rows i and j are orthogonal when they differ in exactly n/2 places. */
static long count_orthogonality_violations(const int8_t *h, int n) {
    int words = (n + 63) / 64;
    uint64_t *bits = calloc((size_t)n * (size_t)words, sizeof(uint64_t));
    long violations = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            int8_t entry = h[(size_t)i * n + j];
            if (entry != 1 && entry != -1) {
                violations++;
            }
            if (entry < 0) {
                bits[(size_t)i * words + j / 64] |= 1ull << (j % 64);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        const uint64_t *row_i = bits + (size_t)i * words;
        for (int j = i + 1; j < n; j++) {
            const uint64_t *row_j = bits + (size_t)j * words;
            int differences = 0;
            for (int w = 0; w < words; w++) {
                differences += __builtin_popcountll(row_i[w] ^ row_j[w]);
            }
            violations += 2 * differences != n;
        }
    }
    free(bits);
    return violations;
}

static void test_base_matrices_orthogonal(void) {
    const char *expected_construction[REQUIRED_BASE_COUNT] = {
        "paley-i", "paley-i", "paley-i", "paley-ii", "paley-i",
        "paley-ii", "paley-i", "paley-ii", "paley-i", "paley-i"};
    for (int i = 0; i < REQUIRED_BASE_COUNT; i++) {
        int m = required_base_orders[i];
        int8_t *h = malloc((size_t)m * m);
        CHECK(sq_hadamard_base_matrix(m, h, NULL) == SQ_OK);

        /* Exact integer H·Hᵀ. */
        long bad_entries = 0;
        for (int r = 0; r < m; r++) {
            for (int c = 0; c < m; c++) {
                long dot = 0;
                for (int k = 0; k < m; k++) {
                    dot += (long)h[r * m + k] * h[c * m + k];
                }
                bad_entries += dot != (r == c ? m : 0);
            }
        }
        CHECK_MSG(bad_entries == 0, "m=%d: %ld entries of H·Hᵀ differ from m·I", m, bad_entries);
        CHECK_MSG(strcmp(sq_hadamard_construction_name(sq_hadamard_base_construction(m)),
                         expected_construction[i]) == 0,
                  "m=%d", m);
        free(h);
    }
}

static void test_all_base_orders_to_600_orthogonal(void) {
    /* Every base order the constructions accept up to 600, including GF(p^e) cases. */
    int checked = 0;
    for (int m = 2; m <= 600; m++) {
        if (sq_hadamard_base_construction(m) == SQ_HADAMARD_CONSTRUCTION_NONE) {
            continue;
        }
        int8_t *h = malloc((size_t)m * m);
        CHECK(sq_hadamard_base_matrix(m, h, NULL) == SQ_OK);
        long violations = count_orthogonality_violations(h, m);
        CHECK_MSG(violations == 0, "base order %d: %ld violations", m, violations);
        free(h);
        checked++;
    }
    /* 82 is an independent count (a short script enumerating q + 1 and 2(q + 1)). */
    CHECK_MSG(checked == 82, "checked %d base orders", checked);
}

/* Kronecker entry H_m[a][b]·(-1)^popcount(j & l) for i = a·power + j, k = b·power + l. */
static int kron_entry(const int8_t *base, int m, int power, int i, int k) {
    int a = i / power;
    int j = i % power;
    int b = k / power;
    int l = k % power;
    int sign = popcount_parity((unsigned)(j & l)) ? -1 : 1;
    return sign * base[a * m + b];
}

/* Freivalds' check of H·Hᵀ = n·I with exact integer arithmetic (|values| <= n^2 < 2^31 for
 * n <= 4096): for random ±1 vectors v, H·(Hᵀ·v) must equal n·v. A wrong H passes one round
 * with probability <= 1/2. */
static int freivalds_failures(const int8_t *h, int n, int rounds, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    int32_t *v = malloc((size_t)n * sizeof(int32_t));
    int32_t *t = malloc((size_t)n * sizeof(int32_t));
    int failures = 0;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            v[i] = (sq_rng_next_u32(&rng) & 1u) ? 1 : -1;
            t[i] = 0;
        }
        for (int i = 0; i < n; i++) { /* t = Hᵀ·v */
            for (int k = 0; k < n; k++) {
                t[k] += h[(size_t)i * n + k] * v[i];
            }
        }
        for (int i = 0; i < n; i++) {
            int32_t sum = 0;
            for (int k = 0; k < n; k++) {
                sum += h[(size_t)i * n + k] * t[k];
            }
            failures += sum != n * v[i];
        }
    }
    free(v);
    free(t);
    return failures;
}

static void test_kronecker_orders_to_4096(void) {
    /* Every n = m·2^k <= 4096 with m = 1 or a required base order. Up to 1024 the check of
     * H·Hᵀ = n·I is exhaustive over row pairs; above, H is compared entry by entry with the
     * Kronecker product of the (separately verified) base matrix and the Sylvester closed
     * form, which implies H·Hᵀ = n·I, and that is also checked with 3 Freivalds rounds. */
    int orders_checked = 0;
    for (int i = -1; i < REQUIRED_BASE_COUNT; i++) {
        int m = i < 0 ? 1 : required_base_orders[i];
        int8_t *base = malloc((size_t)m * m);
        CHECK(sq_hadamard_base_matrix(m, base, NULL) == SQ_OK);
        for (int power = 1; m * power <= 4096; power *= 2) {
            int n = m * power;
            int got_m = 0;
            int got_power = 0;
            CHECK_MSG(sq_hadamard_factor_order(n, &got_m, &got_power), "n=%d", n);
            if (got_m != m || got_power != power) {
                /* A smaller base order exists (for example 40 = 20·2); it is checked there. */
                CHECK_MSG(got_m < m && got_m * got_power == n, "n=%d: m=%d power=%d", n, got_m,
                          got_power);
                continue;
            }
            int8_t *h = malloc((size_t)n * n);
            CHECK(sq_hadamard_matrix(n, h, NULL) == SQ_OK);
            if (n <= 1024) {
                long violations = count_orthogonality_violations(h, n);
                CHECK_MSG(violations == 0, "n=%d (%d·%d): %ld violations", n, m, power,
                          violations);
            } else {
                long mismatches = 0;
                for (int r = 0; r < n; r++) {
                    for (int c = 0; c < n; c++) {
                        mismatches += h[(size_t)r * n + c] != kron_entry(base, m, power, r, c);
                    }
                }
                CHECK_MSG(mismatches == 0, "n=%d: %ld entries differ from H_m ⊗ H_%d", n,
                          mismatches, power);
                CHECK_MSG(freivalds_failures(h, n, 3, (uint64_t)n) == 0, "n=%d", n);
            }
            orders_checked++;
            free(h);
        }
        free(base);
    }
    fprintf(stderr, "  checked %d orders m·2^k <= 4096\n", orders_checked);
    CHECK(orders_checked >= 80);
}

static void test_factor_order_real_sizes(void) {
    const int cases[][3] = {{576, 36, 16}, {1536, 12, 128}, {4864, 76, 64}, {11008, 344, 32},
                            {64, 1, 64},   {24, 12, 2},     {40, 20, 2},    {1, 1, 1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int m = 0;
        int power = 0;
        CHECK(sq_hadamard_factor_order(cases[i][0], &m, &power));
        CHECK_MSG(m == cases[i][1] && power == cases[i][2], "n=%d: m=%d power=%d", cases[i][0],
                  m, power);
    }
    /* 690 sizes in 1..4096 have a construction, by the same independent count. */
    int supported = 0;
    for (int n = 1; n <= 4096; n++) {
        supported += sq_hadamard_order_supported(n);
    }
    CHECK_MSG(supported == 690, "%d supported sizes", supported);

    const int unsupported[] = {0, -8, 3, 156, 172, 13696, 4099};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        CHECK_MSG(!sq_hadamard_order_supported(unsupported[i]), "n=%d", unsupported[i]);
        sq_error err = {0};
        int8_t dummy[1];
        if (unsupported[i] > 0) {
            CHECK(sq_hadamard_matrix(unsupported[i], dummy, &err) == SQ_ERR_UNSUPPORTED);
        }
    }
    sq_error err = {0};
    int8_t dummy[1];
    CHECK(sq_hadamard_base_matrix(172, dummy, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "172") != NULL);
}

static void test_paley_gf343_order_344(void) {
    /* 11008 = 344·32 relies on GF(7^3); check H_344 exactly. */
    int8_t *h = malloc(344 * 344);
    CHECK(sq_hadamard_base_construction(344) == SQ_HADAMARD_CONSTRUCTION_PALEY_I);
    CHECK(sq_hadamard_base_matrix(344, h, NULL) == SQ_OK);
    CHECK(count_orthogonality_violations(h, 344) == 0);
    free(h);
}

int main(void) {
    RUN_TEST(test_fwht_hand_examples);
    RUN_TEST(test_fwht_scale_constants);
    RUN_TEST(test_fwht_matches_sylvester_product);
    RUN_TEST(test_fwht_simd_bit_identical);
    RUN_TEST(test_fwht_rows_matches_vectors);
    RUN_TEST(test_fwht_rejects_invalid_sizes);
    RUN_TEST(test_best_isa_is_available);
    RUN_TEST(test_prime_power_detection);
    RUN_TEST(test_jacobsthal_gf9_squares);
    RUN_TEST(test_base_matrices_orthogonal);
    RUN_TEST(test_all_base_orders_to_600_orthogonal);
    RUN_TEST(test_kronecker_orders_to_4096);
    RUN_TEST(test_factor_order_real_sizes);
    RUN_TEST(test_paley_gf343_order_344);
    TEST_MAIN_END();
}
