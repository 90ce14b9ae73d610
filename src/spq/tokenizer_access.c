/* Reading tokenizer descriptions from llama2.c tokenizer.bin and GGUF files, following the
 * rules of src/tokenizer/llama2c_tokenizer.c and src/formats/gguf_tokenizer.c. */
#include "spq/tokenizer_access.h"

#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "spq/spq_format.h"

static void reset(sq_spq_tokenizer_source *source) {
    memset(source, 0, sizeof(*source));
    source->desc.bos_id = -1;
    source->desc.eos_id = -1;
    source->desc.unk_id = -1;
    source->desc.pad_id = -1;
}

static int is_byte_piece(const char *text, uint32_t length) {
    if (length != 6 || memcmp(text, "<0x", 3) != 0 || text[5] != '>') {
        return 0;
    }
    for (int i = 3; i < 5; i++) {
        char c = text[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static sq_status alloc_token_arrays(sq_spq_tokenizer_source *s, int32_t vocab_size, int with_scores, sq_error *err) {
    size_t n = (size_t)vocab_size;
    s->pieces = calloc(n, sizeof(*s->pieces));
    s->piece_lengths = calloc(n, sizeof(*s->piece_lengths));
    s->token_types = calloc(n, sizeof(*s->token_types));
    s->scores = with_scores ? calloc(n, sizeof(*s->scores)) : NULL;
    if (s->pieces == NULL || s->piece_lengths == NULL || s->token_types == NULL || (with_scores && s->scores == NULL)) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the %d tokenizer entries", vocab_size);
    }
    return SQ_OK;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length
 * and the bytes. */
static sq_status open_llama2c(const char *path, int32_t vocab_size, sq_spq_tokenizer_source *s, sq_error *err) {
    size_t size = 0;
    sq_status status = sq_io_read_file(path, &s->file_bytes, &size, err);
    if (status == SQ_OK) {
        status = alloc_token_arrays(s, vocab_size, 1, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    size_t offset = 4;
    for (int32_t i = 0; i < vocab_size; i++) {
        if (size < offset || size - offset < 8) {
            return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer '%s' ends in entry %d of %d", path, i, vocab_size);
        }
        uint32_t score_bits = sq_spq_read_u32(s->file_bytes + offset);
        int32_t length = (int32_t)sq_spq_read_u32(s->file_bytes + offset + 4);
        if (length < 0 || (size_t)length > size - offset - 8) {
            return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer '%s' entry %d has an invalid length %d", path, i, length);
        }
        memcpy(&s->scores[i], &score_bits, sizeof(float));
        s->pieces[i] = (const char *)s->file_bytes + offset + 8;
        s->piece_lengths[i] = (uint32_t)length;
        if (i == 0) {
            s->token_types[i] = SQ_TOKEN_TYPE_UNKNOWN;
        } else if (i == 1 || i == 2) {
            s->token_types[i] = SQ_TOKEN_TYPE_CONTROL;
        } else {
            s->token_types[i] = is_byte_piece(s->pieces[i], (uint32_t)length) ? SQ_TOKEN_TYPE_BYTE : SQ_TOKEN_TYPE_NORMAL;
        }
        offset += 8 + (size_t)length;
    }
    if (offset != size) {
        return sq_error_set(err, SQ_ERR_MISMATCH, "tokenizer '%s' has %zu bytes after entry %d; vocab_size is %d", path,
                            size - offset, vocab_size - 1, vocab_size);
    }
    sq_tokenizer_desc *d = &s->desc;
    d->kind = SQ_TOKENIZER_SPM;
    d->vocab_size = vocab_size;
    d->bos_id = 1;
    d->eos_id = 2;
    d->unk_id = 0;
    d->pad_id = -1;
    d->add_bos = 1;
    d->add_space_prefix = 1;
    return SQ_OK;
}

static sq_status gguf_token_id(const sq_gguf_file *file, const char *key, int32_t vocab_size, int32_t *out,
                               sq_error *err) {
    *out = -1;
    if (sq_gguf_find_key(file, key) == NULL) {
        return SQ_OK;
    }
    uint64_t id;
    sq_status status = sq_gguf_get_uint(file, key, &id, err);
    if (status == SQ_OK && id != UINT32_MAX) {
        if (id >= (uint64_t)vocab_size) {
            return sq_error_set(err, SQ_ERR_FORMAT, "%s = %llu is outside the vocabulary of %d tokens", key,
                                (unsigned long long)id, vocab_size);
        }
        *out = (int32_t)id;
    }
    return status;
}

static sq_status gguf_bool(const sq_gguf_file *file, const char *key, int default_value, int *out, sq_error *err) {
    *out = default_value;
    return sq_gguf_find_key(file, key) == NULL ? SQ_OK : sq_gguf_get_bool(file, key, out, err);
}

/* Points strings and lengths at the count strings of array. */
static sq_status gguf_strings(const sq_gguf_value *array, const char **strings, uint32_t *lengths, sq_error *err) {
    const sq_gguf_string *items = array->array.elements;
    for (uint64_t i = 0; i < array->array.count; i++) {
        if (items[i].length > UINT32_MAX) {
            return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer string %llu is longer than 4 GiB", (unsigned long long)i);
        }
        strings[i] = items[i].data;
        lengths[i] = (uint32_t)items[i].length;
    }
    return SQ_OK;
}

static sq_status open_gguf(const char *path, int32_t vocab_size, sq_spq_tokenizer_source *s, sq_error *err) {
    sq_status status = sq_gguf_open(path, &s->gguf, err);
    if (status != SQ_OK) {
        return status;
    }
    const sq_gguf_file *file = s->gguf;
    if (sq_gguf_find_key(file, "tokenizer.ggml.model") == NULL) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s' has no tokenizer.ggml.model; pass --tokenizer FILE", path);
    }
    const sq_gguf_string *model_name;
    const sq_gguf_value *tokens;
    if ((status = sq_gguf_get_string(file, "tokenizer.ggml.model", &model_name, err)) != SQ_OK ||
        (status = sq_gguf_get_array(file, "tokenizer.ggml.tokens", SQ_GGUF_TYPE_STRING, &tokens, err)) != SQ_OK) {
        return status;
    }
    sq_tokenizer_desc *d = &s->desc;
    if (strcmp(model_name->data, "llama") == 0) {
        d->kind = SQ_TOKENIZER_SPM;
    } else if (strcmp(model_name->data, "gpt2") == 0) {
        d->kind = SQ_TOKENIZER_BPE;
    } else {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': tokenizer.ggml.model '%s' is not supported", path,
                            model_name->data);
    }
    if (tokens->array.count != (uint64_t)vocab_size) {
        return sq_error_set(err, SQ_ERR_MISMATCH, "'%s' has %llu tokens but vocab_size %d", path,
                            (unsigned long long)tokens->array.count, vocab_size);
    }
    d->vocab_size = vocab_size;

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
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tokenizer scores or token types do not match the token count", path);
    }
    d->scores = scores != NULL ? scores->array.elements : NULL;
    d->token_types = types != NULL ? types->array.elements : NULL;

    int spm = d->kind == SQ_TOKENIZER_SPM;
    if ((status = gguf_token_id(file, "tokenizer.ggml.bos_token_id", vocab_size, &d->bos_id, err)) != SQ_OK ||
        (status = gguf_token_id(file, "tokenizer.ggml.eos_token_id", vocab_size, &d->eos_id, err)) != SQ_OK ||
        (status = gguf_token_id(file, "tokenizer.ggml.unknown_token_id", vocab_size, &d->unk_id, err)) != SQ_OK ||
        (status = gguf_token_id(file, "tokenizer.ggml.padding_token_id", vocab_size, &d->pad_id, err)) != SQ_OK ||
        (status = gguf_bool(file, "tokenizer.ggml.add_bos_token", spm, &d->add_bos, err)) != SQ_OK ||
        (status = gguf_bool(file, "tokenizer.ggml.add_space_prefix", spm, &d->add_space_prefix, err)) != SQ_OK) {
        return status;
    }
    if (sq_gguf_find_key(file, "tokenizer.ggml.pre") != NULL) {
        const sq_gguf_string *pre;
        if ((status = sq_gguf_get_string(file, "tokenizer.ggml.pre", &pre, err)) != SQ_OK) {
            return status;
        }
        d->pre_tokenizer = pre->data;
    }

    s->pieces = calloc((size_t)vocab_size, sizeof(*s->pieces));
    s->piece_lengths = calloc((size_t)vocab_size, sizeof(*s->piece_lengths));
    if (s->pieces == NULL || s->piece_lengths == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the %d tokenizer entries", vocab_size);
    }
    if ((status = gguf_strings(tokens, s->pieces, s->piece_lengths, err)) != SQ_OK) {
        return status;
    }
    if (sq_gguf_find_key(file, "tokenizer.ggml.merges") != NULL) {
        const sq_gguf_value *merges;
        if ((status = sq_gguf_get_array(file, "tokenizer.ggml.merges", SQ_GGUF_TYPE_STRING, &merges, err)) != SQ_OK) {
            return status;
        }
        if (merges->array.count > INT32_MAX) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s' has %llu merges, more than %d", path,
                                (unsigned long long)merges->array.count, INT32_MAX);
        }
        size_t n = (size_t)merges->array.count;
        s->merges = calloc(n > 0 ? n : 1, sizeof(*s->merges));
        s->merge_lengths = calloc(n > 0 ? n : 1, sizeof(*s->merge_lengths));
        if (s->merges == NULL || s->merge_lengths == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu merges", n);
        }
        if ((status = gguf_strings(merges, s->merges, s->merge_lengths, err)) != SQ_OK) {
            return status;
        }
        d->n_merges = (int32_t)n;
    }
    return SQ_OK;
}

sq_status sq_spq_tokenizer_source_open(const char *model_path, const char *tokenizer_path, int32_t vocab_size,
                                       sq_spq_tokenizer_source *source, sq_error *err) {
    reset(source);
    if (vocab_size < 1) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid vocab_size %d", vocab_size);
    }
    sq_status status;
    if (tokenizer_path != NULL) {
        status = open_llama2c(tokenizer_path, vocab_size, source, err);
    } else {
        status = open_gguf(model_path, vocab_size, source, err);
    }
    if (status != SQ_OK) {
        sq_spq_tokenizer_source_close(source);
        return status;
    }
    sq_tokenizer_desc *d = &source->desc;
    d->pieces = source->pieces;
    d->piece_lengths = source->piece_lengths;
    if (source->scores != NULL) {
        d->scores = source->scores;
    }
    if (source->file_bytes != NULL) {
        d->token_types = source->token_types;
    }
    d->merges = source->merges;
    d->merge_lengths = source->merge_lengths;
    return SQ_OK;
}

void sq_spq_tokenizer_source_close(sq_spq_tokenizer_source *source) {
    free(source->file_bytes);
    sq_gguf_close(source->gguf);
    free(source->pieces);
    free(source->piece_lengths);
    free(source->scores);
    free(source->token_types);
    free(source->merges);
    free(source->merge_lengths);
    reset(source);
}
