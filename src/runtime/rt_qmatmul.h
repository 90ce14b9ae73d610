/* Integer matrix products of the runtime: quantized activations times q4 weight matrices,
 * with the kernels' int32 group sums turned into fp32 outputs by
 *     y[t][r] = Σ_g s_w[r][g] · s_a[t][g] · (dot[t][r][g] - zero[t][g] · weight_sum[r][g])
 * over the kernel groups g (one per row for per-channel weights and per-token activations).
 * Rows are split across the thread pool in chunks; the result does not depend on the thread
 * count, nor on the kernel variant, because the kernels' sums are exact and the epilogue adds
 * the groups of a row in order. */
#ifndef SQ_RUNTIME_RT_QMATMUL_H
#define SQ_RUNTIME_RT_QMATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "kernels/qdot.h"
#include "runtime/rt_model.h"
#include "runtime/rt_quantize.h"

/* One product of a batch: y (batch, rows) = act · matrixᵀ. */
typedef struct sq_rt_product {
    const sq_rt_matrix *matrix;
    float *y;
} sq_rt_product;

/* Returns the int32 count of the scratch that sq_rt_qmatmul needs on pool for up to batch
 * tokens and matrices of up to max_kernel_groups kernel groups per row. Each task keeps the
 * kernel sums of its current rows there, so they stay in the CPU cache until the epilogue
 * reads them. */
size_t sq_rt_qmatmul_scratch_count(const sq_threadpool *pool, int32_t batch, int32_t max_kernel_groups);

/* Runs n_products (1..3) products that read the same activations (same cols and kernel
 * grouping; act->sums grouped by that kernel group). act_bits selects the u8 (> 4) or u4
 * kernel. dots is scratch of sq_rt_qmatmul_scratch_count(pool, batch, G) int32 values, where
 * G is at least every product's n_kernel_groups. */
void sq_rt_qmatmul(sq_threadpool *pool, const sq_qdot_kernels *kernels, const sq_rt_act *act, int act_bits,
                   int32_t batch, const sq_rt_product *products, int n_products, int32_t *dots);

#endif
