/* Helpers shared by the libFuzzer harnesses in this folder:
 *   - a scratch folder private to the fuzzing process (the loaders take paths, so each input is
 *     written to a file there first);
 *   - checksum repair for formats with CRC-32 fields, so that mutated inputs reach the code
 *     behind the checksum check instead of stopping at it;
 *   - checks that every failure carries a status and a non-empty message.
 * A harness aborts (which libFuzzer reports as a crash) when a check fails. Harnesses are
 * single-threaded, so the few statics here are safe. */
#ifndef SQ_FUZZ_COMMON_H
#define SQ_FUZZ_COMMON_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32.h"
#include "core/status.h"

#ifndef SQ_SOURCE_DIR
#define SQ_SOURCE_DIR "."
#endif

/* Aborts with a message: libFuzzer then saves the input as a crash. */
static inline void fuzz_fail(const char *what, const char *detail) {
    fprintf(stderr, "fuzz check failed: %s: %s\n", what, detail != NULL ? detail : "");
    abort();
}

static char fuzz_scratch[256];

/* Removes the files of the scratch folder (it has no subfolders) and the folder itself. */
static inline void fuzz_remove_scratch(void) {
    DIR *folder = opendir(fuzz_scratch);
    if (folder == NULL) {
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0) {
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", fuzz_scratch, entry->d_name);
            unlink(path);
        }
    }
    closedir(folder);
    rmdir(fuzz_scratch);
}

/* Returns the scratch folder, created on first use under $TMPDIR (or /dev/shm, else /tmp) and
 * removed when the process exits normally. */
static inline const char *fuzz_scratch_dir(void) {
    if (fuzz_scratch[0] != '\0') {
        return fuzz_scratch;
    }
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    }
    snprintf(fuzz_scratch, sizeof(fuzz_scratch), "%s/sq-fuzz-XXXXXX", base);
    if (mkdtemp(fuzz_scratch) == NULL) {
        fuzz_fail("cannot create a scratch folder", fuzz_scratch);
    }
    atexit(fuzz_remove_scratch);
    return fuzz_scratch;
}

/* Returns "<scratch>/<name>" in a buffer that the next call overwrites. */
static inline const char *fuzz_scratch_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", fuzz_scratch_dir(), name);
    return path;
}

/* Writes size bytes to path, replacing the file. */
static inline void fuzz_write_file(const char *path, const void *data, size_t size) {
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        fuzz_fail("cannot create", path);
    }
    if (size > 0 && fwrite(data, 1, size, file) != size) {
        fuzz_fail("cannot write", path);
    }
    if (fclose(file) != 0) {
        fuzz_fail("cannot close", path);
    }
}

/* Checks the error contract of a failed call: a status other than SQ_OK recorded in err, and a
 * message that is non-empty and NUL-terminated within the buffer. */
static inline void fuzz_check_failure(sq_status status, const sq_error *err) {
    if (status == SQ_OK) {
        return;
    }
    if (err->status != status) {
        fuzz_fail("the error record's status differs from the returned status", err->message);
    }
    if (memchr(err->message, '\0', sizeof(err->message)) == NULL) {
        fuzz_fail("the error message is not NUL-terminated", "");
    }
    if (err->message[0] == '\0') {
        fuzz_fail("a failure has an empty message", sq_status_name(status));
    }
}

static inline uint32_t fuzz_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t fuzz_load_le64(const uint8_t *p) {
    return (uint64_t)fuzz_load_le32(p) | ((uint64_t)fuzz_load_le32(p + 4) << 32);
}

static inline void fuzz_store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Rewrites the trailing CRC-32 of a rotation file (the last 4 bytes cover every byte before). */
static inline void fuzz_fix_rotation_crc(uint8_t *data, size_t size) {
    if (size >= 4) {
        fuzz_store_le32(data + size - 4, sq_crc32_update(0, data, size - 4));
    }
}

/* Rewrites every CRC-32 of a .spq file that can be located. The file header's CRC is bytes
 * 60..63, over bytes 0..59. Section headers follow at 64-byte aligned offsets, and each has the
 * payload CRC at bytes 24..27 (over the payload) and its own CRC at bytes 60..63. The walk stops
 * at the first section whose payload runs past the end. */
static inline void fuzz_fix_spq_crcs(uint8_t *data, size_t size) {
    if (size < 64) {
        return;
    }
    fuzz_store_le32(data + 60, sq_crc32_update(0, data, 60));
    uint64_t offset = 64;
    while (size - offset >= 64) {
        uint8_t *header = data + offset;
        uint64_t payload_size = fuzz_load_le64(header + 16);
        uint64_t payload_at = offset + 64;
        if (payload_size <= size - payload_at) {
            fuzz_store_le32(header + 24, sq_crc32_update(0, data + payload_at, (size_t)payload_size));
        }
        fuzz_store_le32(header + 60, sq_crc32_update(0, header, 60));
        if (payload_size > size - payload_at) {
            break;
        }
        uint64_t padded = (payload_size + 63) / 64 * 64;
        if (padded > size - payload_at) {
            break;
        }
        offset = payload_at + padded;
    }
}

/* Returns 1 when text is valid UTF-8 (shortest form, no surrogates, at most U+10FFFF), checked
 * independently of the library's own decoder. */
static inline int fuzz_utf8_valid(const uint8_t *text, size_t length) {
    size_t i = 0;
    while (i < length) {
        uint32_t c = text[i];
        size_t n;
        uint32_t codepoint;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
            codepoint = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            codepoint = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            codepoint = c & 0x07;
        } else {
            return 0;
        }
        if (length - i < n) {
            return 0;
        }
        for (size_t k = 1; k < n; k++) {
            if ((text[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            codepoint = (codepoint << 6) | (text[i + k] & 0x3F);
        }
        if ((n == 3 && codepoint < 0x800) || (n == 4 && codepoint < 0x10000) ||
            (codepoint >= 0xD800 && codepoint <= 0xDFFF) || codepoint > 0x10FFFF) {
            return 0;
        }
        i += n;
    }
    return 1;
}

#endif
