/* Creation of sq_hadamard_plan: picks the Kronecker transform, or a documented fallback, for a
 * size n (see hadamard_plan.h for the rules). */
#include "hadamard/hadamard_plan.h"

#include <stdlib.h>

#include "linalg/linalg.h"

void sq_hadamard_plan_free(sq_hadamard_plan *plan) {
    if (plan == NULL) {
        return;
    }
    free(plan->base_matrix);
    free(plan->base_signs);
    free(plan->base_signs_transposed);
    free(plan->dense);
    free(plan->dense_transposed);
    free(plan);
}

/* Returns the largest proper divisor b of n that is a supported Hadamard order, or 1. Visits
 * divisor pairs (d, n/d) up to sqrt(n), so it costs O(sqrt(n)) order checks. */
static int largest_supported_divisor(int n) {
    int best = 1;
    for (int d = 1; (long long)d * d <= n; d++) {
        if (n % d != 0) {
            continue;
        }
        int pair = n / d;
        if (d > best && d < n && sq_hadamard_order_supported(d)) {
            best = d;
        }
        if (pair > best && pair < n && sq_hadamard_order_supported(pair)) {
            best = pair;
        }
    }
    return best;
}

static sq_status build_hadamard_block(sq_hadamard_plan *plan, int block_size, sq_error *err) {
    int m = 0;
    int power = 0;
    if (!sq_hadamard_factor_order(block_size, &m, &power)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "no Hadamard matrix of order %d", block_size);
    }
    plan->block_size = block_size;
    plan->base_order = m;
    plan->power_of_two = power;
    plan->construction = sq_hadamard_base_construction(m);
    plan->scale = sq_hadamard_scale(block_size);

    size_t entries = (size_t)m * (size_t)m;
    plan->base_matrix = malloc(entries);
    plan->base_signs = malloc(entries * sizeof(float));
    plan->base_signs_transposed = malloc(entries * sizeof(float));
    if (plan->base_matrix == NULL || plan->base_signs == NULL ||
        plan->base_signs_transposed == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for a base Hadamard matrix of order %d",
                            m);
    }
    sq_status status = sq_hadamard_base_matrix(m, plan->base_matrix, err);
    if (status != SQ_OK) {
        return status;
    }

    /* Float copies of H_m and H_mᵀ for the kernels' dense step. */
    for (int a = 0; a < m; a++) {
        for (int b = 0; b < m; b++) {
            float sign = (float)plan->base_matrix[(size_t)a * (size_t)m + b];
            plan->base_signs[(size_t)a * (size_t)m + b] = sign;
            plan->base_signs_transposed[(size_t)b * (size_t)m + a] = sign;
        }
    }
    return SQ_OK;
}

static sq_status build_random_orthogonal(sq_hadamard_plan *plan, sq_error *err) {
    size_t entries = (size_t)plan->n * (size_t)plan->n;
    plan->block_size = plan->n;
    plan->scale = 1.0f;
    plan->dense = malloc(entries * sizeof(float));
    plan->dense_transposed = malloc(entries * sizeof(float));
    if (plan->dense == NULL || plan->dense_transposed == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "out of memory for a %d x %d random orthogonal transform", plan->n,
                            plan->n);
    }
    sq_status status = sq_linalg_random_orthogonal_f32(plan->n, plan->seed, plan->dense, err);
    if (status == SQ_OK) {
        sq_linalg_transpose_f32(plan->dense, plan->dense_transposed, plan->n, plan->n);
    }
    return status;
}

/* Chooses the transform kind for n, logging a fallback. */
static sq_status choose_and_build(sq_hadamard_plan *plan, const sq_logger *logger,
                                  sq_error *err) {
    int n = plan->n;
    if (sq_hadamard_order_supported(n)) {
        plan->kind = SQ_HADAMARD_PLAN_KRONECKER;
        return build_hadamard_block(plan, n, err);
    }

    int block = largest_supported_divisor(n);
    if (block >= SQ_HADAMARD_MIN_BLOCK) {
        plan->kind = SQ_HADAMARD_PLAN_BLOCK_DIAGONAL;
        SQ_LOG_WARN_F(logger,
                      "no Hadamard matrix of order %d; using a block-diagonal transform of %d "
                      "Hadamard blocks of order %d",
                      n, n / block, block);
        return build_hadamard_block(plan, block, err);
    }

    if (n <= SQ_HADAMARD_MAX_DENSE_FALLBACK) {
        plan->kind = SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL;
        SQ_LOG_WARN_F(logger,
                      "no Hadamard matrix of order %d and no Hadamard block of order >= %d "
                      "divides it; using a dense random orthogonal matrix (seed %llu)",
                      n, SQ_HADAMARD_MIN_BLOCK, (unsigned long long)plan->seed);
        return build_random_orthogonal(plan, err);
    }

    return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                        "no orthogonal transform for size %d: it has no Hadamard matrix, its "
                        "largest Hadamard divisor is %d (< %d), and the dense random fallback is "
                        "limited to sizes <= %d",
                        n, block, SQ_HADAMARD_MIN_BLOCK, SQ_HADAMARD_MAX_DENSE_FALLBACK);
}

sq_status sq_hadamard_plan_create(int n, uint64_t seed, const sq_logger *logger,
                                  sq_hadamard_plan **plan, sq_error *err) {
    *plan = NULL;
    if (n < 1) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "Hadamard transform size %d is invalid: expected >= 1", n);
    }
    sq_hadamard_plan *created = calloc(1, sizeof(*created));
    if (created == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "out of memory for a Hadamard plan");
    }
    created->n = n;
    created->seed = seed;
    created->isa = sq_hadamard_best_isa();

    sq_status status = choose_and_build(created, logger, err);
    if (status != SQ_OK) {
        sq_hadamard_plan_free(created);
        return status;
    }
    *plan = created;
    return SQ_OK;
}

sq_status sq_hadamard_plan_set_isa(sq_hadamard_plan *plan, sq_hadamard_isa isa, sq_error *err) {
    if (!sq_hadamard_isa_available(isa)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "FWHT kernel '%s' is not available in this build or on this CPU",
                            sq_hadamard_isa_name(isa));
    }
    plan->isa = isa;
    return SQ_OK;
}

size_t sq_hadamard_plan_scratch_floats(const sq_hadamard_plan *plan) {
    if (plan->kind == SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL) {
        return (size_t)plan->n;
    }
    return plan->base_order > 1 ? (size_t)plan->block_size : 0;
}
