/* Conversion of a fake-quantized fp32 model (the output of sq_recipe_apply) into the integer
 * tensors of a .spq file.
 *
 * Linear weights: after fake quantization every row (or group) is code·scale for integer codes,
 * so re-quantizing recovers them. sq_quant_weight_rtn is tried first (scale = max|w| / qmax); it
 * recovers RTN output exactly. A group whose largest code magnitude is not qmax (GPTQ and the
 * clipping search can produce -qmax-1 or leave ±qmax unused) fails the reconstruction check and
 * is solved by scale = max|w| / k for k = qmax + 1, qmax - 1, …, 1, the first k whose codes
 * reproduce every weight. A group no k reproduces is an error: the weights are not on a grid.
 * Embedding and separate classifier: int8 per row by sq_quant_weight_rtn (8 bits, no groups, so
 * the same codes as the evaluator's --embed-bits 8), or fp16. */
#ifndef SQ_SPQ_SPQ_BUILD_H
#define SQ_SPQ_SPQ_BUILD_H

#include <stdint.h>

#include "model/model.h"
#include "spq/spq_model.h"

typedef struct sq_spq_build_report {
    int64_t groups;            /* weight groups converted */
    int64_t fallback_groups;   /* groups solved by the k search instead of plain RTN */
    double max_relative_error; /* max |code·scale - w| / max|w| over all groups */
} sq_spq_build_report;

/* Quantizes one (rows, cols) matrix whose values lie on a bits-wide grid into q4 codes
 * (rows, sq_q4_row_bytes(cols)) and scales (rows, cols / group); group = cols for one scale
 * per row. Adds to report. Fails with SQ_ERR_NUMERIC naming the row and group that no scale
 * reproduces. */
sq_status sq_spq_quantize_matrix(const float *w, int32_t rows, int32_t cols, int bits, int32_t group, uint8_t *codes,
                                 float *scales, sq_spq_build_report *report, sq_error *err);

/* Builds out from model: settings, every tensor in one owned storage block laid out as in the
 * file, metadata strings copied from model. classifier_transform (dim, dim) selects the tied
 * form (the classifier is then not stored); NULL stores model->classifier. out->tokenizer stays
 * NULL. source_hash and source_parameters are recorded as given. */
sq_status sq_spq_build(const sq_model *model, const sq_spq_settings *settings, const float *classifier_transform,
                       uint64_t source_hash, uint64_t source_parameters, sq_spq_model *out,
                       sq_spq_build_report *report, sq_error *err);

/* Returns T = R1ᵀ·diag(gain)·R1 (dim, dim), computed in double, so that a tied classifier
 * E·diag(gain)·R1 equals (E·R1)·T. r1 (dim, dim), gain (dim). */
void sq_spq_classifier_transform(const float *r1, const float *gain, int32_t dim, float *out);

/* FNV-1a 64 over the little-endian bytes of every fp32 weight of model in the order embedding,
 * then per layer attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down, then final_norm and
 * (when not tied) the classifier. */
uint64_t sq_spq_hash_weights(const sq_model *model);

#endif
