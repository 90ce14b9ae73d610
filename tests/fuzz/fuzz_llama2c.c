/* libFuzzer harness: the llama2.c checkpoint loader (sq_load_llama2c) on arbitrary file bytes.
 * The loader rejects any file whose size differs from the one its header implies, and random
 * mutations rarely keep the two equal. So each input runs twice: as given, and cut or
 * zero-padded to the implied size when that is at most 4 MiB, which lets the weight reads and
 * the NaN check run. */
#include <stdlib.h>

#include "formats/formats.h"
#include "fuzz_common.h"

#define MAX_ADJUSTED_BYTES ((uint64_t)4 << 20)

static void load(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_path("model.bin");
    fuzz_write_file(path, data, size);

    sq_model model;
    sq_error err;
    sq_status status = sq_load_llama2c(path, &model, &err);
    fuzz_check_failure(status, &err);
    if (status == SQ_OK) {
        sq_model_free(&model);
    }
}

/* Returns the file size the header implies, computed independently of the loader. Returns 0
 * when a field is not positive (the vocabulary size may be negative), when a field exceeds 2^20
 * (4096 for the layer count), or when the size exceeds the limit. */
static uint64_t implied_size(const uint8_t *data, size_t size) {
    if (size < 28) {
        return 0;
    }
    int64_t h[7];
    for (int i = 0; i < 7; i++) {
        h[i] = (int32_t)fuzz_load_le32(data + 4 * i);
        if (h[i] == 0 || (h[i] < 0 && i != 5) || h[i] == INT32_MIN || h[i] > (1 << 20)) {
            return 0;
        }
    }
    int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], seq_len = h[6];
    int64_t vocab = h[5] < 0 ? -h[5] : h[5];
    if (layers > 4096 || dim % heads != 0) {
        return 0;
    }
    int64_t head_dim = dim / heads;
    int64_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv_heads * head_dim * dim + 3 * hidden * dim;
    int64_t floats = vocab * dim * (h[5] < 0 ? 2 : 1) + layers * per_layer + dim + seq_len * head_dim;
    uint64_t bytes = 28 + 4 * (uint64_t)floats;
    return bytes <= MAX_ADJUSTED_BYTES ? bytes : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size);

    uint64_t adjusted = implied_size(data, size);
    if (adjusted != 0 && adjusted != size) {
        uint8_t *copy = calloc((size_t)adjusted, 1);
        if (copy == NULL) {
            fuzz_fail("out of memory", "adjusted input");
        }
        memcpy(copy, data, size < adjusted ? size : (size_t)adjusted);
        load(copy, (size_t)adjusted);
        free(copy);
    }
    return 0;
}
