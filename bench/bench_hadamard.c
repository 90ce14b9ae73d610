/* Micro-benchmark (not a test): time per transform of the scalar FWHT kernel and of every SIMD
 * kernel available on this machine, for sizes 64, 576 (36·16), 1536 (12·128) and 4096. Sizes
 * that are not powers of two run through sq_hadamard_plan (FWHT groups plus the dense H_m
 * step), so they include that step. Each number is the best of 5 runs of about 0.2 s each
 * (the optional argument sets the run length in seconds). */

// Build natively from the repository root (one command):
//   cc -std=c11 -O3 -D_POSIX_C_SOURCE=200809L -Isrc bench/bench_hadamard.c
//      src/hadamard/*.c src/linalg/*.c src/core/*.c -lm -o bench_hadamard
// Build for WebAssembly SIMD128 (one command) and run with Node.js:
//   emcc -std=c11 -O3 -msimd128 -D_POSIX_C_SOURCE=200809L -Isrc bench/bench_hadamard.c
//      src/hadamard/*.c src/linalg/*.c src/core/*.c -o bench_hadamard.js
//   node bench_hadamard.js
// Usage: bench_hadamard [seconds_per_run]

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hadamard/hadamard.h"
#include "hadamard/hadamard_plan.h"

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Returns the best time per transform, in nanoseconds, over 5 runs of about run_seconds. */
static double time_transform(sq_hadamard_plan *plan, float *x, float *scratch, double run_seconds) {
    /* Calibrate the iteration count on a short run. */
    long iterations = 1;
    for (;;) {
        double start = now_seconds();
        for (long i = 0; i < iterations; i++) {
            sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_M, x, scratch, NULL);
        }
        double elapsed = now_seconds() - start;
        if (elapsed > run_seconds / 10 || iterations > (1L << 30)) {
            iterations = (long)((double)iterations * run_seconds / (elapsed > 0 ? elapsed : 1e-9)) + 1;
            break;
        }
        iterations *= 4;
    }

    double best = 1e300;
    for (int run = 0; run < 5; run++) {
        double start = now_seconds();
        for (long i = 0; i < iterations; i++) {
            sq_hadamard_plan_apply(plan, SQ_HADAMARD_APPLY_M, x, scratch, NULL);
        }
        double per_call = (now_seconds() - start) / (double)iterations;
        if (per_call < best) {
            best = per_call;
        }
    }
    return best * 1e9;
}

int main(int argc, char **argv) {
    double run_seconds = argc > 1 ? atof(argv[1]) : 0.2;
    const int sizes[] = {64, 576, 1536, 4096};

    printf("%-6s %-14s %-14s %12s %12s\n", "n", "plan", "kernel", "ns/transform", "scalar/simd");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int n = sizes[s];
        sq_hadamard_plan *plan = NULL;
        sq_error err = {0};
        if (sq_hadamard_plan_create(n, 0, NULL, &plan, &err) != SQ_OK) {
            fprintf(stderr, "plan for n=%d failed: %s\n", n, err.message);
            return 1;
        }
        float *x = malloc((size_t)n * sizeof(float));
        float *scratch = malloc((sq_hadamard_plan_scratch_floats(plan) + 1) * sizeof(float));
        for (int i = 0; i < n; i++) {
            x[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
        }
        char shape[32];
        snprintf(shape, sizeof(shape), "%d·%d", plan->base_order, plan->power_of_two);

        double scalar_ns = 0.0;
        for (int isa = 0; isa < SQ_HADAMARD_ISA_COUNT; isa++) {
            if (sq_hadamard_plan_set_isa(plan, (sq_hadamard_isa)isa, NULL) != SQ_OK) {
                continue;
            }
            double ns = time_transform(plan, x, scratch, run_seconds);
            if (isa == SQ_HADAMARD_ISA_SCALAR) {
                scalar_ns = ns;
                printf("%-6d %-14s %-14s %12.1f %12s\n", n, shape,
                       sq_hadamard_isa_name((sq_hadamard_isa)isa), ns, "1.00");
            } else {
                printf("%-6d %-14s %-14s %12.1f %12.2f\n", n, shape,
                       sq_hadamard_isa_name((sq_hadamard_isa)isa), ns, scalar_ns / ns);
            }
        }
        free(x);
        free(scratch);
        sq_hadamard_plan_free(plan);
    }
    return 0;
}
