/* The metadata section of a .spq file: one UTF-8 JSON object with the model configuration,
 * the quantization settings, provenance and the tensor table (docs/FORMAT.md lists every
 * member). */
#ifndef SQ_SPQ_SPQ_METADATA_H
#define SQ_SPQ_SPQ_METADATA_H

#include <stddef.h>

#include "spq/spq_layout.h"
#include "spq/spq_model.h"

/* Writes the JSON for model (config, settings, strings, provenance) and layout into a new
 * NUL-terminated buffer (*json, *length without the NUL) the caller frees. */
sq_status sq_spq_metadata_write(const sq_spq_model *model, const sq_spq_layout *layout, char **json, size_t *length,
                                sq_error *err);

/* Parses the JSON: fills model's config, settings, classifier kind, norms flag and owned
 * strings, checks them (sq_config_validate, sq_spq_settings_validate), builds the layout and
 * checks that the file's tensor table equals it entry by entry. Fails with SQ_ERR_FORMAT naming
 * the member, or SQ_ERR_UNSUPPORTED for settings this runtime cannot run. */
sq_status sq_spq_metadata_parse(const char *json, size_t length, sq_spq_model *model, sq_spq_layout *layout,
                                sq_error *err);

#endif
