/* Effective weights of one layer for learning with weight quantization:
 *   W_q' = W_q·R1, W_k' = W_k·R1, W_gate' = W_gate·R1, W_up' = W_up·R1,
 *   W_v' = R2ᵀ·(W_v·R1) per KV head (rows h·head_dim .. h·head_dim + head_dim − 1),
 *   W_o' = R1ᵀ·(W_o·R2) with R2 on the columns of every query head,
 *   W_down' = R1ᵀ·W_down,
 * each RTN fake-quantized when w_bits < 16 (straight-through: dL/dW' passes unchanged to the
 * unquantized product). The rotation gradients then follow from dL/dW':
 *   W' = W·R      gives dR += Wᵀ·dW';
 *   W' = Rᵀ·U     gives dR += U·dW'ᵀ and dU = R·dW'. */
#include <stdlib.h>
#include <string.h>

#include "learn/learn_internal.h"
#include "learn/learn_matmul.h"

static void widen(double *dst, const float *src, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        dst[i] = (double)src[i];
    }
}

static void add_into(double *dst, const double *src, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        dst[i] += src[i];
    }
}

/* out (rows, D) = W (rows, D)·R1 for a frozen weight W. */
static sq_status right_r1(sq_learn_network *net, double *out, const float *w, int32_t rows, const double *r1,
                          sq_error *err) {
    int32_t D = net->model->config.dim;
    widen(net->effective.frozen, w, (int64_t)rows * D);
    return sq_learn_matmul_nn_f64(net->pool, out, net->effective.frozen, r1, rows, D, D, err);
}

sq_status sq_learn_effective_build(sq_learn_network *net, int32_t layer, const double *r1, const double *r2,
                                   sq_error *err) {
    const sq_config *c = &net->model->config;
    const sq_layer_weights *w = &net->model->layers[layer];
    sq_learn_effective *e = &net->effective;
    int32_t D = c->dim;
    int32_t hd = c->head_dim;
    int32_t Q = c->n_heads * hd;
    int32_t K = c->n_kv_heads * hd;
    int32_t H = c->hidden_dim;
    sq_status status;

    /* inputs rotated by R1: q, k, gate, up, and v before R2 */
    if ((status = right_r1(net, e->wq, w->wq, Q, r1, err)) || (status = right_r1(net, e->wk, w->wk, K, r1, err)) ||
        (status = right_r1(net, e->w_gate, w->w_gate, H, r1, err)) ||
        (status = right_r1(net, e->w_up, w->w_up, H, r1, err)) ||
        (status = right_r1(net, e->v_rotated, w->wv, K, r1, err))) {
        return status;
    }

    /* v: R2ᵀ on the rows of every KV head */
    memset(e->wv, 0, (size_t)K * (size_t)D * sizeof(double));
    for (int32_t g = 0; g < c->n_kv_heads; g++) {
        int64_t offset = (int64_t)g * hd * D;
        sq_learn_matmul_tn_accumulate(net->pool, e->wv + offset, r2, e->v_rotated + offset, hd, hd, D);
    }

    /* o: R2 on the columns of every query head (rows of hd in the (D·n_heads, hd) view), then R1ᵀ */
    widen(e->frozen, w->wo, (int64_t)D * Q);
    status = sq_learn_matmul_nn_f64(net->pool, e->o_rotated, e->frozen, r2, D * c->n_heads, hd, hd, err);
    if (status != SQ_OK) {
        return status;
    }
    memset(e->wo, 0, (size_t)D * (size_t)Q * sizeof(double));
    sq_learn_matmul_tn_accumulate(net->pool, e->wo, r1, e->o_rotated, D, D, Q);

    /* down: R1ᵀ on the output side (R4 is already folded into the frozen weight) */
    widen(e->frozen, w->w_down, (int64_t)D * H);
    memset(e->w_down, 0, (size_t)D * (size_t)H * sizeof(double));
    sq_learn_matmul_tn_accumulate(net->pool, e->w_down, r1, e->frozen, D, D, H);

    if ((status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_WQ, e->wq, Q, D, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_WK, e->wk, K, D, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_WV, e->wv, K, D, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_WO, e->wo, D, Q, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_W_GATE, e->w_gate, H, D, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_W_UP, e->w_up, H, D, NULL, err)) ||
        (status = sq_learn_quantize_site(net, layer, SQ_LEARN_SITE_W_DOWN, e->w_down, D, H, NULL, err))) {
        return status;
    }

    memset(e->d_wq, 0, (size_t)Q * (size_t)D * sizeof(double));
    memset(e->d_wk, 0, (size_t)K * (size_t)D * sizeof(double));
    memset(e->d_wv, 0, (size_t)K * (size_t)D * sizeof(double));
    memset(e->d_wo, 0, (size_t)D * (size_t)Q * sizeof(double));
    memset(e->d_w_gate, 0, (size_t)H * (size_t)D * sizeof(double));
    memset(e->d_w_up, 0, (size_t)H * (size_t)D * sizeof(double));
    memset(e->d_w_down, 0, (size_t)D * (size_t)H * sizeof(double));
    return SQ_OK;
}

/* grad_r1 += Wᵀ·dW' for W' = W·R1 with a frozen W (rows, D). */
static void right_r1_backward(sq_learn_network *net, double *grad_r1, const float *w, const double *d_w, int32_t rows) {
    int32_t D = net->model->config.dim;
    widen(net->effective.frozen, w, (int64_t)rows * D);
    sq_learn_matmul_tn_accumulate(net->pool, grad_r1, net->effective.frozen, d_w, rows, D, D);
}

sq_status sq_learn_effective_backward(sq_learn_network *net, int32_t layer, const double *r1, const double *r2,
                                      double *grad_r1, double *grad_r2, sq_error *err) {
    const sq_config *c = &net->model->config;
    const sq_layer_weights *w = &net->model->layers[layer];
    sq_learn_effective *e = &net->effective;
    int32_t D = c->dim;
    int32_t hd = c->head_dim;
    int32_t Q = c->n_heads * hd;
    int32_t K = c->n_kv_heads * hd;
    int32_t H = c->hidden_dim;
    sq_status status = SQ_OK;

    right_r1_backward(net, grad_r1, w->wq, e->d_wq, Q);
    right_r1_backward(net, grad_r1, w->wk, e->d_wk, K);
    right_r1_backward(net, grad_r1, w->w_gate, e->d_w_gate, H);
    right_r1_backward(net, grad_r1, w->w_up, e->d_w_up, H);

    /* v: W_v' = R2ᵀ·U per KV head with U = W_v·R1, so dR2 += U·dW'ᵀ and dU = R2·dW' */
    for (int32_t g = 0; status == SQ_OK && g < c->n_kv_heads; g++) {
        int64_t offset = (int64_t)g * hd * D;
        status = sq_learn_matmul_nt_f64(net->pool, e->small, e->v_rotated + offset, e->d_wv + offset, hd, D, hd, err);
        if (status == SQ_OK) {
            add_into(grad_r2, e->small, (int64_t)hd * hd);
            status = sq_learn_matmul_nn_f64(net->pool, e->product + offset, r2, e->d_wv + offset, hd, hd, D, err);
        }
    }
    if (status != SQ_OK) {
        return status;
    }
    right_r1_backward(net, grad_r1, w->wv, e->product, K);

    /* o: W_o' = R1ᵀ·U with U = W_o·R2 per head, so dR1 += U·dW'ᵀ, dU = R1·dW', dR2 += W_oᵀ·dU */
    status = sq_learn_matmul_nt_f64(net->pool, e->product, e->o_rotated, e->d_wo, D, Q, D, err);
    if (status != SQ_OK) {
        return status;
    }
    add_into(grad_r1, e->product, (int64_t)D * D);
    status = sq_learn_matmul_nn_f64(net->pool, e->product, r1, e->d_wo, D, D, Q, err);
    if (status != SQ_OK) {
        return status;
    }
    widen(e->frozen, w->wo, (int64_t)D * Q);
    sq_learn_matmul_tn_accumulate(net->pool, grad_r2, e->frozen, e->product, D * c->n_heads, hd, hd);

    /* down: W_down' = R1ᵀ·W_down, so dR1 += W_down·dW'ᵀ */
    widen(e->frozen, w->w_down, (int64_t)D * H);
    status = sq_learn_matmul_nt_f64(net->pool, e->product, e->frozen, e->d_w_down, D, H, D, err);
    if (status == SQ_OK) {
        add_into(grad_r1, e->product, (int64_t)D * D);
    }
    return status;
}
