/* Writes the seed corpus of every fuzz harness: small valid files of each format, built from a
 * synthetic model with dim 8 so that one fuzzing run takes microseconds. The GGUF block types
 * need rows of 32 values, so their seeds use dim 32.
 *
 *   make_seeds OUT_DIR [TOK512]      writes OUT_DIR/<harness>/<seed> for every harness; TOK512
 *                                    (the stories260K tok512.bin) adds seeds made from it
 *   make_seeds --fix-spq IN OUT      copies a .spq file with every CRC-32 recomputed, as the
 *                                    .spq harness does before parsing (for regression inputs)
 *   make_seeds --fix-rotation IN OUT likewise for a rotation file
 *
 * The weights are deterministic pseudo-random values, so the corpus is the same on every run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io.h"
#include "fuzz_bpe_vocab.h"
#include "fuzz_common.h"
#include "model/model.h"
#include "pipeline/recipe.h"
#include "rotation/rotation_file.h"
#include "spq/spq_quantize.h"
#include "spq/spq_writer.h"

/* ---- growable byte buffer ---- */

typedef struct buffer {
    uint8_t *data;
    size_t size;
    size_t capacity;
} buffer;

static void put_bytes(buffer *b, const void *data, size_t n) {
    if (n == 0) {
        return;
    }
    if (b->size + n > b->capacity) {
        b->capacity = 2 * (b->size + n) + 64;
        b->data = realloc(b->data, b->capacity);
        if (b->data == NULL) {
            fuzz_fail("out of memory", "seed buffer");
        }
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
}

static void put_u8(buffer *b, uint8_t v) {
    put_bytes(b, &v, 1);
}

static void put_u32(buffer *b, uint32_t v) {
    uint8_t bytes[4];
    fuzz_store_le32(bytes, v);
    put_bytes(b, bytes, 4);
}

static void put_u64(buffer *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(buffer *b, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_u32(b, bits);
}

static void put_zeros(buffer *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        put_u8(b, 0);
    }
}

static void put_text(buffer *b, const char *text) {
    put_bytes(b, text, strlen(text));
}

/* ---- output files ---- */

static char out_root[512];

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fuzz_fail("cannot create the folder", path);
    }
}

static void write_seed(const char *harness, const char *name, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", out_root, harness);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/%s/%s", out_root, harness, name);
    fuzz_write_file(path, data, size);
}

static void write_text_seed(const char *harness, const char *name, const char *text) {
    write_seed(harness, name, text, strlen(text));
}

/* ---- the synthetic model ---- */

static uint64_t random_state = 0x9E3779B97F4A7C15ull;

/* Returns a value in [-0.5, 0.5) from a fixed xorshift sequence. */
static float next_weight(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (float)((random_state >> 40) & 0xFFFF) / 65536.0f - 0.5f;
}

static sq_config tiny_config(int32_t dim, int32_t n_layers, int32_t vocab_size) {
    sq_config c = {0};
    c.dim = dim;
    c.hidden_dim = 2 * dim;
    c.n_layers = n_layers;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = dim / 2;
    c.vocab_size = vocab_size;
    c.context_length = 16;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    return c;
}

static void fill(float *values, size_t count, int norm) {
    for (size_t i = 0; i < count; i++) {
        values[i] = norm ? 1.0f + 0.1f * next_weight() : next_weight();
    }
}

static void make_model(const sq_config *config, int tied, sq_model *model) {
    sq_error err;
    memset(model, 0, sizeof(*model));
    model->config = *config;
    if (sq_model_alloc_weights(model, tied, &err) != SQ_OK) {
        fuzz_fail("cannot allocate the synthetic model", err.message);
    }
    const sq_config *c = config;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)(c->n_heads * c->head_dim), kv_dim = (size_t)(c->n_kv_heads * c->head_dim);
    fill(model->token_embedding, (size_t)c->vocab_size * dim, 0);
    fill(model->final_norm, dim, 1);
    if (!tied) {
        fill(model->classifier, (size_t)c->vocab_size * dim, 0);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        fill(w->attn_norm, dim, 1);
        fill(w->ffn_norm, dim, 1);
        fill(w->wq, q_dim * dim, 0);
        fill(w->wk, kv_dim * dim, 0);
        fill(w->wv, kv_dim * dim, 0);
        fill(w->wo, dim * q_dim, 0);
        fill(w->w_gate, hidden * dim, 0);
        fill(w->w_up, hidden * dim, 0);
        fill(w->w_down, dim * hidden, 0);
    }
}

/* ---- llama2.c checkpoint ---- */

static void put_floats(buffer *b, const float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        put_f32(b, values[i]);
    }
}

static void llama2c_bytes(const sq_model *model, buffer *b) {
    const sq_config *c = &model->config;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)(c->n_heads * c->head_dim), kv_dim = (size_t)(c->n_kv_heads * c->head_dim);
    int32_t header[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                         model->tied_classifier ? c->vocab_size : -c->vocab_size, c->context_length};
    for (int i = 0; i < 7; i++) {
        put_u32(b, (uint32_t)header[i]);
    }
    put_floats(b, model->token_embedding, (size_t)c->vocab_size * dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].attn_norm, dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].wq, q_dim * dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].wk, kv_dim * dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].wv, kv_dim * dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].wo, dim * q_dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].ffn_norm, dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].w_gate, hidden * dim);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].w_down, dim * hidden);
    for (int32_t l = 0; l < c->n_layers; l++) put_floats(b, model->layers[l].w_up, hidden * dim);
    put_floats(b, model->final_norm, dim);
    put_zeros(b, (size_t)c->context_length * (size_t)c->head_dim * 4); /* freq_cis real and imag */
    if (!model->tied_classifier) {
        put_floats(b, model->classifier, (size_t)c->vocab_size * dim);
    }
}

/* ---- synthetic SPM vocabulary: <unk>, <s>, </s>, 256 byte pieces, then words ---- */

#define SPM_WORD_COUNT 13
static const char *const SPM_WORDS[SPM_WORD_COUNT] = {
    "\xE2\x96\x81", "\xE2\x96\x81" "the", "\xE2\x96\x81" "a", "he", "in", "er", "\xE2\x96\x81" "t", "on",
    "\xE2\x96\x81" "w", "or", "ld", "\xE2\x96\x81" "world", "\xC3\xA9",
};
#define SPM_VOCAB_SIZE (3 + 256 + SPM_WORD_COUNT)

typedef struct spm_vocab {
    char byte_pieces[256][7];
    const char *pieces[SPM_VOCAB_SIZE];
    uint32_t lengths[SPM_VOCAB_SIZE];
    float scores[SPM_VOCAB_SIZE];
    int32_t types[SPM_VOCAB_SIZE];
} spm_vocab;

static void spm_vocab_init(spm_vocab *v, sq_tokenizer_desc *desc) {
    memset(v, 0, sizeof(*v));
    const char *specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        v->pieces[i] = specials[i];
        v->types[i] = i == 0 ? SQ_TOKEN_TYPE_UNKNOWN : SQ_TOKEN_TYPE_CONTROL;
    }

    for (int b = 0; b < 256; b++) {
        snprintf(v->byte_pieces[b], sizeof(v->byte_pieces[b]), "<0x%02X>", b);
        v->pieces[3 + b] = v->byte_pieces[b];
        v->types[3 + b] = SQ_TOKEN_TYPE_BYTE;
    }
    for (int w = 0; w < SPM_WORD_COUNT; w++) {
        v->pieces[259 + w] = SPM_WORDS[w];
        v->scores[259 + w] = -(float)w;
        v->types[259 + w] = SQ_TOKEN_TYPE_NORMAL;
    }
    for (int i = 0; i < SPM_VOCAB_SIZE; i++) {
        v->lengths[i] = (uint32_t)strlen(v->pieces[i]);
    }

    memset(desc, 0, sizeof(*desc));
    desc->kind = SQ_TOKENIZER_SPM;
    desc->vocab_size = SPM_VOCAB_SIZE;
    desc->pieces = v->pieces;
    desc->piece_lengths = v->lengths;
    desc->scores = v->scores;
    desc->token_types = v->types;
    desc->bos_id = 1;
    desc->eos_id = 2;
    desc->unk_id = 0;
    desc->pad_id = -1;
    desc->add_bos = 1;
    desc->add_space_prefix = 1;
}

/* llama2.c tokenizer.bin of the synthetic SPM vocabulary (words written with plain spaces, as
 * llama2.c's exporter does). */
static void tokenizer_bin_bytes(const spm_vocab *v, buffer *b) {
    put_u32(b, 16);
    for (int i = 0; i < SPM_VOCAB_SIZE; i++) {
        char text[32];
        size_t n = 0;
        for (uint32_t k = 0; k < v->lengths[i]; k++) {
            if (k + 3 <= v->lengths[i] && memcmp(v->pieces[i] + k, "\xE2\x96\x81", 3) == 0) {
                text[n++] = ' ';
                k += 2;
            } else {
                text[n++] = v->pieces[i][k];
            }
        }
        put_f32(b, v->scores[i]);
        put_u32(b, (uint32_t)n);
        put_bytes(b, text, n);
    }
}

/* ---- GGUF ---- */

enum { GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9 };
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q8_0 = 8, GGML_BF16 = 30 };

static void gguf_string(buffer *b, const char *s, size_t n) {
    put_u64(b, n);
    put_bytes(b, s, n);
}

static void gguf_key(buffer *b, const char *key, uint32_t type) {
    gguf_string(b, key, strlen(key));
    put_u32(b, type);
}

static void gguf_kv_u32(buffer *b, const char *key, uint32_t v) {
    gguf_key(b, key, GGUF_UINT32);
    put_u32(b, v);
}

static void gguf_kv_f32(buffer *b, const char *key, float v) {
    gguf_key(b, key, GGUF_FLOAT32);
    put_f32(b, v);
}

static void gguf_kv_string(buffer *b, const char *key, const char *v) {
    gguf_key(b, key, GGUF_STRING);
    gguf_string(b, v, strlen(v));
}

static void gguf_kv_bool(buffer *b, const char *key, int v) {
    gguf_key(b, key, GGUF_BOOL);
    put_u8(b, (uint8_t)v);
}

static void gguf_kv_strings(buffer *b, const char *key, const char *const *strings, const uint32_t *lengths,
                            size_t count) {
    gguf_key(b, key, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, count);
    for (size_t i = 0; i < count; i++) {
        gguf_string(b, strings[i], lengths != NULL ? lengths[i] : strlen(strings[i]));
    }
}

/* Converts a float to IEEE half (round to nearest, values here are small and normal). */
static uint16_t to_half(float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t exponent = (int32_t)((bits >> 23) & 0xFF) - 127 + 15;
    uint32_t mantissa = bits & 0x7FFFFFu;
    if (exponent <= 0) {
        return (uint16_t)sign;
    }
    if (exponent >= 31) {
        return (uint16_t)(sign | 0x7C00u);
    }
    uint32_t half = sign | ((uint32_t)exponent << 10) | (mantissa >> 13);
    if ((mantissa >> 12) & 1) {
        half++;
    }
    return (uint16_t)half;
}

/* Appends count values in the ggml type (count a multiple of 32 for the block types). */
static void put_tensor_data(buffer *b, const float *values, size_t count, uint32_t type) {
    if (type == GGML_F32) {
        put_floats(b, values, count);
        return;
    }
    if (type == GGML_F16 || type == GGML_BF16) {
        for (size_t i = 0; i < count; i++) {
            uint16_t h;
            if (type == GGML_F16) {
                h = to_half(values[i]);
            } else {
                uint32_t bits;
                memcpy(&bits, &values[i], 4);
                h = (uint16_t)(bits >> 16);
            }
            put_u8(b, (uint8_t)h);
            put_u8(b, (uint8_t)(h >> 8));
        }
        return;
    }
    for (size_t block = 0; block < count / 32; block++) {
        const float *x = values + 32 * block;
        float max_abs = 0.0f, min = x[0], max = x[0];
        for (int j = 0; j < 32; j++) {
            float a = x[j] < 0 ? -x[j] : x[j];
            max_abs = a > max_abs ? a : max_abs;
            min = x[j] < min ? x[j] : min;
            max = x[j] > max ? x[j] : max;
        }
        if (type == GGML_Q8_0) {
            float d = max_abs / 127.0f;
            uint16_t h = to_half(d);
            put_u8(b, (uint8_t)h);
            put_u8(b, (uint8_t)(h >> 8));
            for (int j = 0; j < 32; j++) {
                put_u8(b, (uint8_t)(int8_t)(d > 0 ? x[j] / d : 0));
            }
            continue;
        }
        float d = type == GGML_Q4_0 ? max_abs / 7.0f : (max - min) / 15.0f;
        uint16_t h = to_half(d);
        put_u8(b, (uint8_t)h);
        put_u8(b, (uint8_t)(h >> 8));
        if (type == GGML_Q4_1) {
            uint16_t m = to_half(min);
            put_u8(b, (uint8_t)m);
            put_u8(b, (uint8_t)(m >> 8));
        }
        for (int j = 0; j < 16; j++) {
            int lo, hi;
            if (type == GGML_Q4_0) {
                lo = d > 0 ? (int)(x[j] / d) + 8 : 8;
                hi = d > 0 ? (int)(x[j + 16] / d) + 8 : 8;
            } else {
                lo = d > 0 ? (int)((x[j] - min) / d) : 0;
                hi = d > 0 ? (int)((x[j + 16] - min) / d) : 0;
            }
            lo = lo < 0 ? 0 : (lo > 15 ? 15 : lo);
            hi = hi < 0 ? 0 : (hi > 15 ? 15 : hi);
            put_u8(b, (uint8_t)(lo | (hi << 4)));
        }
    }
}

static size_t tensor_bytes(size_t count, uint32_t type) {
    switch (type) {
    case GGML_F32: return 4 * count;
    case GGML_F16:
    case GGML_BF16: return 2 * count;
    case GGML_Q8_0: return count / 32 * 34;
    case GGML_Q4_0: return count / 32 * 18;
    default: return count / 32 * 20;
    }
}

typedef struct gguf_tensor {
    char name[64];
    const float *values;
    uint64_t rows;
    uint64_t cols;
    uint32_t type;
} gguf_tensor;

typedef enum gguf_vocab_kind { GGUF_VOCAB_NONE, GGUF_VOCAB_SPM, GGUF_VOCAB_BPE } gguf_vocab_kind;

/* Writes a GGUF v3 file of model with matrices in matrix_type, norms in F32 and the chosen
 * tokenizer metadata. */
static void gguf_bytes(const sq_model *model, uint32_t matrix_type, uint32_t embedding_type, gguf_vocab_kind vocab,
                       const char *chat_template, buffer *b) {
    const sq_config *c = &model->config;
    gguf_tensor tensors[3 + 9 * 4];
    size_t n = 0;
    uint64_t q_dim = (uint64_t)(c->n_heads * c->head_dim), kv_dim = (uint64_t)(c->n_kv_heads * c->head_dim);
#define ADD_TENSOR(NAME_FORMAT, LAYER, VALUES, ROWS, COLS, TYPE)                            \
    do {                                                                                    \
        snprintf(tensors[n].name, sizeof(tensors[n].name), NAME_FORMAT, (int)(LAYER));      \
        tensors[n].values = (VALUES);                                                       \
        tensors[n].rows = (ROWS);                                                           \
        tensors[n].cols = (COLS);                                                           \
        tensors[n].type = (TYPE);                                                           \
        n++;                                                                                \
    } while (0)
    ADD_TENSOR("token_embd.weight%.0d", 0, model->token_embedding, (uint64_t)c->vocab_size, (uint64_t)c->dim,
               embedding_type);
    ADD_TENSOR("output_norm.weight%.0d", 0, model->final_norm, 1, (uint64_t)c->dim, GGML_F32);
    if (!model->tied_classifier) {
        ADD_TENSOR("output.weight%.0d", 0, model->classifier, (uint64_t)c->vocab_size, (uint64_t)c->dim, embedding_type);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &model->layers[l];
        ADD_TENSOR("blk.%d.attn_norm.weight", l, w->attn_norm, 1, (uint64_t)c->dim, GGML_F32);
        ADD_TENSOR("blk.%d.attn_q.weight", l, w->wq, q_dim, (uint64_t)c->dim, matrix_type);
        ADD_TENSOR("blk.%d.attn_k.weight", l, w->wk, kv_dim, (uint64_t)c->dim, matrix_type);
        ADD_TENSOR("blk.%d.attn_v.weight", l, w->wv, kv_dim, (uint64_t)c->dim, matrix_type);
        ADD_TENSOR("blk.%d.attn_output.weight", l, w->wo, (uint64_t)c->dim, q_dim, matrix_type);
        ADD_TENSOR("blk.%d.ffn_norm.weight", l, w->ffn_norm, 1, (uint64_t)c->dim, GGML_F32);
        ADD_TENSOR("blk.%d.ffn_gate.weight", l, w->w_gate, (uint64_t)c->hidden_dim, (uint64_t)c->dim, matrix_type);
        ADD_TENSOR("blk.%d.ffn_up.weight", l, w->w_up, (uint64_t)c->hidden_dim, (uint64_t)c->dim, matrix_type);
        ADD_TENSOR("blk.%d.ffn_down.weight", l, w->w_down, (uint64_t)c->dim, (uint64_t)c->hidden_dim, matrix_type);
    }
#undef ADD_TENSOR

    buffer kv = {0};
    uint64_t n_kv = 0;
    gguf_kv_string(&kv, "general.architecture", "llama"), n_kv++;
    gguf_kv_string(&kv, "general.name", "fuzz seed"), n_kv++;
    gguf_kv_u32(&kv, "general.alignment", 32), n_kv++;
    gguf_kv_u32(&kv, "llama.embedding_length", (uint32_t)c->dim), n_kv++;
    gguf_kv_u32(&kv, "llama.feed_forward_length", (uint32_t)c->hidden_dim), n_kv++;
    gguf_kv_u32(&kv, "llama.block_count", (uint32_t)c->n_layers), n_kv++;
    gguf_kv_u32(&kv, "llama.attention.head_count", (uint32_t)c->n_heads), n_kv++;
    gguf_kv_u32(&kv, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads), n_kv++;
    gguf_kv_u32(&kv, "llama.context_length", (uint32_t)c->context_length), n_kv++;
    gguf_kv_u32(&kv, "llama.rope.dimension_count", (uint32_t)c->head_dim), n_kv++;
    gguf_kv_f32(&kv, "llama.rope.freq_base", 10000.0f), n_kv++;
    gguf_kv_f32(&kv, "llama.attention.layer_norm_rms_epsilon", 1e-5f), n_kv++;
    if (vocab == GGUF_VOCAB_SPM) {
        spm_vocab v;
        sq_tokenizer_desc desc;
        spm_vocab_init(&v, &desc);
        gguf_kv_string(&kv, "tokenizer.ggml.model", "llama"), n_kv++;
        gguf_kv_strings(&kv, "tokenizer.ggml.tokens", v.pieces, v.lengths, SPM_VOCAB_SIZE), n_kv++;
        gguf_key(&kv, "tokenizer.ggml.scores", GGUF_ARRAY), n_kv++;
        put_u32(&kv, GGUF_FLOAT32);
        put_u64(&kv, SPM_VOCAB_SIZE);
        put_floats(&kv, v.scores, SPM_VOCAB_SIZE);
        gguf_key(&kv, "tokenizer.ggml.token_type", GGUF_ARRAY), n_kv++;
        put_u32(&kv, GGUF_INT32);
        put_u64(&kv, SPM_VOCAB_SIZE);
        for (int i = 0; i < SPM_VOCAB_SIZE; i++) {
            put_u32(&kv, (uint32_t)v.types[i]);
        }
        gguf_kv_u32(&kv, "tokenizer.ggml.bos_token_id", 1), n_kv++;
        gguf_kv_u32(&kv, "tokenizer.ggml.eos_token_id", 2), n_kv++;
        gguf_kv_u32(&kv, "tokenizer.ggml.unknown_token_id", 0), n_kv++;
        gguf_kv_bool(&kv, "tokenizer.ggml.add_bos_token", 1), n_kv++;
    } else if (vocab == GGUF_VOCAB_BPE) {
        fuzz_bpe_vocab v;
        sq_tokenizer_desc desc;
        fuzz_bpe_vocab_init(&v, "smollm", &desc);
        gguf_kv_string(&kv, "tokenizer.ggml.model", "gpt2"), n_kv++;
        gguf_kv_string(&kv, "tokenizer.ggml.pre", "smollm"), n_kv++;
        gguf_kv_strings(&kv, "tokenizer.ggml.tokens", v.pieces, v.piece_lengths, FUZZ_BPE_VOCAB_SIZE), n_kv++;
        gguf_key(&kv, "tokenizer.ggml.token_type", GGUF_ARRAY), n_kv++;
        put_u32(&kv, GGUF_INT32);
        put_u64(&kv, FUZZ_BPE_VOCAB_SIZE);
        for (int i = 0; i < FUZZ_BPE_VOCAB_SIZE; i++) {
            put_u32(&kv, (uint32_t)v.token_types[i]);
        }
        gguf_kv_strings(&kv, "tokenizer.ggml.merges", FUZZ_BPE_MERGES, v.merge_lengths, FUZZ_BPE_MERGE_COUNT), n_kv++;
        gguf_kv_u32(&kv, "tokenizer.ggml.bos_token_id", (uint32_t)desc.bos_id), n_kv++;
        gguf_kv_u32(&kv, "tokenizer.ggml.eos_token_id", (uint32_t)desc.eos_id), n_kv++;
        gguf_kv_u32(&kv, "tokenizer.ggml.padding_token_id", 0xFFFFFFFFu), n_kv++;
        gguf_kv_bool(&kv, "tokenizer.ggml.add_bos_token", 0), n_kv++;
    }
    if (chat_template != NULL) {
        gguf_kv_string(&kv, "tokenizer.chat_template", chat_template), n_kv++;
    }

    put_text(b, "GGUF");
    put_u32(b, 3);
    put_u64(b, n);
    put_u64(b, n_kv);
    put_bytes(b, kv.data, kv.size);
    free(kv.data);
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        gguf_string(b, tensors[i].name, strlen(tensors[i].name));
        put_u32(b, tensors[i].rows == 1 ? 1 : 2);
        put_u64(b, tensors[i].cols);
        if (tensors[i].rows != 1) {
            put_u64(b, tensors[i].rows);
        }
        put_u32(b, tensors[i].type);
        put_u64(b, offset);
        offset += tensor_bytes(tensors[i].rows * tensors[i].cols, tensors[i].type);
        offset = (offset + 31) / 32 * 32;
    }
    put_zeros(b, (32 - b->size % 32) % 32);
    size_t data_start = b->size;
    for (size_t i = 0; i < n; i++) {
        put_tensor_data(b, tensors[i].values, (size_t)(tensors[i].rows * tensors[i].cols), tensors[i].type);
        put_zeros(b, (32 - (b->size - data_start) % 32) % 32);
    }
}

/* ---- Hugging Face: config.json and safetensors ---- */

static void config_json(const sq_model *model, int with_head_dim, buffer *b) {
    const sq_config *c = &model->config;
    char text[1024];
    snprintf(text, sizeof(text),
             "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"model_type\": \"llama\",\n"
             "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
             "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"vocab_size\": %d,\n"
             "  \"max_position_embeddings\": %d,\n  \"rope_theta\": 10000.0,\n  \"rms_norm_eps\": 1e-05,\n"
             "  \"hidden_act\": \"silu\",\n  \"rope_scaling\": null,\n  \"attention_bias\": false,\n"
             "  \"tie_word_embeddings\": %s%s\n}\n",
             c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->context_length,
             model->tied_classifier ? "true" : "false", with_head_dim ? ",\n  \"head_dim\": 4" : "");
    put_text(b, text);
}

/* Writes a safetensors file of the model in dtype "F32" or "BF16" and, when index is not NULL,
 * a model.safetensors.index.json that maps every tensor to shard.safetensors. */
static void safetensors_bytes(const sq_model *model, const char *dtype, buffer *b, buffer *index) {
    const sq_config *c = &model->config;
    int64_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    size_t element_bytes = strcmp(dtype, "F32") == 0 ? 4 : 2;
    gguf_tensor tensors[3 + 9 * 4];
    size_t n = 0;
#define ADD(NAME_FORMAT, LAYER, VALUES, ROWS, COLS)                                      \
    do {                                                                                 \
        snprintf(tensors[n].name, sizeof(tensors[n].name), NAME_FORMAT, (int)(LAYER));   \
        tensors[n].values = (VALUES);                                                    \
        tensors[n].rows = (uint64_t)(ROWS);                                              \
        tensors[n].cols = (uint64_t)(COLS);                                              \
        n++;                                                                             \
    } while (0)
    ADD("model.embed_tokens.weight%.0d", 0, model->token_embedding, c->vocab_size, c->dim);
    ADD("model.norm.weight%.0d", 0, model->final_norm, 1, c->dim);
    if (!model->tied_classifier) {
        ADD("lm_head.weight%.0d", 0, model->classifier, c->vocab_size, c->dim);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &model->layers[l];
        ADD("model.layers.%d.input_layernorm.weight", l, w->attn_norm, 1, c->dim);
        ADD("model.layers.%d.self_attn.q_proj.weight", l, w->wq, q_dim, c->dim);
        ADD("model.layers.%d.self_attn.k_proj.weight", l, w->wk, kv_dim, c->dim);
        ADD("model.layers.%d.self_attn.v_proj.weight", l, w->wv, kv_dim, c->dim);
        ADD("model.layers.%d.self_attn.o_proj.weight", l, w->wo, c->dim, q_dim);
        ADD("model.layers.%d.post_attention_layernorm.weight", l, w->ffn_norm, 1, c->dim);
        ADD("model.layers.%d.mlp.gate_proj.weight", l, w->w_gate, c->hidden_dim, c->dim);
        ADD("model.layers.%d.mlp.up_proj.weight", l, w->w_up, c->hidden_dim, c->dim);
        ADD("model.layers.%d.mlp.down_proj.weight", l, w->w_down, c->dim, c->hidden_dim);
    }
#undef ADD

    buffer header = {0};
    put_text(&header, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        char entry[256];
        uint64_t bytes = tensors[i].rows * tensors[i].cols * element_bytes;
        if (tensors[i].rows == 1) {
            snprintf(entry, sizeof(entry), ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                     tensors[i].name, dtype, (unsigned long long)tensors[i].cols, (unsigned long long)offset,
                     (unsigned long long)(offset + bytes));
        } else {
            snprintf(entry, sizeof(entry), ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                     tensors[i].name, dtype, (unsigned long long)tensors[i].rows, (unsigned long long)tensors[i].cols,
                     (unsigned long long)offset, (unsigned long long)(offset + bytes));
        }
        put_text(&header, entry);
        offset += bytes;
    }
    put_text(&header, "}");
    if (index != NULL) {
        put_text(index, "{\"metadata\": {}, \"weight_map\": {");
        for (size_t i = 0; i < n; i++) {
            put_text(index, i > 0 ? ", \"" : "\"");
            put_text(index, tensors[i].name);
            put_text(index, "\": \"shard.safetensors\"");
        }
        put_text(index, "}}");
        put_u8(index, 0);
    }
    while (header.size % 8 != 0) {
        put_u8(&header, ' ');
    }
    put_u64(b, header.size);
    put_bytes(b, header.data, header.size);
    free(header.data);
    for (size_t i = 0; i < n; i++) {
        put_tensor_data(b, tensors[i].values, (size_t)(tensors[i].rows * tensors[i].cols),
                        element_bytes == 4 ? GGML_F32 : GGML_BF16);
    }
}

/* Packs the files of an HF directory in the input layout of fuzz_hf.c. */
static void hf_pack(const buffer *config, const char *index, const buffer *weights, buffer *b) {
    put_u32(b, (uint32_t)config->size);
    put_bytes(b, config->data, config->size);
    size_t index_size = index != NULL ? strlen(index) : 0;
    put_u32(b, (uint32_t)index_size);
    put_bytes(b, index, index_size);
    put_bytes(b, weights->data, weights->size);
}

/* ---- .spq ---- */

static void spq_seed(const sq_config *config, int tied, int w_group, int embed_bits, int mode_had, const char *name) {
    sq_model model;
    make_model(config, tied, &model);
    spm_vocab v;
    sq_tokenizer_desc desc;
    spm_vocab_init(&v, &desc);
    if (config->vocab_size != desc.vocab_size) {
        fuzz_fail("the .spq seed model's vocabulary must match the synthetic SPM vocabulary", name);
    }

    sq_recipe recipe = sq_recipe_default();
    recipe.w_bits = 4;
    recipe.w_group = w_group;
    recipe.a_bits = 8;
    recipe.kv_bits = 8;
    recipe.embed_bits = embed_bits;
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.mode_had = mode_had;
    recipe.seed = 7;

    sq_spq_model spq;
    memset(&spq, 0, sizeof(spq));
    sq_spq_build_report report;
    memset(&report, 0, sizeof(report));
    sq_error err;
    uint8_t *bytes = NULL;
    size_t size = 0;
    if (sq_spq_quantize_model(&model, &recipe, NULL, NULL, &spq, &report, &err) != SQ_OK ||
        sq_spq_serialize(&spq, &desc, &bytes, &size, &err) != SQ_OK) {
        fuzz_fail("cannot build the .spq seed", err.message);
    }
    write_seed("spq", name, bytes, size);

    /* The metadata (section 0) and tokenizer (section 1) payloads seed their own harnesses;
     * each section header stores its payload size at bytes 16..23. */
    uint64_t metadata_size = fuzz_load_le64(bytes + 64 + 16);
    uint64_t tokenizer_header = 128 + (metadata_size + 63) / 64 * 64;
    uint64_t tokenizer_size = fuzz_load_le64(bytes + tokenizer_header + 16);
    write_seed("spq_metadata", name, bytes + 128, (size_t)metadata_size);
    write_seed("spq_tokenizer", name, bytes + tokenizer_header + 64, (size_t)tokenizer_size);
    free(bytes);
    sq_spq_model_free(&spq);
    sq_model_free(&model);
}

/* ---- text seeds ---- */

static const char *const TEXTS[] = {
    "Once upon a time, there was a little girl named Lily.",
    "Hello world! The year 2024 had 366 days; 3.14159 is pi.",
    "caf\xC3\xA9 na\xC3\xAFve \xE2\x9C\x93 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "<|im_start|>user\nWhat is 12+30?<|im_end|>\n<|im_start|>assistant\n",
    "<s> [INST] hi [/INST] </s><tool>\t\r\n   trailing spaces   ",
    "don't I'll you're we've THEY'RE it's 'quoted'",
    "\xC3\xA9\xC3\xA9\xC3\xA9 \xCC\x81\xE2\x80\x8B\xEF\xBB\xBF zero width",
    "bad \xFF byte",
    "cut \xE2\x9C",
    "surrogate \xED\xA0\x80 overlong \xC0\xAF",
};

static const char *const JSON_SEEDS[] = {
    "{\"a\": [1, -2.5e3, true, false, null, \"x\\u00e9\\n\\ud83d\\ude00\"], \"b\": {\"c\": {}}}",
    "[0, -0, 1e308, 1E-308, 9223372036854775807, -9223372036854775808, 9223372036854775808, 0.1]",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\"",
    "{\"weight_map\": {\"model.norm.weight\": \"shard.safetensors\"}, \"metadata\": {\"total_size\": 32}}",
    "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    "{\"rope_scaling\": {\"rope_type\": \"default\", \"factor\": 1.0}, \"head_dim\": null}",
    "  {\"dup\": 1, \"dup\": 2}  ",
    "{\"x\": 1,}",
};

static const char *const TEMPLATES[] = {
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou "
    "are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
    "%}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + "
    "message['content'] + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% "
    "endfor %}",
    "{% raw %}unknown{% endraw %}",
};

/* ---- main ---- */

static int fix_file(const char *in, const char *out, int spq) {
    uint8_t *data;
    size_t size;
    sq_error err;
    if (sq_io_read_file(in, &data, &size, &err) != SQ_OK) {
        fprintf(stderr, "make_seeds: %s\n", err.message);
        return 1;
    }
    if (spq) {
        fuzz_fix_spq_crcs(data, size);
    } else {
        fuzz_fix_rotation_crc(data, size);
    }
    fuzz_write_file(out, data, size);
    free(data);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && (strcmp(argv[1], "--fix-spq") == 0 || strcmp(argv[1], "--fix-rotation") == 0)) {
        return fix_file(argv[2], argv[3], strcmp(argv[1], "--fix-spq") == 0);
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_seeds OUT_DIR [TOK512] | --fix-spq IN OUT | --fix-rotation IN OUT\n");
        return 2;
    }
    snprintf(out_root, sizeof(out_root), "%s", argv[1]);
    make_dir(out_root);

    /* llama2.c checkpoints: tied and separate classifier. */
    sq_config small = tiny_config(8, 2, 32);
    for (int tied = 0; tied <= 1; tied++) {
        sq_model model;
        make_model(&small, tied, &model);
        buffer b = {0};
        llama2c_bytes(&model, &b);
        write_seed("llama2c", tied ? "tied.bin" : "separate.bin", b.data, b.size);
        free(b.data);
        sq_model_free(&model);
    }

    /* tokenizer.bin: the synthetic vocabulary and, when given, stories260K's tok512.bin. */
    spm_vocab vocab;
    sq_tokenizer_desc spm_desc;
    spm_vocab_init(&vocab, &spm_desc);
    buffer tokenizer_bin = {0};
    tokenizer_bin_bytes(&vocab, &tokenizer_bin);
    write_seed("tokenizer_bin", "synthetic.bin", tokenizer_bin.data, tokenizer_bin.size);
    write_seed("tokenizer_bin", "header-only.bin", tokenizer_bin.data, 4);
    free(tokenizer_bin.data);
    if (argc == 3) {
        uint8_t *data;
        size_t size;
        sq_error err;
        if (sq_io_read_file(argv[2], &data, &size, &err) != SQ_OK) {
            fuzz_fail("cannot read", err.message);
        }
        write_seed("tokenizer_bin", "tok512.bin", data, size);
        free(data);
    }

    /* GGUF: F32 with each tokenizer kind, F16 and BF16, and a dim-32 model with block types. */
    sq_config spm_config = tiny_config(8, 1, SPM_VOCAB_SIZE);
    sq_config bpe_config = tiny_config(8, 1, FUZZ_BPE_VOCAB_SIZE);
    sq_config block_config = tiny_config(32, 1, SPM_VOCAB_SIZE);
    struct {
        const sq_config *config;
        int tied;
        uint32_t matrix_type, embedding_type;
        gguf_vocab_kind vocab;
        const char *chat_template;
        const char *name;
    } ggufs[] = {
        {&spm_config, 1, GGML_F32, GGML_F32, GGUF_VOCAB_SPM, NULL, "spm-f32.gguf"},
        {&bpe_config, 1, GGML_F32, GGML_F32, GGUF_VOCAB_BPE, TEMPLATES[0], "bpe-f32.gguf"},
        {&spm_config, 0, GGML_F16, GGML_BF16, GGUF_VOCAB_SPM, TEMPLATES[2], "spm-f16-bf16.gguf"},
        {&small, 1, GGML_F32, GGML_F32, GGUF_VOCAB_NONE, NULL, "no-tokenizer.gguf"},
        {&block_config, 1, GGML_Q4_0, GGML_Q8_0, GGUF_VOCAB_SPM, NULL, "spm-q4_0-q8_0.gguf"},
        {&block_config, 0, GGML_Q4_1, GGML_Q8_0, GGUF_VOCAB_SPM, NULL, "spm-q4_1.gguf"},
    };
    for (size_t i = 0; i < sizeof(ggufs) / sizeof(ggufs[0]); i++) {
        sq_model model;
        make_model(ggufs[i].config, ggufs[i].tied, &model);
        buffer b = {0};
        gguf_bytes(&model, ggufs[i].matrix_type, ggufs[i].embedding_type, ggufs[i].vocab, ggufs[i].chat_template, &b);
        write_seed("gguf", ggufs[i].name, b.data, b.size);
        free(b.data);
        sq_model_free(&model);
    }

    /* Hugging Face directories and their safetensors files and config.json texts. */
    for (int variant = 0; variant < 3; variant++) {
        sq_model model;
        make_model(&small, variant != 1, &model);
        buffer config = {0}, weights = {0}, index = {0}, packed = {0};
        config_json(&model, variant == 2, &config);
        safetensors_bytes(&model, variant == 1 ? "BF16" : "F32", &weights, variant == 2 ? &index : NULL);
        hf_pack(&config, variant == 2 ? (const char *)index.data : NULL, &weights, &packed);
        char name[64];
        snprintf(name, sizeof(name), "variant-%d.bin", variant);
        write_seed("hf", name, packed.data, packed.size);
        snprintf(name, sizeof(name), "variant-%d.safetensors", variant);
        write_seed("safetensors", name, weights.data, weights.size);
        snprintf(name, sizeof(name), "config-%d.json", variant);
        write_seed("json", name, config.data, config.size);
        /* The safetensors header alone is JSON too. */
        uint64_t header_size = fuzz_load_le64(weights.data);
        snprintf(name, sizeof(name), "safetensors-header-%d.json", variant);
        write_seed("json", name, weights.data + 8, (size_t)header_size);
        if (variant == 2) {
            write_seed("json", "index-2.json", index.data, index.size - 1);
        }
        free(config.data);
        free(weights.data);
        free(index.data);
        free(packed.data);
        sq_model_free(&model);
    }
    for (size_t i = 0; i < sizeof(JSON_SEEDS) / sizeof(JSON_SEEDS[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "snippet-%zu.json", i);
        write_text_seed("json", name, JSON_SEEDS[i]);
    }

    /* Rotation files: identity rotations in both modes. */
    for (int mode = 0; mode <= 1; mode++) {
        sq_rotation_set set;
        sq_error err;
        if (sq_rotation_set_alloc(&set, &small, &err) != SQ_OK) {
            fuzz_fail("cannot allocate rotations", err.message);
        }
        set.mode_had = mode;
        set.online_seed = 42;
        set.r1[1] = 0.5f; /* not orthogonal, which loading does not check */
        const char *path = fuzz_scratch_path("rotation.seed");
        if (sq_rotation_set_save(&set, path, &err) != SQ_OK) {
            fuzz_fail("cannot write a rotation file", err.message);
        }
        uint8_t *data;
        size_t size;
        if (sq_io_read_file(path, &data, &size, &err) != SQ_OK) {
            fuzz_fail("cannot read back a rotation file", err.message);
        }
        write_seed("rotation", mode ? "had.bin" : "nohad.bin", data, size);
        free(data);
        remove(path);
        sq_rotation_set_free(&set);
    }

    /* Texts for both encoders and the chat templates. */
    for (size_t i = 0; i < sizeof(TEXTS) / sizeof(TEXTS[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "text-%zu.txt", i);
        write_text_seed("spm_encode", name, TEXTS[i]);
        write_text_seed("bpe_encode", name, TEXTS[i]);
    }
    for (size_t i = 0; i < sizeof(TEMPLATES) / sizeof(TEMPLATES[0]); i++) {
        char name[32];
        buffer b = {0};
        put_text(&b, TEMPLATES[i]);
        put_u8(&b, 0);
        put_text(&b, "Hi there <|im_end|>");
        snprintf(name, sizeof(name), "template-%zu.txt", i);
        write_seed("chat_template", name, b.data, b.size);
        free(b.data);
    }

    /* .spq files: per-channel and grouped weights, int8 and fp16 embeddings, both modes. */
    sq_config spq_config = tiny_config(8, 1, SPM_VOCAB_SIZE);
    spq_seed(&spq_config, 1, 0, 8, 0, "tied-channel-e8.spq");
    spq_seed(&spq_config, 0, 4, 16, 1, "separate-group4-e16-had.spq");
    return 0;
}
