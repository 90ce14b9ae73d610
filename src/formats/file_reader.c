/* Checked reads from a model file of known size. */
#include "formats/file_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/io.h"

sq_status sq_file_reader_open(sq_file_reader *reader, const char *path, sq_error *err) {
    memset(reader, 0, sizeof(*reader));

    size_t path_length = strlen(path);
    reader->path = malloc(path_length + 1);
    if (reader->path == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a copy of the path '%s'", path);
    }
    memcpy(reader->path, path, path_length + 1);

    reader->file = fopen(path, "rb");
    if (reader->file == NULL) {
        sq_error_set(err, SQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        sq_file_reader_close(reader);
        return SQ_ERR_IO;
    }

    struct stat info;
    if (fstat(fileno(reader->file), &info) != 0 || !S_ISREG(info.st_mode) || info.st_size < 0) {
        sq_error_set(err, SQ_ERR_IO, "cannot read '%s': it is not a regular file", path);
        sq_file_reader_close(reader);
        return SQ_ERR_IO;
    }
    reader->size = (uint64_t)info.st_size;
    return SQ_OK;
}

void sq_file_reader_close(sq_file_reader *reader) {
    if (reader->file != NULL) {
        fclose(reader->file);
    }
    free(reader->path);
    memset(reader, 0, sizeof(*reader));
}

uint64_t sq_file_reader_remaining(const sq_file_reader *reader) {
    return reader->position <= reader->size ? reader->size - reader->position : 0;
}

sq_status sq_file_reader_read(sq_file_reader *reader, void *destination, uint64_t size,
                              const char *item, sq_error *err) {
    if (size > sq_file_reader_remaining(reader)) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s' is truncated: %s needs %llu bytes at offset %llu but the file has %llu bytes",
                            reader->path, item, (unsigned long long)size,
                            (unsigned long long)reader->position, (unsigned long long)reader->size);
    }
    if (size > SIZE_MAX) {
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': %s of %llu bytes does not fit in memory",
                            reader->path, item, (unsigned long long)size);
    }
    if (size == 0) {
        return SQ_OK;
    }

    /* Chunked because the wasmtime runtime fails a single WASI read of 128 MiB or more, which
     * one large tensor needs.
     * NOTE: Node 20's node:wasi can still crash at exit once guest memory passes about 64 MiB;
     * 4 MiB chunks made it rarer in one measurement but do not prevent it. */
    size_t done = sq_io_read_chunked(reader->file, destination, (size_t)size);
    if (done != size) {
        return sq_error_set(err, SQ_ERR_IO, "read error in '%s': %s at offset %llu returned %llu of %llu bytes",
                            reader->path, item, (unsigned long long)reader->position, (unsigned long long)done,
                            (unsigned long long)size);
    }
    reader->position += size;
    return SQ_OK;
}

sq_status sq_file_reader_seek(sq_file_reader *reader, uint64_t offset, sq_error *err) {
    if (offset > reader->size) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': offset %llu lies past the end of the file (%llu bytes)",
                            reader->path, (unsigned long long)offset, (unsigned long long)reader->size);
    }
    if (offset == reader->position) {
        return SQ_OK;
    }
    if ((uint64_t)(off_t)offset != offset || fseeko(reader->file, (off_t)offset, SEEK_SET) != 0) {
        return sq_error_set(err, SQ_ERR_IO, "cannot seek to offset %llu in '%s': %s",
                            (unsigned long long)offset, reader->path, strerror(errno));
    }
    reader->position = offset;
    return SQ_OK;
}

sq_status sq_file_reader_read_u32(sq_file_reader *reader, uint32_t *value, const char *item,
                                  sq_error *err) {
    uint8_t bytes[4];
    sq_status status = sq_file_reader_read(reader, bytes, sizeof(bytes), item, err);
    if (status == SQ_OK) {
        *value = sq_load_le32(bytes);
    }
    return status;
}

sq_status sq_file_reader_read_u64(sq_file_reader *reader, uint64_t *value, const char *item,
                                  sq_error *err) {
    uint8_t bytes[8];
    sq_status status = sq_file_reader_read(reader, bytes, sizeof(bytes), item, err);
    if (status == SQ_OK) {
        *value = sq_load_le64(bytes);
    }
    return status;
}
