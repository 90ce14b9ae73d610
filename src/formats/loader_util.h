/* Helpers shared by the model loaders: error prefixes, the final weight check, path joining,
 * and loader variants that sq_model_load uses to skip a file's own tokenizer. */
#ifndef SQ_FORMATS_LOADER_UTIL_H
#define SQ_FORMATS_LOADER_UTIL_H

#include "core/log.h"
#include "core/status.h"
#include "model/model.h"

/* Prepends "'path': " to err's message (unless it already names path) and returns status. */
sq_status sq_loader_prefix_error(sq_error *err, const char *path, sq_status status);

/* Checks that every loaded weight is finite; on failure the message names path, the tensor
 * and the index of the first NaN or infinity. */
sq_status sq_loader_check_weights(const sq_model *model, const char *path, sq_error *err);

/* Returns a new string "directory/name" (the caller frees it), or NULL when out of memory. */
char *sq_path_join(const char *directory, const char *name);

/* Returns 1 when path names an existing regular file. */
int sq_path_is_file(const char *path);

/* sq_load_gguf, except that with load_tokenizer = 0 the file's tokenizer is neither built nor
 * checked (the caller supplies another one). */
sq_status sq_load_gguf_ex(const char *path, int load_tokenizer, const sq_logger *logger, sq_model *model,
                          sq_error *err);

#endif
