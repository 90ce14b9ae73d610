/* Sylvester and Paley constructions of Hadamard matrices; see hadamard_matrix.h. */
#include "hadamard/hadamard_matrix.h"

#include <stdlib.h>

#include "hadamard/galois_field.h"

/* Returns 1 when v has an odd number of set bits. */
static int parity(unsigned v) {
    int result = 0;
    for (; v != 0; v &= v - 1) {
        result ^= 1;
    }
    return result;
}

static bool is_prime_power_mod4(int q, int residue) {
    int p = 0;
    int e = 0;
    return q >= 3 && q % 4 == residue && sq_galois_prime_power(q, &p, &e);
}

sq_hadamard_construction sq_hadamard_base_construction(int m) {
    if (m < 1 || m > SQ_HADAMARD_MAX_BASE_ORDER) {
        return SQ_HADAMARD_CONSTRUCTION_NONE;
    }
    if (m == 1) {
        return SQ_HADAMARD_CONSTRUCTION_TRIVIAL;
    }
    if (is_prime_power_mod4(m - 1, 3)) {
        return SQ_HADAMARD_CONSTRUCTION_PALEY_I;
    }
    if (m % 2 == 0 && is_prime_power_mod4(m / 2 - 1, 1)) {
        return SQ_HADAMARD_CONSTRUCTION_PALEY_II;
    }
    return SQ_HADAMARD_CONSTRUCTION_NONE;
}

const char *sq_hadamard_construction_name(sq_hadamard_construction construction) {
    switch (construction) {
    case SQ_HADAMARD_CONSTRUCTION_NONE: return "none";
    case SQ_HADAMARD_CONSTRUCTION_TRIVIAL: return "trivial";
    case SQ_HADAMARD_CONSTRUCTION_PALEY_I: return "paley-i";
    case SQ_HADAMARD_CONSTRUCTION_PALEY_II: return "paley-ii";
    }
    return "unknown";
}

bool sq_hadamard_factor_order(int n, int *base_order, int *power_of_two) {
    if (n < 1) {
        return false;
    }
    int odd = n;
    while (odd % 2 == 0) {
        odd /= 2;
    }
    for (int m = odd; m <= n && m <= SQ_HADAMARD_MAX_BASE_ORDER; m *= 2) {
        if (sq_hadamard_base_construction(m) != SQ_HADAMARD_CONSTRUCTION_NONE) {
            *base_order = m;
            *power_of_two = n / m;
            return true;
        }
        if (m > n / 2) {
            break; /* the next m would exceed n (and could overflow) */
        }
    }
    return false;
}

bool sq_hadamard_order_supported(int n) {
    int m = 0;
    int power = 0;
    return sq_hadamard_factor_order(n, &m, &power);
}

/* Paley I, order q + 1: H = I + S with S = [[0, 1ᵀ], [-1, Q]] skew-symmetric, where Q is the
 * Jacobsthal matrix (antisymmetric because χ(-1) = -1 for q ≡ 3 mod 4). */
static void paley_i(int q, const int8_t *jacobsthal, int8_t *h) {
    int m = q + 1;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++) {
            int8_t value;
            if (i == j) {
                value = 1;
            } else if (i == 0) {
                value = 1;
            } else if (j == 0) {
                value = -1;
            } else {
                value = jacobsthal[(size_t)(i - 1) * (size_t)q + (size_t)(j - 1)];
            }
            h[(size_t)i * (size_t)m + j] = value;
        }
    }
}

/* Paley II, order 2(q + 1): with the symmetric conference matrix C = [[0, 1ᵀ], [1, Q]], each
 * off-diagonal entry c of C becomes the block c·[[1, 1], [1, -1]] and each (zero) diagonal
 * entry becomes [[1, -1], [-1, -1]]. */
static void paley_ii(int q, const int8_t *jacobsthal, int8_t *h) {
    int c_order = q + 1;
    int m = 2 * c_order;
    for (int i = 0; i < c_order; i++) {
        for (int j = 0; j < c_order; j++) {
            int8_t block[2][2];
            if (i == j) {
                block[0][0] = 1;
                block[0][1] = -1;
                block[1][0] = -1;
                block[1][1] = -1;
            } else {
                int8_t c = (i == 0 || j == 0)
                               ? 1
                               : jacobsthal[(size_t)(i - 1) * (size_t)q + (size_t)(j - 1)];
                block[0][0] = c;
                block[0][1] = c;
                block[1][0] = c;
                block[1][1] = (int8_t)-c;
            }
            for (int s = 0; s < 2; s++) {
                for (int t = 0; t < 2; t++) {
                    h[(size_t)(2 * i + s) * (size_t)m + (size_t)(2 * j + t)] = block[s][t];
                }
            }
        }
    }
}

sq_status sq_hadamard_base_matrix(int m, int8_t *h, sq_error *err) {
    sq_hadamard_construction construction = sq_hadamard_base_construction(m);
    if (construction == SQ_HADAMARD_CONSTRUCTION_NONE) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "no Hadamard construction for base order %d: expected 1, q+1 with "
                            "q = 3 mod 4 or 2(q+1) with q = 1 mod 4, q a prime power, and at "
                            "most %d",
                            m, SQ_HADAMARD_MAX_BASE_ORDER);
    }
    if (construction == SQ_HADAMARD_CONSTRUCTION_TRIVIAL) {
        h[0] = 1;
        return SQ_OK;
    }

    int q = construction == SQ_HADAMARD_CONSTRUCTION_PALEY_I ? m - 1 : m / 2 - 1;
    int8_t *jacobsthal = malloc((size_t)q * (size_t)q);
    if (jacobsthal == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for the Jacobsthal matrix of GF(%d)",
                            q);
    }
    sq_status status = sq_galois_jacobsthal(q, jacobsthal, err);
    if (status == SQ_OK) {
        if (construction == SQ_HADAMARD_CONSTRUCTION_PALEY_I) {
            paley_i(q, jacobsthal, h);
        } else {
            paley_ii(q, jacobsthal, h);
        }
    }
    free(jacobsthal);
    return status;
}

sq_status sq_hadamard_matrix(int n, int8_t *h, sq_error *err) {
    int m = 0;
    int power = 0;
    if (!sq_hadamard_factor_order(n, &m, &power)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "no Hadamard matrix of order %d: expected m·2^k with a base order m "
                            "from the Sylvester or Paley constructions",
                            n);
    }
    int8_t *base = malloc((size_t)m * (size_t)m);
    if (base == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for a base Hadamard matrix of order %d",
                            m);
    }
    sq_status status = sq_hadamard_base_matrix(m, base, err);
    if (status == SQ_OK) {
        for (int a = 0; a < m; a++) {
            for (int j = 0; j < power; j++) {
                int8_t *row = h + ((size_t)a * (size_t)power + (size_t)j) * (size_t)n;
                for (int b = 0; b < m; b++) {
                    int8_t base_entry = base[(size_t)a * (size_t)m + b];
                    for (int l = 0; l < power; l++) {
                        int negative = parity((unsigned)(j & l));
                        row[(size_t)b * (size_t)power + l] =
                            negative ? (int8_t)-base_entry : base_entry;
                    }
                }
            }
        }
    }
    free(base);
    return status;
}
