/* Allocation, validation, copying and release of sq_model. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest tensor accepted, in floats: keeps every byte offset inside a 32-bit WebAssembly
 * address space and catches absurd dimensions read from corrupt files. */
#define SQ_MAX_TENSOR_FLOATS ((size_t)1 << 29)

sq_status sq_config_validate(const sq_config *c, sq_error *err) {
    struct { const char *name; int32_t value; } dims[] = {
        {"dim", c->dim}, {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
        {"n_heads", c->n_heads}, {"n_kv_heads", c->n_kv_heads}, {"head_dim", c->head_dim},
        {"vocab_size", c->vocab_size}, {"context_length", c->context_length},
    };
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        if (dims[i].value <= 0) {
            return sq_error_set(err, SQ_ERR_FORMAT, "invalid model config: %s = %d, expected a positive value",
                                dims[i].name, dims[i].value);
        }
    }
    if (c->n_heads % c->n_kv_heads != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "invalid model config: n_heads = %d is not a multiple of n_kv_heads = %d",
                            c->n_heads, c->n_kv_heads);
    }
    /* Consumers compute the query width n_heads * head_dim (and the smaller key/value width) in int32. */
    if ((int64_t)c->n_heads * c->head_dim > INT32_MAX) {
        return sq_error_set(err, SQ_ERR_FORMAT, "invalid model config: n_heads * head_dim = %d * %d exceeds %d",
                            c->n_heads, c->head_dim, INT32_MAX);
    }
    if (c->head_dim % 2 != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "invalid model config: head_dim = %d, expected an even value for RoPE",
                            c->head_dim);
    }
    if (c->n_layers > 4096 || c->n_heads > 4096 || c->context_length > (1 << 24)) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "invalid model config: n_layers = %d, n_heads = %d, context_length = %d exceed the supported limits (4096, 4096, 16777216)",
                            c->n_layers, c->n_heads, c->context_length);
    }
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "invalid model config: rope_theta = %g, expected a positive finite value",
                            (double)c->rope_theta);
    }
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "invalid model config: norm_eps = %g, expected a positive finite value",
                            (double)c->norm_eps);
    }
    return SQ_OK;
}

/* Allocates rows*cols zeroed floats after checking the product against the tensor limit. */
static sq_status alloc_tensor(float **out, int32_t rows, int32_t cols, const char *name, sq_error *err) {
    size_t count = (size_t)rows * (size_t)cols;
    if (rows <= 0 || cols <= 0 || count / (size_t)cols != (size_t)rows || count > SQ_MAX_TENSOR_FLOATS) {
        return sq_error_set(err, SQ_ERR_NOMEM, "tensor %s of shape (%d, %d) exceeds the limit of %zu elements",
                            name, rows, cols, SQ_MAX_TENSOR_FLOATS);
    }
    *out = calloc(count, sizeof(float));
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for tensor %s", count * sizeof(float), name);
    }
    return SQ_OK;
}

/* Returns the bytes of every fp32 weight tensor of config (a tied classifier counted once), in
 * double so that no product can overflow. */
static double weight_bytes(const sq_config *c, int tied) {
    double dim = c->dim, hidden = c->hidden_dim;
    double q_dim = (double)c->n_heads * c->head_dim, kv_dim = (double)c->n_kv_heads * c->head_dim;
    double per_layer = 2.0 * dim + 2.0 * q_dim * dim + 2.0 * kv_dim * dim + 3.0 * hidden * dim;
    double floats = (tied ? 1.0 : 2.0) * c->vocab_size * dim + dim + c->n_layers * per_layer;
    return floats * sizeof(float);
}

sq_status sq_model_alloc_weights(sq_model *model, int tied, sq_error *err) {
    const sq_config *c = &model->config;
    sq_status status = sq_config_validate(c, err);
    if (status != SQ_OK) {
        return status;
    }

    /* A 32-bit build (WebAssembly) addresses at most 4 GiB, so a larger model is rejected before
     * any of it is allocated. */
    double bytes = weight_bytes(c, tied);
    if (bytes > (double)SIZE_MAX) {
        return sq_error_set(err, SQ_ERR_NOMEM,
                            "the fp32 weights of this model (dim %d, hidden_dim %d, %d layers, vocab_size %d) need %.2f GiB, more than the %.0f GiB address space of this 32-bit build (such as WebAssembly)",
                            c->dim, c->hidden_dim, c->n_layers, c->vocab_size, bytes / 1073741824.0,
                            ((double)SIZE_MAX + 1.0) / 1073741824.0);
    }
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;

    model->layers = calloc((size_t)c->n_layers, sizeof(sq_layer_weights));
    if (model->layers == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d layers", c->n_layers);
    }
    if ((status = alloc_tensor(&model->token_embedding, c->vocab_size, c->dim, "token_embedding", err)) ||
        (status = alloc_tensor(&model->final_norm, 1, c->dim, "final_norm", err))) {
        return status;
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        if ((status = alloc_tensor(&w->attn_norm, 1, c->dim, "attn_norm", err)) ||
            (status = alloc_tensor(&w->wq, q_dim, c->dim, "wq", err)) ||
            (status = alloc_tensor(&w->wk, kv_dim, c->dim, "wk", err)) ||
            (status = alloc_tensor(&w->wv, kv_dim, c->dim, "wv", err)) ||
            (status = alloc_tensor(&w->wo, c->dim, q_dim, "wo", err)) ||
            (status = alloc_tensor(&w->ffn_norm, 1, c->dim, "ffn_norm", err)) ||
            (status = alloc_tensor(&w->w_gate, c->hidden_dim, c->dim, "w_gate", err)) ||
            (status = alloc_tensor(&w->w_up, c->hidden_dim, c->dim, "w_up", err)) ||
            (status = alloc_tensor(&w->w_down, c->dim, c->hidden_dim, "w_down", err))) {
            return status;
        }
    }
    model->tied_classifier = tied ? 1 : 0;
    if (tied) {
        model->classifier = model->token_embedding;
        return SQ_OK;
    }
    return alloc_tensor(&model->classifier, c->vocab_size, c->dim, "classifier", err);
}

sq_status sq_model_untie_classifier(sq_model *model, sq_error *err) {
    if (!model->tied_classifier) {
        return SQ_OK;
    }
    const sq_config *c = &model->config;
    float *copy = NULL;
    sq_status status = alloc_tensor(&copy, c->vocab_size, c->dim, "classifier", err);
    if (status != SQ_OK) {
        return status;
    }
    memcpy(copy, model->token_embedding, (size_t)c->vocab_size * (size_t)c->dim * sizeof(float));
    model->classifier = copy;
    model->tied_classifier = 0;
    return SQ_OK;
}

static char *duplicate_string(const char *s) {
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

static void copy_tensor(float *dst, const float *src, int32_t rows, int32_t cols) {
    memcpy(dst, src, (size_t)rows * (size_t)cols * sizeof(float));
}

sq_status sq_model_clone(const sq_model *src, sq_model *dst, sq_error *err) {
    memset(dst, 0, sizeof(*dst));
    dst->config = src->config;
    dst->format = src->format;
    sq_status status = sq_model_alloc_weights(dst, src->tied_classifier, err);
    if (status != SQ_OK) {
        sq_model_free(dst);
        return status;
    }

    const sq_config *c = &src->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    copy_tensor(dst->token_embedding, src->token_embedding, c->vocab_size, c->dim);
    copy_tensor(dst->final_norm, src->final_norm, 1, c->dim);
    if (!src->tied_classifier) {
        copy_tensor(dst->classifier, src->classifier, c->vocab_size, c->dim);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *a = &src->layers[l];
        sq_layer_weights *b = &dst->layers[l];
        copy_tensor(b->attn_norm, a->attn_norm, 1, c->dim);
        copy_tensor(b->wq, a->wq, q_dim, c->dim);
        copy_tensor(b->wk, a->wk, kv_dim, c->dim);
        copy_tensor(b->wv, a->wv, kv_dim, c->dim);
        copy_tensor(b->wo, a->wo, c->dim, q_dim);
        copy_tensor(b->ffn_norm, a->ffn_norm, 1, c->dim);
        copy_tensor(b->w_gate, a->w_gate, c->hidden_dim, c->dim);
        copy_tensor(b->w_up, a->w_up, c->hidden_dim, c->dim);
        copy_tensor(b->w_down, a->w_down, c->dim, c->hidden_dim);
    }

    if (src->tokenizer != NULL) {
        status = sq_tokenizer_clone(src->tokenizer, &dst->tokenizer, err);
        if (status != SQ_OK) {
            sq_model_free(dst);
            return status;
        }
    }
    dst->chat_template = duplicate_string(src->chat_template);
    dst->name = duplicate_string(src->name);
    if ((src->chat_template != NULL && dst->chat_template == NULL) || (src->name != NULL && dst->name == NULL)) {
        sq_model_free(dst);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot copy the model metadata strings");
    }
    return SQ_OK;
}

void sq_model_free(sq_model *model) {
    if (model == NULL) {
        return;
    }
    if (model->layers != NULL) {
        for (int32_t l = 0; l < model->config.n_layers; l++) {
            sq_layer_weights *w = &model->layers[l];
            free(w->attn_norm);
            free(w->wq);
            free(w->wk);
            free(w->wv);
            free(w->wo);
            free(w->ffn_norm);
            free(w->w_gate);
            free(w->w_up);
            free(w->w_down);
        }
        free(model->layers);
    }
    if (!model->tied_classifier) {
        free(model->classifier);
    }
    free(model->token_embedding);
    free(model->final_norm);
    sq_tokenizer_free(model->tokenizer);
    free(model->chat_template);
    free(model->name);
    memset(model, 0, sizeof(*model));
}

size_t sq_model_parameter_count(const sq_model *model) {
    const sq_config *c = &model->config;
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t per_layer = 2 * dim + 2 * q_dim * dim + 2 * kv_dim * dim + 3 * (size_t)c->hidden_dim * dim;
    size_t total = per_layer * (size_t)c->n_layers + dim + (size_t)c->vocab_size * dim;
    if (!model->tied_classifier) {
        total += (size_t)c->vocab_size * dim;
    }
    return total;
}

static sq_status check_tensor(const float *data, size_t count, const char *name, int32_t layer, sq_error *err) {
    /* Scans the exponent bits first (vectorizes well), then locates the first bad value. */
    uint32_t any_bad = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &data[i], sizeof(bits));
        any_bad |= (bits & 0x7f800000u) == 0x7f800000u;
    }
    if (!any_bad) {
        return SQ_OK;
    }
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(data[i])) {
            return sq_error_set(err, SQ_ERR_NUMERIC, "weight %s (layer %d) has a non-finite value %g at index %zu",
                                name, layer, (double)data[i], i);
        }
    }
    return SQ_OK;
}

sq_status sq_model_check_finite(const sq_model *model, sq_error *err) {
    const sq_config *c = &model->config;
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t hidden = (size_t)c->hidden_dim;
    sq_status status;
    if ((status = check_tensor(model->token_embedding, (size_t)c->vocab_size * dim, "token_embedding", -1, err)) ||
        (status = check_tensor(model->final_norm, dim, "final_norm", -1, err)) ||
        (status = check_tensor(model->classifier, (size_t)c->vocab_size * dim, "classifier", -1, err))) {
        return status;
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &model->layers[l];
        if ((status = check_tensor(w->attn_norm, dim, "attn_norm", l, err)) ||
            (status = check_tensor(w->wq, q_dim * dim, "wq", l, err)) ||
            (status = check_tensor(w->wk, kv_dim * dim, "wk", l, err)) ||
            (status = check_tensor(w->wv, kv_dim * dim, "wv", l, err)) ||
            (status = check_tensor(w->wo, dim * q_dim, "wo", l, err)) ||
            (status = check_tensor(w->ffn_norm, dim, "ffn_norm", l, err)) ||
            (status = check_tensor(w->w_gate, hidden * dim, "w_gate", l, err)) ||
            (status = check_tensor(w->w_up, hidden * dim, "w_up", l, err)) ||
            (status = check_tensor(w->w_down, dim * hidden, "w_down", l, err))) {
            return status;
        }
    }
    return SQ_OK;
}
