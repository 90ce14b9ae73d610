/* libFuzzer harness: the safetensors reader (sq_safetensors_open) and the fp32 conversion of
 * every tensor it accepts with a convertible dtype. */
#include <stdlib.h>

#include "formats/safetensors.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_path("model.safetensors");
    fuzz_write_file(path, data, size);

    sq_safetensors_file *file = NULL;
    sq_error err;
    sq_status status = sq_safetensors_open(path, &file, &err);
    fuzz_check_failure(status, &err);
    if (status != SQ_OK) {
        return 0;
    }
    for (size_t i = 0; i < file->n_tensors; i++) {
        const sq_safetensors_tensor *tensor = &file->tensors[i];
        if (tensor->begin + tensor->n_bytes > file->reader.size) {
            fuzz_fail("an accepted tensor lies outside the file", tensor->name);
        }
        if (sq_safetensors_find(file, tensor->name) == NULL) {
            fuzz_fail("an accepted tensor cannot be found by name", tensor->name);
        }
        /* The element count is bounded by the file size for every dtype of at least one byte. */
        size_t count = (size_t)tensor->n_elements;
        float *values = malloc(count > 0 ? count * sizeof(float) : 1);
        if (values == NULL) {
            fuzz_fail("out of memory", tensor->name);
        }
        status = sq_safetensors_read_f32(file, tensor, values, count, &err);
        fuzz_check_failure(status, &err);
        free(values);
    }
    sq_safetensors_close(file);
    return 0;
}
