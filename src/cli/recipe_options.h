/* The quantization and rotation flags shared by eval, quantize and calibrate, and their
 * conversion into an sq_recipe. */
#ifndef SQ_CLI_RECIPE_OPTIONS_H
#define SQ_CLI_RECIPE_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "cli/args.h"
#include "model/model.h"
#include "pipeline/recipe.h"

typedef struct recipe_options {
    int32_t w_bits;
    int32_t a_bits;
    int32_t kv_bits;
    int32_t w_group;
    int w_clip;
    int gptq;
    int act_order;
    const char *calib_path;
    int32_t calib_samples;
    int32_t calib_window;
    const char *rotation;  /* none | hadamard | random | FILE */
    const char *mode;      /* had | nohad */
    uint64_t seed;
    float a_clip;
    float kv_clip;
    int a_symmetric;
    int32_t embed_bits;
} recipe_options;

#define RECIPE_OPTION_COUNT 16

void recipe_options_defaults(recipe_options *o);

/* Writes the option table entries for o into options (RECIPE_OPTION_COUNT entries). */
void recipe_options_table(recipe_options *o, cli_option *options);

/* Returns 1 when any flag asks for quantization or rotation. */
int recipe_options_active(const recipe_options *o);

/* Fills recipe from o; reads and tokenizes the calibration text for GPTQ (the caller frees
 * *calibration_tokens). */
sq_status recipe_options_build(const recipe_options *o, const sq_model *model, sq_recipe *recipe,
                               int32_t **calibration_tokens, sq_error *err);

/* Writes the settings as JSON members (without braces), for the --json outputs. */
void recipe_options_print_json(FILE *out, const recipe_options *o);

#endif
