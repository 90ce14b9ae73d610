/* libFuzzer harness: the Hugging Face directory loader (sq_load_hf). The input packs the files
 * of one model directory:
 *   u32 n_config, n_config bytes of config.json,
 *   u32 n_index, n_index bytes of model.safetensors.index.json (absent when n_index is 0),
 *   the rest: the safetensors file, written as model.safetensors when there is no index and as
 *   shard.safetensors otherwise.
 * Lengths larger than the bytes left are cut to fit. */
#include <stdio.h>

#include "formats/formats.h"
#include "fuzz_common.h"

/* Takes a u32-prefixed part from the front of *data. */
static const uint8_t *take_part(const uint8_t **data, size_t *size, size_t *part_size) {
    uint32_t declared = 0;
    if (*size >= 4) {
        declared = fuzz_load_le32(*data);
        *data += 4;
        *size -= 4;
    } else {
        *data += *size;
        *size = 0;
    }
    const uint8_t *part = *data;
    *part_size = declared < *size ? declared : *size;
    *data += *part_size;
    *size -= *part_size;
    return part;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t config_size, index_size;
    const uint8_t *config = take_part(&data, &size, &config_size);
    const uint8_t *index = take_part(&data, &size, &index_size);

    fuzz_write_file(fuzz_scratch_path("config.json"), config, config_size);
    remove(fuzz_scratch_path("model.safetensors"));
    remove(fuzz_scratch_path("model.safetensors.index.json"));
    remove(fuzz_scratch_path("shard.safetensors"));
    if (index_size == 0) {
        fuzz_write_file(fuzz_scratch_path("model.safetensors"), data, size);
    } else {
        fuzz_write_file(fuzz_scratch_path("model.safetensors.index.json"), index, index_size);
        fuzz_write_file(fuzz_scratch_path("shard.safetensors"), data, size);
    }

    sq_model model;
    sq_error err;
    sq_status status = sq_load_hf(fuzz_scratch_dir(), NULL, &model, &err);
    fuzz_check_failure(status, &err);
    if (status == SQ_OK) {
        sq_model_free(&model);
    }
    return 0;
}
