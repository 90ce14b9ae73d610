/* Kernel dispatcher: the one place that maps an sq_kernel_isa to its functions and decides,
 * with a run-time CPU check on x86, which ones this machine can run. */
#include "kernels/matmul_i8.h"
#include "kernels/qdot_internal.h"

#include <stddef.h>

static const sq_qdot_kernels scalar_kernels = {SQ_KERNEL_ISA_SCALAR, sq_qdot_q4_u8_scalar, sq_qdot_q4_u4_scalar,
                                               sq_dot_i8_i16_scalar};

#if SQ_QDOT_HAVE_X86
static const sq_qdot_kernels ssse3_kernels = {SQ_KERNEL_ISA_SSSE3, sq_qdot_q4_u8_ssse3, sq_qdot_q4_u4_ssse3,
                                              sq_dot_i8_i16_sse41};
static const sq_qdot_kernels avx2_kernels = {SQ_KERNEL_ISA_AVX2, sq_qdot_q4_u8_avx2, sq_qdot_q4_u4_avx2,
                                             sq_dot_i8_i16_avx2};
#endif
#if SQ_QDOT_HAVE_WASM_SIMD128
static const sq_qdot_kernels wasm_kernels = {SQ_KERNEL_ISA_WASM_SIMD128, sq_qdot_q4_u8_wasm, sq_qdot_q4_u4_wasm,
                                             sq_dot_i8_i16_wasm};
#endif
#if SQ_QDOT_HAVE_WASM_RELAXED
static const sq_qdot_kernels relaxed_kernels = {SQ_KERNEL_ISA_WASM_RELAXED, sq_qdot_q4_u8_relaxed,
                                                sq_qdot_q4_u4_relaxed, sq_dot_i8_i16_wasm};
#endif
#if SQ_QDOT_HAVE_NEON
static const sq_qdot_kernels neon_kernels = {SQ_KERNEL_ISA_NEON, sq_qdot_q4_u8_neon, sq_qdot_q4_u4_neon,
                                             sq_dot_i8_i16_neon};
#endif

const sq_qdot_kernels *sq_qdot_kernels_for(sq_kernel_isa isa) {
    switch (isa) {
    case SQ_KERNEL_ISA_SCALAR:
        return &scalar_kernels;
    case SQ_KERNEL_ISA_SSSE3:
#if SQ_QDOT_HAVE_X86
        if (__builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1")) {
            return &ssse3_kernels;
        }
#endif
        return NULL;
    case SQ_KERNEL_ISA_AVX2:
#if SQ_QDOT_HAVE_X86
        if (__builtin_cpu_supports("avx2")) {
            return &avx2_kernels;
        }
#endif
        return NULL;
    case SQ_KERNEL_ISA_WASM_SIMD128:
#if SQ_QDOT_HAVE_WASM_SIMD128
        return &wasm_kernels;
#else
        return NULL;
#endif
    case SQ_KERNEL_ISA_WASM_RELAXED:
#if SQ_QDOT_HAVE_WASM_RELAXED
        return &relaxed_kernels;
#else
        return NULL;
#endif
    case SQ_KERNEL_ISA_NEON:
#if SQ_QDOT_HAVE_NEON
        return &neon_kernels;
#else
        return NULL;
#endif
    }
    return NULL;
}

const sq_qdot_kernels *sq_qdot_select(void) {
    static const sq_kernel_isa preference[] = {SQ_KERNEL_ISA_AVX2, SQ_KERNEL_ISA_SSSE3, SQ_KERNEL_ISA_WASM_RELAXED,
                                               SQ_KERNEL_ISA_WASM_SIMD128, SQ_KERNEL_ISA_NEON};
    for (size_t i = 0; i < sizeof(preference) / sizeof(preference[0]); i++) {
        const sq_qdot_kernels *kernels = sq_qdot_kernels_for(preference[i]);
        if (kernels != NULL) {
            return kernels;
        }
    }
    return &scalar_kernels;
}

const char *sq_kernel_isa_name(sq_kernel_isa isa) {
    switch (isa) {
    case SQ_KERNEL_ISA_SCALAR: return "scalar";
    case SQ_KERNEL_ISA_SSSE3: return "ssse3+sse4.1";
    case SQ_KERNEL_ISA_AVX2: return "avx2";
    case SQ_KERNEL_ISA_WASM_SIMD128: return "wasm-simd128";
    case SQ_KERNEL_ISA_WASM_RELAXED: return "wasm-relaxed-simd";
    case SQ_KERNEL_ISA_NEON: return "neon";
    }
    return "unknown";
}
