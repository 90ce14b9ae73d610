/* libFuzzer harness: byte-level BPE encoding of arbitrary bytes with the synthetic vocabulary
 * of fuzz_bpe_vocab.h, once with the GPT-2 pre-tokenizer and once with "smollm" (digits split
 * off). Besides the contracts of fuzz_tokenizer_check.h it checks the round trip: without
 * special-token parsing, decoding the ids of valid UTF-8 text gives back exactly the text,
 * because every byte has a token. */
#include "fuzz_bpe_vocab.h"
#include "fuzz_common.h"
#include "fuzz_tokenizer_check.h"

static sq_tokenizer *tokenizers[2];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *pre_tokenizers[2] = {NULL, "smollm"};
    for (int i = 0; i < 2; i++) {
        static fuzz_bpe_vocab vocab;
        sq_tokenizer_desc desc;
        sq_error err;
        fuzz_bpe_vocab_init(&vocab, pre_tokenizers[i], &desc);
        if (sq_tokenizer_create(&desc, &tokenizers[i], &err) != SQ_OK) {
            fuzz_fail("cannot build the synthetic BPE tokenizer", err.message);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int i = 0; i < 2; i++) {
        fuzz_exercise_tokenizer(tokenizers[i], data, size, 1);

        size_t count = 0;
        int32_t *ids = fuzz_encode_checked(tokenizers[i], data, size, 0, 0, 1, &count);
        if (ids == NULL) {
            continue;
        }
        size_t length = 0;
        char *text = fuzz_decode_checked(tokenizers[i], ids, count, &length);
        if (length != size || memcmp(text, data, size) != 0) {
            fuzz_fail("BPE decode(encode(text)) differs from the text", i == 0 ? "gpt2" : "smollm");
        }
        free(text);
        free(ids);
    }
    return 0;
}
