/* The elementwise and attention operations of the training forward pass, each paired with its
 * hand-written backward pass (in the style of llm.c). Everything is double precision and
 * row-major with one row per token.
 *
 * Conventions of the backward functions:
 *   - functions that have separate input and output buffers ADD the input gradient into the
 *     caller's buffer (d_x += ...), so the caller zeroes it once and several consumers of one
 *     tensor can accumulate into it;
 *   - in-place linear maps (RoPE) transform the gradient in place with the transposed map;
 *   - the fake quantizers use the straight-through estimator: the forward pass rounds and
 *     clamps, the backward pass is the identity, plus, when enabled, a term through the
 *     quantizer's scale (sq_learn_fake_quant_scale_backward). */
#ifndef SQ_LEARN_LEARN_OPS_H
#define SQ_LEARN_LEARN_OPS_H

#include <stdint.h>

#include "core/status.h"
#include "core/threadpool.h"
#include "quant/quant_act.h"

/* ---- RMSNorm: y = gain ⊙ x / sqrt(mean(x²) + eps) ---- */

/* y, x: (rows, n); inverse_rms: (rows) receives 1/sqrt(mean(x²) + eps) for the backward
 * pass; gain: (n), or NULL for a unit gain. */
void sq_learn_rmsnorm_forward(double *y, double *inverse_rms, const double *x, const float *gain, int32_t rows,
                              int32_t n, double eps);

/* d_x (rows, n) += the gradient for d_y (rows, n), given the forward input x and inverse_rms. */
void sq_learn_rmsnorm_backward(double *d_x, const double *d_y, const double *x, const double *inverse_rms,
                               const float *gain, int32_t rows, int32_t n);

/* ---- interleaved RoPE ---- */

/* Rotates the pair (x[2i], x[2i+1]) of every head of every row by the angle of row r's
 * position: x (rows, n_heads * head_dim), position of row r = r; cos_table and sin_table:
 * (rows, head_dim / 2). */
void sq_learn_rope_forward(double *x, const double *cos_table, const double *sin_table, int32_t rows,
                           int32_t n_heads, int32_t head_dim);

/* Applies the inverse rotation to the gradient d_x (same shape), in place. */
void sq_learn_rope_backward(double *d_x, const double *cos_table, const double *sin_table, int32_t rows,
                            int32_t n_heads, int32_t head_dim);

/* ---- causal grouped-query attention ---- */

typedef struct sq_learn_attention_shape {
    int32_t tokens;     /* rows of q, k, v */
    int32_t n_heads;    /* query heads */
    int32_t n_kv_heads; /* key/value heads; query head h reads KV head h / (n_heads / n_kv_heads) */
    int32_t head_dim;
} sq_learn_attention_shape;

/* out[t, h] = Σ_{p ≤ t} P[h][t][p]·v[p, g] with P[h][t] = softmax_p(q[t, h]·k[p, g] / sqrt(head_dim)).
 * q, out: (tokens, n_heads * head_dim); k, v: (tokens, n_kv_heads * head_dim);
 * probabilities: (n_heads, tokens, tokens), entries p > t are left unset. Heads run as pool tasks. */
void sq_learn_attention_forward(sq_threadpool *pool, double *out, double *probabilities, const double *q,
                                const double *k, const double *v, const sq_learn_attention_shape *shape);

/* d_q, d_k, d_v += the gradients for d_out. Key/value heads run as pool tasks, so each
 * gradient element is summed in the same order for any thread count. */
void sq_learn_attention_backward(sq_threadpool *pool, double *d_q, double *d_k, double *d_v, const double *d_out,
                                 const double *probabilities, const double *q, const double *k, const double *v,
                                 const sq_learn_attention_shape *shape);

/* ---- SwiGLU: out = silu(gate) ⊙ up, silu(x) = x·sigmoid(x) ---- */

void sq_learn_swiglu_forward(double *out, const double *gate, const double *up, int64_t count);

/* d_gate, d_up += the gradients for d_out (count elements each). */
void sq_learn_swiglu_backward(double *d_gate, double *d_up, const double *d_out, const double *gate, const double *up,
                              int64_t count);

/* ---- cross-entropy ---- */

/* For each row r of logits (rows, vocab_size): adds -log softmax(row)[targets[r]] to *loss_sum,
 * and replaces the row by gradient_scale·(softmax(row) − onehot(targets[r])), the gradient of
 * gradient_scale times that loss. Fails with SQ_ERR_NUMERIC when a row contains NaN or Inf, and
 * with SQ_ERR_INVALID_ARG for a target outside the vocabulary. */
sq_status sq_learn_cross_entropy_forward_backward(double *logits, const int32_t *targets, int32_t rows,
                                                  int32_t vocab_size, double gradient_scale, double *loss_sum,
                                                  sq_error *err);

/* ---- fake quantization with the straight-through estimator ---- */

/* Fake-quantizes x (rows, cols) in place with sq_quant_act_fake, which works on floats: each
 * row goes through float and back, so the result matches the evaluation pipeline's quantizer.
 * bits >= 16 leaves x untouched (no rounding to float). scratch: (cols) floats. Fails with
 * SQ_ERR_NUMERIC when x contains NaN or Inf. */
sq_status sq_learn_fake_quant_forward(double *x, int64_t rows, int32_t cols, const sq_act_quant_params *params,
                                      float *scratch, sq_error *err);

/* The scale term of the quantizer's backward pass (learn_quant.c). x is the quantizer's input,
 * xq its output, both (rows, cols), grouped as params defines. */

/* epsilon (rows, cols) = (xq − x)/s(x), the rounding error in units of each group's scale. */
void sq_learn_fake_quant_errors(double *epsilon, const double *x, const double *xq, int64_t rows, int32_t cols,
                                const sq_act_quant_params *params);

/* x += s(x)·epsilon in place: the quantizer with its rounding error held fixed, a smooth
 * surrogate whose gradient is the straight-through gradient plus the scale term. */
void sq_learn_fake_quant_replay(double *x, const double *epsilon, int64_t rows, int32_t cols,
                                const sq_act_quant_params *params);

/* d_x += the scale term for d_x = dL/dxq on entry: dL/ds = Σ d_x·(xq − x)/s per group, passed
 * to the elements that set the group's range. bits >= 16 adds nothing. */
void sq_learn_fake_quant_scale_backward(double *d_x, const double *x, const double *xq, int64_t rows, int32_t cols,
                                        const sq_act_quant_params *params);

#endif
