/* Acceptance test of the integer runtime on stories260K. The recipes are W4A8KV8 and W4A4KV4,
 * each with mode had and nohad, a random Hadamard rotation, RTN weights and an 8-bit embedding.
 * For each, the perplexity of the .spq model run by the integer runtime must equal the
 * fake-quant evaluator's (sq_recipe_apply plus the forward hooks) within 0.5 %. The .spq model
 * goes through the writer and the streaming reader. The test also checks that the runtime's
 * logits do not depend on the thread count. The text is the first windows of a TinyStories
 * sample (TEXT_PATH), 512 tokens per window. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "eval/perplexity.h"
#include "formats/formats.h"
#include "pipeline/recipe.h"
#include "runtime/rt_session.h"
#include "spq/spq_quantize.h"
#include "spq/spq_reader.h"
#include "spq/spq_writer.h"
#include "spq/tokenizer_access.h"
#include "test_util.h"

#define MODEL_PATH "models/stories260K/stories260K.bin"
#define TOKENIZER_PATH "models/stories260K/tok512.bin"
#define TEXT_PATH "../shared/reference/tinystories-40k.txt"
#define WINDOW 512
#define TOLERANCE 0.005

static sq_model source;
static int32_t *tokens;
static size_t n_tokens;
static sq_threadpool *pool;

static sq_recipe make_recipe(int a_bits, int kv_bits, int mode_had) {
    sq_recipe r = sq_recipe_default();
    r.w_bits = 4;
    r.a_bits = a_bits;
    r.kv_bits = kv_bits;
    r.embed_bits = 8;
    r.rotation = SQ_ROTATION_HADAMARD;
    r.mode_had = mode_had;
    return r;
}

static double fake_quant_ppl(const sq_recipe *recipe, int windows) {
    sq_model model = {0};
    sq_online online = {0};
    sq_run_state *state = NULL;
    sq_perplexity_result result = {0};
    sq_error err = {0};
    sq_status status = sq_model_clone(&source, &model, &err);
    if (status == SQ_OK) {
        status = sq_recipe_apply(recipe, &model, pool, NULL, &online, &err);
    }
    if (status == SQ_OK) {
        status = sq_run_state_create(&model, WINDOW, 64, pool, &state, &err);
    }
    if (status == SQ_OK) {
        state->hooks = sq_online_hooks(&online);
        status = sq_perplexity_evaluate(state, tokens, n_tokens, WINDOW, windows, NULL, NULL, &result, &err);
    }
    CHECK_MSG(status == SQ_OK, "fake-quant evaluation: %s", err.message);
    sq_run_state_free(state);
    sq_online_free(&online);
    sq_model_free(&model);
    return status == SQ_OK ? result.ppl : NAN;
}

/* Quantizes, serializes and streams the model back, in chunks of 1000 bytes. */
static sq_status make_runtime_model(const sq_recipe *recipe, sq_rt_model **out, sq_error *err) {
    sq_model model = {0};
    sq_spq_model spq = {0};
    sq_spq_build_report report;
    sq_spq_tokenizer_source tokenizer = {0};
    uint8_t *bytes = NULL;
    size_t size = 0;
    sq_spq_stream *stream = NULL;
    sq_status status = sq_model_clone(&source, &model, err);
    if (status == SQ_OK) {
        status = sq_spq_quantize_model(&model, recipe, pool, NULL, &spq, &report, err);
    }

    /* ---- write, then read back through the stream ---- */
    if (status == SQ_OK) {
        status = sq_spq_tokenizer_source_open(MODEL_PATH, TOKENIZER_PATH, source.config.vocab_size, &tokenizer, err);
    }
    if (status == SQ_OK) {
        status = sq_spq_serialize(&spq, &tokenizer.desc, &bytes, &size, err);
    }
    sq_spq_model_free(&spq);

    if (status == SQ_OK) {
        status = sq_spq_stream_create(&stream, err);
    }
    for (size_t at = 0; status == SQ_OK && at < size; at += 1000) {
        status = sq_spq_stream_feed(stream, bytes + at, size - at < 1000 ? size - at : 1000, err);
    }
    if (status == SQ_OK) {
        status = sq_spq_stream_finish(stream, &spq, err);
    }
    if (status == SQ_OK) {
        status = sq_rt_model_create(&spq, NULL, out, err);
    }
    sq_spq_stream_free(stream);
    free(bytes);
    sq_spq_tokenizer_source_close(&tokenizer);
    sq_model_free(&model);
    return status;
}

static double runtime_ppl(const sq_rt_model *model, sq_threadpool *threads, int windows) {
    sq_rt_session *session = NULL;
    sq_perplexity_result result = {0};
    sq_error err = {0};
    sq_status status = sq_rt_session_create(model, WINDOW, 64, threads, &session, &err);
    if (status == SQ_OK) {
        status = sq_rt_perplexity(session, tokens, n_tokens, WINDOW, windows, NULL, NULL, &result, &err);
    }
    CHECK_MSG(status == SQ_OK, "integer runtime: %s", err.message);
    sq_rt_session_free(session);
    return status == SQ_OK ? result.ppl : NAN;
}

static void compare(int a_bits, int kv_bits, int mode_had, int windows) {
    sq_recipe recipe = make_recipe(a_bits, kv_bits, mode_had);
    sq_rt_model *model = NULL;
    sq_error err = {0};
    sq_status status = make_runtime_model(&recipe, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status != SQ_OK) {
        return;
    }
    double fake = fake_quant_ppl(&recipe, windows);
    double integer = runtime_ppl(model, pool, windows);
    double relative = fabs(integer / fake - 1.0);
    fprintf(stderr, "W4A%dKV%d %s, %d windows: fake-quant %.6f, integer %.6f, difference %.3f %%\n", a_bits, kv_bits,
            mode_had ? "had" : "nohad", windows, fake, integer, 100.0 * relative);
    CHECK_MSG(relative < TOLERANCE, "W4A%dKV%d %s: perplexities %.6f and %.6f differ by %.3f %%", a_bits, kv_bits,
              mode_had ? "had" : "nohad", fake, integer, 100.0 * relative);
    sq_rt_model_free(model);
}

static void test_w4a8kv8_had(void) {
    compare(8, 8, 1, 8);
}

static void test_w4a8kv8_nohad(void) {
    compare(8, 8, 0, 8);
}

static void test_w4a4kv4_had(void) {
    compare(4, 4, 1, 12);
}

static void test_w4a4kv4_nohad(void) {
    compare(4, 4, 0, 12);
}

static void test_thread_count_invariance(void) {
    sq_recipe recipe = make_recipe(4, 4, 1);
    sq_rt_model *model = NULL;
    CHECK(make_runtime_model(&recipe, &model, NULL) == SQ_OK);
    if (model != NULL) {
        double serial = runtime_ppl(model, NULL, 1);
        double threaded = runtime_ppl(model, pool, 1);
        CHECK_MSG(serial == threaded, "1 thread: %.9f, 2 threads: %.9f", serial, threaded);
    }
    sq_rt_model_free(model);
}

int main(void) {
    sq_error err = {0};
    char *text = NULL;
    size_t length = 0;
    uint8_t *bytes = NULL;
    sq_status status = sq_model_load(MODEL_PATH, TOKENIZER_PATH, NULL, &source, &err);
    if (status == SQ_OK) {
        status = sq_io_read_file(TEXT_PATH, &bytes, &length, &err);
        text = (char *)bytes;
    }
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(source.tokenizer, text, length, -1, 0, &tokens, &n_tokens, &err);
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(2, &pool, &err);
    }
    if (status != SQ_OK) {
        CHECK_MSG(0, "setup failed: %s", err.message);
        TEST_MAIN_END();
    }
    RUN_TEST(test_w4a8kv8_had);
    RUN_TEST(test_w4a8kv8_nohad);
    RUN_TEST(test_w4a4kv4_had);
    RUN_TEST(test_w4a4kv4_nohad);
    RUN_TEST(test_thread_count_invariance);
    sq_threadpool_free(pool);
    free(tokens);
    free(text);
    sq_model_free(&source);
    TEST_MAIN_END();
}
