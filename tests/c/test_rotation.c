/* Tests of rotation fusion (src/rotation/fuse.c), the rotation file
 * (src/rotation/rotation_file.c) and the rotation part of sq_recipe_apply. The central check
 * is invariance: fusing the norms and applying R1, R2 (and, in mode had, R4 on the weights
 * with R3 and R4 online) must leave the fp32 logits unchanged. It runs over many Hadamard
 * orders as dim, hidden_dim and head_dim, over grouped-query attention, and over a hidden size
 * with no Hadamard matrix (172), which uses the random orthogonal fallback. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward/forward.h"
#include "linalg/linalg.h"
#include "model/model.h"
#include "pipeline/recipe.h"
#include "rotation/fuse.h"
#include "rotation/rotation_file.h"
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

static sq_config make_config(int dim, int hidden, int head_dim, int n_heads, int n_kv_heads) {
    sq_config c = {0};
    c.dim = dim;
    c.hidden_dim = hidden;
    c.n_layers = 2;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.vocab_size = 32;
    c.context_length = 32;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    return c;
}

static int build_random_model(sq_model *model, const sq_config *c, int tied, uint64_t seed) {
    memset(model, 0, sizeof(*model));
    model->config = *c;
    sq_error err = {0};
    if (sq_model_alloc_weights(model, tied, &err) != SQ_OK) {
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
    if (!tied) {
        fill_gaussian(model->classifier, (size_t)c->vocab_size * dim, 1.0 / sqrt((double)dim), &state);
    }
    return 1;
}

enum { SEQUENCE = 10 };

static const int32_t test_tokens[SEQUENCE] = {1, 7, 30, 2, 2, 19, 0, 31, 12, 5};

/* Logits (SEQUENCE, vocab_size) of test_tokens, or NULL on failure. */
static float *run_logits(const sq_model *model, sq_forward_hooks hooks) {
    sq_run_state *state = NULL;
    sq_error err = {0};
    if (sq_run_state_create(model, SEQUENCE, SEQUENCE, NULL, &state, &err) != SQ_OK) {
        fprintf(stderr, "sq_run_state_create: %s\n", err.message);
        return NULL;
    }
    state->hooks = hooks;
    float *logits = NULL;
    if (sq_forward(state, test_tokens, SEQUENCE, 0, SQ_LOGITS_ALL, &err) == SQ_OK) {
        size_t count = (size_t)SEQUENCE * (size_t)model->config.vocab_size;
        logits = malloc(count * sizeof(float));
        memcpy(logits, state->logits, count * sizeof(float));
    } else {
        fprintf(stderr, "sq_forward: %s\n", err.message);
    }
    sq_run_state_free(state);
    return logits;
}

static double worst_relative_difference(const float *a, const float *b, size_t count) {
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        worst = isnan(d) ? INFINITY : fmax(worst, d);
    }
    return worst;
}

static double max_abs_difference(const float *a, const float *b, size_t count) {
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    }
    return worst;
}

/* ---- invariance of the fp32 logits under the recipe's rotations ---- */

typedef struct shape_case {
    int dim, hidden, head_dim, n_heads, n_kv_heads;
} shape_case;

/* dim, hidden_dim and head_dim cover Hadamard orders 12, 20, 28, 36, 40, 44, 52, 60, 108,
 * 140, 76·2, 12·8 and powers of two; 172 has no Hadamard matrix here (fallback). Most cases
 * use grouped-query attention, and one has n_heads * head_dim != dim. */
static const shape_case shapes[] = {
    {12, 44, 4, 3, 1},  {20, 52, 4, 5, 1},   {24, 60, 8, 3, 3},   {28, 152, 4, 7, 7},
    {36, 108, 12, 3, 1}, {40, 140, 8, 5, 5}, {48, 172, 12, 4, 2}, {56, 64, 8, 7, 1},
    {64, 96, 8, 8, 2},  {72, 120, 12, 6, 3}, {16, 24, 4, 6, 2},   {16, 24, 4, 4, 2},
};

static void check_recipe_invariance(const shape_case *shape, sq_rotation_kind rotation, int mode_had, int tied,
                                    uint64_t seed) {
    sq_config c = make_config(shape->dim, shape->hidden, shape->head_dim, shape->n_heads, shape->n_kv_heads);
    sq_model original;
    CHECK(build_random_model(&original, &c, tied, seed));
    sq_forward_hooks no_hooks = {NULL, NULL};
    float *expected = run_logits(&original, no_hooks);

    sq_model rotated = {0};
    sq_error err = {0};
    CHECK(sq_model_clone(&original, &rotated, &err) == SQ_OK);
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = rotation;
    recipe.mode_had = mode_had;
    recipe.seed = seed * 7 + 3;
    sq_online online = {0};
    sq_status status = sq_recipe_apply(&recipe, &rotated, NULL, NULL, &online, &err);
    CHECK_MSG(status == SQ_OK, "dim %d hidden %d: %s", c.dim, c.hidden_dim, err.message);
    if (status != SQ_OK) {
        free(expected);
        sq_model_free(&original);
        sq_model_free(&rotated);
        return;
    }
    CHECK((online.r3 != NULL) == (mode_had != 0));
    CHECK((online.r4 != NULL) == (mode_had != 0));
    if (mode_had && online.r4 != NULL) {
        /* 172 = 4·43 has no Hadamard matrix and no block of 8 or more, so R4 falls back. */
        sq_hadamard_plan_kind expected_kind =
            c.hidden_dim == 172 ? SQ_HADAMARD_PLAN_RANDOM_ORTHOGONAL : SQ_HADAMARD_PLAN_KRONECKER;
        CHECK_MSG(online.r4->kind == expected_kind, "hidden %d: R4 plan kind %d", c.hidden_dim, (int)online.r4->kind);
    }
    float *actual = run_logits(&rotated, sq_online_hooks(&online));
    size_t count = (size_t)SEQUENCE * (size_t)c.vocab_size;
    const char *kind = rotation == SQ_ROTATION_HADAMARD ? "hadamard" : "random";
    if (expected != NULL && actual != NULL) {
        double error = worst_relative_difference(actual, expected, count);
        CHECK_MSG(error <= 1e-4, "dim %d hidden %d head_dim %d heads %d/%d, %s, %s%s: worst relative logit change %.3g",
                  c.dim, c.hidden_dim, c.head_dim, c.n_heads, c.n_kv_heads, kind, mode_had ? "had" : "nohad",
                  tied ? ", tied" : "", error);
    } else {
        CHECK(expected != NULL);
        CHECK(actual != NULL);
    }

    /* The rotation really changed the weights, so the invariance above is not trivial. */
    size_t wq_count = (size_t)c.n_heads * c.head_dim * c.dim;
    CHECK(max_abs_difference(rotated.layers[0].wq, original.layers[0].wq, wq_count) > 0.05);
    CHECK(max_abs_difference(rotated.token_embedding, original.token_embedding, (size_t)c.vocab_size * c.dim) > 0.05);

    /* In mode had, down_proj contains W·Mᵀ, so dropping the online hooks must change the logits. */
    if (mode_had && actual != NULL && expected != NULL) {
        float *without_hooks = run_logits(&rotated, no_hooks);
        CHECK(without_hooks != NULL);
        if (without_hooks != NULL) {
            CHECK_MSG(worst_relative_difference(without_hooks, expected, count) > 1e-3,
                      "dim %d hidden %d: logits unchanged without the online R4", c.dim, c.hidden_dim);
        }
        free(without_hooks);
    }

    sq_online_free(&online);
    free(expected);
    free(actual);
    sq_model_free(&original);
    sq_model_free(&rotated);
}

static void test_recipe_rotations_keep_logits(void) {
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        check_recipe_invariance(&shapes[i], SQ_ROTATION_HADAMARD, 1, 0, 100 + i);
        check_recipe_invariance(&shapes[i], SQ_ROTATION_HADAMARD, 0, 0, 200 + i);
        check_recipe_invariance(&shapes[i], SQ_ROTATION_RANDOM, 1, 0, 300 + i);
        check_recipe_invariance(&shapes[i], SQ_ROTATION_RANDOM, 0, 0, 400 + i);
    }
}

/* A tied embedding must be untied before R1, or R1 would be applied twice to one matrix. */
static void test_recipe_rotations_tied_classifier(void) {
    check_recipe_invariance(&shapes[11], SQ_ROTATION_HADAMARD, 1, 1, 501);
    check_recipe_invariance(&shapes[4], SQ_ROTATION_RANDOM, 0, 1, 502);
}

/* ---- the fusion steps one by one ---- */

static void test_fuse_norms_keeps_logits(void) {
    sq_config c = make_config(20, 52, 4, 5, 1);
    sq_model model;
    CHECK(build_random_model(&model, &c, 1, 601));
    sq_forward_hooks no_hooks = {NULL, NULL};
    float *expected = run_logits(&model, no_hooks);

    float *wq_before = malloc((size_t)c.n_heads * c.head_dim * c.dim * sizeof(float));
    memcpy(wq_before, model.layers[1].wq, (size_t)c.n_heads * c.head_dim * c.dim * sizeof(float));
    float *gain = malloc((size_t)c.dim * sizeof(float));
    memcpy(gain, model.layers[1].attn_norm, (size_t)c.dim * sizeof(float));

    CHECK(!sq_rotation_norms_fused(&model));
    sq_error err = {0};
    CHECK(sq_rotation_fuse_norms(&model, &err) == SQ_OK);
    CHECK(sq_rotation_norms_fused(&model));
    CHECK(!model.tied_classifier);
    CHECK(model.classifier != model.token_embedding);

    /* Column j of wq is scaled by the attention norm gain j. */
    int exact = 1;
    for (int r = 0; r < c.n_heads * c.head_dim; r++) {
        for (int j = 0; j < c.dim; j++) {
            exact &= model.layers[1].wq[r * c.dim + j] == wq_before[r * c.dim + j] * gain[j];
        }
    }
    CHECK(exact);

    float *actual = run_logits(&model, no_hooks);
    CHECK(expected != NULL);
    CHECK(actual != NULL);
    if (expected != NULL && actual != NULL) {
        CHECK(worst_relative_difference(actual, expected, (size_t)SEQUENCE * c.vocab_size) <= 1e-5);
    }
    free(wq_before);
    free(gain);
    free(expected);
    free(actual);
    sq_model_free(&model);
}

/* With a signed permutation as R1 every product is exact, so E·R1 and R1ᵀ·W can be checked
 * bit for bit: (E·R1)[:, p(i)] = s_i·E[:, i] and (R1ᵀ·W)[p(i), :] = s_i·W[i, :]. */
static void test_apply_r1_signed_permutation(void) {
    sq_config c = make_config(12, 44, 4, 3, 1);
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 611));
    sq_model before = {0};
    sq_error err = {0};
    CHECK(sq_model_clone(&model, &before, &err) == SQ_OK);

    int n = c.dim;
    int permutation[12] = {5, 0, 11, 3, 9, 1, 8, 2, 10, 4, 7, 6};
    float sign[12] = {1, -1, -1, 1, 1, -1, 1, 1, -1, 1, -1, 1};
    float *r1 = calloc((size_t)n * n, sizeof(float));
    for (int i = 0; i < n; i++) {
        r1[i * n + permutation[i]] = sign[i];
    }
    CHECK(sq_rotation_apply_r1(&model, r1, NULL, &err) == SQ_OK);

    int embedding_exact = 1;
    for (int t = 0; t < c.vocab_size; t++) {
        for (int i = 0; i < n; i++) {
            embedding_exact &= model.token_embedding[t * n + permutation[i]] == sign[i] * before.token_embedding[t * n + i];
            embedding_exact &= model.classifier[t * n + permutation[i]] == sign[i] * before.classifier[t * n + i];
        }
    }
    CHECK(embedding_exact);

    int q_dim = c.n_heads * c.head_dim;
    int input_side_exact = 1;
    int output_side_exact = 1;
    for (int l = 0; l < c.n_layers; l++) {
        for (int r = 0; r < c.hidden_dim; r++) {
            for (int i = 0; i < n; i++) {
                input_side_exact &= model.layers[l].w_up[r * n + permutation[i]] == sign[i] * before.layers[l].w_up[r * n + i];
            }
        }
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < q_dim; k++) {
                output_side_exact &= model.layers[l].wo[permutation[i] * q_dim + k] == sign[i] * before.layers[l].wo[i * q_dim + k];
            }
            for (int k = 0; k < c.hidden_dim; k++) {
                output_side_exact &= model.layers[l].w_down[permutation[i] * c.hidden_dim + k] ==
                                     sign[i] * before.layers[l].w_down[i * c.hidden_dim + k];
            }
        }
    }
    CHECK(input_side_exact);
    CHECK(output_side_exact);

    /* R1 needs an untied classifier. */
    sq_model tied;
    CHECK(build_random_model(&tied, &c, 1, 612));
    CHECK(sq_rotation_apply_r1(&tied, r1, NULL, &err) == SQ_ERR_INVALID_ARG);

    free(r1);
    sq_model_free(&tied);
    sq_model_free(&before);
    sq_model_free(&model);
}

/* R2 on v_proj (R2ᵀ·W per KV head) and o_proj (W·R2 per query head), against double sums. */
static void test_apply_r2_against_double(void) {
    sq_config c = make_config(16, 24, 8, 4, 2);
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 621));
    sq_model before = {0};
    sq_error err = {0};
    CHECK(sq_model_clone(&model, &before, &err) == SQ_OK);
    int hd = c.head_dim;
    float r2[64];
    CHECK(sq_linalg_random_orthogonal_f32(hd, 622, r2, &err) == SQ_OK);
    CHECK(sq_rotation_apply_r2(&model, 1, r2, &err) == SQ_OK);

    double worst = 0.0;
    for (int h = 0; h < c.n_kv_heads; h++) {
        for (int i = 0; i < hd; i++) {
            for (int j = 0; j < c.dim; j++) {
                double sum = 0.0;
                for (int k = 0; k < hd; k++) {
                    sum += (double)r2[k * hd + i] * before.layers[1].wv[(h * hd + k) * c.dim + j];
                }
                worst = fmax(worst, fabs(sum - model.layers[1].wv[(h * hd + i) * c.dim + j]));
            }
        }
    }
    int q_dim = c.n_heads * hd;
    for (int row = 0; row < c.dim; row++) {
        for (int h = 0; h < c.n_heads; h++) {
            for (int j = 0; j < hd; j++) {
                double sum = 0.0;
                for (int k = 0; k < hd; k++) {
                    sum += (double)before.layers[1].wo[row * q_dim + h * hd + k] * r2[k * hd + j];
                }
                worst = fmax(worst, fabs(sum - model.layers[1].wo[row * q_dim + h * hd + j]));
            }
        }
    }
    CHECK_MSG(worst <= 1e-5, "worst R2 entry error %.3g", worst);

    /* Layer 0 is untouched. */
    CHECK(memcmp(model.layers[0].wv, before.layers[0].wv, (size_t)c.n_kv_heads * hd * c.dim * sizeof(float)) == 0);
    CHECK(sq_rotation_apply_r2(&model, 2, r2, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_rotation_apply_r2(&model, -1, r2, &err) == SQ_ERR_INVALID_ARG);

    sq_model_free(&before);
    sq_model_free(&model);
}

/* ---- rotations built by the recipe ---- */

/* Largest |RᵀR - I| entry, computed here in double. */
static double orthogonality_error(const float *r, int n) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double dot = 0.0;
            for (int k = 0; k < n; k++) {
                dot += (double)r[k * n + i] * (double)r[k * n + j];
            }
            worst = fmax(worst, fabs(dot - (i == j ? 1.0 : 0.0)));
        }
    }
    return worst;
}

/* Returns 1 when every entry of r (n, n) is ±1/sqrt(n) to 1e-6. */
static int entries_are_hadamard(const float *r, int n) {
    double magnitude = 1.0 / sqrt((double)n);
    for (int i = 0; i < n * n; i++) {
        if (fabs(fabs((double)r[i]) - magnitude) > 1e-6) {
            return 0;
        }
    }
    return 1;
}

static void test_hadamard_rotations_orthogonal(void) {
    static const int dims[][2] = {{16, 4}, {64, 8}, {32, 16}, {12, 4}, {20, 4}, {28, 4}, {40, 8}, {48, 12}};
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
        sq_config c = make_config(dims[i][0], 24, dims[i][1], 2, 1);
        sq_recipe recipe = sq_recipe_default();
        recipe.rotation = SQ_ROTATION_HADAMARD;
        recipe.seed = 900 + i;
        sq_rotation_set set = {0};
        sq_error err = {0};
        CHECK(sq_recipe_build_rotations(&recipe, &c, &set, &err) == SQ_OK);
        CHECK(set.dim == c.dim);
        CHECK(set.head_dim == c.head_dim);
        CHECK(set.n_layers == c.n_layers);
        double r1_error = orthogonality_error(set.r1, c.dim);
        CHECK_MSG(r1_error <= 1e-5, "R1 of size %d: orthogonality error %.3g", c.dim, r1_error);
        CHECK_MSG(entries_are_hadamard(set.r1, c.dim), "R1 of size %d has an entry other than +-1/sqrt(n)", c.dim);
        for (int l = 0; l < c.n_layers; l++) {
            const float *r2 = set.r2 + (size_t)l * c.head_dim * c.head_dim;
            CHECK(orthogonality_error(r2, c.head_dim) <= 1e-5);
            CHECK_MSG(entries_are_hadamard(r2, c.head_dim), "R2 of size %d has an entry other than +-1/sqrt(n)",
                      c.head_dim);
        }
        CHECK(sq_rotation_set_orthogonality_error(&set) <= 1e-5);
        sq_rotation_set_free(&set);
    }
}

static void test_random_rotations_orthogonal_and_seeded(void) {
    sq_config c = make_config(24, 24, 8, 3, 1);
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = SQ_ROTATION_RANDOM;
    recipe.seed = 77;
    sq_rotation_set a = {0}, b = {0}, other = {0};
    sq_error err = {0};
    CHECK(sq_recipe_build_rotations(&recipe, &c, &a, &err) == SQ_OK);
    CHECK(sq_recipe_build_rotations(&recipe, &c, &b, &err) == SQ_OK);
    recipe.seed = 78;
    CHECK(sq_recipe_build_rotations(&recipe, &c, &other, &err) == SQ_OK);

    CHECK(orthogonality_error(a.r1, c.dim) <= 1e-5);
    CHECK(orthogonality_error(a.r2, c.head_dim) <= 1e-5);
    CHECK(!entries_are_hadamard(a.r1, c.dim));
    CHECK(memcmp(a.r1, b.r1, (size_t)c.dim * c.dim * sizeof(float)) == 0);
    CHECK(memcmp(a.r2, b.r2, (size_t)c.n_layers * c.head_dim * c.head_dim * sizeof(float)) == 0);
    CHECK(memcmp(a.r1, other.r1, (size_t)c.dim * c.dim * sizeof(float)) != 0);
    /* Each layer gets its own R2. */
    CHECK(memcmp(a.r2, a.r2 + c.head_dim * c.head_dim, (size_t)c.head_dim * c.head_dim * sizeof(float)) != 0);

    sq_rotation_set_free(&a);
    sq_rotation_set_free(&b);
    sq_rotation_set_free(&other);

    /* Random Hadamard rotations also depend on the seed. */
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.seed = 1;
    CHECK(sq_recipe_build_rotations(&recipe, &c, &a, &err) == SQ_OK);
    recipe.seed = 2;
    CHECK(sq_recipe_build_rotations(&recipe, &c, &b, &err) == SQ_OK);
    CHECK(memcmp(a.r1, b.r1, (size_t)c.dim * c.dim * sizeof(float)) != 0);
    sq_rotation_set_free(&a);
    sq_rotation_set_free(&b);
}

/* ---- rotation file ---- */

/* Bitwise CRC-32 (reflected polynomial 0xEDB88320), written independently of core/crc32.c. */
static uint32_t reference_crc32(const uint8_t *data, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t *read_whole_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return NULL;
    }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *bytes = malloc((size_t)length + 1);
    *size = fread(bytes, 1, (size_t)length, file);
    fclose(file);
    return bytes;
}

static void write_whole_file(const char *path, const uint8_t *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    fwrite(bytes, 1, size, file);
    fclose(file);
}

static sq_status load_status(const char *path, const sq_config *c, sq_error *err) {
    sq_rotation_set set = {0};
    sq_status status = sq_rotation_set_load(path, c, &set, err);
    sq_rotation_set_free(&set);
    return status;
}

static void test_rotation_file_round_trip_and_errors(void) {
    char dir[] = "/tmp/sq_test_rotation_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], broken[128], temp[140];
    snprintf(path, sizeof(path), "%s/rot.bin", dir);
    snprintf(broken, sizeof(broken), "%s/broken.bin", dir);
    snprintf(temp, sizeof(temp), "%s.tmp", path);

    /* Arbitrary bit patterns (negative zero, subnormals, large values) must survive exactly. */
    sq_config c = make_config(12, 24, 4, 3, 1);
    c.n_layers = 3;
    sq_rotation_set set = {0};
    sq_error err = {0};
    CHECK(sq_rotation_set_alloc(&set, &c, &err) == SQ_OK);
    uint64_t state = 1001;
    for (int i = 0; i < c.dim * c.dim; i++) {
        uint32_t bits = (uint32_t)random_next(&state) & 0x7F7FFFFFu;
        memcpy(&set.r1[i], &bits, 4);
    }
    set.r1[0] = -0.0f;
    set.r1[1] = 1e-40f;
    for (int i = 0; i < c.n_layers * c.head_dim * c.head_dim; i++) {
        set.r2[i] = (float)random_gaussian(&state);
    }
    set.mode_had = 1;
    set.online_seed = 0x0123456789ABCDEFull;
    CHECK(sq_rotation_set_save(&set, path, &err) == SQ_OK);
    CHECK(access(temp, F_OK) != 0);

    sq_rotation_set loaded = {0};
    CHECK(sq_rotation_set_load(path, &c, &loaded, &err) == SQ_OK);
    CHECK(loaded.dim == 12);
    CHECK(loaded.head_dim == 4);
    CHECK(loaded.n_layers == 3);
    CHECK(loaded.mode_had == 1);
    CHECK(loaded.online_seed == 0x0123456789ABCDEFull);
    CHECK(loaded.r1 != NULL);
    CHECK(loaded.r2 != NULL);
    if (loaded.r1 != NULL && loaded.r2 != NULL) {
        CHECK(memcmp(loaded.r1, set.r1, (size_t)c.dim * c.dim * sizeof(float)) == 0);
        CHECK(memcmp(loaded.r2, set.r2, (size_t)c.n_layers * c.head_dim * c.head_dim * sizeof(float)) == 0);
    }
    sq_rotation_set_free(&loaded);
    CHECK(load_status(path, NULL, &err) == SQ_OK);

    /* The layout documented in rotation_file.h, read byte by byte. */
    size_t size = 0;
    uint8_t *bytes = read_whole_file(path, &size);
    CHECK(bytes != NULL);
    if (bytes == NULL) {
        sq_rotation_set_free(&set);
        return;
    }
    size_t expected_size = 40 + 4 * (size_t)(12 * 12 + 3 * 4 * 4) + 4;
    CHECK(size == expected_size);
    CHECK(memcmp(bytes, "SQROT\0\0\1", 8) == 0);
    CHECK(read_u32(bytes + 8) == 1);
    CHECK(read_u32(bytes + 12) == 12);
    CHECK(read_u32(bytes + 16) == 4);
    CHECK(read_u32(bytes + 20) == 3);
    CHECK(read_u32(bytes + 24) == 1);
    CHECK(read_u32(bytes + 28) == 0);
    CHECK(read_u32(bytes + 32) == 0x89ABCDEFu);
    CHECK(read_u32(bytes + 36) == 0x01234567u);
    uint32_t r1_second;
    memcpy(&r1_second, &set.r1[2], 4);
    CHECK(read_u32(bytes + 40 + 8) == r1_second);
    CHECK(read_u32(bytes + size - 4) == reference_crc32(bytes, size - 4));

    /* Another model's dimensions. */
    sq_config other = c;
    other.dim = 16;
    CHECK(load_status(path, &other, &err) == SQ_ERR_MISMATCH);
    CHECK_MSG(strstr(err.message, "12") != NULL && strstr(err.message, "16") != NULL, "message: %s", err.message);
    other = c;
    other.head_dim = 6;
    CHECK(load_status(path, &other, &err) == SQ_ERR_MISMATCH);
    other = c;
    other.n_layers = 2;
    CHECK(load_status(path, &other, &err) == SQ_ERR_MISMATCH);

    /* A flipped byte in R1, in the last R2 value, and in the CRC itself. */
    size_t flips[3] = {40 + 17, size - 5, size - 2};
    for (int i = 0; i < 3; i++) {
        bytes[flips[i]] ^= 0x10;
        write_whole_file(broken, bytes, size);
        bytes[flips[i]] ^= 0x10;
        CHECK_MSG(load_status(broken, &c, &err) == SQ_ERR_CHECKSUM, "flip at %zu: %s", flips[i], err.message);
    }

    /* Truncated files. */
    size_t lengths[5] = {0, 7, 43, 40 + 4 * 144, size - 1};
    for (int i = 0; i < 5; i++) {
        write_whole_file(broken, bytes, lengths[i]);
        CHECK_MSG(load_status(broken, &c, &err) == SQ_ERR_FORMAT, "length %zu: %s", lengths[i], err.message);
        CHECK(strstr(err.message, "broken.bin") != NULL);
    }
    /* One byte too many. */
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, bytes, size);
    longer[size] = 0;
    write_whole_file(broken, longer, size + 1);
    CHECK(load_status(broken, &c, &err) == SQ_ERR_FORMAT);
    free(longer);

    /* Wrong magic. */
    bytes[0] = 'X';
    write_whole_file(broken, bytes, size);
    bytes[0] = 'S';
    CHECK(load_status(broken, &c, &err) == SQ_ERR_FORMAT);

    /* Unknown version, mode out of range, zero dimension. */
    bytes[8] = 2;
    write_whole_file(broken, bytes, size);
    bytes[8] = 1;
    CHECK(load_status(broken, &c, &err) == SQ_ERR_UNSUPPORTED);
    bytes[24] = 2;
    write_whole_file(broken, bytes, size);
    bytes[24] = 1;
    CHECK(load_status(broken, &c, &err) == SQ_ERR_FORMAT);
    bytes[12] = 0;
    write_whole_file(broken, bytes, size);
    bytes[12] = 12;
    CHECK(load_status(broken, &c, &err) == SQ_ERR_FORMAT);

    /* A missing file names the path. */
    CHECK(load_status("/tmp/sq_no_such_rotation_file.bin", &c, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "sq_no_such_rotation_file.bin") != NULL);

    /* Saving into a missing directory fails and leaves nothing behind. */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing/rot.bin", dir);
    CHECK(sq_rotation_set_save(&set, missing, &err) == SQ_ERR_IO);
    CHECK(access(missing, F_OK) != 0);

    free(bytes);
    sq_rotation_set_free(&set);
    remove(path);
    remove(broken);
    rmdir(dir);
}

/* A recipe that reads R1 and R2 from a file gives the same model as the recipe that built
 * them, because the file also stores the seed of the online transforms. */
static void test_recipe_from_file_matches_direct(void) {
    char dir[] = "/tmp/sq_test_rotation_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/rot.bin", dir);

    sq_config c = make_config(36, 172, 12, 3, 1);
    sq_recipe direct = sq_recipe_default();
    direct.rotation = SQ_ROTATION_HADAMARD;
    direct.seed = 4242;
    sq_rotation_set set = {0};
    sq_error err = {0};
    CHECK(sq_recipe_build_rotations(&direct, &c, &set, &err) == SQ_OK);
    CHECK(sq_rotation_set_save(&set, path, &err) == SQ_OK);
    sq_rotation_set_free(&set);

    sq_model a, b;
    CHECK(build_random_model(&a, &c, 0, 701));
    CHECK(build_random_model(&b, &c, 0, 701));
    sq_online online_a = {0}, online_b = {0};
    CHECK(sq_recipe_apply(&direct, &a, NULL, NULL, &online_a, &err) == SQ_OK);
    sq_recipe from_file = sq_recipe_default();
    from_file.rotation = SQ_ROTATION_FILE;
    from_file.rotation_path = path;
    from_file.seed = 1; /* ignored: the file's seed is used */
    CHECK_MSG(sq_recipe_apply(&from_file, &b, NULL, NULL, &online_b, &err) == SQ_OK, "%s", err.message);
    float *logits_a = run_logits(&a, sq_online_hooks(&online_a));
    float *logits_b = run_logits(&b, sq_online_hooks(&online_b));
    CHECK(logits_a != NULL);
    CHECK(logits_b != NULL);
    if (logits_a != NULL && logits_b != NULL) {
        CHECK(memcmp(logits_a, logits_b, (size_t)SEQUENCE * c.vocab_size * sizeof(float)) == 0);
    }

    /* A file for another model is rejected by the recipe. */
    sq_model small;
    sq_config small_config = make_config(16, 24, 4, 4, 2);
    CHECK(build_random_model(&small, &small_config, 0, 702));
    sq_online online_small = {0};
    CHECK(sq_recipe_apply(&from_file, &small, NULL, NULL, &online_small, &err) == SQ_ERR_MISMATCH);

    free(logits_a);
    free(logits_b);
    sq_online_free(&online_a);
    sq_online_free(&online_b);
    sq_online_free(&online_small);
    sq_model_free(&a);
    sq_model_free(&b);
    sq_model_free(&small);
    remove(path);
    rmdir(dir);
}

int main(void) {
    RUN_TEST(test_recipe_rotations_keep_logits);
    RUN_TEST(test_recipe_rotations_tied_classifier);
    RUN_TEST(test_fuse_norms_keeps_logits);
    RUN_TEST(test_apply_r1_signed_permutation);
    RUN_TEST(test_apply_r2_against_double);
    RUN_TEST(test_hadamard_rotations_orthogonal);
    RUN_TEST(test_random_rotations_orthogonal_and_seeded);
    RUN_TEST(test_rotation_file_round_trip_and_errors);
    RUN_TEST(test_recipe_from_file_matches_direct);
    TEST_MAIN_END();
}
