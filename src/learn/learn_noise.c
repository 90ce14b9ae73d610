/* The quantizer sites of the training pass, and the record/replay of their errors that turns
 * the quantized loss into a smooth surrogate for checking the straight-through gradient. */
#include <stdlib.h>
#include <string.h>

#include "learn/learn_internal.h"
#include "learn/learn_ops.h"
#include "quant/quant_weight.h"

/* Fake-quantizes an effective weight (rows, cols) through float with RTN, one scale per
 * output row or per w_group columns of a row. */
static sq_status quantize_weight(sq_learn_network *net, double *w, int64_t rows, int32_t cols, sq_error *err) {
    if (net->settings.w_bits >= 16) {
        return SQ_OK;
    }
    int64_t count = rows * cols;
    float *scratch = net->effective.quant;
    for (int64_t i = 0; i < count; i++) {
        scratch[i] = (float)w[i];
    }
    sq_weight_quant_params params = {net->settings.w_bits, net->settings.w_group, 0};
    sq_status status = sq_quant_weight_rtn_fake(scratch, (int)rows, cols, &params, err);
    for (int64_t i = 0; status == SQ_OK && i < count; i++) {
        w[i] = (double)scratch[i];
    }
    return status;
}

sq_status sq_learn_quantize_site(sq_learn_network *net, int32_t layer, sq_learn_site site, double *x, int64_t rows,
                                 int32_t cols, const sq_act_quant_params *act, sq_error *err) {
    int64_t count = rows * cols;
    double *noise = NULL;
    if (net->noise_mode != SQ_LEARN_NOISE_OFF) {
        noise = net->noise + layer * net->noise_layer_size + net->noise_offsets[site];
    }
    const double *input = NULL;
    if (act != NULL && net->site_inputs != NULL) {
        double *copy = net->site_inputs + net->site_offsets[site];
        memcpy(copy, x, (size_t)count * sizeof(double));
        input = copy;
    }

    if (net->noise_mode == SQ_LEARN_NOISE_REPLAY) {
        if (input != NULL) {
            sq_learn_fake_quant_replay(x, noise, rows, cols, act);
            return SQ_OK;
        }
        for (int64_t i = 0; i < count; i++) {
            x[i] += noise[i];
        }
        return SQ_OK;
    }
    if (noise != NULL && input == NULL) {
        memcpy(noise, x, (size_t)count * sizeof(double));
    }
    sq_status status = act != NULL ? sq_learn_fake_quant_forward(x, rows, cols, act, net->quant_row, err)
                                   : quantize_weight(net, x, rows, cols, err);
    if (status == SQ_OK && noise != NULL && input != NULL) {
        sq_learn_fake_quant_errors(noise, input, x, rows, cols, act);
    } else if (status == SQ_OK && noise != NULL) {
        for (int64_t i = 0; i < count; i++) {
            noise[i] = x[i] - noise[i];
        }
    }
    return status;
}

sq_status sq_learn_network_set_noise_mode(sq_learn_network *net, sq_learn_noise_mode mode, sq_error *err) {
    if (mode != SQ_LEARN_NOISE_OFF && net->noise == NULL) {
        const sq_config *c = &net->model->config;
        int64_t T = net->max_tokens;
        int64_t D = c->dim;
        int64_t Q = (int64_t)c->n_heads * c->head_dim;
        int64_t K = (int64_t)c->n_kv_heads * c->head_dim;
        int64_t H = c->hidden_dim;
        int64_t sizes[SQ_LEARN_SITE_COUNT] = {T * D, T * K, T * K, T * Q, T * D, T * H,
                                              Q * D, K * D, K * D, D * Q, H * D, H * D, D * H};
        int sites = net->materialized ? SQ_LEARN_SITE_COUNT : SQ_LEARN_SITE_WQ;
        int64_t offset = 0;
        for (int s = 0; s < SQ_LEARN_SITE_COUNT; s++) {
            net->noise_offsets[s] = offset;
            offset += s < sites ? sizes[s] : 0;
        }
        net->noise_layer_size = offset;
        size_t count = (size_t)(offset * c->n_layers);
        net->noise = calloc(count > 0 ? count : 1, sizeof(double));
        if (net->noise == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the quantization errors",
                                count * sizeof(double));
        }
        net->bytes += count * sizeof(double);
    }
    net->noise_mode = mode;
    return SQ_OK;
}
