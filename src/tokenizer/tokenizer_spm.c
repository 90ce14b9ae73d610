/* SPM kind: the encoding of llama2.c's run.c `encode`, as used by llama2.c tokenizer.bin files
 * and GGUF tokenizer.ggml.model = "llama".
 *
 * The text, prefixed with one space when add_space_prefix is set and the text is not empty, is
 * split into UTF-8 characters. Each character becomes its piece; a character without a piece
 * becomes one <0xNN> piece per byte (or the unknown token when those are missing too). Then,
 * repeatedly, the adjacent pair whose concatenated text is a piece with the highest score is
 * merged, the leftmost pair winning ties, until no pair concatenates to a piece.
 *
 * Instead of concatenating strings during the merge loop, the tokenizer precomputes every
 * (left, right) -> piece rule: for each piece, each split of its text into two pieces. Scores
 * become ranks (rank 0 = highest score) so the shared min-heap merge loop applies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* llama2.c starts its best-score search at -1e10 and merges only strictly better pairs, so
 * pieces scored at or below this value never form by merging. */
#define SQ_SPM_MIN_MERGE_SCORE -1e10f

static const char SQ_META_SPACE[] = "\xE2\x96\x81"; /* U+2581, SentencePiece's space */

/* Returns 1 when the piece can be the result of a merge. Control, unknown, unused and byte
 * pieces never come out of merging in SentencePiece. llama2.c would merge into them too, but in
 * tok512.bin and the Llama 2 vocabulary none of them splits into two other pieces, so the
 * results agree there. */
static int can_merge_into(const sq_tokenizer *tokenizer, int32_t id) {
    int32_t type = tokenizer->token_types[id];
    if (type == SQ_TOKEN_TYPE_CONTROL || type == SQ_TOKEN_TYPE_UNKNOWN ||
        type == SQ_TOKEN_TYPE_UNUSED || type == SQ_TOKEN_TYPE_BYTE) {
        return 0;
    }
    float score = tokenizer->scores[id];
    return tokenizer->piece_lengths[id] >= 2 && score > SQ_SPM_MIN_MERGE_SCORE &&
           sq_piece_map_find(tokenizer, tokenizer->piece_text + tokenizer->piece_offsets[id],
                             tokenizer->piece_lengths[id]) == id;
}

typedef struct scored_piece {
    float score;
    int32_t id;
} scored_piece;

static int compare_by_score_descending(const void *a, const void *b) {
    const scored_piece *x = a;
    const scored_piece *y = b;
    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* Stores in ranks[id] the merge rank of every piece that can form by merging, -1 elsewhere.
 * Equal scores share a rank, so the merge loop breaks their ties by position as llama2.c does. */
static sq_status compute_ranks(const sq_tokenizer *tokenizer, int32_t *ranks, sq_error *err) {
    size_t n = (size_t)tokenizer->vocab_size;
    scored_piece *order = malloc(n * sizeof(*order));
    if (order == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the score order of %zu pieces", n);
    }

    size_t count = 0;
    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        ranks[id] = -1;
        if (can_merge_into(tokenizer, id)) {
            order[count].score = tokenizer->scores[id];
            order[count].id = id;
            count++;
        }
    }
    qsort(order, count, sizeof(*order), compare_by_score_descending);

    int32_t rank = -1;
    for (size_t i = 0; i < count; i++) {
        if (i == 0 || order[i].score != order[i - 1].score) {
            rank++;
        }
        ranks[order[i].id] = rank;
    }
    free(order);
    return SQ_OK;
}

/* Adds a rule for every split of every mergeable piece into two pieces. */
static sq_status build_merge_rules(sq_tokenizer *tokenizer, const int32_t *ranks, sq_error *err) {
    size_t split_count = 0;
    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        if (ranks[id] >= 0) {
            split_count += tokenizer->piece_lengths[id] - 1;
        }
    }
    sq_status status = sq_pair_map_reserve(&tokenizer->merges, split_count, err);
    if (status != SQ_OK) {
        return status;
    }

    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        if (ranks[id] < 0) {
            continue;
        }
        const char *text = tokenizer->piece_text + tokenizer->piece_offsets[id];
        size_t length = tokenizer->piece_lengths[id];
        for (size_t split = 1; split < length; split++) {
            int32_t left = sq_piece_map_find(tokenizer, text, split);
            if (left < 0) {
                continue;
            }
            int32_t right = sq_piece_map_find(tokenizer, text + split, length - split);
            if (right < 0) {
                continue;
            }
            /* Distinct pieces have distinct texts, so a pair can only ever map to one piece. */
            if (sq_pair_map_insert(&tokenizer->merges, left, right, id, ranks[id]) < 0) {
                return sq_error_set(err, SQ_ERR_NOMEM, "cannot grow the merge table past %zu rules",
                                    tokenizer->merges.count);
            }
        }
    }
    return SQ_OK;
}

sq_status sq_spm_build(sq_tokenizer *tokenizer, sq_error *err) {
    tokenizer->spm_meta_space =
        sq_piece_map_find(tokenizer, SQ_META_SPACE, sizeof(SQ_META_SPACE) - 1) >= 0;

    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof(name), "<0x%02X>", b);
        tokenizer->byte_tokens[b] = sq_piece_map_find(tokenizer, name, 6);
    }

    int32_t *ranks = malloc((size_t)tokenizer->vocab_size * sizeof(*ranks));
    if (ranks == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate merge ranks for %d pieces",
                            (int)tokenizer->vocab_size);
    }
    sq_status status = compute_ranks(tokenizer, ranks, err);
    if (status == SQ_OK) {
        status = build_merge_rules(tokenizer, ranks, err);
    }
    free(ranks);
    return status;
}

/* Appends the symbols of one character: its piece, else its byte pieces, else the unknown
 * token. Returns the new symbol count, or -1 when the character cannot be encoded. */
static int32_t append_character(const sq_tokenizer *tokenizer, const char *bytes, size_t length,
                                sq_merge_symbol *symbols, int32_t count) {
    int32_t id;
    if (tokenizer->spm_meta_space && length == 1 && bytes[0] == ' ') {
        id = sq_piece_map_find(tokenizer, SQ_META_SPACE, sizeof(SQ_META_SPACE) - 1);
    } else {
        id = sq_piece_map_find(tokenizer, bytes, length);
    }
    if (id >= 0) {
        symbols[count++].id = id;
        return count;
    }

    int has_all_bytes = 1;
    for (size_t k = 0; k < length; k++) {
        has_all_bytes &= tokenizer->byte_tokens[(unsigned char)bytes[k]] >= 0;
    }
    if (has_all_bytes) {
        for (size_t k = 0; k < length; k++) {
            symbols[count++].id = tokenizer->byte_tokens[(unsigned char)bytes[k]];
        }
        return count;
    }

    if (tokenizer->unk_id < 0) {
        return -1;
    }
    symbols[count++].id = tokenizer->unk_id;
    return count;
}

sq_status sq_spm_encode_text(const sq_tokenizer *tokenizer, const char *text, size_t length,
                             int add_prefix, sq_merge_workspace *workspace, sq_id_buffer *out,
                             sq_error *err) {
    if (length == 0) {
        return SQ_OK;
    }

    /* Every character yields at most one symbol per byte, plus one for the prefix. */
    sq_status status = sq_merge_workspace_reserve(workspace, length + 1, err);
    if (status != SQ_OK) {
        return status;
    }
    sq_merge_symbol *symbols = workspace->symbols;
    int32_t count = 0;
    if (add_prefix) {
        count = append_character(tokenizer, " ", 1, symbols, count);
        if (count < 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "the vocabulary has no piece for the prefix space, no <0x20> piece and no unknown token");
        }
    }

    const unsigned char *bytes = (const unsigned char *)text;
    size_t position = 0;
    while (position < length) {
        size_t char_length;
        uint32_t codepoint = sq_utf8_decode(bytes, position, &char_length);
        int32_t new_count = append_character(tokenizer, text + position, char_length, symbols, count);
        if (new_count < 0) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                                "character U+%04X has no piece, no byte pieces and the vocabulary has no unknown token",
                                (unsigned)codepoint);
        }
        count = new_count;
        position += char_length;
    }

    return sq_merge_symbols(&tokenizer->merges, workspace, (size_t)count, out, err);
}
