/* The quantize pipeline: applies a recipe to an fp32 model exactly as the fake-quant evaluator
 * does (sq_recipe_apply: norm fusion, rotations, R4 folding, RTN or GPTQ weights) and converts
 * the result into the integer tensors of a .spq model.
 *
 * Differences from the evaluator's model, each small and deliberate:
 *   - embeddings: the recipe runs with embed_bits 16 and the embedding is then quantized here
 *     (int8 per row with the same RTN rule, or fp16), so the codes equal the evaluator's;
 *   - a tied classifier is not stored: the file keeps the rotated embedding E·R1 once and
 *     T = R1ᵀ·diag(g)·R1 (g the final norm gain), because E·diag(g)·R1 = (E·R1)·T. The
 *     evaluator instead quantizes E·diag(g)·R1 to 8 bits itself, so with --embed-bits 8 the
 *     two round different matrices (both to 8 bits per row). */
#ifndef SQ_SPQ_SPQ_QUANTIZE_H
#define SQ_SPQ_SPQ_QUANTIZE_H

#include "core/log.h"
#include "core/threadpool.h"
#include "pipeline/recipe.h"
#include "spq/spq_build.h"
#include "spq/spq_model.h"

/* Quantizes model (modified in place: on return it contains the fake-quantized weights) by recipe
 * into out (tokenizer NULL; serialize with the tokenizer description of the source). Fails with
 * SQ_ERR_UNSUPPORTED for recipes the integer runtime cannot run (weights wider than 4 bits,
 * activations wider than 8, embedding widths other than 8 and 16). */
sq_status sq_spq_quantize_model(sq_model *model, const sq_recipe *recipe, sq_threadpool *pool, const sq_logger *logger,
                                sq_spq_model *out, sq_spq_build_report *report, sq_error *err);

typedef struct sq_spq_quantize_options {
    /* 1: store a tied classifier as its own matrix, quantized exactly as the evaluator does,
     * instead of the tied transform (the file grows by one vocab_size x dim table). */
    int separate_classifier;
} sq_spq_quantize_options;

/* sq_spq_quantize_model with options. */
sq_status sq_spq_quantize_model_ex(sq_model *model, const sq_recipe *recipe, const sq_spq_quantize_options *options,
                                   sq_threadpool *pool, const sq_logger *logger, sq_spq_model *out,
                                   sq_spq_build_report *report, sq_error *err);

#endif
