/* Reader of llama2.c tokenizer.bin files: a little-endian int32 max_token_length, then for each
 * of vocab_size tokens a float32 score, an int32 byte length and that many bytes. The file does
 * not store the token count, so the caller passes the model's vocab_size and a file with more or
 * fewer entries is rejected. llama2.c's conventions: id 0 <unk>, 1 BOS, 2 EOS, "<0xNN>" byte
 * pieces, spaces written as plain spaces, and a dummy-prefix space before the text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "tokenizer/tokenizer_internal.h"

static int32_t read_int32(const uint8_t *bytes) {
    uint32_t value = (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8) | ((uint32_t)bytes[2] << 16) |
                     ((uint32_t)bytes[3] << 24);
    int32_t result;
    memcpy(&result, &value, sizeof(result));
    return result;
}

static float read_float32(const uint8_t *bytes) {
    int32_t bits = read_int32(bytes);
    float result;
    memcpy(&result, &bits, sizeof(result));
    return result;
}

/* Counts the complete entries in data[offset, size). */
static int32_t count_entries(const uint8_t *data, size_t size, size_t offset) {
    int32_t count = 0;
    while (size - offset >= 8) {
        int32_t length = read_int32(data + offset + 4);
        if (length < 0 || (size_t)length > size - offset - 8) {
            break;
        }
        offset += 8 + (size_t)length;
        count++;
    }
    return count;
}

static int is_byte_piece(const char *text, int32_t length) {
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

/* Fills the piece arrays from the file bytes (already read into data). */
static sq_status parse_entries(const char *path, const uint8_t *data, size_t size,
                               int32_t vocab_size, const char **pieces, uint32_t *lengths,
                               float *scores, int32_t *types, sq_error *err) {
    size_t offset = 4;
    for (int32_t i = 0; i < vocab_size; i++) {
        if (offset == size) {
            return sq_error_set(err, SQ_ERR_MISMATCH,
                                "tokenizer '%s' ends after %d entries, but the model's vocab_size is %d (is it the tokenizer for this model?)",
                                path, (int)i, (int)vocab_size);
        }
        if (size - offset < 8) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "tokenizer '%s' is truncated in entry %d at byte offset %zu: expected a float32 score and an int32 length (8 bytes), found %zu bytes",
                                path, (int)i, offset, size - offset);
        }
        float score = read_float32(data + offset);
        int32_t length = read_int32(data + offset + 4);
        if (length < 0) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "tokenizer '%s' entry %d at byte offset %zu has a negative length %d",
                                path, (int)i, offset, (int)length);
        }
        if ((size_t)length > size - offset - 8) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "tokenizer '%s' entry %d at byte offset %zu has length %d, but only %zu bytes remain (truncated or corrupt file)",
                                path, (int)i, offset, (int)length, size - offset - 8);
        }

        const char *text = (const char *)data + offset + 8;
        pieces[i] = text;
        lengths[i] = (uint32_t)length;
        scores[i] = score;
        if (i == 0) {
            types[i] = SQ_TOKEN_TYPE_UNKNOWN;
        } else if (i == 1 || i == 2) {
            types[i] = SQ_TOKEN_TYPE_CONTROL;
        } else {
            types[i] = is_byte_piece(text, length) ? SQ_TOKEN_TYPE_BYTE : SQ_TOKEN_TYPE_NORMAL;
        }
        offset += 8 + (size_t)length;
    }

    if (offset != size) {
        int32_t extra = count_entries(data, size, offset);
        return sq_error_set(err, SQ_ERR_MISMATCH,
                            "tokenizer '%s' has %zu bytes (%d more complete entries) after entry %d, but the model's vocab_size is %d (is it the tokenizer for this model?)",
                            path, size - offset, (int)extra, (int)vocab_size - 1, (int)vocab_size);
    }
    return SQ_OK;
}

sq_status sq_tokenizer_load_llama2c(const char *path, int32_t vocab_size, sq_tokenizer **out,
                                    sq_error *err) {
    if (out == NULL || path == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "sq_tokenizer_load_llama2c needs a path and an output pointer");
    }
    *out = NULL;
    if (vocab_size < 3) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "vocab_size %d is too small for a llama2.c tokenizer (expected at least 3: <unk>, BOS, EOS)",
                            (int)vocab_size);
    }

    uint8_t *data;
    size_t size;
    sq_status status = sq_io_read_file(path, &data, &size, err);
    if (status != SQ_OK) {
        return status;
    }
    if (size < 4) {
        free(data);
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "tokenizer '%s' has %zu bytes, too short for the int32 max_token_length header",
                            path, size);
    }
    int32_t max_token_length = read_int32(data);
    if (max_token_length <= 0) {
        free(data);
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "tokenizer '%s' has max_token_length %d (expected a positive length); is it a llama2.c tokenizer.bin?",
                            path, (int)max_token_length);
    }

    size_t n = (size_t)vocab_size;
    const char **pieces = malloc(n * sizeof(*pieces));
    uint32_t *lengths = malloc(n * sizeof(*lengths));
    float *scores = malloc(n * sizeof(*scores));
    int32_t *types = malloc(n * sizeof(*types));
    if (pieces == NULL || lengths == NULL || scores == NULL || types == NULL) {
        status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d tokenizer entries for '%s'",
                              (int)vocab_size, path);
    } else {
        status = parse_entries(path, data, size, vocab_size, pieces, lengths, scores, types, err);
    }

    if (status == SQ_OK) {
        sq_tokenizer_desc desc = {
            .kind = SQ_TOKENIZER_SPM,
            .vocab_size = vocab_size,
            .pieces = pieces,
            .piece_lengths = lengths,
            .scores = scores,
            .token_types = types,
            .bos_id = 1,
            .eos_id = 2,
            .unk_id = 0,
            .pad_id = -1,
            .add_bos = 1,
            .add_space_prefix = 1,
        };
        status = sq_tokenizer_create(&desc, out, err);
    }
    free(pieces);
    free(lengths);
    free(scores);
    free(types);
    free(data);
    return status;
}
