/* A small synthetic byte-level BPE vocabulary for the BPE harness and the seed generator: the
 * 256 GPT-2 byte characters (ids 0..255 in byte order), the results of a few merges, and
 * special tokens. The GPT-2 byte-to-character map sends the printable bytes 0x21..0x7E,
 * 0xA1..0xAC and 0xAE..0xFF to the code point of the same value and every other byte, in
 * increasing order, to U+0100, U+0101, and so on. */
#ifndef SQ_FUZZ_BPE_VOCAB_H
#define SQ_FUZZ_BPE_VOCAB_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

/* Merges "left right"; each result becomes a token right after the byte tokens. */
static const char *const FUZZ_BPE_MERGES[] = {
    "\xC4\xA0 t", "h e", "\xC4\xA0t he", "i n", "\xC4\xA0 a", "e r", "o n", "\xC4\xA0 w", "r e", "\xC4\xA0 s",
    "1 2", "\xC3\x83 \xC2\xA9", "\xC4\xA0 \xC4\xA0", "o r", "\xC4\xA0w or", "l d", "\xC4\xA0wor ld", "i m",
    "\xC4\x8A \xC4\x8A",
};
#define FUZZ_BPE_MERGE_COUNT ((int32_t)(sizeof(FUZZ_BPE_MERGES) / sizeof(FUZZ_BPE_MERGES[0])))

/* Special tokens after the merge results: the first is BOS and EOS. */
static const char *const FUZZ_BPE_SPECIALS[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>"};
#define FUZZ_BPE_SPECIAL_COUNT 4
#define FUZZ_BPE_VOCAB_SIZE (256 + FUZZ_BPE_MERGE_COUNT + FUZZ_BPE_SPECIAL_COUNT)

/* Storage behind a filled sq_tokenizer_desc. */
typedef struct fuzz_bpe_vocab {
    char byte_chars[256][3];
    char merged[FUZZ_BPE_MERGE_COUNT][16];
    const char *pieces[FUZZ_BPE_VOCAB_SIZE];
    uint32_t piece_lengths[FUZZ_BPE_VOCAB_SIZE];
    int32_t token_types[FUZZ_BPE_VOCAB_SIZE];
    uint32_t merge_lengths[FUZZ_BPE_MERGE_COUNT];
} fuzz_bpe_vocab;

/* Encodes code point c (below U+0800) as UTF-8 into out and returns its length. */
static inline size_t fuzz_utf8_put(uint32_t c, char *out) {
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

/* Fills vocab and desc; pre_tokenizer is a GGUF tokenizer.ggml.pre name or NULL. */
static inline void fuzz_bpe_vocab_init(fuzz_bpe_vocab *vocab, const char *pre_tokenizer, sq_tokenizer_desc *desc) {
    memset(vocab, 0, sizeof(*vocab));
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t c = printable ? (uint32_t)b : next_extra++;
        size_t n = fuzz_utf8_put(c, vocab->byte_chars[b]);
        vocab->pieces[b] = vocab->byte_chars[b];
        vocab->piece_lengths[b] = (uint32_t)n;
        vocab->token_types[b] = SQ_TOKEN_TYPE_NORMAL;
    }
    for (int32_t m = 0; m < FUZZ_BPE_MERGE_COUNT; m++) {
        const char *merge = FUZZ_BPE_MERGES[m];
        size_t length = strlen(merge);
        size_t used = 0;
        for (size_t i = 0; i < length; i++) {
            if (merge[i] != ' ') {
                vocab->merged[m][used++] = merge[i];
            }
        }
        vocab->pieces[256 + m] = vocab->merged[m];
        vocab->piece_lengths[256 + m] = (uint32_t)used;
        vocab->token_types[256 + m] = SQ_TOKEN_TYPE_NORMAL;
        vocab->merge_lengths[m] = (uint32_t)length;
    }
    for (int32_t s = 0; s < FUZZ_BPE_SPECIAL_COUNT; s++) {
        int32_t id = 256 + FUZZ_BPE_MERGE_COUNT + s;
        vocab->pieces[id] = FUZZ_BPE_SPECIALS[s];
        vocab->piece_lengths[id] = (uint32_t)strlen(FUZZ_BPE_SPECIALS[s]);
        vocab->token_types[id] = s == 3 ? SQ_TOKEN_TYPE_USER_DEFINED : SQ_TOKEN_TYPE_CONTROL;
    }

    memset(desc, 0, sizeof(*desc));
    desc->kind = SQ_TOKENIZER_BPE;
    desc->vocab_size = FUZZ_BPE_VOCAB_SIZE;
    desc->pieces = vocab->pieces;
    desc->piece_lengths = vocab->piece_lengths;
    desc->token_types = vocab->token_types;
    desc->n_merges = FUZZ_BPE_MERGE_COUNT;
    desc->merges = FUZZ_BPE_MERGES;
    desc->merge_lengths = vocab->merge_lengths;
    desc->bos_id = 256 + FUZZ_BPE_MERGE_COUNT;
    desc->eos_id = desc->bos_id;
    desc->unk_id = -1;
    desc->pad_id = -1;
    desc->add_bos = 0;
    desc->add_space_prefix = 0;
    desc->pre_tokenizer = pre_tokenizer;
}

#endif
