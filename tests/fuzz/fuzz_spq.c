/* libFuzzer harness: both .spq readers on the same bytes, after every locatable CRC-32 has been
 * recomputed (fuzz_fix_spq_crcs) so that mutations reach the code behind the checksums:
 *   - the whole-file reader, sq_spq_read_buffer, on a 64-byte aligned copy;
 *   - the streaming reader, fed in chunks of pseudo-random sizes (0 to 4096 bytes, derived from
 *     a hash of the input so that a crash reproduces), once with the input's length given
 *     (sq_spq_stream_set_total_size) and once without it.
 * The readers must agree: a file one accepts the others accept too, with the same
 * configuration, settings and embedding bytes. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "spq/spq_reader.h"

#define MAX_DECLARED_BYTES ((uint64_t)64 << 20)

static uint64_t hash_bytes(const uint8_t *data, size_t size) {
    uint64_t hash = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < size; i++) {
        hash = (hash ^ data[i]) * 0x100000001B3ull;
    }
    return hash | 1;
}

static size_t next_chunk(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    uint64_t r = *state >> 16;
    return (r & 3) == 0 ? (size_t)(r >> 2) % 4097 : (size_t)(r >> 2) % 97;
}

/* Streams the input; total_size is the length given to the reader, 0 for none. */
static sq_status read_streamed(const uint8_t *data, size_t size, uint64_t total_size, sq_spq_model *model) {
    sq_spq_stream *stream = NULL;
    sq_error err;
    sq_status status = sq_spq_stream_create(&stream, &err);
    if (status == SQ_OK) {
        status = sq_spq_stream_set_total_size(stream, total_size, &err);
    }
    if (status != SQ_OK) {
        fuzz_fail("cannot create a stream reader", err.message);
    }

    uint64_t state = hash_bytes(data, size);
    size_t offset = 0;
    while (status == SQ_OK && offset < size) {
        size_t n = next_chunk(&state);
        n = n < size - offset ? n : size - offset;
        status = sq_spq_stream_feed(stream, data + offset, n, &err);
        offset += n;
        if (status == SQ_OK && sq_spq_stream_bytes_received(stream) != offset) {
            fuzz_fail("the stream reader counts the bytes received wrongly", "");
        }
    }

    if (status == SQ_OK) {
        status = sq_spq_stream_feed(stream, data, 0, &err);
    }
    if (status == SQ_OK) {
        status = sq_spq_stream_finish(stream, model, &err);
    } else {
        if (sq_spq_stream_failure(stream) == NULL) {
            fuzz_fail("a failed stream reports no failure place", err.message);
        }
        /* Every call after a failure returns the same error. */
        sq_error again;
        if (sq_spq_stream_feed(stream, data, size > 8 ? 8 : size, &again) != status) {
            fuzz_fail("a failed stream accepted more bytes", again.message);
        }
    }
    fuzz_check_failure(status, &err);
    sq_spq_stream_free(stream);
    return status;
}

static size_t table_bytes(const sq_spq_table *table) {
    size_t element = table->dtype == SQ_SPQ_DTYPE_I8 ? 1 : 2;
    return (size_t)table->rows * (size_t)table->cols * element;
}

static void compare_models(const sq_spq_model *a, const sq_spq_model *b) {
    if (memcmp(&a->config, &b->config, sizeof(a->config)) != 0) {
        fuzz_fail("the readers disagree on the configuration", "");
    }
    const sq_spq_settings *x = &a->settings, *y = &b->settings;
    if (x->w_bits != y->w_bits || x->w_group != y->w_group || x->a_bits != y->a_bits || x->kv_bits != y->kv_bits ||
        x->embed_bits != y->embed_bits || x->mode_had != y->mode_had || x->online_seed != y->online_seed ||
        a->classifier_kind != b->classifier_kind) {
        fuzz_fail("the readers disagree on the settings", "");
    }
    if (a->embedding.dtype != b->embedding.dtype || a->embedding.rows != b->embedding.rows ||
        a->embedding.cols != b->embedding.cols ||
        memcmp(a->embedding.data, b->embedding.data, table_bytes(&a->embedding)) != 0) {
        fuzz_fail("the readers disagree on the embedding", "");
    }
    if (sq_tokenizer_vocab_size(a->tokenizer) != sq_tokenizer_vocab_size(b->tokenizer)) {
        fuzz_fail("the readers disagree on the tokenizer", "");
    }
}

/* Fails unless the whole-file reader and a stream reader (named by which) agree, and frees the
 * streamed model. */
static void compare_outcomes(sq_status whole_status, const sq_spq_model *whole, sq_status stream_status,
                             sq_spq_model *streamed, const char *which) {
    if ((whole_status == SQ_OK) != (stream_status == SQ_OK)) {
        fuzz_fail(whole_status == SQ_OK ? "only the whole-file reader accepted the file"
                                        : "the whole-file reader rejected a file that a stream reader accepted",
                  which);
    }
    if (stream_status == SQ_OK) {
        compare_models(whole, streamed);
        sq_spq_model_free(streamed);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t allocated = (size + 63) / 64 * 64;
    uint8_t *bytes = aligned_alloc(64, allocated > 0 ? allocated : 64);
    if (bytes == NULL) {
        fuzz_fail("out of memory", "input copy");
    }
    memcpy(bytes, data, size);
    fuzz_fix_spq_crcs(bytes, size);

    sq_spq_model whole;
    sq_spq_failure failure;
    sq_error err;
    sq_status whole_status = sq_spq_read_buffer(bytes, size, 0, &whole, &failure, &err);
    fuzz_check_failure(whole_status, &err);

    /* With the input's length given, the stream reader allocates at most what the input holds. */
    sq_spq_model streamed;
    memset(&streamed, 0, sizeof(streamed));
    sq_status stream_status = read_streamed(bytes, size, size, &streamed);
    compare_outcomes(whole_status, &whole, stream_status, &streamed, "the stream reader with the length");

    /* Without the length, the stream reader allocates the tensor storage the metadata implies
     * once it is no larger than the file size the header declares, because such a stream
     * reveals its real length only at the end. A header that declares far more than the input
     * therefore makes it allocate that much, which the harness's memory limit would report: such
     * inputs skip this reader. */
    uint64_t declared_size = size >= 32 ? fuzz_load_le64(bytes + 24) : 0;
    if (declared_size > size && declared_size > MAX_DECLARED_BYTES) {
        if (whole_status == SQ_OK) {
            fuzz_fail("the whole-file reader accepted a file shorter than its header declares", "");
        }
    } else {
        memset(&streamed, 0, sizeof(streamed));
        stream_status = read_streamed(bytes, size, 0, &streamed);
        compare_outcomes(whole_status, &whole, stream_status, &streamed, "the stream reader without the length");
    }

    if (whole_status == SQ_OK) {
        sq_spq_model_free(&whole);
    }
    free(bytes);
    return 0;
}
