/* libFuzzer harness: the rotation file reader (sq_rotation_set_load). The trailing CRC-32 is
 * recomputed before each run, so mutations reach the header and size checks behind it. A file
 * that loads is loaded again against a dim-8 model configuration to run the mismatch check. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "rotation/rotation_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL) {
        fuzz_fail("out of memory", "input copy");
    }
    memcpy(copy, data, size);
    fuzz_fix_rotation_crc(copy, size);
    const char *path = fuzz_scratch_path("rotation.bin");
    fuzz_write_file(path, copy, size);
    free(copy);

    sq_rotation_set set;
    sq_error err;
    sq_status status = sq_rotation_set_load(path, NULL, &set, &err);
    fuzz_check_failure(status, &err);
    if (status != SQ_OK) {
        return 0;
    }
    if (set.dim <= 64 && set.head_dim <= 64 && set.n_layers <= 16) {
        (void)sq_rotation_set_orthogonality_error(&set);
    }
    sq_rotation_set_free(&set);

    sq_config config = {.dim = 8, .hidden_dim = 16, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1, .head_dim = 4,
                        .vocab_size = 32, .context_length = 16, .rope_theta = 10000.0f, .norm_eps = 1e-5f};
    status = sq_rotation_set_load(path, &config, &set, &err);
    fuzz_check_failure(status, &err);
    if (status == SQ_OK) {
        sq_rotation_set_free(&set);
    }
    return 0;
}
