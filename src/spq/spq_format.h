/* Constants and fixed-size records of the .spq model file (docs/FORMAT.md is the full
 * specification). All integers are little-endian; every section starts at a multiple of 64
 * bytes, and so does every tensor.
 *
 *   file header (64 bytes)
 *   section 0  metadata (JSON)         section 1  tokenizer (binary)
 *   section 2  embedding               sections 3 .. 2 + n_layers  one per layer
 *   section 3 + n_layers  output (final norm and classifier)
 *
 * Each section is a 64-byte section header, the payload, and zero padding to the next multiple
 * of 64. The file and section headers carry a CRC-32 of their first 60 bytes; section headers
 * also carry a CRC-32 of the payload, so a reader can verify each section as soon as its last
 * byte arrives. */
#ifndef SQ_SPQ_SPQ_FORMAT_H
#define SQ_SPQ_SPQ_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SQ_SPQ_MAGIC "SPQM\r\n\x1a\n"
#define SQ_SPQ_MAGIC_SIZE 8
#define SQ_SPQ_VERSION 1u
#define SQ_SPQ_BYTE_ORDER_MARK 0x0A0B0C0Du
#define SQ_SPQ_HEADER_SIZE 64u
#define SQ_SPQ_SECTION_HEADER_SIZE 64u
#define SQ_SPQ_ALIGNMENT 64u
#define SQ_SPQ_SECTION_TAG "SECT"
/* Sections before the layers (metadata, tokenizer, embedding) and after them (output). */
#define SQ_SPQ_SECTIONS_BEFORE_LAYERS 3
#define SQ_SPQ_EXTRA_SECTIONS 4
/* Largest metadata or tokenizer payload accepted: bounds what a reader buffers before it can
 * check anything else. */
#define SQ_SPQ_MAX_SMALL_SECTION ((uint64_t)256 << 20)

typedef enum sq_spq_section_kind {
    SQ_SPQ_SECTION_FILE_HEADER = 0, /* not a section: used to report a failure in the file header */
    SQ_SPQ_SECTION_METADATA = 1,
    SQ_SPQ_SECTION_TOKENIZER = 2,
    SQ_SPQ_SECTION_EMBEDDING = 3,
    SQ_SPQ_SECTION_LAYER = 4,
    SQ_SPQ_SECTION_OUTPUT = 5,
} sq_spq_section_kind;

typedef struct sq_spq_file_header {
    uint32_t version;
    uint32_t byte_order_mark;
    uint32_t header_size;
    uint32_t section_count;
    uint64_t file_size;
} sq_spq_file_header;

typedef struct sq_spq_section_header {
    uint32_t index;
    uint32_t kind;          /* sq_spq_section_kind */
    int32_t layer;          /* layer index for SQ_SPQ_SECTION_LAYER, else -1 */
    uint64_t payload_size;  /* bytes, without the padding */
    uint32_t payload_crc;   /* CRC-32 of the payload */
} sq_spq_section_header;

/* Where a reader stopped: the section index (-1 for the file header), its kind and layer. */
typedef struct sq_spq_failure {
    int32_t section;
    sq_spq_section_kind kind;
    int32_t layer;
} sq_spq_failure;

/* Returns "file header", "metadata", "tokenizer", "embedding", "layer" or "output". */
const char *sq_spq_section_kind_name(sq_spq_section_kind kind);

/* Returns x rounded up to a multiple of SQ_SPQ_ALIGNMENT. */
static inline uint64_t sq_spq_align(uint64_t x) {
    return (x + SQ_SPQ_ALIGNMENT - 1) / SQ_SPQ_ALIGNMENT * SQ_SPQ_ALIGNMENT;
}

/* Returns the kind and layer that section index must have in a file with n_layers layers. */
sq_spq_section_kind sq_spq_expected_kind(int32_t index, int32_t n_layers, int32_t *layer);

/* Encodes a header into 64 bytes, CRC included. */
void sq_spq_file_header_encode(const sq_spq_file_header *header, uint8_t out[SQ_SPQ_HEADER_SIZE]);
void sq_spq_section_header_encode(const sq_spq_section_header *header, uint8_t out[SQ_SPQ_SECTION_HEADER_SIZE]);

/* Decodes and checks a file header: magic, version (SQ_ERR_UNSUPPORTED for another one), byte
 * order mark, header size, reserved bytes and CRC (SQ_ERR_CHECKSUM). */
sq_status sq_spq_file_header_decode(const uint8_t bytes[SQ_SPQ_HEADER_SIZE], sq_spq_file_header *header, sq_error *err);

/* Decodes and checks a section header: tag, CRC, and that index, kind and layer are the ones
 * expected at position expected_index of a file with n_layers layers. */
sq_status sq_spq_section_header_decode(const uint8_t bytes[SQ_SPQ_SECTION_HEADER_SIZE], int32_t expected_index,
                                       int32_t n_layers, sq_spq_section_header *header, sq_error *err);

/* Little-endian field access. */
static inline uint32_t sq_spq_read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t sq_spq_read_u64(const uint8_t *p) {
    return (uint64_t)sq_spq_read_u32(p) | ((uint64_t)sq_spq_read_u32(p + 4) << 32);
}

static inline void sq_spq_write_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void sq_spq_write_u64(uint8_t *p, uint64_t v) {
    sq_spq_write_u32(p, (uint32_t)v);
    sq_spq_write_u32(p + 4, (uint32_t)(v >> 32));
}

#endif
