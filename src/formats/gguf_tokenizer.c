/* Builds an sq_tokenizer from a GGUF file's tokenizer.ggml.* keys: model "llama" gives the SPM
 * kind and "gpt2" the byte-level BPE kind. Token ids equal to 0xFFFFFFFF mean "none". Defaults
 * for absent keys: add_bos_token and add_space_prefix are 1 for "llama" and 0 for "gpt2". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf_tokenizer.h"
#include "formats/loader_util.h"

/* Reads a token id key: absent or 0xFFFFFFFF (the "none" value some converters write) gives -1. */
static sq_status read_token_id(const sq_gguf_file *file, const char *key, int32_t vocab_size, int32_t *out,
                               sq_error *err) {
    *out = -1;
    if (sq_gguf_find_key(file, key) == NULL) {
        return SQ_OK;
    }
    uint64_t id;
    sq_status status = sq_gguf_get_uint(file, key, &id, err);
    if (status != SQ_OK) {
        return status;
    }
    if (id == UINT32_MAX) {
        return SQ_OK;
    }
    if (id >= (uint64_t)vocab_size) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': %s = %llu is outside the vocabulary of %d tokens",
                            file->reader.path, key, (unsigned long long)id, vocab_size);
    }
    *out = (int32_t)id;
    return SQ_OK;
}

static sq_status read_optional_bool(const sq_gguf_file *file, const char *key, int default_value, int *out,
                                    sq_error *err) {
    *out = default_value;
    if (sq_gguf_find_key(file, key) == NULL) {
        return SQ_OK;
    }
    return sq_gguf_get_bool(file, key, out, err);
}

/* Points pieces/lengths at the strings of array (whose elements are strings). */
static sq_status collect_strings(const sq_gguf_file *file, const char *key, const sq_gguf_value *array,
                                 const char ***pieces, uint32_t **lengths, sq_error *err) {
    size_t count = (size_t)array->array.count;
    const sq_gguf_string *strings = array->array.elements;
    *pieces = calloc(count > 0 ? count : 1, sizeof(char *));
    *lengths = calloc(count > 0 ? count : 1, sizeof(uint32_t));
    if (*pieces == NULL || *lengths == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the %zu entries of %s", count, key);
    }
    for (size_t i = 0; i < count; i++) {
        if (strings[i].length > UINT32_MAX) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': entry %zu of %s is longer than 4 GiB", file->reader.path, i,
                                key);
        }
        (*pieces)[i] = strings[i].data;
        (*lengths)[i] = (uint32_t)strings[i].length;
    }
    return SQ_OK;
}

sq_status sq_gguf_build_tokenizer(const sq_gguf_file *file, const sq_config *config, const sq_logger *logger,
                                  sq_tokenizer **out, sq_error *err) {
    const char *path = file->reader.path;
    *out = NULL;
    if (sq_gguf_find_key(file, "tokenizer.ggml.model") == NULL) {
        SQ_LOG_INFO_F(logger, "'%s' has no tokenizer.ggml.model; a tokenizer must be given separately", path);
        return SQ_OK;
    }

    const sq_gguf_string *model_name;
    const sq_gguf_value *tokens;
    sq_status status;
    if ((status = sq_gguf_get_string(file, "tokenizer.ggml.model", &model_name, err)) != SQ_OK ||
        (status = sq_gguf_get_array(file, "tokenizer.ggml.tokens", SQ_GGUF_TYPE_STRING, &tokens, err)) != SQ_OK) {
        return status;
    }

    sq_tokenizer_desc desc;
    memset(&desc, 0, sizeof(desc));
    if (strcmp(model_name->data, "llama") == 0) {
        desc.kind = SQ_TOKENIZER_SPM;
    } else if (strcmp(model_name->data, "gpt2") == 0) {
        desc.kind = SQ_TOKENIZER_BPE;
    } else {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "'%s': tokenizer.ggml.model = '%s' is not supported (expected 'llama' or 'gpt2'); pass --tokenizer to use another tokenizer",
                            path, model_name->data);
    }
    if (tokens->array.count != (uint64_t)config->vocab_size) {
        return sq_error_set(err, SQ_ERR_MISMATCH,
                            "'%s': tokenizer.ggml.tokens has %llu tokens but the model's vocab_size is %d", path,
                            (unsigned long long)tokens->array.count, config->vocab_size);
    }
    desc.vocab_size = config->vocab_size;

    /* Optional per-token arrays must match the token count. */
    const sq_gguf_value *scores = NULL;
    const sq_gguf_value *types = NULL;
    if (sq_gguf_find_key(file, "tokenizer.ggml.scores") != NULL &&
        (status = sq_gguf_get_array(file, "tokenizer.ggml.scores", SQ_GGUF_TYPE_FLOAT32, &scores, err)) != SQ_OK) {
        return status;
    }
    if (sq_gguf_find_key(file, "tokenizer.ggml.token_type") != NULL &&
        (status = sq_gguf_get_array(file, "tokenizer.ggml.token_type", SQ_GGUF_TYPE_INT32, &types, err)) != SQ_OK) {
        return status;
    }
    if ((scores != NULL && scores->array.count != tokens->array.count) ||
        (types != NULL && types->array.count != tokens->array.count)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tokenizer.ggml.scores (%llu) or token_type (%llu) does not match the %llu tokens",
                            path, scores != NULL ? (unsigned long long)scores->array.count : 0ULL,
                            types != NULL ? (unsigned long long)types->array.count : 0ULL,
                            (unsigned long long)tokens->array.count);
    }
    desc.scores = scores != NULL ? scores->array.elements : NULL;
    desc.token_types = types != NULL ? types->array.elements : NULL;

    if ((status = read_token_id(file, "tokenizer.ggml.bos_token_id", config->vocab_size, &desc.bos_id, err)) != SQ_OK ||
        (status = read_token_id(file, "tokenizer.ggml.eos_token_id", config->vocab_size, &desc.eos_id, err)) != SQ_OK ||
        (status = read_token_id(file, "tokenizer.ggml.unknown_token_id", config->vocab_size, &desc.unk_id, err)) != SQ_OK ||
        (status = read_token_id(file, "tokenizer.ggml.padding_token_id", config->vocab_size, &desc.pad_id, err)) != SQ_OK ||
        (status = read_optional_bool(file, "tokenizer.ggml.add_bos_token", desc.kind == SQ_TOKENIZER_SPM, &desc.add_bos, err)) != SQ_OK ||
        (status = read_optional_bool(file, "tokenizer.ggml.add_space_prefix", desc.kind == SQ_TOKENIZER_SPM, &desc.add_space_prefix, err)) != SQ_OK) {
        return status;
    }
    const sq_gguf_value *pre = sq_gguf_find_key(file, "tokenizer.ggml.pre");
    if (pre != NULL) {
        const sq_gguf_string *pre_name;
        if ((status = sq_gguf_get_string(file, "tokenizer.ggml.pre", &pre_name, err)) != SQ_OK) {
            return status;
        }
        desc.pre_tokenizer = pre_name->data;
    }

    const char **pieces = NULL;
    uint32_t *piece_lengths = NULL;
    const char **merges = NULL;
    uint32_t *merge_lengths = NULL;
    status = collect_strings(file, "tokenizer.ggml.tokens", tokens, &pieces, &piece_lengths, err);
    if (status == SQ_OK && sq_gguf_find_key(file, "tokenizer.ggml.merges") != NULL) {
        const sq_gguf_value *merge_array;
        status = sq_gguf_get_array(file, "tokenizer.ggml.merges", SQ_GGUF_TYPE_STRING, &merge_array, err);
        if (status == SQ_OK && merge_array->array.count > INT32_MAX) {
            status = sq_error_set(err, SQ_ERR_FORMAT, "'%s': tokenizer.ggml.merges has %llu entries, more than %d", path,
                                  (unsigned long long)merge_array->array.count, INT32_MAX);
        }
        if (status == SQ_OK) {
            status = collect_strings(file, "tokenizer.ggml.merges", merge_array, &merges, &merge_lengths, err);
            desc.n_merges = (int32_t)merge_array->array.count;
        }
    }
    if (status == SQ_OK) {
        desc.pieces = pieces;
        desc.piece_lengths = piece_lengths;
        desc.merges = merges;
        desc.merge_lengths = merge_lengths;
        status = sq_tokenizer_create(&desc, out, err);
        if (status != SQ_OK) {
            sq_loader_prefix_error(err, path, status);
        }
    }
    free(pieces);
    free(piece_lengths);
    free(merges);
    free(merge_lengths);
    return status;
}
