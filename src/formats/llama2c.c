/* Loads a llama2.c checkpoint (the version-0 "legacy" export of run.c): a header of seven
 * int32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len} followed by fp32
 * tensors in this order: token_embedding (vocab, dim), rms_att (n_layers, dim), wq, wk, wv, wo,
 * rms_ffn (n_layers, dim), w1 = gate, w2 = down, w3 = up (each for all layers), rms_final (dim),
 * freq_cis_real and freq_cis_imag (seq_len * head_dim / 2 each, not needed: the engine computes
 * RoPE itself), then the classifier (vocab, dim) only when vocab_size is negative. The weights
 * already use the (out, in) row-major and interleaved RoPE layouts of sq_model. The file carries
 * no tokenizer; RoPE theta is 10000 and the RMSNorm epsilon 1e-5, as in run.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "formats/checked_math.h"
#include "formats/file_reader.h"
#include "formats/formats.h"
#include "formats/loader_util.h"

#define LLAMA2C_HEADER_BYTES 28

/* Checks the header, fills the configuration and computes the file size the header implies. */
static sq_status parse_header(const sq_file_reader *reader, const int32_t header[7], sq_config *c, int *tied,
                              uint64_t *expected_size, sq_error *err) {
    const char *path = reader->path;
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) {
        if (header[i] == 0 || (header[i] < 0 && i != 5) || header[i] == INT32_MIN) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s' is not a valid llama2.c checkpoint: header field %s = %d, expected a positive value",
                                path, names[i], header[i]);
        }
    }

    memset(c, 0, sizeof(*c));
    c->dim = header[0];
    c->hidden_dim = header[1];
    c->n_layers = header[2];
    c->n_heads = header[3];
    c->n_kv_heads = header[4];
    c->vocab_size = header[5] < 0 ? -header[5] : header[5];
    c->context_length = header[6];
    c->rope_theta = 10000.0f;
    c->norm_eps = 1e-5f;
    *tied = header[5] > 0;
    if (c->dim % c->n_heads != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': dim = %d is not a multiple of n_heads = %d", path, c->dim,
                            c->n_heads);
    }
    c->head_dim = c->dim / c->n_heads;
    sq_status status = sq_config_validate(c, err);
    if (status != SQ_OK) {
        return sq_loader_prefix_error(err, path, status);
    }

    /* Count the floats the header implies, in 64 bits with overflow checks. */
    uint64_t dim = (uint64_t)c->dim, hidden = (uint64_t)c->hidden_dim, layers = (uint64_t)c->n_layers;
    uint64_t vocab = (uint64_t)c->vocab_size, seq_len = (uint64_t)c->context_length;
    uint64_t kv_dim = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    uint64_t per_layer = 0;
    uint64_t floats = 0;
    int ok = sq_checked_mul_add_u64(&per_layer, 2, dim) &&               /* rms_att, rms_ffn */
             sq_checked_mul_add_u64(&per_layer, 2 * dim, dim) &&         /* wq, wo */
             sq_checked_mul_add_u64(&per_layer, 2 * kv_dim, dim) &&      /* wk, wv */
             sq_checked_mul_add_u64(&per_layer, 3 * hidden, dim) &&      /* w1, w2, w3 */
             sq_checked_mul_add_u64(&floats, vocab, dim) &&              /* token_embedding */
             sq_checked_mul_add_u64(&floats, layers, per_layer) &&
             sq_checked_add_u64(floats, dim, &floats) &&                 /* rms_final */
             sq_checked_mul_add_u64(&floats, seq_len, (uint64_t)c->head_dim) && /* freq_cis real + imag */
             (*tied || sq_checked_mul_add_u64(&floats, vocab, dim)) &&   /* classifier */
             sq_checked_mul_u64(floats, sizeof(float), expected_size) &&
             sq_checked_add_u64(*expected_size, LLAMA2C_HEADER_BYTES, expected_size);
    if (!ok) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': the llama2.c header implies a file size that overflows 64 bits", path);
    }
    if (*expected_size != reader->size) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s' does not match its llama2.c header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d): expected %llu bytes, the file has %llu",
                            path, header[0], header[1], header[2], header[3], header[4], header[5], header[6],
                            (unsigned long long)*expected_size, (unsigned long long)reader->size);
    }
    return SQ_OK;
}

/* Reads one tensor of rows * cols floats for every layer into the sq_layer_weights field at
 * offset_of_field. */
static sq_status read_per_layer(sq_file_reader *reader, sq_model *model, size_t offset_of_field, int32_t rows,
                                int32_t cols, const char *name, sq_error *err) {
    for (int32_t l = 0; l < model->config.n_layers; l++) {
        float **field = (float **)((char *)&model->layers[l] + offset_of_field);
        sq_status status = sq_file_reader_read(reader, *field, (uint64_t)rows * (uint64_t)cols * sizeof(float), name, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    return SQ_OK;
}

static sq_status read_weights(sq_file_reader *reader, sq_model *model, sq_error *err) {
    const sq_config *c = &model->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    sq_status status;
    if ((status = sq_file_reader_read(reader, model->token_embedding,
                                      (uint64_t)c->vocab_size * (uint64_t)c->dim * sizeof(float), "token_embedding",
                                      err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, attn_norm), 1, c->dim, "rms_att", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, wq), q_dim, c->dim, "wq", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, wk), kv_dim, c->dim, "wk", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, wv), kv_dim, c->dim, "wv", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, wo), c->dim, q_dim, "wo", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, ffn_norm), 1, c->dim, "rms_ffn", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, w_gate), c->hidden_dim, c->dim, "w1", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, w_down), c->dim, c->hidden_dim, "w2", err)) != SQ_OK ||
        (status = read_per_layer(reader, model, offsetof(sq_layer_weights, w_up), c->hidden_dim, c->dim, "w3", err)) != SQ_OK ||
        (status = sq_file_reader_read(reader, model->final_norm, (uint64_t)c->dim * sizeof(float), "rms_final", err)) != SQ_OK) {
        return status;
    }

    /* Skip freq_cis_real and freq_cis_imag. */
    uint64_t freq_bytes = (uint64_t)c->context_length * (uint64_t)c->head_dim * sizeof(float);
    if ((status = sq_file_reader_seek(reader, reader->position + freq_bytes, err)) != SQ_OK) {
        return status;
    }
    if (!model->tied_classifier) {
        status = sq_file_reader_read(reader, model->classifier, (uint64_t)c->vocab_size * (uint64_t)c->dim * sizeof(float),
                                     "classifier", err);
    }
    return status;
}

sq_status sq_load_llama2c(const char *path, sq_model *model, sq_error *err) {
    memset(model, 0, sizeof(*model));
    sq_file_reader reader;
    sq_status status = sq_file_reader_open(&reader, path, err);
    if (status != SQ_OK) {
        return status;
    }

    uint8_t header_bytes[LLAMA2C_HEADER_BYTES];
    int32_t header[7];
    uint64_t expected_size = 0;
    int tied = 1;
    if (reader.size == 0) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "'%s' is empty", path);
    } else {
        status = sq_file_reader_read(&reader, header_bytes, sizeof(header_bytes), "the llama2.c header", err);
    }
    if (status == SQ_OK) {
        for (int i = 0; i < 7; i++) {
            header[i] = (int32_t)sq_load_le32(header_bytes + 4 * i);
        }
        status = parse_header(&reader, header, &model->config, &tied, &expected_size, err);
    }
    if (status == SQ_OK && (status = sq_model_alloc_weights(model, tied, err)) != SQ_OK) {
        sq_loader_prefix_error(err, path, status);
    }
    if (status == SQ_OK) {
        status = read_weights(&reader, model, err);
    }
    if (status == SQ_OK) {
        status = sq_loader_check_weights(model, path, err);
    }
    sq_file_reader_close(&reader);

    if (status != SQ_OK) {
        sq_model_free(model);
        return status;
    }
    model->format = "llama2c";
    return SQ_OK;
}
