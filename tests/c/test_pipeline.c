/* Tests of the quantization pipeline: recipe validation (src/pipeline/recipe.c), the
 * fake-quantization forward hooks (src/pipeline/fake_quant.c) and model-wide GPTQ
 * (src/pipeline/gptq_model.c). Expected values come from the quantizer formulas (at most 2^b
 * levels per scale group, rounding error at most half a step) and from comparing GPTQ with
 * round-to-nearest on a tiny random model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forward/forward.h"
#include "model/model.h"
#include "pipeline/fake_quant.h"
#include "pipeline/gptq_model.h"
#include "pipeline/recipe.h"
#include "test_util.h"

/* ---- test data: SplitMix64 and Box-Muller, independent of the engine's generator ---- */

static uint64_t random_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double random_gaussian(uint64_t *state) {
    double u = 1.0 - (double)(random_next(state) >> 11) / 9007199254740992.0;
    double v = (double)(random_next(state) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void fill_gaussian(float *x, size_t count, double scale, uint64_t *state) {
    for (size_t i = 0; i < count; i++) {
        x[i] = (float)(scale * random_gaussian(state));
    }
}

static void fill_gain(float *x, size_t count, uint64_t *state) {
    for (size_t i = 0; i < count; i++) {
        x[i] = (float)(1.0 + 0.3 * random_gaussian(state));
    }
}

static sq_config make_config(int dim, int hidden, int head_dim, int n_heads, int n_kv_heads, int vocab) {
    sq_config c = {0};
    c.dim = dim;
    c.hidden_dim = hidden;
    c.n_layers = 2;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.vocab_size = vocab;
    c.context_length = 64;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    return c;
}

static int build_random_model(sq_model *model, const sq_config *c, uint64_t seed) {
    memset(model, 0, sizeof(*model));
    model->config = *c;
    sq_error err = {0};
    if (sq_model_alloc_weights(model, 0, &err) != SQ_OK) {
        fprintf(stderr, "sq_model_alloc_weights: %s\n", err.message);
        return 0;
    }
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t hidden = (size_t)c->hidden_dim;
    uint64_t state = seed;
    fill_gaussian(model->token_embedding, (size_t)c->vocab_size * dim, 1.0, &state);
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        fill_gain(w->attn_norm, dim, &state);
        fill_gaussian(w->wq, q_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wk, kv_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wv, kv_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wo, dim * q_dim, 1.0 / sqrt((double)q_dim), &state);
        fill_gain(w->ffn_norm, dim, &state);
        fill_gaussian(w->w_gate, hidden * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->w_up, hidden * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->w_down, dim * hidden, 1.0 / sqrt((double)hidden), &state);
    }
    fill_gain(model->final_norm, dim, &state);
    fill_gaussian(model->classifier, (size_t)c->vocab_size * dim, 1.0 / sqrt((double)dim), &state);
    return 1;
}

/* ---- recipe validation ---- */

static sq_status validate(const sq_recipe *recipe, const sq_config *c, sq_error *err) {
    sq_error_clear(err);
    return sq_recipe_validate(recipe, c, err);
}

static void test_recipe_validate_bit_widths(void) {
    sq_config c = make_config(16, 24, 4, 4, 2, 32);
    sq_error err = {0};
    sq_recipe r = sq_recipe_default();
    CHECK(validate(&r, &c, &err) == SQ_OK);

    int *fields[3] = {&r.w_bits, &r.a_bits, &r.kv_bits};
    const char *names[3] = {"w-bits", "a-bits", "kv-bits"};
    for (int f = 0; f < 3; f++) {
        static const int invalid[] = {1, 17, 0, -4};
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
            r = sq_recipe_default();
            *fields[f] = invalid[i];
            CHECK_MSG(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG, "%s %d accepted", names[f], invalid[i]);
            char value[16];
            snprintf(value, sizeof(value), "%d", invalid[i]);
            CHECK_MSG(strstr(err.message, value) != NULL && strstr(err.message, names[f]) != NULL, "message: %s",
                      err.message);
        }
        static const int valid[] = {2, 3, 4, 8, 16};
        for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
            r = sq_recipe_default();
            *fields[f] = valid[i];
            CHECK_MSG(validate(&r, &c, &err) == SQ_OK, "%s %d rejected: %s", names[f], valid[i], err.message);
        }
    }

    r = sq_recipe_default();
    r.embed_bits = 4;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.embed_bits = 8;
    CHECK(validate(&r, &c, &err) == SQ_OK);
}

static void test_recipe_validate_groups_and_clips(void) {
    /* Input widths: dim 16, q_dim 16, hidden 24. */
    sq_config c = make_config(16, 24, 4, 4, 2, 32);
    sq_error err = {0};
    sq_recipe r = sq_recipe_default();
    r.w_bits = 4;

    r.w_group = 7;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "7") != NULL, "message: %s", err.message);
    r.w_group = 16; /* divides 16 but not the hidden width 24 */
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "24") != NULL, "message: %s", err.message);
    r.w_group = -8;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.w_group = 8;
    CHECK(validate(&r, &c, &err) == SQ_OK);
    r.w_group = 4;
    CHECK(validate(&r, &c, &err) == SQ_OK);

    r = sq_recipe_default();
    r.a_clip = 0.0f;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.a_clip = 1.5f;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.a_clip = NAN;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.a_clip = 0.9f;
    r.kv_clip = -0.5f;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.kv_clip = 0.95f;
    CHECK(validate(&r, &c, &err) == SQ_OK);

    r = sq_recipe_default();
    r.rotation = SQ_ROTATION_FILE;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.rotation_path = "";
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
}

static void test_recipe_validate_gptq_calibration(void) {
    sq_config c = make_config(16, 24, 4, 4, 2, 32);
    sq_error err = {0};
    int32_t tokens[100] = {0};
    sq_recipe r = sq_recipe_default();
    r.w_bits = 4;
    r.gptq = 1;
    r.calibration_samples = 4;
    r.calibration_window = 32;

    /* 4 windows of 32 need 128 tokens. */
    r.calibration = tokens;
    r.n_calibration = 100;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "100") != NULL && strstr(err.message, "128") != NULL, "message: %s", err.message);

    r.calibration = NULL;
    r.n_calibration = 0;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "128") != NULL, "message: %s", err.message);

    r.calibration = tokens;
    r.n_calibration = 100;
    r.calibration_samples = 3;
    CHECK_MSG(validate(&r, &c, &err) == SQ_OK, "%s", err.message);

    r.calibration_window = 1;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);
    r.calibration_window = 32;
    r.calibration_samples = 0;
    CHECK(validate(&r, &c, &err) == SQ_ERR_INVALID_ARG);

    /* At 16 bits GPTQ has nothing to do, so no calibration is needed. */
    r = sq_recipe_default();
    r.gptq = 1;
    CHECK(validate(&r, &c, &err) == SQ_OK);
}

/* ---- fake-quantization hooks ---- */

static const sq_forward_point all_points[] = {
    SQ_POINT_ATTN_INPUT, SQ_POINT_QUERY, SQ_POINT_KEY, SQ_POINT_VALUE,
    SQ_POINT_ATTN_OUTPUT, SQ_POINT_MLP_INPUT, SQ_POINT_DOWN_INPUT, SQ_POINT_CLASSIFIER_INPUT,
};

static int point_width(const sq_config *c, sq_forward_point point) {
    switch (point) {
    case SQ_POINT_QUERY:
    case SQ_POINT_ATTN_OUTPUT:
        return c->n_heads * c->head_dim;
    case SQ_POINT_KEY:
    case SQ_POINT_VALUE:
        return c->n_kv_heads * c->head_dim;
    case SQ_POINT_DOWN_INPUT:
        return c->hidden_dim;
    default:
        return c->dim;
    }
}

static void test_fake_quant_16_bits_is_identity(void) {
    sq_config c = make_config(64, 96, 8, 8, 2, 32);
    sq_fake_quant fq;
    sq_error err = {0};
    CHECK(sq_fake_quant_init(&fq, &c, 16, 16, 1.0f, 1.0f, 0, &err) == SQ_OK);
    uint64_t state = 5;
    enum { ROWS = 5 };
    for (size_t p = 0; p < sizeof(all_points) / sizeof(all_points[0]); p++) {
        int cols = point_width(&c, all_points[p]);
        float *data = malloc((size_t)ROWS * cols * sizeof(float));
        float *copy = malloc((size_t)ROWS * cols * sizeof(float));
        fill_gaussian(data, (size_t)ROWS * cols, 3.0, &state);
        memcpy(copy, data, (size_t)ROWS * cols * sizeof(float));
        sq_fake_quant_hook(&fq, all_points[p], 0, data, ROWS, cols);
        CHECK_MSG(memcmp(data, copy, (size_t)ROWS * cols * sizeof(float)) == 0, "point %d changed at 16 bits",
                  (int)all_points[p]);
        free(data);
        free(copy);
    }
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a;
    float y = *(const float *)b;
    return (x > y) - (x < y);
}

static int count_distinct(const float *values, int n) {
    float *sorted = malloc((size_t)n * sizeof(float));
    memcpy(sorted, values, (size_t)n * sizeof(float));
    qsort(sorted, (size_t)n, sizeof(float), compare_floats);
    int distinct = n > 0;
    for (int i = 1; i < n; i++) {
        distinct += sorted[i] != sorted[i - 1];
    }
    free(sorted);
    return distinct;
}

/* Checks every group of `group` values of each row of quantized (rows, cols). A group may take
 * at most `levels` distinct values, and each value must lie within half an asymmetric step of
 * the original. The step is (max(max, 0) - min(min, 0)) / (levels - 1) over the group's
 * original values. */
static void check_asymmetric_groups(const float *original, const float *quantized, int rows, int cols, int group,
                                    int levels, const char *what) {
    int too_many_levels = 0;
    int too_far = 0;
    int changed = 0;
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < cols; g += group) {
            const float *x = original + (size_t)r * cols + g;
            const float *q = quantized + (size_t)r * cols + g;
            double lo = 0.0, hi = 0.0;
            for (int i = 0; i < group; i++) {
                lo = fmin(lo, x[i]);
                hi = fmax(hi, x[i]);
            }
            double step = (hi - lo) / (levels - 1);
            for (int i = 0; i < group; i++) {
                too_far += fabs((double)q[i] - x[i]) > 0.5 * step * (1.0 + 1e-5) + 1e-7;
                changed += q[i] != x[i];
            }
            too_many_levels += count_distinct(q, group) > levels;
        }
    }
    CHECK_MSG(too_many_levels == 0, "%s: %d groups have more than %d levels", what, too_many_levels, levels);
    CHECK_MSG(too_far == 0, "%s: %d values moved more than half a step", what, too_far);
    CHECK_MSG(changed > rows * cols / 2, "%s: only %d of %d values changed", what, changed, rows * cols);
}

static void test_fake_quant_4_bits_levels(void) {
    sq_config c = make_config(64, 96, 8, 8, 2, 32);
    sq_fake_quant fq;
    sq_error err = {0};
    CHECK(sq_fake_quant_init(&fq, &c, 4, 4, 1.0f, 1.0f, 0, &err) == SQ_OK);
    uint64_t state = 6;
    enum { ROWS = 7 };
    for (size_t p = 0; p < sizeof(all_points) / sizeof(all_points[0]); p++) {
        sq_forward_point point = all_points[p];
        int cols = point_width(&c, point);
        float *data = malloc((size_t)ROWS * cols * sizeof(float));
        float *original = malloc((size_t)ROWS * cols * sizeof(float));
        fill_gaussian(data, (size_t)ROWS * cols, 2.0, &state);
        data[3] = 40.0f; /* an outlier in row 0 widens its scale */
        memcpy(original, data, (size_t)ROWS * cols * sizeof(float));
        sq_fake_quant_hook(&fq, point, 1, data, ROWS, cols);

        char what[64];
        snprintf(what, sizeof(what), "point %d", (int)point);
        if (point == SQ_POINT_QUERY || point == SQ_POINT_CLASSIFIER_INPUT) {
            /* Queries and the classifier input stay in full precision. */
            CHECK_MSG(memcmp(data, original, (size_t)ROWS * cols * sizeof(float)) == 0, "%s was quantized", what);
        } else if (point == SQ_POINT_KEY || point == SQ_POINT_VALUE || point == SQ_POINT_ATTN_OUTPUT) {
            /* One scale per head of each token. */
            check_asymmetric_groups(original, data, ROWS, cols, c.head_dim, 16, what);
        } else {
            /* One scale per token. */
            check_asymmetric_groups(original, data, ROWS, cols, cols, 16, what);
        }
        free(data);
        free(original);
    }

    /* KV at 16 bits with activations at 4: keys and values untouched. */
    CHECK(sq_fake_quant_init(&fq, &c, 4, 16, 1.0f, 1.0f, 0, &err) == SQ_OK);
    int kv_dim = c.n_kv_heads * c.head_dim;
    float keys[3 * 16];
    float copy[3 * 16];
    fill_gaussian(keys, 3 * (size_t)kv_dim, 1.0, &state);
    memcpy(copy, keys, sizeof(keys));
    sq_fake_quant_hook(&fq, SQ_POINT_KEY, 0, keys, 3, kv_dim);
    CHECK(memcmp(keys, copy, sizeof(keys)) == 0);
}

static void test_fake_quant_init_rejects_bad_params(void) {
    sq_config c = make_config(64, 96, 8, 8, 2, 32);
    sq_fake_quant fq;
    sq_error err = {0};
    CHECK(sq_fake_quant_init(&fq, &c, 1, 16, 1.0f, 1.0f, 0, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_fake_quant_init(&fq, &c, 4, 1, 1.0f, 1.0f, 0, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_fake_quant_init(&fq, &c, 4, 4, 0.0f, 1.0f, 0, &err) == SQ_ERR_INVALID_ARG);
}

/* ---- weight quantization over a whole model: RTN and GPTQ ---- */

/* Returns the maximum number of distinct values over the groups of `group` columns of every
 * row of w (rows, cols). */
static int max_levels_per_group(const float *w, int rows, int cols, int group) {
    int worst = 0;
    for (int r = 0; r < rows; r++) {
        for (int g = 0; g < cols; g += group) {
            int n = count_distinct(w + (size_t)r * cols + g, group);
            worst = n > worst ? n : worst;
        }
    }
    return worst;
}

static void check_weight_levels(const sq_model *model, int levels, int group, const char *what) {
    const sq_config *c = &model->config;
    int q_dim = c->n_heads * c->head_dim;
    int kv_dim = c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &model->layers[l];
        int g_dim = group > 0 ? group : c->dim;
        int g_q = group > 0 ? group : q_dim;
        int g_hidden = group > 0 ? group : c->hidden_dim;
        int worst = 0;
        int counts[7] = {
            max_levels_per_group(w->wq, q_dim, c->dim, g_dim),
            max_levels_per_group(w->wk, kv_dim, c->dim, g_dim),
            max_levels_per_group(w->wv, kv_dim, c->dim, g_dim),
            max_levels_per_group(w->wo, c->dim, q_dim, g_q),
            max_levels_per_group(w->w_gate, c->hidden_dim, c->dim, g_dim),
            max_levels_per_group(w->w_up, c->hidden_dim, c->dim, g_dim),
            max_levels_per_group(w->w_down, c->dim, c->hidden_dim, g_hidden),
        };
        for (int i = 0; i < 7; i++) {
            worst = counts[i] > worst ? counts[i] : worst;
        }
        CHECK_MSG(worst <= levels, "%s, layer %d: a weight group has %d distinct values, expected at most %d", what, l,
                  worst, levels);
    }
}

/* Logits of every token of n_windows windows of `window` tokens, each window from an empty
 * cache: (n_windows * window, vocab_size). */
static float *window_logits(const sq_model *model, sq_forward_hooks hooks, const int32_t *tokens, int n_windows,
                            int window) {
    int vocab = model->config.vocab_size;
    float *logits = malloc((size_t)n_windows * window * vocab * sizeof(float));
    sq_run_state *state = NULL;
    sq_error err = {0};
    if (sq_run_state_create(model, window, window, NULL, &state, &err) != SQ_OK) {
        free(logits);
        return NULL;
    }
    state->hooks = hooks;
    for (int w = 0; w < n_windows; w++) {
        if (sq_forward(state, tokens + (size_t)w * window, window, 0, SQ_LOGITS_ALL, &err) != SQ_OK) {
            fprintf(stderr, "sq_forward: %s\n", err.message);
            free(logits);
            sq_run_state_free(state);
            return NULL;
        }
        memcpy(logits + (size_t)w * window * vocab, state->logits, (size_t)window * vocab * sizeof(float));
    }
    sq_run_state_free(state);
    return logits;
}

static double mean_squared_difference(const float *a, const float *b, size_t count) {
    double sum = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum / (double)count;
}

/* Applies a weight-only recipe to a copy of model and returns the logits MSE against
 * reference over the calibration windows, or -1 on failure. */
static double quantized_logits_mse(const sq_model *model, sq_recipe *recipe, const int32_t *tokens, int n_windows,
                                   int window, const float *reference, int levels, const char *what) {
    sq_model copy = {0};
    sq_error err = {0};
    if (sq_model_clone(model, &copy, &err) != SQ_OK) {
        return -1.0;
    }
    sq_online online = {0};
    sq_status status = sq_recipe_apply(recipe, &copy, NULL, NULL, &online, &err);
    CHECK_MSG(status == SQ_OK, "%s: %s", what, err.message);
    double mse = -1.0;
    if (status == SQ_OK) {
        check_weight_levels(&copy, levels, recipe->w_group, what);
        /* Without rotation the embedding stays exactly as it was (16 bits). */
        if (recipe->rotation == SQ_ROTATION_NONE) {
            CHECK(memcmp(copy.token_embedding, model->token_embedding,
                         (size_t)model->config.vocab_size * model->config.dim * sizeof(float)) == 0);
        }
        float *logits = window_logits(&copy, sq_online_hooks(&online), tokens, n_windows, window);
        if (logits != NULL) {
            mse = mean_squared_difference(logits, reference, (size_t)n_windows * window * model->config.vocab_size);
        }
        free(logits);
    }
    sq_online_free(&online);
    sq_model_free(&copy);
    return mse;
}

static void test_gptq_beats_rtn_on_tiny_model(void) {
    sq_config c = make_config(32, 64, 8, 4, 2, 64);
    sq_model model;
    CHECK(build_random_model(&model, &c, 1234));
    enum { WINDOWS = 4, WINDOW = 48 };
    int32_t tokens[WINDOWS * WINDOW];
    uint64_t state = 99;
    for (int i = 0; i < WINDOWS * WINDOW; i++) {
        tokens[i] = (int32_t)(random_next(&state) % (uint64_t)c.vocab_size);
    }
    sq_forward_hooks no_hooks = {NULL, NULL};
    float *reference = window_logits(&model, no_hooks, tokens, WINDOWS, WINDOW);
    CHECK(reference != NULL);
    if (reference == NULL) {
        sq_model_free(&model);
        return;
    }

    static const int bit_widths[] = {3, 4};
    for (size_t b = 0; b < 2; b++) {
        int bits = bit_widths[b];
        sq_recipe rtn = sq_recipe_default();
        rtn.w_bits = bits;
        sq_recipe gptq = rtn;
        gptq.gptq = 1;
        gptq.calibration = tokens;
        gptq.n_calibration = WINDOWS * WINDOW;
        gptq.calibration_samples = WINDOWS;
        gptq.calibration_window = WINDOW;

        double rtn_mse = quantized_logits_mse(&model, &rtn, tokens, WINDOWS, WINDOW, reference, 1 << bits, "RTN");
        double gptq_mse = quantized_logits_mse(&model, &gptq, tokens, WINDOWS, WINDOW, reference, 1 << bits, "GPTQ");
        fprintf(stderr, "note: W%d logits MSE on the calibration windows: RTN %.5f, GPTQ %.5f\n", bits, rtn_mse,
                gptq_mse);
        CHECK(rtn_mse > 0.0);
        CHECK(gptq_mse > 0.0);
        CHECK_MSG(gptq_mse < rtn_mse, "W%d: GPTQ logits MSE %.5f is not below RTN %.5f", bits, gptq_mse, rtn_mse);
    }

    /* Groups of 8 columns: at most 16 levels per group at 4 bits. */
    sq_recipe grouped = sq_recipe_default();
    grouped.w_bits = 4;
    grouped.w_group = 8;
    CHECK(quantized_logits_mse(&model, &grouped, tokens, WINDOWS, WINDOW, reference, 16, "RTN g8") > 0.0);

    free(reference);
    sq_model_free(&model);
}

/* With R1-R4 (mode had) GPTQ must collect the down_proj Hessian after the online R4, in the
 * basis of the rotated weights. hidden_dim 96 = 12·8 makes R4 use the non-symmetric H_12, so
 * using Mᵀ instead of M on either side would show. */
static void test_gptq_with_rotations_beats_rtn(void) {
    sq_config c = make_config(32, 96, 8, 4, 2, 64);
    sq_model model;
    CHECK(build_random_model(&model, &c, 4321));
    enum { WINDOWS = 4, WINDOW = 48 };
    int32_t tokens[WINDOWS * WINDOW];
    uint64_t state = 98;
    for (int i = 0; i < WINDOWS * WINDOW; i++) {
        tokens[i] = (int32_t)(random_next(&state) % (uint64_t)c.vocab_size);
    }
    sq_forward_hooks no_hooks = {NULL, NULL};
    float *reference = window_logits(&model, no_hooks, tokens, WINDOWS, WINDOW);
    CHECK(reference != NULL);
    if (reference == NULL) {
        sq_model_free(&model);
        return;
    }

    sq_recipe rtn = sq_recipe_default();
    rtn.w_bits = 3;
    rtn.rotation = SQ_ROTATION_HADAMARD;
    rtn.mode_had = 1;
    rtn.seed = 5;
    sq_recipe gptq = rtn;
    gptq.gptq = 1;
    gptq.calibration = tokens;
    gptq.n_calibration = WINDOWS * WINDOW;
    gptq.calibration_samples = WINDOWS;
    gptq.calibration_window = WINDOW;
    double rtn_mse = quantized_logits_mse(&model, &rtn, tokens, WINDOWS, WINDOW, reference, 8, "RTN had");
    double gptq_mse = quantized_logits_mse(&model, &gptq, tokens, WINDOWS, WINDOW, reference, 8, "GPTQ had");
    fprintf(stderr, "note: W3 with random Hadamard R1-R4, logits MSE: RTN %.5f, GPTQ %.5f\n", rtn_mse, gptq_mse);
    CHECK(rtn_mse > 0.0);
    CHECK(gptq_mse > 0.0);
    CHECK_MSG(gptq_mse < rtn_mse, "GPTQ logits MSE %.5f is not below RTN %.5f with rotations", gptq_mse, rtn_mse);

    free(reference);
    sq_model_free(&model);
}

static void test_gptq_model_invalid_arguments(void) {
    sq_config c = make_config(16, 24, 4, 4, 2, 32);
    sq_model model;
    CHECK(build_random_model(&model, &c, 77));
    sq_fake_quant online;
    sq_error err = {0};
    CHECK(sq_fake_quant_init(&online, &c, 16, 16, 1.0f, 1.0f, 0, &err) == SQ_OK);
    sq_gptq_params params = sq_gptq_params_default(4);
    int32_t tokens[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

    CHECK(sq_gptq_model(&model, &online, tokens, 0, 8, &params, NULL, NULL, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_gptq_model(&model, &online, tokens, 2, 1, &params, NULL, NULL, &err) == SQ_ERR_INVALID_ARG);
    tokens[9] = 32;
    CHECK(sq_gptq_model(&model, &online, tokens, 2, 8, &params, NULL, NULL, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "32") != NULL, "message: %s", err.message);
    tokens[9] = 9;
    CHECK_MSG(sq_gptq_model(&model, &online, tokens, 2, 8, &params, NULL, NULL, &err) == SQ_OK, "%s", err.message);
    sq_model_free(&model);
}

int main(void) {
    RUN_TEST(test_recipe_validate_bit_widths);
    RUN_TEST(test_recipe_validate_groups_and_clips);
    RUN_TEST(test_recipe_validate_gptq_calibration);
    RUN_TEST(test_fake_quant_16_bits_is_identity);
    RUN_TEST(test_fake_quant_4_bits_levels);
    RUN_TEST(test_fake_quant_init_rejects_bad_params);
    RUN_TEST(test_gptq_beats_rtn_on_tiny_model);
    RUN_TEST(test_gptq_with_rotations_beats_rtn);
    RUN_TEST(test_gptq_model_invalid_arguments);
    TEST_MAIN_END();
}
