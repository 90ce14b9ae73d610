/* libFuzzer harness: SentencePiece encoding of arbitrary bytes with the stories260K vocabulary
 * (models/stories260K/tok512.bin, or the file named by SQ_FUZZ_TOKENIZER). Besides the
 * contracts of fuzz_tokenizer_check.h it checks the round trip: with BOS and the dummy-prefix
 * space, decoding the ids after BOS gives back exactly the text. Byte fallback covers every
 * byte, and the decoder drops the prefix space after BOS. */
#include "fuzz_common.h"
#include "fuzz_tokenizer_check.h"

static sq_tokenizer *tokenizer;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("SQ_FUZZ_TOKENIZER");
    if (path == NULL || path[0] == '\0') {
        path = SQ_SOURCE_DIR "/models/stories260K/tok512.bin";
    }
    sq_error err;
    if (sq_tokenizer_load_llama2c(path, 512, &tokenizer, &err) != SQ_OK) {
        fuzz_fail("cannot load the SPM tokenizer (set SQ_FUZZ_TOKENIZER)", err.message);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_exercise_tokenizer(tokenizer, data, size, 1);

    size_t count = 0;
    int32_t *ids = fuzz_encode_checked(tokenizer, data, size, 1, 0, 1, &count);
    if (ids == NULL) {
        return 0;
    }
    if (count == 0 || ids[0] != sq_tokenizer_bos_id(tokenizer)) {
        fuzz_fail("encode with add_bos did not start with BOS", "");
    }

    /* Decode after BOS: the decoder's previous token is BOS, as during generation. */
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    decoder.previous_id = ids[0];
    size_t piece_capacity = sq_token_decoder_min_capacity(tokenizer);
    char *piece = malloc(piece_capacity);
    char *text = malloc(size + piece_capacity + 1);
    size_t used = 0;
    for (size_t i = 1; i <= count; i++) {
        size_t n = i < count ? sq_token_decoder_push(&decoder, tokenizer, ids[i], piece, piece_capacity)
                             : sq_token_decoder_flush(&decoder, piece, piece_capacity);
        if (used + n > size) {
            fuzz_fail("SPM decode(encode(text)) is longer than the text", "");
        }
        memcpy(text + used, piece, n);
        used += n;
    }
    if (used != size || memcmp(text, data, size) != 0) {
        fuzz_fail("SPM decode(encode(text)) differs from the text", "");
    }
    free(piece);
    free(text);
    free(ids);
    return 0;
}
