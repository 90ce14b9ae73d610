/* GPTQ (Frantar et al., 2022, arXiv 2210.17323) quantizes the columns of a linear layer's
 * weight one at a time. It moves each column's rounding error onto the columns not yet
 * quantized, weighted by the inverse Hessian of the layer's squared output error, so the
 * output error on the calibration inputs is lower than with plain round-to-nearest.
 *
 * The quantizer applied to each column is the symmetric RTN quantizer of quant_weight.h (one
 * scale per row, or per group of columns, with the optional clipping search). The steps follow
 * the GPTQ code that SpinQuant and QuaRot use:
 *   1. dead columns (H_ii = 0) get H_ii = 1 and weight 0;
 *   2. with activation order, columns are processed by descending H_ii (ties in index order)
 *      and the result is permuted back;
 *   3. damp_ratio * mean(H_ii) is added to the diagonal;
 *   4. U = the upper Cholesky factor of H^-1 (H^-1 = U^T U);
 *   5. for each column i: q = quant(w_i), e = (w_i - q) / U_ii, and w_j -= e * U_ij for j > i.
 *      Blocks of block_size columns apply the updates inside the block at once and the updates
 *      to later columns once per block (the result does not depend on block_size apart from
 *      float rounding).
 * Without groups each row's scale is computed once, from the weights after step 1. With groups
 * a group's scales are computed when its first column is reached, from the weights with every
 * update so far applied.
 *
 * NOTE: the reference GPTQ code computes a group's scales from weights that lack the updates of
 * the current block when the group starts inside a block (group_size smaller than block_size),
 * and computes the per-row scales before zeroing dead columns; both are deliberate differences.
 * With activation order and groups, a group is a run of consecutive columns in the permuted
 * order (GPTQ without "static groups"), so the result has no per-group scale layout in the
 * original column order, and sq_gptq_quantize_codes rejects that combination.
 *
 * Memory: one (cols, cols) double matrix and one (rows, cols) float copy of the weights,
 * allocated per call. The Cholesky factorization and inverse are private to gptq.c. */
#ifndef SQ_QUANT_GPTQ_H
#define SQ_QUANT_GPTQ_H

#include <stdint.h>

#include "core/status.h"
#include "quant/quant_weight.h"

#define SQ_GPTQ_DEFAULT_DAMP_RATIO 0.01
#define SQ_GPTQ_DEFAULT_BLOCK_SIZE 128

typedef struct sq_gptq_params {
    sq_weight_quant_params weight; /* bits, group size and clipping search of the quantizer */
    double damp_ratio; /* fraction of the mean Hessian diagonal added to the diagonal, >= 0 */
    int block_size;    /* columns per lazy-update block, >= 1 */
    int act_order;     /* nonzero: process columns by descending Hessian diagonal */
} sq_gptq_params;

/* Returns the defaults of the SpinQuant reference code: bits as given, one scale per row, no
 * clipping search, dampening 0.01, block size 128, no activation order. */
sq_gptq_params sq_gptq_params_default(int bits);

/* Replaces w by its GPTQ-quantized (dequantized) values. hessian is H = 2 * X^T X / n over the
 * n calibration inputs of the layer, as built by sq_gptq_hessian_add; it is not modified, and
 * scaling it by a positive constant does not change the result. bits 16 leaves w unchanged.
 * Fails with SQ_ERR_INVALID_ARG on bad sizes or parameters, and with SQ_ERR_NOMEM when the
 * working memory cannot be allocated. Fails with SQ_ERR_NUMERIC on NaN or Inf in w or hessian,
 * when the dampened Hessian is not positive definite, or when the result is not finite.
 * On failure w is unchanged (codes and scales of sq_gptq_quantize_codes are then undefined). */
sq_status sq_gptq_quantize(float *w /* (rows, cols), in and out */, int rows, int cols,
                           const double *hessian /* (cols, cols) */,
                           const sq_gptq_params *params, sq_error *err);

/* Same as sq_gptq_quantize, and also writes the integer codes and scales in the layout of
 * sq_quant_weight_rtn: w[r][c] == codes[r * cols + c] * scales[r * (cols / g) + c / g] after
 * the call, with g = group_size or cols. Requires bits <= 8. Fails with SQ_ERR_UNSUPPORTED
 * when both act_order and group_size are set. */
sq_status sq_gptq_quantize_codes(float *w /* (rows, cols), in and out */, int rows, int cols,
                                 const double *hessian /* (cols, cols) */,
                                 const sq_gptq_params *params,
                                 int8_t *codes /* (rows, cols) */,
                                 float *scales /* (rows, cols / g) */, sq_error *err);

/* Adds n_tokens input rows to a running Hessian: H = H * n / (n + t) + 2 / (n + t) * X^T X,
 * with n = *n_seen and t = n_tokens, then *n_seen += t. Start from H = 0 and *n_seen = 0.
 * The reference GPTQ code counts sequences instead of tokens in n; that only rescales H, which
 * does not change the GPTQ result. Fails with SQ_ERR_INVALID_ARG on bad sizes and with
 * SQ_ERR_NUMERIC (leaving h unchanged) when x contains NaN or Inf. */
sq_status sq_gptq_hessian_add(double *h /* (cols, cols), in and out */,
                              const float *x /* (n_tokens, cols) */, int n_tokens, int cols,
                              long *n_seen, sq_error *err);

#endif
