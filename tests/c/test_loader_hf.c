/* Tests of the Hugging Face directory loader. A helper writes stories260K's weights (from the
 * llama2.c checkpoint) as HF checkpoints. It permutes q/k rows the way transformers'
 * convert_llama_weights_to_hf.py does, with view(heads, head_dim / 2, 2, in).transpose(1, 2).
 * Loading the checkpoints must give back the original weights exactly:
 *   - one model.safetensors in F32 with a tied classifier;
 *   - two shards behind model.safetensors.index.json, one in F16 and one in BF16, with lm_head;
 * plus rejection of unsupported or broken directories. Also covers the JSON parser. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/formats.h"
#include "formats/json.h"
#include "formats/safetensors.h"
#include "test_util.h"

#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_TOKENIZER "models/stories260K/tok512.bin"

static char temp_dir[64];

enum dtype { DT_F32, DT_F16, DT_BF16, DT_I8 };

/* ---- Independent fp16 and bf16 encoding (round to nearest even) and decoding ---- */

static uint16_t encode_f16(float value) {
    double x = fabs((double)value);
    uint16_t sign = signbit(value) ? 0x8000 : 0;
    if (isnan(value)) {
        return 0x7e00;
    }
    if (x >= 65520.0) {
        return sign | 0x7c00;
    }
    int e;
    frexp(x, &e); /* x = f * 2^e with f in [0.5, 1), so the leading bit has weight 2^(e - 1) */
    e -= 1;
    if (x == 0.0 || e < -14) {
        return sign | (uint16_t)rint(x * 16777216.0); /* subnormal steps of 2^-24; 1024 is the smallest normal */
    }
    double m = rint(ldexp(x, 10 - e)); /* in [1024, 2048] */
    if (m == 2048.0) {
        m = 1024.0;
        e += 1;
    }
    if (e > 15) {
        return sign | 0x7c00;
    }
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)(m - 1024.0);
}

static float decode_f16(uint16_t bits) {
    int exponent = (bits >> 10) & 0x1f;
    int mantissa = bits & 0x3ff;
    double magnitude = exponent == 0 ? ldexp(mantissa, -24) : ldexp(1024 + mantissa, exponent - 25);
    return (float)((bits & 0x8000) ? -magnitude : magnitude);
}

static uint16_t encode_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    bits += 0x7fff + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

static float decode_bf16(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, 4);
    return value;
}

/* The value a loader must return after a round trip through dtype. */
static float round_trip(float value, enum dtype dtype) {
    switch (dtype) {
    case DT_F16: return decode_f16(encode_f16(value));
    case DT_BF16: return decode_bf16(encode_bf16(value));
    default: return value;
    }
}

/* ---- A safetensors writer ---- */

typedef struct st_tensor {
    char name[96];
    enum dtype dtype;
    int32_t rows; /* 0 for a vector */
    int32_t cols;
    const float *data;
} st_tensor;

static const char *dtype_text(enum dtype d) {
    switch (d) {
    case DT_F32: return "F32";
    case DT_F16: return "F16";
    case DT_BF16: return "BF16";
    default: return "I8";
    }
}

static size_t dtype_size(enum dtype d) {
    return d == DT_F32 ? 4 : (d == DT_I8 ? 1 : 2);
}

static int write_safetensors(const char *path, const st_tensor *tensors, size_t n) {
    size_t header_capacity = 256 + n * 200;
    char *header = malloc(header_capacity);
    size_t length = 0;
    uint64_t offset = 0;
    length += (size_t)snprintf(header + length, header_capacity - length, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = &tensors[i];
        size_t count = (size_t)(t->rows > 0 ? t->rows : 1) * (size_t)t->cols;
        uint64_t bytes = count * dtype_size(t->dtype);
        if (t->rows > 0) {
            length += (size_t)snprintf(header + length, header_capacity - length,
                                       ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%llu,%llu]}",
                                       t->name, dtype_text(t->dtype), t->rows, t->cols, (unsigned long long)offset,
                                       (unsigned long long)(offset + bytes));
        } else {
            length += (size_t)snprintf(header + length, header_capacity - length,
                                       ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%llu,%llu]}", t->name,
                                       dtype_text(t->dtype), t->cols, (unsigned long long)offset,
                                       (unsigned long long)(offset + bytes));
        }
        offset += bytes;
    }
    length += (size_t)snprintf(header + length, header_capacity - length, "}");
    while (length % 8 != 0) {
        header[length++] = ' ';
    }

    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        free(header);
        return 0;
    }
    uint8_t size_bytes[8];
    for (int i = 0; i < 8; i++) {
        size_bytes[i] = (uint8_t)((uint64_t)length >> (8 * i));
    }
    fwrite(size_bytes, 1, 8, f);
    fwrite(header, 1, length, f);
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = &tensors[i];
        size_t count = (size_t)(t->rows > 0 ? t->rows : 1) * (size_t)t->cols;
        for (size_t j = 0; j < count; j++) {
            uint8_t bytes[4];
            if (t->dtype == DT_F32) {
                memcpy(bytes, &t->data[j], 4);
                fwrite(bytes, 1, 4, f);
            } else if (t->dtype == DT_I8) {
                bytes[0] = (uint8_t)(int8_t)t->data[j];
                fwrite(bytes, 1, 1, f);
            } else {
                uint16_t h = t->dtype == DT_F16 ? encode_f16(t->data[j]) : encode_bf16(t->data[j]);
                bytes[0] = (uint8_t)h;
                bytes[1] = (uint8_t)(h >> 8);
                fwrite(bytes, 1, 2, f);
            }
        }
    }
    free(header);
    return fclose(f) == 0;
}

/* ---- Building HF checkpoints from the llama2.c model ---- */

/* Returns a copy of an interleaved q or k matrix in HF's rotate-half row order. For head h,
 * HF row h * head_dim + j * head_dim / 2 + i is interleaved row h * head_dim + 2i + j. */
static float *permute_for_hf(const float *w, int32_t heads, int32_t head_dim, int32_t cols) {
    float *out = malloc((size_t)heads * (size_t)head_dim * (size_t)cols * sizeof(float));
    int32_t half = head_dim / 2;
    for (int32_t h = 0; h < heads; h++) {
        for (int32_t i = 0; i < half; i++) {
            for (int32_t j = 0; j < 2; j++) {
                const float *src = w + ((size_t)h * head_dim + 2 * (size_t)i + (size_t)j) * (size_t)cols;
                float *dst = out + ((size_t)h * head_dim + (size_t)j * half + (size_t)i) * (size_t)cols;
                memcpy(dst, src, (size_t)cols * sizeof(float));
            }
        }
    }
    return out;
}

typedef struct hf_options {
    int tied;              /* omit lm_head and set tie_word_embeddings */
    int sharded;           /* two shards: layers 0..2 + embedding in F16, the rest in BF16 */
    const char *architecture;
    const char *extra_config; /* appended inside the config object, such as ",\"rope_scaling\":{...}" */
    const char *skip_tensor;  /* a tensor name left out */
    int bad_shape;            /* write the first k_proj with rows and cols swapped */
    int nan_in_norm;          /* put a NaN into model.norm.weight */
    int int8_norm;            /* store model.norm.weight as I8 */
} hf_options;

/* F32 for one file; F16 for the first shard and BF16 for the second when sharded. */
static enum dtype shard_dtype(const hf_options *o, int shard) {
    if (!o->sharded) {
        return DT_F32;
    }
    return shard == 0 ? DT_F16 : DT_BF16;
}

static int write_config(const char *dir, const sq_config *c, const hf_options *o) {
    char path[256];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return 0;
    }
    fprintf(f,
            "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"llama\",\n  \"hidden_act\": \"silu\",\n"
            "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n"
            "  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n  \"vocab_size\": %d,\n"
            "  \"max_position_embeddings\": %d,\n  \"rope_theta\": 10000.0,\n  \"rms_norm_eps\": 1e-05,\n"
            "  \"rope_scaling\": null,\n  \"torch_dtype\": \"float32\",\n  \"tie_word_embeddings\": %s%s\n}\n",
            o->architecture != NULL ? o->architecture : "LlamaForCausalLM", c->dim, c->hidden_dim, c->n_layers,
            c->n_heads, c->n_kv_heads, c->vocab_size, c->context_length, o->tied ? "true" : "false",
            o->extra_config != NULL ? o->extra_config : "");
    return fclose(f) == 0;
}

/* Writes the model as an HF directory dir; returns 1 on success. */
static int write_hf_checkpoint(const char *dir, const sq_model *m, const hf_options *o) {
    const sq_config *c = &m->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    size_t capacity = 3 + 9 * (size_t)c->n_layers;
    st_tensor *tensors = calloc(capacity, sizeof(st_tensor));
    int *shard_of = calloc(capacity, sizeof(int));
    float **owned = calloc(capacity, sizeof(float *));
    size_t n = 0;
    size_t n_owned = 0;
    float *norm_copy = NULL;

#define ADD(SHARD, ROWS, COLS, DATA, ...)                                                     \
    do {                                                                                      \
        snprintf(tensors[n].name, sizeof(tensors[n].name), __VA_ARGS__);                      \
        tensors[n].rows = (ROWS);                                                             \
        tensors[n].cols = (COLS);                                                             \
        tensors[n].data = (DATA);                                                             \
        tensors[n].dtype = shard_dtype(o, (SHARD));                                           \
        shard_of[n] = (SHARD);                                                                \
        n++;                                                                                  \
    } while (0)

    ADD(0, c->vocab_size, c->dim, m->token_embedding, "model.embed_tokens.weight");
    const float *norm = m->final_norm;
    if (o->nan_in_norm) {
        norm_copy = malloc((size_t)c->dim * sizeof(float));
        memcpy(norm_copy, m->final_norm, (size_t)c->dim * sizeof(float));
        norm_copy[3] = NAN;
        norm = norm_copy;
    }
    ADD(1, 0, c->dim, norm, "model.norm.weight");
    if (o->int8_norm) {
        tensors[n - 1].dtype = DT_I8;
    }
    if (!o->tied) {
        ADD(1, c->vocab_size, c->dim, m->classifier, "lm_head.weight");
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &m->layers[l];
        int shard = l < 3 ? 0 : 1;
        float *q = permute_for_hf(w->wq, c->n_heads, c->head_dim, c->dim);
        float *k = permute_for_hf(w->wk, c->n_kv_heads, c->head_dim, c->dim);
        owned[n_owned++] = q;
        owned[n_owned++] = k;
        ADD(shard, 0, c->dim, w->attn_norm, "model.layers.%d.input_layernorm.weight", l);
        ADD(shard, q_dim, c->dim, q, "model.layers.%d.self_attn.q_proj.weight", l);
        if (o->bad_shape && l == 0) {
            ADD(shard, c->dim, kv_dim, k, "model.layers.%d.self_attn.k_proj.weight", l);
        } else {
            ADD(shard, kv_dim, c->dim, k, "model.layers.%d.self_attn.k_proj.weight", l);
        }
        ADD(shard, kv_dim, c->dim, w->wv, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(shard, c->dim, q_dim, w->wo, "model.layers.%d.self_attn.o_proj.weight", l);
        ADD(shard, 0, c->dim, w->ffn_norm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(shard, c->hidden_dim, c->dim, w->w_gate, "model.layers.%d.mlp.gate_proj.weight", l);
        ADD(shard, c->hidden_dim, c->dim, w->w_up, "model.layers.%d.mlp.up_proj.weight", l);
        ADD(shard, c->dim, c->hidden_dim, w->w_down, "model.layers.%d.mlp.down_proj.weight", l);
    }
#undef ADD
    if (o->skip_tensor != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(tensors[i].name, o->skip_tensor) == 0) {
                tensors[i] = tensors[n - 1];
                shard_of[i] = shard_of[n - 1];
                n--;
                break;
            }
        }
    }

    int ok = write_config(dir, c, o);
    char path[256];
    if (!o->sharded) {
        snprintf(path, sizeof(path), "%s/model.safetensors", dir);
        ok = ok && write_safetensors(path, tensors, n);
    } else {
        st_tensor *part = calloc(n, sizeof(st_tensor));
        snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
        FILE *index = fopen(path, "w");
        ok = ok && index != NULL;
        if (index != NULL) {
            fprintf(index, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
            for (size_t i = 0; i < n; i++) {
                fprintf(index, "%s\"%s\": \"model-%05d-of-00002.safetensors\"", i ? ", " : "", tensors[i].name,
                        shard_of[i] + 1);
            }
            fprintf(index, "}}\n");
            ok = fclose(index) == 0 && ok;
        }
        for (int shard = 0; shard < 2; shard++) {
            size_t count = 0;
            for (size_t i = 0; i < n; i++) {
                if (shard_of[i] == shard) {
                    part[count++] = tensors[i];
                }
            }
            snprintf(path, sizeof(path), "%s/model-%05d-of-00002.safetensors", dir, shard + 1);
            ok = ok && write_safetensors(path, part, count);
        }
        free(part);
    }
    for (size_t i = 0; i < n_owned; i++) {
        free(owned[i]);
    }
    free(owned);
    free(norm_copy);
    free(tensors);
    free(shard_of);
    return ok;
}

static void remove_checkpoint(const char *dir) {
    const char *names[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer.json"};
    char path[256];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

static void make_dir(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", temp_dir, name);
    remove_checkpoint(out);
    CHECK(mkdir(out, 0700) == 0);
}

/* ---- Comparisons ---- */

/* Counts values where loaded differs from round_trip(expected, dtype). */
static size_t count_mismatches(const float *loaded, const float *expected, size_t n, enum dtype dtype) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = round_trip(expected[i], dtype);
        if (memcmp(&loaded[i], &want, sizeof(float)) != 0) {
            bad++;
        }
    }
    return bad;
}

static void compare_models(const sq_model *loaded, const sq_model *ref, int sharded) {
    const sq_config *c = &ref->config;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim, kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    CHECK(loaded->config.dim == c->dim);
    CHECK(loaded->config.hidden_dim == c->hidden_dim);
    CHECK(loaded->config.n_layers == c->n_layers);
    CHECK(loaded->config.n_heads == c->n_heads);
    CHECK(loaded->config.n_kv_heads == c->n_kv_heads);
    CHECK(loaded->config.head_dim == c->head_dim);
    CHECK(loaded->config.vocab_size == c->vocab_size);
    CHECK(loaded->config.context_length == c->context_length);
    CHECK(loaded->config.rope_theta == 10000.0f);
    CHECK(loaded->config.norm_eps == 1e-5f);
    CHECK(strcmp(loaded->format, "hf") == 0);

    enum dtype first = sharded ? DT_F16 : DT_F32;
    enum dtype second = sharded ? DT_BF16 : DT_F32;
    CHECK(count_mismatches(loaded->token_embedding, ref->token_embedding, (size_t)c->vocab_size * dim, first) == 0);
    CHECK(count_mismatches(loaded->final_norm, ref->final_norm, dim, second) == 0);
    if (!loaded->tied_classifier) {
        CHECK(count_mismatches(loaded->classifier, ref->classifier, (size_t)c->vocab_size * dim, second) == 0);
    }
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *a = &loaded->layers[l];
        const sq_layer_weights *b = &ref->layers[l];
        enum dtype d = l < 3 ? first : second;
        CHECK_MSG(count_mismatches(a->attn_norm, b->attn_norm, dim, d) == 0, "layer %d attn_norm", l);
        CHECK_MSG(count_mismatches(a->wq, b->wq, q_dim * dim, d) == 0, "layer %d wq", l);
        CHECK_MSG(count_mismatches(a->wk, b->wk, kv_dim * dim, d) == 0, "layer %d wk", l);
        CHECK_MSG(count_mismatches(a->wv, b->wv, kv_dim * dim, d) == 0, "layer %d wv", l);
        CHECK_MSG(count_mismatches(a->wo, b->wo, dim * q_dim, d) == 0, "layer %d wo", l);
        CHECK_MSG(count_mismatches(a->ffn_norm, b->ffn_norm, dim, d) == 0, "layer %d ffn_norm", l);
        CHECK_MSG(count_mismatches(a->w_gate, b->w_gate, hidden * dim, d) == 0, "layer %d w_gate", l);
        CHECK_MSG(count_mismatches(a->w_up, b->w_up, hidden * dim, d) == 0, "layer %d w_up", l);
        CHECK_MSG(count_mismatches(a->w_down, b->w_down, dim * hidden, d) == 0, "layer %d w_down", l);
    }
}

static sq_model reference_model;

static void test_f16_encoder_sanity(void) {
    /* The test's own encoder against hand-computed half values. */
    CHECK(encode_f16(1.0f) == 0x3c00);
    CHECK(encode_f16(-2.0f) == 0xc000);
    CHECK(encode_f16(65504.0f) == 0x7bff);
    CHECK(encode_f16(1e-7f) == 0x0002); /* 1e-7 / 2^-24 = 1.68, rounds to 2 */
    CHECK(encode_f16(1.0f + 1.0f / 2048.0f) == 0x3c00); /* a tie rounds to the even mantissa */
    CHECK(encode_f16(1.0f + 3.0f / 2048.0f) == 0x3c02);
    CHECK(decode_f16(0x3555) == 0.333251953125f);
    CHECK(encode_bf16(1.0f) == 0x3f80);
    CHECK(decode_bf16(0xc040) == -3.0f);
}

static void test_hf_f32_single_file(void) {
    char dir[128];
    make_dir(dir, sizeof(dir), "hf_f32");
    hf_options o = {0};
    o.tied = 1;
    CHECK(write_hf_checkpoint(dir, &reference_model, &o));

    sq_model model;
    sq_error err;
    sq_status status = sq_load_hf(dir, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status == SQ_OK) {
        CHECK(model.tied_classifier == 1);
        compare_models(&model, &reference_model, 0);
        /* Spot check of the un-permutation: interleaved row 1 of head 0 is HF row head_dim / 2. */
        CHECK(memcmp(model.layers[0].wq + 1 * 64, reference_model.layers[0].wq + 1 * 64, 64 * sizeof(float)) == 0);
        sq_model_free(&model);
    }

    /* Through sq_model_load, which needs a tokenizer for HF directories. */
    sq_error_clear(&err);
    CHECK(sq_model_load(dir, NULL, NULL, &model, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "--tokenizer") != NULL);
    status = sq_model_load(dir, STORIES_TOKENIZER, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    sq_model_free(&model);

    char path[256];
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{}", f);
    fclose(f);
    CHECK(sq_model_load(dir, NULL, NULL, &model, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "tokenizer.json") != NULL);
    CHECK(strstr(err.message, "--tokenizer") != NULL);
    remove_checkpoint(dir);
}

static void test_hf_sharded_f16_bf16(void) {
    char dir[128];
    make_dir(dir, sizeof(dir), "hf_sharded");
    hf_options o = {0};
    o.sharded = 1;
    CHECK(write_hf_checkpoint(dir, &reference_model, &o));

    sq_model model;
    sq_error err;
    sq_status status = sq_load_hf(dir, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status == SQ_OK) {
        CHECK(model.tied_classifier == 0);
        compare_models(&model, &reference_model, 1);
        /* The conversions really changed some values, so the F16/BF16 paths were taken. */
        CHECK(memcmp(model.layers[4].wq, reference_model.layers[4].wq, 64 * 64 * sizeof(float)) != 0);
        sq_model_free(&model);
    }
    remove_checkpoint(dir);
}

/* Writes a variant checkpoint and returns the loader's status, leaving its message in err. */
static sq_status load_variant(const hf_options *o, sq_error *err) {
    char dir[128];
    make_dir(dir, sizeof(dir), "hf_variant");
    CHECK(write_hf_checkpoint(dir, &reference_model, o));
    sq_model model;
    sq_error_clear(err);
    sq_status status = sq_load_hf(dir, NULL, &model, err);
    sq_model_free(&model);
    remove_checkpoint(dir);
    return status;
}

static void test_hf_rejections(void) {
    sq_error err;
    hf_options o;

    memset(&o, 0, sizeof(o));
    o.architecture = "MistralForCausalLM";
    CHECK(load_variant(&o, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "MistralForCausalLM") != NULL);

    memset(&o, 0, sizeof(o));
    o.extra_config = ",\n  \"rope_scaling\": {\"rope_type\": \"default\"}";
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT); /* rope_scaling twice: a duplicate key */
    CHECK(strstr(err.message, "duplicate") != NULL);

    memset(&o, 0, sizeof(o));
    o.extra_config = ",\n  \"attention_bias\": true";
    CHECK(load_variant(&o, &err) == SQ_ERR_UNSUPPORTED);

    memset(&o, 0, sizeof(o));
    o.extra_config = ",\n  \"head_dim\": 16";
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT); /* q_proj is (64, 64), not (128, 64) */
    CHECK(strstr(err.message, "q_proj") != NULL);

    memset(&o, 0, sizeof(o));
    o.skip_tensor = "model.layers.3.mlp.up_proj.weight";
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "model.layers.3.mlp.up_proj.weight") != NULL);

    memset(&o, 0, sizeof(o));
    o.skip_tensor = "lm_head.weight"; /* untied but without a classifier */
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT);

    memset(&o, 0, sizeof(o));
    o.bad_shape = 1;
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "model.layers.0.self_attn.k_proj.weight") != NULL);

    memset(&o, 0, sizeof(o));
    o.sharded = 1;
    o.skip_tensor = "model.layers.4.self_attn.v_proj.weight";
    CHECK(load_variant(&o, &err) == SQ_ERR_FORMAT);

    memset(&o, 0, sizeof(o));
    o.nan_in_norm = 1;
    CHECK(load_variant(&o, &err) == SQ_ERR_NUMERIC);
    CHECK(strstr(err.message, "final_norm") != NULL);

    memset(&o, 0, sizeof(o));
    o.int8_norm = 1;
    CHECK(load_variant(&o, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "I8") != NULL);
}

/* A rope_scaling block, a non-Llama architecture and a sharded index that escapes the directory. */
static void test_hf_config_edits(void) {
    char dir[128];
    char path[256];
    make_dir(dir, sizeof(dir), "hf_edit");
    hf_options o = {0};
    o.sharded = 1;
    CHECK(write_hf_checkpoint(dir, &reference_model, &o));
    sq_model model;
    sq_error err;

    snprintf(path, sizeof(path), "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
          "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"vocab_size\": 512, "
          "\"max_position_embeddings\": 512, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}",
          f);
    fclose(f);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "llama3") != NULL);

    f = fopen(path, "w");
    fputs("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
          "\"num_hidden_layers\": 5, \"num_attention_heads\": 7, \"vocab_size\": 512, \"max_position_embeddings\": 512}",
          f);
    fclose(f);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "num_attention_heads") != NULL);

    f = fopen(path, "w");
    fputs("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": -64, \"intermediate_size\": 172, "
          "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512}",
          f);
    fclose(f);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "hidden_size") != NULL);

    f = fopen(path, "w");
    fputs("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,", f); /* truncated JSON */
    fclose(f);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "config.json") != NULL);

    o.sharded = 1;
    CHECK(write_config(dir, &reference_model.config, &o));
    snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
    f = fopen(path, "w");
    fputs("{\"weight_map\": {\"model.norm.weight\": \"../model-00001-of-00002.safetensors\"}}", f);
    fclose(f);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "inside the model directory") != NULL);

    remove(path);
    CHECK(sq_load_hf(dir, NULL, &model, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "model.safetensors") != NULL);
    remove_checkpoint(dir);
}

static void test_safetensors_header_checks(void) {
    char path[128];
    snprintf(path, sizeof(path), "%s/bad.safetensors", temp_dir);
    const char *headers[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}",     /* 8 bytes needed, 9 declared */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4096]}}",  /* past the end */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",    /* negative dimension */
        "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",      /* unknown dtype */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",     /* begin after end */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", /* overflow */
        "[1,2]",                                                                  /* not an object */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",       /* unterminated */
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        FILE *f = fopen(path, "wb");
        uint64_t n = strlen(headers[i]);
        uint8_t size_bytes[8];
        for (int b = 0; b < 8; b++) {
            size_bytes[b] = (uint8_t)(n >> (8 * b));
        }
        fwrite(size_bytes, 1, 8, f);
        fwrite(headers[i], 1, (size_t)n, f);
        float data[2] = {1.0f, 2.0f};
        fwrite(data, 4, 2, f);
        fclose(f);
        sq_safetensors_file *st = NULL;
        sq_error err;
        sq_error_clear(&err);
        sq_status status = sq_safetensors_open(path, &st, &err);
        CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "header %zu was accepted", i);
        sq_safetensors_close(st);
    }
    remove(path);
}

/* ---- JSON parser ---- */

static sq_status parse(const char *text, sq_json_value **out, sq_error *err) {
    sq_error_clear(err);
    return sq_json_parse(text, strlen(text), out, err);
}

static void test_json_values(void) {
    sq_json_value *v = NULL;
    sq_error err;
    const char *text = " {\"a\": [1, -0, 2.5e3, -1.25E-2, 9223372036854775807, -9223372036854775808, "
                       "18446744073709551616], \"s\": \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", "
                       "\"t\": true, \"f\": false, \"n\": null, \"o\": {}, \"e\": [], \"u\": \"\xc3\xa9\"} ";
    CHECK(parse(text, &v, &err) == SQ_OK);
    if (v == NULL) {
        return;
    }
    const sq_json_value *a = sq_json_get(v, "a");
    CHECK(a != NULL);
    if (a != NULL) {
        CHECK(a->type == SQ_JSON_ARRAY);
        CHECK(a->length == 7);
    }
    if (a != NULL && a->length == 7) {
        CHECK(a->items[0].is_integer);
        CHECK(a->items[0].integer == 1);
        CHECK(a->items[1].is_integer);
        CHECK(a->items[1].integer == 0);
        CHECK(!a->items[2].is_integer);
        CHECK(a->items[2].number == 2500.0);
        CHECK(a->items[3].number == -0.0125);
        CHECK(a->items[4].is_integer);
        CHECK(a->items[4].integer == INT64_MAX);
        CHECK(a->items[5].is_integer);
        CHECK(a->items[5].integer == INT64_MIN);
        CHECK(!a->items[6].is_integer);
        CHECK(a->items[6].number == 18446744073709551616.0);
    }
    const sq_json_value *s = sq_json_get(v, "s");
    const char expected[] = "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80";
    CHECK(s != NULL);
    if (s != NULL) {
        CHECK(s->length == sizeof(expected) - 1);
        CHECK(memcmp(s->string, expected, s->length) == 0);
    }
    CHECK(sq_json_get(v, "t")->boolean == 1);
    CHECK(sq_json_get(v, "f")->type == SQ_JSON_BOOL);
    CHECK(sq_json_get(v, "n")->type == SQ_JSON_NULL);
    CHECK(sq_json_get(v, "o")->type == SQ_JSON_OBJECT);
    CHECK(sq_json_get(v, "o")->length == 0);
    CHECK(sq_json_get(v, "e")->type == SQ_JSON_ARRAY);
    CHECK(sq_json_get(v, "e")->length == 0);
    CHECK(strcmp(sq_json_get(v, "u")->string, "\xc3\xa9") == 0);
    CHECK(sq_json_get(v, "missing") == NULL);
    sq_json_free(v);

    /* A \u0000 escape keeps its NUL byte, which the length counts. */
    CHECK(parse("\"a\\u0000b\"", &v, &err) == SQ_OK);
    if (v != NULL) {
        CHECK(v->length == 3);
        CHECK(v->string[1] == '\0');
    }
    sq_json_free(v);
}

static void test_json_rejects_invalid(void) {
    const char *cases[] = {
        "",          "   ",        "{",          "}",           "[1,]",         "{\"a\":1,}",    "{'a':1}",
        "01",        "1.",         ".5",         "-",           "1e",           "+1",           "NaN",
        "tru",       "nul",        "\"abc",      "\"a\\x\"",    "\"\\u12\"",    "\"\\ud800\"",  "\"\\udc00\"",
        "\"a\tb\"",  "\"\xff\"",   "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[1] 2",  "{\"a\":1,\"a\":2}", "// c\n1",
        "[1 2]",     "{\"a\" 1}",  "{1:2}",      "\"\xe2\x82\"",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sq_json_value *v = NULL;
        sq_error err;
        sq_status status = parse(cases[i], &v, &err);
        CHECK_MSG(status == SQ_ERR_FORMAT && v == NULL && err.message[0] != '\0', "case %zu was accepted", i);
        sq_json_free(v);
    }

    /* Nesting: 64 levels are accepted, 65 are not. */
    char deep[200];
    for (int depth = 64; depth <= 65; depth++) {
        memset(deep, 0, sizeof(deep));
        for (int i = 0; i < depth; i++) {
            deep[i] = '[';
            deep[2 * depth - 1 - i] = ']';
        }
        sq_json_value *v = NULL;
        sq_error err;
        sq_status status = parse(deep, &v, &err);
        CHECK(depth == 64 ? status == SQ_OK : status == SQ_ERR_FORMAT);
        sq_json_free(v);
    }

    sq_error err;
    sq_json_value *v = NULL;
    CHECK(parse("{\n  \"a\": 1,\n  \"b\": x\n}", &v, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "line 3") != NULL);
    CHECK(strstr(err.message, "column 8") != NULL);
}

int main(void) {
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/sq_test_hf_XXXXXX");
    if (mkdtemp(temp_dir) == NULL) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    sq_error err;
    if (sq_load_llama2c(STORIES_BIN, &reference_model, &err) != SQ_OK) {
        fprintf(stderr, "cannot load %s: %s\n", STORIES_BIN, err.message);
        return 1;
    }
    RUN_TEST(test_f16_encoder_sanity);
    RUN_TEST(test_hf_f32_single_file);
    RUN_TEST(test_hf_sharded_f16_bf16);
    RUN_TEST(test_hf_rejections);
    RUN_TEST(test_hf_config_edits);
    RUN_TEST(test_safetensors_header_checks);
    RUN_TEST(test_json_values);
    RUN_TEST(test_json_rejects_invalid);
    sq_model_free(&reference_model);
    rmdir(temp_dir);
    TEST_MAIN_END();
}
