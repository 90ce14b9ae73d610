/* Compares the fp32 forward pass with logits computed by independent implementations:
 * the llama2.c reference program for stories260K and PyTorch transformers (float32) for
 * SmolLM2-135M-Instruct, both stored as JSON beside the test data. */
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "formats/formats.h"
#include "formats/json.h"
#include "forward/forward.h"
#include "test_util.h"

static sq_json_value *read_json(const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    sq_error err = {0};
    if (sq_io_read_file(path, &data, &size, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
        return NULL;
    }
    sq_json_value *root = NULL;
    if (sq_json_parse((const char *)data, size, &root, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
    }
    free(data);
    return root;
}

/* Runs tokens through the model in one batch and returns the run state holding all logits. */
static sq_run_state *run_prompt(const sq_model *model, const int32_t *tokens, int32_t n) {
    sq_run_state *state = NULL;
    sq_error err = {0};
    if (sq_run_state_create(model, n, n, NULL, &state, &err) != SQ_OK ||
        sq_forward(state, tokens, n, 0, SQ_LOGITS_ALL, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
        sq_run_state_free(state);
        return NULL;
    }
    return state;
}

static void test_stories260k_first_window_logits(void) {
    sq_json_value *ref = read_json("../shared/reference/stories260K-tinystories-40k-eval.json");
    CHECK(ref != NULL);
    if (ref == NULL) {
        return;
    }
    sq_model model = {0};
    sq_error err = {0};
    CHECK(sq_model_load("models/stories260K/stories260K.bin", "models/stories260K/tok512.bin", NULL, &model, &err) ==
          SQ_OK);

    const sq_json_value *first_tokens = sq_json_get(ref, "first_tokens");
    const sq_json_value *logits = sq_json_get(ref, "first_window_logits");
    CHECK(first_tokens != NULL);
    CHECK(logits != NULL);
    CHECK(logits == NULL || logits->length == 8);
    if (model.layers != NULL && first_tokens != NULL && logits != NULL) {
        int32_t tokens[8];
        for (int i = 0; i < 8; i++) {
            tokens[i] = (int32_t)first_tokens->items[i].integer;
        }
        sq_run_state *state = run_prompt(&model, tokens, 8);
        CHECK(state != NULL);
        double worst = 0.0;
        for (int p = 0; state != NULL && p < 8; p++) {
            const sq_json_value *row = &logits->items[p];
            CHECK(row->length == (size_t)model.config.vocab_size);
            for (size_t v = 0; v < row->length; v++) {
                double diff = fabs(state->logits[(size_t)p * row->length + v] - row->items[v].number);
                worst = diff > worst ? diff : worst;
            }
        }
        /* The reference logits are printed with five decimals. */
        CHECK_MSG(worst < 2e-4, "largest logit difference %g", worst);
        sq_run_state_free(state);
    }
    sq_model_free(&model);
    sq_json_free(ref);
}

static void test_smollm2_prompt_logits(void) {
    sq_json_value *ref = read_json("tests/reference/smollm2-reference.json");
    CHECK(ref != NULL);
    if (ref == NULL) {
        return;
    }
    sq_model model = {0};
    sq_error err = {0};
    CHECK(sq_model_load("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", NULL, NULL, &model, &err) == SQ_OK);

    const sq_json_value *logits = sq_json_get(ref, "logits");
    const sq_json_value *prompt = sq_json_get(logits, "prompt");
    const sq_json_value *ids = sq_json_get(logits, "ids");
    const sq_json_value *positions = sq_json_get(logits, "positions");
    CHECK(prompt != NULL);
    CHECK(ids != NULL);
    CHECK(positions != NULL);
    if (model.tokenizer == NULL || prompt == NULL || ids == NULL || positions == NULL) {
        sq_model_free(&model);
        sq_json_free(ref);
        return;
    }

    int32_t *tokens = NULL;
    size_t count = 0;
    CHECK(sq_tokenizer_encode(model.tokenizer, prompt->string, prompt->length, -1, 1, &tokens, &count, &err) == SQ_OK);
    CHECK(count == ids->length);
    for (size_t i = 0; i < count && i < ids->length; i++) {
        CHECK(tokens[i] == ids->items[i].integer);
    }

    sq_run_state *state = run_prompt(&model, tokens, (int32_t)count);
    CHECK(state != NULL);
    double worst = 0.0;
    int32_t vocab = model.config.vocab_size;
    for (size_t p = 0; state != NULL && p < positions->length; p++) {
        const sq_json_value *row = &positions->items[p];
        const float *ours = state->logits + p * (size_t)vocab;
        const sq_json_value *top_ids = sq_json_get(row, "top10_ids");
        const sq_json_value *top_logits = sq_json_get(row, "top10_logits");
        const sq_json_value *low = sq_json_get(row, "logits_0_31");
        for (size_t k = 0; k < top_ids->length; k++) {
            double expected = top_logits->items[k].number;
            double diff = fabs(ours[top_ids->items[k].integer] - expected) / fmax(1.0, fabs(expected));
            worst = diff > worst ? diff : worst;
        }
        for (size_t k = 0; k < low->length; k++) {
            double expected = low->items[k].number;
            double diff = fabs(ours[k] - expected) / fmax(1.0, fabs(expected));
            worst = diff > worst ? diff : worst;
        }
        int32_t best = 0;
        for (int32_t v = 1; v < vocab; v++) {
            best = ours[v] > ours[best] ? v : best;
        }
        CHECK_MSG(best == top_ids->items[0].integer, "position %zu: argmax %d, reference %lld", p, best,
                  (long long)top_ids->items[0].integer);
    }
    CHECK_MSG(worst < 1e-3, "largest relative logit difference %g", worst);

    sq_run_state_free(state);
    free(tokens);
    sq_model_free(&model);
    sq_json_free(ref);
}

int main(void) {
    RUN_TEST(test_stories260k_first_window_logits);
    RUN_TEST(test_smollm2_prompt_logits);
    TEST_MAIN_END();
}
