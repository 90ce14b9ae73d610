/* Steps shared by the whole-file and the streaming .spq readers: failure reporting and the
 * handling of the metadata, tokenizer and tensor sections once their payload is complete. */
#ifndef SQ_SPQ_SPQ_READ_COMMON_H
#define SQ_SPQ_SPQ_READ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "spq/spq_format.h"
#include "spq/spq_layout.h"
#include "spq/spq_model.h"

typedef struct sq_spq_parse {
    sq_spq_model model;      /* filled as sections arrive */
    sq_spq_layout layout;    /* valid once the metadata section has been read */
    int32_t n_sections;      /* from the file header */
    int32_t n_layers;        /* n_sections - SQ_SPQ_EXTRA_SECTIONS */
} sq_spq_parse;

/* Fills *failure (when not NULL) with section (-1 for the file header), prefixes err's message
 * with the place, such as "section 4 (layer 1): ", and returns status. */
sq_status sq_spq_fail(sq_spq_failure *failure, int32_t section, int32_t n_layers, sq_status status, sq_error *err);

/* Handles the file header: sets n_sections and n_layers. */
void sq_spq_parse_start(sq_spq_parse *parse, const sq_spq_file_header *header);

/* Checks a section header's payload size before its payload is read: free-size sections must
 * stay under SQ_SPQ_MAX_SMALL_SECTION, tensor sections must match the layout. */
sq_status sq_spq_parse_check_size(const sq_spq_parse *parse, int32_t section, uint64_t payload_size, sq_error *err);

/* Handles a complete metadata or tokenizer payload. */
sq_status sq_spq_parse_metadata(sq_spq_parse *parse, const uint8_t *payload, size_t size, sq_error *err);
sq_status sq_spq_parse_tokenizer(sq_spq_parse *parse, const uint8_t *payload, size_t size, sq_error *err);

/* Returns 1 when the n bytes are all zero (section padding). */
int sq_spq_all_zero(const uint8_t *bytes, size_t n);

void sq_spq_parse_free(sq_spq_parse *parse);

#endif
