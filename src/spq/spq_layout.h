/* The tensor layout of a .spq file: which tensors each section holds, in which order, at which
 * payload offset and with which size. The writer places tensors by it and both readers
 * recompute it from the metadata and compare it with the file's tensor table, so a table that
 * disagrees with the configuration is rejected. Within a section, tensors follow the listed
 * order, each starting at the next multiple of 64 bytes from the payload start. */
#ifndef SQ_SPQ_SPQ_LAYOUT_H
#define SQ_SPQ_SPQ_LAYOUT_H

#include <stdint.h>

#include "spq/spq_model.h"

#define SQ_SPQ_TENSOR_NAME_MAX 40

typedef struct sq_spq_tensor_info {
    char name[SQ_SPQ_TENSOR_NAME_MAX]; /* such as "layers.3.wq" or "layers.3.wq.scales" */
    int32_t section;                    /* section index */
    uint64_t offset;                    /* bytes from the section payload start, a multiple of 64 */
    uint64_t size;                      /* bytes */
    sq_spq_dtype dtype;
    int64_t rows;
    int64_t cols;
    uint64_t row_stride;                /* bytes from one row to the next */
} sq_spq_tensor_info;

typedef struct sq_spq_layout {
    sq_spq_tensor_info *tensors;  /* [n_tensors] in file order */
    int32_t n_tensors;
    int32_t n_sections;
    uint64_t *payload_sizes;      /* [n_sections] bytes of each tensor section's payload; 0 for
                                     the metadata and tokenizer sections, which have free size */
    uint64_t tensor_bytes;        /* Σ of the aligned tensor-section payloads: the storage a
                                     streaming reader allocates */
} sq_spq_layout;

/* Builds the layout for config and settings. Fails with SQ_ERR_NOMEM when a size would not fit
 * in memory. */
sq_status sq_spq_layout_build(const sq_config *config, const sq_spq_settings *settings,
                              sq_spq_classifier_kind classifier_kind, sq_spq_layout *layout, sq_error *err);

void sq_spq_layout_free(sq_spq_layout *layout);

/* Returns the tensor called name, or NULL. */
const sq_spq_tensor_info *sq_spq_layout_find(const sq_spq_layout *layout, const char *name);

/* Returns "f32", "f16", "i8" or "q4". */
const char *sq_spq_dtype_name(sq_spq_dtype dtype);

/* Returns the dtype called name, or -1. */
int sq_spq_dtype_from_name(const char *name);

#endif
