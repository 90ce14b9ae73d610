/* The rotation file: R1 and every layer's R2, with the model dimensions so that a file made
 * for another model is rejected. Layout (little-endian):
 *   offset 0   8 bytes  magic "SQROT\0\0\1"
 *   offset 8   u32      format version (1)
 *   offset 12  u32      dim (R1 is dim x dim)
 *   offset 16  u32      head_dim (each R2 is head_dim x head_dim)
 *   offset 20  u32      n_layers (number of R2 matrices)
 *   offset 24  u32      mode: 0 = nohad (R1, R2 only), 1 = had (the model also runs R3 and R4)
 *   offset 28  u32      reserved, 0
 *   offset 32  u64      seed of the online transforms' random fallback (sizes with no
 *                       Hadamard matrix use a seeded random orthogonal R3 or R4)
 *   offset 40  f32[dim*dim]                 R1, row-major
 *   then       f32[n_layers*head_dim^2]     R2 of layer 0, 1, …, row-major
 *   last 4     u32      CRC-32 of every byte before it */
#ifndef SQ_ROTATION_ROTATION_FILE_H
#define SQ_ROTATION_ROTATION_FILE_H

#include <stdint.h>

#include "core/status.h"
#include "model/model.h"

typedef struct sq_rotation_set {
    int32_t dim;
    int32_t head_dim;
    int32_t n_layers;
    int32_t mode_had; /* 1: R3 and R4 are part of the recipe */
    uint64_t online_seed; /* seed of the R3/R4 random fallback, see sq_hadamard_plan_create */
    float *r1;        /* (dim, dim) */
    float *r2;        /* (n_layers, head_dim, head_dim) */
} sq_rotation_set;

/* Allocates identity rotations for config. */
sq_status sq_rotation_set_alloc(sq_rotation_set *set, const sq_config *config, sq_error *err);

void sq_rotation_set_free(sq_rotation_set *set);

/* Writes set to path atomically (temporary file, then rename). */
sq_status sq_rotation_set_save(const sq_rotation_set *set, const char *path, sq_error *err);

/* Reads path and checks its magic, version, size and checksum, and that its dimensions match
 * config (when config is not NULL). */
sq_status sq_rotation_set_load(const char *path, const sq_config *config, sq_rotation_set *set, sq_error *err);

/* Returns the largest |RᵀR − I| entry over R1 and every R2. */
double sq_rotation_set_orthogonality_error(const sq_rotation_set *set);

#endif
