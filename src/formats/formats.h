/* Model loaders. sq_model_load detects the format from the content:
 *   - a directory with config.json: a Hugging Face LlamaForCausalLM checkpoint (safetensors);
 *   - a file starting with "GGUF": GGUF v2 or v3 with general.architecture = llama;
 *   - otherwise a llama2.c checkpoint (version-0 header of seven int32), which needs a
 *     llama2.c tokenizer.bin through tokenizer_path.
 * All loaders dequantize to fp32 and return the layout sq_model documents. */
#ifndef SQ_FORMATS_FORMATS_H
#define SQ_FORMATS_FORMATS_H

#include "core/log.h"
#include "core/status.h"
#include "model/model.h"

/* tokenizer_path may be NULL; when given it replaces any tokenizer inside the model file. */
sq_status sq_model_load(const char *path, const char *tokenizer_path, const sq_logger *logger,
                        sq_model *model, sq_error *err);

sq_status sq_load_llama2c(const char *path, sq_model *model, sq_error *err);
sq_status sq_load_gguf(const char *path, const sq_logger *logger, sq_model *model, sq_error *err);
sq_status sq_load_hf(const char *directory, const sq_logger *logger, sq_model *model, sq_error *err);

#endif
