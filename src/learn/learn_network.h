/* The training forward and backward pass of SpinQuant rotation learning: the loss of one
 * window of tokens as a function of R1 (dim, dim) and every layer's R2 (head_dim, head_dim),
 * and its gradient with respect to them. The model's weights are frozen.
 *
 * Model contract: sq_learn_prepare_model has fused the RMSNorm gains into the linear layers
 * (RMSNorm with a general gain is still supported) and, for mode "had", folded the weight
 * side of R4 into down_proj, with the same online seed as the network. The rotations are
 * applied on the fly in double precision, so the gradient reaches them. They act on:
 *   - embedding rows: e·R1;
 *   - the input of q, k, v, gate, up and the classifier: x ↦ W·(R1·x);
 *   - the output of o_proj and down_proj: y ↦ R1ᵀ·y;
 *   - the v_proj output: R2ᵀ per KV head, and the o_proj input: R2 per query head.
 * This equals multiplying the weights (W·R1, R1ᵀ·W, R2ᵀ·W_v, W_o·R2), but costs
 * O(tokens·dim²) per rotation instead of O(rows·dim²).
 * With weight quantization (w_bits < 16) the effective weights W' = L·W·R are built
 * explicitly for one layer at a time, RTN fake-quantized (symmetric, no clipping search, one
 * scale per output row or per group of w_group input columns), and the rotation gradients
 * follow from dL/dW' by the chain rule. The embedding and the classifier are never quantized.
 * The quantizers are straight-through, so their backward pass is the identity, plus the scale
 * term of learn_quant.c for activations and KV with scale_gradient. They sit where the
 * evaluation pipeline (pipeline/fake_quant.h) puts them:
 *   - activations per token at the q/k/v and gate/up inputs, at the o_proj input in groups
 *     of head_dim, and at the down_proj input after R4;
 *   - keys after RoPE and R3, and values, per token in groups of head_dim;
 *   - queries and the classifier input stay unquantized.
 * The loss is the mean next-token cross-entropy over positions 0..n-2 of the window, which
 * starts at position 0 (an empty KV cache).
 *
 * Memory, in doubles (T = tokens per window, D = dim, Q = n_heads·head_dim,
 * K = n_kv_heads·head_dim, H = hidden_dim, L = n_layers, V = vocab_size):
 *   - the input of every layer, kept for the backward pass: (L + 1)·T·D;
 *   - one layer's activations, recomputed layer by layer during the backward pass:
 *     T·(5D + 2Q + 3K + 3H + 2) + n_heads·T², so the attention weights grow with T²;
 *   - gradient and scratch buffers: about T·(8D + Q + 2K + 3H) + 32·V;
 *   - with weight quantization, one layer's effective weights and their gradients, 2·P with
 *     P = 2Q·D + 2K·D + 3H·D, plus about 3·D·max(D, Q, H) of products;
 *   - with scale_gradient, one layer's quantizer inputs: T·(2D + 2K + Q + H).
 * sq_learn_network_bytes reports the total: 93 MB for SmolLM2-135M at T = 256 (37 MB of it
 * layer inputs) and 9.5 MB for stories260K at T = 256. */
#ifndef SQ_LEARN_LEARN_NETWORK_H
#define SQ_LEARN_LEARN_NETWORK_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "model/model.h"

typedef struct sq_learn_settings {
    int w_bits;              /* 2..16; below 16 the effective weights are RTN fake-quantized */
    int w_group;             /* 0: one weight scale per output row; otherwise input columns per scale,
                                a divisor of dim, n_heads·head_dim and hidden_dim. No effect at w_bits 16 */
    int a_bits;              /* 2..16; 16 disables activation quantization */
    int kv_bits;             /* 2..16; 16 disables KV quantization */
    float a_clip;            /* activation clip ratio in (0, 1] */
    float kv_clip;           /* KV clip ratio in (0, 1] */
    int mode_had;            /* 1: R3 on queries and keys and R4 on the down_proj input */
    uint64_t online_seed;    /* seed of the R3/R4 random orthogonal fallback */
    int materialize_weights; /* 1: build the effective weights even at 16 bits (to test that path) */
    int scale_gradient;      /* 1: the activation and KV quantizers also pass a gradient through their
                                scales (learn_quant.c); 0: plain straight-through estimator */
} sq_learn_settings;

/* Returns W16A4KV4 with per-row weight scales (w_group 0), clip ratios 1, mode had, seed 0. */
sq_learn_settings sq_learn_settings_default(void);

/* Checks settings against a model with config c: bit widths in 2..16, w_group 0 or a divisor
 * of dim, n_heads·head_dim and hidden_dim (checked even at w_bits 16, as the evaluation
 * recipe does), and the activation and KV quantizer parameters. Fails with
 * SQ_ERR_INVALID_ARG naming the bad value and what was expected. */
sq_status sq_learn_settings_validate(const sq_learn_settings *settings, const sq_config *c, sq_error *err);

/* Fuses the norms of model (untying the classifier) and, with mode_had, replaces each
 * down_proj row w by the online transform M applied to it (W ← W·Mᵀ), M being the size
 * hidden_dim transform of sq_hadamard_plan_create(hidden_dim, online_seed). The same steps as
 * sq_recipe_apply before R1 and R2. */
sq_status sq_learn_prepare_model(sq_model *model, int mode_had, uint64_t online_seed, const sq_logger *logger,
                                 sq_error *err);

typedef struct sq_learn_network sq_learn_network;

/* How the quantizers behave, for testing the straight-through gradient. */
typedef enum sq_learn_noise_mode {
    SQ_LEARN_NOISE_OFF = 0,    /* quantize */
    SQ_LEARN_NOISE_RECORD = 1, /* quantize and store each quantizer's error Q(x) − x */
    SQ_LEARN_NOISE_REPLAY = 2, /* replace each quantizer by x + the stored error */
} sq_learn_noise_mode;

/* Allocates the buffers for windows of up to max_tokens tokens. The network keeps pointers to
 * model and pool, which must outlive it. logger (may be NULL) receives the fallback warnings
 * of the online transforms. Fails with SQ_ERR_INVALID_ARG when sq_learn_settings_validate
 * rejects settings. */
sq_status sq_learn_network_create(const sq_model *model, const sq_learn_settings *settings, int32_t max_tokens,
                                  sq_threadpool *pool, const sq_logger *logger, sq_learn_network **out,
                                  sq_error *err);

void sq_learn_network_free(sq_learn_network *network);

/* Bytes of buffers the network allocated. */
size_t sq_learn_network_bytes(const sq_learn_network *network);

/* Computes the loss of tokens (n_tokens, 2..max_tokens) with rotations r1 (dim, dim) and r2
 * (n_layers, head_dim, head_dim), row-major, into *loss. When grad_r1 is not NULL, also
 * overwrites grad_r1 (dim, dim) and grad_r2 (n_layers, head_dim, head_dim) with dL/dR1 and
 * dL/dR2. Fails with SQ_ERR_NUMERIC when an activation or the loss is NaN or Inf, and with
 * SQ_ERR_INVALID_ARG for a token outside the vocabulary. */
/* Sets the noise mode. With REPLAY the loss is a smooth function of the rotations whose
 * gradient at the recorded rotations is the straight-through gradient there, so finite
 * differences can check the backward pass with the quantizers active. The first call with
 * RECORD allocates the error buffers; REPLAY needs a recorded pass with the same window length. */
sq_status sq_learn_network_set_noise_mode(sq_learn_network *network, sq_learn_noise_mode mode, sq_error *err);

sq_status sq_learn_network_loss(sq_learn_network *network, const int32_t *tokens, int32_t n_tokens, const double *r1,
                                const double *r2, double *loss, double *grad_r1, double *grad_r2, sq_error *err);

#endif
