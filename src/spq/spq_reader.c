/* The whole-file .spq reader: walks the sections of a buffer in order and binds the tensors in
 * place. */
#include "spq/spq_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/io.h"
#include "spq/spq_bind.h"
#include "spq/spq_read_common.h"

int sq_spq_is_spq_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return 0;
    }
    char magic[SQ_SPQ_MAGIC_SIZE];
    int match = fread(magic, 1, sizeof(magic), file) == sizeof(magic) && memcmp(magic, SQ_SPQ_MAGIC, sizeof(magic)) == 0;
    fclose(file);
    return match;
}

/* Reads every section; fills offsets[s] with the payload's offset in bytes. */
static sq_status walk_sections(sq_spq_parse *parse, const uint8_t *bytes, size_t size, uint64_t *offsets,
                               sq_spq_failure *failure, sq_error *err) {
    uint64_t offset = SQ_SPQ_HEADER_SIZE;
    for (int32_t s = 0; s < parse->n_sections; s++) {
        sq_status status;
        if (size - offset < SQ_SPQ_SECTION_HEADER_SIZE) {
            status = sq_error_set(err, SQ_ERR_FORMAT, "the file ends after %zu bytes, inside this section's header; it is truncated",
                                  size);
            return sq_spq_fail(failure, s, parse->n_layers, status, err);
        }
        sq_spq_section_header header;
        status = sq_spq_section_header_decode(bytes + offset, s, parse->n_layers, &header, err);
        if (status == SQ_OK) {
            status = sq_spq_parse_check_size(parse, s, header.payload_size, err);
        }
        uint64_t payload_at = offset + SQ_SPQ_SECTION_HEADER_SIZE;
        uint64_t padded = sq_spq_align(header.payload_size);
        if (status == SQ_OK && (size - payload_at < padded)) {
            status = sq_error_set(err, SQ_ERR_FORMAT,
                                  "the file ends after %llu of the %llu payload and padding bytes; it is truncated",
                                  (unsigned long long)(size - payload_at), (unsigned long long)padded);
        }
        if (status == SQ_OK) {
            uint32_t crc = sq_crc32_update(0, bytes + payload_at, (size_t)header.payload_size);
            if (crc != header.payload_crc) {
                status = sq_error_set(err, SQ_ERR_CHECKSUM,
                                      "payload CRC-32 0x%08x does not match the stored 0x%08x; the file is corrupt", crc,
                                      header.payload_crc);
            }
        }
        if (status == SQ_OK && !sq_spq_all_zero(bytes + payload_at + header.payload_size,
                                                 (size_t)(padded - header.payload_size))) {
            status = sq_error_set(err, SQ_ERR_FORMAT, "padding after the payload is not zero; the file is corrupt");
        }
        if (status == SQ_OK && s == 0) {
            status = sq_spq_parse_metadata(parse, bytes + payload_at, (size_t)header.payload_size, err);
        }
        if (status == SQ_OK && s == 1) {
            status = sq_spq_parse_tokenizer(parse, bytes + payload_at, (size_t)header.payload_size, err);
        }
        if (status != SQ_OK) {
            return sq_spq_fail(failure, s, parse->n_layers, status, err);
        }
        offsets[s] = payload_at;
        offset = payload_at + padded;
    }
    if (offset != size) {
        sq_status status = sq_error_set(err, SQ_ERR_FORMAT, "%llu bytes follow the last section",
                                        (unsigned long long)(size - offset));
        return sq_spq_fail(failure, -1, parse->n_layers, status, err);
    }
    return SQ_OK;
}

sq_status sq_spq_read_buffer(uint8_t *bytes, size_t size, int take_ownership, sq_spq_model *model,
                             sq_spq_failure *failure, sq_error *err) {
    memset(model, 0, sizeof(*model));
    sq_spq_parse parse;
    memset(&parse, 0, sizeof(parse));
    uint64_t *offsets = NULL;
    sq_status status = SQ_OK;
    sq_spq_file_header header;

    if (size < SQ_SPQ_HEADER_SIZE) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "the file has %zu bytes, fewer than the %u-byte header", size,
                              SQ_SPQ_HEADER_SIZE);
        status = sq_spq_fail(failure, -1, 0, status, err);
    }
    if (status == SQ_OK && (status = sq_spq_file_header_decode(bytes, &header, err)) != SQ_OK) {
        status = sq_spq_fail(failure, -1, 0, status, err);
    }
    if (status == SQ_OK) {
        sq_spq_parse_start(&parse, &header);
        offsets = calloc((size_t)parse.n_sections, sizeof(uint64_t));
        status = offsets != NULL ? SQ_OK : sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the section table");
    }
    if (status == SQ_OK) {
        status = walk_sections(&parse, bytes, size, offsets, failure, err);
    }
    if (status == SQ_OK && header.file_size != size) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "the header gives a file size of %llu bytes, but the file has %zu",
                              (unsigned long long)header.file_size, size);
        status = sq_spq_fail(failure, -1, parse.n_layers, status, err);
    }
    if (status == SQ_OK) {
        status = sq_spq_model_bind(&parse.model, &parse.layout, bytes, offsets, failure, err);
    }
    free(offsets);
    if (status != SQ_OK) {
        sq_spq_parse_free(&parse);
        if (take_ownership) {
            free(bytes);
        }
        return status;
    }

    *model = parse.model;
    model->file_size = size;
    if (take_ownership) {
        model->storage = bytes;
        model->storage_size = size;
    }
    sq_spq_layout_free(&parse.layout);
    return SQ_OK;
}

sq_status sq_spq_load_file(const char *path, sq_spq_model *model, sq_spq_failure *failure, sq_error *err) {
    memset(model, 0, sizeof(*model));
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return sq_error_set(err, SQ_ERR_IO, "cannot open '%s'", path);
    }
    long end = -1;
    if (fseek(file, 0, SEEK_END) == 0) {
        end = ftell(file);
    }
    if (end < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_IO, "cannot determine the size of '%s'", path);
    }
    size_t size = (size_t)end;
    size_t allocated = (size_t)sq_spq_align(size > 0 ? size : 1);
    uint8_t *bytes = aligned_alloc(SQ_SPQ_ALIGNMENT, allocated);
    if (bytes == NULL) {
        fclose(file);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for '%s'", size, path);
    }
    size_t read = sq_io_read_chunked(file, bytes, size);
    fclose(file);
    if (read != size) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_IO, "cannot read '%s': got %zu of %zu bytes", path, read, size);
    }
    sq_status status = sq_spq_read_buffer(bytes, size, 1, model, failure, err);
    if (status != SQ_OK && err != NULL) {
        char detail[SQ_ERROR_MESSAGE_MAX];
        snprintf(detail, sizeof(detail), "%s", err->message);
        sq_error_set(err, status, "'%s': %s", path, detail);
    }
    return status;
}
