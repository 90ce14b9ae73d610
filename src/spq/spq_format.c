/* Encoding and checking of the .spq file and section headers. */
#include "spq/spq_format.h"

#include <string.h>

#include "core/crc32.h"

const char *sq_spq_section_kind_name(sq_spq_section_kind kind) {
    switch (kind) {
    case SQ_SPQ_SECTION_FILE_HEADER: return "file header";
    case SQ_SPQ_SECTION_METADATA: return "metadata";
    case SQ_SPQ_SECTION_TOKENIZER: return "tokenizer";
    case SQ_SPQ_SECTION_EMBEDDING: return "embedding";
    case SQ_SPQ_SECTION_LAYER: return "layer";
    case SQ_SPQ_SECTION_OUTPUT: return "output";
    }
    return "unknown";
}

sq_spq_section_kind sq_spq_expected_kind(int32_t index, int32_t n_layers, int32_t *layer) {
    *layer = -1;
    if (index == 0) {
        return SQ_SPQ_SECTION_METADATA;
    }
    if (index == 1) {
        return SQ_SPQ_SECTION_TOKENIZER;
    }
    if (index == 2) {
        return SQ_SPQ_SECTION_EMBEDDING;
    }
    if (index - SQ_SPQ_SECTIONS_BEFORE_LAYERS < n_layers) {
        *layer = index - SQ_SPQ_SECTIONS_BEFORE_LAYERS;
        return SQ_SPQ_SECTION_LAYER;
    }
    return SQ_SPQ_SECTION_OUTPUT;
}

void sq_spq_file_header_encode(const sq_spq_file_header *header, uint8_t out[SQ_SPQ_HEADER_SIZE]) {
    memset(out, 0, SQ_SPQ_HEADER_SIZE);
    memcpy(out, SQ_SPQ_MAGIC, SQ_SPQ_MAGIC_SIZE);
    sq_spq_write_u32(out + 8, header->version);
    sq_spq_write_u32(out + 12, header->byte_order_mark);
    sq_spq_write_u32(out + 16, header->header_size);
    sq_spq_write_u32(out + 20, header->section_count);
    sq_spq_write_u64(out + 24, header->file_size);
    sq_spq_write_u32(out + 60, sq_crc32_update(0, out, 60));
}

void sq_spq_section_header_encode(const sq_spq_section_header *header, uint8_t out[SQ_SPQ_SECTION_HEADER_SIZE]) {
    memset(out, 0, SQ_SPQ_SECTION_HEADER_SIZE);
    memcpy(out, SQ_SPQ_SECTION_TAG, 4);
    sq_spq_write_u32(out + 4, header->index);
    sq_spq_write_u32(out + 8, header->kind);
    sq_spq_write_u32(out + 12, (uint32_t)header->layer);
    sq_spq_write_u64(out + 16, header->payload_size);
    sq_spq_write_u32(out + 24, header->payload_crc);
    sq_spq_write_u32(out + 60, sq_crc32_update(0, out, 60));
}

static int all_zero(const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] != 0) {
            return 0;
        }
    }
    return 1;
}

sq_status sq_spq_file_header_decode(const uint8_t bytes[SQ_SPQ_HEADER_SIZE], sq_spq_file_header *header,
                                    sq_error *err) {
    if (memcmp(bytes, SQ_SPQ_MAGIC, SQ_SPQ_MAGIC_SIZE) != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "wrong magic bytes, expected \"SPQM\\r\\n\\x1a\\n\"; not a .spq file");
    }
    header->version = sq_spq_read_u32(bytes + 8);
    header->byte_order_mark = sq_spq_read_u32(bytes + 12);
    header->header_size = sq_spq_read_u32(bytes + 16);
    header->section_count = sq_spq_read_u32(bytes + 20);
    header->file_size = sq_spq_read_u64(bytes + 24);
    uint32_t stored_crc = sq_spq_read_u32(bytes + 60);
    uint32_t crc = sq_crc32_update(0, bytes, 60);
    if (stored_crc != crc) {
        return sq_error_set(err, SQ_ERR_CHECKSUM, "CRC-32 0x%08x does not match the stored 0x%08x; the file is corrupt",
                            crc, stored_crc);
    }
    if (header->version != SQ_SPQ_VERSION) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "format version %u is not supported, expected %u; re-create the file with this version of spinquant quantize",
                            header->version, SQ_SPQ_VERSION);
    }
    if (header->byte_order_mark != SQ_SPQ_BYTE_ORDER_MARK) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "byte order mark 0x%08x, expected 0x%08x (little-endian)",
                            header->byte_order_mark, SQ_SPQ_BYTE_ORDER_MARK);
    }
    if (header->header_size != SQ_SPQ_HEADER_SIZE || !all_zero(bytes + 32, 28)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "header size %u or reserved bytes are invalid (expected %u and zeros)",
                            header->header_size, SQ_SPQ_HEADER_SIZE);
    }
    if (header->section_count < SQ_SPQ_EXTRA_SECTIONS + 1 || header->section_count > 4096 + SQ_SPQ_EXTRA_SECTIONS) {
        return sq_error_set(err, SQ_ERR_FORMAT, "%u sections, expected %d to %d", header->section_count,
                            SQ_SPQ_EXTRA_SECTIONS + 1, 4096 + SQ_SPQ_EXTRA_SECTIONS);
    }
    return SQ_OK;
}

sq_status sq_spq_section_header_decode(const uint8_t bytes[SQ_SPQ_SECTION_HEADER_SIZE], int32_t expected_index,
                                       int32_t n_layers, sq_spq_section_header *header, sq_error *err) {
    if (memcmp(bytes, SQ_SPQ_SECTION_TAG, 4) != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "the section header does not start with \"SECT\"; the file is corrupt");
    }
    uint32_t stored_crc = sq_spq_read_u32(bytes + 60);
    uint32_t crc = sq_crc32_update(0, bytes, 60);
    if (stored_crc != crc) {
        return sq_error_set(err, SQ_ERR_CHECKSUM,
                            "header CRC-32 0x%08x does not match the stored 0x%08x; the file is corrupt", crc,
                            stored_crc);
    }
    header->index = sq_spq_read_u32(bytes + 4);
    header->kind = sq_spq_read_u32(bytes + 8);
    header->layer = (int32_t)sq_spq_read_u32(bytes + 12);
    header->payload_size = sq_spq_read_u64(bytes + 16);
    header->payload_crc = sq_spq_read_u32(bytes + 24);

    int32_t layer;
    sq_spq_section_kind kind = sq_spq_expected_kind(expected_index, n_layers, &layer);
    if (header->index != (uint32_t)expected_index || header->kind != (uint32_t)kind || header->layer != layer) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "header says index %u, kind %u, layer %d; expected index %d, kind %d (%s), layer %d",
                            header->index, header->kind, header->layer, expected_index, (int)kind,
                            sq_spq_section_kind_name(kind), layer);
    }
    if (!all_zero(bytes + 28, 32)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "reserved header bytes are not zero");
    }
    return SQ_OK;
}
