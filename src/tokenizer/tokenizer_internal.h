/* The layout of sq_tokenizer and the helpers that the tokenizer source files share. Nothing
 * outside src/tokenizer/ includes this header. */
#ifndef SQ_TOKENIZER_TOKENIZER_INTERNAL_H
#define SQ_TOKENIZER_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* Open-addressing hash set of token ids keyed by their piece text (linear probing). The texts
 * live in the tokenizer's piece blob, so the map stores ids only. */
typedef struct sq_piece_map {
    int32_t *slots;  /* [capacity] token id, or -1 for an empty slot */
    size_t capacity; /* a power of two, at least twice the number of ids */
} sq_piece_map;

/* One merge rule: the pair (left, right) of adjacent token ids becomes result. A lower rank
 * merges first. */
typedef struct sq_pair_entry {
    uint64_t key;   /* left id << 32 | right id, or SQ_PAIR_EMPTY */
    int32_t result; /* token id of the merged pair */
    int32_t rank;
} sq_pair_entry;

#define SQ_PAIR_EMPTY UINT64_MAX

/* Open-addressing hash map from an id pair to its merge rule (linear probing). */
typedef struct sq_pair_map {
    sq_pair_entry *slots; /* [capacity] */
    size_t capacity;      /* a power of two, or 0 when the map is empty */
    size_t count;
} sq_pair_map;

/* How a BPE tokenizer splits text into words before merging. */
typedef enum sq_pretokenizer {
    SQ_PRETOKENIZER_GPT2 = 1,        /* the GPT-2 regex */
    SQ_PRETOKENIZER_DIGITS_GPT2 = 2, /* every \p{N} character alone, then the GPT-2 regex */
} sq_pretokenizer;

struct sq_tokenizer {
    sq_tokenizer_kind kind;
    int32_t vocab_size;

    char *piece_text;         /* every piece's bytes, each followed by a NUL */
    uint32_t *piece_offsets;  /* [vocab_size] start of each piece in piece_text */
    uint32_t *piece_lengths;  /* [vocab_size] byte length of each piece */
    float *scores;            /* [vocab_size] SPM merge scores (zeros when the desc had none) */
    int32_t *token_types;     /* [vocab_size] SQ_TOKEN_TYPE_* (NORMAL when the desc had none) */
    size_t piece_text_size;

    char *decoded_text;        /* what each token decodes to, each followed by a NUL */
    uint32_t *decoded_offsets; /* [vocab_size] */
    uint32_t *decoded_lengths; /* [vocab_size] */
    uint8_t *strip_after_bos;  /* [vocab_size] 1 when SPM drops the decoded leading space after BOS */
    size_t decoded_text_size;
    size_t max_decoded_length; /* longest decoded token in bytes */

    sq_piece_map pieces; /* piece text -> lowest id with that text */
    sq_pair_map merges;  /* adjacent id pair -> merged id and rank */

    /* SPM: the <0xNN> piece of each byte. BPE: the token of each byte's byte-level character.
     * -1 where the vocabulary has none. */
    int32_t byte_tokens[256];

    int32_t *special_ids;          /* [special_count] CONTROL and USER_DEFINED tokens, sorted by
                                      first byte, then longest first */
    int32_t special_count;
    int32_t special_first[257];    /* special_ids[special_first[b] .. special_first[b + 1]) start
                                      with byte b */

    int32_t bos_id;
    int32_t eos_id;
    int32_t unk_id;
    int32_t pad_id;
    int add_bos;
    int add_space_prefix;
    int spm_meta_space;            /* SPM: 1 when spaces are written as U+2581 ("▁") pieces */
    sq_pretokenizer pretokenizer;  /* BPE only */
};

/* A growable array of token ids. */
typedef struct sq_id_buffer {
    int32_t *data;
    size_t count;
    size_t capacity;
} sq_id_buffer;

sq_status sq_id_buffer_push(sq_id_buffer *buffer, int32_t id, sq_error *err);

/* ---- piece_map.c ---- */

uint64_t sq_hash_bytes(const void *data, size_t length);

/* Builds the map over every piece; a text that occurs twice keeps its lowest id. */
sq_status sq_piece_map_build(sq_tokenizer *tokenizer, sq_error *err);
int32_t sq_piece_map_find(const sq_tokenizer *tokenizer, const char *text, size_t length);

/* Allocates room for count rules so that inserting them never rehashes; empties the map. */
sq_status sq_pair_map_reserve(sq_pair_map *map, size_t count, sq_error *err);
/* Inserts (left, right) -> (result, rank), growing the map when needed. Returns 1 when
 * inserted, 0 when the pair was present (the earlier rule stays) and -1 when out of memory. */
int sq_pair_map_insert(sq_pair_map *map, int32_t left, int32_t right, int32_t result, int32_t rank);
const sq_pair_entry *sq_pair_map_find(const sq_pair_map *map, int32_t left, int32_t right);
void sq_pair_map_free(sq_pair_map *map);

/* ---- merge_queue.c: the shared merge loop of both kinds ---- */

typedef struct sq_merge_symbol {
    int32_t id;   /* token id, or -1 once merged into its left neighbour */
    int32_t prev; /* index of the previous live symbol, or -1 */
    int32_t next; /* index of the next live symbol, or -1 */
} sq_merge_symbol;

typedef struct sq_merge_candidate {
    int32_t rank;
    int32_t left;     /* symbol index of the left half */
    int32_t right;    /* symbol index of the right half */
    int32_t left_id;  /* ids at push time, to detect candidates made stale by other merges */
    int32_t right_id;
    int32_t result;   /* id of the merged symbol */
} sq_merge_candidate;

/* Scratch memory reused across calls within one encode. */
typedef struct sq_merge_workspace {
    sq_merge_symbol *symbols;
    size_t symbol_capacity;
    sq_merge_candidate *heap;
    size_t heap_count;
    size_t heap_capacity;
} sq_merge_workspace;

sq_status sq_merge_workspace_reserve(sq_merge_workspace *workspace, size_t symbol_count,
                                     sq_error *err);
void sq_merge_workspace_free(sq_merge_workspace *workspace);

/* Merges workspace->symbols[0 .. count) (ids filled in by the caller) until no adjacent pair
 * has a rule: each step applies the pair of lowest rank, the leftmost among equal ranks, and
 * appends the final ids to out. */
sq_status sq_merge_symbols(const sq_pair_map *merges, sq_merge_workspace *workspace, size_t count,
                           sq_id_buffer *out, sq_error *err);

/* ---- tokenizer_spm.c / tokenizer_bpe.c ---- */

sq_status sq_spm_build(sq_tokenizer *tokenizer, sq_error *err);
/* Encodes one run of ordinary text (no special tokens) and appends its ids. */
sq_status sq_spm_encode_text(const sq_tokenizer *tokenizer, const char *text, size_t length,
                             int add_prefix, sq_merge_workspace *workspace, sq_id_buffer *out,
                             sq_error *err);

sq_status sq_bpe_build(sq_tokenizer *tokenizer, const sq_tokenizer_desc *desc, sq_error *err);
sq_status sq_bpe_encode_text(const sq_tokenizer *tokenizer, const char *text, size_t length,
                             sq_merge_workspace *workspace, sq_id_buffer *out, sq_error *err);

/* Returns the code point of byte b's byte-level character (GPT-2 bytes_to_unicode). */
uint32_t sq_bpe_byte_to_codepoint(uint8_t b);
/* Returns the byte whose byte-level character is codepoint, or -1. */
int sq_bpe_codepoint_to_byte(uint32_t codepoint);

/* ---- decode.c ---- */

sq_status sq_decode_table_build(sq_tokenizer *tokenizer, sq_error *err);

/* ---- pretokenize.c ---- */

/* Iterates over the words of one run of text, as the regex split of the pre-tokenizer finds
 * them. The text must be valid UTF-8. */
typedef struct sq_pretokenize_iterator {
    const unsigned char *text;
    size_t length;
    size_t position;    /* start of the next word */
    size_t segment_end; /* end of the current digit-split segment */
    sq_pretokenizer kind;
} sq_pretokenize_iterator;

void sq_pretokenize_begin(sq_pretokenize_iterator *iterator, sq_pretokenizer kind,
                          const char *text, size_t length);
/* Sets *start and *end to the next word and returns 1, or returns 0 at the end of the text. */
int sq_pretokenize_next(sq_pretokenize_iterator *iterator, size_t *start, size_t *end);

/* ---- utf8.c ---- */

/* Returns the byte offset of the first invalid UTF-8 sequence in text (overlong forms,
 * surrogates, code points above U+10FFFF and truncated sequences are invalid), or length when
 * the whole text is valid. */
size_t sq_utf8_find_invalid(const char *text, size_t length);
/* Decodes the code point at text[position] of valid UTF-8 and stores its byte length. */
uint32_t sq_utf8_decode(const unsigned char *text, size_t position, size_t *char_length);
/* Writes the UTF-8 bytes of codepoint (at most 4) and returns their count. */
size_t sq_utf8_encode(uint32_t codepoint, char *out);
/* Returns the byte length announced by a UTF-8 lead byte, or 0 for a byte that cannot start a
 * character (a continuation byte, 0xC0, 0xC1 or 0xF5..0xFF). */
size_t sq_utf8_sequence_length(unsigned char lead);

/* ---- unicode.c ---- */

int sq_unicode_is_letter(uint32_t codepoint);     /* general category L* */
int sq_unicode_is_number(uint32_t codepoint);     /* general category N* */
int sq_unicode_is_whitespace(uint32_t codepoint); /* the White_Space property */

typedef struct sq_unicode_range {
    uint32_t first;
    uint32_t last; /* inclusive */
} sq_unicode_range;

extern const sq_unicode_range sq_unicode_letter_ranges[];
extern const size_t sq_unicode_letter_range_count;
extern const sq_unicode_range sq_unicode_number_ranges[];
extern const size_t sq_unicode_number_range_count;

#endif
