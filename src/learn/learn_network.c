/* The training pass over one window: embedding, the layers (their inputs kept, their other
 * activations recomputed layer by layer during the backward pass), the classifier and the
 * cross-entropy, then the backward pass in reverse order. */
#include "learn/learn_network.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "learn/learn_internal.h"
#include "learn/learn_matmul.h"
#include "learn/learn_ops.h"
#include "rotation/fuse.h"

sq_learn_settings sq_learn_settings_default(void) {
    sq_learn_settings s = {0};
    s.w_bits = 16;
    s.a_bits = 4;
    s.kv_bits = 4;
    s.a_clip = 1.0f;
    s.kv_clip = 1.0f;
    s.mode_had = 1;
    return s;
}

typedef struct r4_weight_context {
    const sq_hadamard_plan *plan;
    float *scratch;
} r4_weight_context;

static void apply_r4_to_row(void *context, float *x, int32_t n) {
    const r4_weight_context *r4 = context;
    (void)n;
    sq_hadamard_plan_apply(r4->plan, SQ_HADAMARD_APPLY_M, x, r4->scratch, NULL);
}

sq_status sq_learn_prepare_model(sq_model *model, int mode_had, uint64_t online_seed, const sq_logger *logger,
                                 sq_error *err) {
    sq_status status = sq_rotation_fuse_norms(model, err);
    if (status != SQ_OK || !mode_had) {
        return status;
    }
    sq_hadamard_plan *plan = NULL;
    status = sq_hadamard_plan_create(model->config.hidden_dim, online_seed, logger, &plan, err);
    if (status != SQ_OK) {
        return status;
    }
    size_t floats = sq_hadamard_plan_scratch_floats(plan);
    r4_weight_context context = {plan, malloc((floats > 0 ? floats : 1) * sizeof(float))};
    if (context.scratch == NULL) {
        status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the scratch space of the R4 transform");
    } else {
        sq_rotation_apply_r4(model, apply_r4_to_row, &context);
    }
    free(context.scratch);
    sq_hadamard_plan_free(plan);
    return status;
}

/* ---- creation ---- */

/* Allocates count doubles (zeroed) and counts them in *bytes; NULL on failure. */
static double *alloc_doubles(size_t count, size_t *bytes) {
    *bytes += count * sizeof(double);
    return calloc(count > 0 ? count : 1, sizeof(double));
}

static size_t max3(size_t a, size_t b, size_t c) {
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

static int alloc_cache(sq_learn_network *net) {
    const sq_config *c = &net->model->config;
    size_t T = (size_t)net->max_tokens;
    size_t D = (size_t)c->dim;
    size_t Q = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t K = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t H = (size_t)c->hidden_dim;
    size_t *b = &net->bytes;
    sq_learn_layer_cache *cache = &net->cache;
    cache->inverse_rms_attention = alloc_doubles(T, b);
    cache->xq_attention = alloc_doubles(T * D, b);
    cache->v_before_r2 = alloc_doubles(T * K, b);
    cache->q = alloc_doubles(T * Q, b);
    cache->k = alloc_doubles(T * K, b);
    cache->v = alloc_doubles(T * K, b);
    cache->probabilities = alloc_doubles((size_t)c->n_heads * T * T, b);
    cache->aq = alloc_doubles(T * Q, b);
    cache->o_out = alloc_doubles(T * D, b);
    cache->h_mid = alloc_doubles(T * D, b);
    cache->inverse_rms_mlp = alloc_doubles(T, b);
    cache->xq_mlp = alloc_doubles(T * D, b);
    cache->gate = alloc_doubles(T * H, b);
    cache->up = alloc_doubles(T * H, b);
    cache->down_in = alloc_doubles(T * H, b);
    cache->down_out = alloc_doubles(T * D, b);
    return cache->inverse_rms_attention && cache->xq_attention && cache->v_before_r2 && cache->q && cache->k &&
           cache->v && cache->probabilities && cache->aq && cache->o_out && cache->h_mid && cache->inverse_rms_mlp &&
           cache->xq_mlp && cache->gate && cache->up && cache->down_in && cache->down_out;
}

static int alloc_effective(sq_learn_network *net) {
    const sq_config *c = &net->model->config;
    size_t D = (size_t)c->dim;
    size_t hd = (size_t)c->head_dim;
    size_t Q = (size_t)c->n_heads * hd;
    size_t K = (size_t)c->n_kv_heads * hd;
    size_t H = (size_t)c->hidden_dim;
    size_t *b = &net->bytes;
    sq_learn_effective *e = &net->effective;
    e->wq = alloc_doubles(Q * D, b);
    e->wk = alloc_doubles(K * D, b);
    e->wv = alloc_doubles(K * D, b);
    e->wo = alloc_doubles(D * Q, b);
    e->w_gate = alloc_doubles(H * D, b);
    e->w_up = alloc_doubles(H * D, b);
    e->w_down = alloc_doubles(D * H, b);

    e->d_wq = alloc_doubles(Q * D, b);
    e->d_wk = alloc_doubles(K * D, b);
    e->d_wv = alloc_doubles(K * D, b);
    e->d_wo = alloc_doubles(D * Q, b);
    e->d_w_gate = alloc_doubles(H * D, b);
    e->d_w_up = alloc_doubles(H * D, b);
    e->d_w_down = alloc_doubles(D * H, b);

    e->v_rotated = alloc_doubles(K * D, b);
    e->o_rotated = alloc_doubles(D * Q, b);
    e->frozen = alloc_doubles(D * (Q > H ? Q : H), b);
    e->product = alloc_doubles(D * (D > Q ? D : Q), b);
    e->small = alloc_doubles(hd * hd, b);
    size_t quant_floats = D * (Q > H ? Q : H);
    e->quant = malloc(quant_floats * sizeof(float));
    net->bytes += quant_floats * sizeof(float);

    return e->wq && e->wk && e->wv && e->wo && e->w_gate && e->w_up && e->w_down && e->d_wq && e->d_wk && e->d_wv &&
           e->d_wo && e->d_w_gate && e->d_w_up && e->d_w_down && e->v_rotated && e->o_rotated && e->frozen &&
           e->product && e->small && e->quant;
}

static int alloc_buffers(sq_learn_network *net) {
    const sq_config *c = &net->model->config;
    size_t T = (size_t)net->max_tokens;
    size_t D = (size_t)c->dim;
    size_t Q = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t K = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t H = (size_t)c->hidden_dim;
    size_t half = (size_t)c->head_dim / 2;
    size_t *b = &net->bytes;
    size_t wide = D > Q ? D : Q;
    net->rope_cos = alloc_doubles(T * half, b);
    net->rope_sin = alloc_doubles(T * half, b);
    net->layer_inputs = alloc_doubles(((size_t)c->n_layers + 1) * T * D, b);
    net->x_norm = alloc_doubles(T * D, b);
    net->inverse_rms = alloc_doubles(T, b);
    net->z = alloc_doubles(T * wide, b);
    net->rotated = alloc_doubles(T * wide, b);
    net->h_scratch = alloc_doubles(T * D, b);
    net->logits = alloc_doubles((size_t)SQ_LEARN_LOGIT_ROWS * (size_t)c->vocab_size, b);
    size_t row_floats = max3(D, Q, H);
    net->quant_row = malloc(row_floats * sizeof(float));
    net->bytes += row_floats * sizeof(float);

    net->d_h = alloc_doubles(T * D, b);
    net->d_x = alloc_doubles(T * max3(D, Q, H), b);
    net->d_z = alloc_doubles(T * D, b);
    net->d_tmp = alloc_doubles(T * wide, b);
    net->d_q = alloc_doubles(T * Q, b);
    net->d_k = alloc_doubles(T * K, b);
    net->d_v = alloc_doubles(T * K, b);
    net->d_gate = alloc_doubles(T * H, b);
    net->d_up = alloc_doubles(T * H, b);

    if (net->settings.scale_gradient) {
        size_t sizes[SQ_LEARN_SITE_WQ] = {T * D, T * K, T * K, T * Q, T * D, T * H};
        size_t total = 0;
        for (int site = 0; site < SQ_LEARN_SITE_WQ; site++) {
            net->site_offsets[site] = (int64_t)total;
            total += sizes[site];
        }
        net->site_inputs = alloc_doubles(total, b);
        if (net->site_inputs == NULL) {
            return 0;
        }
    }

    return net->rope_cos && net->rope_sin && net->layer_inputs && net->x_norm && net->inverse_rms && net->z &&
           net->rotated && net->h_scratch && net->logits && net->quant_row && net->d_h && net->d_x && net->d_z &&
           net->d_tmp && net->d_q && net->d_k && net->d_v && net->d_gate && net->d_up;
}

sq_status sq_learn_settings_validate(const sq_learn_settings *s, const sq_config *c, sq_error *err) {
    if (s->w_bits < 2 || s->w_bits > 16 || s->a_bits < 2 || s->a_bits > 16 || s->kv_bits < 2 || s->kv_bits > 16) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid bit widths W%d A%d KV%d, expected values from 2 to 16 (16: no quantization)",
                            s->w_bits, s->a_bits, s->kv_bits);
    }
    if (s->w_group < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid --w-group %d, expected 0 (one scale per output channel) or a positive divisor "
                            "of %d, %d and %d",
                            s->w_group, c->dim, c->n_heads * c->head_dim, c->hidden_dim);
    }
    int32_t widths[3] = {c->dim, c->n_heads * c->head_dim, c->hidden_dim};
    for (int i = 0; s->w_group > 0 && i < 3; i++) {
        if (widths[i] % s->w_group != 0) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "invalid --w-group %d: it does not divide the input width %d of a linear layer; "
                                "expected 0 or a divisor of %d, %d and %d",
                                s->w_group, widths[i], c->dim, c->n_heads * c->head_dim, c->hidden_dim);
        }
    }
    sq_act_quant_params act = {s->a_bits, 0, s->a_clip, 0};
    sq_act_quant_params kv = sq_kv_quant_params(s->kv_bits, s->kv_clip, c->head_dim);
    sq_status status = sq_act_quant_params_check(&act, c->dim, err);
    if (status == SQ_OK) {
        status = sq_act_quant_params_check(&kv, c->n_kv_heads * c->head_dim, err);
    }
    return status;
}

sq_status sq_learn_network_create(const sq_model *model, const sq_learn_settings *settings, int32_t max_tokens,
                                  sq_threadpool *pool, const sq_logger *logger, sq_learn_network **out,
                                  sq_error *err) {
    const sq_config *c = &model->config;
    *out = NULL;
    if (max_tokens < 2 || max_tokens > c->context_length) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid window of %d tokens, expected 2 to the context of %d",
                            max_tokens, c->context_length);
    }
    sq_status status = sq_learn_settings_validate(settings, c, err);
    if (status != SQ_OK) {
        return status;
    }
    sq_learn_network *net = calloc(1, sizeof(*net));
    if (net == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the learning state");
    }
    net->model = model;
    net->settings = *settings;
    net->pool = pool;
    net->max_tokens = max_tokens;
    net->materialized = settings->w_bits < 16 || settings->materialize_weights;
    net->act = (sq_act_quant_params){settings->a_bits, 0, settings->a_clip, 0};
    net->act_heads = (sq_act_quant_params){settings->a_bits, 0, settings->a_clip, c->head_dim};
    net->kv = sq_kv_quant_params(settings->kv_bits, settings->kv_clip, c->head_dim);

    if (!alloc_cache(net) || !alloc_buffers(net) || (net->materialized && !alloc_effective(net))) {
        size_t bytes = net->bytes;
        sq_learn_network_free(net);
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "cannot allocate %zu bytes for learning with windows of %d tokens; use a smaller --window",
                            bytes, max_tokens);
    }

    /* Pair i of a head turns by position·theta^(-2i/head_dim), as in the forward pass. */
    int32_t half = c->head_dim / 2;
    for (int32_t pos = 0; pos < max_tokens; pos++) {
        for (int32_t i = 0; i < half; i++) {
            double angle = (double)pos * pow((double)c->rope_theta, -2.0 * (double)i / (double)c->head_dim);
            net->rope_cos[(int64_t)pos * half + i] = cos(angle);
            net->rope_sin[(int64_t)pos * half + i] = sin(angle);
        }
    }

    if (settings->mode_had) {
        status = sq_hadamard_plan_create(c->head_dim, settings->online_seed, logger, &net->r3_plan, err);
        if (status == SQ_OK) {
            status = sq_hadamard_plan_create(c->hidden_dim, settings->online_seed, logger, &net->r4_plan, err);
        }
        if (status == SQ_OK) {
            status = sq_learn_transform_init(&net->r3, net->r3_plan, err);
        }
        if (status == SQ_OK) {
            status = sq_learn_transform_init(&net->r4, net->r4_plan, err);
        }
    }
    if (status != SQ_OK) {
        sq_learn_network_free(net);
        return status;
    }
    *out = net;
    return SQ_OK;
}

void sq_learn_network_free(sq_learn_network *net) {
    if (net == NULL) {
        return;
    }
    sq_learn_layer_cache *cache = &net->cache;
    double *cache_buffers[] = {cache->inverse_rms_attention, cache->xq_attention, cache->v_before_r2, cache->q,
                               cache->k, cache->v, cache->probabilities, cache->aq, cache->o_out, cache->h_mid,
                               cache->inverse_rms_mlp, cache->xq_mlp, cache->gate, cache->up, cache->down_in,
                               cache->down_out};
    for (size_t i = 0; i < sizeof(cache_buffers) / sizeof(cache_buffers[0]); i++) {
        free(cache_buffers[i]);
    }

    sq_learn_effective *e = &net->effective;
    double *effective_buffers[] = {e->wq, e->wk, e->wv, e->wo, e->w_gate, e->w_up, e->w_down,
                                   e->d_wq, e->d_wk, e->d_wv, e->d_wo, e->d_w_gate, e->d_w_up, e->d_w_down,
                                   e->v_rotated, e->o_rotated, e->frozen, e->product, e->small};
    for (size_t i = 0; i < sizeof(effective_buffers) / sizeof(effective_buffers[0]); i++) {
        free(effective_buffers[i]);
    }
    free(e->quant);

    double *buffers[] = {net->rope_cos, net->rope_sin, net->layer_inputs, net->x_norm, net->inverse_rms,
                         net->z, net->rotated, net->h_scratch, net->logits, net->d_h, net->d_x, net->d_z,
                         net->d_tmp, net->d_q, net->d_k, net->d_v, net->d_gate, net->d_up, net->site_inputs};
    for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++) {
        free(buffers[i]);
    }
    free(net->quant_row);
    free(net->noise);
    sq_learn_transform_free(&net->r3);
    sq_learn_transform_free(&net->r4);
    sq_hadamard_plan_free(net->r3_plan);
    sq_hadamard_plan_free(net->r4_plan);
    free(net);
}

size_t sq_learn_network_bytes(const sq_learn_network *net) {
    return net->bytes;
}

/* ---- the pass ---- */

/* Writes the embedding rows of tokens (T, D) as doubles. */
static void gather_embeddings(const sq_learn_network *net, double *out, const int32_t *tokens, int32_t T) {
    int32_t D = net->model->config.dim;
    for (int32_t t = 0; t < T; t++) {
        const float *row = net->model->token_embedding + (int64_t)tokens[t] * D;
        for (int32_t i = 0; i < D; i++) {
            out[(int64_t)t * D + i] = (double)row[i];
        }
    }
}

/* Runs the classifier on the final residual stream and adds the loss of each predicted
 * position; with gradients, leaves dL/dz in net->d_z, z = R1·x_norm being the classifier's input. */
static sq_status classifier_forward_backward(sq_learn_network *net, const int32_t *tokens, int32_t T,
                                             const double *r1, int with_gradient, double *loss_sum, sq_error *err) {
    const sq_model *m = net->model;
    const sq_config *c = &m->config;
    int32_t D = c->dim;
    int32_t predicted = T - 1;
    const double *h_final = net->layer_inputs + (int64_t)c->n_layers * net->max_tokens * D;

    sq_learn_rmsnorm_forward(net->x_norm, net->inverse_rms, h_final, m->final_norm, T, D, (double)c->norm_eps);
    sq_status status = sq_learn_matmul_nt_f64(net->pool, net->z, net->x_norm, r1, predicted, D, D, err);
    if (with_gradient) {
        memset(net->d_z, 0, (size_t)T * (size_t)D * sizeof(double));
    }
    for (int32_t first = 0; status == SQ_OK && first < predicted; first += SQ_LEARN_LOGIT_ROWS) {
        int32_t rows = predicted - first < SQ_LEARN_LOGIT_ROWS ? predicted - first : SQ_LEARN_LOGIT_ROWS;
        status = sq_learn_matmul_nt_f32(net->pool, net->logits, net->z + (int64_t)first * D, m->classifier, rows, D,
                                        c->vocab_size, err);
        if (status == SQ_OK) {
            status = sq_learn_cross_entropy_forward_backward(net->logits, tokens + first + 1, rows, c->vocab_size,
                                                             1.0 / predicted, loss_sum, err);
        }
        if (status == SQ_OK && with_gradient) {
            status = sq_learn_matmul_nn_f32(net->pool, net->d_z + (int64_t)first * D, net->logits, m->classifier, rows,
                                            c->vocab_size, D, err);
        }
    }
    return status;
}

static int all_finite(const double *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(x[i])) {
            return 0;
        }
    }
    return 1;
}

sq_status sq_learn_network_loss(sq_learn_network *net, const int32_t *tokens, int32_t n_tokens, const double *r1,
                                const double *r2, double *loss, double *grad_r1, double *grad_r2, sq_error *err) {
    const sq_config *c = &net->model->config;
    int32_t T = n_tokens;
    int32_t D = c->dim;
    int64_t r2_size = (int64_t)c->head_dim * c->head_dim;
    int64_t stride = (int64_t)net->max_tokens * D; /* between layer inputs */
    int with_gradient = grad_r1 != NULL;
    if (T < 2 || T > net->max_tokens) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid window of %d tokens, expected 2 to %d", T,
                            net->max_tokens);
    }
    for (int32_t t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "token id %d at window position %d is outside the vocabulary of %d",
                                tokens[t], t, c->vocab_size);
        }
    }

    /* ---- forward ---- */
    gather_embeddings(net, net->z, tokens, T);
    sq_status status = sq_learn_matmul_nn_f64(net->pool, net->layer_inputs, net->z, r1, T, D, D, err);
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        status = sq_learn_layer_forward(net, l, T, r1, r2 + l * r2_size, net->layer_inputs + l * stride,
                                        net->layer_inputs + (l + 1) * stride, err);
    }
    double loss_sum = 0.0;
    if (status == SQ_OK) {
        status = classifier_forward_backward(net, tokens, T, r1, with_gradient, &loss_sum, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    *loss = loss_sum / (T - 1);
    if (!isfinite(*loss)) {
        return sq_error_set(err, SQ_ERR_NUMERIC, "the loss is %g, expected a finite value", *loss);
    }
    if (!with_gradient) {
        return SQ_OK;
    }

    /* ---- backward: classifier, then the layers in reverse, then the embedding ---- */
    memset(grad_r1, 0, (size_t)D * (size_t)D * sizeof(double));
    memset(grad_r2, 0, (size_t)(c->n_layers * r2_size) * sizeof(double));
    sq_learn_matmul_tn_accumulate(net->pool, grad_r1, net->d_z, net->x_norm, T - 1, D, D);
    status = sq_learn_matmul_nn_f64(net->pool, net->d_x, net->d_z, r1, T, D, D, err);
    if (status != SQ_OK) {
        return status;
    }
    memset(net->d_h, 0, (size_t)T * (size_t)D * sizeof(double));
    sq_learn_rmsnorm_backward(net->d_h, net->d_x, net->layer_inputs + c->n_layers * stride, net->inverse_rms,
                              net->model->final_norm, T, D);
    for (int32_t l = c->n_layers - 1; status == SQ_OK && l >= 0; l--) {
        const double *h_in = net->layer_inputs + l * stride;
        const double *layer_r2 = r2 + l * r2_size;
        if (l < c->n_layers - 1) {
            /* The cache still contains the last layer's activations, so recompute this one's. */
            status = sq_learn_layer_forward(net, l, T, r1, layer_r2, h_in, net->h_scratch, err);
        }
        if (status == SQ_OK) {
            status = sq_learn_layer_backward(net, l, T, r1, layer_r2, h_in, grad_r1, grad_r2 + l * r2_size, err);
        }
    }
    if (status != SQ_OK) {
        return status;
    }
    gather_embeddings(net, net->z, tokens, T);
    sq_learn_matmul_tn_accumulate(net->pool, grad_r1, net->z, net->d_h, T, D, D);

    if (!all_finite(grad_r1, (int64_t)D * D) || !all_finite(grad_r2, c->n_layers * r2_size)) {
        return sq_error_set(err, SQ_ERR_NUMERIC, "the rotation gradient contains NaN or Inf");
    }
    return SQ_OK;
}
