/* Quantization flags → sq_recipe. */
#include "cli/recipe_options.h"

#include <stdlib.h>
#include <string.h>

#include "cli/common.h"

void recipe_options_defaults(recipe_options *o) {
    memset(o, 0, sizeof(*o));
    o->w_bits = 16;
    o->a_bits = 16;
    o->kv_bits = 16;
    o->calib_samples = 16;
    o->calib_window = 512;
    o->rotation = "none";
    o->mode = "had";
    o->a_clip = 1.0f;
    o->kv_clip = 1.0f;
    o->embed_bits = 16;
}

void recipe_options_table(recipe_options *o, cli_option *t) {
    const cli_option table[RECIPE_OPTION_COUNT] = {
        {"--w-bits", CLI_INT, &o->w_bits, 2, 16, "weight bit width, 2 to 16 (16: no weight quantization)"},
        {"--a-bits", CLI_INT, &o->a_bits, 2, 16, "activation bit width, 2 to 16 (16: none)"},
        {"--kv-bits", CLI_INT, &o->kv_bits, 2, 16, "KV cache bit width, 2 to 16 (16: none)"},
        {"--w-group", CLI_INT, &o->w_group, 0, 1 << 20, "weight columns per scale (0: one scale per output channel)"},
        {"--w-clip", CLI_FLAG, &o->w_clip, 0, 0, "search a clipping ratio for each weight scale"},
        {"--gptq", CLI_FLAG, &o->gptq, 0, 0, "quantize weights with GPTQ instead of round-to-nearest (needs --calib)"},
        {"--act-order", CLI_FLAG, &o->act_order, 0, 0, "GPTQ: process columns by descending Hessian diagonal"},
        {"--calib", CLI_STRING, &o->calib_path, 0, 0, "calibration text for GPTQ"},
        {"--calib-samples", CLI_INT, &o->calib_samples, 1, 1 << 20, "GPTQ calibration windows (default 16)"},
        {"--calib-window", CLI_INT, &o->calib_window, 2, 1 << 20, "tokens per GPTQ calibration window (default 512)"},
        {"--rotation", CLI_STRING, &o->rotation, 0, 0, "none, hadamard, random, or a rotation file (default none)"},
        {"--mode", CLI_STRING, &o->mode, 0, 0, "had (R1-R4) or nohad (R1 and R2 only); default had"},
        {"--seed", CLI_UINT64, &o->seed, 0, 0, "seed of the random rotations (default 0)"},
        {"--a-clip", CLI_FLOAT, &o->a_clip, 1e-6, 1, "activation clip ratio in (0, 1] (default 1)"},
        {"--kv-clip", CLI_FLOAT, &o->kv_clip, 1e-6, 1, "KV cache clip ratio in (0, 1] (default 1)"},
        {"--embed-bits", CLI_INT, &o->embed_bits, 1, 64, "embedding and classifier bit width: 16 or 8 (default 16 for eval, 8 for quantize)"},
    };
    memcpy(t, table, sizeof(table));
}

int recipe_options_active(const recipe_options *o) {
    return o->w_bits != 16 || o->a_bits != 16 || o->kv_bits != 16 || strcmp(o->rotation, "none") != 0 ||
           o->embed_bits != 16;
}

sq_status recipe_options_build(const recipe_options *o, const sq_model *model, sq_recipe *recipe,
                               int32_t **calibration_tokens, sq_error *err) {
    *recipe = sq_recipe_default();
    *calibration_tokens = NULL;
    recipe->w_bits = o->w_bits;
    recipe->a_bits = o->a_bits;
    recipe->kv_bits = o->kv_bits;
    recipe->w_group = o->w_group;
    recipe->w_clip = o->w_clip;
    recipe->gptq = o->gptq;
    recipe->gptq_act_order = o->act_order;
    recipe->a_clip = o->a_clip;
    recipe->kv_clip = o->kv_clip;
    recipe->a_symmetric = o->a_symmetric;
    recipe->embed_bits = o->embed_bits;
    recipe->seed = o->seed;
    recipe->calibration_samples = o->calib_samples;
    recipe->calibration_window = o->calib_window;

    if (strcmp(o->mode, "had") == 0) {
        recipe->mode_had = 1;
    } else if (strcmp(o->mode, "nohad") == 0) {
        recipe->mode_had = 0;
    } else {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid --mode '%s', expected had or nohad", o->mode);
    }
    if (strcmp(o->rotation, "none") == 0) {
        recipe->rotation = SQ_ROTATION_NONE;
    } else if (strcmp(o->rotation, "hadamard") == 0) {
        recipe->rotation = SQ_ROTATION_HADAMARD;
    } else if (strcmp(o->rotation, "random") == 0) {
        recipe->rotation = SQ_ROTATION_RANDOM;
    } else {
        recipe->rotation = SQ_ROTATION_FILE;
        recipe->rotation_path = o->rotation;
    }

    if (o->gptq && o->calib_path == NULL) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "--gptq needs a calibration text: add --calib FILE");
    }
    if (o->gptq) {
        size_t count = 0;
        sq_status status = cli_tokenize_file(model, o->calib_path, calibration_tokens, &count, err);
        if (status != SQ_OK) {
            return status;
        }
        recipe->calibration = *calibration_tokens;
        recipe->n_calibration = count;
    }
    return sq_recipe_validate(recipe, &model->config, err);
}

void recipe_options_print_json(FILE *out, const recipe_options *o) {
    fprintf(out, "\"w_bits\": %d, \"a_bits\": %d, \"kv_bits\": %d, \"w_group\": %d, \"w_clip\": %s, \"gptq\": %s, ",
            o->w_bits, o->a_bits, o->kv_bits, o->w_group, o->w_clip ? "true" : "false", o->gptq ? "true" : "false");
    fprintf(out, "\"rotation\": ");
    cli_json_string(out, o->rotation, strlen(o->rotation));
    fprintf(out, ", \"mode\": \"%s\", \"seed\": %llu, \"a_clip\": %g, \"kv_clip\": %g, \"embed_bits\": %d",
            o->mode, (unsigned long long)o->seed, (double)o->a_clip, (double)o->kv_clip, o->embed_bits);
}
