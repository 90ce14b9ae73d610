/* Hadamard matrices of order n = m·2^k: H_n = H_m ⊗ H_(2^k), where H_(2^k) is the Sylvester
 * matrix (H[i][j] = (-1)^popcount(i & j)) and the base matrix H_m comes from
 *   - m = 1: the 1 x 1 matrix [1] (so every power of two is supported);
 *   - Paley I: m = q + 1 with q ≡ 3 (mod 4) a prime power;
 *   - Paley II: m = 2(q + 1) with q ≡ 1 (mod 4) a prime power,
 * over GF(q), including proper prime powers (28 uses GF(27), 52 uses GF(25), 344 uses
 * GF(343)). Paley I is preferred when both apply. For n, the base order is the smallest
 * m = odd·2^j (odd = the odd part of n, j >= 0, m <= SQ_HADAMARD_MAX_BASE_ORDER) that has a
 * construction. This covers, for example, every m in {12, 20, 28, 36, 44, 52, 60, 76, 108,
 * 140} and n = 576 (36·16), 1536 (12·128), 4864 (76·64), 11008 (344·32, since 172 has no Paley
 * construction but 344 = 343 + 1 does). Sizes it misses include 156·2^k, 172 and 13696 =
 * 107·128; hadamard_plan.h describes the fallback for those.
 *
 * Entries are stored as int8 ±1, row-major, unnormalized (H·Hᵀ = n·I). */
#ifndef SQ_HADAMARD_MATRIX_H
#define SQ_HADAMARD_MATRIX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* Largest base order m tried: the dense H_m step of a transform costs n·m additions. */
#define SQ_HADAMARD_MAX_BASE_ORDER 4096

typedef enum sq_hadamard_construction {
    SQ_HADAMARD_CONSTRUCTION_NONE = 0,
    SQ_HADAMARD_CONSTRUCTION_TRIVIAL = 1,  /* m = 1 */
    SQ_HADAMARD_CONSTRUCTION_PALEY_I = 2,  /* m = q + 1, q ≡ 3 (mod 4) */
    SQ_HADAMARD_CONSTRUCTION_PALEY_II = 3, /* m = 2(q + 1), q ≡ 1 (mod 4) */
} sq_hadamard_construction;

/* Returns the construction used for the base order m, or NONE when there is none (or m is
 * outside 1..SQ_HADAMARD_MAX_BASE_ORDER). */
sq_hadamard_construction sq_hadamard_base_construction(int m);

/* Returns a short name such as "paley-i". */
const char *sq_hadamard_construction_name(sq_hadamard_construction construction);

/* Splits n = base_order · power_of_two as described in the file comment and returns true, or
 * returns false (leaving the outputs untouched) when n < 1 or no base order fits. */
bool sq_hadamard_factor_order(int n, int *base_order, int *power_of_two);

/* Returns true when sq_hadamard_factor_order succeeds for n. */
bool sq_hadamard_order_supported(int n);

/* Writes the base matrix H_m (m, m) with ±1 entries. Returns SQ_ERR_UNSUPPORTED when m has no
 * construction. */
sq_status sq_hadamard_base_matrix(int m, int8_t *h, sq_error *err);

/* Writes H_n = H_m ⊗ H_(2^k) (n, n) with ±1 entries, entry (a·2^k + j, b·2^k + l) being
 * H_m[a][b]·(-1)^popcount(j & l). Returns SQ_ERR_UNSUPPORTED when n is not supported. */
sq_status sq_hadamard_matrix(int n, int8_t *h, sq_error *err);

#endif
