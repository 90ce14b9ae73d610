/* Tests for the .spq file format. The header bytes are checked against the documented layout,
 * stories260K makes a round trip through the writer and both readers (whole-file, and streaming
 * with several chunk patterns), and truncated, corrupted and version-mismatched files must be
 * rejected at the section where they fail. The stream reader must reject a section or file size
 * that the header declares beyond the file before allocating it. Section boundaries come from an
 * independent walk over the documented header fields, not from the reader under test. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/io.h"
#include "formats/formats.h"
#include "pipeline/recipe.h"
#include "spq/spq_bind.h"
#include "spq/spq_format.h"
#include "spq/spq_half.h"
#include "spq/spq_layout.h"
#include "spq/spq_quantize.h"
#include "spq/spq_reader.h"
#include "spq/spq_writer.h"
#include "spq/tokenizer_access.h"
#include "test_util.h"

#define MODEL_PATH "models/stories260K/stories260K.bin"
#define TOKENIZER_PATH "models/stories260K/tok512.bin"

/* The serialized stories260K model shared by the tests, and the model it was built from. */
static uint8_t *file_bytes;
static size_t file_size;
static sq_spq_model built;
static sq_model source;

static uint64_t read_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Offsets of each section header, found from the documented fields: sections follow the 64-byte
 * file header, each is a 64-byte header, payload_size (u64 at header offset 16) bytes and zero
 * padding to a multiple of 64. Returns the section count. */
static int walk_sections(const uint8_t *bytes, uint64_t *offsets, int max_sections) {
    int count = (int)read_u32(bytes + 20);
    uint64_t offset = 64;
    for (int s = 0; s < count && s < max_sections; s++) {
        offsets[s] = offset;
        uint64_t payload = read_u64(bytes + offset + 16);
        offset += 64 + (payload + 63) / 64 * 64;
    }
    offsets[count] = offset;
    return count;
}

static sq_status build_file(void) {
    sq_error err = {0};
    sq_status status = sq_model_load(MODEL_PATH, TOKENIZER_PATH, NULL, &source, &err);
    sq_model work = {0};
    if (status == SQ_OK) {
        status = sq_model_clone(&source, &work, &err);
    }
    sq_recipe recipe = sq_recipe_default();
    recipe.w_bits = 4;
    recipe.a_bits = 8;
    recipe.kv_bits = 8;
    recipe.embed_bits = 8;
    recipe.rotation = SQ_ROTATION_HADAMARD;
    sq_spq_build_report report;
    if (status == SQ_OK) {
        status = sq_spq_quantize_model(&work, &recipe, NULL, NULL, &built, &report, &err);
    }
    sq_spq_tokenizer_source tokenizer = {0};
    if (status == SQ_OK) {
        status = sq_spq_tokenizer_source_open(MODEL_PATH, TOKENIZER_PATH, source.config.vocab_size, &tokenizer, &err);
    }
    if (status == SQ_OK) {
        status = sq_spq_serialize(&built, &tokenizer.desc, &file_bytes, &file_size, &err);
    }
    if (status != SQ_OK) {
        fprintf(stderr, "cannot build the test file: %s\n", err.message);
    }
    sq_spq_tokenizer_source_close(&tokenizer);
    sq_model_free(&work);
    return status;
}

/* A 64-byte aligned copy of bytes (n bytes), so tensors inside it keep their alignment. */
static uint8_t *aligned_copy(const uint8_t *bytes, size_t n) {
    uint8_t *copy = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    memcpy(copy, bytes, n);
    return copy;
}

static uint8_t *copy_bytes(size_t n) {
    return aligned_copy(file_bytes, n);
}

/* Checks that model contains the same configuration, settings and tensor bytes as the built one and
 * a tokenizer that encodes like the source model's. */
static void check_same_as_built(const sq_spq_model *model) {
    CHECK(memcmp(&model->config, &built.config, sizeof(sq_config)) == 0);
    CHECK(model->settings.w_bits == 4);
    CHECK(model->settings.a_bits == 8);
    CHECK(model->settings.kv_bits == 8);
    CHECK(model->settings.embed_bits == 8);
    CHECK(model->settings.mode_had == 1);
    CHECK(strcmp(model->settings.rotation, "hadamard") == 0);
    CHECK(model->classifier_kind == built.classifier_kind);
    CHECK(model->source_hash == built.source_hash);
    CHECK(model->norms_fused == 1);

    sq_spq_layout layout;
    CHECK(sq_spq_layout_build(&model->config, &model->settings, model->classifier_kind, &layout, NULL) == SQ_OK);
    int differing = 0;
    for (int32_t i = 0; i < layout.n_tensors; i++) {
        const void *a = sq_spq_model_tensor(model, layout.tensors[i].name);
        const void *b = sq_spq_model_tensor(&built, layout.tensors[i].name);
        if (a == NULL || b == NULL || memcmp(a, b, (size_t)layout.tensors[i].size) != 0) {
            differing++;
        }
        CHECK((uintptr_t)a % 64 == 0);
    }
    CHECK_MSG(differing == 0, "%d tensors differ from the written ones", differing);
    sq_spq_layout_free(&layout);

    static const char text[] = "Once upon a time, Lily saw a big dog. \"Hi!\" she said.";
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(model->tokenizer != NULL);
    if (model->tokenizer != NULL) {
        CHECK(sq_tokenizer_encode(source.tokenizer, text, sizeof(text) - 1, -1, 0, &a, &na, NULL) == SQ_OK);
        CHECK(sq_tokenizer_encode(model->tokenizer, text, sizeof(text) - 1, -1, 0, &b, &nb, NULL) == SQ_OK);
        CHECK(na == nb);
        CHECK(na > 5);
        CHECK(na == nb && memcmp(a, b, na * sizeof(int32_t)) == 0);
    }
    free(a);
    free(b);
}

static void test_file_header_layout(void) {
    /* Magic, version 1 at offset 8, the byte order mark 0x0A0B0C0D stored as 0D 0C 0B 0A. */
    CHECK(memcmp(file_bytes, "SPQM\r\n\x1a\n", 8) == 0);
    CHECK(read_u32(file_bytes + 8) == 1);
    CHECK(file_bytes[12] == 0x0D);
    CHECK(file_bytes[13] == 0x0C);
    CHECK(file_bytes[14] == 0x0B);
    CHECK(file_bytes[15] == 0x0A);
    CHECK(read_u32(file_bytes + 16) == 64);
    CHECK(read_u32(file_bytes + 20) == 5 + 4); /* stories260K has 5 layers */
    CHECK(read_u64(file_bytes + 24) == file_size);
    CHECK(read_u32(file_bytes + 60) == sq_crc32_update(0, file_bytes, 60));

    uint64_t offsets[16];
    int count = walk_sections(file_bytes, offsets, 15);
    CHECK(offsets[count] == file_size);
    for (int s = 0; s < count; s++) {
        const uint8_t *header = file_bytes + offsets[s];
        CHECK(memcmp(header, "SECT", 4) == 0);
        CHECK(read_u32(header + 4) == (uint32_t)s);
        CHECK(offsets[s] % 64 == 0);
        uint64_t payload = read_u64(header + 16);
        CHECK(read_u32(header + 24) == sq_crc32_update(0, header + 64, (size_t)payload));
        CHECK(read_u32(header + 60) == sq_crc32_update(0, header, 60));
    }
    /* Kinds: metadata 1, tokenizer 2, embedding 3, layers 4 with their index, output 5. */
    CHECK(read_u32(file_bytes + offsets[0] + 8) == 1);
    CHECK(read_u32(file_bytes + offsets[1] + 8) == 2);
    CHECK(read_u32(file_bytes + offsets[2] + 8) == 3);
    CHECK(read_u32(file_bytes + offsets[5] + 8) == 4);
    CHECK(read_u32(file_bytes + offsets[5] + 12) == 2);
    CHECK(read_u32(file_bytes + offsets[8] + 8) == 5);
    CHECK(file_bytes[offsets[0] + 64] == '{');
}

static void test_whole_file_reader_round_trip(void) {
    sq_spq_model model;
    sq_spq_failure failure = {0};
    sq_error err = {0};
    uint8_t *copy = copy_bytes(file_size);
    sq_status status = sq_spq_read_buffer(copy, file_size, 1, &model, &failure, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status == SQ_OK) {
        check_same_as_built(&model);
        CHECK(model.file_size == file_size);
    }
    sq_spq_model_free(&model);
}

static void test_file_load_round_trip(void) {
    const char *path = "/tmp/spinquant-test-spq-format.spq";
    CHECK(sq_io_write_file_atomic(path, file_bytes, file_size, NULL) == SQ_OK);
    CHECK(sq_spq_is_spq_file(path) == 1);
    CHECK(sq_spq_is_spq_file(MODEL_PATH) == 0);
    sq_spq_model model;
    sq_error err = {0};
    CHECK_MSG(sq_spq_load_file(path, &model, NULL, &err) == SQ_OK, "%s", err.message);
    check_same_as_built(&model);
    sq_spq_model_free(&model);
    remove(path);
}

/* Feeds the file in chunks: a fixed size, or pseudo-random sizes when chunk is 0. */
static sq_status stream_file(const uint8_t *bytes, size_t size, size_t chunk, sq_spq_model *model,
                             sq_spq_failure *failure, sq_error *err) {
    sq_spq_stream *stream = NULL;
    sq_status status = sq_spq_stream_create(&stream, err);
    uint64_t state = 12345;
    for (size_t at = 0; status == SQ_OK && at < size;) {
        size_t n = chunk;
        if (chunk == 0) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            n = 1 + (size_t)((state >> 33) % 5000);
        }
        n = n < size - at ? n : size - at;
        status = sq_spq_stream_feed(stream, bytes + at, n, err);
        at += n;
    }
    if (status == SQ_OK) {
        status = sq_spq_stream_finish(stream, model, err);
    }
    if (status != SQ_OK && failure != NULL && sq_spq_stream_failure(stream) != NULL) {
        *failure = *sq_spq_stream_failure(stream);
    }
    sq_spq_stream_free(stream);
    return status;
}

static void test_stream_reader_round_trip(void) {
    size_t chunks[] = {1, 63, 64, 4096, 0, (size_t)-1};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        sq_spq_model model;
        sq_error err = {0};
        sq_status status = stream_file(file_bytes, file_size, chunks[i], &model, NULL, &err);
        CHECK_MSG(status == SQ_OK, "chunk %zu: %s", chunks[i], err.message);
        if (status == SQ_OK) {
            check_same_as_built(&model);
            /* The stream keeps only the tensor sections, never a second copy of the file. */
            CHECK(model.storage_size < file_size);
        }
        sq_spq_model_free(&model);
    }
}

/* Expects both readers to reject bytes (size) with status at section (kind, layer). */
static void expect_rejected(const uint8_t *bytes, size_t size, sq_status status, int32_t section,
                            sq_spq_section_kind kind, int32_t layer, const char *what) {
    sq_spq_model model;
    sq_spq_failure failure = {-2, SQ_SPQ_SECTION_FILE_HEADER, -2};
    sq_error err = {0};
    uint8_t *copy = aligned_copy(bytes, size);
    sq_status got = sq_spq_read_buffer(copy, size, 1, &model, &failure, &err);
    CHECK_MSG(got == status && failure.section == section && failure.kind == kind && failure.layer == layer,
              "whole-file reader, %s: status %d section %d kind %d layer %d (%s); expected %d at section %d", what,
              (int)got, failure.section, (int)failure.kind, failure.layer, err.message, (int)status, section);

    for (int pattern = 0; pattern < 2; pattern++) {
        sq_spq_failure stream_failure = {-2, SQ_SPQ_SECTION_FILE_HEADER, -2};
        sq_error stream_err = {0};
        got = stream_file(bytes, size, pattern == 0 ? 977 : 1, &model, &stream_failure, &stream_err);
        CHECK_MSG(got == status && stream_failure.section == section && stream_failure.kind == kind &&
                      stream_failure.layer == layer,
                  "stream reader, %s: status %d section %d kind %d layer %d (%s); expected %d at section %d", what,
                  (int)got, stream_failure.section, (int)stream_failure.kind, stream_failure.layer, stream_err.message,
                  (int)status, section);
        if (got == SQ_OK) {
            sq_spq_model_free(&model);
        }
    }
}

static void test_truncated_files_rejected(void) {
    uint64_t o[16];
    walk_sections(file_bytes, o, 15);
    expect_rejected(file_bytes, 10, SQ_ERR_FORMAT, -1, SQ_SPQ_SECTION_FILE_HEADER, -1, "cut in the file header");
    expect_rejected(file_bytes, (size_t)o[0] + 64 + 10, SQ_ERR_FORMAT, 0, SQ_SPQ_SECTION_METADATA, -1,
                    "cut in the metadata");
    expect_rejected(file_bytes, (size_t)o[1] + 20, SQ_ERR_FORMAT, 1, SQ_SPQ_SECTION_TOKENIZER, -1,
                    "cut in the tokenizer header");
    expect_rejected(file_bytes, (size_t)(o[5] + o[6]) / 2, SQ_ERR_FORMAT, 5, SQ_SPQ_SECTION_LAYER, 2,
                    "cut in layer 2");
    expect_rejected(file_bytes, (size_t)o[6], SQ_ERR_FORMAT, 6, SQ_SPQ_SECTION_LAYER, 3,
                    "cut at the end of layer 2");
    expect_rejected(file_bytes, file_size - 1, SQ_ERR_FORMAT, 8, SQ_SPQ_SECTION_OUTPUT, -1, "cut one byte short");
}

/* Expects the file with byte offset XOR-ed by 0x20 to be rejected at section. */
static void expect_corruption_rejected(uint64_t offset, sq_status status, int32_t section, sq_spq_section_kind kind,
                                       int32_t layer, const char *what) {
    uint8_t *copy = copy_bytes(file_size);
    copy[offset] ^= 0x20;
    expect_rejected(copy, file_size, status, section, kind, layer, what);
    free(copy);
}

static void test_corrupted_files_rejected(void) {
    uint64_t o[16];
    walk_sections(file_bytes, o, 15);
    expect_corruption_rejected(20, SQ_ERR_CHECKSUM, -1, SQ_SPQ_SECTION_FILE_HEADER, -1, "file header");
    expect_corruption_rejected(o[0] + 64 + 30, SQ_ERR_CHECKSUM, 0, SQ_SPQ_SECTION_METADATA, -1, "metadata payload");
    expect_corruption_rejected(o[1] + 64 + 100, SQ_ERR_CHECKSUM, 1, SQ_SPQ_SECTION_TOKENIZER, -1, "tokenizer payload");
    expect_corruption_rejected(o[6] + 64 + 1000, SQ_ERR_CHECKSUM, 6, SQ_SPQ_SECTION_LAYER, 3, "layer 3 payload");
    expect_corruption_rejected(o[8] + 16, SQ_ERR_CHECKSUM, 8, SQ_SPQ_SECTION_OUTPUT, -1, "output section header");
    for (int32_t section = 0; section < 9; section++) {
        uint64_t payload = read_u64(file_bytes + o[section] + 16);
        if (payload % 64 != 0) {
            int32_t layer = section >= 3 && section < 8 ? section - 3 : -1;
            sq_spq_section_kind kind = section == 0 ? SQ_SPQ_SECTION_METADATA
                                       : section == 1 ? SQ_SPQ_SECTION_TOKENIZER
                                       : section == 2 ? SQ_SPQ_SECTION_EMBEDDING
                                       : section < 8  ? SQ_SPQ_SECTION_LAYER
                                                      : SQ_SPQ_SECTION_OUTPUT;
            expect_corruption_rejected(o[section] + 64 + payload, SQ_ERR_FORMAT, section, kind, layer, "padding byte");
            break;
        }
    }

    /* A metadata change with a matching CRC: the tensor table no longer fits the configuration. */
    uint8_t *copy = copy_bytes(file_size);
    uint8_t *payload = copy + o[0] + 64;
    uint64_t size = read_u64(copy + o[0] + 16);
    char *dim = strstr((char *)payload, "\"dim\": 64");
    CHECK(dim != NULL);
    if (dim != NULL) {
        dim[8] = '5'; /* "dim": 54 */
        uint32_t crc = sq_crc32_update(0, payload, (size_t)size);
        uint8_t *header = copy + o[0];
        for (int i = 0; i < 4; i++) {
            header[24 + i] = (uint8_t)(crc >> (8 * i));
        }
        uint32_t header_crc = sq_crc32_update(0, header, 60);
        for (int i = 0; i < 4; i++) {
            header[60 + i] = (uint8_t)(header_crc >> (8 * i));
        }
        expect_rejected(copy, file_size, SQ_ERR_FORMAT, 0, SQ_SPQ_SECTION_METADATA, -1, "metadata with a valid CRC");
    }
    free(copy);
}

static void test_version_mismatch_rejected(void) {
    uint8_t *copy = copy_bytes(file_size);
    copy[8] = 2;
    uint32_t crc = sq_crc32_update(0, copy, 60);
    for (int i = 0; i < 4; i++) {
        copy[60 + i] = (uint8_t)(crc >> (8 * i));
    }
    expect_rejected(copy, file_size, SQ_ERR_UNSUPPORTED, -1, SQ_SPQ_SECTION_FILE_HEADER, -1, "format version 2");
    free(copy);
}

static void test_trailing_bytes_rejected(void) {
    uint8_t *longer = malloc(file_size + 64);
    memcpy(longer, file_bytes, file_size);
    memset(longer + file_size, 0, 64);
    expect_rejected(longer, file_size + 64, SQ_ERR_FORMAT, -1, SQ_SPQ_SECTION_FILE_HEADER, -1, "64 trailing bytes");
    free(longer);
}

/* Feeds the first n bytes of bytes to a new stream (with total_size unless it is 0) in one call
 * and returns the status; *failure gets the failure place. */
static sq_status feed_prefix(const uint8_t *bytes, size_t n, uint64_t total_size, sq_spq_failure *failure,
                             sq_error *err) {
    sq_spq_stream *stream = NULL;
    sq_status status = sq_spq_stream_create(&stream, err);
    if (status == SQ_OK && total_size > 0) {
        status = sq_spq_stream_set_total_size(stream, total_size, err);
    }
    if (status == SQ_OK) {
        status = sq_spq_stream_feed(stream, bytes, n, err);
    }
    if (status != SQ_OK && sq_spq_stream_failure(stream) != NULL) {
        *failure = *sq_spq_stream_failure(stream);
    }
    sq_spq_stream_free(stream);
    return status;
}

/* A metadata section header that declares 256 MiB (the largest metadata payload accepted) in a
 * file of a few hundred kilobytes. The stream reader must reject it as soon as the section header
 * is complete, before it allocates a payload buffer: an implementation that allocated first
 * would accept these 128 bytes and wait for the payload. */
static void test_stream_rejects_section_past_file_size(void) {
    uint64_t o[16];
    walk_sections(file_bytes, o, 15);
    uint8_t *copy = copy_bytes(file_size);
    sq_spq_section_header header;
    sq_error err = {0};
    CHECK(sq_spq_section_header_decode(copy + o[0], 0, built.config.n_layers, &header, &err) == SQ_OK);
    header.payload_size = SQ_SPQ_MAX_SMALL_SECTION;
    sq_spq_section_header_encode(&header, copy + o[0]);

    for (int known_size = 0; known_size < 2; known_size++) {
        sq_spq_failure failure = {-2, SQ_SPQ_SECTION_FILE_HEADER, -2};
        sq_error stream_err = {0};
        sq_status status = feed_prefix(copy, (size_t)o[0] + 64, known_size ? file_size : 0, &failure, &stream_err);
        CHECK_MSG(status == SQ_ERR_FORMAT, "known size %d: status %s (%s)", known_size, sq_status_name(status),
                  stream_err.message);
        CHECK_MSG(failure.section == 0 && failure.kind == SQ_SPQ_SECTION_METADATA, "failed at section %d",
                  failure.section);
        CHECK_MSG(strstr(stream_err.message, "268435456") != NULL, "message: %s", stream_err.message);
        char declared[32];
        snprintf(declared, sizeof(declared), "%zu", file_size);
        CHECK_MSG(strstr(stream_err.message, declared) != NULL, "message without the file size %s: %s", declared,
                  stream_err.message);
    }
    /* The whole file fails at the same section in both readers. */
    expect_rejected(copy, file_size, SQ_ERR_FORMAT, 0, SQ_SPQ_SECTION_METADATA, -1, "metadata of 256 MiB");
    free(copy);
}

/* A file header that declares 1 TiB: with the stream's real length given, it fails in the file
 * header, before the metadata can size the tensor storage by the declared size. */
static void test_stream_rejects_file_size_beyond_total(void) {
    uint8_t *copy = copy_bytes(file_size);
    sq_spq_file_header header;
    sq_error err = {0};
    CHECK(sq_spq_file_header_decode(copy, &header, &err) == SQ_OK);
    header.file_size = (uint64_t)1 << 40;
    sq_spq_file_header_encode(&header, copy);

    sq_spq_failure failure = {-2, SQ_SPQ_SECTION_FILE_HEADER, -2};
    sq_status status = feed_prefix(copy, 64, file_size, &failure, &err);
    CHECK_MSG(status == SQ_ERR_FORMAT, "status %s (%s)", sq_status_name(status), err.message);
    CHECK(failure.section == -1);
    CHECK_MSG(strstr(err.message, "1099511627776") != NULL, "message: %s", err.message);

    /* The unchanged file still streams with its real length given. */
    sq_spq_model model;
    memset(&model, 0, sizeof(model));
    sq_spq_stream *stream = NULL;
    CHECK(sq_spq_stream_create(&stream, &err) == SQ_OK);
    CHECK(sq_spq_stream_set_total_size(stream, file_size, &err) == SQ_OK);
    CHECK(sq_spq_stream_feed(stream, file_bytes, file_size, &err) == SQ_OK);
    status = sq_spq_stream_finish(stream, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status == SQ_OK) {
        check_same_as_built(&model);
    }
    sq_spq_model_free(&model);

    /* The size can no longer be set once bytes arrived. */
    sq_spq_stream_free(stream);
    CHECK(sq_spq_stream_create(&stream, &err) == SQ_OK);
    CHECK(sq_spq_stream_feed(stream, file_bytes, 10, &err) == SQ_OK);
    CHECK(sq_spq_stream_set_total_size(stream, file_size, &err) == SQ_ERR_INVALID_ARG);
    sq_spq_stream_free(stream);
    free(copy);
}

static void test_half_conversions(void) {
    /* Hand values: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, 2^-24 = 0x0001 (smallest subnormal),
     * 1 + 2^-11 rounds to even 0x3C00, 1 + 3·2^-11 rounds up to 0x3C02, 70000 overflows to inf. */
    CHECK(sq_float_to_half(1.0f) == 0x3C00);
    CHECK(sq_float_to_half(-2.0f) == 0xC000);
    CHECK(sq_float_to_half(65504.0f) == 0x7BFF);
    CHECK(sq_float_to_half(5.9604644775390625e-8f) == 0x0001);
    CHECK(sq_float_to_half(1.0f + 0x1p-11f) == 0x3C00);
    CHECK(sq_float_to_half(1.0f + 3 * 0x1p-11f) == 0x3C02);
    CHECK(sq_float_to_half(70000.0f) == 0x7C00);
    CHECK(sq_half_to_float(0x3C00) == 1.0f);
    CHECK(sq_half_to_float(0x0001) == 5.9604644775390625e-8f);
    CHECK(sq_half_to_float(0xC000) == -2.0f);
    CHECK(sq_half_to_float(0x7BFF) == 65504.0f);
}

static void test_layout_offsets(void) {
    /* stories260K has dim 64, hidden 172, 8 heads of 8 and 4 KV heads. Its wq is 64 x 64 in q4,
     * two blocks of 16 bytes per row or 2048 bytes, and its 64 scales follow at the next multiple
     * of 64. */
    sq_spq_layout layout;
    CHECK(sq_spq_layout_build(&built.config, &built.settings, built.classifier_kind, &layout, NULL) == SQ_OK);
    const sq_spq_tensor_info *norm = sq_spq_layout_find(&layout, "layers.1.attn_norm");
    const sq_spq_tensor_info *wq = sq_spq_layout_find(&layout, "layers.1.wq");
    const sq_spq_tensor_info *scales = sq_spq_layout_find(&layout, "layers.1.wq.scales");
    const sq_spq_tensor_info *down = sq_spq_layout_find(&layout, "layers.1.w_down");
    CHECK(norm != NULL);
    CHECK(wq != NULL);
    CHECK(scales != NULL);
    CHECK(down != NULL);
    if (norm != NULL && wq != NULL && scales != NULL && down != NULL) {
        CHECK(norm->section == 4);
        CHECK(norm->offset == 0);
        CHECK(norm->size == 256);
        CHECK(wq->offset == 256);
        CHECK(wq->row_stride == 32);
        CHECK(wq->size == 2048);
        CHECK(scales->offset == 2304);
        CHECK(scales->size == 256);
        CHECK(scales->cols == 1);
        CHECK(down->row_stride == 96); /* 172 columns: six blocks */
    }
    sq_spq_layout_free(&layout);
}

int main(void) {
    if (build_file() != SQ_OK) {
        CHECK_MSG(0, "the test model could not be built");
        TEST_MAIN_END();
    }
    RUN_TEST(test_file_header_layout);
    RUN_TEST(test_whole_file_reader_round_trip);
    RUN_TEST(test_file_load_round_trip);
    RUN_TEST(test_stream_reader_round_trip);
    RUN_TEST(test_truncated_files_rejected);
    RUN_TEST(test_corrupted_files_rejected);
    RUN_TEST(test_version_mismatch_rejected);
    RUN_TEST(test_trailing_bytes_rejected);
    RUN_TEST(test_stream_rejects_section_past_file_size);
    RUN_TEST(test_stream_rejects_file_size_beyond_total);
    RUN_TEST(test_half_conversions);
    RUN_TEST(test_layout_offsets);
    free(file_bytes);
    sq_spq_model_free(&built);
    sq_model_free(&source);
    TEST_MAIN_END();
}
