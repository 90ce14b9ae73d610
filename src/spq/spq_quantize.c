/* The quantize pipeline: recipe, then conversion to integer tensors. */
#include "spq/spq_quantize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation/rotation_file.h"

static const char *rotation_name(sq_rotation_kind kind) {
    switch (kind) {
    case SQ_ROTATION_NONE: return "none";
    case SQ_ROTATION_HADAMARD: return "hadamard";
    case SQ_ROTATION_RANDOM: return "random";
    case SQ_ROTATION_FILE: return "file";
    }
    return "unknown";
}

/* Checks that the integer runtime can run recipe. */
static sq_status check_recipe(const sq_recipe *r, sq_error *err) {
    if (r->w_bits > 4) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "--w-bits %d is not supported by the .spq format, expected 2 to 4",
                            r->w_bits);
    }
    if (r->a_bits > 8) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "--a-bits %d is not supported by the integer runtime, expected 2 to 8 (activations are integer codes)",
                            r->a_bits);
    }
    if (r->kv_bits > 8 && r->kv_bits != 16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "--kv-bits %d is not supported, expected 2 to 8 or 16", r->kv_bits);
    }
    if (r->embed_bits != 8 && r->embed_bits != 16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "--embed-bits %d is not supported, expected 8 or 16", r->embed_bits);
    }
    return SQ_OK;
}

/* Builds T = R1ᵀ·diag(gain)·R1 with the recipe's R1 (the identity without rotation). */
static sq_status tied_transform(const sq_recipe *r, const sq_config *c, const float *gain, float **out, sq_error *err) {
    sq_rotation_set set = {0};
    sq_status status = sq_rotation_set_alloc(&set, c, err);
    if (status == SQ_OK && r->rotation != SQ_ROTATION_NONE) {
        sq_rotation_set_free(&set);
        status = sq_recipe_build_rotations(r, c, &set, err);
    }
    if (status != SQ_OK) {
        return status;
    }
    *out = malloc((size_t)c->dim * (size_t)c->dim * sizeof(float));
    if (*out == NULL) {
        sq_rotation_set_free(&set);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the %d x %d classifier transform", c->dim, c->dim);
    }
    sq_spq_classifier_transform(set.r1, gain, c->dim, *out);
    sq_rotation_set_free(&set);
    return SQ_OK;
}

sq_status sq_spq_quantize_model(sq_model *model, const sq_recipe *recipe, sq_threadpool *pool, const sq_logger *logger,
                                sq_spq_model *out, sq_spq_build_report *report, sq_error *err) {
    sq_spq_quantize_options options = {0};
    return sq_spq_quantize_model_ex(model, recipe, &options, pool, logger, out, report, err);
}

sq_status sq_spq_quantize_model_ex(sq_model *model, const sq_recipe *recipe, const sq_spq_quantize_options *options,
                                   sq_threadpool *pool, const sq_logger *logger, sq_spq_model *out,
                                   sq_spq_build_report *report, sq_error *err) {
    memset(out, 0, sizeof(*out));
    sq_status status = check_recipe(recipe, err);
    if (status != SQ_OK) {
        return status;
    }
    const sq_config *c = &model->config;
    uint64_t source_hash = sq_spq_hash_weights(model);
    uint64_t parameters = (uint64_t)sq_model_parameter_count(model);
    int tied = model->tied_classifier && !options->separate_classifier;
    float *gain = malloc((size_t)c->dim * sizeof(float));
    if (gain == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the final norm gain");
    }
    memcpy(gain, model->final_norm, (size_t)c->dim * sizeof(float));

    /* ---- the evaluator's recipe, with the embedding left in fp32 for the conversion ---- */
    sq_recipe applied = *recipe;
    applied.embed_bits = 16;
    sq_online online = {0};
    uint64_t online_seed = recipe->seed;
    status = sq_recipe_apply(&applied, model, pool, logger, &online, err);
    sq_online_free(&online);
    if (status == SQ_OK && recipe->rotation == SQ_ROTATION_FILE) {
        /* A rotation file carries its own online seed, which sq_recipe_apply used. */
        sq_rotation_set set = {0};
        status = sq_rotation_set_load(recipe->rotation_path, c, &set, err);
        online_seed = set.online_seed;
        sq_rotation_set_free(&set);
    }
    float *transform = NULL;
    if (status == SQ_OK && tied) {
        status = tied_transform(recipe, c, gain, &transform, err);
    }
    free(gain);

    /* ---- integer tensors ---- */
    if (status == SQ_OK) {
        sq_spq_settings s;
        memset(&s, 0, sizeof(s));
        s.w_bits = recipe->w_bits;
        s.w_group = recipe->w_group;
        s.w_clip = recipe->w_clip;
        s.gptq = recipe->gptq;
        s.a_bits = recipe->a_bits;
        s.a_symmetric = recipe->a_symmetric;
        s.a_clip = recipe->a_clip;
        s.kv_bits = recipe->kv_bits;
        s.kv_clip = recipe->kv_clip;
        s.embed_bits = recipe->embed_bits;
        snprintf(s.rotation, sizeof(s.rotation), "%s", rotation_name(recipe->rotation));
        s.mode_had = recipe->mode_had && recipe->rotation != SQ_ROTATION_NONE;
        s.online_seed = online_seed;
        status = sq_spq_build(model, &s, transform, source_hash, parameters, out, report, err);
    }
    free(transform);
    if (status == SQ_OK) {
        SQ_LOG_INFO_F(logger, "converted %lld weight groups (%lld by the grid search), max relative error %.3g",
                      (long long)report->groups, (long long)report->fallback_groups, report->max_relative_error);
    }
    return status;
}
