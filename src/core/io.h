/* Checked file I/O: every failure names the file and the operation, so callers can pass the
 * message straight to the user. */
#ifndef SQ_CORE_IO_H
#define SQ_CORE_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Reads the whole file at path into a new buffer (NUL-terminated one byte past *size so text
 * can be parsed in place). The caller frees *data. */
sq_status sq_io_read_file(const char *path, uint8_t **data, size_t *size, sq_error *err);

/* Writes size bytes to path atomically: the bytes go to "<path>.tmp", are flushed, and the
 * temporary file is renamed over path. On failure path is left untouched and the temporary
 * file is removed. */
sq_status sq_io_write_file_atomic(const char *path, const void *data, size_t size, sq_error *err);

/* Returns 1 when path names an existing directory, 0 otherwise. */
int sq_io_is_directory(const char *path);

#endif
