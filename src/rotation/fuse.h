/* Rotation fusion: rewrites a model's weights so that the residual stream lives in the basis
 * R1 and each attention head's value/output space in R2, leaving the fp32 network's output
 * unchanged. Linear weights are (out, in), so a layer reading the stream becomes W·R1 and a
 * layer writing it becomes R1ᵀ·W.
 *   - norms first: each RMSNorm gain moves into the input columns of the layers that read it,
 *     and the classifier is untied from the embedding, so every matrix is rotated once;
 *   - R1 (dim, dim): embedding rows and the input side of q, k, v, gate, up and the classifier
 *     get W·R1; the output side of o_proj and down_proj gets R1ᵀ·W;
 *   - R2 (head_dim, head_dim) per layer: the v_proj rows of every KV head get R2ᵀ·W_head and
 *     the o_proj columns of every query head get W_head·R2 (shared by all heads, so grouped-query
 *     attention needs no special case);
 *   - R4: every row w of down_proj becomes M·w for an online transform M applied to the
 *     down_proj input at run time (W·Mᵀ·M·x = W·x). */
#ifndef SQ_ROTATION_FUSE_H
#define SQ_ROTATION_FUSE_H

#include "core/status.h"
#include "core/threadpool.h"
#include "model/model.h"

/* Multiplies every RMSNorm gain into the columns of the layers that read its output and sets
 * the gains to one; unties a tied classifier first. The embedding mean is not subtracted,
 * because that step is exact only for LayerNorm. */
sq_status sq_rotation_fuse_norms(sq_model *model, sq_error *err);

/* Applies R1 (dim, dim), orthogonal, row-major. Norms must be fused first. */
sq_status sq_rotation_apply_r1(sq_model *model, const float *r1, sq_threadpool *pool, sq_error *err);

/* Applies one layer's R2 (head_dim, head_dim), orthogonal, row-major. */
sq_status sq_rotation_apply_r2(sq_model *model, int32_t layer, const float *r2, sq_error *err);

/* Transforms one vector of length n in place (an online rotation such as a Hadamard transform). */
typedef void (*sq_vector_transform_fn)(void *context, float *x, int32_t n);

/* Applies transform to every row of every layer's down_proj (the weight side of R4). */
void sq_rotation_apply_r4(sq_model *model, sq_vector_transform_fn transform, void *context);

/* Returns 1 when every RMSNorm gain is exactly one (norms already fused). */
int sq_rotation_norms_fused(const sq_model *model);

#endif
