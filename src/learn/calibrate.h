/* The rotation-learning loop of SpinQuant. It starts from random Hadamard R1 and R2, the same
 * matrices as sq_recipe_build_rotations with SQ_ROTATION_HADAMARD and the seed. Each
 * iteration i then:
 *   - computes the loss and gradient on windows_per_step calibration windows, taken in order
 *     and cycled;
 *   - clips the joint gradient norm of all rotations;
 *   - takes one Cayley SGD step per rotation with the cosine learning rate
 *     lr·½·(1 + cos(π·i/iterations)), with no warm-up and no momentum.
 *
 * Robustness: a NaN or Inf loss, gradient or update restores the last rotations whose loss
 * was finite, halves the learning rate and retries the iteration. After more than
 * max_failures failures in a row the run ends with SQ_ERR_NUMERIC. A rotation whose orthogonality error
 * max|RᵀR − I| exceeds orthogonality_tolerance is re-orthonormalized by QR.
 *
 * Determinism: every product sums in a fixed order for any thread count and the loop draws
 * no random numbers, so a run resumed from a checkpoint ends with the same bits as an
 * uninterrupted one. */
#ifndef SQ_LEARN_CALIBRATE_H
#define SQ_LEARN_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "learn/learn_network.h"
#include "model/model.h"
#include "rotation/rotation_file.h"

typedef struct sq_calibration_options {
    sq_learn_settings settings;      /* quantizers and mode; settings.online_seed is set to seed */
    int32_t iterations;              /* optimizer steps */
    double lr;                       /* initial learning rate */
    double max_grad_norm;            /* joint gradient-norm clipping threshold */
    int32_t window;                  /* tokens per calibration window */
    int32_t samples;                 /* windows cut from the start of the token stream */
    int32_t windows_per_step;        /* windows whose gradients are averaged per step */
    uint64_t seed;                   /* initial rotations and the online transforms' fallback */
    double orthogonality_tolerance;  /* re-orthonormalize above this max|RᵀR − I| */
    int32_t max_failures;            /* NaN recoveries in a row before giving up */
    const char *checkpoint_path;     /* NULL: no checkpoints */
    int32_t checkpoint_every;        /* iterations between checkpoints (the last one is always written) */
    int resume;                      /* 1: continue from checkpoint_path */
    int32_t fault_iteration;         /* for tests: the loss of this 0-based iteration reads as NaN once; -1: none */
} sq_calibration_options;

/* Returns 100 iterations, lr 1.5, clipping at 1.0, 256-token windows, 64 samples, one window
 * per step, tolerance 1e-5, 5 failures, a checkpoint every 5 iterations, W16A4KV4 had. */
sq_calibration_options sq_calibration_options_default(void);

/* One line of progress, reported after every iteration and every NaN recovery. */
typedef struct sq_calibration_progress {
    int32_t iteration;          /* iterations completed (1-based after a step) */
    int32_t iterations;
    double loss;                /* mean loss of the step's windows; NaN for a recovery */
    double lr;                  /* learning rate of the step */
    double grad_norm;           /* joint gradient norm before clipping */
    double orthogonality_error; /* max|RᵀR − I| over R1 and every R2 after the step */
    double seconds;             /* wall time of the step */
    double seconds_left;        /* estimate from the mean time per step so far */
    int recovered;              /* 1: the step failed with NaN/Inf and was rolled back */
    int reorthonormalized;      /* rotations re-orthonormalized by QR in this step */
} sq_calibration_progress;

/* Receives each progress line; a non-zero return stops the run with SQ_ERR_ABORTED (after
 * any checkpoint due at that iteration has been written). */
typedef int (*sq_calibration_progress_fn)(void *user_data, const sq_calibration_progress *progress);

/* Returns the CRC-32 of the windows the options select from tokens, which a checkpoint
 * records so that resuming on other text fails. */
uint32_t sq_calibration_data_crc(const int32_t *tokens, const sq_calibration_options *options);

/* Learns R1 and R2 for model, which sq_learn_prepare_model has prepared with the same mode
 * and seed, on tokens (n_tokens), and fills out (allocated here) with them, mode_had and
 * online_seed = seed. Fails with SQ_ERR_INVALID_ARG when the tokens hold fewer than
 * samples·window, SQ_ERR_MISMATCH when the checkpoint was made with other settings or data,
 * SQ_ERR_NUMERIC after repeated non-finite losses, SQ_ERR_ABORTED when progress stops it. */
sq_status sq_calibrate(const sq_model *model, const int32_t *tokens, size_t n_tokens,
                       const sq_calibration_options *options, sq_threadpool *pool, const sq_logger *logger,
                       sq_calibration_progress_fn progress, void *user_data, sq_rotation_set *out, sq_error *err);

#endif
