/* Random Hadamard rotations, the usual initialization of SpinQuant's learned rotations R1 and
 * R2. The other initialization, a Haar random orthogonal matrix, is
 * sq_linalg_random_orthogonal_f32 in linalg/linalg.h. */
#ifndef SQ_HADAMARD_RANDOM_HADAMARD_H
#define SQ_HADAMARD_RANDOM_HADAMARD_H

#include <stdint.h>

#include "core/log.h"
#include "core/status.h"

/* Writes R = D·M (n, n), row-major fp32, where M is the orthonormal transform of
 * sq_hadamard_plan_create(n, …) (H_n/sqrt(n) when n has a Hadamard matrix, else the logged
 * fallback) and D = diag(±1) has independent fair random signs drawn from an sq_rng seeded
 * with seed. The fallback's own random matrix uses a seed derived from seed. R is orthogonal,
 * and the same seed gives the same bits. */
sq_status sq_hadamard_random_rotation(int n, uint64_t seed, const sq_logger *logger, float *out,
                                      sq_error *err);

#endif
