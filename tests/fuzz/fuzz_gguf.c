/* libFuzzer harness: GGUF model loading through sq_model_load (format detection, the GGUF
 * reader, configuration, tensor checks, dequantization, the tokenizer from tokenizer.ggml.*),
 * then the loaded tokenizer on a fixed text. */
#include "formats/formats.h"
#include "fuzz_common.h"
#include "fuzz_tokenizer_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_path("model.gguf");
    fuzz_write_file(path, data, size);

    sq_model model;
    sq_error err;
    sq_status status = sq_model_load(path, NULL, NULL, &model, &err);
    fuzz_check_failure(status, &err);
    if (status != SQ_OK) {
        return 0;
    }
    if (model.tokenizer == NULL) {
        fuzz_fail("sq_model_load succeeded without a tokenizer", path);
    }
    static const char text[] = "Hello world! <|im_start|>user\n caf\xC3\xA9 12345 \xF0\x9F\x98\x80<s></s>";
    fuzz_exercise_tokenizer(model.tokenizer, (const uint8_t *)text, sizeof(text) - 1, 0);
    sq_model_free(&model);
    return 0;
}
