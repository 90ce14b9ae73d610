/* Writing .spq files: the whole file is assembled in memory (section by section, tensors at
 * their 64-byte aligned offsets, CRCs filled in) and then written atomically. */
#ifndef SQ_SPQ_SPQ_WRITER_H
#define SQ_SPQ_SPQ_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "spq/spq_model.h"
#include "tokenizer/tokenizer.h"

/* Serializes model (every tensor field set, settings valid) with the tokenizer described by
 * tokenizer into a new 64-byte aligned buffer (*bytes, *size) the caller frees. model's own
 * tokenizer field is not read, because a built sq_tokenizer cannot be serialized. */
sq_status sq_spq_serialize(const sq_spq_model *model, const sq_tokenizer_desc *tokenizer, uint8_t **bytes,
                           size_t *size, sq_error *err);

/* Serializes and writes to path through a temporary file that is renamed over path, so a
 * failure never leaves a partial file at path. */
sq_status sq_spq_save(const char *path, const sq_spq_model *model, const sq_tokenizer_desc *tokenizer, sq_error *err);

#endif
