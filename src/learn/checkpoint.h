/* The calibration checkpoint: everything the rotation-learning loop needs to continue with
 * bit-identical results, written atomically (temporary file, then rename). The loop draws no
 * random numbers after the initial rotations, so the seed is the whole generator state.
 * Layout (little-endian):
 *   offset 0   8 bytes  magic "SQCKPT\0\1"
 *   offset 8   u32      format version (3)
 *   offset 12  u32[17]  dim, head_dim, n_layers, mode_had, w_bits, w_group, a_bits, kv_bits,
 *                       window, samples, windows_per_step, iterations, next_iteration,
 *                       lr_halvings, consecutive_failures, calibration_crc (CRC-32 of the
 *                       window tokens), scale_gradient
 *   offset 80  u64      seed (initial rotations and online transforms)
 *   offset 88  f64      base learning rate
 *   offset 96  f64      gradient-norm clipping threshold
 *   offset 104 f64[dim²] R1, f64[n_layers·head_dim²] R2, then the last rotations whose loss was
 *                       finite (restored after a NaN): f64[dim²] R1, f64[n_layers·head_dim²] R2
 *   last 4     u32      CRC-32 of every byte before it
 * Version 2 had no scale_gradient field (u32[16], seed at offset 76), and version 1 had no
 * w_group field either. Loading rejects every version other than 3, so older files cannot be
 * resumed. */
#ifndef SQ_LEARN_CHECKPOINT_H
#define SQ_LEARN_CHECKPOINT_H

#include <stdint.h>

#include "core/status.h"

typedef struct sq_checkpoint {
    uint32_t dim;
    uint32_t head_dim;
    uint32_t n_layers;
    uint32_t mode_had;
    uint32_t w_bits;
    uint32_t w_group;              /* weight columns per scale (0: one per row), stored as 0 at w_bits 16 */
    uint32_t a_bits;
    uint32_t kv_bits;
    uint32_t window;
    uint32_t samples;
    uint32_t windows_per_step;
    uint32_t iterations;
    uint32_t next_iteration;       /* iterations completed */
    uint32_t lr_halvings;          /* the learning rate is lr·2^-lr_halvings after NaN recoveries */
    uint32_t consecutive_failures; /* NaN recoveries since the last good iteration */
    uint32_t calibration_crc;
    uint32_t scale_gradient;       /* 1: learned with the quantizers' scale term */
    uint64_t seed;
    double lr;
    double max_grad_norm;
    double *r1;           /* (dim, dim) current R1 */
    double *r2;           /* (n_layers, head_dim, head_dim) current R2 */
    double *last_good_r1; /* (dim, dim) */
    double *last_good_r2; /* (n_layers, head_dim, head_dim) */
} sq_checkpoint;

/* Writes checkpoint to path atomically. */
sq_status sq_checkpoint_save(const sq_checkpoint *checkpoint, const char *path, sq_error *err);

/* Reads path, checking the magic, version, size and checksum, into checkpoint, whose rotation
 * arrays the caller frees with sq_checkpoint_free. Fails with SQ_ERR_UNSUPPORTED naming the
 * version found and the version expected when the format version is not 3. */
sq_status sq_checkpoint_load(const char *path, sq_checkpoint *checkpoint, sq_error *err);

void sq_checkpoint_free(sq_checkpoint *checkpoint);

#endif
