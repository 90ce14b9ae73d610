/* Assembles a .spq file in memory; see spq_format.h for the section order. */
#include "spq/spq_writer.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/io.h"
#include "spq/spq_bind.h"
#include "spq/spq_format.h"
#include "spq/spq_layout.h"
#include "spq/spq_metadata.h"
#include "spq/spq_tokenizer.h"

/* Writes one section (header, payload, zero padding) at out + *offset and advances *offset.
 * The payload must already be at out + *offset + 64 when payload is NULL. */
static void write_section(uint8_t *out, uint64_t *offset, int32_t index, int32_t n_layers, const void *payload,
                          uint64_t payload_size) {
    uint8_t *payload_at = out + *offset + SQ_SPQ_SECTION_HEADER_SIZE;
    if (payload != NULL && payload_size > 0) {
        memcpy(payload_at, payload, (size_t)payload_size);
    }
    sq_spq_section_header header;
    header.index = (uint32_t)index;
    header.kind = (uint32_t)sq_spq_expected_kind(index, n_layers, &header.layer);
    header.payload_size = payload_size;
    header.payload_crc = sq_crc32_update(0, payload_at, (size_t)payload_size);
    sq_spq_section_header_encode(&header, out + *offset);
    *offset += SQ_SPQ_SECTION_HEADER_SIZE + sq_spq_align(payload_size);
}

sq_status sq_spq_serialize(const sq_spq_model *model, const sq_tokenizer_desc *tokenizer, uint8_t **bytes,
                           size_t *size, sq_error *err) {
    *bytes = NULL;
    *size = 0;
    sq_status status = sq_spq_settings_validate(&model->settings, &model->config, err);
    if (status != SQ_OK) {
        return status;
    }
    sq_spq_layout layout;
    status = sq_spq_layout_build(&model->config, &model->settings, model->classifier_kind, &layout, err);
    if (status != SQ_OK) {
        return status;
    }
    char *json = NULL;
    size_t json_size = 0;
    uint8_t *tokenizer_bytes = NULL;
    size_t tokenizer_size = 0;
    status = sq_spq_metadata_write(model, &layout, &json, &json_size, err);
    if (status == SQ_OK) {
        status = sq_spq_tokenizer_encode(tokenizer, &tokenizer_bytes, &tokenizer_size, err);
    }

    /* ---- sizes ---- */
    uint64_t total = SQ_SPQ_HEADER_SIZE;
    for (int32_t i = 0; status == SQ_OK && i < layout.n_sections; i++) {
        uint64_t payload = i == 0 ? json_size : i == 1 ? tokenizer_size : layout.payload_sizes[i];
        total += SQ_SPQ_SECTION_HEADER_SIZE + sq_spq_align(payload);
    }
    uint8_t *out = NULL;
    if (status == SQ_OK && total > (uint64_t)SIZE_MAX / 2) {
        status = sq_error_set(err, SQ_ERR_NOMEM, "the file would have %llu bytes, too many for this machine",
                              (unsigned long long)total);
    }
    if (status == SQ_OK) {
        out = aligned_alloc(SQ_SPQ_ALIGNMENT, (size_t)total);
        if (out == NULL) {
            status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the .spq file",
                                  (unsigned long long)total);
        } else {
            memset(out, 0, (size_t)total);
        }
    }

    /* ---- header, metadata and tokenizer ---- */
    if (status == SQ_OK) {
        int32_t n_layers = model->config.n_layers;
        sq_spq_file_header header = {SQ_SPQ_VERSION, SQ_SPQ_BYTE_ORDER_MARK, SQ_SPQ_HEADER_SIZE,
                                     (uint32_t)layout.n_sections, total};
        sq_spq_file_header_encode(&header, out);
        uint64_t offset = SQ_SPQ_HEADER_SIZE;
        write_section(out, &offset, 0, n_layers, json, json_size);
        write_section(out, &offset, 1, n_layers, tokenizer_bytes, tokenizer_size);

        /* ---- tensor sections: copy each tensor to its offset, then seal the section ---- */
        int32_t t = 0;
        for (int32_t s = SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1; status == SQ_OK && s < layout.n_sections; s++) {
            uint8_t *payload = out + offset + SQ_SPQ_SECTION_HEADER_SIZE;
            for (; t < layout.n_tensors && layout.tensors[t].section == s; t++) {
                const sq_spq_tensor_info *info = &layout.tensors[t];
                const void *data = sq_spq_model_tensor(model, info->name);
                if (data == NULL) {
                    status = sq_error_set(err, SQ_ERR_INVALID_ARG, "the model has no data for tensor %s", info->name);
                    break;
                }
                memcpy(payload + info->offset, data, (size_t)info->size);
            }
            write_section(out, &offset, s, n_layers, NULL, layout.payload_sizes[s]);
        }
    }
    free(json);
    free(tokenizer_bytes);
    sq_spq_layout_free(&layout);
    if (status != SQ_OK) {
        free(out);
        return status;
    }
    *bytes = out;
    *size = (size_t)total;
    return SQ_OK;
}

sq_status sq_spq_save(const char *path, const sq_spq_model *model, const sq_tokenizer_desc *tokenizer, sq_error *err) {
    uint8_t *bytes = NULL;
    size_t size = 0;
    sq_status status = sq_spq_serialize(model, tokenizer, &bytes, &size, err);
    if (status == SQ_OK) {
        status = sq_io_write_file_atomic(path, bytes, size, err);
    }
    free(bytes);
    return status;
}
