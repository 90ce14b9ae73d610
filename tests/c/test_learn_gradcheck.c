/* Gradient check of the rotation-learning backward pass on stories260K. The model has dim 64,
 * head_dim 8, 5 layers and 8 query heads over 4 KV heads, and its hidden size 172 makes R4 the
 * dense fallback. dL/dR1 and dL/dR2 from the hand-written backward pass must match central
 * finite differences of the double-precision loss along random directions. The quantizers are
 * either identities (16 bits), so the loss is smooth, or 4-bit ones replaced by their
 * straight-through surrogate (x + the error recorded at the expansion point). Also checks that the tangent part of the
 * gradient vanishes without quantizers, and the training forward pass against the evaluation
 * pipeline (sq_recipe_apply and sq_forward), which is separate code, also with 4-bit weights
 * in groups of 4 columns (4 divides the input widths 64 and 172). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/perplexity.h"
#include "formats/formats.h"
#include "forward/forward.h"
#include "learn/learn_network.h"
#include "linalg/rng.h"
#include "tokenizer/tokenizer.h"
#include "pipeline/recipe.h"
#include "test_util.h"

#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_TOKENIZER "models/stories260K/tok512.bin"
#define WINDOW 20
#define SEED 7

typedef struct rotations {
    double *r1; /* (dim, dim) */
    double *r2; /* (n_layers, head_dim, head_dim) */
    int64_t r1_count;
    int64_t r2_count;
} rotations;

static int load_prepared(sq_model *model, int mode_had) {
    sq_error err = {0};
    memset(model, 0, sizeof(*model));
    if (sq_model_load(STORIES_BIN, STORIES_TOKENIZER, NULL, model, &err) != SQ_OK) {
        fprintf(stderr, "cannot load %s: %s\n", STORIES_BIN, err.message);
        return 0;
    }
    if (sq_learn_prepare_model(model, mode_had, SEED, NULL, &err) != SQ_OK) {
        fprintf(stderr, "preparing the model failed: %s\n", err.message);
        return 0;
    }
    return 1;
}

/* Random Hadamard R1 and R2 from the recipe, widened to double. */
static rotations hadamard_rotations(const sq_config *c, int mode_had) {
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.seed = SEED;
    recipe.mode_had = mode_had;
    sq_rotation_set set = {0};
    sq_error err = {0};
    rotations r = {0};
    r.r1_count = (int64_t)c->dim * c->dim;
    r.r2_count = (int64_t)c->n_layers * c->head_dim * c->head_dim;
    r.r1 = malloc((size_t)r.r1_count * sizeof(double));
    r.r2 = malloc((size_t)r.r2_count * sizeof(double));
    if (sq_recipe_build_rotations(&recipe, c, &set, &err) != SQ_OK) {
        fprintf(stderr, "building the Hadamard rotations failed: %s\n", err.message);
        exit(1);
    }
    for (int64_t i = 0; i < r.r1_count; i++) {
        r.r1[i] = set.r1[i];
    }
    for (int64_t i = 0; i < r.r2_count; i++) {
        r.r2[i] = set.r2[i];
    }
    sq_rotation_set_free(&set);
    return r;
}

static void free_rotations(rotations *r) {
    free(r->r1);
    free(r->r2);
}

/* The first WINDOW tokens of a short story, so the loss is in the model's usual range. */
static void story_tokens(const sq_model *model, int32_t *tokens) {
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                       "sun with her dog. One day, she saw a big red ball in the park.";
    int32_t *ids = NULL;
    size_t count = 0;
    sq_error err = {0};
    if (sq_tokenizer_encode(model->tokenizer, text, strlen(text), -1, 0, &ids, &count, &err) != SQ_OK ||
        count < WINDOW) {
        fprintf(stderr, "tokenizing the story failed: %s\n", err.message);
        exit(1);
    }
    memcpy(tokens, ids, WINDOW * sizeof(int32_t));
    free(ids);
}

static double loss_at(sq_learn_network *net, const int32_t *tokens, const rotations *r) {
    sq_error err = {0};
    double loss = NAN;
    if (sq_learn_network_loss(net, tokens, WINDOW, r->r1, r->r2, &loss, NULL, NULL, &err) != SQ_OK) {
        fprintf(stderr, "loss failed: %s\n", err.message);
    }
    return loss;
}

/* Compares the directional derivative ⟨G, U⟩ with the central difference along U, where U is
 * Gaussian on R1 (when use_r1) and on the R2 of layer r2_layer (-1: every layer, -2: none),
 * scaled to unit Frobenius norm. */
static void check_direction(sq_learn_network *net, const sq_config *c, const int32_t *tokens, const rotations *at,
                            const double *g1, const double *g2, int use_r1, int r2_layer, uint64_t seed,
                            const char *label) {
    int64_t r2_size = (int64_t)c->head_dim * c->head_dim;
    rotations plus = {malloc((size_t)at->r1_count * sizeof(double)), malloc((size_t)at->r2_count * sizeof(double)),
                      at->r1_count, at->r2_count};
    rotations minus = {malloc((size_t)at->r1_count * sizeof(double)), malloc((size_t)at->r2_count * sizeof(double)),
                       at->r1_count, at->r2_count};
    double *u1 = calloc((size_t)at->r1_count, sizeof(double));
    double *u2 = calloc((size_t)at->r2_count, sizeof(double));
    sq_rng rng;
    sq_rng_seed(&rng, seed);
    if (use_r1) {
        for (int64_t i = 0; i < at->r1_count; i++) {
            u1[i] = sq_rng_gaussian(&rng);
        }
    }
    for (int64_t i = 0; i < at->r2_count; i++) {
        int64_t layer = i / r2_size;
        if (r2_layer == -1 || r2_layer == layer) {
            u2[i] = sq_rng_gaussian(&rng);
        }
    }

    double norm = 0.0;
    for (int64_t i = 0; i < at->r1_count; i++) {
        norm += u1[i] * u1[i];
    }
    for (int64_t i = 0; i < at->r2_count; i++) {
        norm += u2[i] * u2[i];
    }
    norm = sqrt(norm);
    for (int64_t i = 0; i < at->r1_count; i++) {
        u1[i] /= norm;
    }
    for (int64_t i = 0; i < at->r2_count; i++) {
        u2[i] /= norm;
    }

    double analytic = 0.0;
    for (int64_t i = 0; i < at->r1_count; i++) {
        analytic += g1[i] * u1[i];
    }
    for (int64_t i = 0; i < at->r2_count; i++) {
        analytic += g2[i] * u2[i];
    }

    const double h = 1e-4;
    for (int64_t i = 0; i < at->r1_count; i++) {
        plus.r1[i] = at->r1[i] + h * u1[i];
        minus.r1[i] = at->r1[i] - h * u1[i];
    }
    for (int64_t i = 0; i < at->r2_count; i++) {
        plus.r2[i] = at->r2[i] + h * u2[i];
        minus.r2[i] = at->r2[i] - h * u2[i];
    }
    double numeric = (loss_at(net, tokens, &plus) - loss_at(net, tokens, &minus)) / (2.0 * h);
    double relative = fabs(analytic - numeric) / fmax(fabs(numeric), 1e-12);
    fprintf(stderr, "  %-28s analytic %+.10e numeric %+.10e relative error %.2e\n", label, analytic, numeric, relative);
    CHECK_MSG(relative < 1e-4, "%s: analytic %.10e, central difference %.10e", label, analytic, numeric);
    CHECK_MSG(fabs(numeric) > 1e-4, "%s: the direction barely changes the loss (%.3e)", label, numeric);

    free(plus.r1);
    free(plus.r2);
    free(minus.r1);
    free(minus.r2);
    free(u1);
    free(u2);
}

static void run_gradcheck(int mode_had, int materialize) {
    sq_model model;
    if (!load_prepared(&model, mode_had)) {
        CHECK(0);
        return;
    }
    const sq_config *c = &model.config;
    sq_learn_settings settings = sq_learn_settings_default();
    settings.w_bits = 16;
    settings.a_bits = 16;
    settings.kv_bits = 16;
    settings.mode_had = mode_had;
    settings.online_seed = SEED;
    settings.materialize_weights = materialize;
    sq_learn_network *net = NULL;
    sq_error err = {0};
    sq_status status = sq_learn_network_create(&model, &settings, WINDOW, NULL, NULL, &net, &err);
    CHECK_MSG(status == SQ_OK, "create: %s", err.message);
    if (status != SQ_OK) {
        sq_model_free(&model);
        return;
    }

    int32_t tokens[WINDOW];
    story_tokens(&model, tokens);
    rotations at = hadamard_rotations(c, mode_had);
    double *g1 = malloc((size_t)at.r1_count * sizeof(double));
    double *g2 = malloc((size_t)at.r2_count * sizeof(double));
    double loss = 0.0;
    status = sq_learn_network_loss(net, tokens, WINDOW, at.r1, at.r2, &loss, g1, g2, &err);
    CHECK_MSG(status == SQ_OK, "loss and gradient: %s", err.message);
    CHECK_MSG(loss > 0.01 && loss < 5.0, "loss %g outside the range of a trained model on a story", loss);

    check_direction(net, c, tokens, &at, g1, g2, 1, -2, 101, "R1 only");
    check_direction(net, c, tokens, &at, g1, g2, 0, -1, 102, "R2 of every layer");
    check_direction(net, c, tokens, &at, g1, g2, 0, 0, 103, "R2 of layer 0");
    check_direction(net, c, tokens, &at, g1, g2, 0, c->n_layers - 1, 104, "R2 of the last layer");
    check_direction(net, c, tokens, &at, g1, g2, 1, -1, 105, "R1 and every R2");

    free(g1);
    free(g2);
    free_rotations(&at);
    sq_learn_network_free(net);
    sq_model_free(&model);
}

static void test_gradcheck_had(void) {
    run_gradcheck(1, 0);
}

static void test_gradcheck_nohad(void) {
    run_gradcheck(0, 0);
}

static void test_gradcheck_had_effective_weights(void) {
    run_gradcheck(1, 1);
}

static void test_gradcheck_nohad_effective_weights(void) {
    run_gradcheck(0, 1);
}

/* With the quantizers active, the loss with every quantizer replaced by x + (its error recorded
 * at the Hadamard rotations) is smooth, and its gradient there is the straight-through
 * gradient, which the backward pass must reproduce. With scale_gradient the activation and KV
 * quantizers become x + s(x)·ε with ε recorded, and the gradient gains the scale term. */
static void run_straight_through_check(int w_bits, int w_group, int a_bits, int kv_bits, int mode_had,
                                       int scale_gradient) {
    sq_model model;
    if (!load_prepared(&model, mode_had)) {
        CHECK(0);
        return;
    }
    const sq_config *c = &model.config;
    sq_learn_settings settings = sq_learn_settings_default();
    settings.w_bits = w_bits;
    settings.w_group = w_group;
    settings.a_bits = a_bits;
    settings.kv_bits = kv_bits;
    settings.mode_had = mode_had;
    settings.online_seed = SEED;
    settings.scale_gradient = scale_gradient;
    sq_learn_network *net = NULL;
    sq_error err = {0};
    if (sq_learn_network_create(&model, &settings, WINDOW, NULL, NULL, &net, &err) != SQ_OK) {
        CHECK_MSG(0, "create: %s", err.message);
        sq_model_free(&model);
        return;
    }
    int32_t tokens[WINDOW];
    story_tokens(&model, tokens);
    rotations at = hadamard_rotations(c, mode_had);
    double *g1 = malloc((size_t)at.r1_count * sizeof(double));
    double *g2 = malloc((size_t)at.r2_count * sizeof(double));
    double quantized_loss = 0.0;
    CHECK(sq_learn_network_set_noise_mode(net, SQ_LEARN_NOISE_RECORD, &err) == SQ_OK);
    CHECK(sq_learn_network_loss(net, tokens, WINDOW, at.r1, at.r2, &quantized_loss, g1, g2, &err) == SQ_OK);
    CHECK(sq_learn_network_set_noise_mode(net, SQ_LEARN_NOISE_REPLAY, &err) == SQ_OK);
    double replayed = loss_at(net, tokens, &at);
    double plain = 0.0;
    CHECK(sq_learn_network_set_noise_mode(net, SQ_LEARN_NOISE_OFF, &err) == SQ_OK);
    plain = loss_at(net, tokens, &at);
    CHECK(sq_learn_network_set_noise_mode(net, SQ_LEARN_NOISE_REPLAY, &err) == SQ_OK);
    CHECK_CLOSE(replayed, quantized_loss, 1e-12);
    CHECK_CLOSE(plain, quantized_loss, 1e-15);

    /* The scale-term checks draw their own directions, because direction 204 is nearly flat there. */
    uint64_t seed = scale_gradient ? 300 : 200;
    check_direction(net, c, tokens, &at, g1, g2, 1, -2, seed + 1, "R1 only");
    check_direction(net, c, tokens, &at, g1, g2, 0, -1, seed + 2, "R2 of every layer");
    check_direction(net, c, tokens, &at, g1, g2, 0, 2, seed + 3, "R2 of layer 2");
    check_direction(net, c, tokens, &at, g1, g2, 1, -1, seed + 4, "R1 and every R2");

    free(g1);
    free(g2);
    free_rotations(&at);
    sq_learn_network_free(net);
    sq_model_free(&model);
}

static void test_straight_through_w16a4kv4_had(void) {
    run_straight_through_check(16, 0, 4, 4, 1, 0);
}

static void test_straight_through_w16a4kv4_nohad(void) {
    run_straight_through_check(16, 0, 4, 4, 0, 0);
}

static void test_straight_through_w4a4kv4_had(void) {
    run_straight_through_check(4, 0, 4, 4, 1, 0);
}

static void test_straight_through_w4_group4_had(void) {
    run_straight_through_check(4, 4, 4, 4, 1, 0);
}

/* The scale term is checked with activations and KV quantized separately: at A4KV4 the first
 * token's attention output is its quantized value, whose tied maxima put the surrogate
 * x + s(x)·ε on a kink that central differences cannot resolve. */
static void test_scale_gradient_a4_had(void) {
    run_straight_through_check(16, 0, 4, 16, 1, 1);
}

static void test_scale_gradient_a4_nohad(void) {
    run_straight_through_check(16, 0, 4, 16, 0, 1);
}

static void test_scale_gradient_kv4_had(void) {
    run_straight_through_check(16, 0, 16, 4, 1, 1);
}

static void test_scale_gradient_kv4_nohad(void) {
    run_straight_through_check(16, 0, 16, 4, 0, 1);
}

static void test_scale_gradient_w4a4kv16_had(void) {
    run_straight_through_check(4, 0, 4, 16, 1, 1);
}

/* Without quantizers the loss does not change along the orthogonal group, so the tangent part
 * A = ½·(RᵀG − GᵀR) of the gradient vanishes while G itself does not. */
static void test_invariance_without_quantizers(void) {
    sq_model model;
    if (!load_prepared(&model, 1)) {
        CHECK(0);
        return;
    }
    const sq_config *c = &model.config;
    sq_learn_settings settings = sq_learn_settings_default();
    settings.a_bits = 16;
    settings.kv_bits = 16;
    settings.online_seed = SEED;
    sq_learn_network *net = NULL;
    sq_error err = {0};
    CHECK(sq_learn_network_create(&model, &settings, WINDOW, NULL, NULL, &net, &err) == SQ_OK);
    int32_t tokens[WINDOW];
    story_tokens(&model, tokens);
    rotations at = hadamard_rotations(c, 1);
    double *g1 = malloc((size_t)at.r1_count * sizeof(double));
    double *g2 = malloc((size_t)at.r2_count * sizeof(double));
    double loss = 0.0;
    CHECK(sq_learn_network_loss(net, tokens, WINDOW, at.r1, at.r2, &loss, g1, g2, &err) == SQ_OK);

    int n = c->dim;
    double gradient_norm = 0.0;
    double tangent_norm = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double rtg_ij = 0.0;
            double rtg_ji = 0.0;
            for (int k = 0; k < n; k++) {
                rtg_ij += at.r1[k * n + i] * g1[k * n + j];
                rtg_ji += at.r1[k * n + j] * g1[k * n + i];
            }
            tangent_norm += 0.25 * (rtg_ij - rtg_ji) * (rtg_ij - rtg_ji);
            gradient_norm += g1[i * n + j] * g1[i * n + j];
        }
    }
    fprintf(stderr, "  ‖dL/dR1‖ %.3e, its tangent part %.3e\n", sqrt(gradient_norm), sqrt(tangent_norm));
    CHECK(sqrt(gradient_norm) > 1e-2);
    CHECK_MSG(sqrt(tangent_norm) < 1e-6 * sqrt(gradient_norm), "tangent part %.3e of %.3e", sqrt(tangent_norm),
              sqrt(gradient_norm));
    free(g1);
    free(g2);
    free_rotations(&at);
    sq_learn_network_free(net);
    sq_model_free(&model);
}

/* Mean NLL of the window by the evaluation pipeline: recipe with the given rotations written
 * to a rotation file, then sq_forward over the window. */
static double pipeline_loss(const rotations *r, const int32_t *tokens, int w_bits, int w_group, int a_bits,
                            int kv_bits, int mode_had) {
    sq_error err = {0};
    sq_model model = {0};
    if (sq_model_load(STORIES_BIN, STORIES_TOKENIZER, NULL, &model, &err) != SQ_OK) {
        return NAN;
    }
    sq_rotation_set set = {0};
    sq_rotation_set_alloc(&set, &model.config, &err);
    for (int64_t i = 0; i < r->r1_count; i++) {
        set.r1[i] = (float)r->r1[i];
    }
    for (int64_t i = 0; i < r->r2_count; i++) {
        set.r2[i] = (float)r->r2[i];
    }
    set.mode_had = mode_had;
    set.online_seed = SEED;
    char directory[] = "/tmp/sq_test_learn_gradcheck_XXXXXX";
    if (mkdtemp(directory) == NULL) {
        sq_rotation_set_free(&set);
        sq_model_free(&model);
        return NAN;
    }
    char path[64];
    snprintf(path, sizeof(path), "%s/window.rot", directory);
    sq_rotation_set_save(&set, path, &err);
    sq_rotation_set_free(&set);

    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = SQ_ROTATION_FILE;
    recipe.rotation_path = path;
    recipe.mode_had = mode_had;
    recipe.w_bits = w_bits;
    recipe.w_group = w_group;
    recipe.a_bits = a_bits;
    recipe.kv_bits = kv_bits;
    sq_online online = {0};
    sq_run_state *state = NULL;
    double mean = NAN;
    if (sq_recipe_apply(&recipe, &model, NULL, NULL, &online, &err) == SQ_OK &&
        sq_run_state_create(&model, WINDOW, WINDOW, NULL, &state, &err) == SQ_OK) {
        state->hooks = sq_online_hooks(&online);
        if (sq_forward(state, tokens, WINDOW, 0, SQ_LOGITS_ALL, &err) == SQ_OK) {
            double sum = 0.0;
            for (int32_t t = 0; t + 1 < WINDOW; t++) {
                sum += sq_negative_log_likelihood(state->logits + (int64_t)t * model.config.vocab_size,
                                                  model.config.vocab_size, tokens[t + 1]);
            }
            mean = sum / (WINDOW - 1);
        }
    }
    remove(path);
    rmdir(directory);
    sq_run_state_free(state);
    sq_online_free(&online);
    sq_model_free(&model);
    return mean;
}

static double learn_loss(const rotations *r, const int32_t *tokens, int w_bits, int w_group, int a_bits, int kv_bits,
                         int mode_had) {
    sq_model model;
    if (!load_prepared(&model, mode_had)) {
        return NAN;
    }
    sq_learn_settings settings = sq_learn_settings_default();
    settings.w_bits = w_bits;
    settings.w_group = w_group;
    settings.a_bits = a_bits;
    settings.kv_bits = kv_bits;
    settings.mode_had = mode_had;
    settings.online_seed = SEED;
    sq_learn_network *net = NULL;
    sq_error err = {0};
    double loss = NAN;
    if (sq_learn_network_create(&model, &settings, WINDOW, NULL, NULL, &net, &err) == SQ_OK) {
        loss = loss_at(net, tokens, r);
    }
    sq_learn_network_free(net);
    sq_model_free(&model);
    return loss;
}

static void check_against_pipeline(int w_bits, int w_group, int a_bits, int kv_bits, int mode_had, double tolerance) {
    sq_model model = {0};
    sq_error err = {0};
    if (sq_model_load(STORIES_BIN, STORIES_TOKENIZER, NULL, &model, &err) != SQ_OK) {
        CHECK(0);
        return;
    }
    int32_t tokens[WINDOW];
    story_tokens(&model, tokens);
    rotations r = hadamard_rotations(&model.config, mode_had);
    sq_model_free(&model);

    double expected = pipeline_loss(&r, tokens, w_bits, w_group, a_bits, kv_bits, mode_had);
    double actual = learn_loss(&r, tokens, w_bits, w_group, a_bits, kv_bits, mode_had);
    fprintf(stderr, "  W%d (group %d) A%d KV%d %s: training loss %.9f, evaluation pipeline %.9f\n", w_bits, w_group,
            a_bits, kv_bits, mode_had ? "had" : "nohad", actual, expected);
    CHECK_MSG(fabs(actual - expected) <= tolerance * expected, "W%d group %d A%d KV%d mode %d: %.9f vs %.9f", w_bits,
              w_group, a_bits, kv_bits, mode_had, actual, expected);
    free_rotations(&r);
}

/* Without quantizers only float rounding separates the two; with them a few rounding
 * decisions can flip, so the tolerance is looser. */
static void test_forward_matches_pipeline(void) {
    check_against_pipeline(16, 0, 16, 16, 1, 1e-5);
    check_against_pipeline(16, 0, 16, 16, 0, 1e-5);
    check_against_pipeline(16, 0, 4, 4, 1, 2e-3);
    check_against_pipeline(16, 0, 4, 4, 0, 2e-3);
    check_against_pipeline(4, 0, 4, 4, 1, 2e-3);
    check_against_pipeline(4, 4, 4, 4, 1, 2e-3);
    check_against_pipeline(4, 4, 16, 16, 0, 2e-3);
}

int main(void) {
    RUN_TEST(test_gradcheck_had);
    RUN_TEST(test_gradcheck_nohad);
    RUN_TEST(test_gradcheck_had_effective_weights);
    RUN_TEST(test_gradcheck_nohad_effective_weights);
    RUN_TEST(test_straight_through_w16a4kv4_had);
    RUN_TEST(test_straight_through_w16a4kv4_nohad);
    RUN_TEST(test_straight_through_w4a4kv4_had);
    RUN_TEST(test_straight_through_w4_group4_had);
    RUN_TEST(test_scale_gradient_a4_had);
    RUN_TEST(test_scale_gradient_a4_nohad);
    RUN_TEST(test_scale_gradient_kv4_had);
    RUN_TEST(test_scale_gradient_kv4_nohad);
    RUN_TEST(test_scale_gradient_w4a4kv16_had);
    RUN_TEST(test_invariance_without_quantizers);
    RUN_TEST(test_forward_matches_pipeline);
    TEST_MAIN_END();
}
