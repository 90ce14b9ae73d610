/* The contents of a .spq file once read: configuration, quantization settings, tokenizer and
 * views of every tensor. Tensor pointers point into one owned, 64-byte aligned storage block
 * (the whole file for sq_spq_load_file, the tensor sections only for the streaming reader), so
 * a model costs its tensor bytes plus small metadata. */
#ifndef SQ_SPQ_SPQ_MODEL_H
#define SQ_SPQ_SPQ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* Element types of stored tensors. */
typedef enum sq_spq_dtype {
    SQ_SPQ_DTYPE_F32 = 0, /* IEEE binary32 */
    SQ_SPQ_DTYPE_F16 = 1, /* IEEE binary16 */
    SQ_SPQ_DTYPE_I8 = 2,  /* signed 8-bit codes */
    SQ_SPQ_DTYPE_Q4 = 3,  /* signed 4-bit codes in the q4 layout of kernels/q4_layout.h */
} sq_spq_dtype;

typedef enum sq_spq_classifier_kind {
    SQ_SPQ_CLASSIFIER_SEPARATE = 0, /* a classifier matrix of its own */
    /* The classifier is the (rotated) embedding applied to T·x, where T (dim, dim) is stored:
     * used when the source model ties them, so the embedding is stored once. */
    SQ_SPQ_CLASSIFIER_TIED_TRANSFORM = 1,
} sq_spq_classifier_kind;

/* The recipe a file was made with, as far as running it needs (plus provenance). */
typedef struct sq_spq_settings {
    int w_bits;          /* 2..4: weight codes, stored as q4 */
    int w_group;         /* 0: one scale per output channel; else columns per scale */
    int w_clip;          /* 1 when the clipping search chose the scales (provenance) */
    int gptq;            /* 1 when GPTQ chose the codes (provenance) */
    int a_bits;          /* 2..8: activation codes; <= 4 use the u4 kernels */
    int a_symmetric;     /* 0: asymmetric with a zero point (the default) */
    float a_clip;        /* activation clip ratio in (0, 1] */
    int kv_bits;         /* 2..8 for an integer KV cache, 16 for an fp32 one */
    float kv_clip;       /* KV clip ratio in (0, 1] */
    int embed_bits;      /* 8: int8 per-row embedding and classifier; 16: fp16 */
    char rotation[16];   /* "none", "hadamard", "random" or "file" (provenance) */
    int mode_had;        /* 1: R3 and R4 run online; 0: R1 and R2 only */
    uint64_t online_seed; /* seed of the R3/R4 transforms (sq_hadamard_plan_create) */
} sq_spq_settings;

/* A q4 weight matrix with one fp32 scale per row and group. */
typedef struct sq_spq_qmatrix {
    const uint8_t *codes; /* (rows, row_stride) bytes in the q4 layout */
    const float *scales;  /* (rows, cols / group) */
    int32_t rows;
    int32_t cols;
    int32_t group;        /* columns per scale; cols when per channel */
    size_t row_stride;    /* bytes per row: sq_q4_row_bytes(cols) */
} sq_spq_qmatrix;

/* The embedding or a separate classifier: int8 codes with a scale per row, or fp16. */
typedef struct sq_spq_table {
    sq_spq_dtype dtype;   /* SQ_SPQ_DTYPE_I8 or SQ_SPQ_DTYPE_F16 */
    const void *data;     /* (rows, cols) int8_t or uint16_t (fp16 bits) */
    const float *scales;  /* (rows) for I8, NULL for F16 */
    int32_t rows;
    int32_t cols;
} sq_spq_table;

typedef struct sq_spq_layer {
    const float *attn_norm; /* (dim) */
    sq_spq_qmatrix wq;      /* (n_heads * head_dim, dim) */
    sq_spq_qmatrix wk;      /* (n_kv_heads * head_dim, dim) */
    sq_spq_qmatrix wv;      /* (n_kv_heads * head_dim, dim) */
    sq_spq_qmatrix wo;      /* (dim, n_heads * head_dim) */
    const float *ffn_norm;  /* (dim) */
    sq_spq_qmatrix w_gate;  /* (hidden_dim, dim) */
    sq_spq_qmatrix w_up;    /* (hidden_dim, dim) */
    sq_spq_qmatrix w_down;  /* (dim, hidden_dim), R4 folded in when mode_had */
} sq_spq_layer;

typedef struct sq_spq_model {
    sq_config config;
    sq_spq_settings settings;
    sq_spq_table embedding;             /* (vocab_size, dim), rows already multiplied by R1 */
    sq_spq_layer *layers;               /* [n_layers] */
    const float *final_norm;            /* (dim) */
    sq_spq_classifier_kind classifier_kind;
    sq_spq_table classifier;            /* (vocab_size, dim) when SEPARATE */
    const float *classifier_transform;  /* (dim, dim) T when TIED_TRANSFORM: logits = E·(T·x) */
    int norms_fused;                    /* 1 when every norm gain is one (fused into the weights) */

    sq_tokenizer *tokenizer;            /* owned */
    char *chat_template;                /* owned, or NULL */
    char *name;                         /* owned source model name, or NULL */
    char *source_format;                /* owned: "llama2c", "gguf" or "hf" */
    uint64_t source_hash;               /* FNV-1a 64 of the source weights (sq_spq_hash_weights) */
    uint64_t source_parameters;

    void *storage;                      /* owned 64-byte aligned block the tensors point into */
    size_t storage_size;
    uint64_t file_size;                 /* bytes of the .spq file */
} sq_spq_model;

/* Frees everything the model owns and zeroes it; safe on a zeroed struct. */
void sq_spq_model_free(sq_spq_model *model);

/* Checks the settings against the config for what the integer runtime supports; the message
 * names the first invalid value. */
sq_status sq_spq_settings_validate(const sq_spq_settings *settings, const sq_config *config, sq_error *err);

#endif
