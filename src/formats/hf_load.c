/* Loads a Hugging Face LlamaForCausalLM directory: config.json plus model.safetensors, or
 * model.safetensors.index.json with its shards, in F32, F16 or BF16. Weights are stored
 * (out, in) as sq_model expects, but HF q_proj and k_proj rows are permuted for rotate-half
 * RoPE: within each head, row i of the first half and row i of the second half form one
 * rotated pair. They are moved back to the interleaved layout (rows 2i and 2i + 1) on load.
 * The directory's tokenizer is not read here; sq_model_load requires --tokenizer for it.
 * Not supported (SQ_ERR_UNSUPPORTED): other architectures, RoPE scaling, activations other
 * than SiLU, attention or MLP biases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "formats/formats.h"
#include "formats/json.h"
#include "formats/loader_util.h"
#include "formats/safetensors.h"

/* The safetensors files of a checkpoint: one file, or the shards named by an index. */
typedef struct hf_weights {
    sq_json_value *index;           /* parsed model.safetensors.index.json, or NULL */
    const sq_json_value *weight_map; /* index's "weight_map" object, or NULL */
    size_t n_files;
    char **file_names;              /* [n_files] names relative to the directory */
    sq_safetensors_file **files;    /* [n_files] */
} hf_weights;

static void close_weights(hf_weights *weights) {
    for (size_t i = 0; i < weights->n_files; i++) {
        free(weights->file_names[i]);
        sq_safetensors_close(weights->files[i]);
    }
    free(weights->file_names);
    free(weights->files);
    sq_json_free(weights->index);
    memset(weights, 0, sizeof(*weights));
}

static sq_status read_json_file(const char *path, sq_json_value **out, sq_error *err) {
    uint8_t *text = NULL;
    size_t size = 0;
    sq_status status = sq_io_read_file(path, &text, &size, err);
    if (status != SQ_OK) {
        return status;
    }
    status = sq_json_parse((const char *)text, size, out, err);
    free(text);
    if (status != SQ_OK) {
        return sq_loader_prefix_error(err, path, status);
    }
    return SQ_OK;
}

/* Reads an integer field into an int32; absent (or null) fields take default_value when it is
 * >= 0 and are an error otherwise. */
static sq_status read_int(const char *path, const sq_json_value *config, const char *key, int64_t default_value,
                          int32_t *out, sq_error *err) {
    const sq_json_value *value = sq_json_get(config, key);
    if (value == NULL || value->type == SQ_JSON_NULL) {
        if (default_value < 0) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': missing integer field \"%s\"", path, key);
        }
        *out = (int32_t)default_value;
        return SQ_OK;
    }
    if (value->type != SQ_JSON_NUMBER || !value->is_integer || value->integer <= 0 || value->integer > INT32_MAX) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': \"%s\" must be a positive integer below 2^31", path, key);
    }
    *out = (int32_t)value->integer;
    return SQ_OK;
}

static sq_status read_real(const char *path, const sq_json_value *config, const char *key, double default_value,
                           float *out, sq_error *err) {
    const sq_json_value *value = sq_json_get(config, key);
    if (value == NULL || value->type == SQ_JSON_NULL) {
        *out = (float)default_value;
        return SQ_OK;
    }
    if (value->type != SQ_JSON_NUMBER || !isfinite(value->number)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': \"%s\" must be a finite number", path, key);
    }
    *out = (float)value->number;
    return SQ_OK;
}

static sq_status read_flag(const char *path, const sq_json_value *config, const char *key, int default_value,
                           int *out, sq_error *err) {
    const sq_json_value *value = sq_json_get(config, key);
    if (value == NULL || value->type == SQ_JSON_NULL) {
        *out = default_value;
        return SQ_OK;
    }
    if (value->type != SQ_JSON_BOOL) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': \"%s\" must be true or false", path, key);
    }
    *out = value->boolean;
    return SQ_OK;
}

/* Rejects architectures and options this engine does not implement. */
static sq_status check_supported(const char *path, const sq_json_value *config, sq_error *err) {
    const sq_json_value *architectures = sq_json_get(config, "architectures");
    if (architectures != NULL) {
        if (architectures->type != SQ_JSON_ARRAY || architectures->length != 1 ||
            architectures->items[0].type != SQ_JSON_STRING) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': \"architectures\" must be an array of one string", path);
        }
        if (strcmp(architectures->items[0].string, "LlamaForCausalLM") != 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': architecture %s is not supported; only LlamaForCausalLM is",
                                path, architectures->items[0].string);
        }
    } else {
        const sq_json_value *model_type = sq_json_get(config, "model_type");
        if (model_type == NULL || model_type->type != SQ_JSON_STRING || strcmp(model_type->string, "llama") != 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "'%s' names neither architectures [\"LlamaForCausalLM\"] nor model_type \"llama\"", path);
        }
    }

    const sq_json_value *scaling = sq_json_get(config, "rope_scaling");
    if (scaling != NULL && scaling->type != SQ_JSON_NULL) {
        const sq_json_value *type = sq_json_get(scaling, "rope_type");
        if (type == NULL) {
            type = sq_json_get(scaling, "type");
        }
        if (type == NULL || type->type != SQ_JSON_STRING || strcmp(type->string, "default") != 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': rope_scaling type %s is not supported; only plain RoPE is",
                                path, type != NULL && type->type == SQ_JSON_STRING ? type->string : "(missing)");
        }
    }

    const sq_json_value *activation = sq_json_get(config, "hidden_act");
    if (activation != NULL && (activation->type != SQ_JSON_STRING || strcmp(activation->string, "silu") != 0)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': hidden_act %s is not supported; only silu is", path,
                            activation->type == SQ_JSON_STRING ? activation->string : "(not a string)");
    }
    int attention_bias = 0;
    int mlp_bias = 0;
    sq_status status;
    if ((status = read_flag(path, config, "attention_bias", 0, &attention_bias, err)) != SQ_OK ||
        (status = read_flag(path, config, "mlp_bias", 0, &mlp_bias, err)) != SQ_OK) {
        return status;
    }
    if (attention_bias || mlp_bias) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': attention_bias and mlp_bias are not supported", path);
    }
    return SQ_OK;
}

static sq_status read_config(const char *path, sq_config *c, int *tied, sq_error *err) {
    sq_json_value *config = NULL;
    sq_status status = read_json_file(path, &config, err);
    if (status != SQ_OK) {
        return status;
    }

    memset(c, 0, sizeof(*c));
    if (config->type != SQ_JSON_OBJECT) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "'%s' holds a JSON %s, expected an object", path,
                              sq_json_type_name(config->type));
    }
    if (status == SQ_OK) {
        status = check_supported(path, config, err);
    }

    if (status == SQ_OK) {
        status = read_int(path, config, "hidden_size", -1, &c->dim, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "intermediate_size", -1, &c->hidden_dim, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "num_hidden_layers", -1, &c->n_layers, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "num_attention_heads", -1, &c->n_heads, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "num_key_value_heads", c->n_heads, &c->n_kv_heads, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "vocab_size", -1, &c->vocab_size, err);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "max_position_embeddings", -1, &c->context_length, err);
    }
    /* Defaults are those of transformers' LlamaConfig. */
    if (status == SQ_OK) {
        status = read_real(path, config, "rope_theta", 10000.0, &c->rope_theta, err);
    }
    if (status == SQ_OK) {
        status = read_real(path, config, "rms_norm_eps", 1e-6, &c->norm_eps, err);
    }
    if (status == SQ_OK) {
        status = read_flag(path, config, "tie_word_embeddings", 0, tied, err);
    }

    /* head_dim is optional (absent or null) and defaults to hidden_size / num_attention_heads. */
    const sq_json_value *head_dim = sq_json_get(config, "head_dim");
    int has_head_dim = head_dim != NULL && head_dim->type != SQ_JSON_NULL;
    if (status == SQ_OK && !has_head_dim && c->dim % c->n_heads != 0) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "'%s': hidden_size = %d is not a multiple of num_attention_heads = %d",
                              path, c->dim, c->n_heads);
    }
    if (status == SQ_OK) {
        status = read_int(path, config, "head_dim", c->dim / c->n_heads, &c->head_dim, err);
    }
    if (status == SQ_OK && (status = sq_config_validate(c, err)) != SQ_OK) {
        sq_loader_prefix_error(err, path, status);
    }
    sq_json_free(config);
    return status;
}

/* Accepts a shard file name only when it stays inside the model directory. */
static int is_plain_file_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strchr(name, '\\') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static sq_status add_file(hf_weights *weights, const char *directory, const char *name, sq_error *err) {
    for (size_t i = 0; i < weights->n_files; i++) {
        if (strcmp(weights->file_names[i], name) == 0) {
            return SQ_OK;
        }
    }

    char **names = realloc(weights->file_names, (weights->n_files + 1) * sizeof(char *));
    if (names != NULL) {
        weights->file_names = names;
    }
    sq_safetensors_file **files = realloc(weights->files, (weights->n_files + 1) * sizeof(sq_safetensors_file *));
    if (files != NULL) {
        weights->files = files;
    }
    char *path = sq_path_join(directory, name);
    char *copy = malloc(strlen(name) + 1);
    if (names == NULL || files == NULL || path == NULL || copy == NULL) {
        free(path);
        free(copy);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the shard list of '%s'", directory);
    }
    strcpy(copy, name);

    sq_status status = sq_safetensors_open(path, &weights->files[weights->n_files], err);
    free(path);
    if (status != SQ_OK) {
        free(copy);
        return status;
    }
    weights->file_names[weights->n_files] = copy;
    weights->n_files++;
    return SQ_OK;
}

static sq_status open_weights(const char *directory, hf_weights *weights, sq_error *err) {
    memset(weights, 0, sizeof(*weights));
    char *single = sq_path_join(directory, "model.safetensors");
    char *index_path = sq_path_join(directory, "model.safetensors.index.json");
    sq_status status = SQ_OK;
    if (single == NULL || index_path == NULL) {
        status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate paths inside '%s'", directory);
    } else if (sq_path_is_file(single)) {
        status = add_file(weights, directory, "model.safetensors", err);
    } else if (!sq_path_is_file(index_path)) {
        status = sq_error_set(err, SQ_ERR_IO, "'%s' has neither model.safetensors nor model.safetensors.index.json",
                              directory);
    } else if ((status = read_json_file(index_path, &weights->index, err)) == SQ_OK) {
        weights->weight_map = sq_json_get(weights->index, "weight_map");
        if (weights->weight_map == NULL || weights->weight_map->type != SQ_JSON_OBJECT) {
            status = sq_error_set(err, SQ_ERR_FORMAT, "'%s' has no \"weight_map\" object", index_path);
        }
        for (size_t i = 0; status == SQ_OK && i < weights->weight_map->length; i++) {
            const sq_json_member *entry = &weights->weight_map->members[i];
            if (entry->value.type != SQ_JSON_STRING || !is_plain_file_name(entry->value.string)) {
                status = sq_error_set(err, SQ_ERR_FORMAT,
                                      "'%s': weight_map entry '%s' must name a file inside the model directory", index_path,
                                      entry->key);
            } else {
                status = add_file(weights, directory, entry->value.string, err);
            }
        }
    }
    free(single);
    free(index_path);
    return status;
}

/* Finds name in the shard the index assigns it to, or in the single file. */
static const sq_safetensors_tensor *find_tensor(const hf_weights *weights, const char *name,
                                                sq_safetensors_file **file) {
    size_t first = 0;
    size_t last = weights->n_files;
    if (weights->weight_map != NULL) {
        const sq_json_value *shard = sq_json_get(weights->weight_map, name);
        if (shard == NULL) {
            return NULL;
        }
        for (first = 0; first < weights->n_files && strcmp(weights->file_names[first], shard->string) != 0; first++) {
        }
        last = first + 1;
    }
    for (size_t i = first; i < last && i < weights->n_files; i++) {
        const sq_safetensors_tensor *tensor = sq_safetensors_find(weights->files[i], name);
        if (tensor != NULL) {
            *file = weights->files[i];
            return tensor;
        }
    }
    return NULL;
}

enum { MAX_NAME = 96 };

typedef struct tensor_ref {
    char name[MAX_NAME];
    int32_t rows;    /* 1 for a vector */
    int32_t cols;
    int rope_heads;  /* q_proj and k_proj: heads whose rows are un-permuted; 0 otherwise */
    float *dst;      /* destination, NULL before the weights are allocated */
} tensor_ref;

static void set_ref(tensor_ref *ref, int32_t rows, int32_t cols, int rope_heads, float *dst) {
    ref->rows = rows;
    ref->cols = cols;
    ref->rope_heads = rope_heads;
    ref->dst = dst;
}

/* Fills refs with every tensor the model needs (at most 3 + 9 * n_layers) and returns their
 * count. Destinations are NULL until the weights are allocated. */
static size_t list_tensors(sq_model *model, int tied, tensor_ref *refs) {
    const sq_config *c = &model->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    size_t n = 0;

    snprintf(refs[n].name, MAX_NAME, "model.embed_tokens.weight");
    set_ref(&refs[n++], c->vocab_size, c->dim, 0, model->token_embedding);
    snprintf(refs[n].name, MAX_NAME, "model.norm.weight");
    set_ref(&refs[n++], 1, c->dim, 0, model->final_norm);
    if (!tied) {
        snprintf(refs[n].name, MAX_NAME, "lm_head.weight");
        set_ref(&refs[n++], c->vocab_size, c->dim, 0, model->classifier);
    }

    static const char *const suffixes[9] = {
        "input_layernorm",      "self_attn.q_proj",          "self_attn.k_proj",
        "self_attn.v_proj",     "self_attn.o_proj",          "post_attention_layernorm",
        "mlp.gate_proj",        "mlp.up_proj",               "mlp.down_proj",
    };
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights empty;
        memset(&empty, 0, sizeof(empty));
        sq_layer_weights *w = model->layers != NULL ? &model->layers[l] : &empty;
        for (int k = 0; k < 9; k++) {
            snprintf(refs[n + (size_t)k].name, MAX_NAME, "model.layers.%d.%s.weight", (int)l, suffixes[k]);
        }
        set_ref(&refs[n++], 1, c->dim, 0, w->attn_norm);
        set_ref(&refs[n++], q_dim, c->dim, c->n_heads, w->wq);
        set_ref(&refs[n++], kv_dim, c->dim, c->n_kv_heads, w->wk);
        set_ref(&refs[n++], kv_dim, c->dim, 0, w->wv);
        set_ref(&refs[n++], c->dim, q_dim, 0, w->wo);
        set_ref(&refs[n++], 1, c->dim, 0, w->ffn_norm);
        set_ref(&refs[n++], c->hidden_dim, c->dim, 0, w->w_gate);
        set_ref(&refs[n++], c->hidden_dim, c->dim, 0, w->w_up);
        set_ref(&refs[n++], c->dim, c->hidden_dim, 0, w->w_down);
    }
    return n;
}

static sq_status check_tensor(const char *directory, const hf_weights *weights, const tensor_ref *ref, sq_error *err) {
    sq_safetensors_file *file = NULL;
    const sq_safetensors_tensor *t = find_tensor(weights, ref->name, &file);
    if (t == NULL) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': missing tensor %s", directory, ref->name);
    }
    int vector = ref->rows == 1;
    int shape_ok = vector ? (t->n_dims == 1 && t->shape[0] == (uint64_t)ref->cols)
                          : (t->n_dims == 2 && t->shape[0] == (uint64_t)ref->rows && t->shape[1] == (uint64_t)ref->cols);
    if (!shape_ok) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor %s has %u dimensions [%llu, %llu], expected [%d, %d] from config.json",
                            file->reader.path, ref->name, t->n_dims, (unsigned long long)t->shape[0],
                            t->n_dims > 1 ? (unsigned long long)t->shape[1] : 0ULL, ref->rows, ref->cols);
    }
    if (t->dtype != SQ_ST_F32 && t->dtype != SQ_ST_F16 && t->dtype != SQ_ST_BF16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': tensor %s has dtype %s; supported dtypes are F32, F16, BF16",
                            file->reader.path, ref->name, sq_safetensors_dtype_name(t->dtype));
    }
    return SQ_OK;
}

/* Moves rows from the rotate-half order to the interleaved RoPE order, head by head:
 * src row h * head_dim + i goes to row 2i, src row h * head_dim + head_dim / 2 + i to 2i + 1. */
static void unpermute_rope_rows(const float *src, float *dst, int32_t heads, int32_t head_dim, int32_t cols) {
    int32_t half = head_dim / 2;
    size_t row_bytes = (size_t)cols * sizeof(float);
    for (int32_t h = 0; h < heads; h++) {
        size_t base = (size_t)h * (size_t)head_dim;
        for (int32_t i = 0; i < half; i++) {
            memcpy(dst + (base + 2 * (size_t)i) * (size_t)cols, src + (base + (size_t)i) * (size_t)cols, row_bytes);
            memcpy(dst + (base + 2 * (size_t)i + 1) * (size_t)cols, src + (base + (size_t)(half + i)) * (size_t)cols,
                   row_bytes);
        }
    }
}

static sq_status read_tensor(const hf_weights *weights, const tensor_ref *ref, int32_t head_dim, float *scratch,
                             sq_error *err) {
    sq_safetensors_file *file = NULL;
    const sq_safetensors_tensor *t = find_tensor(weights, ref->name, &file);
    size_t count = (size_t)ref->rows * (size_t)ref->cols;
    if (ref->rope_heads == 0) {
        return sq_safetensors_read_f32(file, t, ref->dst, count, err);
    }
    sq_status status = sq_safetensors_read_f32(file, t, scratch, count, err);
    if (status == SQ_OK) {
        unpermute_rope_rows(scratch, ref->dst, ref->rope_heads, head_dim, ref->cols);
    }
    return status;
}

static sq_status load_weights(const char *directory, const hf_weights *weights, int tied, sq_model *model,
                              sq_error *err) {
    const sq_config *c = &model->config;
    size_t capacity = 3 + 9 * (size_t)c->n_layers;
    tensor_ref *refs = malloc(capacity * sizeof(tensor_ref));
    if (refs == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the tensor list for %d layers", c->n_layers);
    }

    /* Check names, shapes and dtypes before allocating the weights. */
    size_t n = list_tensors(model, tied, refs);
    sq_status status = SQ_OK;
    for (size_t i = 0; i < n && status == SQ_OK; i++) {
        status = check_tensor(directory, weights, &refs[i], err);
    }
    if (status == SQ_OK && (status = sq_model_alloc_weights(model, tied, err)) != SQ_OK) {
        sq_loader_prefix_error(err, directory, status);
    }

    float *scratch = NULL;
    if (status == SQ_OK) {
        int32_t q_dim = c->n_heads * c->head_dim;
        scratch = malloc((size_t)q_dim * (size_t)c->dim * sizeof(float));
        if (scratch == NULL) {
            status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a (%d, %d) buffer to reorder q_proj", q_dim, c->dim);
        }
    }
    if (status == SQ_OK) {
        n = list_tensors(model, tied, refs);
        for (size_t i = 0; i < n && status == SQ_OK; i++) {
            status = read_tensor(weights, &refs[i], c->head_dim, scratch, err);
        }
    }
    free(scratch);
    free(refs);
    return status;
}

sq_status sq_load_hf(const char *directory, const sq_logger *logger, sq_model *model, sq_error *err) {
    memset(model, 0, sizeof(*model));
    char *config_path = sq_path_join(directory, "config.json");
    if (config_path == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a path inside '%s'", directory);
    }
    int tied = 0;
    sq_status status = read_config(config_path, &model->config, &tied, err);
    free(config_path);

    hf_weights weights;
    memset(&weights, 0, sizeof(weights));
    if (status == SQ_OK) {
        status = open_weights(directory, &weights, err);
    }
    if (status == SQ_OK) {
        status = load_weights(directory, &weights, tied, model, err);
    }
    if (status == SQ_OK) {
        status = sq_loader_check_weights(model, directory, err);
    }
    size_t n_files = weights.n_files;
    close_weights(&weights);
    if (status != SQ_OK) {
        sq_model_free(model);
        return status;
    }

    model->format = "hf";
    const sq_config *c = &model->config;
    SQ_LOG_INFO_F(logger, "loaded Hugging Face checkpoint '%s' (%zu safetensors files): dim %d, %d layers, vocab %d, %s classifier",
                  directory, n_files, c->dim, c->n_layers, c->vocab_size, tied ? "tied" : "separate");
    return SQ_OK;
}
