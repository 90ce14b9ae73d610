/* Section handling shared by the .spq readers. */
#include "spq/spq_read_common.h"

#include <stdio.h>
#include <string.h>

#include "spq/spq_metadata.h"
#include "spq/spq_tokenizer.h"

sq_status sq_spq_fail(sq_spq_failure *failure, int32_t section, int32_t n_layers, sq_status status, sq_error *err) {
    int32_t layer = -1;
    sq_spq_section_kind kind = section < 0 ? SQ_SPQ_SECTION_FILE_HEADER : sq_spq_expected_kind(section, n_layers, &layer);
    if (failure != NULL) {
        failure->section = section;
        failure->kind = kind;
        failure->layer = layer;
    }
    if (err == NULL) {
        return status;
    }
    char detail[SQ_ERROR_MESSAGE_MAX];
    snprintf(detail, sizeof(detail), "%s", err->message);
    if (section < 0) {
        return sq_error_set(err, status, "file header: %s", detail);
    }
    if (kind == SQ_SPQ_SECTION_LAYER) {
        return sq_error_set(err, status, "section %d (layer %d): %s", section, layer, detail);
    }
    return sq_error_set(err, status, "section %d (%s): %s", section, sq_spq_section_kind_name(kind), detail);
}

void sq_spq_parse_start(sq_spq_parse *parse, const sq_spq_file_header *header) {
    parse->n_sections = (int32_t)header->section_count;
    parse->n_layers = parse->n_sections - SQ_SPQ_EXTRA_SECTIONS;
}

sq_status sq_spq_parse_check_size(const sq_spq_parse *parse, int32_t section, uint64_t payload_size, sq_error *err) {
    if (section < SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1) {
        if (payload_size > SQ_SPQ_MAX_SMALL_SECTION) {
            return sq_error_set(err, SQ_ERR_FORMAT, "payload of %llu bytes exceeds the limit of %llu",
                                (unsigned long long)payload_size, (unsigned long long)SQ_SPQ_MAX_SMALL_SECTION);
        }
        return SQ_OK;
    }
    uint64_t expected = parse->layout.payload_sizes[section];
    if (payload_size != expected) {
        return sq_error_set(err, SQ_ERR_FORMAT, "payload of %llu bytes, but the metadata implies %llu",
                            (unsigned long long)payload_size, (unsigned long long)expected);
    }
    return SQ_OK;
}

sq_status sq_spq_parse_metadata(sq_spq_parse *parse, const uint8_t *payload, size_t size, sq_error *err) {
    sq_status status = sq_spq_metadata_parse((const char *)payload, size, &parse->model, &parse->layout, err);
    if (status == SQ_OK && parse->model.config.n_layers != parse->n_layers) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "the model has %d layers, but the file header counts %d sections (%d layers)",
                              parse->model.config.n_layers, parse->n_sections, parse->n_layers);
    }
    return status;
}

sq_status sq_spq_parse_tokenizer(sq_spq_parse *parse, const uint8_t *payload, size_t size, sq_error *err) {
    return sq_spq_tokenizer_decode(payload, size, parse->model.config.vocab_size, &parse->model.tokenizer, err);
}

int sq_spq_all_zero(const uint8_t *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (bytes[i] != 0) {
            return 0;
        }
    }
    return 1;
}

void sq_spq_parse_free(sq_spq_parse *parse) {
    sq_spq_model_free(&parse->model);
    sq_spq_layout_free(&parse->layout);
    memset(parse, 0, sizeof(*parse));
}
