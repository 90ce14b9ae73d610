/* Forward and backward pass of one transformer block for rotation learning. Row-form
 * identities used below (x is a row, R a rotation stored row-major):
 *   z = R·x as rows is x·Rᵀ (nt with R), and its backward is dR += dzᵀ·x, dx = dz·R (nn);
 *   y = Rᵀ·u as rows is u·R (nn with R), and its backward is dR += uᵀ·dy, du = dy·Rᵀ (nt).
 * With net->materialized the rotations are inside the effective weights instead, and the
 * layer only records dL/dW' for sq_learn_effective_backward. */
#include <string.h>

#include "learn/learn_internal.h"
#include "learn/learn_matmul.h"
#include "learn/learn_ops.h"

/* y (rows, out) = x (rows, in) · Wᵀ with the model's weight or the effective one. */
static sq_status linear_forward(sq_learn_network *net, double *y, const double *x, int32_t rows,
                                const float *frozen, const double *effective, int32_t in, int32_t out, sq_error *err) {
    if (net->materialized) {
        return sq_learn_matmul_nt_f64(net->pool, y, x, effective, rows, in, out, err);
    }
    return sq_learn_matmul_nt_f32(net->pool, y, x, frozen, rows, in, out, err);
}

/* d_x (rows, in) = d_y (rows, out) · W, overwriting d_x. */
static sq_status linear_backward(sq_learn_network *net, double *d_x, const double *d_y, int32_t rows,
                                 const float *frozen, const double *effective, int32_t in, int32_t out, sq_error *err) {
    if (net->materialized) {
        return sq_learn_matmul_nn_f64(net->pool, d_x, d_y, effective, rows, out, in, err);
    }
    return sq_learn_matmul_nn_f32(net->pool, d_x, d_y, frozen, rows, out, in, err);
}

static void add_into(double *dst, const double *src, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        dst[i] += src[i];
    }
}

/* Adds the scale term of a quantizer site's backward pass to d, the gradient for the site's
 * output xq (rows, cols). Does nothing unless the network learns with the scale gradient. */
static void quantizer_backward(sq_learn_network *net, sq_learn_site site, double *d, const double *xq, int64_t rows,
                               int32_t cols, const sq_act_quant_params *params) {
    if (net->site_inputs != NULL) {
        sq_learn_fake_quant_scale_backward(d, net->site_inputs + net->site_offsets[site], xq, rows, cols, params);
    }
}

static sq_status transform(sq_learn_network *net, sq_learn_transform *t, sq_hadamard_op op, double *x, int64_t rows,
                           sq_error *err) {
    return sq_learn_transform_rows(t, op, x, rows, net->pool, err);
}

sq_status sq_learn_layer_forward(sq_learn_network *net, int32_t layer, int32_t tokens, const double *r1,
                                 const double *r2, const double *h_in, double *h_out, sq_error *err) {
    const sq_config *c = &net->model->config;
    const sq_layer_weights *w = &net->model->layers[layer];
    sq_learn_layer_cache *cache = &net->cache;
    const sq_learn_effective *e = &net->effective;
    int32_t T = tokens;
    int32_t D = c->dim;
    int32_t hd = c->head_dim;
    int32_t Q = c->n_heads * hd;
    int32_t K = c->n_kv_heads * hd;
    int32_t H = c->hidden_dim;
    int on_the_fly = !net->materialized;
    int had = net->settings.mode_had;
    sq_learn_attention_shape shape = {T, c->n_heads, c->n_kv_heads, hd};
    sq_status status = SQ_OK;

    if (net->materialized) {
        status = sq_learn_effective_build(net, layer, r1, r2, err);
    }

    /* ---- attention: norm, quantization, q/k/v ---- */
    const double *input = cache->xq_attention;
    if (status == SQ_OK) {
        sq_learn_rmsnorm_forward(cache->xq_attention, cache->inverse_rms_attention, h_in, w->attn_norm, T, D,
                                 (double)c->norm_eps);
        status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_ATTENTION_INPUT, cache->xq_attention, T, D, &net->act, err);
    }
    if (status == SQ_OK && on_the_fly) {
        status = sq_learn_matmul_nt_f64(net->pool, net->z, cache->xq_attention, r1, T, D, D, err);
        input = net->z;
    }
    if (status == SQ_OK) {
        status = linear_forward(net, cache->q, input, T, w->wq, e->wq, D, Q, err);
    }
    if (status == SQ_OK) {
        status = linear_forward(net, cache->k, input, T, w->wk, e->wk, D, K, err);
    }
    if (status == SQ_OK && on_the_fly) {
        status = linear_forward(net, cache->v_before_r2, input, T, w->wv, NULL, D, K, err);
        if (status == SQ_OK) {
            status = sq_learn_matmul_nn_f64(net->pool, cache->v, cache->v_before_r2, r2, T * c->n_kv_heads, hd, hd,
                                            err);
        }
    } else if (status == SQ_OK) {
        status = linear_forward(net, cache->v, input, T, NULL, e->wv, D, K, err);
    }

    /* ---- attention: RoPE, R3, KV quantization, softmax ---- */
    if (status == SQ_OK) {
        sq_learn_rope_forward(cache->q, net->rope_cos, net->rope_sin, T, c->n_heads, hd);
        sq_learn_rope_forward(cache->k, net->rope_cos, net->rope_sin, T, c->n_kv_heads, hd);
        if (had) {
            status = transform(net, &net->r3, SQ_HADAMARD_APPLY_M, cache->q, (int64_t)T * c->n_heads, err);
            if (status == SQ_OK) {
                status = transform(net, &net->r3, SQ_HADAMARD_APPLY_M, cache->k, (int64_t)T * c->n_kv_heads, err);
            }
        }
    }
    if (status == SQ_OK) {
        status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_KEY, cache->k, T, K, &net->kv, err);
    }
    if (status == SQ_OK) {
        status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_VALUE, cache->v, T, K, &net->kv, err);
    }
    if (status == SQ_OK) {
        sq_learn_attention_forward(net->pool, cache->aq, cache->probabilities, cache->q, cache->k, cache->v, &shape);
        status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_ATTENTION_OUTPUT, cache->aq, T, Q, &net->act_heads, err);
    }

    /* ---- attention: o_proj and residual ---- */
    double *y = net->z;
    if (status == SQ_OK && on_the_fly) {
        status = sq_learn_matmul_nt_f64(net->pool, net->rotated, cache->aq, r2, T * c->n_heads, hd, hd, err);
        if (status == SQ_OK) {
            status = linear_forward(net, cache->o_out, net->rotated, T, w->wo, NULL, Q, D, err);
        }
        if (status == SQ_OK) {
            status = sq_learn_matmul_nn_f64(net->pool, y, cache->o_out, r1, T, D, D, err);
        }
    } else if (status == SQ_OK) {
        status = linear_forward(net, y, cache->aq, T, NULL, e->wo, Q, D, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    for (int64_t i = 0; i < (int64_t)T * D; i++) {
        cache->h_mid[i] = h_in[i] + y[i];
    }

    /* ---- MLP: norm, quantization, gate and up, SwiGLU, R4 ---- */
    sq_learn_rmsnorm_forward(cache->xq_mlp, cache->inverse_rms_mlp, cache->h_mid, w->ffn_norm, T, D,
                             (double)c->norm_eps);
    status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_MLP_INPUT, cache->xq_mlp, T, D, &net->act, err);
    input = cache->xq_mlp;
    if (status == SQ_OK && on_the_fly) {
        status = sq_learn_matmul_nt_f64(net->pool, net->z, cache->xq_mlp, r1, T, D, D, err);
        input = net->z;
    }
    if (status == SQ_OK) {
        status = linear_forward(net, cache->gate, input, T, w->w_gate, e->w_gate, D, H, err);
    }
    if (status == SQ_OK) {
        status = linear_forward(net, cache->up, input, T, w->w_up, e->w_up, D, H, err);
    }
    if (status == SQ_OK) {
        sq_learn_swiglu_forward(cache->down_in, cache->gate, cache->up, (int64_t)T * H);
        if (had) {
            status = transform(net, &net->r4, SQ_HADAMARD_APPLY_M, cache->down_in, T, err);
        }
    }
    if (status == SQ_OK) {
        status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_DOWN_INPUT, cache->down_in, T, H, &net->act, err);
    }

    /* ---- MLP: down_proj and residual ---- */
    y = net->rotated;
    if (status == SQ_OK && on_the_fly) {
        status = linear_forward(net, cache->down_out, cache->down_in, T, w->w_down, NULL, H, D, err);
        if (status == SQ_OK) {
            status = sq_learn_matmul_nn_f64(net->pool, y, cache->down_out, r1, T, D, D, err);
        }
    } else if (status == SQ_OK) {
        status = linear_forward(net, y, cache->down_in, T, NULL, e->w_down, H, D, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    for (int64_t i = 0; i < (int64_t)T * D; i++) {
        h_out[i] = cache->h_mid[i] + y[i];
    }
    return SQ_OK;
}

/* MLP half of the backward pass: net->d_h goes from dL/dh_out to dL/dh_mid. */
static sq_status mlp_backward(sq_learn_network *net, int32_t layer, int32_t T, const double *r1, double *grad_r1,
                              sq_error *err) {
    const sq_config *c = &net->model->config;
    const sq_layer_weights *w = &net->model->layers[layer];
    const sq_learn_layer_cache *cache = &net->cache;
    sq_learn_effective *e = &net->effective;
    int32_t D = c->dim;
    int32_t H = c->hidden_dim;
    int on_the_fly = !net->materialized;
    sq_status status = SQ_OK;

    /* down_proj: d_x = dL/d(down_proj input) */
    const double *d_y = net->d_h;
    if (on_the_fly) {
        sq_learn_matmul_tn_accumulate(net->pool, grad_r1, cache->down_out, d_y, T, D, D);
        status = sq_learn_matmul_nt_f64(net->pool, net->d_z, d_y, r1, T, D, D, err);
        if (status == SQ_OK) {
            status = linear_backward(net, net->d_x, net->d_z, T, w->w_down, NULL, H, D, err);
        }
    } else {
        sq_learn_matmul_tn_accumulate(net->pool, e->d_w_down, d_y, cache->down_in, T, D, H);
        status = linear_backward(net, net->d_x, d_y, T, NULL, e->w_down, H, D, err);
    }

    /* quantizer, then R4ᵀ and SwiGLU */
    if (status == SQ_OK) {
        quantizer_backward(net, SQ_LEARN_SITE_DOWN_INPUT, net->d_x, cache->down_in, T, H, &net->act);
    }
    if (status == SQ_OK && net->settings.mode_had) {
        status = transform(net, &net->r4, SQ_HADAMARD_APPLY_MT, net->d_x, T, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    memset(net->d_gate, 0, (size_t)T * (size_t)H * sizeof(double));
    memset(net->d_up, 0, (size_t)T * (size_t)H * sizeof(double));
    sq_learn_swiglu_backward(net->d_gate, net->d_up, net->d_x, cache->gate, cache->up, (int64_t)T * H);

    /* gate and up: d_z = dL/d(their input) */
    status = linear_backward(net, net->d_z, net->d_gate, T, w->w_gate, e->w_gate, D, H, err);
    if (status == SQ_OK) {
        status = linear_backward(net, net->d_tmp, net->d_up, T, w->w_up, e->w_up, D, H, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    add_into(net->d_z, net->d_tmp, (int64_t)T * D);
    double *d_xq = net->d_z;
    if (on_the_fly) {
        sq_learn_matmul_tn_accumulate(net->pool, grad_r1, net->d_z, cache->xq_mlp, T, D, D);
        status = sq_learn_matmul_nn_f64(net->pool, net->d_x, net->d_z, r1, T, D, D, err);
        d_xq = net->d_x;
    } else {
        sq_learn_matmul_tn_accumulate(net->pool, e->d_w_gate, net->d_gate, cache->xq_mlp, T, H, D);
        sq_learn_matmul_tn_accumulate(net->pool, e->d_w_up, net->d_up, cache->xq_mlp, T, H, D);
    }

    /* quantizer, then the norm; the residual path keeps d_h */
    if (status == SQ_OK) {
        quantizer_backward(net, SQ_LEARN_SITE_MLP_INPUT, d_xq, cache->xq_mlp, T, D, &net->act);
        sq_learn_rmsnorm_backward(net->d_h, d_xq, cache->h_mid, cache->inverse_rms_mlp, w->ffn_norm, T, D);
    }
    return status;
}

/* Attention half of the backward pass: net->d_h goes from dL/dh_mid to dL/dh_in. */
static sq_status attention_backward(sq_learn_network *net, int32_t layer, int32_t T, const double *r1,
                                    const double *r2, const double *h_in, double *grad_r1, double *grad_r2,
                                    sq_error *err) {
    const sq_config *c = &net->model->config;
    const sq_layer_weights *w = &net->model->layers[layer];
    const sq_learn_layer_cache *cache = &net->cache;
    sq_learn_effective *e = &net->effective;
    int32_t D = c->dim;
    int32_t hd = c->head_dim;
    int32_t Q = c->n_heads * hd;
    int32_t K = c->n_kv_heads * hd;
    int on_the_fly = !net->materialized;
    sq_learn_attention_shape shape = {T, c->n_heads, c->n_kv_heads, hd};
    sq_status status = SQ_OK;

    /* o_proj: d_x = dL/d(attention output) */
    const double *d_y = net->d_h;
    if (on_the_fly) {
        sq_learn_matmul_tn_accumulate(net->pool, grad_r1, cache->o_out, d_y, T, D, D);
        status = sq_learn_matmul_nt_f64(net->pool, net->d_z, d_y, r1, T, D, D, err);
        if (status == SQ_OK) {
            status = linear_backward(net, net->d_tmp, net->d_z, T, w->wo, NULL, Q, D, err);
        }
        if (status == SQ_OK) {
            sq_learn_matmul_tn_accumulate(net->pool, grad_r2, net->d_tmp, cache->aq, T * c->n_heads, hd, hd);
            status = sq_learn_matmul_nn_f64(net->pool, net->d_x, net->d_tmp, r2, T * c->n_heads, hd, hd, err);
        }
    } else {
        sq_learn_matmul_tn_accumulate(net->pool, e->d_wo, d_y, cache->aq, T, D, Q);
        status = linear_backward(net, net->d_x, d_y, T, NULL, e->wo, Q, D, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    quantizer_backward(net, SQ_LEARN_SITE_ATTENTION_OUTPUT, net->d_x, cache->aq, T, Q, &net->act_heads);

    /* softmax attention and the KV quantizers, then R3ᵀ and RoPE backward */
    memset(net->d_q, 0, (size_t)T * (size_t)Q * sizeof(double));
    memset(net->d_k, 0, (size_t)T * (size_t)K * sizeof(double));
    memset(net->d_v, 0, (size_t)T * (size_t)K * sizeof(double));
    sq_learn_attention_backward(net->pool, net->d_q, net->d_k, net->d_v, net->d_x, cache->probabilities, cache->q,
                                cache->k, cache->v, &shape);
    quantizer_backward(net, SQ_LEARN_SITE_KEY, net->d_k, cache->k, T, K, &net->kv);
    quantizer_backward(net, SQ_LEARN_SITE_VALUE, net->d_v, cache->v, T, K, &net->kv);
    if (net->settings.mode_had) {
        status = transform(net, &net->r3, SQ_HADAMARD_APPLY_MT, net->d_q, (int64_t)T * c->n_heads, err);
        if (status == SQ_OK) {
            status = transform(net, &net->r3, SQ_HADAMARD_APPLY_MT, net->d_k, (int64_t)T * c->n_kv_heads, err);
        }
        if (status != SQ_OK) {
            return status;
        }
    }
    sq_learn_rope_backward(net->d_q, net->rope_cos, net->rope_sin, T, c->n_heads, hd);
    sq_learn_rope_backward(net->d_k, net->rope_cos, net->rope_sin, T, c->n_kv_heads, hd);

    /* R2 on v, then q/k/v: d_z = dL/d(their input) */
    const double *d_v_projection = net->d_v;
    if (on_the_fly) {
        sq_learn_matmul_tn_accumulate(net->pool, grad_r2, cache->v_before_r2, net->d_v, T * c->n_kv_heads, hd, hd);
        status = sq_learn_matmul_nt_f64(net->pool, net->d_tmp, net->d_v, r2, T * c->n_kv_heads, hd, hd, err);
        d_v_projection = net->d_tmp;
    }
    if (status == SQ_OK) {
        status = linear_backward(net, net->d_z, net->d_q, T, w->wq, e->wq, D, Q, err);
    }
    if (status == SQ_OK) {
        status = linear_backward(net, net->d_x, net->d_k, T, w->wk, e->wk, D, K, err);
        add_into(net->d_z, net->d_x, (int64_t)T * D);
    }
    if (status == SQ_OK) {
        status = linear_backward(net, net->d_x, d_v_projection, T, w->wv, e->wv, D, K, err);
        add_into(net->d_z, net->d_x, (int64_t)T * D);
    }
    if (status != SQ_OK) {
        return status;
    }
    double *d_xq = net->d_z;
    if (on_the_fly) {
        sq_learn_matmul_tn_accumulate(net->pool, grad_r1, net->d_z, cache->xq_attention, T, D, D);
        status = sq_learn_matmul_nn_f64(net->pool, net->d_x, net->d_z, r1, T, D, D, err);
        d_xq = net->d_x;
    } else {
        sq_learn_matmul_tn_accumulate(net->pool, e->d_wq, net->d_q, cache->xq_attention, T, Q, D);
        sq_learn_matmul_tn_accumulate(net->pool, e->d_wk, net->d_k, cache->xq_attention, T, K, D);
        sq_learn_matmul_tn_accumulate(net->pool, e->d_wv, net->d_v, cache->xq_attention, T, K, D);
    }

    /* quantizer, then the norm; the residual path keeps d_h */
    if (status == SQ_OK) {
        quantizer_backward(net, SQ_LEARN_SITE_ATTENTION_INPUT, d_xq, cache->xq_attention, T, D, &net->act);
        sq_learn_rmsnorm_backward(net->d_h, d_xq, h_in, cache->inverse_rms_attention, w->attn_norm, T, D);
    }
    return status;
}

sq_status sq_learn_layer_backward(sq_learn_network *net, int32_t layer, int32_t tokens, const double *r1,
                                  const double *r2, const double *h_in, double *grad_r1, double *grad_r2,
                                  sq_error *err) {
    sq_status status = mlp_backward(net, layer, tokens, r1, grad_r1, err);
    if (status == SQ_OK) {
        status = attention_backward(net, layer, tokens, r1, r2, h_in, grad_r1, grad_r2, err);
    }
    if (status == SQ_OK && net->materialized) {
        status = sq_learn_effective_backward(net, layer, r1, r2, grad_r1, grad_r2, err);
    }
    return status;
}
