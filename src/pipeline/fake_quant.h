/* Simulated (fake) quantization of activations and the KV cache inside the fp32 forward pass,
 * plus the online rotations R3 and R4, installed as sq_forward hooks:
 *   - inputs of q/k/v and of gate/up: per-token activation quantization;
 *   - queries and keys after RoPE: R3 (when set); keys are then quantized per token in groups
 *     of head_dim, queries are not quantized;
 *   - values: quantized per token in groups of head_dim;
 *   - o_proj input: per-token activation quantization in groups of head_dim;
 *   - down_proj input: R4 (when set), then per-token activation quantization;
 *   - classifier input: left in full precision. */
#ifndef SQ_PIPELINE_FAKE_QUANT_H
#define SQ_PIPELINE_FAKE_QUANT_H

#include "forward/forward.h"
#include "quant/quant_act.h"
#include "rotation/fuse.h"

typedef struct sq_fake_quant {
    sq_act_quant_params act;       /* q/k/v, gate/up and down_proj inputs */
    sq_act_quant_params act_heads; /* o_proj input: act with groups of head_dim */
    sq_act_quant_params kv;        /* keys and values */
    sq_vector_transform_fn r3;     /* online transform over head_dim, or NULL */
    void *r3_context;
    sq_vector_transform_fn r4;     /* online transform over hidden_dim, or NULL */
    void *r4_context;
    int32_t head_dim;
} sq_fake_quant;

/* The sq_forward_hook_fn for a sq_fake_quant context. Parameters are validated when the
 * context is built, so quantization cannot fail here. */
void sq_fake_quant_hook(void *context, sq_forward_point point, int32_t layer, float *data, int32_t rows,
                        int32_t cols);

/* Fills fq for the given bit widths (16 or more disables a quantizer) and clip ratios, and
 * checks them against the model's dimensions. */
sq_status sq_fake_quant_init(sq_fake_quant *fq, const sq_config *config, int a_bits, int kv_bits, float a_clip,
                             float kv_clip, int a_symmetric, sq_error *err);

#endif
