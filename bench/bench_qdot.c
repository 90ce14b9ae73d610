/* Micro-benchmark (not a test) of the integer kernels of kernels/qdot.h. It measures the
 * throughput of every variant this build and this CPU can run on the weight shapes of
 * SmolLM2-135M (rows × cols 576×576, 1536×576 and 576×1536). Each shape runs with 32-column
 * groups and with one group per row, for 1 token (decode) and 16 tokens (a prefill batch), with
 * 8-bit and 4-bit activation codes.
 *
 * GOP/s counts a multiply and an add per weight element and token (2·rows·cols·batch per
 * call). Each number is the best of 25 runs of about --seconds each (default 5 ms), because on
 * a busy machine the shortest run is the one no other process interrupted. The weights (at most
 * 432 KiB) stay in the CPU caches, so this measures the kernels and not the memory bandwidth that
 * a whole model needs. Every variant's output is compared with the scalar reference's, and a
 * mismatch fails the run.
 *
 * Native: CMake builds it as build/native/bench_qdot (scalar, SSSE3 and AVX2 on x86).
 * WASI SIMD128 (scalar and SIMD128), with the WASI build folder of tools/build.sh:
 *   cmake --build build/wasi --target bench_qdot
 *   python3 tools/wasmtime-run.py build/wasi/bench_qdot.wasm
 * WASI relaxed SIMD (scalar, SIMD128 and relaxed): a build folder whose objects get
 * -mrelaxed-simd and whose link step gets -O0, so that clang does not run binaryen's wasm-opt,
 * which cannot read relaxed SIMD (see docs/WASM.md):
 *   cmake -S . -B build/wasi-relaxed -G Ninja -DCMAKE_BUILD_TYPE=Release
 *     -DCMAKE_TOOLCHAIN_FILE=wasm/wasi.cmake -DSQ_WASM_TARGET=wasi
 *     -DCMAKE_C_FLAGS="-msimd128 -mrelaxed-simd" -DCMAKE_EXE_LINKER_FLAGS="-fuse-ld=lld -O0"
 *   cmake --build build/wasi-relaxed --target bench_qdot
 *   python3 tools/wasmtime-run.py build/wasi-relaxed/bench_qdot.wasm
 * Node.js 20 runs the relaxed module with --experimental-wasm-relaxed-simd --no-liftoff
 * (node tools/wasi-run.mjs MODULE).
 *
 * Usage: bench_qdot [--seconds S] [--acts u8|u4|both] [--json] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/qdot.h"

/* Many short runs: on a shared machine the best of them is the one that kept the CPU. */
#define RUNS 25
#define MAX_BATCH 16

typedef struct bench_case {
    int32_t rows;
    int32_t cols;
    int32_t group;   /* 0: one group per row */
    int32_t batch;
    int u4;          /* 1: 4-bit activation codes */
} bench_case;

/* Inputs and outputs of one case, filled once and shared by every variant. */
typedef struct bench_data {
    sq_qdot_args args;
    uint8_t *weights;
    uint8_t *acts;
    int32_t *weight_sums;
    int32_t *act_sums;
    int32_t *out;
    int32_t *expected;
    size_t out_count;
} bench_data;

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A fixed linear congruential sequence, so every build measures the same inputs. */
static uint32_t next_random(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static void free_data(bench_data *d) {
    free(d->weights);
    free(d->acts);
    free(d->weight_sums);
    free(d->act_sums);
    free(d->out);
    free(d->expected);
    memset(d, 0, sizeof(*d));
}

/* Fills random codes and their group sums. Returns 0 when out of memory. */
static int make_data(const bench_case *c, bench_data *d) {
    memset(d, 0, sizeof(*d));
    int32_t group = c->group == 0 ? c->cols : c->group;
    int32_t n_groups = c->cols / group;
    size_t weight_stride = sq_q4_row_bytes(c->cols);
    size_t act_stride = c->u4 ? sq_q4_row_bytes(c->cols) : (size_t)c->cols;
    d->out_count = (size_t)c->batch * (size_t)c->rows * (size_t)n_groups;
    d->weights = malloc(weight_stride * (size_t)c->rows);
    d->acts = malloc(act_stride * (size_t)c->batch);
    d->weight_sums = calloc((size_t)c->rows * (size_t)n_groups, sizeof(int32_t));
    d->act_sums = calloc((size_t)c->batch * (size_t)n_groups, sizeof(int32_t));
    d->out = malloc(d->out_count * sizeof(int32_t));
    d->expected = malloc(d->out_count * sizeof(int32_t));
    if (d->weights == NULL || d->acts == NULL || d->weight_sums == NULL || d->act_sums == NULL || d->out == NULL ||
        d->expected == NULL) {
        free_data(d);
        return 0;
    }

    uint32_t state = 12345u + (uint32_t)c->rows * 7u + (uint32_t)c->cols;
    memset(d->weights, 0x88, weight_stride * (size_t)c->rows);
    for (int32_t r = 0; r < c->rows; r++) {
        uint8_t *row = d->weights + (size_t)r * weight_stride;
        for (int32_t i = 0; i < c->cols; i++) {
            int nibble = (int)(next_random(&state) & 15u);
            sq_q4_set_nibble(row, i, nibble);
            d->weight_sums[(size_t)r * (size_t)n_groups + (size_t)(i / group)] += nibble - 8;
        }
    }
    memset(d->acts, 0, act_stride * (size_t)c->batch);
    for (int32_t t = 0; t < c->batch; t++) {
        uint8_t *row = d->acts + (size_t)t * act_stride;
        for (int32_t i = 0; i < c->cols; i++) {
            int code = (int)(next_random(&state) & (c->u4 ? 15u : 255u));
            if (c->u4) {
                sq_q4_set_nibble(row, i, code);
            } else {
                row[i] = (uint8_t)code;
            }
            d->act_sums[(size_t)t * (size_t)n_groups + (size_t)(i / group)] += code;
        }
    }

    sq_qdot_args a = {d->out, (size_t)c->rows * (size_t)n_groups, d->weights, weight_stride, d->acts, act_stride,
                      d->weight_sums, d->act_sums, c->batch, c->rows, c->cols, group};
    d->args = a;
    d->args.out = d->expected;
    (c->u4 ? sq_qdot_q4_u4_scalar : sq_qdot_q4_u8_scalar)(&d->args);
    d->args.out = d->out;
    return 1;
}

/* Returns the best seconds per call of fn over RUNS runs of about run_seconds each. A call
 * that takes longer than run_seconds (the scalar kernels on a batch) gets one call per run and
 * as many runs as fit in RUNS·run_seconds, at least 3. */
static double time_kernel(sq_qdot_fn fn, const sq_qdot_args *args, double run_seconds) {
    long iterations = 1;
    double elapsed = 0.0;
    for (;;) {
        double start = now_seconds();
        for (long i = 0; i < iterations; i++) {
            fn(args);
        }
        elapsed = now_seconds() - start;
        if (elapsed > run_seconds / 10 || iterations > (1L << 28)) {
            break;
        }
        iterations *= 4;
    }
    double per_call = elapsed / (double)iterations;
    int runs = RUNS;
    if (per_call >= run_seconds) {
        iterations = 1;
        runs = (int)(RUNS * run_seconds / per_call);
        runs = runs < 3 ? 3 : runs;
    } else {
        iterations = (long)(run_seconds / (per_call > 0 ? per_call : 1e-9)) + 1;
    }

    double best = per_call;
    for (int run = 0; run < runs; run++) {
        double start = now_seconds();
        for (long i = 0; i < iterations; i++) {
            fn(args);
        }
        double seconds = (now_seconds() - start) / (double)iterations;
        best = seconds < best ? seconds : best;
    }
    return best;
}

static int parse_arguments(int argc, char **argv, double *seconds, int *acts, int *json) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = 1;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            char *end = NULL;
            *seconds = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(*seconds > 0.0 && *seconds <= 60.0)) {
                fprintf(stderr, "bench_qdot: invalid --seconds '%s', expected a number in (0, 60]\n", argv[i]);
                return 0;
            }
        } else if (strcmp(argv[i], "--acts") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "u8") == 0) {
                *acts = 1;
            } else if (strcmp(argv[i], "u4") == 0) {
                *acts = 2;
            } else if (strcmp(argv[i], "both") == 0) {
                *acts = 3;
            } else {
                fprintf(stderr, "bench_qdot: invalid --acts '%s', expected u8, u4 or both\n", argv[i]);
                return 0;
            }
        } else {
            fprintf(stderr, "bench_qdot: invalid argument '%s'\nusage: bench_qdot [--seconds S] [--acts u8|u4|both] [--json]\n",
                    argv[i]);
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    double run_seconds = 0.005;
    int acts = 3;
    int json = 0;
    if (!parse_arguments(argc, argv, &run_seconds, &acts, &json)) {
        return 2;
    }

    static const int32_t shapes[][2] = {{576, 576}, {1536, 576}, {576, 1536}};
    static const int32_t groups[] = {32, 0};
    static const int32_t batches[] = {1, MAX_BATCH};
    static const sq_kernel_isa isas[] = {SQ_KERNEL_ISA_SCALAR, SQ_KERNEL_ISA_SSSE3, SQ_KERNEL_ISA_AVX2,
                                         SQ_KERNEL_ISA_WASM_SIMD128, SQ_KERNEL_ISA_WASM_RELAXED, SQ_KERNEL_ISA_NEON};
    const size_t n_isas = sizeof(isas) / sizeof(isas[0]);

    if (json) {
        printf("{\"results\": [");
    } else {
        printf("GOP/s of each kernel variant (2·rows·cols·batch operations per call); ×scalar in brackets\n");
        printf("%-10s %-5s %5s %4s", "rows×cols", "group", "batch", "acts");
        for (size_t k = 0; k < n_isas; k++) {
            if (sq_qdot_kernels_for(isas[k]) != NULL) {
                printf(" %22s", sq_kernel_isa_name(isas[k]));
            }
        }
        printf("\n");
    }

    int first = 1;
    int mismatches = 0;
    for (int u4 = 0; u4 <= 1; u4++) {
        if (!(acts & (1 << u4))) {
            continue;
        }
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
                for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
                    bench_case c = {shapes[s][0], shapes[s][1], groups[g], batches[b], u4};
                    bench_data d;
                    if (!make_data(&c, &d)) {
                        fprintf(stderr, "bench_qdot: out of memory for %d×%d\n", c.rows, c.cols);
                        return 1;
                    }
                    double ops = 2.0 * (double)c.rows * (double)c.cols * (double)c.batch;
                    char group_text[16];
                    snprintf(group_text, sizeof(group_text), "%d", c.group == 0 ? c.cols : c.group);
                    if (!json) {
                        char shape_text[24];
                        snprintf(shape_text, sizeof(shape_text), "%d×%d", c.rows, c.cols);
                        printf("%-11s %-5s %5d %4s", shape_text, group_text, c.batch, u4 ? "u4" : "u8");
                    }
                    double scalar_gops = 0.0;
                    for (size_t k = 0; k < n_isas; k++) {
                        const sq_qdot_kernels *kernels = sq_qdot_kernels_for(isas[k]);
                        if (kernels == NULL) {
                            continue;
                        }
                        sq_qdot_fn fn = u4 ? kernels->q4_u4 : kernels->q4_u8;
                        memset(d.out, 0x5A, d.out_count * sizeof(int32_t));
                        fn(&d.args);
                        int same = memcmp(d.out, d.expected, d.out_count * sizeof(int32_t)) == 0;
                        if (!same) {
                            mismatches++;
                            fprintf(stderr, "bench_qdot: %s differs from the scalar reference on %d×%d group %s batch %d %s\n",
                                    sq_kernel_isa_name(isas[k]), c.rows, c.cols, group_text, c.batch, u4 ? "u4" : "u8");
                        }
                        double gops = ops / time_kernel(fn, &d.args, run_seconds) * 1e-9;
                        if (isas[k] == SQ_KERNEL_ISA_SCALAR) {
                            scalar_gops = gops;
                        }
                        if (json) {
                            printf("%s{\"rows\": %d, \"cols\": %d, \"group\": %s, \"batch\": %d, \"acts\": \"%s\", "
                                   "\"kernels\": \"%s\", \"gops\": %.4f, \"exact\": %s}",
                                   first ? "" : ", ", c.rows, c.cols, group_text, c.batch, u4 ? "u4" : "u8",
                                   sq_kernel_isa_name(isas[k]), gops, same ? "true" : "false");
                            first = 0;
                        } else {
                            char cell[32];
                            snprintf(cell, sizeof(cell), "%.2f (%.1f×)%s", gops, gops / scalar_gops, same ? "" : " !");
                            printf(" %22s", cell);
                        }
                        fflush(stdout);
                    }
                    if (!json) {
                        printf("\n");
                    }
                    free_data(&d);
                }
            }
        }
    }
    if (json) {
        printf("], \"mismatches\": %d}\n", mismatches);
    }
    return mismatches == 0 ? 0 : 1;
}
