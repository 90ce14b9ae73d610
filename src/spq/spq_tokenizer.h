/* The tokenizer section of a .spq file: an sq_tokenizer_desc in a flat little-endian record
 * (layout in docs/FORMAT.md), decoded back into a tokenizer with sq_tokenizer_create. */
#ifndef SQ_SPQ_SPQ_TOKENIZER_H
#define SQ_SPQ_SPQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

/* Serializes desc into a new buffer (*bytes, *size) the caller frees. */
sq_status sq_spq_tokenizer_encode(const sq_tokenizer_desc *desc, uint8_t **bytes, size_t *size, sq_error *err);

/* Parses a tokenizer section of size bytes and builds the tokenizer. Fails with SQ_ERR_FORMAT
 * when a count or length runs past the section, when bytes are left over, or when the
 * vocabulary size differs from vocab_size. */
sq_status sq_spq_tokenizer_decode(const uint8_t *bytes, size_t size, int32_t vocab_size, sq_tokenizer **out,
                                  sq_error *err);

#endif
