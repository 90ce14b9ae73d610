/* Checked reads from a model file whose size is known up front. Every read first checks the
 * bytes that remain, so a truncated or corrupt file yields an SQ_ERR_FORMAT message naming the
 * file, the item being read and its offset instead of a short read. Reads are sequential
 * unless a caller seeks. Multi-byte values are little-endian, as every supported format stores
 * them. */
#ifndef SQ_FORMATS_FILE_READER_H
#define SQ_FORMATS_FILE_READER_H

#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

/* The loaders copy fp32 tensor bytes straight into float arrays. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "the model loaders assume a little-endian host"
#endif

typedef struct sq_file_reader {
    FILE *file;
    char *path;        /* owned copy, for messages */
    uint64_t size;     /* file size in bytes */
    uint64_t position; /* offset of the next sequential read */
} sq_file_reader;

/* Opens a regular file for reading. Fails with SQ_ERR_IO when it is missing, unreadable or
 * not a regular file. */
sq_status sq_file_reader_open(sq_file_reader *reader, const char *path, sq_error *err);

/* Closes the file and frees the path; safe on a zeroed or already closed reader. */
void sq_file_reader_close(sq_file_reader *reader);

/* Returns the number of bytes after the current position. */
uint64_t sq_file_reader_remaining(const sq_file_reader *reader);

/* Reads size bytes at the current position; item names what is read, for the error message. */
sq_status sq_file_reader_read(sq_file_reader *reader, void *destination, uint64_t size,
                              const char *item, sq_error *err);

/* Moves the current position to offset, which must not exceed the file size. */
sq_status sq_file_reader_seek(sq_file_reader *reader, uint64_t offset, sq_error *err);

/* Little-endian scalar reads at the current position. */
sq_status sq_file_reader_read_u32(sq_file_reader *reader, uint32_t *value, const char *item,
                                  sq_error *err);
sq_status sq_file_reader_read_u64(sq_file_reader *reader, uint64_t *value, const char *item,
                                  sq_error *err);

/* Decoding of little-endian values from a byte buffer. */
static inline uint16_t sq_load_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t sq_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t sq_load_le64(const uint8_t *p) {
    return (uint64_t)sq_load_le32(p) | ((uint64_t)sq_load_le32(p + 4) << 32);
}

#endif
