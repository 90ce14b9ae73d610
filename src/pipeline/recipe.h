/* A quantization recipe and the function that applies it to a loaded fp32 model:
 *   1. fuse the RMSNorm gains into the following linear layers (and untie the classifier);
 *   2. rotate: R1 and every R2 from a random Hadamard, a Haar random orthogonal matrix or a
 *      rotation file; with mode "had" also R4 (weight side, online side in the hooks) and R3;
 *   3. quantize the weights of every linear layer by RTN (optionally with the clipping search)
 *      or GPTQ, and optionally the embedding and classifier to 8 bits;
 *   4. prepare the forward hooks that quantize activations and the KV cache.
 * Bit widths of 16 disable the corresponding quantizer. */
#ifndef SQ_PIPELINE_RECIPE_H
#define SQ_PIPELINE_RECIPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "hadamard/hadamard_plan.h"
#include "model/model.h"
#include "pipeline/fake_quant.h"
#include "rotation/rotation_file.h"

typedef enum sq_rotation_kind {
    SQ_ROTATION_NONE = 0,
    SQ_ROTATION_HADAMARD = 1, /* random Hadamard: random signs times a normalized Hadamard matrix */
    SQ_ROTATION_RANDOM = 2,   /* Haar random orthogonal */
    SQ_ROTATION_FILE = 3,     /* R1 and R2 read from a rotation file */
} sq_rotation_kind;

typedef struct sq_recipe {
    int w_bits;              /* 2..16 */
    int w_group;             /* 0: per output channel; else columns per scale */
    int w_clip;              /* 1: clipping-ratio search for weight scales */
    int gptq;                /* 1: GPTQ instead of RTN (needs calibration tokens) */
    int gptq_act_order;
    int a_bits;              /* 2..16 */
    int kv_bits;             /* 2..16 */
    float a_clip;            /* activation clip ratio in (0, 1] */
    float kv_clip;
    int a_symmetric;
    int embed_bits;          /* 16, or 8 for the embedding and classifier */
    sq_rotation_kind rotation;
    const char *rotation_path; /* for SQ_ROTATION_FILE */
    int mode_had;            /* 1: R3 and R4 as well as R1 and R2 */
    uint64_t seed;
    const int32_t *calibration; /* GPTQ calibration tokens */
    size_t n_calibration;
    int32_t calibration_window;
    int32_t calibration_samples;
} sq_recipe;

/* The online side of a prepared model: hooks for sq_run_state and the transforms they use. */
typedef struct sq_online {
    sq_fake_quant fake_quant;
    sq_hadamard_plan *r3;    /* over head_dim, or NULL */
    sq_hadamard_plan *r4;    /* over hidden_dim, or NULL */
    float *r3_scratch;
    float *r4_scratch;
    struct sq_online_transform { const sq_hadamard_plan *plan; float *scratch; } r3_context, r4_context;
} sq_online;

/* Returns a recipe with no quantization and no rotation. */
sq_recipe sq_recipe_default(void);

/* Checks the recipe's values against the model (bit widths 2..16, group sizes that divide,
 * enough calibration tokens); the message names the first invalid value. */
sq_status sq_recipe_validate(const sq_recipe *recipe, const sq_config *config, sq_error *err);

/* Builds the recipe's R1 and R2 (random Hadamard, random orthogonal or from the file). */
sq_status sq_recipe_build_rotations(const sq_recipe *recipe, const sq_config *config, sq_rotation_set *set,
                                    sq_error *err);

/* Applies the recipe to model in place and fills online; the caller then installs
 * online->fake_quant as the run state's hooks with sq_online_hooks. */
sq_status sq_recipe_apply(const sq_recipe *recipe, sq_model *model, sq_threadpool *pool, const sq_logger *logger,
                          sq_online *online, sq_error *err);

sq_forward_hooks sq_online_hooks(sq_online *online);

void sq_online_free(sq_online *online);

#endif
