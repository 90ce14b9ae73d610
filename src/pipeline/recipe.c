/* Applying a quantization recipe: norm fusion, rotations, weight quantization, and the online
 * transforms and activation quantizers of the forward hooks. */
#include "pipeline/recipe.h"

#include <stdlib.h>
#include <string.h>

#include "hadamard/random_hadamard.h"
#include "linalg/linalg.h"
#include "linalg/rng.h"
#include "pipeline/gptq_model.h"
#include "quant/quant_weight.h"
#include "rotation/fuse.h"

sq_recipe sq_recipe_default(void) {
    sq_recipe r = {0};
    r.w_bits = 16;
    r.a_bits = 16;
    r.kv_bits = 16;
    r.a_clip = 1.0f;
    r.kv_clip = 1.0f;
    r.embed_bits = 16;
    r.rotation = SQ_ROTATION_NONE;
    r.mode_had = 1;
    r.seed = 0;
    r.calibration_window = 512;
    r.calibration_samples = 16;
    return r;
}

static sq_status check_bits(const char *name, int bits, sq_error *err) {
    if (bits < 2 || bits > 16) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid %s %d, expected a bit width from 2 to 16", name, bits);
    }
    return SQ_OK;
}

sq_status sq_recipe_validate(const sq_recipe *r, const sq_config *c, sq_error *err) {
    sq_status status;
    if ((status = check_bits("--w-bits", r->w_bits, err)) || (status = check_bits("--a-bits", r->a_bits, err)) ||
        (status = check_bits("--kv-bits", r->kv_bits, err))) {
        return status;
    }
    if (r->embed_bits != 16 && r->embed_bits != 8) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid embedding bit width %d, expected 8 or 16", r->embed_bits);
    }
    if (r->w_group < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid --w-group %d, expected 0 or a positive divisor of the input width",
                            r->w_group);
    }
    if (r->w_group > 0) {
        int32_t widths[3] = {c->dim, c->n_heads * c->head_dim, c->hidden_dim};
        for (int i = 0; i < 3; i++) {
            if (widths[i] % r->w_group != 0) {
                return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                    "--w-group %d does not divide the input width %d of a linear layer; choose a divisor of %d, %d and %d",
                                    r->w_group, widths[i], c->dim, c->n_heads * c->head_dim, c->hidden_dim);
            }
        }
    }
    if (!(r->a_clip > 0.0f && r->a_clip <= 1.0f) || !(r->kv_clip > 0.0f && r->kv_clip <= 1.0f)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid clip ratio (activations %g, KV %g), expected values in (0, 1]",
                            (double)r->a_clip, (double)r->kv_clip);
    }
    if (r->rotation == SQ_ROTATION_FILE && (r->rotation_path == NULL || r->rotation_path[0] == '\0')) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "a rotation file path is required");
    }
    if (r->gptq && r->w_bits < 16) {
        if (r->calibration_window < 2 || r->calibration_samples < 1) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid GPTQ calibration: %d samples of %d tokens",
                                r->calibration_samples, r->calibration_window);
        }
        size_t needed = (size_t)r->calibration_samples * (size_t)r->calibration_window;
        if (r->calibration == NULL || r->n_calibration < needed) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG,
                                "the calibration text has %zu tokens, but %d samples of %d tokens need %zu; give a longer --calib file or fewer samples",
                                r->n_calibration, r->calibration_samples, r->calibration_window, needed);
        }
    }
    return SQ_OK;
}

sq_status sq_recipe_build_rotations(const sq_recipe *r, const sq_config *c, sq_rotation_set *set, sq_error *err) {
    if (r->rotation == SQ_ROTATION_FILE) {
        return sq_rotation_set_load(r->rotation_path, c, set, err);
    }
    sq_status status = sq_rotation_set_alloc(set, c, err);
    if (status != SQ_OK || r->rotation == SQ_ROTATION_NONE) {
        set->online_seed = r->seed;
        set->mode_had = r->mode_had;
        return status;
    }
    set->mode_had = r->mode_had;
    set->online_seed = r->seed;
    sq_rng rng;
    sq_rng_seed(&rng, r->seed);
    int64_t r2_size = (int64_t)c->head_dim * c->head_dim;
    for (int32_t l = -1; status == SQ_OK && l < c->n_layers; l++) {
        float *target = l < 0 ? set->r1 : set->r2 + l * r2_size;
        int32_t n = l < 0 ? c->dim : c->head_dim;
        uint64_t matrix_seed = sq_rng_next_u64(&rng);
        if (r->rotation == SQ_ROTATION_HADAMARD) {
            status = sq_hadamard_random_rotation(n, matrix_seed, NULL, target, err);
        } else {
            status = sq_linalg_random_orthogonal_f32(n, matrix_seed, target, err);
        }
    }
    if (status != SQ_OK) {
        sq_rotation_set_free(set);
    }
    return status;
}

static void apply_online_transform(void *context, float *x, int32_t n) {
    const struct sq_online_transform *t = context;
    (void)n;
    sq_hadamard_plan_apply(t->plan, SQ_HADAMARD_APPLY_M, x, t->scratch, NULL);
}

/* Creates the plan for size n and its scratch buffer. */
static sq_status create_transform(int32_t n, uint64_t seed, const sq_logger *logger, sq_hadamard_plan **plan,
                                  float **scratch, sq_error *err) {
    sq_status status = sq_hadamard_plan_create(n, seed, logger, plan, err);
    if (status != SQ_OK) {
        return status;
    }
    size_t floats = sq_hadamard_plan_scratch_floats(*plan);
    *scratch = malloc((floats > 0 ? floats : 1) * sizeof(float));
    if (*scratch == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the scratch space of a size-%d transform", n);
    }
    return SQ_OK;
}

static sq_status quantize_weights_rtn(const sq_recipe *r, sq_model *model, sq_error *err) {
    const sq_config *c = &model->config;
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    sq_weight_quant_params p = {r->w_bits, r->w_group, r->w_clip};
    sq_status status = SQ_OK;
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        if ((status = sq_quant_weight_rtn_fake(w->wq, q_dim, c->dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->wk, kv_dim, c->dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->wv, kv_dim, c->dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->wo, c->dim, q_dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->w_gate, c->hidden_dim, c->dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->w_up, c->hidden_dim, c->dim, &p, err)) ||
            (status = sq_quant_weight_rtn_fake(w->w_down, c->dim, c->hidden_dim, &p, err))) {
            break;
        }
    }
    return status;
}

sq_status sq_recipe_apply(const sq_recipe *r, sq_model *model, sq_threadpool *pool, const sq_logger *logger,
                          sq_online *online, sq_error *err) {
    const sq_config *c = &model->config;
    memset(online, 0, sizeof(*online));
    sq_status status = sq_recipe_validate(r, c, err);
    if (status != SQ_OK) {
        return status;
    }
    status = sq_fake_quant_init(&online->fake_quant, c, r->a_bits, r->kv_bits, r->a_clip, r->kv_clip, r->a_symmetric, err);
    if (status != SQ_OK) {
        return status;
    }

    /* ---- norm fusion and rotations ---- */
    status = sq_rotation_fuse_norms(model, err);
    sq_rotation_set set = {0};
    uint64_t online_seed = r->seed;
    if (status == SQ_OK && r->rotation != SQ_ROTATION_NONE) {
        status = sq_recipe_build_rotations(r, c, &set, err);
        if (status == SQ_OK) {
            online_seed = set.online_seed;
            status = sq_rotation_apply_r1(model, set.r1, pool, err);
        }
        for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
            status = sq_rotation_apply_r2(model, l, set.r2 + (int64_t)l * c->head_dim * c->head_dim, err);
        }
        sq_rotation_set_free(&set);
    }
    /* The recipe's mode decides whether R3 and R4 run, also for a rotation file. */
    int online_rotations = r->mode_had && r->rotation != SQ_ROTATION_NONE;
    if (status == SQ_OK && online_rotations) {
        status = create_transform(c->head_dim, online_seed, logger, &online->r3, &online->r3_scratch, err);
    }
    if (status == SQ_OK && online_rotations) {
        status = create_transform(c->hidden_dim, online_seed, logger, &online->r4, &online->r4_scratch, err);
    }
    if (status == SQ_OK && online_rotations) {
        online->r3_context = (struct sq_online_transform){online->r3, online->r3_scratch};
        online->r4_context = (struct sq_online_transform){online->r4, online->r4_scratch};
        online->fake_quant.r3 = apply_online_transform;
        online->fake_quant.r3_context = &online->r3_context;
        online->fake_quant.r4 = apply_online_transform;
        online->fake_quant.r4_context = &online->r4_context;
        sq_rotation_apply_r4(model, apply_online_transform, &online->r4_context);
    }

    /* ---- weights ---- */
    if (status == SQ_OK && r->w_bits < 16) {
        if (r->gptq) {
            sq_gptq_params params = sq_gptq_params_default(r->w_bits);
            params.weight.group_size = r->w_group;
            params.weight.clip_search = r->w_clip;
            params.act_order = r->gptq_act_order;
            status = sq_gptq_model(model, &online->fake_quant, r->calibration, r->calibration_samples,
                                   r->calibration_window, &params, pool, logger, err);
        } else {
            status = quantize_weights_rtn(r, model, err);
        }
    }
    if (status == SQ_OK && r->embed_bits < 16) {
        sq_weight_quant_params p = {r->embed_bits, 0, 0};
        status = sq_quant_weight_rtn_fake(model->token_embedding, c->vocab_size, c->dim, &p, err);
        if (status == SQ_OK) {
            status = sq_quant_weight_rtn_fake(model->classifier, c->vocab_size, c->dim, &p, err);
        }
    }
    if (status != SQ_OK) {
        sq_online_free(online);
    }
    return status;
}

sq_forward_hooks sq_online_hooks(sq_online *online) {
    sq_forward_hooks hooks = {sq_fake_quant_hook, &online->fake_quant};
    return hooks;
}

void sq_online_free(sq_online *online) {
    sq_hadamard_plan_free(online->r3);
    sq_hadamard_plan_free(online->r4);
    free(online->r3_scratch);
    free(online->r4_scratch);
    memset(online, 0, sizeof(*online));
}
