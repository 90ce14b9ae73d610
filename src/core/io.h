/* Checked file I/O: every failure names the file and the operation, so callers can pass the
 * message straight to the user. */
#ifndef SQ_CORE_IO_H
#define SQ_CORE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

/* Bytes per fread call of sq_io_read_chunked. */
#define SQ_IO_READ_CHUNK_BYTES ((size_t)4 << 20)

/* Reads size bytes from file into destination with one fread per SQ_IO_READ_CHUNK_BYTES,
 * because the wasmtime runtime (Python package 51.0.0) fails a single WASI read of 128 MiB or
 * more. Returns the number of bytes read, which is less than size only at the end of the file
 * or after a read error (ferror distinguishes the two). */
size_t sq_io_read_chunked(FILE *file, void *destination, size_t size);

/* Reads the whole file at path into a new buffer (NUL-terminated one byte past *size so text
 * can be parsed in place), in chunks (sq_io_read_chunked). The caller frees *data. */
sq_status sq_io_read_file(const char *path, uint8_t **data, size_t *size, sq_error *err);

/* Writes size bytes to path atomically: the bytes go to "<path>.tmp", are flushed, and the
 * temporary file is renamed over path. On failure path is left untouched and the temporary
 * file is removed. */
sq_status sq_io_write_file_atomic(const char *path, const void *data, size_t size, sq_error *err);

/* Checks that sq_io_write_file_atomic could create path's temporary file, so that a long
 * computation can fail before it starts rather than when it writes its result. */
sq_status sq_io_check_writable(const char *path, sq_error *err);

/* Returns 1 when path names an existing directory, 0 otherwise. */
int sq_io_is_directory(const char *path);

#endif
