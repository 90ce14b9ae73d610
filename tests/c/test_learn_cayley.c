/* Tests of the Cayley SGD optimizer: orthogonality after a step, the first-order step
 * −α/2·(G − R·Gᵀ·R), the step-size bound 1/‖A‖₁ and the exact Cayley relation, convergence on
 * an orthogonal Procrustes problem, gradient clipping and QR re-orthonormalization. Expected
 * values come from naive loops written here or from hand computation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "learn/cayley.h"
#include "linalg/linalg.h"
#include "linalg/rng.h"
#include "test_util.h"

#define N 16

static void random_orthogonal(double *r, int n, uint64_t seed) {
    sq_error err = {0};
    if (sq_linalg_random_orthogonal_f64(n, seed, r, &err) != SQ_OK) {
        fprintf(stderr, "random orthogonal: %s\n", err.message);
        exit(1);
    }
}

static void random_gaussian(double *x, int64_t count, uint64_t seed) {
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    for (int64_t i = 0; i < count; i++) {
        x[i] = sq_rng_gaussian(&rng);
    }
}

/* c = op(a)·op(b) for n x n matrices, naive. */
static void naive_product(const double *a, int transpose_a, const double *b, int transpose_b, double *c, int n) {
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double sum = 0.0;
            for (int k = 0; k < n; k++) {
                double x = transpose_a ? a[k * n + i] : a[i * n + k];
                double y = transpose_b ? b[j * n + k] : b[k * n + j];
                sum += x * y;
            }
            c[i * n + j] = sum;
        }
    }
}

static void test_step_keeps_orthogonality(void) {
    double r[N * N];
    double g[N * N];
    random_orthogonal(r, N, 1);
    random_gaussian(g, N * N, 2);
    sq_cayley_workspace w;
    sq_error err = {0};
    CHECK(sq_cayley_workspace_init(&w, N, &err) == SQ_OK);
    for (int step = 0; step < 20; step++) {
        CHECK(sq_cayley_step(&w, NULL, r, g, N, 1.5, NULL, &err) == SQ_OK);
    }
    double error = sq_linalg_orthogonality_error_f64(r, N);
    CHECK_MSG(error < 1e-13, "orthogonality error %.3e after 20 steps", error);
    sq_cayley_workspace_free(&w);
}

/* For a small α the step is R − α/2·(G − R·Gᵀ·R) up to O(α²). */
static void test_step_first_order(void) {
    double r[N * N];
    double next[N * N];
    double g[N * N];
    double gtr[N * N];
    double rgtr[N * N];
    random_orthogonal(r, N, 3);
    random_gaussian(g, N * N, 4);
    memcpy(next, r, sizeof(r));
    sq_cayley_workspace w;
    sq_error err = {0};
    sq_cayley_workspace_init(&w, N, &err);
    double alpha = 0.0;
    const double lr = 1e-6;
    CHECK(sq_cayley_step(&w, NULL, next, g, N, lr, &alpha, &err) == SQ_OK);
    CHECK_MSG(alpha == lr, "step %.3e, expected the learning rate %.3e", alpha, lr);

    naive_product(g, 1, r, 0, gtr, N);
    naive_product(r, 0, gtr, 0, rgtr, N);
    double max_error = 0.0;
    double max_value = 0.0;
    for (int i = 0; i < N * N; i++) {
        double expected = -0.5 * (g[i] - rgtr[i]);
        double actual = (next[i] - r[i]) / alpha;
        max_error = fmax(max_error, fabs(actual - expected));
        max_value = fmax(max_value, fabs(expected));
    }
    CHECK_MSG(max_error < 1e-5 * max_value, "first-order step off by %.3e (scale %.3e)", max_error, max_value);

    /* A descent direction: the linear loss ⟨G, R⟩ decreases. */
    double before = 0.0;
    double after = 0.0;
    for (int i = 0; i < N * N; i++) {
        before += g[i] * r[i];
        after += g[i] * next[i];
    }
    CHECK_MSG(after < before, "the loss went from %.12f to %.12f", before, after);
    sq_cayley_workspace_free(&w);
}

/* With a large learning rate α = 1/(‖A‖₁ + 1e-8), and the result satisfies the Cayley relation
 * (I + α/2·A)·(Rᵀ·R_new) = I − α/2·A exactly (to rounding). */
static void test_step_size_bound_and_cayley_relation(void) {
    double r[N * N];
    double next[N * N];
    double g[N * N];
    double rtg[N * N];
    double a[N * N];
    double rt_next[N * N];
    double lhs[N * N];
    random_orthogonal(r, N, 5);
    random_gaussian(g, N * N, 6);
    memcpy(next, r, sizeof(r));

    naive_product(r, 1, g, 0, rtg, N);
    double norm = 0.0;
    for (int j = 0; j < N; j++) {
        double column = 0.0;
        for (int i = 0; i < N; i++) {
            a[i * N + j] = 0.5 * (rtg[i * N + j] - rtg[j * N + i]);
            column += fabs(0.5 * (rtg[i * N + j] - rtg[j * N + i]));
        }
        norm = fmax(norm, column);
    }

    sq_cayley_workspace w;
    sq_error err = {0};
    sq_cayley_workspace_init(&w, N, &err);
    double alpha = 0.0;
    CHECK(sq_cayley_step(&w, NULL, next, g, N, 100.0, &alpha, &err) == SQ_OK);
    CHECK_CLOSE(alpha, 1.0 / (norm + 1e-8), 1e-14);
    CHECK_CLOSE(sq_cayley_skew_norm(&w, NULL, r, g, N), norm, 1e-12);

    naive_product(r, 1, next, 0, rt_next, N);
    double c = 0.5 * alpha;
    double max_error = 0.0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            double sum = rt_next[i * N + j];
            for (int k = 0; k < N; k++) {
                sum += c * a[i * N + k] * rt_next[k * N + j];
            }
            lhs[i * N + j] = sum;
            double rhs = (i == j ? 1.0 : 0.0) - c * a[i * N + j];
            max_error = fmax(max_error, fabs(lhs[i * N + j] - rhs));
        }
    }
    CHECK_MSG(max_error < 1e-12, "Cayley relation off by %.3e", max_error);
    sq_cayley_workspace_free(&w);
}

/* Target T = R0·(Givens rotations), in the same connected component as R0 (det +1 factors),
 * so the minimum of ½‖R − T‖² over orthogonal R is 0 at R = T. */
static void test_procrustes_converges(void) {
    double r[N * N];
    double target[N * N];
    double g[N * N];
    random_orthogonal(r, N, 7);
    memcpy(target, r, sizeof(r));
    sq_rng rng;
    sq_rng_seed(&rng, 8);
    for (int k = 0; k < 40; k++) {
        int p = (int)sq_rng_below(&rng, N);
        int q = (int)sq_rng_below(&rng, N - 1);
        q = q >= p ? q + 1 : q;
        double angle = 2.0 * sq_rng_uniform(&rng) - 1.0;
        for (int i = 0; i < N; i++) {
            double x = target[i * N + p];
            double y = target[i * N + q];
            target[i * N + p] = cos(angle) * x - sin(angle) * y;
            target[i * N + q] = sin(angle) * x + cos(angle) * y;
        }
    }
    double start = 0.0;
    for (int i = 0; i < N * N; i++) {
        start += (r[i] - target[i]) * (r[i] - target[i]);
    }

    sq_cayley_workspace w;
    sq_error err = {0};
    sq_cayley_workspace_init(&w, N, &err);
    double worst_orthogonality = 0.0;
    for (int step = 0; step < 300; step++) {
        for (int i = 0; i < N * N; i++) {
            g[i] = r[i] - target[i];
        }
        CHECK(sq_cayley_step(&w, NULL, r, g, N, 0.5, NULL, &err) == SQ_OK);
        worst_orthogonality = fmax(worst_orthogonality, sq_linalg_orthogonality_error_f64(r, N));
    }
    double distance = 0.0;
    for (int i = 0; i < N * N; i++) {
        distance += (r[i] - target[i]) * (r[i] - target[i]);
    }
    fprintf(stderr, "  Procrustes: ‖R − T‖² from %.3f to %.3e, worst orthogonality error %.3e\n", start, distance,
            worst_orthogonality);
    CHECK_MSG(start > 1.0, "the target is too close to the start (%.3f)", start);
    CHECK_MSG(distance < 1e-12, "‖R − T‖² = %.3e after 300 steps", distance);
    CHECK_MSG(worst_orthogonality < 1e-12, "orthogonality error reached %.3e", worst_orthogonality);
    sq_cayley_workspace_free(&w);
}

static void test_non_finite_gradient_rejected(void) {
    double r[N * N];
    double before[N * N];
    double g[N * N];
    random_orthogonal(r, N, 9);
    memcpy(before, r, sizeof(r));
    random_gaussian(g, N * N, 10);
    g[17] = NAN;
    sq_cayley_workspace w;
    sq_error err = {0};
    sq_cayley_workspace_init(&w, N, &err);
    CHECK(sq_cayley_step(&w, NULL, r, g, N, 1.0, NULL, &err) == SQ_ERR_NUMERIC);
    CHECK(memcmp(r, before, sizeof(r)) == 0);
    sq_cayley_workspace_free(&w);
}

static void test_clip_gradients(void) {
    double a[2] = {3.0, 4.0};
    double b[1] = {12.0};
    double *gradients[2] = {a, b};
    int64_t counts[2] = {2, 1};
    double norm = sq_cayley_clip_gradients(gradients, counts, 2, 1.0);
    CHECK_CLOSE(norm, 13.0, 1e-15);
    CHECK_CLOSE(a[0], 3.0 / (13.0 + 1e-6), 1e-15);
    CHECK_CLOSE(a[1], 4.0 / (13.0 + 1e-6), 1e-15);
    CHECK_CLOSE(b[0], 12.0 / (13.0 + 1e-6), 1e-15);

    double small[2] = {0.3, 0.4};
    double *one[1] = {small};
    int64_t count[1] = {2};
    CHECK_CLOSE(sq_cayley_clip_gradients(one, count, 1, 1.0), 0.5, 1e-15);
    CHECK(small[0] == 0.3);
    CHECK(small[1] == 0.4);
}

static void test_reorthonormalize(void) {
    double r[N * N];
    double perturbed[N * N];
    double noise[N * N];
    random_orthogonal(r, N, 11);
    random_gaussian(noise, N * N, 12);
    for (int i = 0; i < N * N; i++) {
        perturbed[i] = r[i] + 1e-5 * noise[i];
    }
    CHECK(sq_linalg_orthogonality_error_f64(perturbed, N) > 1e-6);
    sq_error err = {0};
    CHECK(sq_cayley_reorthonormalize(perturbed, N, &err) == SQ_OK);
    CHECK_MSG(sq_linalg_orthogonality_error_f64(perturbed, N) < 1e-14, "error %.3e",
              sq_linalg_orthogonality_error_f64(perturbed, N));
    double max_change = 0.0;
    for (int i = 0; i < N * N; i++) {
        max_change = fmax(max_change, fabs(perturbed[i] - r[i]));
    }
    CHECK_MSG(max_change < 1e-3, "re-orthonormalization moved an entry by %.3e", max_change);
}

int main(void) {
    RUN_TEST(test_step_keeps_orthogonality);
    RUN_TEST(test_step_first_order);
    RUN_TEST(test_step_size_bound_and_cayley_relation);
    RUN_TEST(test_procrustes_converges);
    RUN_TEST(test_non_finite_gradient_rejected);
    RUN_TEST(test_clip_gradients);
    RUN_TEST(test_reorthonormalize);
    TEST_MAIN_END();
}
