/* The arrays that recreate a tokenizer with sq_tokenizer_create, taken from the files the
 * tokenizer was loaded from: a llama2.c tokenizer.bin, or the tokenizer.ggml.* keys of a GGUF
 * file. The .spq writer serializes them; src/tokenizer exposes no accessor for the arrays of a
 * built sq_tokenizer, so they are read again from the source files here.
 * TODO: read them from the sq_tokenizer itself once src/tokenizer offers an accessor
 * (sq_tokenizer_describe); that also covers tokenizers built in memory. */
#ifndef SQ_SPQ_TOKENIZER_ACCESS_H
#define SQ_SPQ_TOKENIZER_ACCESS_H

#include <stdint.h>

#include "core/status.h"
#include "formats/gguf_reader.h"
#include "tokenizer/tokenizer.h"

typedef struct sq_spq_tokenizer_source {
    sq_tokenizer_desc desc;   /* the description; its arrays point into the storage below */
    uint8_t *file_bytes;      /* contents of a llama2.c tokenizer.bin, or NULL */
    sq_gguf_file *gguf;       /* an open GGUF file whose strings desc points to, or NULL */
    const char **pieces;      /* [vocab_size] */
    uint32_t *piece_lengths;  /* [vocab_size] */
    float *scores;            /* [vocab_size], or NULL */
    int32_t *token_types;     /* [vocab_size], or NULL */
    const char **merges;      /* [n_merges], or NULL */
    uint32_t *merge_lengths;  /* [n_merges], or NULL */
} sq_spq_tokenizer_source;

/* Reads the tokenizer description the model loader uses for model_path: the llama2.c
 * tokenizer.bin at tokenizer_path when it is not NULL (it replaces the model's own, as in
 * sq_model_load), otherwise the tokenizer.ggml.* keys of the GGUF file at model_path. The
 * rules match the loaders (llama2.c: <unk> 0, BOS 1, EOS 2, byte pieces typed BYTE; GGUF: ids of
 * 0xFFFFFFFF mean none, add_bos and add_space_prefix default to 1 for "llama" and 0 for "gpt2").
 * Fails with SQ_ERR_UNSUPPORTED when model_path carries no tokenizer and none is given. */
sq_status sq_spq_tokenizer_source_open(const char *model_path, const char *tokenizer_path, int32_t vocab_size,
                                       sq_spq_tokenizer_source *source, sq_error *err);

void sq_spq_tokenizer_source_close(sq_spq_tokenizer_source *source);

#endif
