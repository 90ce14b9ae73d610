/* Checked whole-file read and atomic write. */
#include "core/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sq_status sq_io_read_file(const char *path, uint8_t **data, size_t *size, sq_error *err) {
    *data = NULL;
    *size = 0;

    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return sq_error_set(err, SQ_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    }

    struct stat info;
    if (fstat(fileno(file), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_IO, "'%s' is not a regular file", path);
    }
    if (fseek(file, 0, SEEK_END) != 0) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_IO, "cannot seek in '%s': %s", path, strerror(errno));
    }
    long length = ftell(file);
    if (length < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_IO, "cannot determine the size of '%s' (is it a regular file?)",
                            path);
    }

    uint8_t *buffer = malloc((size_t)length + 1);
    if (buffer == NULL) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %ld bytes to read '%s'", length, path);
    }
    size_t got = fread(buffer, 1, (size_t)length, file);
    int read_failed = ferror(file);
    fclose(file);
    if (read_failed || got != (size_t)length) {
        free(buffer);
        return sq_error_set(err, SQ_ERR_IO, "read error in '%s' after %zu of %ld bytes", path, got,
                            length);
    }

    buffer[length] = 0;
    *data = buffer;
    *size = (size_t)length;
    return SQ_OK;
}

sq_status sq_io_write_file_atomic(const char *path, const void *data, size_t size, sq_error *err) {
    size_t path_length = strlen(path);
    char *temp_path = malloc(path_length + 5);
    if (temp_path == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a temporary name for '%s'", path);
    }
    memcpy(temp_path, path, path_length);
    memcpy(temp_path + path_length, ".tmp", 5);

    FILE *file = fopen(temp_path, "wb");
    if (file == NULL) {
        sq_error_set(err, SQ_ERR_IO, "cannot create '%s': %s", temp_path, strerror(errno));
        free(temp_path);
        return SQ_ERR_IO;
    }
    size_t written = fwrite(data, 1, size, file);
    int flush_failed = fflush(file) != 0;
    int close_failed = fclose(file) != 0;
    if (written != size || flush_failed || close_failed) {
        sq_error_set(err, SQ_ERR_IO, "write to '%s' failed after %zu of %zu bytes: %s (is the disk full?)",
                     temp_path, written, size, strerror(errno));
        remove(temp_path);
        free(temp_path);
        return SQ_ERR_IO;
    }
    if (rename(temp_path, path) != 0) {
        sq_error_set(err, SQ_ERR_IO, "cannot rename '%s' to '%s': %s", temp_path, path, strerror(errno));
        remove(temp_path);
        free(temp_path);
        return SQ_ERR_IO;
    }
    free(temp_path);
    return SQ_OK;
}

int sq_io_is_directory(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}
