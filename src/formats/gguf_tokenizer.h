/* Tokenizer construction from GGUF metadata (tokenizer.ggml.*). */
#ifndef SQ_FORMATS_GGUF_TOKENIZER_H
#define SQ_FORMATS_GGUF_TOKENIZER_H

#include "core/log.h"
#include "core/status.h"
#include "formats/gguf_reader.h"
#include "model/model.h"

/* Builds the tokenizer described by file's tokenizer.ggml.* keys into *out, or leaves *out NULL
 * when the file has no tokenizer.ggml.model. Fails with SQ_ERR_UNSUPPORTED for a tokenizer model
 * other than "llama" and "gpt2", and with SQ_ERR_MISMATCH when the token count differs from
 * config->vocab_size. */
sq_status sq_gguf_build_tokenizer(const sq_gguf_file *file, const sq_config *config, const sq_logger *logger,
                                  sq_tokenizer **out, sq_error *err);

#endif
