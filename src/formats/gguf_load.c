/* Loads a GGUF file with general.architecture = "llama" into an sq_model: configuration from
 * the llama.* keys, weights converted to fp32, the tokenizer from tokenizer.ggml.*, and the
 * chat template and name. GGUF lists dimensions fastest-first, so an (out, in) matrix has
 * ne = [in, out]; its rows are already in the (out, in) row-major order sq_model uses, and
 * llama.cpp's converter stores q and k rows in the interleaved RoPE layout, so weights are
 * copied without reordering. Not supported (rejected with SQ_ERR_UNSUPPORTED): mixtures of
 * experts, RoPE scaling, partial rotary dimensions, bias tensors and tensor types other than
 * F32, F16, BF16, Q8_0, Q4_0 and Q4_1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/dequant.h"
#include "formats/formats.h"
#include "formats/gguf_reader.h"
#include "formats/gguf_tokenizer.h"
#include "formats/loader_util.h"

enum layer_tensor {
    LAYER_ATTN_NORM,
    LAYER_Q,
    LAYER_K,
    LAYER_V,
    LAYER_OUTPUT,
    LAYER_FFN_NORM,
    LAYER_GATE,
    LAYER_UP,
    LAYER_DOWN,
    LAYER_TENSOR_COUNT,
};

static const char *const LAYER_TENSOR_NAMES[LAYER_TENSOR_COUNT] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
};

/* Shape (rows, cols) = (out, in) of a per-layer tensor; norms are (1, dim). */
static void layer_tensor_shape(const sq_config *c, int kind, int32_t *rows, int32_t *cols) {
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    switch (kind) {
    case LAYER_Q: *rows = q_dim; *cols = c->dim; break;
    case LAYER_K:
    case LAYER_V: *rows = kv_dim; *cols = c->dim; break;
    case LAYER_OUTPUT: *rows = c->dim; *cols = q_dim; break;
    case LAYER_GATE:
    case LAYER_UP: *rows = c->hidden_dim; *cols = c->dim; break;
    case LAYER_DOWN: *rows = c->dim; *cols = c->hidden_dim; break;
    default: *rows = 1; *cols = c->dim; break;
    }
}

static void layer_tensor_name(char *buffer, size_t size, int32_t layer, int kind) {
    snprintf(buffer, size, "blk.%d.%s.weight", (int)layer, LAYER_TENSOR_NAMES[kind]);
}

static float *layer_tensor_slot(sq_layer_weights *w, int kind) {
    switch (kind) {
    case LAYER_ATTN_NORM: return w->attn_norm;
    case LAYER_Q: return w->wq;
    case LAYER_K: return w->wk;
    case LAYER_V: return w->wv;
    case LAYER_OUTPUT: return w->wo;
    case LAYER_FFN_NORM: return w->ffn_norm;
    case LAYER_GATE: return w->w_gate;
    case LAYER_UP: return w->w_up;
    default: return w->w_down;
    }
}

/* Reads an integer key into an int32 field, or uses default_value when the key is absent and
 * default_value >= 0. */
static sq_status read_dimension(const sq_gguf_file *file, const char *key, int64_t default_value, int32_t *out,
                                sq_error *err) {
    if (default_value >= 0 && sq_gguf_find_key(file, key) == NULL) {
        *out = (int32_t)default_value;
        return SQ_OK;
    }
    uint64_t value;
    sq_status status = sq_gguf_get_uint(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    if (value > INT32_MAX) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': %s = %llu exceeds the limit of %d", file->reader.path, key,
                            (unsigned long long)value, INT32_MAX);
    }
    *out = (int32_t)value;
    return SQ_OK;
}

static sq_status read_real(const sq_gguf_file *file, const char *key, double default_value, float *out,
                           sq_error *err) {
    double value = default_value;
    if (sq_gguf_find_key(file, key) != NULL) {
        sq_status status = sq_gguf_get_float(file, key, &value, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    *out = (float)value;
    return SQ_OK;
}

/* Rejects llama-architecture variants this engine does not run. */
static sq_status check_supported_features(const sq_gguf_file *file, const sq_config *config, sq_error *err) {
    const char *path = file->reader.path;
    uint64_t experts = 0;
    if (sq_gguf_find_key(file, "llama.expert_count") != NULL) {
        sq_status status = sq_gguf_get_uint(file, "llama.expert_count", &experts, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    if (experts > 0) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s' is a mixture-of-experts model (llama.expert_count = %llu), which is not supported",
                            path, (unsigned long long)experts);
    }

    const sq_gguf_value *scaling = sq_gguf_find_key(file, "llama.rope.scaling.type");
    if (scaling != NULL && (scaling->type != SQ_GGUF_TYPE_STRING || strcmp(scaling->string.data, "none") != 0)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': RoPE scaling type '%s' is not supported", path,
                            scaling->type == SQ_GGUF_TYPE_STRING ? scaling->string.data : "(not a string)");
    }
    if (sq_gguf_find_tensor(file, "rope_freqs.weight") != NULL) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "'%s' has per-frequency RoPE factors (tensor rope_freqs.weight), which are not supported", path);
    }

    if (sq_gguf_find_key(file, "llama.rope.dimension_count") != NULL) {
        uint64_t rotary;
        sq_status status = sq_gguf_get_uint(file, "llama.rope.dimension_count", &rotary, err);
        if (status != SQ_OK) {
            return status;
        }
        if (rotary != (uint64_t)config->head_dim) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "'%s': llama.rope.dimension_count = %llu but head_dim = %d; partial rotary embeddings are not supported",
                                path, (unsigned long long)rotary, config->head_dim);
        }
    }

    for (uint64_t i = 0; i < file->n_tensors; i++) {
        const sq_gguf_string *name = &file->tensors[i].name;
        if (name->length >= 5 && memcmp(name->data + name->length - 5, ".bias", 5) == 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': bias tensor '%s' is not supported", path, name->data);
        }
    }
    return SQ_OK;
}

/* Fills the configuration from the llama.* keys. */
static sq_status read_config(const sq_gguf_file *file, sq_config *c, sq_error *err) {
    const char *path = file->reader.path;
    sq_status status;
    memset(c, 0, sizeof(*c));
    if ((status = read_dimension(file, "llama.embedding_length", -1, &c->dim, err)) != SQ_OK ||
        (status = read_dimension(file, "llama.feed_forward_length", -1, &c->hidden_dim, err)) != SQ_OK ||
        (status = read_dimension(file, "llama.block_count", -1, &c->n_layers, err)) != SQ_OK ||
        (status = read_dimension(file, "llama.attention.head_count", -1, &c->n_heads, err)) != SQ_OK ||
        (status = read_dimension(file, "llama.attention.head_count_kv", c->n_heads, &c->n_kv_heads, err)) != SQ_OK ||
        (status = read_dimension(file, "llama.context_length", -1, &c->context_length, err)) != SQ_OK) {
        return status;
    }
    if (c->n_heads <= 0 || c->dim <= 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': llama.embedding_length = %d and llama.attention.head_count = %d must be positive",
                            path, c->dim, c->n_heads);
    }
    if (sq_gguf_find_key(file, "llama.attention.key_length") == NULL && c->dim % c->n_heads != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': llama.embedding_length = %d is not a multiple of llama.attention.head_count = %d and llama.attention.key_length is missing",
                            path, c->dim, c->n_heads);
    }
    if ((status = read_dimension(file, "llama.attention.key_length", c->dim / c->n_heads, &c->head_dim, err)) != SQ_OK) {
        return status;
    }
    if (sq_gguf_find_key(file, "llama.attention.value_length") != NULL) {
        int32_t value_length = 0;
        if ((status = read_dimension(file, "llama.attention.value_length", -1, &value_length, err)) != SQ_OK) {
            return status;
        }
        if (value_length != c->head_dim) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "'%s': llama.attention.value_length = %d differs from key_length = %d, which is not supported",
                                path, value_length, c->head_dim);
        }
    }
    if ((status = read_real(file, "llama.rope.freq_base", 10000.0, &c->rope_theta, err)) != SQ_OK ||
        (status = read_real(file, "llama.attention.layer_norm_rms_epsilon", 1e-5, &c->norm_eps, err)) != SQ_OK) {
        return status;
    }

    /* Vocabulary size: llama.vocab_size, else the token list, else the embedding rows. */
    const sq_gguf_value *tokens = sq_gguf_find_key(file, "tokenizer.ggml.tokens");
    const sq_gguf_tensor *embedding = sq_gguf_find_tensor(file, "token_embd.weight");
    if (sq_gguf_find_key(file, "llama.vocab_size") != NULL) {
        status = read_dimension(file, "llama.vocab_size", -1, &c->vocab_size, err);
    } else if (tokens != NULL && tokens->type == SQ_GGUF_TYPE_ARRAY) {
        c->vocab_size = tokens->array.count > INT32_MAX ? 0 : (int32_t)tokens->array.count;
    } else if (embedding != NULL && embedding->ne[1] <= INT32_MAX) {
        c->vocab_size = (int32_t)embedding->ne[1];
    }
    if (status != SQ_OK) {
        return status;
    }

    if ((status = sq_config_validate(c, err)) != SQ_OK) {
        return sq_loader_prefix_error(err, path, status);
    }
    return check_supported_features(file, c, err);
}

/* Checks that tensor name exists with ne = [cols, rows] and a convertible type. */
static sq_status check_tensor(const sq_gguf_file *file, const char *name, int32_t rows, int32_t cols, sq_error *err) {
    const sq_gguf_tensor *t = sq_gguf_find_tensor(file, name);
    if (t == NULL) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': missing tensor %s", file->reader.path, name);
    }
    if (t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows || t->ne[2] != 1 || t->ne[3] != 1) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': tensor %s has ne = [%llu, %llu, %llu, %llu], expected [%d, %d] from the model config",
                            file->reader.path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                            (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols, rows);
    }
    if (!sq_ggml_type_is_supported(t->type)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "'%s': tensor %s has type %u (%s); supported types are F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                            file->reader.path, name, t->type, sq_ggml_type_name(t->type));
    }
    return SQ_OK;
}

/* Returns 1 when name is one of the tensors a model with config c reads. */
static int is_model_tensor(const char *name, const sq_config *c, int tied) {
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "output_norm.weight") == 0) {
        return 1;
    }
    if (strcmp(name, "output.weight") == 0) {
        return !tied;
    }
    int layer = -1;
    int consumed = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &consumed) != 1 || consumed == 0 || layer < 0 || layer >= c->n_layers) {
        return 0;
    }
    for (int kind = 0; kind < LAYER_TENSOR_COUNT; kind++) {
        char expected[64];
        layer_tensor_name(expected, sizeof(expected), layer, kind);
        if (strcmp(name, expected) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Validates every tensor before anything is allocated. A tensor the model does not read is
 * rejected, because it means the config disagrees with the file (a llama.block_count that is
 * too small, for example). */
static sq_status check_tensors(const sq_gguf_file *file, const sq_config *c, int tied, sq_error *err) {
    for (uint64_t i = 0; i < file->n_tensors; i++) {
        const char *name = file->tensors[i].name.data;
        if (!is_model_tensor(name, c, tied)) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': tensor '%s' is not part of a llama model with %d layers (llama.block_count)",
                                file->reader.path, name, c->n_layers);
        }
    }

    sq_status status;
    if ((status = check_tensor(file, "token_embd.weight", c->vocab_size, c->dim, err)) != SQ_OK ||
        (status = check_tensor(file, "output_norm.weight", 1, c->dim, err)) != SQ_OK) {
        return status;
    }
    if (!tied && (status = check_tensor(file, "output.weight", c->vocab_size, c->dim, err)) != SQ_OK) {
        return status;
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        for (int kind = 0; kind < LAYER_TENSOR_COUNT; kind++) {
            char name[64];
            int32_t rows, cols;
            layer_tensor_name(name, sizeof(name), l, kind);
            layer_tensor_shape(c, kind, &rows, &cols);
            if ((status = check_tensor(file, name, rows, cols, err)) != SQ_OK) {
                return status;
            }
        }
    }
    return SQ_OK;
}

static sq_status read_weight(sq_gguf_file *file, const char *name, float *dst, int32_t rows, int32_t cols,
                             sq_error *err) {
    const sq_gguf_tensor *t = sq_gguf_find_tensor(file, name);
    return sq_gguf_read_tensor_f32(file, t, dst, (size_t)rows * (size_t)cols, err);
}

static sq_status read_weights(sq_gguf_file *file, sq_model *model, sq_error *err) {
    const sq_config *c = &model->config;
    sq_status status;
    if ((status = read_weight(file, "token_embd.weight", model->token_embedding, c->vocab_size, c->dim, err)) != SQ_OK ||
        (status = read_weight(file, "output_norm.weight", model->final_norm, 1, c->dim, err)) != SQ_OK) {
        return status;
    }
    if (!model->tied_classifier &&
        (status = read_weight(file, "output.weight", model->classifier, c->vocab_size, c->dim, err)) != SQ_OK) {
        return status;
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        for (int kind = 0; kind < LAYER_TENSOR_COUNT; kind++) {
            char name[64];
            int32_t rows, cols;
            layer_tensor_name(name, sizeof(name), l, kind);
            layer_tensor_shape(c, kind, &rows, &cols);
            status = read_weight(file, name, layer_tensor_slot(&model->layers[l], kind), rows, cols, err);
            if (status != SQ_OK) {
                return status;
            }
        }
    }
    return SQ_OK;
}

/* Copies an optional string key into *out (NULL when absent). */
static sq_status copy_string_key(const sq_gguf_file *file, const char *key, char **out, sq_error *err) {
    *out = NULL;
    const sq_gguf_value *value = sq_gguf_find_key(file, key);
    if (value == NULL) {
        return SQ_OK;
    }
    if (value->type != SQ_GGUF_TYPE_STRING) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': metadata key %s has type %s, expected string", file->reader.path,
                            key, sq_gguf_type_name(value->type));
    }
    *out = malloc((size_t)value->string.length + 1);
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for %s",
                            (unsigned long long)value->string.length, key);
    }
    memcpy(*out, value->string.data, (size_t)value->string.length + 1);
    return SQ_OK;
}

static sq_status load_from_file(sq_gguf_file *file, int load_tokenizer, const sq_logger *logger, sq_model *model,
                                sq_error *err) {
    const char *path = file->reader.path;
    const sq_gguf_string *architecture;
    sq_status status = sq_gguf_get_string(file, "general.architecture", &architecture, err);
    if (status != SQ_OK) {
        return status;
    }
    if (strcmp(architecture->data, "llama") != 0) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': GGUF architecture '%s' is not supported; only 'llama' is",
                            path, architecture->data);
    }

    if ((status = read_config(file, &model->config, err)) != SQ_OK) {
        return status;
    }
    int tied = sq_gguf_find_tensor(file, "output.weight") == NULL;
    if ((status = check_tensors(file, &model->config, tied, err)) != SQ_OK) {
        return status;
    }

    /* The tokenizer comes first so that its errors surface before the slow weight conversion. */
    if (load_tokenizer &&
        (status = sq_gguf_build_tokenizer(file, &model->config, logger, &model->tokenizer, err)) != SQ_OK) {
        return status;
    }

    if ((status = sq_model_alloc_weights(model, tied, err)) != SQ_OK) {
        return sq_loader_prefix_error(err, path, status);
    }
    if ((status = read_weights(file, model, err)) != SQ_OK) {
        return status;
    }
    if ((status = sq_loader_check_weights(model, path, err)) != SQ_OK) {
        return status;
    }

    if ((status = copy_string_key(file, "tokenizer.chat_template", &model->chat_template, err)) != SQ_OK ||
        (status = copy_string_key(file, "general.name", &model->name, err)) != SQ_OK) {
        return status;
    }
    model->format = "gguf";
    return SQ_OK;
}

sq_status sq_load_gguf_ex(const char *path, int load_tokenizer, const sq_logger *logger, sq_model *model,
                          sq_error *err) {
    memset(model, 0, sizeof(*model));
    sq_gguf_file *file = NULL;
    sq_status status = sq_gguf_open(path, &file, err);
    if (status != SQ_OK) {
        return status;
    }
    status = load_from_file(file, load_tokenizer, logger, model, err);
    if (status == SQ_OK) {
        const sq_config *c = &model->config;
        SQ_LOG_INFO_F(logger,
                      "loaded GGUF v%u '%s': dim %d, hidden %d, %d layers, %d heads (%d kv, head_dim %d), vocab %d, context %d, %s classifier",
                      file->version, path, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
                      c->vocab_size, c->context_length, model->tied_classifier ? "tied" : "separate");
    } else {
        sq_model_free(model);
    }
    sq_gguf_close(file);
    return status;
}

sq_status sq_load_gguf(const char *path, const sq_logger *logger, sq_model *model, sq_error *err) {
    return sq_load_gguf_ex(path, 1, logger, model, err);
}
