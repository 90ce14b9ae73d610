/* Tokenizers for Llama-family models, shared by every target:
 *   - SQ_TOKENIZER_SPM: SentencePiece-style BPE by piece scores, with byte fallback (<0xNN>
 *     pieces) and the dummy-prefix space, as llama2.c tokenizer.bin and GGUF
 *     tokenizer.ggml.model = "llama" use;
 *   - SQ_TOKENIZER_BPE: byte-level BPE with ranked merges and a regex pre-tokenizer split, as GGUF
 *     tokenizer.ggml.model = "gpt2" uses (SmolLM2 is one).
 * Control and user-defined tokens written literally in the text (such as "<|im_start|>") are
 * encoded as one token when parse_special is set. */
#ifndef SQ_TOKENIZER_TOKENIZER_H
#define SQ_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum sq_tokenizer_kind {
    SQ_TOKENIZER_SPM = 1,
    SQ_TOKENIZER_BPE = 2,
} sq_tokenizer_kind;

/* GGUF token types (tokenizer.ggml.token_type). */
enum {
    SQ_TOKEN_TYPE_NORMAL = 1,
    SQ_TOKEN_TYPE_UNKNOWN = 2,
    SQ_TOKEN_TYPE_CONTROL = 3,
    SQ_TOKEN_TYPE_USER_DEFINED = 4,
    SQ_TOKEN_TYPE_UNUSED = 5,
    SQ_TOKEN_TYPE_BYTE = 6,
};

/* Everything needed to build a tokenizer. Arrays are borrowed: sq_tokenizer_create copies them. */
typedef struct sq_tokenizer_desc {
    sq_tokenizer_kind kind;
    int32_t vocab_size;
    const char *const *pieces;     /* [vocab_size] token texts as stored in the model file */
    const uint32_t *piece_lengths; /* [vocab_size] byte lengths; pieces need not be NUL-terminated */
    const float *scores;           /* [vocab_size] SPM merge scores, or NULL */
    const int32_t *token_types;    /* [vocab_size] SQ_TOKEN_TYPE_* values, or NULL */
    int32_t n_merges;              /* BPE only */
    const char *const *merges;     /* [n_merges] "left right"; a merge's rank is its index */
    const uint32_t *merge_lengths; /* [n_merges] */
    int32_t bos_id;                /* -1 when the vocabulary has none */
    int32_t eos_id;
    int32_t unk_id;
    int32_t pad_id;
    int add_bos;                   /* 1 when encoding prepends BOS by default */
    int add_space_prefix;          /* SPM: 1 to prepend a space to the text before encoding */
    const char *pre_tokenizer;     /* BPE: GGUF tokenizer.ggml.pre (such as "smollm"), or NULL */
} sq_tokenizer_desc;

typedef struct sq_tokenizer sq_tokenizer;

/* Builds a tokenizer from desc. Rejects out-of-range ids and sizes (SQ_ERR_INVALID_ARG), a BPE
 * merge whose parts or result are not tokens (SQ_ERR_FORMAT) and an unknown BPE pre_tokenizer
 * (SQ_ERR_UNSUPPORTED). BPE pre_tokenizer names: "smollm", "starcoder", "refact", "command-r",
 * "codeshell", "exaone" and "minerva" split every \p{N} character off before the GPT-2 regex, as
 * llama.cpp does; "gpt2", "mpt", "olmo", "jais" and NULL use the GPT-2 regex alone. */
sq_status sq_tokenizer_create(const sq_tokenizer_desc *desc, sq_tokenizer **out, sq_error *err);

/* Reads a llama2.c tokenizer.bin (SPM kind, BOS 1, EOS 2, byte pieces at ids 3..258). A file
 * with fewer or more entries than vocab_size is an SQ_ERR_MISMATCH error, a truncated or corrupt
 * one SQ_ERR_FORMAT; the message names the file and the entry. */
sq_status sq_tokenizer_load_llama2c(const char *path, int32_t vocab_size, sq_tokenizer **out,
                                    sq_error *err);

void sq_tokenizer_free(sq_tokenizer *tokenizer);

/* Deep copy. */
sq_status sq_tokenizer_clone(const sq_tokenizer *src, sq_tokenizer **out, sq_error *err);

/* Encodes UTF-8 text (invalid UTF-8 is an SQ_ERR_INVALID_ARG error naming the byte offset).
 * add_bos: 1 prepend BOS, 0 do not, -1 use the tokenizer's default. With parse_special, the
 * texts of CONTROL and USER_DEFINED tokens become those tokens, taking the longest match at
 * each position. SPM then prefixes its dummy space to every run of text that starts the input
 * or follows such a token, as llama.cpp does. The caller frees *ids, which is never NULL on
 * success, even for an empty result. */
sq_status sq_tokenizer_encode(const sq_tokenizer *tokenizer, const char *text, size_t length,
                              int add_bos, int parse_special, int32_t **ids, size_t *count,
                              sq_error *err);

/* Returns the raw bytes that token id decodes to (byte pieces become their byte, SPM "▁"
 * becomes a space, byte-level BPE characters map back to bytes). previous_id is the token
 * before it or -1: SPM drops the leading space of the first piece after BOS. The pointer stays
 * valid until the tokenizer is freed. Control and user-defined tokens decode to their text, and
 * an id outside the vocabulary to the empty string. */
const char *sq_tokenizer_decode(const sq_tokenizer *tokenizer, int32_t previous_id, int32_t id,
                                size_t *length);

/* Returns the id of the token whose stored text is exactly text, or -1. */
int32_t sq_tokenizer_find(const sq_tokenizer *tokenizer, const char *text);

sq_tokenizer_kind sq_tokenizer_get_kind(const sq_tokenizer *tokenizer);
int32_t sq_tokenizer_vocab_size(const sq_tokenizer *tokenizer);
int32_t sq_tokenizer_bos_id(const sq_tokenizer *tokenizer);
int32_t sq_tokenizer_eos_id(const sq_tokenizer *tokenizer);
int sq_tokenizer_adds_bos(const sq_tokenizer *tokenizer);
/* Returns 1 for control tokens (BOS, EOS, <|im_end|> …) that end or structure a turn. */
int sq_tokenizer_is_control(const sq_tokenizer *tokenizer, int32_t id);

/* Streaming decoder: turns token ids into text pieces that never split a UTF-8 character. */
typedef struct sq_token_decoder {
    int32_t previous_id;
    unsigned char pending[8]; /* bytes of an incomplete UTF-8 character */
    size_t pending_length;
} sq_token_decoder;

void sq_token_decoder_init(sq_token_decoder *decoder);

/* Appends the text of id to out (capacity bytes, NUL-terminated) and returns the number of
 * bytes written, holding back an incomplete trailing UTF-8 character until a later token
 * completes it. Bytes that can never form a character (such as a lone continuation byte, or a
 * held-back prefix that the next byte does not continue) are written as U+FFFD, so the output
 * is always valid UTF-8. Whole characters that do not fit in capacity are dropped; a capacity of
 * sq_token_decoder_min_capacity(tokenizer) never drops any. */
size_t sq_token_decoder_push(sq_token_decoder *decoder, const sq_tokenizer *tokenizer, int32_t id,
                             char *out, size_t capacity);

/* Writes any held-back bytes (as U+FFFD if they never formed a character) and returns their length. */
size_t sq_token_decoder_flush(sq_token_decoder *decoder, char *out, size_t capacity);

/* Returns the output capacity with which sq_token_decoder_push never drops a character. */
size_t sq_token_decoder_min_capacity(const sq_tokenizer *tokenizer);

#endif
