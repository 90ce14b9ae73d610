/* libFuzzer harness: the llama2.c tokenizer.bin reader (sq_tokenizer_load_llama2c), then the
 * tokenizer built from the fuzzed pieces on a fixed text. The file does not store its entry
 * count, so the harness counts the complete entries and passes that count as vocab_size,
 * plus one for inputs of odd size so that the count-mismatch path runs too. */
#include "fuzz_common.h"
#include "fuzz_tokenizer_check.h"

/* Counts the complete (score, length, bytes) entries after the 4-byte header. */
static int32_t count_entries(const uint8_t *data, size_t size) {
    size_t offset = 4;
    int32_t count = 0;
    while (size >= offset && size - offset >= 8 && count < INT32_MAX - 1) {
        uint32_t length = fuzz_load_le32(data + offset + 4);
        if (length > size - offset - 8) {
            break;
        }
        offset += 8 + (size_t)length;
        count++;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_path("tokenizer.bin");
    fuzz_write_file(path, data, size);

    int32_t vocab_size = count_entries(data, size) + (int32_t)(size & 1);
    sq_tokenizer *tokenizer = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_load_llama2c(path, vocab_size, &tokenizer, &err);
    fuzz_check_failure(status, &err);
    if (status != SQ_OK) {
        return 0;
    }

    static const char text[] = "Once upon a time, <s> a caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80 <0x41>\n\t  end";
    fuzz_exercise_tokenizer(tokenizer, (const uint8_t *)text, sizeof(text) - 1, 0);
    sq_tokenizer_free(tokenizer);
    return 0;
}
