/* sq_model_load: picks the loader from the content at path, attaches the tokenizer and checks
 * that the tokenizer and the model agree on the vocabulary size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "formats/file_reader.h"
#include "formats/formats.h"
#include "formats/loader_util.h"

typedef enum model_format {
    FORMAT_HF,
    FORMAT_GGUF,
    FORMAT_LLAMA2C,
} model_format;

static sq_status detect_format(const char *path, model_format *format, sq_error *err) {
    if (sq_io_is_directory(path)) {
        char *config = sq_path_join(path, "config.json");
        if (config == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a path inside '%s'", path);
        }
        int found = sq_path_is_file(config);
        free(config);
        if (!found) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "directory '%s' has no config.json; expected a Hugging Face model directory", path);
        }
        *format = FORMAT_HF;
        return SQ_OK;
    }

    sq_file_reader reader;
    sq_status status = sq_file_reader_open(&reader, path, err);
    if (status != SQ_OK) {
        return status;
    }
    uint8_t magic[4] = {0, 0, 0, 0};
    if (reader.size == 0) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "'%s' is empty", path);
    } else if (reader.size >= 4) {
        status = sq_file_reader_read(&reader, magic, 4, "the file magic", err);
    }
    sq_file_reader_close(&reader);
    if (status != SQ_OK) {
        return status;
    }
    *format = memcmp(magic, "GGUF", 4) == 0 ? FORMAT_GGUF : FORMAT_LLAMA2C;
    return SQ_OK;
}

/* Explains how to supply a tokenizer for a model file that carries none. */
static sq_status missing_tokenizer(const char *path, model_format format, sq_error *err) {
    if (format == FORMAT_HF) {
        char *tokenizer_json = sq_path_join(path, "tokenizer.json");
        int has_json = tokenizer_json != NULL && sq_path_is_file(tokenizer_json);
        free(tokenizer_json);
        if (has_json) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "'%s': reading tokenizer.json is not supported yet; pass --tokenizer with a llama2.c tokenizer.bin for this vocabulary",
                                path);
        }
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "'%s' has no tokenizer; pass --tokenizer with a llama2.c tokenizer.bin for this vocabulary", path);
    }
    if (format == FORMAT_LLAMA2C) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "'%s' is a llama2.c checkpoint, which carries no tokenizer; pass --tokenizer with its tokenizer.bin",
                            path);
    }
    return sq_error_set(err, SQ_ERR_INVALID_ARG,
                        "'%s' has no tokenizer metadata; pass --tokenizer with a llama2.c tokenizer.bin", path);
}

sq_status sq_model_load(const char *path, const char *tokenizer_path, const sq_logger *logger, sq_model *model,
                        sq_error *err) {
    memset(model, 0, sizeof(*model));
    model_format format;
    sq_status status = detect_format(path, &format, err);
    if (status != SQ_OK) {
        return status;
    }

    switch (format) {
    case FORMAT_HF: status = sq_load_hf(path, logger, model, err); break;
    case FORMAT_GGUF: status = sq_load_gguf_ex(path, tokenizer_path == NULL, logger, model, err); break;
    case FORMAT_LLAMA2C: status = sq_load_llama2c(path, model, err); break;
    }
    if (status != SQ_OK) {
        return status;
    }

    /* A tokenizer given by the caller replaces the file's own. */
    if (tokenizer_path != NULL) {
        sq_tokenizer *tokenizer = NULL;
        status = sq_tokenizer_load_llama2c(tokenizer_path, model->config.vocab_size, &tokenizer, err);
        if (status == SQ_ERR_MISMATCH && err != NULL) {
            char detail[SQ_ERROR_MESSAGE_MAX];
            snprintf(detail, sizeof(detail), "%s", err->message);
            sq_error_set(err, status, "tokenizer '%s' does not fit model '%s' (vocab_size %d): %s", tokenizer_path, path,
                         model->config.vocab_size, detail);
        } else if (status != SQ_OK) {
            sq_loader_prefix_error(err, tokenizer_path, status);
        }
        if (status != SQ_OK) {
            sq_model_free(model);
            return status;
        }
        sq_tokenizer_free(model->tokenizer);
        model->tokenizer = tokenizer;
    }
    if (model->tokenizer == NULL) {
        status = missing_tokenizer(path, format, err);
        sq_model_free(model);
        return status;
    }

    int32_t tokenizer_vocab = sq_tokenizer_vocab_size(model->tokenizer);
    if (tokenizer_vocab != model->config.vocab_size) {
        status = sq_error_set(err, SQ_ERR_MISMATCH,
                              "tokenizer '%s' has %d tokens but model '%s' has vocab_size %d; use the tokenizer built for this model",
                              tokenizer_path != NULL ? tokenizer_path : path, tokenizer_vocab, path,
                              model->config.vocab_size);
        sq_model_free(model);
        return status;
    }

    const sq_config *c = &model->config;
    SQ_LOG_INFO_F(logger, "model '%s' (%s): %zu parameters, %d layers, dim %d, vocab %d", path, model->format,
                  sq_model_parameter_count(model), c->n_layers, c->dim, c->vocab_size);
    return SQ_OK;
}
