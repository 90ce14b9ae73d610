/* A .spq model prepared for the integer forward pass: the file's tensors plus what the kernels
 * need and the file does not store (per-group sums of the weight codes for the zero-point term,
 * the online Hadamard plans R3 and R4, fp32 copies of fp16 tables), and the chosen kernels. */
#ifndef SQ_RUNTIME_RT_MODEL_H
#define SQ_RUNTIME_RT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "hadamard/hadamard_plan.h"
#include "kernels/qdot.h"
#include "spq/spq_format.h"
#include "spq/spq_model.h"

/* One q4 weight matrix with its kernel grouping. The kernels return one int32 sum per
 * kernel_group columns: the largest run that shares both a weight scale and an activation
 * scale, gcd(weight group, activation group). */
typedef struct sq_rt_matrix {
    const sq_spq_qmatrix *weights;
    int32_t act_group;        /* columns per activation scale (head_dim for o_proj, else cols) */
    int32_t kernel_group;
    int32_t n_kernel_groups;  /* cols / kernel_group */
    int32_t *weight_sums;     /* (rows, n_kernel_groups) Σ of the signed codes; owned */
} sq_rt_matrix;

/* Fills m for the weights w read with activation groups of act_group columns, adding the bytes it
 * allocates to *bytes. m must start zeroed; sq_rt_matrix_free releases it, also after a failure. */
sq_status sq_rt_matrix_prepare(const sq_spq_qmatrix *w, int32_t act_group, sq_rt_matrix *m, size_t *bytes,
                               sq_error *err);

void sq_rt_matrix_free(sq_rt_matrix *m);

typedef struct sq_rt_layer {
    sq_rt_matrix wq, wk, wv, wo, w_gate, w_up, w_down;
} sq_rt_layer;

typedef struct sq_rt_model {
    sq_spq_model spq;            /* owned: the file's contents */
    sq_rt_layer *layers;         /* [n_layers] */
    float *embedding_f32;        /* (vocab_size, dim) fp32 copy of an fp16 embedding, or NULL */
    float *classifier_f32;       /* (vocab_size, dim) fp32 copy of an fp16 separate classifier, or NULL */
    sq_hadamard_plan *r3;        /* over head_dim when mode_had, else NULL */
    sq_hadamard_plan *r4;        /* over hidden_dim when mode_had, else NULL */
    const sq_qdot_kernels *kernels;
    size_t derived_bytes;        /* bytes allocated here beyond the file's tensors */
} sq_rt_model;

/* Prepares spq, which the new model takes over (spq is zeroed, also on failure, when it is
 * freed). */
sq_status sq_rt_model_create(sq_spq_model *spq, const sq_logger *logger, sq_rt_model **out, sq_error *err);

/* Reads a .spq file with the whole-file reader and prepares it; failure may be NULL. */
sq_status sq_rt_model_load(const char *path, const sq_logger *logger, sq_rt_model **out, sq_spq_failure *failure,
                           sq_error *err);

void sq_rt_model_free(sq_rt_model *model);

/* Selects other kernels (for tests and benchmarks); fails with SQ_ERR_UNSUPPORTED when isa is
 * not available. */
sq_status sq_rt_model_set_kernels(sq_rt_model *model, sq_kernel_isa isa, sq_error *err);

/* Returns the bytes the model holds: the file's tensors plus the derived data. */
size_t sq_rt_model_bytes(const sq_rt_model *model);

#endif
