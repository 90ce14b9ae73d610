/* Checked chunked reads, whole-file read and atomic write. Under WASI, a failed open of a path
 * outside the runtime's preopened directories gets a hint naming the --dir flag to add. */
#include "core/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef __wasi__
#include <wasi/libc-find-relpath.h>

/* Longest path the preopen lookup below resolves; longer paths get the hint without a lookup. */
#define IO_WASI_PATH_MAX 1024

/* Returns 1 when an open of path that failed with open_errno was probably refused because the
 * path lies outside every preopened directory. A missing file inside a preopened directory
 * returns 0, so its message stays the same as in a native build. wasi-libc stores the preopen
 * "." (and "/") as the empty prefix, which matches every path, so an absolute path that
 * matches only that prefix counts as outside. */
static int io_wasi_outside_preopens(const char *path, int open_errno) {
    if (open_errno == ENOTCAPABLE || open_errno == EPERM) {
        return 1;
    }
    if (open_errno != ENOENT) {
        return 0;
    }
    const char *prefix = NULL;
    char buffer[IO_WASI_PATH_MAX];
    char *relative = buffer;
    if (__wasilibc_find_relpath(path, &prefix, &relative, sizeof(buffer)) < 0) {
        return 1;
    }
    return path[0] == '/' && prefix != NULL && prefix[0] == '\0';
}

/* Writes " (hint)" naming the folder of path into hint, or "" when the hint does not apply. */
static void io_open_hint(const char *path, int open_errno, char *hint, size_t hint_size) {
    hint[0] = '\0';
    if (!io_wasi_outside_preopens(path, open_errno)) {
        return;
    }
    /* The folder is the path up to its last '/': "/" for "/name", "." for a bare name. */
    const char *folder = path;
    int folder_length = 1;
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        folder = ".";
    } else if (slash != path) {
        folder_length = (int)(slash - path);
    }
    snprintf(hint, hint_size,
             " (under WASI only preopened directories are visible: add --dir %.*s to the runtime command)",
             folder_length, folder);
}
#else
/* Native builds and Emscripten see the whole file system (or MEMFS): no hint. */
static void io_open_hint(const char *path, int open_errno, char *hint, size_t hint_size) {
    (void)path;
    (void)open_errno;
    (void)hint_size;
    hint[0] = '\0';
}
#endif

/* Room for the hint plus the folder it names; sq_error_set truncates longer messages. */
#define IO_HINT_MAX 256

size_t sq_io_read_chunked(FILE *file, void *destination, size_t size) {
    uint8_t *bytes = destination;
    size_t done = 0;
    while (done < size) {
        size_t chunk = size - done < SQ_IO_READ_CHUNK_BYTES ? size - done : SQ_IO_READ_CHUNK_BYTES;
        size_t got = fread(bytes + done, 1, chunk, file);
        done += got;
        if (got != chunk) {
            break;
        }
    }
    return done;
}

sq_status sq_io_read_file(const char *path, uint8_t **data, size_t *size, sq_error *err) {
    *data = NULL;
    *size = 0;

    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        int open_errno = errno;
        char hint[IO_HINT_MAX];
        io_open_hint(path, open_errno, hint, sizeof(hint));
        return sq_error_set(err, SQ_ERR_IO, "cannot open '%s': %s%s", path, strerror(open_errno), hint);
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
    size_t got = sq_io_read_chunked(file, buffer, (size_t)length);
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

/* Creates "<path>.tmp" for writing; on success the caller owns *temp_path and *file. */
static sq_status open_temp(const char *path, char **temp_path, FILE **file, sq_error *err) {
    size_t path_length = strlen(path);
    *temp_path = malloc(path_length + 5);
    if (*temp_path == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a temporary name for '%s'", path);
    }
    memcpy(*temp_path, path, path_length);
    memcpy(*temp_path + path_length, ".tmp", 5);

    *file = fopen(*temp_path, "wb");
    if (*file == NULL) {
        int open_errno = errno;
        char hint[IO_HINT_MAX];
        io_open_hint(*temp_path, open_errno, hint, sizeof(hint));
        sq_error_set(err, SQ_ERR_IO, "cannot create '%s': %s%s", *temp_path, strerror(open_errno), hint);
        free(*temp_path);
        *temp_path = NULL;
        return SQ_ERR_IO;
    }
    return SQ_OK;
}

sq_status sq_io_check_writable(const char *path, sq_error *err) {
    char *temp_path = NULL;
    FILE *file = NULL;
    sq_status status = open_temp(path, &temp_path, &file, err);
    if (status != SQ_OK) {
        return status;
    }
    fclose(file);
    remove(temp_path);
    free(temp_path);
    return SQ_OK;
}

sq_status sq_io_write_file_atomic(const char *path, const void *data, size_t size, sq_error *err) {
    char *temp_path = NULL;
    FILE *file = NULL;
    sq_status status = open_temp(path, &temp_path, &file, err);
    if (status != SQ_OK) {
        return status;
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
