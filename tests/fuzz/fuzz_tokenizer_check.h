/* Tokenizer contract checks shared by the harnesses that build or load a tokenizer:
 *   - sq_tokenizer_encode rejects text that is not valid UTF-8 with SQ_ERR_INVALID_ARG (judged
 *     by the independent validator in fuzz_common.h);
 *   - every id it returns lies in the vocabulary;
 *   - the streaming decoder turns any id sequence, including ids outside the vocabulary, into
 *     valid UTF-8.
 * With a complete vocabulary (every byte encodable), encoding valid UTF-8 must succeed. A
 * vocabulary read from fuzzed bytes may lack tokens, and then encoding may fail with a message. */
#ifndef SQ_FUZZ_TOKENIZER_CHECK_H
#define SQ_FUZZ_TOKENIZER_CHECK_H

#include <stdlib.h>

#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

/* Decodes ids[0, count) with the streaming decoder into a new buffer (the caller frees it) and
 * checks that the text is valid UTF-8. */
static inline char *fuzz_decode_checked(const sq_tokenizer *tokenizer, const int32_t *ids, size_t count,
                                        size_t *length) {
    size_t piece_capacity = sq_token_decoder_min_capacity(tokenizer);
    char *piece = malloc(piece_capacity);
    size_t capacity = 64;
    size_t used = 0;
    char *text = malloc(capacity);
    if (piece == NULL || text == NULL) {
        fuzz_fail("out of memory", "decoder buffers");
    }

    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    for (size_t i = 0; i <= count; i++) {
        size_t n = i < count ? sq_token_decoder_push(&decoder, tokenizer, ids[i], piece, piece_capacity)
                             : sq_token_decoder_flush(&decoder, piece, piece_capacity);
        if (n >= piece_capacity) {
            fuzz_fail("the decoder wrote past the capacity it asked for", "");
        }
        if (used + n + 1 > capacity) {
            capacity = 2 * (used + n + 1);
            text = realloc(text, capacity);
            if (text == NULL) {
                fuzz_fail("out of memory", "decoded text");
            }
        }
        memcpy(text + used, piece, n);
        used += n;
    }
    free(piece);
    if (!fuzz_utf8_valid((const uint8_t *)text, used)) {
        fuzz_fail("the streaming decoder produced invalid UTF-8", "");
    }
    *length = used;
    return text;
}

/* Encodes text[0, length) and checks the contracts above; returns the ids (the caller frees
 * them) or NULL when the text is not valid UTF-8. */
static inline int32_t *fuzz_encode_checked(const sq_tokenizer *tokenizer, const uint8_t *text, size_t length,
                                           int add_bos, int parse_special, int complete_vocabulary, size_t *count) {
    int32_t *ids = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_encode(tokenizer, (const char *)text, length, add_bos, parse_special, &ids, count, &err);
    int valid = fuzz_utf8_valid(text, length);
    if (!valid) {
        if (status != SQ_ERR_INVALID_ARG) {
            fuzz_fail("invalid UTF-8 was not rejected with SQ_ERR_INVALID_ARG", sq_status_name(status));
        }
        fuzz_check_failure(status, &err);
        return NULL;
    }
    if (status != SQ_OK) {
        fuzz_check_failure(status, &err);
        if (complete_vocabulary) {
            fuzz_fail("encoding valid UTF-8 failed", err.message);
        }
        return NULL;
    }
    int32_t vocab_size = sq_tokenizer_vocab_size(tokenizer);
    for (size_t i = 0; i < *count; i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size) {
            fuzz_fail("encode returned an id outside the vocabulary", "");
        }
    }
    return ids;
}

/* Encodes and decodes text, and decodes a few ids at and past the vocabulary's edges. */
static inline void fuzz_exercise_tokenizer(const sq_tokenizer *tokenizer, const uint8_t *text, size_t length,
                                           int complete_vocabulary) {
    for (int parse_special = 0; parse_special <= 1; parse_special++) {
        size_t count = 0;
        int32_t *ids = fuzz_encode_checked(tokenizer, text, length, -1, parse_special, complete_vocabulary, &count);
        if (ids != NULL) {
            size_t decoded_length = 0;
            free(fuzz_decode_checked(tokenizer, ids, count, &decoded_length));
            free(ids);
        }
    }
    int32_t vocab_size = sq_tokenizer_vocab_size(tokenizer);
    int32_t edges[] = {-1, 0, 1, 2, vocab_size - 1, vocab_size, INT32_MAX};
    size_t decoded_length = 0;
    free(fuzz_decode_checked(tokenizer, edges, sizeof(edges) / sizeof(edges[0]), &decoded_length));
}

#endif
