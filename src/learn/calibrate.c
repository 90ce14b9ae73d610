/* The rotation-learning loop: schedule, clipping, Cayley steps, NaN recovery, checkpoints. */
#include "learn/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/crc32.h"
#include "learn/cayley.h"
#include "learn/checkpoint.h"
#include "linalg/linalg.h"
#include "pipeline/recipe.h"

sq_calibration_options sq_calibration_options_default(void) {
    sq_calibration_options o = {0};
    o.settings = sq_learn_settings_default();
    o.iterations = 100;
    o.lr = 1.5;
    o.max_grad_norm = 1.0;
    o.window = 256;
    o.samples = 64;
    o.windows_per_step = 1;
    o.orthogonality_tolerance = 1e-5;
    o.max_failures = 5;
    o.checkpoint_every = 5;
    o.fault_iteration = -1;
    return o;
}

uint32_t sq_calibration_data_crc(const int32_t *tokens, const sq_calibration_options *o) {
    uint32_t crc = 0;
    size_t count = (size_t)o->samples * (size_t)o->window;
    for (size_t i = 0; i < count; i++) {
        uint8_t bytes[4];
        for (int b = 0; b < 4; b++) {
            bytes[b] = (uint8_t)((uint32_t)tokens[i] >> (8 * b));
        }
        crc = sq_crc32_update(crc, bytes, 4);
    }
    return crc;
}

static const double pi = 3.14159265358979323846;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sq_status check_options(const sq_calibration_options *o, const sq_config *c, size_t n_tokens, sq_error *err) {
    if (o->iterations < 1 || !(o->lr > 0.0) || !(o->max_grad_norm > 0.0) || o->windows_per_step < 1 ||
        o->samples < 1 || o->checkpoint_every < 1 || o->max_failures < 0 || !(o->orthogonality_tolerance > 0.0)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "invalid calibration options: %d iterations, lr %g, clipping %g, %d samples, %d windows "
                            "per step, checkpoint every %d; expected positive values",
                            o->iterations, o->lr, o->max_grad_norm, o->samples, o->windows_per_step,
                            o->checkpoint_every);
    }
    if (o->window < 2 || o->window > c->context_length) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid window of %d tokens, expected 2 to the context of %d",
                            o->window, c->context_length);
    }
    size_t needed = (size_t)o->samples * (size_t)o->window;
    if (n_tokens < needed) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "the calibration text has %zu tokens, but %d windows of %d tokens need %zu; give a longer "
                            "text, fewer --samples or a smaller --window",
                            n_tokens, o->samples, o->window, needed);
    }
    if ((o->resume || o->checkpoint_path != NULL) && (o->checkpoint_path == NULL || o->checkpoint_path[0] == '\0')) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "resuming needs a checkpoint file");
    }
    return SQ_OK;
}

/* Fails with SQ_ERR_MISMATCH naming the first field of the checkpoint that differs. */
static sq_status check_resume(const sq_checkpoint *ck, const sq_checkpoint *expected, const char *path,
                              sq_error *err) {
    struct {
        const char *name;
        uint64_t have;
        uint64_t want;
    } fields[] = {
        {"dim", ck->dim, expected->dim},
        {"head_dim", ck->head_dim, expected->head_dim},
        {"n_layers", ck->n_layers, expected->n_layers},
        {"mode (1 = had)", ck->mode_had, expected->mode_had},
        {"--w-bits", ck->w_bits, expected->w_bits},
        {"--w-group", ck->w_group, expected->w_group},
        {"--a-bits", ck->a_bits, expected->a_bits},
        {"--kv-bits", ck->kv_bits, expected->kv_bits},
        {"--window", ck->window, expected->window},
        {"--samples", ck->samples, expected->samples},
        {"windows per step", ck->windows_per_step, expected->windows_per_step},
        {"--iterations", ck->iterations, expected->iterations},
        {"--seed", ck->seed, expected->seed},
        {"calibration data checksum", ck->calibration_crc, expected->calibration_crc},
        {"--scale-gradient", ck->scale_gradient, expected->scale_gradient},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].have != fields[i].want) {
            return sq_error_set(err, SQ_ERR_MISMATCH,
                                "checkpoint '%s' was made with %s %llu, this run has %llu; resume with the same "
                                "settings and text",
                                path, fields[i].name, (unsigned long long)fields[i].have,
                                (unsigned long long)fields[i].want);
        }
    }
    if (ck->lr != expected->lr || ck->max_grad_norm != expected->max_grad_norm) {
        return sq_error_set(err, SQ_ERR_MISMATCH,
                            "checkpoint '%s' was made with --lr %g and clipping %g, this run has %g and %g", path,
                            ck->lr, ck->max_grad_norm, expected->lr, expected->max_grad_norm);
    }
    if (ck->next_iteration > ck->iterations) {
        return sq_error_set(err, SQ_ERR_FORMAT, "checkpoint '%s' is at iteration %u of %u", path, ck->next_iteration,
                            ck->iterations);
    }
    return SQ_OK;
}

/* Fills the state's rotations with the random Hadamard initialization. */
static sq_status init_rotations(sq_checkpoint *ck, const sq_config *c, const sq_calibration_options *o,
                                sq_error *err) {
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.seed = o->seed;
    recipe.mode_had = o->settings.mode_had;
    sq_rotation_set set = {0};
    sq_status status = sq_recipe_build_rotations(&recipe, c, &set, err);
    if (status != SQ_OK) {
        return status;
    }
    size_t r1_count = (size_t)c->dim * (size_t)c->dim;
    size_t r2_count = (size_t)c->n_layers * (size_t)c->head_dim * (size_t)c->head_dim;
    for (size_t i = 0; i < r1_count; i++) {
        ck->r1[i] = (double)set.r1[i];
    }
    for (size_t i = 0; i < r2_count; i++) {
        ck->r2[i] = (double)set.r2[i];
    }
    sq_rotation_set_free(&set);
    memcpy(ck->last_good_r1, ck->r1, r1_count * sizeof(double));
    memcpy(ck->last_good_r2, ck->r2, r2_count * sizeof(double));
    return SQ_OK;
}

typedef struct calibration_run {
    const sq_model *model;
    const sq_calibration_options *options;
    sq_threadpool *pool;
    sq_learn_network *network;
    sq_cayley_workspace workspace;
    sq_checkpoint state;
    double *g1;        /* (dim, dim) gradient of the step */
    double *g2;        /* (n_layers, head_dim, head_dim) */
    double *window_g1; /* gradients of one window, when a step averages several */
    double *window_g2;
    int64_t r1_count;
    int64_t r2_count;
} calibration_run;

/* Loss and gradient of iteration i, averaged over its windows. */
static sq_status step_gradient(calibration_run *run, const int32_t *tokens, int32_t i, double *loss,
                               sq_error *err) {
    const sq_calibration_options *o = run->options;
    int32_t k = o->windows_per_step;
    *loss = 0.0;
    for (int32_t j = 0; j < k; j++) {
        int64_t window_index = ((int64_t)i * k + j) % o->samples;
        const int32_t *window = tokens + window_index * o->window;
        double window_loss = 0.0;
        double *g1 = j == 0 ? run->g1 : run->window_g1;
        double *g2 = j == 0 ? run->g2 : run->window_g2;
        sq_status status = sq_learn_network_loss(run->network, window, o->window, run->state.r1, run->state.r2,
                                                 &window_loss, g1, g2, err);
        if (status != SQ_OK) {
            return status;
        }
        *loss += window_loss;
        if (j > 0) {
            for (int64_t e = 0; e < run->r1_count; e++) {
                run->g1[e] += g1[e];
            }
            for (int64_t e = 0; e < run->r2_count; e++) {
                run->g2[e] += g2[e];
            }
        }
    }
    if (k > 1) {
        for (int64_t e = 0; e < run->r1_count; e++) {
            run->g1[e] /= k;
        }
        for (int64_t e = 0; e < run->r2_count; e++) {
            run->g2[e] /= k;
        }
    }
    *loss /= k;
    return SQ_OK;
}

/* Clips the gradients and takes a Cayley step on R1 and every R2. */
static sq_status update_rotations(calibration_run *run, double lr, double *grad_norm, sq_error *err) {
    const sq_config *c = &run->model->config;
    double *gradients[2] = {run->g1, run->g2};
    int64_t counts[2] = {run->r1_count, run->r2_count};
    *grad_norm = sq_cayley_clip_gradients(gradients, counts, 2, run->options->max_grad_norm);
    if (!isfinite(*grad_norm)) {
        return sq_error_set(err, SQ_ERR_NUMERIC, "the gradient norm is %g", *grad_norm);
    }
    sq_status status = sq_cayley_step(&run->workspace, run->pool, run->state.r1, run->g1, c->dim, lr, NULL, err);
    int64_t r2_size = (int64_t)c->head_dim * c->head_dim;
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        status = sq_cayley_step(&run->workspace, run->pool, run->state.r2 + l * r2_size, run->g2 + l * r2_size,
                                c->head_dim, lr, NULL, err);
    }
    return status;
}

/* Returns the largest orthogonality error and re-orthonormalizes each rotation above the
 * tolerance, counting them in *fixed. */
static sq_status check_orthogonality(calibration_run *run, double *max_error, int *fixed, sq_error *err) {
    const sq_config *c = &run->model->config;
    int64_t r2_size = (int64_t)c->head_dim * c->head_dim;
    *max_error = 0.0;
    *fixed = 0;
    for (int32_t l = -1; l < c->n_layers; l++) {
        double *r = l < 0 ? run->state.r1 : run->state.r2 + l * r2_size;
        int32_t n = l < 0 ? c->dim : c->head_dim;
        double error = sq_linalg_orthogonality_error_f64(r, n);
        *max_error = error > *max_error ? error : *max_error;
        if (error > run->options->orthogonality_tolerance) {
            sq_status status = sq_cayley_reorthonormalize(r, n, err);
            if (status != SQ_OK) {
                return status;
            }
            (*fixed)++;
        }
    }
    return SQ_OK;
}

static sq_status run_alloc(calibration_run *run, sq_error *err) {
    const sq_config *c = &run->model->config;
    run->r1_count = (int64_t)c->dim * c->dim;
    run->r2_count = (int64_t)c->n_layers * c->head_dim * c->head_dim;
    size_t r1_bytes = (size_t)run->r1_count * sizeof(double);
    size_t r2_bytes = (size_t)run->r2_count * sizeof(double) + 1;
    run->g1 = malloc(r1_bytes);
    run->g2 = malloc(r2_bytes);
    run->window_g1 = malloc(r1_bytes);
    run->window_g2 = malloc(r2_bytes);
    run->state.r1 = malloc(r1_bytes);
    run->state.r2 = malloc(r2_bytes);
    run->state.last_good_r1 = malloc(r1_bytes);
    run->state.last_good_r2 = malloc(r2_bytes);
    if (!run->g1 || !run->g2 || !run->window_g1 || !run->window_g2 || !run->state.r1 || !run->state.r2 ||
        !run->state.last_good_r1 || !run->state.last_good_r2) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the rotations and their gradients");
    }
    int32_t largest = c->dim > c->head_dim ? c->dim : c->head_dim;
    return sq_cayley_workspace_init(&run->workspace, largest, err);
}

static void run_free(calibration_run *run) {
    free(run->g1);
    free(run->g2);
    free(run->window_g1);
    free(run->window_g2);
    sq_checkpoint_free(&run->state);
    sq_cayley_workspace_free(&run->workspace);
    sq_learn_network_free(run->network);
}

/* Starts fresh or from the checkpoint; the expected header goes into run->state either way. */
static sq_status start_state(calibration_run *run, const int32_t *tokens, const sq_logger *logger, sq_error *err) {
    const sq_config *c = &run->model->config;
    const sq_calibration_options *o = run->options;
    sq_checkpoint *s = &run->state;
    s->dim = (uint32_t)c->dim;
    s->head_dim = (uint32_t)c->head_dim;
    s->n_layers = (uint32_t)c->n_layers;
    s->mode_had = (uint32_t)o->settings.mode_had;
    s->w_bits = (uint32_t)o->settings.w_bits;
    /* Groups change nothing without weight quantization, so a W16 run resumes with any group. */
    s->w_group = o->settings.w_bits < 16 ? (uint32_t)o->settings.w_group : 0;
    s->a_bits = (uint32_t)o->settings.a_bits;
    s->kv_bits = (uint32_t)o->settings.kv_bits;
    s->window = (uint32_t)o->window;
    s->samples = (uint32_t)o->samples;
    s->windows_per_step = (uint32_t)o->windows_per_step;
    s->iterations = (uint32_t)o->iterations;
    s->calibration_crc = sq_calibration_data_crc(tokens, o);
    s->scale_gradient = (uint32_t)(o->settings.scale_gradient != 0);
    s->seed = o->seed;
    s->lr = o->lr;
    s->max_grad_norm = o->max_grad_norm;
    if (!o->resume) {
        return init_rotations(s, c, o, err);
    }

    sq_checkpoint loaded;
    sq_status status = sq_checkpoint_load(o->checkpoint_path, &loaded, err);
    if (status == SQ_OK) {
        status = check_resume(&loaded, s, o->checkpoint_path, err);
    }
    if (status == SQ_OK) {
        memcpy(s->r1, loaded.r1, (size_t)run->r1_count * sizeof(double));
        memcpy(s->r2, loaded.r2, (size_t)run->r2_count * sizeof(double));
        memcpy(s->last_good_r1, loaded.last_good_r1, (size_t)run->r1_count * sizeof(double));
        memcpy(s->last_good_r2, loaded.last_good_r2, (size_t)run->r2_count * sizeof(double));
        s->next_iteration = loaded.next_iteration;
        s->lr_halvings = loaded.lr_halvings;
        s->consecutive_failures = loaded.consecutive_failures;
        SQ_LOG_INFO_F(logger, "resuming from '%s' after iteration %u of %u", o->checkpoint_path,
                      loaded.next_iteration, loaded.iterations);
    }
    sq_checkpoint_free(&loaded);
    return status;
}

sq_status sq_calibrate(const sq_model *model, const int32_t *tokens, size_t n_tokens,
                       const sq_calibration_options *options, sq_threadpool *pool, const sq_logger *logger,
                       sq_calibration_progress_fn progress, void *user_data, sq_rotation_set *out, sq_error *err) {
    const sq_config *c = &model->config;
    memset(out, 0, sizeof(*out));
    sq_status status = check_options(options, c, n_tokens, err);
    if (status != SQ_OK) {
        return status;
    }
    calibration_run run = {0};
    run.model = model;
    run.options = options;
    run.pool = pool;
    sq_learn_settings settings = options->settings;
    settings.online_seed = options->seed;
    status = run_alloc(&run, err);
    if (status == SQ_OK) {
        status = sq_learn_network_create(model, &settings, options->window, pool, logger, &run.network, err);
    }
    if (status == SQ_OK) {
        SQ_LOG_INFO_F(logger, "learning buffers: %.1f MB for windows of %d tokens",
                      (double)sq_learn_network_bytes(run.network) / 1e6, options->window);
        status = start_state(&run, tokens, logger, err);
    }

    sq_checkpoint *s = &run.state;
    int fault_pending = options->fault_iteration >= 0;
    double seconds_total = 0.0;
    int32_t steps_timed = 0;
    while (status == SQ_OK && s->next_iteration < s->iterations) {
        int32_t i = (int32_t)s->next_iteration;
        double start = now_seconds();
        double lr = options->lr * ldexp(1.0, -(int)s->lr_halvings) * 0.5 *
                    (1.0 + cos(pi * (double)i / (double)options->iterations));
        sq_calibration_progress line = {0};
        line.iterations = options->iterations;
        line.lr = lr;

        /* ---- loss, gradient and update; a NaN anywhere rolls the step back ---- */
        sq_error step_err = {0};
        double loss = NAN;
        sq_status step = step_gradient(&run, tokens, i, &loss, &step_err);
        if (step == SQ_OK && fault_pending && i == options->fault_iteration) {
            fault_pending = 0;
            step = sq_error_set(&step_err, SQ_ERR_NUMERIC, "injected NaN loss at iteration %d", i + 1);
        }
        if (step == SQ_OK) {
            memcpy(s->last_good_r1, s->r1, (size_t)run.r1_count * sizeof(double));
            memcpy(s->last_good_r2, s->r2, (size_t)run.r2_count * sizeof(double));
            step = update_rotations(&run, lr, &line.grad_norm, &step_err);
        }
        if (step == SQ_ERR_NUMERIC) {
            memcpy(s->r1, s->last_good_r1, (size_t)run.r1_count * sizeof(double));
            memcpy(s->r2, s->last_good_r2, (size_t)run.r2_count * sizeof(double));
            s->lr_halvings++;
            s->consecutive_failures++;
            SQ_LOG_WARN_F(logger, "iteration %d: %s; restored the last good rotations and halved the learning rate",
                          i + 1, step_err.message);
            if (s->consecutive_failures > (uint32_t)options->max_failures) {
                status = sq_error_set(err, SQ_ERR_NUMERIC,
                                      "iteration %d failed %u times in a row (%s); the model or the calibration text "
                                      "gives non-finite values, try a lower --lr or other text",
                                      i + 1, s->consecutive_failures, step_err.message);
                break;
            }
            line.iteration = i;
            line.loss = NAN;
            line.recovered = 1;
            line.seconds = now_seconds() - start;
            if (progress != NULL && progress(user_data, &line) != 0) {
                status = sq_error_set(err, SQ_ERR_ABORTED, "calibration stopped at iteration %d", i + 1);
            }
            continue;
        }
        if (step != SQ_OK) {
            *err = step_err;
            status = step;
            break;
        }
        s->consecutive_failures = 0;
        status = check_orthogonality(&run, &line.orthogonality_error, &line.reorthonormalized, err);
        if (status != SQ_OK) {
            break;
        }
        s->next_iteration = (uint32_t)(i + 1);

        /* ---- checkpoint and progress ---- */
        if (options->checkpoint_path != NULL &&
            (s->next_iteration % (uint32_t)options->checkpoint_every == 0 || s->next_iteration == s->iterations)) {
            status = sq_checkpoint_save(s, options->checkpoint_path, err);
            if (status != SQ_OK) {
                break;
            }
        }
        line.iteration = i + 1;
        line.loss = loss;
        line.seconds = now_seconds() - start;
        seconds_total += line.seconds;
        steps_timed++;
        line.seconds_left = seconds_total / steps_timed * (double)(options->iterations - (i + 1));
        if (progress != NULL && progress(user_data, &line) != 0 && s->next_iteration < s->iterations) {
            status = sq_error_set(err, SQ_ERR_ABORTED, "calibration stopped after iteration %d of %d", i + 1,
                                  options->iterations);
        }
    }

    /* ---- output ---- */
    if (status == SQ_OK) {
        status = sq_rotation_set_alloc(out, c, err);
    }
    if (status == SQ_OK) {
        for (int64_t e = 0; e < run.r1_count; e++) {
            out->r1[e] = (float)s->r1[e];
        }
        for (int64_t e = 0; e < run.r2_count; e++) {
            out->r2[e] = (float)s->r2[e];
        }
        out->mode_had = options->settings.mode_had;
        out->online_seed = options->seed;
    }
    run_free(&run);
    return status;
}
