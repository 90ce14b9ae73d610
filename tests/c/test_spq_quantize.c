/* Tests for the conversion of fake-quantized weights into .spq integer tensors. RTN output must
 * come back code for code (the codes of sq_quant_weight_rtn on the original weights). Grids that
 * RTN cannot recover (a code of -8, or no code reaching ±7, as GPTQ and clipping produce) go to
 * the grid search, and off-grid weights are rejected. The tied-classifier transform is checked
 * in double precision, and the whole pipeline on stories260K must reproduce the evaluator's
 * fake-quantized weights, with RTN and with GPTQ. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "pipeline/recipe.h"
#include "quant/quant_weight.h"
#include "spq/spq_build.h"
#include "spq/spq_quantize.h"
#include "test_util.h"

#define MODEL_PATH "models/stories260K/stories260K.bin"
#define TOKENIZER_PATH "models/stories260K/tok512.bin"

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static double uniform(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* The signed code of element i of a q4 row, read by the documented rule: byte 16·(i/32) + i%16,
 * low nibble for i%32 < 16, value nibble - 8. */
static int unpack_code(const uint8_t *row, int i) {
    uint8_t byte = row[(i / 32) * 16 + i % 16];
    return (i % 32 < 16 ? byte & 15 : byte >> 4) - 8;
}

static size_t row_bytes(int cols) {
    return (size_t)((cols + 31) / 32) * 16;
}

static void test_rtn_codes_recovered(void) {
    static const int shapes[][3] = {{7, 64, 64}, {5, 172, 172}, {4, 96, 32}, {3, 33, 33}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        int rows = shapes[k][0], cols = shapes[k][1], group = shapes[k][2];
        int groups = cols / group;
        float *w = malloc(sizeof(float) * (size_t)rows * cols);
        for (int i = 0; i < rows * cols; i++) {
            w[i] = (float)((uniform() - 0.5) * pow(10.0, 2.0 * uniform() - 2.0));
        }
        sq_weight_quant_params params = {4, group == cols ? 0 : group, 0};
        int8_t *expected_codes = malloc((size_t)rows * cols);
        float *expected_scales = malloc(sizeof(float) * (size_t)rows * groups);
        CHECK(sq_quant_weight_rtn(w, rows, cols, &params, expected_codes, expected_scales, NULL) == SQ_OK);
        CHECK(sq_quant_weight_rtn_fake(w, rows, cols, &params, NULL) == SQ_OK);

        uint8_t *codes = malloc(row_bytes(cols) * (size_t)rows);
        float *scales = malloc(sizeof(float) * (size_t)rows * groups);
        sq_spq_build_report report = {0};
        CHECK(sq_spq_quantize_matrix(w, rows, cols, 4, group, codes, scales, &report, NULL) == SQ_OK);
        int wrong_codes = 0;
        int wrong_scales = 0;
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                wrong_codes += unpack_code(codes + (size_t)r * row_bytes(cols), i) != expected_codes[r * cols + i];
            }
            for (int g = 0; g < groups; g++) {
                float a = scales[r * groups + g], b = expected_scales[r * groups + g];
                wrong_scales += fabsf(a - b) > 2e-7f * fabsf(b);
            }
        }
        CHECK_MSG(wrong_codes == 0, "%d x %d, group %d: %d codes differ from RTN", rows, cols, group, wrong_codes);
        CHECK_MSG(wrong_scales == 0, "%d x %d, group %d: %d scales differ from RTN", rows, cols, group, wrong_scales);
        CHECK(report.fallback_groups == 0);
        CHECK(report.groups == (int64_t)rows * groups);
        free(w);
        free(expected_codes);
        free(expected_scales);
        free(codes);
        free(scales);
    }
}

static void test_other_grids_recovered(void) {
    /* Row 0 uses -8 (GPTQ clamps to the full range), row 1 reaches only ±5 (its scale came from
     * other weights), row 2 is all zero, row 3 is a plain RTN row. */
    enum { ROWS = 4, COLS = 40 };
    int codes_in[ROWS][COLS];
    float scales_in[ROWS] = {0.013f, 0.2f, 0.0f, 1.5f};
    for (int i = 0; i < COLS; i++) {
        codes_in[0][i] = -8 + (int)(uniform() * 14.0);
        codes_in[1][i] = -5 + (int)(uniform() * 11.0);
        codes_in[2][i] = 0;
        codes_in[3][i] = -7 + (int)(uniform() * 15.0);
    }
    codes_in[0][3] = -8;
    codes_in[1][7] = 5;
    codes_in[3][9] = 7;

    float w[ROWS * COLS];
    for (int r = 0; r < ROWS; r++) {
        for (int i = 0; i < COLS; i++) {
            w[r * COLS + i] = (float)codes_in[r][i] * scales_in[r];
        }
    }
    uint8_t codes[ROWS * 32];
    float scales[ROWS];
    sq_spq_build_report report = {0};
    sq_error err = {0};

    CHECK_MSG(sq_spq_quantize_matrix(w, ROWS, COLS, 4, COLS, codes, scales, &report, &err) == SQ_OK, "%s", err.message);
    CHECK(report.fallback_groups == 2);
    int wrong = 0;
    for (int r = 0; r < ROWS; r++) {
        for (int i = 0; i < COLS; i++) {
            float value = (float)unpack_code(codes + r * 32, i) * scales[r];
            wrong += fabsf(value - w[r * COLS + i]) > 1e-6f * fabsf(scales_in[r] * 8.0f);
        }
    }
    CHECK_MSG(wrong == 0, "%d weights are not reproduced", wrong);
    CHECK(unpack_code(codes, 3) == -8);
    CHECK(fabsf(scales[1] - 0.2f) < 1e-7f);
    CHECK(report.max_relative_error < 1e-6);
}

static void test_off_grid_rejected(void) {
    float w[64];
    for (int i = 0; i < 64; i++) {
        w[i] = (float)(uniform() - 0.5);
    }
    uint8_t codes[32];
    float scales[1];
    sq_spq_build_report report = {0};
    CHECK(sq_spq_quantize_matrix(w, 1, 64, 4, 64, codes, scales, &report, NULL) == SQ_ERR_NUMERIC);
}

static void test_classifier_transform(void) {
    /* R1 = a product of Givens rotations (orthogonal by construction), random gain and rows E:
     * (E·R1)·T must equal E·diag(g)·R1. */
    enum { DIM = 6 };
    double r[DIM][DIM];
    for (int i = 0; i < DIM; i++) {
        for (int j = 0; j < DIM; j++) {
            r[i][j] = i == j;
        }
    }
    for (int p = 0; p + 1 < DIM; p++) {
        double angle = 0.3 + p, c = cos(angle), s = sin(angle);
        for (int i = 0; i < DIM; i++) {
            double a = r[i][p], b = r[i][p + 1];
            r[i][p] = c * a - s * b;
            r[i][p + 1] = s * a + c * b;
        }
    }

    float r1[DIM * DIM], gain[DIM], t[DIM * DIM];
    for (int i = 0; i < DIM * DIM; i++) {
        r1[i] = (float)r[i / DIM][i % DIM];
    }
    for (int i = 0; i < DIM; i++) {
        gain[i] = (float)(0.5 + uniform());
    }
    sq_spq_classifier_transform(r1, gain, DIM, t);

    double worst = 0.0;
    for (int row = 0; row < 3; row++) {
        double e[DIM], rotated[DIM];
        for (int i = 0; i < DIM; i++) {
            e[i] = uniform() - 0.5;
        }
        for (int j = 0; j < DIM; j++) {
            rotated[j] = 0.0;
            for (int k = 0; k < DIM; k++) {
                rotated[j] += e[k] * r1[k * DIM + j];
            }
        }
        for (int j = 0; j < DIM; j++) {
            double direct = 0.0, through_t = 0.0;
            for (int k = 0; k < DIM; k++) {
                direct += e[k] * gain[k] * r1[k * DIM + j];
                through_t += rotated[k] * t[k * DIM + j];
            }
            worst = fmax(worst, fabs(direct - through_t));
        }
    }
    CHECK_MSG(worst < 1e-6, "largest difference %g", worst);
}

/* Quantizes stories260K with recipe and checks every linear weight against the evaluator's
 * fake-quantized model built with the same recipe. */
static void check_pipeline(sq_recipe recipe, const char *label) {
    sq_model source = {0}, work = {0}, reference = {0};
    sq_error err = {0};
    CHECK(sq_model_load(MODEL_PATH, TOKENIZER_PATH, NULL, &source, &err) == SQ_OK);
    CHECK(sq_model_clone(&source, &work, &err) == SQ_OK);
    CHECK(sq_model_clone(&source, &reference, &err) == SQ_OK);
    sq_spq_model spq = {0};
    sq_spq_build_report report;
    sq_status status = sq_spq_quantize_model(&work, &recipe, NULL, NULL, &spq, &report, &err);
    CHECK_MSG(status == SQ_OK, "%s: %s", label, err.message);
    sq_online online = {0};
    CHECK(sq_recipe_apply(&recipe, &reference, NULL, NULL, &online, &err) == SQ_OK);
    sq_online_free(&online);
    if (status != SQ_OK) {
        goto done;
    }
    fprintf(stderr, "%s: %lld groups, %lld by the grid search, max relative error %g\n", label, (long long)report.groups,
            (long long)report.fallback_groups, report.max_relative_error);

    const sq_config *c = &source.config;
    int wrong = 0;
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_spq_qmatrix *matrices[7] = {&spq.layers[l].wq, &spq.layers[l].wk, &spq.layers[l].wv, &spq.layers[l].wo,
                                             &spq.layers[l].w_gate, &spq.layers[l].w_up, &spq.layers[l].w_down};
        const float *expected[7] = {reference.layers[l].wq, reference.layers[l].wk, reference.layers[l].wv,
                                    reference.layers[l].wo, reference.layers[l].w_gate, reference.layers[l].w_up,
                                    reference.layers[l].w_down};
        for (int k = 0; k < 7; k++) {
            const sq_spq_qmatrix *m = matrices[k];
            int groups = m->cols / m->group;
            for (int r = 0; r < m->rows; r++) {
                for (int i = 0; i < m->cols; i++) {
                    float value = (float)unpack_code(m->codes + (size_t)r * m->row_stride, i) *
                                  m->scales[(size_t)r * groups + i / m->group];
                    float want = expected[k][(size_t)r * m->cols + i];
                    wrong += fabsf(value - want) > 1e-6f * fmaxf(fabsf(want), 1e-3f);
                }
            }
        }
    }
    CHECK_MSG(wrong == 0, "%s: %d weights differ from the evaluator's", label, wrong);

    /* The embedding: int8 per row, as the evaluator's --embed-bits 8 would quantize it. */
    int8_t *codes = malloc((size_t)c->vocab_size * c->dim);
    float *scales = malloc(sizeof(float) * c->vocab_size);
    sq_weight_quant_params params = {8, 0, 0};
    CHECK(sq_quant_weight_rtn(reference.token_embedding, c->vocab_size, c->dim, &params, codes, scales, NULL) == SQ_OK);
    CHECK(memcmp(codes, spq.embedding.data, (size_t)c->vocab_size * c->dim) == 0);
    CHECK(memcmp(scales, spq.embedding.scales, sizeof(float) * c->vocab_size) == 0);
    CHECK(spq.classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM);
    free(codes);
    free(scales);
done:
    sq_spq_model_free(&spq);
    sq_model_free(&source);
    sq_model_free(&work);
    sq_model_free(&reference);
}

static void test_pipeline_rtn(void) {
    sq_recipe recipe = sq_recipe_default();
    recipe.w_bits = 4;
    recipe.a_bits = 8;
    recipe.kv_bits = 8;
    recipe.embed_bits = 8;
    recipe.rotation = SQ_ROTATION_HADAMARD;
    check_pipeline(recipe, "RTN, hadamard");
    recipe.w_group = 4;
    recipe.mode_had = 0;
    check_pipeline(recipe, "RTN, groups of 4, nohad");
}

static void test_pipeline_gptq(void) {
    sq_model model = {0};
    CHECK(sq_model_load(MODEL_PATH, TOKENIZER_PATH, NULL, &model, NULL) == SQ_OK);
    static const char text[] =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, "
        "she saw a big, red ball in the park. She ran to the ball and kicked it as hard as she could. The ball flew "
        "high into the sky and landed in a tree. Lily was sad because she could not reach it. Her friend Tom came "
        "and helped her get the ball down. They played together all day and had lots of fun.";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(sq_tokenizer_encode(model.tokenizer, text, sizeof(text) - 1, 1, 0, &ids, &n, NULL) == SQ_OK);
    sq_recipe recipe = sq_recipe_default();
    recipe.w_bits = 4;
    recipe.a_bits = 8;
    recipe.kv_bits = 8;
    recipe.embed_bits = 8;
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.gptq = 1;
    recipe.calibration = ids;
    recipe.n_calibration = n;
    recipe.calibration_window = 32;
    recipe.calibration_samples = (int32_t)(n / 32);
    check_pipeline(recipe, "GPTQ, hadamard");
    free(ids);
    sq_model_free(&model);
}

int main(void) {
    RUN_TEST(test_rtn_codes_recovered);
    RUN_TEST(test_other_grids_recovered);
    RUN_TEST(test_off_grid_rejected);
    RUN_TEST(test_classifier_transform);
    RUN_TEST(test_pipeline_rtn);
    RUN_TEST(test_pipeline_gptq);
    TEST_MAIN_END();
}
