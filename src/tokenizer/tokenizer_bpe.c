/* BPE kind: byte-level BPE as GPT-2 defined it and GGUF tokenizer.ggml.model = "gpt2" stores it.
 *
 * The pre-tokenizer splits the text into words (pretokenize.c). Each byte of a word becomes the
 * token of its byte-level character (GPT-2's bytes_to_unicode, which maps every byte to a
 * printable code point). Then, repeatedly, the adjacent pair with the lowest merge rank is
 * merged, the leftmost pair winning ties, until no adjacent pair has a merge rule. This is the
 * order of Hugging Face tokenizers' BPE model and of llama.cpp. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* GPT-2's bytes_to_unicode: the printable bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for
 * themselves, and the other 68 bytes (0x00..0x20, 0x7F..0xA0 and 0xAD) map, in byte order, to
 * U+0100..U+0143. */
uint32_t sq_bpe_byte_to_codepoint(uint8_t b) {
    if (b <= 0x20) {
        return 0x100 + b;
    }
    if (b >= 0x7F && b <= 0xA0) {
        return 0x100 + 33 + (uint32_t)(b - 0x7F);
    }
    if (b == 0xAD) {
        return 0x100 + 67;
    }
    return b;
}

int sq_bpe_codepoint_to_byte(uint32_t codepoint) {
    if (codepoint < 0x100) {
        int printable = (codepoint >= 0x21 && codepoint <= 0x7E) ||
                        (codepoint >= 0xA1 && codepoint <= 0xAC) || codepoint >= 0xAE;
        return printable ? (int)codepoint : -1;
    }
    uint32_t index = codepoint - 0x100;
    if (index < 33) {
        return (int)index;
    }
    if (index < 67) {
        return (int)(0x7F + index - 33);
    }
    return index == 67 ? 0xAD : -1;
}

/* Pre-tokenizers by GGUF tokenizer.ggml.pre name. llama.cpp (2024-2025) gives all names in one
 * row the same regex list. */
static int select_pretokenizer(const char *name, sq_pretokenizer *kind) {
    static const char *const digits_then_gpt2[] = {"smollm", "starcoder", "refact", "command-r",
                                                   "codeshell", "exaone", "minerva"};
    static const char *const gpt2[] = {"gpt2", "mpt", "olmo", "jais"};

    if (name == NULL) {
        /* NOTE: a GGUF without tokenizer.ggml.pre gets the GPT-2 regex here, while llama.cpp
         * falls back to its own "default" regex list. */
        *kind = SQ_PRETOKENIZER_GPT2;
        return 1;
    }
    for (size_t i = 0; i < sizeof(digits_then_gpt2) / sizeof(digits_then_gpt2[0]); i++) {
        if (strcmp(name, digits_then_gpt2[i]) == 0) {
            *kind = SQ_PRETOKENIZER_DIGITS_GPT2;
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(gpt2) / sizeof(gpt2[0]); i++) {
        if (strcmp(name, gpt2[i]) == 0) {
            *kind = SQ_PRETOKENIZER_GPT2;
            return 1;
        }
    }
    return 0;
}

/* Parses the merge "left right" of the given rank into three token ids: left, right and their
 * concatenation. */
static sq_status parse_merge(const sq_tokenizer *tokenizer, const char *merge, size_t length,
                             int32_t rank, char **buffer, size_t *buffer_size, int32_t ids[3],
                             sq_error *err) {
    const char *space = length > 1 ? memchr(merge + 1, ' ', length - 1) : NULL;
    if (space == NULL) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "merge %d \"%.*s\" is not two tokens separated by a space", (int)rank,
                            (int)(length < 64 ? length : 64), merge);
    }
    size_t left_length = (size_t)(space - merge);
    size_t right_length = length - left_length - 1;

    if (left_length + right_length > *buffer_size) {
        char *grown = realloc(*buffer, left_length + right_length);
        if (grown == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for merge %d",
                                left_length + right_length, (int)rank);
        }
        *buffer = grown;
        *buffer_size = left_length + right_length;
    }
    memcpy(*buffer, merge, left_length);
    memcpy(*buffer + left_length, space + 1, right_length);

    ids[0] = sq_piece_map_find(tokenizer, merge, left_length);
    ids[1] = sq_piece_map_find(tokenizer, space + 1, right_length);
    ids[2] = sq_piece_map_find(tokenizer, *buffer, left_length + right_length);
    if (ids[0] < 0 || ids[1] < 0 || ids[2] < 0) {
        const char *missing = "merged text";
        if (ids[0] < 0) {
            missing = "left part";
        } else if (ids[1] < 0) {
            missing = "right part";
        }
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "merge %d \"%.*s\": its %s is not a token of the vocabulary", (int)rank,
                            (int)(length < 64 ? length : 64), merge, missing);
    }
    return SQ_OK;
}

sq_status sq_bpe_build(sq_tokenizer *tokenizer, const sq_tokenizer_desc *desc, sq_error *err) {
    if (!select_pretokenizer(desc->pre_tokenizer, &tokenizer->pretokenizer)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "BPE pre-tokenizer \"%s\" is not supported (supported: smollm, starcoder, gpt2 and the names llama.cpp treats alike)",
                            desc->pre_tokenizer);
    }

    for (int b = 0; b < 256; b++) {
        char character[4];
        size_t length = sq_utf8_encode(sq_bpe_byte_to_codepoint((uint8_t)b), character);
        tokenizer->byte_tokens[b] = sq_piece_map_find(tokenizer, character, length);
    }

    sq_status status = sq_pair_map_reserve(&tokenizer->merges, (size_t)desc->n_merges, err);
    char *buffer = NULL;
    size_t buffer_size = 0;
    for (int32_t rank = 0; status == SQ_OK && rank < desc->n_merges; rank++) {
        int32_t ids[3] = {-1, -1, -1};
        status = parse_merge(tokenizer, desc->merges[rank], desc->merge_lengths[rank], rank,
                             &buffer, &buffer_size, ids, err);
        /* A repeated merge keeps its first, lowest rank, as a rank lookup table would. */
        if (status == SQ_OK && sq_pair_map_insert(&tokenizer->merges, ids[0], ids[1], ids[2], rank) < 0) {
            status = sq_error_set(err, SQ_ERR_NOMEM, "cannot grow the merge table past %zu rules",
                                  tokenizer->merges.count);
        }
    }
    free(buffer);
    return status;
}

sq_status sq_bpe_encode_text(const sq_tokenizer *tokenizer, const char *text, size_t length,
                             sq_merge_workspace *workspace, sq_id_buffer *out, sq_error *err) {
    sq_pretokenize_iterator words;
    sq_pretokenize_begin(&words, tokenizer->pretokenizer, text, length);
    size_t start;
    size_t end;
    while (sq_pretokenize_next(&words, &start, &end)) {
        sq_status status = sq_merge_workspace_reserve(workspace, end - start, err);
        if (status != SQ_OK) {
            return status;
        }

        for (size_t i = start; i < end; i++) {
            unsigned char b = (unsigned char)text[i];
            int32_t id = tokenizer->byte_tokens[b];
            if (id < 0) {
                id = tokenizer->unk_id;
            }
            if (id < 0) {
                return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                    "byte 0x%02X has no byte-level token and the vocabulary has no unknown token",
                                    b);
            }
            workspace->symbols[i - start].id = id;
        }

        status = sq_merge_symbols(&tokenizer->merges, workspace, end - start, out, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    return SQ_OK;
}
