/* sq_tokenizer_encode: input checks, the split at special tokens, and the dispatch of each run
 * of ordinary text to the SPM or BPE encoder. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Returns the longest special token whose text starts at text[position], or -1. */
static int32_t match_special(const sq_tokenizer *tokenizer, const char *text, size_t length,
                             size_t position) {
    unsigned char first = (unsigned char)text[position];
    for (int32_t k = tokenizer->special_first[first]; k < tokenizer->special_first[first + 1]; k++) {
        int32_t id = tokenizer->special_ids[k];
        size_t special_length = tokenizer->piece_lengths[id];
        if (special_length <= length - position &&
            memcmp(text + position, tokenizer->piece_text + tokenizer->piece_offsets[id],
                   special_length) == 0) {
            return id;
        }
    }
    return -1;
}

/* Encodes text[start, end), which contains no special token to match. SPM prefixes the space when the run
 * starts the text or follows a special token, as llama.cpp's SPM tokenizer does. */
static sq_status encode_run(const sq_tokenizer *tokenizer, const char *text, size_t start,
                            size_t end, int after_special, sq_merge_workspace *workspace,
                            sq_id_buffer *out, sq_error *err) {
    if (start == end) {
        return SQ_OK;
    }
    if (tokenizer->kind == SQ_TOKENIZER_SPM) {
        int add_prefix = tokenizer->add_space_prefix && after_special;
        return sq_spm_encode_text(tokenizer, text + start, end - start, add_prefix, workspace, out,
                                  err);
    }
    return sq_bpe_encode_text(tokenizer, text + start, end - start, workspace, out, err);
}

static sq_status encode_all(const sq_tokenizer *tokenizer, const char *text, size_t length,
                            int parse_special, sq_merge_workspace *workspace, sq_id_buffer *out,
                            sq_error *err) {
    size_t run_start = 0;
    int after_special = 1;

    if (parse_special && tokenizer->special_count > 0) {
        size_t position = 0;
        while (position < length) {
            int32_t id = match_special(tokenizer, text, length, position);
            if (id < 0) {
                position++;
                continue;
            }
            sq_status status =
                encode_run(tokenizer, text, run_start, position, after_special, workspace, out, err);
            if (status == SQ_OK) {
                status = sq_id_buffer_push(out, id, err);
            }
            if (status != SQ_OK) {
                return status;
            }
            position += tokenizer->piece_lengths[id];
            run_start = position;
            after_special = 1;
        }
    }
    return encode_run(tokenizer, text, run_start, length, after_special, workspace, out, err);
}

sq_status sq_tokenizer_encode(const sq_tokenizer *tokenizer, const char *text, size_t length,
                              int add_bos, int parse_special, int32_t **ids, size_t *count,
                              sq_error *err) {
    if (ids == NULL || count == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "sq_tokenizer_encode needs ids and count pointers");
    }
    *ids = NULL;
    *count = 0;
    if (tokenizer == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "sq_tokenizer_encode needs a tokenizer");
    }
    if (text == NULL && length > 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "text is NULL but its length is %zu", length);
    }
    if (length > INT32_MAX) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "text of %zu bytes is too long to encode at once (maximum %d bytes)",
                            length, INT32_MAX);
    }
    size_t invalid = sq_utf8_find_invalid(text, length);
    if (invalid < length) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "text is not valid UTF-8: invalid sequence at byte offset %zu (byte 0x%02X)",
                            invalid, (unsigned char)text[invalid]);
    }

    int prepend_bos = add_bos < 0 ? tokenizer->add_bos : add_bos != 0;
    if (prepend_bos && tokenizer->bos_id < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "BOS was requested but the vocabulary has no BOS token");
    }

    sq_id_buffer out = {0};
    sq_merge_workspace workspace = {0};
    sq_status status = SQ_OK;
    if (prepend_bos) {
        status = sq_id_buffer_push(&out, tokenizer->bos_id, err);
    }
    if (status == SQ_OK) {
        status = encode_all(tokenizer, text, length, parse_special, &workspace, &out, err);
    }
    sq_merge_workspace_free(&workspace);
    if (status != SQ_OK) {
        free(out.data);
        return status;
    }

    if (out.data == NULL) {
        /* Empty text without BOS: return a valid pointer so callers can free it uniformly. */
        out.data = malloc(sizeof(int32_t));
        if (out.data == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate an empty token list");
        }
    }
    *ids = out.data;
    *count = out.count;
    return SQ_OK;
}
