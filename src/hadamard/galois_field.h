/* Finite fields GF(q), q = p^e a prime power, just far enough for the Paley constructions:
 * the Jacobsthal matrix of the quadratic character. Internal to src/hadamard. */
#ifndef SQ_HADAMARD_GALOIS_FIELD_H
#define SQ_HADAMARD_GALOIS_FIELD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* Returns true when q = p^e for a prime p and e >= 1, storing p and e. */
bool sq_galois_prime_power(int q, int *prime, int *exponent);

/* Fills jacobsthal (q, q) with Q[i][j] = χ(x_i - x_j), where χ is the quadratic character of
 * GF(q): 0 at 0, 1 on nonzero squares and -1 elsewhere. Element x_i is the polynomial whose
 * coefficients are the base-p digits of i (lowest degree first). Products are reduced modulo
 * the first monic irreducible polynomial of degree e in lexicographic order. q must be an odd
 * prime power. */
sq_status sq_galois_jacobsthal(int q, int8_t *jacobsthal, sq_error *err);

#endif
