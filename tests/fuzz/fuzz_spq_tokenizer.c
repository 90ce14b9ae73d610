/* libFuzzer harness: the tokenizer section of a .spq file (sq_spq_tokenizer_decode), then the
 * decoded tokenizer on a fixed text. The expected vocabulary size is the one the section
 * declares (bytes 4..7), plus one for inputs of odd size so that the mismatch path runs too. */
#include "fuzz_common.h"
#include "fuzz_tokenizer_check.h"
#include "spq/spq_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int32_t vocab_size = size >= 8 ? (int32_t)fuzz_load_le32(data + 4) : 0;
    if ((size & 1) && vocab_size < INT32_MAX) {
        vocab_size++;
    }
    sq_tokenizer *tokenizer = NULL;
    sq_error err;
    sq_status status = sq_spq_tokenizer_decode(data, size, vocab_size, &tokenizer, &err);
    fuzz_check_failure(status, &err);
    if (status != SQ_OK) {
        return 0;
    }
    static const char text[] = "Once upon a time, <s> caf\xC3\xA9 \xF0\x9F\x98\x80 <|im_start|>12 3\n";
    fuzz_exercise_tokenizer(tokenizer, (const uint8_t *)text, sizeof(text) - 1, 0);
    sq_tokenizer_free(tokenizer);
    return 0;
}
