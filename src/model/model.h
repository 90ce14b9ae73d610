/* The in-memory description of a Llama-family model: its configuration, fp32 weights and
 * tokenizer. Every loader produces this struct and every later stage (forward pass, rotation,
 * quantization) reads it, so it has one fixed layout:
 *   - linear weights are stored (out, in), row-major, so y = W·x;
 *   - q and k rows follow the interleaved RoPE layout used by llama2.c and GGUF (pairs of
 *     adjacent rows are rotated together); loaders convert other layouts on load. */
#ifndef SQ_MODEL_MODEL_H
#define SQ_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

typedef struct sq_config {
    int32_t dim;            /* residual stream width (hidden size) */
    int32_t hidden_dim;     /* SwiGLU inner width */
    int32_t n_layers;       /* transformer blocks */
    int32_t n_heads;        /* query heads */
    int32_t n_kv_heads;     /* key/value heads; n_heads is a multiple of it (grouped-query attention) */
    int32_t head_dim;       /* width of one head; even, because RoPE rotates pairs */
    int32_t vocab_size;     /* rows of the embedding and the classifier */
    int32_t context_length; /* maximum number of positions the model was trained for */
    float rope_theta;       /* RoPE frequency base */
    float norm_eps;         /* RMSNorm epsilon */
} sq_config;

typedef struct sq_layer_weights {
    float *attn_norm; /* (dim) RMSNorm gain before attention */
    float *wq;        /* (n_heads * head_dim, dim) */
    float *wk;        /* (n_kv_heads * head_dim, dim) */
    float *wv;        /* (n_kv_heads * head_dim, dim) */
    float *wo;        /* (dim, n_heads * head_dim) */
    float *ffn_norm;  /* (dim) RMSNorm gain before the MLP */
    float *w_gate;    /* (hidden_dim, dim) */
    float *w_up;      /* (hidden_dim, dim) */
    float *w_down;    /* (dim, hidden_dim) */
} sq_layer_weights;

typedef struct sq_model {
    sq_config config;
    float *token_embedding;   /* (vocab_size, dim) */
    sq_layer_weights *layers; /* [n_layers] */
    float *final_norm;        /* (dim) */
    float *classifier;        /* (vocab_size, dim); the same pointer as token_embedding when tied */
    int tied_classifier;      /* 1 when classifier aliases token_embedding */

    sq_tokenizer *tokenizer;  /* owned; NULL when the model file carries none and none was given */
    char *chat_template;      /* owned Jinja chat template from the model file, or NULL */
    char *name;               /* owned model name from the file's metadata, or NULL */
    const char *format;       /* "llama2c", "gguf" or "hf" (static string) */
} sq_model;

/* Checks that config describes a model this engine can run; the message names the first
 * invalid field and its value. */
sq_status sq_config_validate(const sq_config *config, sq_error *err);

/* Allocates every weight tensor for model->config (zero-filled). With tied set, classifier
 * aliases token_embedding. Sizes are checked for overflow before allocation. */
sq_status sq_model_alloc_weights(sq_model *model, int tied, sq_error *err);

/* Gives the classifier its own copy of the embedding so the two can be changed separately. */
sq_status sq_model_untie_classifier(sq_model *model, sq_error *err);

/* Deep-copies src into dst (weights, tokenizer, metadata). */
sq_status sq_model_clone(const sq_model *src, sq_model *dst, sq_error *err);

/* Frees everything the model owns and zeroes the struct; safe on a zeroed struct. */
void sq_model_free(sq_model *model);

/* Number of parameters, counting a tied classifier once. */
size_t sq_model_parameter_count(const sq_model *model);

/* Returns the first non-finite weight's tensor name and index through the error, or SQ_OK. */
sq_status sq_model_check_finite(const sq_model *model, sq_error *err);

#endif
