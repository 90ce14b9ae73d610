/* Encoding and decoding of the tokenizer section. Record (all fields little-endian):
 *   u32 kind, i32 vocab_size, i32 bos_id, eos_id, unk_id, pad_id, u32 flags (bit 0 add_bos,
 *   bit 1 add_space_prefix, bit 2 scores present, bit 3 token types present), i32 n_merges,
 *   u32 pre_tokenizer length P, u32 reserved (0), P bytes of the pre-tokenizer name padded with
 *   zeros to a multiple of 4, f32 scores[vocab_size] (bit 2), i32 token_types[vocab_size]
 *   (bit 3), u32 piece_lengths[vocab_size], u32 merge_lengths[n_merges], the piece bytes, the
 *   merge bytes. */
#include "spq/spq_tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "spq/spq_format.h"

#define FIXED_BYTES 40u
#define FLAG_ADD_BOS 1u
#define FLAG_ADD_SPACE_PREFIX 2u
#define FLAG_SCORES 4u
#define FLAG_TOKEN_TYPES 8u

static uint64_t pad4(uint64_t n) {
    return (n + 3) / 4 * 4;
}

sq_status sq_spq_tokenizer_encode(const sq_tokenizer_desc *d, uint8_t **bytes, size_t *size, sq_error *err) {
    uint64_t vocab = (uint64_t)d->vocab_size;
    uint64_t merges = d->n_merges > 0 ? (uint64_t)d->n_merges : 0;
    uint64_t pre_length = d->pre_tokenizer != NULL ? strlen(d->pre_tokenizer) : 0;
    uint64_t total = FIXED_BYTES + pad4(pre_length) + (d->scores != NULL ? 4 * vocab : 0) +
                     (d->token_types != NULL ? 4 * vocab : 0) + 4 * vocab + 4 * merges;
    for (uint64_t i = 0; i < vocab; i++) {
        total += d->piece_lengths[i];
    }
    for (uint64_t i = 0; i < merges; i++) {
        total += d->merge_lengths[i];
    }
    if (total > SQ_SPQ_MAX_SMALL_SECTION) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "the tokenizer needs %llu bytes, more than the section limit of %llu",
                            (unsigned long long)total, (unsigned long long)SQ_SPQ_MAX_SMALL_SECTION);
    }
    uint8_t *out = calloc((size_t)total, 1);
    if (out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the tokenizer section", (unsigned long long)total);
    }

    uint32_t flags = (d->add_bos ? FLAG_ADD_BOS : 0) | (d->add_space_prefix ? FLAG_ADD_SPACE_PREFIX : 0) |
                     (d->scores != NULL ? FLAG_SCORES : 0) | (d->token_types != NULL ? FLAG_TOKEN_TYPES : 0);
    sq_spq_write_u32(out + 0, (uint32_t)d->kind);
    sq_spq_write_u32(out + 4, (uint32_t)d->vocab_size);
    sq_spq_write_u32(out + 8, (uint32_t)d->bos_id);
    sq_spq_write_u32(out + 12, (uint32_t)d->eos_id);
    sq_spq_write_u32(out + 16, (uint32_t)d->unk_id);
    sq_spq_write_u32(out + 20, (uint32_t)d->pad_id);
    sq_spq_write_u32(out + 24, flags);
    sq_spq_write_u32(out + 28, (uint32_t)merges);
    sq_spq_write_u32(out + 32, (uint32_t)pre_length);
    uint64_t at = FIXED_BYTES;
    if (pre_length > 0) {
        memcpy(out + at, d->pre_tokenizer, (size_t)pre_length);
    }
    at += pad4(pre_length);

    for (uint64_t i = 0; d->scores != NULL && i < vocab; i++, at += 4) {
        uint32_t bits;
        memcpy(&bits, &d->scores[i], 4);
        sq_spq_write_u32(out + at, bits);
    }
    for (uint64_t i = 0; d->token_types != NULL && i < vocab; i++, at += 4) {
        sq_spq_write_u32(out + at, (uint32_t)d->token_types[i]);
    }
    for (uint64_t i = 0; i < vocab; i++, at += 4) {
        sq_spq_write_u32(out + at, d->piece_lengths[i]);
    }
    for (uint64_t i = 0; i < merges; i++, at += 4) {
        sq_spq_write_u32(out + at, d->merge_lengths[i]);
    }
    for (uint64_t i = 0; i < vocab; i++) {
        memcpy(out + at, d->pieces[i], d->piece_lengths[i]);
        at += d->piece_lengths[i];
    }
    for (uint64_t i = 0; i < merges; i++) {
        memcpy(out + at, d->merges[i], d->merge_lengths[i]);
        at += d->merge_lengths[i];
    }
    *bytes = out;
    *size = (size_t)total;
    return SQ_OK;
}

/* A bounds-checked cursor over the section. */
typedef struct reader {
    const uint8_t *bytes;
    uint64_t size;
    uint64_t at;
} reader;

static int take(reader *r, uint64_t n, const uint8_t **out) {
    if (n > r->size - r->at) {
        return 0;
    }
    *out = r->bytes + r->at;
    r->at += n;
    return 1;
}

typedef struct decoded_arrays {
    const char **pieces;
    uint32_t *piece_lengths;
    float *scores;
    int32_t *token_types;
    const char **merges;
    uint32_t *merge_lengths;
    char *pre_tokenizer;
} decoded_arrays;

static void free_arrays(decoded_arrays *a) {
    free(a->pieces);
    free(a->piece_lengths);
    free(a->scores);
    free(a->token_types);
    free(a->merges);
    free(a->merge_lengths);
    free(a->pre_tokenizer);
}

/* Reads count u32 lengths and then points strings at consecutive runs of those lengths in the
 * string area starting at *text_at. */
static int read_lengths(reader *r, uint64_t count, uint32_t *lengths) {
    const uint8_t *p;
    if (!take(r, 4 * count, &p)) {
        return 0;
    }
    for (uint64_t i = 0; i < count; i++) {
        lengths[i] = sq_spq_read_u32(p + 4 * i);
    }
    return 1;
}

static int read_strings(reader *r, uint64_t count, const uint32_t *lengths, const char **strings) {
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *p;
        if (!take(r, lengths[i], &p)) {
            return 0;
        }
        strings[i] = (const char *)p;
    }
    return 1;
}

static sq_status truncated(sq_error *err, const char *what) {
    return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer section: %s runs past the end of the section", what);
}

sq_status sq_spq_tokenizer_decode(const uint8_t *bytes, size_t size, int32_t vocab_size, sq_tokenizer **out,
                                  sq_error *err) {
    reader r = {bytes, size, 0};
    const uint8_t *fixed;
    if (!take(&r, FIXED_BYTES, &fixed)) {
        return truncated(err, "the fixed fields");
    }
    sq_tokenizer_desc d;
    memset(&d, 0, sizeof(d));
    d.kind = (sq_tokenizer_kind)sq_spq_read_u32(fixed);
    d.vocab_size = (int32_t)sq_spq_read_u32(fixed + 4);
    d.bos_id = (int32_t)sq_spq_read_u32(fixed + 8);
    d.eos_id = (int32_t)sq_spq_read_u32(fixed + 12);
    d.unk_id = (int32_t)sq_spq_read_u32(fixed + 16);
    d.pad_id = (int32_t)sq_spq_read_u32(fixed + 20);
    uint32_t flags = sq_spq_read_u32(fixed + 24);
    uint32_t n_merges = sq_spq_read_u32(fixed + 28);
    uint32_t pre_length = sq_spq_read_u32(fixed + 32);
    if (d.vocab_size != vocab_size) {
        return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer section: vocab_size %d, but the model's is %d", d.vocab_size,
                            vocab_size);
    }
    if ((flags & ~15u) != 0 || n_merges > INT32_MAX || sq_spq_read_u32(fixed + 36) != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "tokenizer section: invalid flags 0x%x or merge count %u", flags, n_merges);
    }
    /* Every token and merge has a 4-byte length in the section, so larger counts are corrupt.
     * Rejecting them here bounds the allocations below by the section size. */
    uint64_t room = size - FIXED_BYTES;
    if ((uint64_t)(uint32_t)vocab_size > room / 4 || n_merges > room / 4 || pre_length > room) {
        return truncated(err, "the token, merge or pre-tokenizer count");
    }
    d.add_bos = (flags & FLAG_ADD_BOS) != 0;
    d.add_space_prefix = (flags & FLAG_ADD_SPACE_PREFIX) != 0;
    d.n_merges = (int32_t)n_merges;

    uint64_t vocab = (uint64_t)vocab_size;
    decoded_arrays a = {0};
    a.pieces = calloc(vocab, sizeof(*a.pieces));
    a.piece_lengths = calloc(vocab, sizeof(*a.piece_lengths));
    a.merges = calloc(n_merges > 0 ? n_merges : 1, sizeof(*a.merges));
    a.merge_lengths = calloc(n_merges > 0 ? n_merges : 1, sizeof(*a.merge_lengths));
    a.scores = (flags & FLAG_SCORES) ? calloc(vocab, sizeof(float)) : NULL;
    a.token_types = (flags & FLAG_TOKEN_TYPES) ? calloc(vocab, sizeof(int32_t)) : NULL;
    a.pre_tokenizer = calloc((size_t)pre_length + 1, 1);
    if (a.pieces == NULL || a.piece_lengths == NULL || a.merges == NULL || a.merge_lengths == NULL ||
        ((flags & FLAG_SCORES) && a.scores == NULL) || ((flags & FLAG_TOKEN_TYPES) && a.token_types == NULL) ||
        a.pre_tokenizer == NULL) {
        free_arrays(&a);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the arrays of a %d-token tokenizer", vocab_size);
    }

    sq_status status = SQ_OK;
    const uint8_t *p = NULL;
    if (!take(&r, pad4(pre_length), &p)) {
        status = truncated(err, "the pre-tokenizer name");
    } else {
        memcpy(a.pre_tokenizer, p, pre_length);
    }
    if (status == SQ_OK && a.scores != NULL) {
        if (!take(&r, 4 * vocab, &p)) {
            status = truncated(err, "the scores");
        }
        for (uint64_t i = 0; status == SQ_OK && i < vocab; i++) {
            uint32_t bits = sq_spq_read_u32(p + 4 * i);
            memcpy(&a.scores[i], &bits, 4);
        }
    }
    if (status == SQ_OK && a.token_types != NULL) {
        if (!take(&r, 4 * vocab, &p)) {
            status = truncated(err, "the token types");
        }
        for (uint64_t i = 0; status == SQ_OK && i < vocab; i++) {
            a.token_types[i] = (int32_t)sq_spq_read_u32(p + 4 * i);
        }
    }
    if (status == SQ_OK && (!read_lengths(&r, vocab, a.piece_lengths) || !read_lengths(&r, n_merges, a.merge_lengths))) {
        status = truncated(err, "the string lengths");
    }
    if (status == SQ_OK && (!read_strings(&r, vocab, a.piece_lengths, a.pieces) ||
                            !read_strings(&r, n_merges, a.merge_lengths, a.merges))) {
        status = truncated(err, "the token and merge strings");
    }
    if (status == SQ_OK && r.at != r.size) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "tokenizer section: %llu bytes left over after the merges",
                              (unsigned long long)(r.size - r.at));
    }
    if (status == SQ_OK) {
        d.pieces = a.pieces;
        d.piece_lengths = a.piece_lengths;
        d.scores = a.scores;
        d.token_types = a.token_types;
        d.merges = a.merges;
        d.merge_lengths = a.merge_lengths;
        d.pre_tokenizer = pre_length > 0 ? a.pre_tokenizer : NULL;
        status = sq_tokenizer_create(&d, out, err);
    }
    free_arrays(&a);
    return status;
}
