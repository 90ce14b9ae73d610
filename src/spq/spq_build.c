/* Building the integer tensors of a .spq model from fake-quantized fp32 weights. */
#include "spq/spq_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q4_layout.h"
#include "quant/quant_weight.h"
#include "quant/rounding.h"
#include "spq/spq_bind.h"
#include "spq/spq_format.h"
#include "spq/spq_half.h"
#include "spq/spq_layout.h"

/* Returns max |codes·scale - w| over count values for integer codes in [qmin, qmax]. */
static float reconstruction_error(const float *w, const int8_t *codes, int32_t count, float scale) {
    float worst = 0.0f;
    for (int32_t i = 0; i < count; i++) {
        worst = fmaxf(worst, fabsf((float)codes[i] * scale - w[i]));
    }
    return worst;
}

/* Codes of count values for scale, clamped to [-qmax - 1, qmax]. */
static void codes_for_scale(const float *w, int32_t count, float scale, int qmax, int8_t *codes) {
    for (int32_t i = 0; i < count; i++) {
        float code = sq_clamp_float(sq_round_half_even(w[i] / scale), (float)(-qmax - 1), (float)qmax);
        codes[i] = (int8_t)code;
    }
}

/* The k search for a group RTN did not reproduce; returns 1 and sets codes and *scale on
 * success. */
static int search_grid(const float *w, int32_t count, int qmax, float max_abs, float tolerance, int8_t *codes,
                       float *scale) {
    int has_negative_extreme = 0;
    for (int32_t i = 0; i < count; i++) {
        has_negative_extreme |= w[i] == -max_abs;
    }
    for (int k = qmax + 1; k >= 1; k--) {
        if (k == qmax || (k == qmax + 1 && !has_negative_extreme)) {
            continue; /* qmax is the RTN scale, already rejected; qmax + 1 needs a code of -qmax - 1 */
        }
        float candidate = max_abs / (float)k;
        codes_for_scale(w, count, candidate, qmax, codes);
        if (reconstruction_error(w, codes, count, candidate) <= tolerance) {
            *scale = candidate;
            return 1;
        }
    }
    return 0;
}

sq_status sq_spq_quantize_matrix(const float *w, int32_t rows, int32_t cols, int bits, int32_t group, uint8_t *codes,
                                 float *scales, sq_spq_build_report *report, sq_error *err) {
    int8_t *rtn_codes = malloc((size_t)rows * (size_t)cols);
    if (rtn_codes == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d x %d codes", rows, cols);
    }
    sq_weight_quant_params params = {bits, group == cols ? 0 : group, 0};
    sq_status status = sq_quant_weight_rtn(w, rows, cols, &params, rtn_codes, scales, err);
    int qmax = sq_weight_quant_qmax(bits);
    int32_t groups_per_row = cols / group;
    size_t stride = sq_q4_row_bytes(cols);

    for (int32_t r = 0; status == SQ_OK && r < rows; r++) {
        uint8_t *row_codes = codes + (size_t)r * stride;
        memset(row_codes, 0x88, stride); /* padding nibbles store code 0 */
        for (int32_t g = 0; g < groups_per_row; g++) {
            const float *values = w + (size_t)r * cols + (size_t)g * group;
            int8_t *group_codes = rtn_codes + (size_t)r * cols + (size_t)g * group;
            float *scale = &scales[(size_t)r * groups_per_row + g];
            float max_abs = 0.0f;
            for (int32_t i = 0; i < group; i++) {
                max_abs = fmaxf(max_abs, fabsf(values[i]));
            }
            /* Reconstruction is exact up to a few float roundings of code·scale. */
            float tolerance = max_abs * 1e-5f;
            float error = reconstruction_error(values, group_codes, group, *scale);
            if (error > tolerance) {
                if (!search_grid(values, group, qmax, max_abs, tolerance, group_codes, scale)) {
                    status = sq_error_set(err, SQ_ERR_NUMERIC,
                                          "row %d, group %d: the weights are not on a %d-bit grid (error %g of max %g); "
                                          "were they fake-quantized with this bit width and group size?",
                                          r, g, bits, (double)error, (double)max_abs);
                    break;
                }
                error = reconstruction_error(values, group_codes, group, *scale);
                report->fallback_groups++;
            }
            report->groups++;
            if (max_abs > 0.0f && (double)error / max_abs > report->max_relative_error) {
                report->max_relative_error = (double)error / max_abs;
            }
            for (int32_t i = 0; i < group; i++) {
                sq_q4_set_nibble(row_codes, (int64_t)g * group + i, group_codes[i] + 8);
            }
        }
    }
    free(rtn_codes);
    return status;
}

/* Fills an embedding or classifier table from fp32 values (rows, cols). */
static sq_status build_table(const float *values, int32_t rows, int32_t cols, int embed_bits, void *data, float *scales,
                             sq_error *err) {
    if (embed_bits == 8) {
        sq_weight_quant_params params = {8, 0, 0};
        return sq_quant_weight_rtn(values, rows, cols, &params, data, scales, err);
    }
    uint16_t *half = data;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        half[i] = sq_float_to_half(values[i]);
    }
    return SQ_OK;
}

static sq_status build_layer(const sq_model *model, int32_t l, const sq_spq_settings *s, sq_spq_layer *out,
                             sq_spq_build_report *report, sq_error *err) {
    const sq_layer_weights *w = &model->layers[l];
    const float *sources[7] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    sq_spq_qmatrix *targets[7] = {&out->wq, &out->wk, &out->wv, &out->wo, &out->w_gate, &out->w_up, &out->w_down};
    memcpy((float *)out->attn_norm, w->attn_norm, (size_t)model->config.dim * sizeof(float));
    memcpy((float *)out->ffn_norm, w->ffn_norm, (size_t)model->config.dim * sizeof(float));
    for (int i = 0; i < 7; i++) {
        sq_spq_qmatrix *m = targets[i];
        int32_t group = s->w_group > 0 ? s->w_group : m->cols;
        sq_status status = sq_spq_quantize_matrix(sources[i], m->rows, m->cols, s->w_bits, group, (uint8_t *)m->codes,
                                                  (float *)m->scales, report, err);
        if (status != SQ_OK) {
            static const char *const names[7] = {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"};
            char detail[SQ_ERROR_MESSAGE_MAX];
            snprintf(detail, sizeof(detail), "%s", err != NULL ? err->message : "");
            return sq_error_set(err, status, "layer %d %s: %s", l, names[i], detail);
        }
    }
    return SQ_OK;
}

static int all_ones(const float *x, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        if (x[i] != 1.0f) {
            return 0;
        }
    }
    return 1;
}

static char *copy_string(const char *s) {
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy != NULL) {
        memcpy(copy, s, n);
    }
    return copy;
}

sq_status sq_spq_build(const sq_model *model, const sq_spq_settings *settings, const float *classifier_transform,
                       uint64_t source_hash, uint64_t source_parameters, sq_spq_model *out,
                       sq_spq_build_report *report, sq_error *err) {
    memset(out, 0, sizeof(*out));
    memset(report, 0, sizeof(*report));
    const sq_config *c = &model->config;
    out->config = *c;
    out->settings = *settings;
    out->classifier_kind = classifier_transform != NULL ? SQ_SPQ_CLASSIFIER_TIED_TRANSFORM : SQ_SPQ_CLASSIFIER_SEPARATE;
    out->source_hash = source_hash;
    out->source_parameters = source_parameters;
    sq_status status = sq_spq_settings_validate(settings, c, err);
    if (status != SQ_OK) {
        return status;
    }

    /* ---- storage laid out as in the file, tensor fields bound to it ---- */
    sq_spq_layout layout;
    status = sq_spq_layout_build(c, settings, out->classifier_kind, &layout, err);
    if (status != SQ_OK) {
        return status;
    }
    uint64_t *offsets = calloc((size_t)layout.n_sections, sizeof(uint64_t));
    out->storage = aligned_alloc(SQ_SPQ_ALIGNMENT, (size_t)sq_spq_align(layout.tensor_bytes));
    if (offsets == NULL || out->storage == NULL) {
        free(offsets);
        sq_spq_layout_free(&layout);
        sq_spq_model_free(out);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the quantized tensors",
                            (unsigned long long)layout.tensor_bytes);
    }
    out->storage_size = (size_t)layout.tensor_bytes;
    memset(out->storage, 0, out->storage_size);
    uint64_t offset = 0;
    for (int32_t i = SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1; i < layout.n_sections; i++) {
        offsets[i] = offset;
        offset += sq_spq_align(layout.payload_sizes[i]);
    }
    /* Scales and norms are still zero, which binding accepts. */
    status = sq_spq_model_bind(out, &layout, out->storage, offsets, NULL, err);
    free(offsets);
    sq_spq_layout_free(&layout);

    /* ---- tensors ---- */
    if (status == SQ_OK) {
        status = build_table(model->token_embedding, c->vocab_size, c->dim, settings->embed_bits,
                             (void *)out->embedding.data, (float *)out->embedding.scales, err);
    }
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        status = build_layer(model, l, settings, &out->layers[l], report, err);
    }
    if (status == SQ_OK) {
        memcpy((float *)out->final_norm, model->final_norm, (size_t)c->dim * sizeof(float));
        if (classifier_transform != NULL) {
            memcpy((float *)out->classifier_transform, classifier_transform, (size_t)c->dim * (size_t)c->dim * sizeof(float));
        } else {
            status = build_table(model->classifier, c->vocab_size, c->dim, settings->embed_bits,
                                 (void *)out->classifier.data, (float *)out->classifier.scales, err);
        }
    }

    /* ---- metadata ---- */
    if (status == SQ_OK) {
        int fused = all_ones(model->final_norm, c->dim);
        for (int32_t l = 0; l < c->n_layers; l++) {
            fused = fused && all_ones(model->layers[l].attn_norm, c->dim) && all_ones(model->layers[l].ffn_norm, c->dim);
        }
        out->norms_fused = fused;
        out->name = copy_string(model->name);
        out->chat_template = copy_string(model->chat_template);
        out->source_format = copy_string(model->format != NULL ? model->format : "unknown");
        if ((model->name != NULL && out->name == NULL) || (model->chat_template != NULL && out->chat_template == NULL) ||
            out->source_format == NULL) {
            status = sq_error_set(err, SQ_ERR_NOMEM, "cannot copy the model's metadata strings");
        }
    }
    if (status != SQ_OK) {
        sq_spq_model_free(out);
    }
    return status;
}

void sq_spq_classifier_transform(const float *r1, const float *gain, int32_t dim, float *out) {
    for (int32_t i = 0; i < dim; i++) {
        for (int32_t j = 0; j < dim; j++) {
            double sum = 0.0;
            for (int32_t k = 0; k < dim; k++) {
                sum += (double)r1[(int64_t)k * dim + i] * (double)gain[k] * (double)r1[(int64_t)k * dim + j];
            }
            out[(int64_t)i * dim + j] = (float)sum;
        }
    }
}

/* FNV-1a 64 over the little-endian bytes of count floats. */
static uint64_t hash_floats(uint64_t hash, const float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof(bits));
        for (int b = 0; b < 4; b++) {
            hash ^= (bits >> (8 * b)) & 0xFFu;
            hash *= 0x100000001B3ull;
        }
    }
    return hash;
}

uint64_t sq_spq_hash_weights(const sq_model *model) {
    const sq_config *c = &model->config;
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t hidden = (size_t)c->hidden_dim;
    uint64_t hash = 0xCBF29CE484222325ull;
    hash = hash_floats(hash, model->token_embedding, (size_t)c->vocab_size * dim);
    for (int32_t l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &model->layers[l];
        hash = hash_floats(hash, w->attn_norm, dim);
        hash = hash_floats(hash, w->wq, q_dim * dim);
        hash = hash_floats(hash, w->wk, kv_dim * dim);
        hash = hash_floats(hash, w->wv, kv_dim * dim);
        hash = hash_floats(hash, w->wo, dim * q_dim);
        hash = hash_floats(hash, w->ffn_norm, dim);
        hash = hash_floats(hash, w->w_gate, hidden * dim);
        hash = hash_floats(hash, w->w_up, hidden * dim);
        hash = hash_floats(hash, w->w_down, dim * hidden);
    }
    hash = hash_floats(hash, model->final_norm, dim);
    if (!model->tied_classifier) {
        hash = hash_floats(hash, model->classifier, (size_t)c->vocab_size * dim);
    }
    return hash;
}
