/* Random Hadamard rotation R = diag(±1)·M; see random_hadamard.h. */
#include "hadamard/random_hadamard.h"

#include "hadamard/hadamard_plan.h"
#include "linalg/rng.h"

/* Mixed into seed for the fallback matrix, so that it does not reuse the sign stream. */
#define SQ_FALLBACK_SEED_MIX 0x9E3779B97F4A7C15ull

sq_status sq_hadamard_random_rotation(int n, uint64_t seed, const sq_logger *logger, float *out,
                                      sq_error *err) {
    sq_hadamard_plan *plan = NULL;
    sq_status status = sq_hadamard_plan_create(n, seed ^ SQ_FALLBACK_SEED_MIX, logger, &plan, err);
    if (status != SQ_OK) {
        return status;
    }
    status = sq_hadamard_plan_to_dense(plan, out, err);
    sq_hadamard_plan_free(plan);
    if (status != SQ_OK) {
        return status;
    }

    /* Row i of D·M is ±(row i of M). */
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        if (sq_rng_next_u32(&rng) & 1u) {
            float *row = out + (size_t)i * (size_t)n;
            for (int j = 0; j < n; j++) {
                row[j] = -row[j];
            }
        }
    }
    return SQ_OK;
}
