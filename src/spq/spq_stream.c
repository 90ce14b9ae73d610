/* The streaming .spq reader: a state machine over file header → (section header → payload →
 * padding) per section. It never keeps the file twice, because metadata and tokenizer payloads
 * are buffered only until they are parsed and tensor payloads go straight into the model's
 * storage. */
#include "spq/spq_reader.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "spq/spq_bind.h"
#include "spq/spq_read_common.h"

typedef enum stream_phase {
    PHASE_FILE_HEADER,
    PHASE_SECTION_HEADER,
    PHASE_PAYLOAD,
    PHASE_PADDING,
    PHASE_DONE,
    PHASE_FAILED,
} stream_phase;

struct sq_spq_stream {
    stream_phase phase;
    sq_spq_parse parse;
    sq_spq_file_header header;
    uint8_t header_bytes[SQ_SPQ_HEADER_SIZE]; /* the file or section header being assembled */
    uint64_t header_filled;

    int32_t section;                /* index of the current section */
    sq_spq_section_header section_header;
    uint8_t *small_payload;         /* metadata or tokenizer bytes until parsed */
    uint8_t *payload;               /* where the current payload goes */
    uint64_t payload_filled;
    uint32_t payload_crc;
    uint64_t padding_left;

    uint8_t *storage;               /* tensor sections, allocated after the metadata */
    uint64_t *storage_offsets;      /* [n_sections] payload offset of each tensor section */
    uint64_t received;
    uint64_t total_size;            /* length of the whole stream, 0 when unknown */

    sq_status failed_status;
    sq_spq_failure failure;
    sq_error failed_error;
};

sq_status sq_spq_stream_create(sq_spq_stream **out, sq_error *err) {
    *out = calloc(1, sizeof(sq_spq_stream));
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the .spq stream reader");
    }
    return SQ_OK;
}

sq_status sq_spq_stream_set_total_size(sq_spq_stream *s, uint64_t total_bytes, sq_error *err) {
    if (s->received > 0 || s->header_filled > 0 || s->phase != PHASE_FILE_HEADER) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "cannot set the stream size to %llu bytes after %llu bytes were fed; set it before the first byte",
                            (unsigned long long)total_bytes, (unsigned long long)(s->received + s->header_filled));
    }
    s->total_size = total_bytes;
    return SQ_OK;
}

void sq_spq_stream_free(sq_spq_stream *s) {
    if (s == NULL) {
        return;
    }
    sq_spq_parse_free(&s->parse);
    free(s->small_payload);
    free(s->storage);
    free(s->storage_offsets);
    free(s);
}

const sq_spq_failure *sq_spq_stream_failure(const sq_spq_stream *s) {
    return s->phase == PHASE_FAILED ? &s->failure : NULL;
}

uint64_t sq_spq_stream_bytes_received(const sq_spq_stream *s) {
    return s->received;
}

/* Records a failure at section (or -1) and returns it; later calls repeat it. */
static sq_status fail(sq_spq_stream *s, int32_t section, sq_status status, sq_error *err) {
    status = sq_spq_fail(&s->failure, section, s->parse.n_layers, status, err);
    s->phase = PHASE_FAILED;
    s->failed_status = status;
    s->failed_error = *err;
    return status;
}

/* Allocates the tensor storage and its section offsets once the layout is known. */
static sq_status allocate_storage(sq_spq_stream *s, sq_error *err) {
    const sq_spq_layout *layout = &s->parse.layout;
    /* The tensors are part of the file, so metadata that needs more bytes than the header's
     * file size is corrupt. Checking first keeps a few corrupt bytes from reserving gigabytes. */
    if (layout->tensor_bytes > s->header.file_size) {
        return sq_error_set(err, SQ_ERR_FORMAT, "the metadata implies %llu bytes of tensors, but the header gives a file size of %llu bytes",
                            (unsigned long long)layout->tensor_bytes, (unsigned long long)s->header.file_size);
    }
    /* A 32-bit build would otherwise truncate the size passed to aligned_alloc and later write
     * tensor payloads past the smaller block. */
    if (layout->tensor_bytes > (uint64_t)SIZE_MAX - SQ_SPQ_ALIGNMENT) {
        return sq_error_set(err, SQ_ERR_NOMEM, "the metadata implies %llu bytes of tensors, more than the address space of this build",
                            (unsigned long long)layout->tensor_bytes);
    }
    s->storage_offsets = calloc((size_t)layout->n_sections, sizeof(uint64_t));
    s->storage = aligned_alloc(SQ_SPQ_ALIGNMENT, (size_t)sq_spq_align(layout->tensor_bytes > 0 ? layout->tensor_bytes : 1));
    if (s->storage == NULL || s->storage_offsets == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the tensors",
                            (unsigned long long)layout->tensor_bytes);
    }
    uint64_t offset = 0;
    for (int32_t i = SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1; i < layout->n_sections; i++) {
        s->storage_offsets[i] = offset;
        offset += sq_spq_align(layout->payload_sizes[i]);
    }
    return SQ_OK;
}

/* Checks a complete file header, and its file size against the stream's length when known. */
static sq_status check_file_header(sq_spq_stream *s, sq_error *err) {
    sq_status status = sq_spq_file_header_decode(s->header_bytes, &s->header, err);
    if (status == SQ_OK && s->total_size > 0 && s->header.file_size != s->total_size) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "the header gives a file size of %llu bytes, but the stream has %llu; %s",
                              (unsigned long long)s->header.file_size, (unsigned long long)s->total_size,
                              s->total_size < s->header.file_size ? "the file is truncated or its header is corrupt"
                                                                  : "bytes follow the file, or its header is corrupt");
    }
    return status;
}

/* Handles a complete section header, whose payload starts at byte payload_offset of the file:
 * checks it and points the payload at its destination. */
static sq_status begin_payload(sq_spq_stream *s, uint64_t payload_offset, sq_error *err) {
    sq_status status = sq_spq_section_header_decode(s->header_bytes, s->section, s->parse.n_layers,
                                                    &s->section_header, err);
    if (status == SQ_OK) {
        status = sq_spq_parse_check_size(&s->parse, s->section, s->section_header.payload_size, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    /* The payload and its padding lie inside the file, so a size beyond what the header's file
     * size leaves is corrupt. Checking it before the allocation below keeps one corrupt section
     * header from reserving up to SQ_SPQ_MAX_SMALL_SECTION bytes that never arrive. */
    uint64_t size = s->section_header.payload_size;
    uint64_t left = s->header.file_size > payload_offset ? s->header.file_size - payload_offset : 0;
    uint64_t padded = sq_spq_align(size);
    if (size > left || padded < size || padded > left) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "payload of %llu bytes runs past the end of the file: the header gives a file size of %llu bytes, which leaves %llu after this section header",
                            (unsigned long long)size, (unsigned long long)s->header.file_size, (unsigned long long)left);
    }
    if (s->section < SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1) {
        s->small_payload = malloc((size_t)(size > 0 ? size : 1));
        if (s->small_payload == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the payload", (unsigned long long)size);
        }
        s->payload = s->small_payload;
    } else {
        s->payload = s->storage + s->storage_offsets[s->section];
    }
    s->payload_filled = 0;
    s->payload_crc = 0;
    s->padding_left = sq_spq_align(size) - size;
    s->phase = PHASE_PAYLOAD;
    return SQ_OK;
}

/* Handles a complete payload: verifies its CRC and parses the metadata and tokenizer. */
static sq_status end_payload(sq_spq_stream *s, sq_error *err) {
    if (s->payload_crc != s->section_header.payload_crc) {
        return sq_error_set(err, SQ_ERR_CHECKSUM, "payload CRC-32 0x%08x does not match the stored 0x%08x; the file is corrupt",
                            s->payload_crc, s->section_header.payload_crc);
    }
    sq_status status = SQ_OK;
    size_t size = (size_t)s->section_header.payload_size;
    if (s->section == 0) {
        status = sq_spq_parse_metadata(&s->parse, s->small_payload, size, err);
        if (status == SQ_OK) {
            status = allocate_storage(s, err);
        }
    } else if (s->section == 1) {
        status = sq_spq_parse_tokenizer(&s->parse, s->small_payload, size, err);
    }
    free(s->small_payload);
    s->small_payload = NULL;
    s->phase = PHASE_PADDING;
    return status;
}

/* Moves to the next section, or to PHASE_DONE after the last. */
static void next_section(sq_spq_stream *s) {
    s->section++;
    s->header_filled = 0;
    s->phase = s->section < s->parse.n_sections ? PHASE_SECTION_HEADER : PHASE_DONE;
}

/* Copies up to n bytes into the 64-byte header buffer; returns the count taken. */
static size_t fill_header(sq_spq_stream *s, const uint8_t *bytes, size_t n) {
    size_t want = (size_t)(SQ_SPQ_HEADER_SIZE - s->header_filled);
    size_t take = n < want ? n : want;
    memcpy(s->header_bytes + s->header_filled, bytes, take);
    s->header_filled += take;
    return take;
}

sq_status sq_spq_stream_feed(sq_spq_stream *s, const void *data, size_t n, sq_error *err) {
    const uint8_t *bytes = data;
    sq_error scratch = {0};
    if (err == NULL) {
        err = &scratch; /* failures are kept for later calls even when the caller passes no error */
    }
    if (s->phase == PHASE_FAILED) {
        *err = s->failed_error;
        return s->failed_status;
    }
    while (n > 0) {
        size_t used = 0;
        sq_status status = SQ_OK;
        switch (s->phase) {
        case PHASE_FILE_HEADER:
            used = fill_header(s, bytes, n);
            if (s->header_filled == SQ_SPQ_HEADER_SIZE) {
                status = check_file_header(s, err);
                if (status != SQ_OK) {
                    return fail(s, -1, status, err);
                }
                sq_spq_parse_start(&s->parse, &s->header);
                s->section = -1;
                next_section(s);
            }
            break;
        case PHASE_SECTION_HEADER:
            used = fill_header(s, bytes, n);
            if (s->header_filled == SQ_SPQ_SECTION_HEADER_SIZE &&
                (status = begin_payload(s, s->received + used, err)) != SQ_OK) {
                return fail(s, s->section, status, err);
            }
            break;
        case PHASE_PAYLOAD: {
            uint64_t left = s->section_header.payload_size - s->payload_filled;
            used = (size_t)(n < left ? n : left);
            memcpy(s->payload + s->payload_filled, bytes, used);
            s->payload_crc = sq_crc32_update(s->payload_crc, bytes, used);
            s->payload_filled += used;
            if (s->payload_filled == s->section_header.payload_size && (status = end_payload(s, err)) != SQ_OK) {
                return fail(s, s->section, status, err);
            }
            break;
        }
        case PHASE_PADDING:
            used = (size_t)(n < s->padding_left ? n : s->padding_left);
            if (!sq_spq_all_zero(bytes, used)) {
                status = sq_error_set(err, SQ_ERR_FORMAT, "padding after the payload is not zero; the file is corrupt");
                return fail(s, s->section, status, err);
            }
            s->padding_left -= used;
            break;
        case PHASE_DONE:
            status = sq_error_set(err, SQ_ERR_FORMAT, "%zu bytes follow the last section", n);
            return fail(s, -1, status, err);
        case PHASE_FAILED:
            break;
        }
        bytes += used;
        n -= used;
        s->received += used;
        /* A section with an empty payload or no padding moves on without consuming a byte. */
        if (s->phase == PHASE_PAYLOAD && s->payload_filled == s->section_header.payload_size &&
            s->section_header.payload_size == 0 && (status = end_payload(s, err)) != SQ_OK) {
            return fail(s, s->section, status, err);
        }
        if (s->phase == PHASE_PADDING && s->padding_left == 0) {
            next_section(s);
        }
    }
    return SQ_OK;
}

sq_status sq_spq_stream_finish(sq_spq_stream *s, sq_spq_model *model, sq_error *err) {
    memset(model, 0, sizeof(*model));
    sq_error scratch = {0};
    if (err == NULL) {
        err = &scratch;
    }
    if (s->phase == PHASE_FAILED) {
        *err = s->failed_error;
        return s->failed_status;
    }
    if (s->phase != PHASE_DONE) {
        sq_status status;
        if (s->phase == PHASE_FILE_HEADER) {
            status = sq_error_set(err, SQ_ERR_FORMAT, "the stream ended after %llu of the %u header bytes; it is truncated",
                                  (unsigned long long)s->header_filled, SQ_SPQ_HEADER_SIZE);
            return fail(s, -1, status, err);
        }
        status = sq_error_set(err, SQ_ERR_FORMAT, "the stream ended after %llu bytes, inside this section; it is truncated",
                              (unsigned long long)s->received);
        return fail(s, s->section, status, err);
    }
    if (s->received != s->header.file_size) {
        sq_status status = sq_error_set(err, SQ_ERR_FORMAT, "the header gives a file size of %llu bytes, but %llu arrived",
                                        (unsigned long long)s->header.file_size, (unsigned long long)s->received);
        return fail(s, -1, status, err);
    }
    sq_status status = sq_spq_model_bind(&s->parse.model, &s->parse.layout, s->storage, s->storage_offsets,
                                         &s->failure, err);
    if (status != SQ_OK) {
        s->phase = PHASE_FAILED;
        s->failed_status = status;
        s->failed_error = *err;
        return status;
    }
    *model = s->parse.model;
    model->storage = s->storage;
    model->storage_size = (size_t)s->parse.layout.tensor_bytes;
    model->file_size = s->received;
    s->storage = NULL;
    sq_spq_layout_free(&s->parse.layout);
    memset(&s->parse, 0, sizeof(s->parse));
    s->phase = PHASE_DONE;
    return SQ_OK;
}
