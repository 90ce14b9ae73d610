/* Corruption tests for every loader: files truncated at many offsets, seeded random bit flips in
 * headers, oversized or negative dimensions and NaN weights. Each case must fail with a non-OK
 * status and a non-empty message (bit flips that leave a valid file may load) and must never
 * crash; run this test in an -fsanitize=address,undefined build to catch out-of-bounds reads. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io.h"
#include "formats/formats.h"
#include "formats/gguf_reader.h"
#include "test_util.h"

#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_GGUF "models/stories260K/stories260K.gguf"
#define STORIES_TOKENIZER "models/stories260K/tok512.bin"

static char temp_dir[64];
static char case_path[128];
static char hf_dir[128];

typedef struct blob {
    uint8_t *data;
    size_t size;
} blob;

static blob stories_bin;
static blob stories_gguf;
static blob hf_safetensors;
static blob hf_config;

/* xorshift64*, so every run flips the same bits. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    size_t written = fwrite(data, 1, size, f);
    return fclose(f) == 0 && written == size;
}

/* Writes size bytes to the case file and loads it through sq_model_load. */
static sq_status load_bytes(const uint8_t *data, size_t size, sq_error *err) {
    if (!write_file(case_path, data, size)) {
        return SQ_ERR_IO;
    }
    sq_model model;
    sq_error_clear(err);
    sq_status status = sq_model_load(case_path, STORIES_TOKENIZER, NULL, &model, err);
    if (status == SQ_OK) {
        sq_model_free(&model);
    }
    return status;
}

/* Writes the HF directory with the given safetensors and config bytes and loads it. */
static sq_status load_hf(const uint8_t *weights, size_t weights_size, const uint8_t *config, size_t config_size,
                         sq_error *err) {
    char path[256];
    snprintf(path, sizeof(path), "%s/model.safetensors", hf_dir);
    if (!write_file(path, weights, weights_size)) {
        return SQ_ERR_IO;
    }
    snprintf(path, sizeof(path), "%s/config.json", hf_dir);
    if (!write_file(path, config, config_size)) {
        return SQ_ERR_IO;
    }
    sq_model model;
    sq_error_clear(err);
    sq_status status = sq_model_load(hf_dir, STORIES_TOKENIZER, NULL, &model, err);
    if (status == SQ_OK) {
        sq_model_free(&model);
    }
    return status;
}

/* Offsets to truncate at: every byte of the first 128, then about 150 spread over the file,
 * plus size - 1. */
static size_t truncation_offsets(size_t size, size_t *offsets, size_t capacity) {
    size_t n = 0;
    for (size_t i = 0; i < 128 && i < size && n < capacity; i++) {
        offsets[n++] = i;
    }
    size_t step = size / 150 + 1;
    for (size_t i = 128; i < size && n < capacity; i += step) {
        offsets[n++] = i + (size_t)(next_random() % step) < size ? i + (size_t)(next_random() % step) : i;
    }
    if (n < capacity && size > 0) {
        offsets[n++] = size - 1;
    }
    return n;
}

static void check_truncations(const blob *file, const char *label) {
    size_t offsets[400];
    size_t n = truncation_offsets(file->size, offsets, 400);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        sq_error err;
        sq_status status = load_bytes(file->data, offsets[i], &err);
        if (status == SQ_OK || err.message[0] == '\0') {
            failures++;
            fprintf(stderr, "%s truncated to %zu bytes: status %s, message '%s'\n", label, offsets[i],
                    sq_status_name(status), err.message);
        }
    }
    CHECK_MSG(failures == 0, "%zu of %zu truncations of %s were not rejected", failures, n, label);
}

static void test_truncated_llama2c(void) {
    check_truncations(&stories_bin, "stories260K.bin");
}

static void test_truncated_gguf(void) {
    check_truncations(&stories_gguf, "stories260K.gguf");
}

static void test_truncated_safetensors(void) {
    size_t offsets[400];
    size_t n = truncation_offsets(hf_safetensors.size, offsets, 400);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        sq_error err;
        sq_status status = load_hf(hf_safetensors.data, offsets[i], hf_config.data, hf_config.size, &err);
        failures += status == SQ_OK || err.message[0] == '\0';
    }
    CHECK_MSG(failures == 0, "%zu of %zu safetensors truncations were not rejected", failures, n);

    failures = 0;
    for (size_t cut = 0; cut < hf_config.size; cut += 7) {
        sq_error err;
        sq_status status = load_hf(hf_safetensors.data, hf_safetensors.size, hf_config.data, cut, &err);
        failures += status == SQ_OK || err.message[0] == '\0';
    }
    CHECK_MSG(failures == 0, "%zu config.json truncations were not rejected", failures);
}

/* Every single-bit change of the llama2.c header changes the size the header implies (or makes
 * a field invalid), so each must be rejected. */
static void test_llama2c_header_bit_flips(void) {
    uint8_t *copy = malloc(stories_bin.size);
    size_t accepted = 0;
    for (size_t bit = 0; bit < 28 * 8; bit++) {
        memcpy(copy, stories_bin.data, stories_bin.size);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sq_error err;
        sq_status status = load_bytes(copy, stories_bin.size, &err);
        if (status == SQ_OK || err.message[0] == '\0') {
            accepted++;
            fprintf(stderr, "header bit %zu flipped: status %s\n", bit, sq_status_name(status));
        }
    }
    CHECK_MSG(accepted == 0, "%zu header bit flips were accepted", accepted);
    free(copy);
}

/* Returns the size of the metadata region of stories260K.gguf (header, key-value pairs and
 * tensor infos), which is where the data section starts. */
static size_t gguf_metadata_size(void) {
    sq_gguf_file *file = NULL;
    sq_error err;
    if (sq_gguf_open(STORIES_GGUF, &file, &err) != SQ_OK) {
        return 24;
    }
    size_t size = (size_t)file->data_offset;
    sq_gguf_close(file);
    return size;
}

static void test_gguf_bit_flips(void) {
    uint8_t *copy = malloc(stories_gguf.size);

    /* Magic, version and the two counts: every flip must be rejected, except turning version 3
     * into version 2 (bit 32), which has the same layout. */
    size_t accepted = 0;
    for (size_t bit = 0; bit < 24 * 8; bit++) {
        if (bit == 32) {
            continue;
        }
        memcpy(copy, stories_gguf.data, stories_gguf.size);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sq_error err;
        sq_status status = load_bytes(copy, stories_gguf.size, &err);
        if (status == SQ_OK || err.message[0] == '\0') {
            accepted++;
            fprintf(stderr, "GGUF header bit %zu flipped: status %s\n", bit, sq_status_name(status));
        }
    }
    CHECK_MSG(accepted == 0, "%zu GGUF header bit flips were accepted", accepted);

    /* Random flips anywhere in the metadata: a flip inside a token text or a float can leave a
     * valid file, so only a missing message counts as a failure. */
    size_t rejected = 0;
    size_t silent = 0;
    const size_t trials = 300;
    size_t region = gguf_metadata_size();
    for (size_t t = 0; t < trials; t++) {
        memcpy(copy, stories_gguf.data, stories_gguf.size);
        int flips = 1 + (int)(next_random() % 3);
        for (int f = 0; f < flips; f++) {
            size_t bit = (size_t)(next_random() % (region * 8));
            copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        sq_error err;
        sq_status status = load_bytes(copy, stories_gguf.size, &err);
        if (status != SQ_OK) {
            rejected++;
            silent += err.message[0] == '\0';
        }
    }
    CHECK_MSG(silent == 0, "%zu rejections had no message", silent);
    fprintf(stderr, "  GGUF metadata bit flips: %zu of %zu rejected\n", rejected, trials);
    free(copy);
}

static void test_safetensors_bit_flips(void) {
    uint64_t header_size = 0;
    for (int i = 0; i < 8; i++) {
        header_size |= (uint64_t)hf_safetensors.data[i] << (8 * i);
    }
    uint8_t *copy = malloc(hf_safetensors.size);
    size_t rejected = 0;
    size_t silent = 0;
    const size_t trials = 200;
    for (size_t t = 0; t < trials; t++) {
        memcpy(copy, hf_safetensors.data, hf_safetensors.size);
        size_t bit = (size_t)(next_random() % ((8 + header_size) * 8));
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sq_error err;
        sq_status status = load_hf(copy, hf_safetensors.size, hf_config.data, hf_config.size, &err);
        if (status != SQ_OK) {
            rejected++;
            silent += err.message[0] == '\0';
        }
    }
    CHECK_MSG(silent == 0, "%zu rejections had no message", silent);
    fprintf(stderr, "  safetensors header bit flips: %zu of %zu rejected\n", rejected, trials);

    /* Random flips in config.json. */
    uint8_t *config = malloc(hf_config.size);
    rejected = silent = 0;
    for (size_t t = 0; t < trials; t++) {
        memcpy(config, hf_config.data, hf_config.size);
        size_t bit = (size_t)(next_random() % (hf_config.size * 8));
        config[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        sq_error err;
        sq_status status = load_hf(hf_safetensors.data, hf_safetensors.size, config, hf_config.size, &err);
        if (status != SQ_OK) {
            rejected++;
            silent += err.message[0] == '\0';
        }
    }
    CHECK_MSG(silent == 0, "%zu rejections had no message", silent);
    fprintf(stderr, "  config.json bit flips: %zu of %zu rejected\n", rejected, trials);
    free(config);
    free(copy);
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void test_llama2c_oversized_dims(void) {
    struct {
        int field;
        int32_t value;
    } cases[] = {
        {0, 1 << 30}, {0, -64}, {0, 0},  {1, INT32_MAX}, {2, INT32_MAX}, {2, -5}, {3, 7},    {3, 65},
        {4, 3},       {4, 16},  {5, INT32_MIN}, {5, -INT32_MAX}, {5, 1 << 30}, {6, INT32_MAX}, {6, 0}, {1, 1 << 20},
    };
    uint8_t *copy = malloc(stories_bin.size);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(copy, stories_bin.data, stories_bin.size);
        put_le32(copy + 4 * cases[i].field, (uint32_t)cases[i].value);
        sq_error err;
        sq_status status = load_bytes(copy, stories_bin.size, &err);
        CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "field %d = %d accepted", cases[i].field, cases[i].value);
    }

    /* The size mismatch message gives both sizes. */
    memcpy(copy, stories_bin.data, stories_bin.size);
    put_le32(copy + 4 * 2, 6);
    sq_error err;
    CHECK(load_bytes(copy, stories_bin.size, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "1056540") != NULL);
    free(copy);
}

/* Finds the first occurrence of text in the blob, or returns SIZE_MAX. */
static size_t find_text(const blob *b, const char *text) {
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= b->size; i++) {
        if (memcmp(b->data + i, text, n) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void test_gguf_oversized_dims(void) {
    uint8_t *copy = malloc(stories_gguf.size);
    const char *keys[] = {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
                          "llama.attention.head_count", "llama.attention.head_count_kv", "llama.context_length"};
    const uint32_t values[] = {0xffffffffu, 0x80000000u, 1u << 30, 0, 100000, 3};
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        size_t at = find_text(&stories_gguf, keys[k]);
        CHECK(at != SIZE_MAX);
        if (at == SIZE_MAX) {
            continue;
        }
        size_t value_at = at + strlen(keys[k]) + 4; /* after the key text and the uint32 type */
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            memcpy(copy, stories_gguf.data, stories_gguf.size);
            put_le32(copy + value_at, values[v]);
            sq_error err;
            sq_status status = load_bytes(copy, stories_gguf.size, &err);
            int fine = strcmp(keys[k], "llama.context_length") == 0 && values[v] != 0 && values[v] <= (1u << 24);
            CHECK_MSG(fine || (status != SQ_OK && err.message[0] != '\0'), "%s = %u accepted", keys[k], values[v]);
        }
    }

    /* Tensor dimensions: the info follows the name as uint32 n_dims then uint64 ne[]. */
    const char *tensors[] = {"token_embd.weight", "blk.3.ffn_down.weight", "output_norm.weight"};
    const uint64_t dims[] = {0, 1, 1ull << 40, UINT64_MAX, 1ull << 62};
    for (size_t t = 0; t < sizeof(tensors) / sizeof(tensors[0]); t++) {
        size_t at = find_text(&stories_gguf, tensors[t]);
        CHECK(at != SIZE_MAX);
        if (at == SIZE_MAX) {
            continue;
        }
        size_t ne_at = at + strlen(tensors[t]) + 4;
        for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
            memcpy(copy, stories_gguf.data, stories_gguf.size);
            put_le64(copy + ne_at, dims[d]);
            sq_error err;
            sq_status status = load_bytes(copy, stories_gguf.size, &err);
            CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "%s ne[0] = %llu accepted", tensors[t],
                      (unsigned long long)dims[d]);
        }
        /* n_dims of 5 and of 2^31. */
        memcpy(copy, stories_gguf.data, stories_gguf.size);
        put_le32(copy + at + strlen(tensors[t]), 5);
        sq_error err;
        CHECK(load_bytes(copy, stories_gguf.size, &err) == SQ_ERR_FORMAT);
        put_le32(copy + at + strlen(tensors[t]), 0x80000000u);
        CHECK(load_bytes(copy, stories_gguf.size, &err) == SQ_ERR_FORMAT);
    }

    /* The token list declares 2^40 strings. */
    size_t at = find_text(&stories_gguf, "tokenizer.ggml.tokens");
    CHECK(at != SIZE_MAX);
    if (at != SIZE_MAX) {
        memcpy(copy, stories_gguf.data, stories_gguf.size);
        put_le64(copy + at + strlen("tokenizer.ggml.tokens") + 8, 1ull << 40);
        sq_error err;
        CHECK(load_bytes(copy, stories_gguf.size, &err) == SQ_ERR_FORMAT);
        CHECK(strstr(err.message, "remain") != NULL);
    }
    free(copy);
}

static void test_nan_weights(void) {
    float nan_value = NAN;
    uint8_t *copy = malloc(stories_bin.size);
    memcpy(copy, stories_bin.data, stories_bin.size);
    memcpy(copy + 28 + 4 * 1000, &nan_value, 4); /* token_embedding[15][40] */
    sq_error err;
    CHECK(load_bytes(copy, stories_bin.size, &err) == SQ_ERR_NUMERIC);
    CHECK(strstr(err.message, "token_embedding") != NULL);
    CHECK(strstr(err.message, "1000") != NULL);
    free(copy);

    copy = malloc(stories_gguf.size);
    memcpy(copy, stories_gguf.data, stories_gguf.size);
    float infinity = INFINITY;
    memcpy(copy + stories_gguf.size - 4, &infinity, 4); /* the last tensor's last value */
    CHECK(load_bytes(copy, stories_gguf.size, &err) == SQ_ERR_NUMERIC);
    CHECK(err.message[0] != '\0');
    free(copy);
}

/* ---- An F32 HF checkpoint of stories260K (q/k order does not matter for these tests) ---- */

static void append(blob *b, const void *data, size_t n) {
    b->data = realloc(b->data, b->size + n);
    memcpy(b->data + b->size, data, n);
    b->size += n;
}

static int build_hf_checkpoint(void) {
    sq_model m;
    sq_error err;
    if (sq_load_llama2c(STORIES_BIN, &m, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    const sq_config *c = &m.config;
    char *header = malloc(65536);
    size_t length = 0;
    uint64_t offset = 0;
    blob data = {0};
    const char *suffixes[9] = {"input_layernorm",   "self_attn.q_proj", "self_attn.k_proj",
                               "self_attn.v_proj",  "self_attn.o_proj", "post_attention_layernorm",
                               "mlp.gate_proj",     "mlp.up_proj",      "mlp.down_proj"};
    length += (size_t)sprintf(header + length, "{");
#define TENSOR(NAME, ROWS, COLS, PTR)                                                                      \
    do {                                                                                                   \
        uint64_t bytes = (uint64_t)(ROWS) * (uint64_t)(COLS) * 4;                                          \
        if ((ROWS) == 1) {                                                                                 \
            length += (size_t)sprintf(header + length, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],"       \
                                      "\"data_offsets\":[%llu,%llu]}", offset ? "," : "", NAME, (int)(COLS), \
                                      (unsigned long long)offset, (unsigned long long)(offset + bytes));  \
        } else {                                                                                           \
            length += (size_t)sprintf(header + length, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],"   \
                                      "\"data_offsets\":[%llu,%llu]}", offset ? "," : "", NAME, (int)(ROWS), \
                                      (int)(COLS), (unsigned long long)offset,                              \
                                      (unsigned long long)(offset + bytes));                              \
        }                                                                                                  \
        append(&data, (PTR), (size_t)bytes);                                                               \
        offset += bytes;                                                                                   \
    } while (0)
    TENSOR("model.embed_tokens.weight", c->vocab_size, c->dim, m.token_embedding);
    TENSOR("model.norm.weight", 1, c->dim, m.final_norm);
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &m.layers[l];
        const float *pointers[9] = {w->attn_norm, w->wq, w->wk, w->wv, w->wo, w->ffn_norm, w->w_gate, w->w_up, w->w_down};
        int32_t rows[9] = {1, 64, 32, 32, 64, 1, c->hidden_dim, c->hidden_dim, 64};
        int32_t cols[9] = {64, 64, 64, 64, 64, 64, 64, 64, c->hidden_dim};
        for (int k = 0; k < 9; k++) {
            char name[96];
            snprintf(name, sizeof(name), "model.layers.%d.%s.weight", l, suffixes[k]);
            TENSOR(name, rows[k], cols[k], pointers[k]);
        }
    }
#undef TENSOR
    length += (size_t)sprintf(header + length, "}");
    uint8_t size_bytes[8];
    put_le64(size_bytes, length);
    append(&hf_safetensors, size_bytes, 8);
    append(&hf_safetensors, header, length);
    append(&hf_safetensors, data.data, data.size);
    free(data.data);
    free(header);

    char config[1024];
    int n = snprintf(config, sizeof(config),
                     "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": %d, \"intermediate_size\": %d, "
                     "\"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d, "
                     "\"vocab_size\": %d, \"max_position_embeddings\": %d, \"rms_norm_eps\": 1e-05, "
                     "\"rope_theta\": 10000.0, \"tie_word_embeddings\": true}",
                     c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->context_length);
    append(&hf_config, config, (size_t)n);
    sq_model_free(&m);

    sq_error_clear(&err);
    sq_status status = load_hf(hf_safetensors.data, hf_safetensors.size, hf_config.data, hf_config.size, &err);
    if (status != SQ_OK) {
        fprintf(stderr, "the uncorrupted HF checkpoint does not load: %s\n", err.message);
    }
    return status == SQ_OK;
}

static void test_safetensors_oversized_dims(void) {
    uint8_t *copy = malloc(hf_safetensors.size);

    /* The header length field: past the end of the file, and 2^63. */
    const uint64_t sizes[] = {hf_safetensors.size, 1ull << 63, 0, 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memcpy(copy, hf_safetensors.data, hf_safetensors.size);
        put_le64(copy, sizes[i]);
        sq_error err;
        sq_status status = load_hf(copy, hf_safetensors.size, hf_config.data, hf_config.size, &err);
        CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "header size %llu accepted", (unsigned long long)sizes[i]);
    }

    /* Shape [512,64] of the embedding becomes [512,99999999] and [999999999999,64]. */
    blob source = hf_safetensors;
    size_t at = find_text(&source, "[512,64]");
    CHECK(at != SIZE_MAX);
    const char *replacements[] = {"[512,99]", "[999,64]", "[-12,64]", "[512.,64"};
    for (size_t r = 0; at != SIZE_MAX && r < sizeof(replacements) / sizeof(replacements[0]); r++) {
        memcpy(copy, hf_safetensors.data, hf_safetensors.size);
        memcpy(copy + at, replacements[r], 8);
        sq_error err;
        sq_status status = load_hf(copy, hf_safetensors.size, hf_config.data, hf_config.size, &err);
        CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "shape %s accepted", replacements[r]);
    }
    free(copy);

    /* config.json with huge, zero and negative values. */
    const char *configs[] = {
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 2147483647, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512}",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 99999999999, \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512}",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 0, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512}",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": -512, \"max_position_embeddings\": 512}",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"num_key_value_heads\": 3, \"vocab_size\": 512, "
        "\"max_position_embeddings\": 512}",
        "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 172, "
        "\"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512, \"max_position_embeddings\": 512, "
        "\"head_dim\": 1e400}",
    };
    for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
        sq_error err;
        sq_status status = load_hf(hf_safetensors.data, hf_safetensors.size, (const uint8_t *)configs[i],
                                   strlen(configs[i]), &err);
        CHECK_MSG(status != SQ_OK && err.message[0] != '\0', "config %zu accepted", i);
    }
}

static void test_wrong_magic_and_empty(void) {
    sq_error err;
    uint8_t *copy = malloc(stories_gguf.size);
    memcpy(copy, stories_gguf.data, stories_gguf.size);
    copy[3] = 'X'; /* "GGUX" is read as a llama2.c header, whose size then cannot match */
    CHECK(load_bytes(copy, stories_gguf.size, &err) == SQ_ERR_FORMAT);
    CHECK(load_bytes(copy, 0, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "empty") != NULL);
    CHECK(load_bytes((const uint8_t *)"GGUF", 4, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "truncated") != NULL);
    free(copy);
}

static int read_blob(const char *path, blob *out) {
    sq_error err;
    if (sq_io_read_file(path, &out->data, &out->size, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    return 1;
}

int main(void) {
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/sq_test_corrupt_XXXXXX");
    if (mkdtemp(temp_dir) == NULL) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    snprintf(case_path, sizeof(case_path), "%s/case.bin", temp_dir);
    snprintf(hf_dir, sizeof(hf_dir), "%s/hf", temp_dir);
    if (mkdir(hf_dir, 0700) != 0 || !read_blob(STORIES_BIN, &stories_bin) || !read_blob(STORIES_GGUF, &stories_gguf) ||
        !build_hf_checkpoint()) {
        return 1;
    }

    RUN_TEST(test_truncated_llama2c);
    RUN_TEST(test_truncated_gguf);
    RUN_TEST(test_truncated_safetensors);
    RUN_TEST(test_llama2c_header_bit_flips);
    RUN_TEST(test_gguf_bit_flips);
    RUN_TEST(test_safetensors_bit_flips);
    RUN_TEST(test_llama2c_oversized_dims);
    RUN_TEST(test_gguf_oversized_dims);
    RUN_TEST(test_safetensors_oversized_dims);
    RUN_TEST(test_nan_weights);
    RUN_TEST(test_wrong_magic_and_empty);

    char path[256];
    remove(case_path);
    snprintf(path, sizeof(path), "%s/model.safetensors", hf_dir);
    remove(path);
    snprintf(path, sizeof(path), "%s/config.json", hf_dir);
    remove(path);
    rmdir(hf_dir);
    rmdir(temp_dir);
    free(stories_bin.data);
    free(stories_gguf.data);
    free(hf_safetensors.data);
    free(hf_config.data);
    TEST_MAIN_END();
}
