/* Tokenizer construction, deep copy, release and the small queries. Encoding lives in
 * tokenizer_encode.c, the kind-specific tables in tokenizer_spm.c and tokenizer_bpe.c, decoding
 * in decode.c. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Upper bound on the vocabulary size, so that every size computed from it fits comfortably. */
#define SQ_TOKENIZER_MAX_VOCAB (1 << 24)

static sq_status validate_desc(const sq_tokenizer_desc *desc, sq_error *err) {
    if (desc->kind != SQ_TOKENIZER_SPM && desc->kind != SQ_TOKENIZER_BPE) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "tokenizer kind %d is invalid (expected SQ_TOKENIZER_SPM or SQ_TOKENIZER_BPE)",
                            (int)desc->kind);
    }
    if (desc->vocab_size <= 0 || desc->vocab_size > SQ_TOKENIZER_MAX_VOCAB) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "tokenizer vocab_size %d is out of range (expected 1..%d)",
                            (int)desc->vocab_size, SQ_TOKENIZER_MAX_VOCAB);
    }
    if (desc->pieces == NULL || desc->piece_lengths == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "tokenizer pieces and piece_lengths must not be NULL");
    }

    const int32_t special_ids[4] = {desc->bos_id, desc->eos_id, desc->unk_id, desc->pad_id};
    const char *special_names[4] = {"bos_id", "eos_id", "unk_id", "pad_id"};
    for (int i = 0; i < 4; i++) {
        if (special_ids[i] < -1 || special_ids[i] >= desc->vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "tokenizer %s %d is out of range (expected -1..%d)",
                                special_names[i], (int)special_ids[i], (int)desc->vocab_size - 1);
        }
    }
    if (desc->add_bos && desc->bos_id < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "tokenizer add_bos is set but the vocabulary has no BOS token (bos_id -1)");
    }

    if (desc->kind == SQ_TOKENIZER_BPE) {
        if (desc->n_merges < 0) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "tokenizer n_merges %d is negative",
                                (int)desc->n_merges);
        }
        if (desc->n_merges > 0 && (desc->merges == NULL || desc->merge_lengths == NULL)) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "tokenizer has %d merges but merges or merge_lengths is NULL",
                                (int)desc->n_merges);
        }
    }
    return SQ_OK;
}

/* Copies pieces, scores and token types into the tokenizer. */
static sq_status copy_vocabulary(sq_tokenizer *tokenizer, const sq_tokenizer_desc *desc,
                                 sq_error *err) {
    size_t n = (size_t)desc->vocab_size;
    size_t text_size = 0;
    for (size_t i = 0; i < n; i++) {
        if (desc->pieces[i] == NULL && desc->piece_lengths[i] > 0) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "token %zu has length %u but its text is NULL", i,
                                (unsigned)desc->piece_lengths[i]);
        }
        text_size += (size_t)desc->piece_lengths[i] + 1;
        if (text_size > UINT32_MAX) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "the token texts exceed %u bytes in total (at token %zu)",
                                (unsigned)UINT32_MAX, i);
        }
    }

    tokenizer->piece_text = malloc(text_size);
    tokenizer->piece_offsets = malloc(n * sizeof(uint32_t));
    tokenizer->piece_lengths = malloc(n * sizeof(uint32_t));
    tokenizer->scores = calloc(n, sizeof(float));
    tokenizer->token_types = malloc(n * sizeof(int32_t));
    if (tokenizer->piece_text == NULL || tokenizer->piece_offsets == NULL ||
        tokenizer->piece_lengths == NULL || tokenizer->scores == NULL ||
        tokenizer->token_types == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a vocabulary of %zu tokens (%zu bytes of text)",
                            n, text_size);
    }
    tokenizer->piece_text_size = text_size;

    size_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t length = desc->piece_lengths[i];
        if (length > 0) {
            memcpy(tokenizer->piece_text + offset, desc->pieces[i], length);
        }
        tokenizer->piece_text[offset + length] = '\0';
        tokenizer->piece_offsets[i] = (uint32_t)offset;
        tokenizer->piece_lengths[i] = length;
        offset += (size_t)length + 1;

        if (desc->scores != NULL) {
            tokenizer->scores[i] = desc->scores[i];
        }
        tokenizer->token_types[i] =
            desc->token_types != NULL ? desc->token_types[i] : SQ_TOKEN_TYPE_NORMAL;
    }
    return SQ_OK;
}

static int is_special_type(int32_t type) {
    return type == SQ_TOKEN_TYPE_CONTROL || type == SQ_TOKEN_TYPE_USER_DEFINED;
}

/* Orders special tokens by first byte, then longest first, then by id, so that the first match
 * at a text position is the longest. qsort has no context argument, so the comparison reads a
 * record that carries what it needs. */
typedef struct special_record {
    int32_t id;
    uint32_t length;
    unsigned char first;
} special_record;

static int compare_special(const void *a, const void *b) {
    const special_record *x = a;
    const special_record *y = b;
    if (x->first != y->first) {
        return x->first < y->first ? -1 : 1;
    }
    if (x->length != y->length) {
        return x->length > y->length ? -1 : 1;
    }
    return x->id < y->id ? -1 : (x->id > y->id);
}

static sq_status build_special_index(sq_tokenizer *tokenizer, sq_error *err) {
    int32_t count = 0;
    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        if (is_special_type(tokenizer->token_types[id]) && tokenizer->piece_lengths[id] > 0) {
            count++;
        }
    }

    special_record *records = malloc(((size_t)count + 1) * sizeof(*records));
    tokenizer->special_ids = malloc(((size_t)count + 1) * sizeof(int32_t));
    if (records == NULL || tokenizer->special_ids == NULL) {
        free(records);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the index of %d special tokens",
                            (int)count);
    }

    int32_t k = 0;
    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        if (is_special_type(tokenizer->token_types[id]) && tokenizer->piece_lengths[id] > 0) {
            records[k].id = id;
            records[k].length = tokenizer->piece_lengths[id];
            records[k].first = (unsigned char)tokenizer->piece_text[tokenizer->piece_offsets[id]];
            k++;
        }
    }
    qsort(records, (size_t)count, sizeof(*records), compare_special);

    int32_t next = 0;
    for (int b = 0; b <= 256; b++) {
        while (next < count && records[next].first < b) {
            next++;
        }
        tokenizer->special_first[b] = next;
    }
    for (int32_t i = 0; i < count; i++) {
        tokenizer->special_ids[i] = records[i].id;
    }
    tokenizer->special_count = count;
    free(records);
    return SQ_OK;
}

sq_status sq_tokenizer_create(const sq_tokenizer_desc *desc, sq_tokenizer **out, sq_error *err) {
    if (out == NULL || desc == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "sq_tokenizer_create needs a desc and an output pointer");
    }
    *out = NULL;
    sq_status status = validate_desc(desc, err);
    if (status != SQ_OK) {
        return status;
    }

    sq_tokenizer *tokenizer = calloc(1, sizeof(*tokenizer));
    if (tokenizer == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a tokenizer");
    }
    tokenizer->kind = desc->kind;
    tokenizer->vocab_size = desc->vocab_size;
    tokenizer->bos_id = desc->bos_id;
    tokenizer->eos_id = desc->eos_id;
    tokenizer->unk_id = desc->unk_id;
    tokenizer->pad_id = desc->pad_id;
    tokenizer->add_bos = desc->add_bos ? 1 : 0;
    tokenizer->add_space_prefix = desc->add_space_prefix ? 1 : 0;

    status = copy_vocabulary(tokenizer, desc, err);
    if (status == SQ_OK) {
        status = sq_piece_map_build(tokenizer, err);
    }
    if (status == SQ_OK) {
        status = build_special_index(tokenizer, err);
    }
    if (status == SQ_OK) {
        status = desc->kind == SQ_TOKENIZER_SPM ? sq_spm_build(tokenizer, err)
                                                : sq_bpe_build(tokenizer, desc, err);
    }
    if (status == SQ_OK) {
        status = sq_decode_table_build(tokenizer, err);
    }
    if (status != SQ_OK) {
        sq_tokenizer_free(tokenizer);
        return status;
    }
    *out = tokenizer;
    return SQ_OK;
}

void sq_tokenizer_free(sq_tokenizer *tokenizer) {
    if (tokenizer == NULL) {
        return;
    }
    free(tokenizer->piece_text);
    free(tokenizer->piece_offsets);
    free(tokenizer->piece_lengths);
    free(tokenizer->scores);
    free(tokenizer->token_types);
    free(tokenizer->decoded_text);
    free(tokenizer->decoded_offsets);
    free(tokenizer->decoded_lengths);
    free(tokenizer->strip_after_bos);
    free(tokenizer->pieces.slots);
    sq_pair_map_free(&tokenizer->merges);
    free(tokenizer->special_ids);
    free(tokenizer);
}

/* Copies size bytes of src into a new buffer at *dst; returns 0 when out of memory. A NULL or
 * empty source gives a NULL copy. */
static int duplicate(const void *src, size_t size, void **dst) {
    *dst = NULL;
    if (src == NULL || size == 0) {
        return 1;
    }
    *dst = malloc(size);
    if (*dst == NULL) {
        return 0;
    }
    memcpy(*dst, src, size);
    return 1;
}

sq_status sq_tokenizer_clone(const sq_tokenizer *src, sq_tokenizer **out, sq_error *err) {
    if (src == NULL || out == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "sq_tokenizer_clone needs a source and an output pointer");
    }
    *out = NULL;
    sq_tokenizer *copy = calloc(1, sizeof(*copy));
    if (copy == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a tokenizer copy");
    }
    *copy = *src;

    size_t n = (size_t)src->vocab_size;
    int ok = duplicate(src->piece_text, src->piece_text_size, (void **)&copy->piece_text);
    ok &= duplicate(src->piece_offsets, n * sizeof(uint32_t), (void **)&copy->piece_offsets);
    ok &= duplicate(src->piece_lengths, n * sizeof(uint32_t), (void **)&copy->piece_lengths);
    ok &= duplicate(src->scores, n * sizeof(float), (void **)&copy->scores);
    ok &= duplicate(src->token_types, n * sizeof(int32_t), (void **)&copy->token_types);
    ok &= duplicate(src->decoded_text, src->decoded_text_size, (void **)&copy->decoded_text);
    ok &= duplicate(src->decoded_offsets, n * sizeof(uint32_t), (void **)&copy->decoded_offsets);
    ok &= duplicate(src->decoded_lengths, n * sizeof(uint32_t), (void **)&copy->decoded_lengths);
    ok &= duplicate(src->strip_after_bos, n, (void **)&copy->strip_after_bos);
    ok &= duplicate(src->pieces.slots, src->pieces.capacity * sizeof(int32_t),
                    (void **)&copy->pieces.slots);
    ok &= duplicate(src->merges.slots, src->merges.capacity * sizeof(sq_pair_entry),
                    (void **)&copy->merges.slots);
    ok &= duplicate(src->special_ids, ((size_t)src->special_count + 1) * sizeof(int32_t),
                    (void **)&copy->special_ids);
    if (!ok) {
        sq_tokenizer_free(copy);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a copy of a %d-token tokenizer",
                            (int)src->vocab_size);
    }
    *out = copy;
    return SQ_OK;
}

int32_t sq_tokenizer_find(const sq_tokenizer *tokenizer, const char *text) {
    if (tokenizer == NULL || text == NULL) {
        return -1;
    }
    return sq_piece_map_find(tokenizer, text, strlen(text));
}

sq_tokenizer_kind sq_tokenizer_get_kind(const sq_tokenizer *tokenizer) {
    return tokenizer->kind;
}

int32_t sq_tokenizer_vocab_size(const sq_tokenizer *tokenizer) {
    return tokenizer->vocab_size;
}

int32_t sq_tokenizer_bos_id(const sq_tokenizer *tokenizer) {
    return tokenizer->bos_id;
}

int32_t sq_tokenizer_eos_id(const sq_tokenizer *tokenizer) {
    return tokenizer->eos_id;
}

int sq_tokenizer_adds_bos(const sq_tokenizer *tokenizer) {
    return tokenizer->add_bos;
}

int sq_tokenizer_is_control(const sq_tokenizer *tokenizer, int32_t id) {
    if (id < 0 || id >= tokenizer->vocab_size) {
        return 0;
    }
    return tokenizer->token_types[id] == SQ_TOKEN_TYPE_CONTROL || id == tokenizer->bos_id ||
           id == tokenizer->eos_id;
}
