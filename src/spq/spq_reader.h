/* Reading .spq files into an sq_spq_model, whole or streamed.
 *
 * Both readers check the file header, every section header, each section's payload CRC-32 as
 * soon as the section is complete, the metadata against the layout its configuration implies,
 * and the tokenizer. On failure they return the error with a message that starts with the
 * failing place ("section 4 (layer 1): payload CRC-32 ...") and, when failure is not NULL,
 * fill *failure with the section index (-1 for the file header), kind and layer. A file cut
 * short fails in the section where it ends; a file of another format version fails in the file
 * header with SQ_ERR_UNSUPPORTED. */
#ifndef SQ_SPQ_SPQ_READER_H
#define SQ_SPQ_SPQ_READER_H

#include <stddef.h>
#include <stdint.h>

#include "spq/spq_format.h"
#include "spq/spq_model.h"

/* Returns 1 when the file at path starts with the .spq magic bytes, 0 otherwise (also when it
 * cannot be read). */
int sq_spq_is_spq_file(const char *path);

/* Parses a complete file in bytes (size bytes). The tensors of the model point into bytes, and
 * they are 64-byte aligned when bytes is. With take_ownership, the model frees bytes (which
 * must come from malloc or aligned_alloc), also when parsing fails. Otherwise bytes must
 * outlive the model. */
sq_status sq_spq_read_buffer(uint8_t *bytes, size_t size, int take_ownership, sq_spq_model *model,
                             sq_spq_failure *failure, sq_error *err);

/* Reads the file at path into one 64-byte aligned buffer and parses it in place: the model
 * costs the file size. */
sq_status sq_spq_load_file(const char *path, sq_spq_model *model, sq_spq_failure *failure, sq_error *err);

/* ---- streaming: push bytes as they arrive ---- */

typedef struct sq_spq_stream sq_spq_stream;

sq_status sq_spq_stream_create(sq_spq_stream **out, sq_error *err);

/* Sets the length of the whole stream when the caller knows it (a file size, an HTTP
 * Content-Length); 0 means unknown, the default. A file header that declares another size then
 * fails at once, so the tensor storage allocated after the metadata is bounded by the bytes that
 * will arrive. Fails with SQ_ERR_INVALID_ARG once bytes have been fed. */
sq_status sq_spq_stream_set_total_size(sq_spq_stream *stream, uint64_t total_bytes, sq_error *err);

/* Consumes n bytes (any n, including 0). Metadata and tokenizer bytes are buffered until their
 * section is complete. Tensor bytes are copied straight to their final place in the model's
 * storage, which is allocated once the metadata is known. A section header whose payload would
 * run past the file size in the file header fails before anything is allocated for it. Each
 * section is verified when its last byte arrives, and after a failure every later call returns
 * the same error. */
sq_status sq_spq_stream_feed(sq_spq_stream *stream, const void *bytes, size_t n, sq_error *err);

/* Checks that the whole file has arrived and moves the result into *model. A stream that ended
 * early fails in the section it was reading. */
sq_status sq_spq_stream_finish(sq_spq_stream *stream, sq_spq_model *model, sq_error *err);

/* Returns where the stream failed, or NULL while it has not failed. */
const sq_spq_failure *sq_spq_stream_failure(const sq_spq_stream *stream);

/* Returns the number of bytes consumed so far. */
uint64_t sq_spq_stream_bytes_received(const sq_spq_stream *stream);

void sq_spq_stream_free(sq_spq_stream *stream);

#endif
