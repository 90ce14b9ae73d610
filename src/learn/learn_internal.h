/* The state shared by the files of the training pass (learn_network.c, learn_layer.c,
 * learn_weights.c). Shapes use T = max_tokens, D = dim, Q = n_heads·head_dim,
 * K = n_kv_heads·head_dim, H = hidden_dim. Not a public interface. */
#ifndef SQ_LEARN_LEARN_INTERNAL_H
#define SQ_LEARN_LEARN_INTERNAL_H

#include "hadamard/hadamard_plan.h"
#include "learn/learn_network.h"
#include "learn/learn_transform.h"
#include "quant/quant_act.h"

/* The quantizers of a layer, in the order of their error buffers (see learn_noise.c). */
typedef enum sq_learn_site {
    SQ_LEARN_SITE_ATTENTION_INPUT = 0, /* (T, D) */
    SQ_LEARN_SITE_KEY = 1,             /* (T, K) */
    SQ_LEARN_SITE_VALUE = 2,           /* (T, K) */
    SQ_LEARN_SITE_ATTENTION_OUTPUT = 3, /* (T, Q) */
    SQ_LEARN_SITE_MLP_INPUT = 4,       /* (T, D) */
    SQ_LEARN_SITE_DOWN_INPUT = 5,      /* (T, H) */
    SQ_LEARN_SITE_WQ = 6,              /* (Q, D) effective weights, with weight quantization */
    SQ_LEARN_SITE_WK = 7,              /* (K, D) */
    SQ_LEARN_SITE_WV = 8,              /* (K, D) */
    SQ_LEARN_SITE_WO = 9,              /* (D, Q) */
    SQ_LEARN_SITE_W_GATE = 10,         /* (H, D) */
    SQ_LEARN_SITE_W_UP = 11,           /* (H, D) */
    SQ_LEARN_SITE_W_DOWN = 12,         /* (D, H) */
    SQ_LEARN_SITE_COUNT = 13,
} sq_learn_site;

/* What the backward pass of one layer reads, written by its forward pass. */
typedef struct sq_learn_layer_cache {
    double *inverse_rms_attention; /* (T) */
    double *xq_attention;          /* (T, D) quantized normalized input of q, k, v */
    double *v_before_r2;           /* (T, K) v_proj output before R2 (rotations on the fly only) */
    double *q;                     /* (T, Q) queries after RoPE and R3 */
    double *k;                     /* (T, K) keys after RoPE, R3 and quantization */
    double *v;                     /* (T, K) values after R2 and quantization */
    double *probabilities;         /* (n_heads, T, T) attention weights */
    double *aq;                    /* (T, Q) quantized attention output (o_proj input) */
    double *o_out;                 /* (T, D) o_proj output before R1ᵀ (rotations on the fly only) */
    double *h_mid;                 /* (T, D) residual stream after attention */
    double *inverse_rms_mlp;       /* (T) */
    double *xq_mlp;                /* (T, D) quantized normalized input of gate and up */
    double *gate;                  /* (T, H) */
    double *up;                    /* (T, H) */
    double *down_in;               /* (T, H) quantized down_proj input, after R4 */
    double *down_out;              /* (T, D) down_proj output before R1ᵀ (rotations on the fly only) */
} sq_learn_layer_cache;

/* One layer's effective weights W' = L·W·R and their gradients, for weight quantization. */
typedef struct sq_learn_effective {
    double *wq, *wk, *wv, *wo, *w_gate, *w_up, *w_down;       /* like the model's, (out, in) */
    double *d_wq, *d_wk, *d_wv, *d_wo, *d_w_gate, *d_w_up, *d_w_down;
    double *v_rotated;  /* (K, D) W_v·R1, before R2ᵀ */
    double *o_rotated;  /* (D, Q) W_o·R2 per head, before R1ᵀ */
    double *frozen;     /* (D·max(Q, H)) one frozen weight widened to double */
    double *product;    /* (D·max(D, Q)) intermediate products of the gradient */
    double *small;      /* (head_dim, head_dim) */
    float *quant;       /* (D·max(Q, H)) one matrix in float for the RTN quantizer */
} sq_learn_effective;

struct sq_learn_network {
    const sq_model *model;
    sq_learn_settings settings;
    sq_threadpool *pool;
    int32_t max_tokens;
    int materialized; /* 1: effective weights built explicitly (weight quantization or forced) */

    sq_act_quant_params act;       /* q/k/v, gate/up and down_proj inputs */
    sq_act_quant_params act_heads; /* o_proj input, groups of head_dim */
    sq_act_quant_params kv;        /* keys and values */

    sq_hadamard_plan *r3_plan; /* NULL in mode nohad */
    sq_hadamard_plan *r4_plan;
    sq_learn_transform r3;
    sq_learn_transform r4;

    double *rope_cos; /* (T, head_dim / 2) */
    double *rope_sin;

    double *layer_inputs;      /* (n_layers + 1, T, D); the last is the final residual stream */
    sq_learn_layer_cache cache;
    sq_learn_effective effective;

    /* forward scratch */
    double *x_norm;        /* (T, D) normalized final residual stream */
    double *inverse_rms;   /* (T) of the final norm */
    double *z;             /* (T, max(D, Q)) */
    double *rotated;       /* (T, max(D, Q)) */
    double *h_scratch;     /* (T, D) layer output while recomputing a layer */
    double *logits;        /* (SQ_LEARN_LOGIT_ROWS, V) */
    float *quant_row;      /* (max(D, Q, H)) */

    /* backward scratch */
    double *d_h;      /* (T, D) gradient of the residual stream */
    double *d_x;      /* (T, max(D, Q, H)) */
    double *d_z;      /* (T, D) */
    double *d_tmp;    /* (T, max(D, Q)) */
    double *d_q;      /* (T, Q) */
    double *d_k;      /* (T, K) */
    double *d_v;      /* (T, K) */
    double *d_gate;   /* (T, H) */
    double *d_up;     /* (T, H) */

    /* with settings.scale_gradient: the inputs of one layer's activation and KV quantizers,
     * recorded by its forward pass for the scale term of the backward pass, else NULL */
    double *site_inputs;
    int64_t site_offsets[SQ_LEARN_SITE_WQ]; /* of each activation or KV site in site_inputs */

    sq_learn_noise_mode noise_mode;
    double *noise;                               /* recorded quantization errors, or NULL */
    int64_t noise_offsets[SQ_LEARN_SITE_COUNT];  /* of each site within a layer's block */
    int64_t noise_layer_size;                    /* doubles per layer */

    size_t bytes;
};

/* Rows of logits computed at once by the classifier. */
#define SQ_LEARN_LOGIT_ROWS 32

/* Fake-quantizes x (rows, cols), the input of quantizer site of layer l, with the activation
 * parameters act, or with RTN at w_bits and w_group when act is NULL (an effective weight).
 * Noise mode RECORD also stores the error Q(x) − x, and REPLAY adds the stored error instead.
 * With the scale gradient, activation and KV sites store the error in units of the scale and
 * replay it as x + s(x)·ε (see learn_quant.c). */
sq_status sq_learn_quantize_site(sq_learn_network *net, int32_t layer, sq_learn_site site, double *x, int64_t rows,
                                 int32_t cols, const sq_act_quant_params *act, sq_error *err);

/* Layer l's forward pass from h_in (T, D) to h_out (T, D), filling net->cache. */
sq_status sq_learn_layer_forward(sq_learn_network *net, int32_t layer, int32_t tokens, const double *r1,
                                 const double *r2, const double *h_in, double *h_out, sq_error *err);

/* Runs layer l's backward pass. net->d_h contains dL/dh_out on entry and dL/dh_in on return.
 * Adds dL/dR1 to grad_r1 and this layer's dL/dR2 to grad_r2 (head_dim, head_dim). net->cache
 * must contain this layer's forward pass of h_in. */
sq_status sq_learn_layer_backward(sq_learn_network *net, int32_t layer, int32_t tokens, const double *r1,
                                  const double *r2, const double *h_in, double *grad_r1, double *grad_r2,
                                  sq_error *err);

/* Builds layer l's effective weights into net->effective (and fake-quantizes them when
 * w_bits < 16) and zeroes their gradients. */
sq_status sq_learn_effective_build(sq_learn_network *net, int32_t layer, const double *r1, const double *r2,
                                   sq_error *err);

/* Adds the rotation gradients implied by the effective weights' gradients of layer l. */
sq_status sq_learn_effective_backward(sq_learn_network *net, int32_t layer, const double *r1, const double *r2,
                                      double *grad_r1, double *grad_r2, sq_error *err);

#endif
