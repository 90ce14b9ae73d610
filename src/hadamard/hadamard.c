/* FWHT dispatcher: the one place that maps an sq_hadamard_isa to its kernels and decides,
 * from compile-time macros and a run-time CPU check, which ones this machine can run. */
#include "hadamard/hadamard.h"

#include <math.h>

#include "hadamard/hadamard_kernels.h"

static const sq_hadamard_kernels scalar_kernels = {
    .fwht_unscaled = sq_hadamard_fwht_unscaled_scalar,
    .base_step = sq_hadamard_base_step_scalar,
    .scale = sq_hadamard_scale_scalar,
};
#if SQ_HADAMARD_HAVE_X86
static const sq_hadamard_kernels sse2_kernels = {
    .fwht_unscaled = sq_hadamard_fwht_unscaled_sse2,
    .base_step = sq_hadamard_base_step_sse2,
    .scale = sq_hadamard_scale_sse2,
};
static const sq_hadamard_kernels avx2_kernels = {
    .fwht_unscaled = sq_hadamard_fwht_unscaled_avx2,
    .base_step = sq_hadamard_base_step_avx2,
    .scale = sq_hadamard_scale_avx2,
};
#endif
#if SQ_HADAMARD_HAVE_WASM_SIMD128
static const sq_hadamard_kernels wasm_kernels = {
    .fwht_unscaled = sq_hadamard_fwht_unscaled_wasm,
    .base_step = sq_hadamard_base_step_wasm,
    .scale = sq_hadamard_scale_wasm,
};
#endif
#if SQ_HADAMARD_HAVE_NEON
static const sq_hadamard_kernels neon_kernels = {
    .fwht_unscaled = sq_hadamard_fwht_unscaled_neon,
    .base_step = sq_hadamard_base_step_neon,
    .scale = sq_hadamard_scale_neon,
};
#endif

const sq_hadamard_kernels *sq_hadamard_kernels_for(sq_hadamard_isa isa) {
    switch (isa) {
    case SQ_HADAMARD_ISA_SCALAR:
        return &scalar_kernels;
    case SQ_HADAMARD_ISA_SSE2:
#if SQ_HADAMARD_HAVE_X86
        if (__builtin_cpu_supports("sse2")) {
            return &sse2_kernels;
        }
#endif
        return NULL;
    case SQ_HADAMARD_ISA_AVX2:
#if SQ_HADAMARD_HAVE_X86
        if (__builtin_cpu_supports("avx2")) {
            return &avx2_kernels;
        }
#endif
        return NULL;
    case SQ_HADAMARD_ISA_WASM_SIMD128:
#if SQ_HADAMARD_HAVE_WASM_SIMD128
        return &wasm_kernels;
#else
        return NULL;
#endif
    case SQ_HADAMARD_ISA_NEON:
#if SQ_HADAMARD_HAVE_NEON
        return &neon_kernels;
#else
        return NULL;
#endif
    }
    return NULL;
}

bool sq_hadamard_isa_available(sq_hadamard_isa isa) { return sq_hadamard_kernels_for(isa) != NULL; }

sq_hadamard_isa sq_hadamard_best_isa(void) {
    static const sq_hadamard_isa preference[] = {SQ_HADAMARD_ISA_AVX2, SQ_HADAMARD_ISA_SSE2,
                                                 SQ_HADAMARD_ISA_WASM_SIMD128, SQ_HADAMARD_ISA_NEON};
    for (size_t i = 0; i < sizeof(preference) / sizeof(preference[0]); i++) {
        if (sq_hadamard_isa_available(preference[i])) {
            return preference[i];
        }
    }
    return SQ_HADAMARD_ISA_SCALAR;
}

const char *sq_hadamard_isa_name(sq_hadamard_isa isa) {
    switch (isa) {
    case SQ_HADAMARD_ISA_SCALAR: return "scalar";
    case SQ_HADAMARD_ISA_SSE2: return "sse2";
    case SQ_HADAMARD_ISA_AVX2: return "avx2";
    case SQ_HADAMARD_ISA_WASM_SIMD128: return "wasm-simd128";
    case SQ_HADAMARD_ISA_NEON: return "neon";
    }
    return "unknown";
}

bool sq_hadamard_is_power_of_two(int n) { return n >= 1 && (n & (n - 1)) == 0; }

float sq_hadamard_scale(int n) { return (float)(1.0 / sqrt((double)n)); }

static sq_status check_fwht_size(int n, sq_error *err) {
    if (!sq_hadamard_is_power_of_two(n)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "FWHT size %d is invalid: expected a power of two >= 1 (use an "
                            "sq_hadamard_plan for other sizes)",
                            n);
    }
    return SQ_OK;
}

static const sq_hadamard_kernels *kernels_or_error(sq_hadamard_isa isa, sq_error *err) {
    const sq_hadamard_kernels *kernels = sq_hadamard_kernels_for(isa);
    if (kernels == NULL) {
        sq_error_set(err, SQ_ERR_UNSUPPORTED,
                     "FWHT kernel '%s' is not available in this build or on this CPU",
                     sq_hadamard_isa_name(isa));
    }
    return kernels;
}

sq_status sq_hadamard_fwht_unscaled_isa(sq_hadamard_isa isa, float *x, int n, sq_error *err) {
    sq_status status = check_fwht_size(n, err);
    if (status != SQ_OK) {
        return status;
    }
    const sq_hadamard_kernels *kernels = kernels_or_error(isa, err);
    if (kernels == NULL) {
        return SQ_ERR_UNSUPPORTED;
    }
    kernels->fwht_unscaled(x, n);
    return SQ_OK;
}

sq_status sq_hadamard_fwht_isa(sq_hadamard_isa isa, float *x, int n, sq_error *err) {
    sq_status status = sq_hadamard_fwht_unscaled_isa(isa, x, n, err);
    if (status == SQ_OK) {
        sq_hadamard_kernels_for(isa)->scale(x, (size_t)n, sq_hadamard_scale(n));
    }
    return status;
}

sq_status sq_hadamard_fwht(float *x, int n, sq_error *err) {
    return sq_hadamard_fwht_isa(sq_hadamard_best_isa(), x, n, err);
}

sq_status sq_hadamard_fwht_rows(float *x, int rows, int n, sq_error *err) {
    if (rows < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "FWHT row count %d is invalid: expected >= 0",
                            rows);
    }
    sq_status status = check_fwht_size(n, err);
    if (status != SQ_OK) {
        return status;
    }
    const sq_hadamard_kernels *kernels = sq_hadamard_kernels_for(sq_hadamard_best_isa());
    float scale = sq_hadamard_scale(n);
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * (size_t)n;
        kernels->fwht_unscaled(row, n);
        kernels->scale(row, (size_t)n, scale);
    }
    return SQ_OK;
}
