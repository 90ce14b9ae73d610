/* Connects the tensor table of a layout with the pointer fields of sq_spq_model: the readers
 * point every field at the stored bytes, the writer fetches every tensor by name. */
#ifndef SQ_SPQ_SPQ_BIND_H
#define SQ_SPQ_SPQ_BIND_H

#include "spq/spq_format.h"
#include "spq/spq_layout.h"
#include "spq/spq_model.h"

/* Points every tensor field of model (allocating model->layers) at
 * base + section_offsets[t.section] + t.offset for each tensor t of layout, fills the shapes,
 * and checks that scales, norms and the classifier transform are finite (scales also
 * non-negative). On failure *failure names the section of the offending tensor. */
sq_status sq_spq_model_bind(sq_spq_model *model, const sq_spq_layout *layout, const uint8_t *base,
                            const uint64_t *section_offsets, sq_spq_failure *failure, sq_error *err);

/* Returns the data pointer of the tensor called name in model, or NULL for an unknown name. */
const void *sq_spq_model_tensor(const sq_spq_model *model, const char *name);

#endif
