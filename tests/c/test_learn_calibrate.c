/* Tests of the rotation-learning loop on stories260K with TinyStories text:
 *   - a short run lowers the training loss and keeps the rotations orthogonal;
 *   - a run stopped and resumed from its checkpoint writes the same rotation file bytes as an
 *     uninterrupted one, also with another thread count;
 *   - the first state equals the initialization of the rotate command;
 *   - a NaN loss is rolled back with a halved learning rate, and repeated NaN ends with an error;
 *   - weight groups (w_group) change what 4-bit learning does and nothing at 16 bits, and a
 *     group that does not divide every input width is rejected;
 *   - the checkpoint stores w_group and the seed at their documented offsets;
 *   - resuming with other settings (also another w_group), from a corrupt checkpoint or from a
 *     version-1 checkpoint, and calibrating on too little text, are rejected. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/crc32.h"
#include "core/io.h"
#include "formats/formats.h"
#include "learn/calibrate.h"
#include "learn/checkpoint.h"
#include "pipeline/recipe.h"
#include "test_util.h"

#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_TOKENIZER "models/stories260K/tok512.bin"
#define TINYSTORIES_PATH "../shared/data/tinystories/tinystories-valid-part.txt"
#define SEED 3

/* stories260K has input widths 64 (dim and n_heads·head_dim) and 172 (hidden_dim) = 4·43, so 4
 * is the largest group that divides them all and 8 divides 64 but not 172. */
#define GROUP 4
#define GROUP_NOT_DIVIDING 8

static sq_model model;
static char temp_dir[] = "/tmp/sq_test_learn_XXXXXX";
static char checkpoint_path[64];
static char full_path[64];
static char resumed_path[64];
static int32_t *tokens;
static size_t n_tokens;

typedef struct recorder {
    int32_t stop_after; /* 0: never */
    int32_t completed;
    int32_t recoveries;
    double lr[64];      /* learning rate of each completed iteration, by iteration number */
} recorder;

static int record(void *user_data, const sq_calibration_progress *p) {
    recorder *r = user_data;
    if (p->recovered) {
        r->recoveries++;
        return 0;
    }
    r->completed++;
    if (p->iteration < 64) {
        r->lr[p->iteration] = p->lr;
    }
    return r->stop_after > 0 && r->completed >= r->stop_after;
}

static sq_calibration_options small_options(void) {
    sq_calibration_options o = sq_calibration_options_default();
    o.iterations = 8;
    o.window = 64;
    o.samples = 8;
    o.seed = SEED;
    o.checkpoint_every = 2;
    return o;
}

static int setup(void) {
    sq_error err = {0};
    if (mkdtemp(temp_dir) == NULL) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 0;
    }
    snprintf(checkpoint_path, sizeof(checkpoint_path), "%s/learn.ckpt", temp_dir);
    snprintf(full_path, sizeof(full_path), "%s/full.rot", temp_dir);
    snprintf(resumed_path, sizeof(resumed_path), "%s/resumed.rot", temp_dir);
    if (sq_model_load(STORIES_BIN, STORIES_TOKENIZER, NULL, &model, &err) != SQ_OK ||
        sq_learn_prepare_model(&model, 1, SEED, NULL, &err) != SQ_OK) {
        fprintf(stderr, "cannot prepare stories260K: %s\n", err.message);
        return 0;
    }
    uint8_t *text = NULL;
    size_t length = 0;
    if (sq_io_read_file(TINYSTORIES_PATH, &text, &length, &err) != SQ_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 0;
    }
    length = length < 60000 ? length : 60000;
    sq_status status = sq_tokenizer_encode(model.tokenizer, (const char *)text, length, -1, 0, &tokens, &n_tokens, &err);
    free(text);
    return status == SQ_OK;
}

/* Mean loss over the option's windows with the given rotations (float, widened). */
static double mean_window_loss(const sq_calibration_options *o, const sq_rotation_set *set) {
    const sq_config *c = &model.config;
    size_t r1_count = (size_t)c->dim * c->dim;
    size_t r2_count = (size_t)c->n_layers * c->head_dim * c->head_dim;
    double *r1 = malloc(r1_count * sizeof(double));
    double *r2 = malloc(r2_count * sizeof(double));
    for (size_t i = 0; i < r1_count; i++) {
        r1[i] = set->r1[i];
    }
    for (size_t i = 0; i < r2_count; i++) {
        r2[i] = set->r2[i];
    }
    sq_learn_settings settings = o->settings;
    settings.online_seed = o->seed;
    sq_learn_network *net = NULL;
    sq_error err = {0};
    double sum = 0.0;
    if (sq_learn_network_create(&model, &settings, o->window, NULL, NULL, &net, &err) != SQ_OK) {
        sum = NAN;
    }
    for (int32_t w = 0; net != NULL && w < o->samples; w++) {
        double loss = NAN;
        sq_learn_network_loss(net, tokens + (size_t)w * o->window, o->window, r1, r2, &loss, NULL, NULL, &err);
        sum += loss;
    }
    sq_learn_network_free(net);
    free(r1);
    free(r2);
    return sum / o->samples;
}

static void initial_rotations(sq_rotation_set *set) {
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = SQ_ROTATION_HADAMARD;
    recipe.seed = SEED;
    sq_error err = {0};
    sq_recipe_build_rotations(&recipe, &model.config, set, &err);
}

/* Weight quantization gives the clearest signal on this model: with 4-bit activations and KV
 * cache, a small rotation change re-draws the rounding of every token, and the loss of a few
 * windows moves by several hundredths in either direction. Full-batch steps on 4-bit weights
 * lower the loss steadily. */
static void test_short_run_lowers_loss(void) {
    sq_calibration_options o = small_options();
    o.iterations = 10;
    o.windows_per_step = o.samples;
    o.settings.w_bits = 4;
    o.settings.a_bits = 16;
    o.settings.kv_bits = 16;
    o.checkpoint_path = NULL;
    sq_rotation_set learned = {0};
    sq_rotation_set start = {0};
    sq_error err = {0};
    recorder r = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, record, &r, &learned, &err);
    CHECK_MSG(status == SQ_OK, "calibrate: %s", err.message);
    if (status != SQ_OK) {
        return;
    }
    CHECK(r.completed == 10);
    initial_rotations(&start);
    double before = mean_window_loss(&o, &start);
    double after = mean_window_loss(&o, &learned);
    fprintf(stderr, "  mean loss over the %d windows: %.5f with random Hadamard, %.5f learned\n", o.samples, before,
            after);
    CHECK_MSG(after < before, "loss %.6f did not drop below %.6f", after, before);
    double orthogonality = sq_rotation_set_orthogonality_error(&learned);
    CHECK_MSG(orthogonality < 1e-5, "orthogonality error %.3e", orthogonality);
    CHECK(learned.mode_had == 1);
    CHECK(learned.online_seed == SEED);
    sq_rotation_set_free(&learned);
    sq_rotation_set_free(&start);
}

/* Saves set to path and returns the file bytes. */
static uint8_t *file_bytes(const sq_rotation_set *set, const char *path, size_t *size) {
    sq_error err = {0};
    uint8_t *bytes = NULL;
    *size = 0;
    if (sq_rotation_set_save(set, path, &err) == SQ_OK) {
        sq_io_read_file(path, &bytes, size, &err);
    }
    remove(path);
    return bytes;
}

static void test_resume_matches_uninterrupted(void) {
    sq_calibration_options o = small_options();
    o.checkpoint_path = checkpoint_path;
    sq_error err = {0};

    sq_rotation_set full = {0};
    recorder r_full = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, record, &r_full, &full, &err) == SQ_OK);
    remove(checkpoint_path);

    /* Stop after 5 iterations: the last checkpoint is from iteration 4, so iteration 5 is redone. */
    sq_rotation_set stopped = {0};
    recorder r_stop = {0};
    r_stop.stop_after = 5;
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, record, &r_stop, &stopped, &err);
    CHECK_MSG(status == SQ_ERR_ABORTED, "stopped run returned %s: %s", sq_status_name(status), err.message);
    CHECK(stopped.r1 == NULL);

    sq_checkpoint checkpoint;
    CHECK(sq_checkpoint_load(checkpoint_path, &checkpoint, &err) == SQ_OK);
    CHECK_MSG(checkpoint.next_iteration == 4, "checkpoint at iteration %u", checkpoint.next_iteration);
    sq_checkpoint_free(&checkpoint);

    sq_threadpool *pool = NULL;
    sq_threadpool_create(2, &pool, &err);
    o.resume = 1;
    sq_rotation_set resumed = {0};
    recorder r_resume = {0};
    status = sq_calibrate(&model, tokens, n_tokens, &o, pool, NULL, record, &r_resume, &resumed, &err);
    CHECK_MSG(status == SQ_OK, "resume: %s", err.message);
    CHECK_MSG(r_resume.completed == 4, "the resumed run did %d iterations, expected 4", r_resume.completed);

    size_t full_size = 0;
    size_t resumed_size = 0;
    uint8_t *full_bytes = file_bytes(&full, full_path, &full_size);
    uint8_t *resumed_bytes = file_bytes(&resumed, resumed_path, &resumed_size);
    CHECK(full_bytes != NULL);
    CHECK(resumed_bytes != NULL);
    CHECK(full_size > 0);
    CHECK(full_size == resumed_size);
    CHECK_MSG(full_bytes != NULL && resumed_bytes != NULL && memcmp(full_bytes, resumed_bytes, full_size) == 0,
              "the resumed rotation file differs from the uninterrupted one");

    free(full_bytes);
    free(resumed_bytes);
    sq_threadpool_free(pool);
    sq_rotation_set_free(&full);
    sq_rotation_set_free(&resumed);
    remove(checkpoint_path);
}

/* The checkpoint's last good rotations after one iteration are the initial ones. */
static void test_initial_rotations_equal_rotate(void) {
    sq_calibration_options o = small_options();
    o.iterations = 1;
    o.checkpoint_path = checkpoint_path;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_checkpoint checkpoint;
    sq_rotation_set start = {0};
    initial_rotations(&start);
    CHECK(sq_checkpoint_load(checkpoint_path, &checkpoint, &err) == SQ_OK);
    int same = 1;
    for (int64_t i = 0; i < (int64_t)model.config.dim * model.config.dim; i++) {
        same &= checkpoint.last_good_r1[i] == (double)start.r1[i];
    }
    for (int64_t i = 0; i < (int64_t)model.config.n_layers * model.config.head_dim * model.config.head_dim; i++) {
        same &= checkpoint.last_good_r2[i] == (double)start.r2[i];
    }
    CHECK_MSG(same, "the initial rotations differ from sq_recipe_build_rotations (the rotate command)");
    sq_checkpoint_free(&checkpoint);
    sq_rotation_set_free(&start);
    sq_rotation_set_free(&out);
    remove(checkpoint_path);
}

static void test_nan_rolls_back_and_halves_lr(void) {
    sq_calibration_options o = small_options();
    o.checkpoint_path = NULL;
    o.fault_iteration = 3;
    sq_rotation_set out = {0};
    sq_error err = {0};
    recorder faulty = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, record, &faulty, &out, &err);
    CHECK_MSG(status == SQ_OK, "calibrate: %s", err.message);
    CHECK(faulty.recoveries == 1);
    CHECK(faulty.completed == 8);

    o.fault_iteration = -1;
    sq_rotation_set clean = {0};
    recorder normal = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, record, &normal, &clean, &err) == SQ_OK);
    CHECK_CLOSE(faulty.lr[3], normal.lr[3], 1e-15);
    CHECK_CLOSE(faulty.lr[4], 0.5 * normal.lr[4], 1e-15);
    CHECK_CLOSE(faulty.lr[8], 0.5 * normal.lr[8], 1e-15);
    CHECK(sq_rotation_set_orthogonality_error(&out) < 1e-5);
    sq_rotation_set_free(&out);
    sq_rotation_set_free(&clean);
}

static void test_repeated_nan_fails(void) {
    sq_model broken = {0};
    sq_error err = {0};
    if (sq_model_clone(&model, &broken, &err) != SQ_OK) {
        CHECK(0);
        return;
    }
    broken.layers[0].wq[5] = NAN;
    sq_calibration_options o = small_options();
    o.checkpoint_path = NULL;
    sq_rotation_set out = {0};
    recorder r = {0};
    sq_status status = sq_calibrate(&broken, tokens, n_tokens, &o, NULL, NULL, record, &r, &out, &err);
    CHECK_MSG(status == SQ_ERR_NUMERIC, "status %s: %s", sq_status_name(status), err.message);
    CHECK(strstr(err.message, "in a row") != NULL);
    CHECK(r.recoveries == o.max_failures);
    CHECK(out.r1 == NULL);
    sq_model_free(&broken);
}

static void test_resume_rejects_other_settings(void) {
    sq_calibration_options o = small_options();
    o.iterations = 2;
    o.checkpoint_path = checkpoint_path;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_rotation_set_free(&out);

    o.resume = 1;
    o.seed = SEED + 1;
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, "--seed") != NULL);

    o.seed = SEED;
    CHECK(sq_calibrate(&model, tokens + 1, n_tokens - 1, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, "checksum") != NULL);

    o.settings.scale_gradient = 1;
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_ERR_MISMATCH);
    CHECK_MSG(strstr(err.message, "--scale-gradient 0, this run has 1") != NULL, "message: %s", err.message);
    remove(checkpoint_path);
}

/* A checkpoint made with 4-bit weights in groups of GROUP columns resumes only with that group.
 * At 16 bits groups do nothing, so the checkpoint stores group 0 and any group resumes. */
static void test_resume_rejects_other_weight_group(void) {
    sq_calibration_options o = small_options();
    o.iterations = 2;
    o.checkpoint_path = checkpoint_path;
    o.settings.w_bits = 4;
    o.settings.w_group = GROUP;
    sq_rotation_set out = {0};
    sq_error err = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_OK, "calibrate: %s", err.message);
    sq_rotation_set_free(&out);

    o.resume = 1;
    o.settings.w_group = 0;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_ERR_MISMATCH, "status %s: %s", sq_status_name(status), err.message);
    CHECK_MSG(strstr(err.message, "--w-group 4, this run has 0") != NULL, "message: %s", err.message);
    CHECK(out.r1 == NULL);

    o.settings.w_group = GROUP;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_OK, "resume with the same group: %s", err.message);
    sq_rotation_set_free(&out);
    remove(checkpoint_path);

    o.resume = 0;
    o.settings.w_bits = 16;
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_rotation_set_free(&out);
    o.resume = 1;
    o.settings.w_group = 0;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_OK, "W16 resume with another group: %s", err.message);
    sq_rotation_set_free(&out);
    remove(checkpoint_path);
}

/* Reads the little-endian u32 or u64 at offset of bytes. */
static uint64_t read_le(const uint8_t *bytes, size_t offset, int width) {
    uint64_t value = 0;
    for (int i = 0; i < width; i++) {
        value |= (uint64_t)bytes[offset + (size_t)i] << (8 * i);
    }
    return value;
}

/* The offsets are the ones the layout comment of learn/checkpoint.h documents for version 3. */
static void test_checkpoint_layout_version_3(void) {
    sq_calibration_options o = small_options();
    o.iterations = 1;
    o.checkpoint_path = checkpoint_path;
    o.settings.w_bits = 4;
    o.settings.w_group = GROUP;
    o.settings.scale_gradient = 1;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_rotation_set_free(&out);
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(sq_io_read_file(checkpoint_path, &bytes, &size, &err) == SQ_OK);
    if (bytes == NULL) {
        return;
    }
    const sq_config *c = &model.config;
    size_t rotation_bytes = 16 * ((size_t)c->dim * c->dim + (size_t)c->n_layers * c->head_dim * c->head_dim);
    CHECK_MSG(size == 104 + rotation_bytes + 4, "checkpoint of %zu bytes", size);
    CHECK(read_le(bytes, 8, 4) == 3);
    CHECK(read_le(bytes, 12, 4) == (uint64_t)c->dim);
    CHECK(read_le(bytes, 28, 4) == 4);
    CHECK(read_le(bytes, 32, 4) == GROUP);
    CHECK(read_le(bytes, 36, 4) == 4);
    CHECK(read_le(bytes, 76, 4) == 1);
    CHECK(read_le(bytes, 80, 8) == SEED);

    sq_checkpoint checkpoint;
    CHECK(sq_checkpoint_load(checkpoint_path, &checkpoint, &err) == SQ_OK);
    CHECK(checkpoint.w_bits == 4);
    CHECK(checkpoint.w_group == GROUP);
    CHECK(checkpoint.a_bits == 4);
    CHECK(checkpoint.scale_gradient == 1);
    CHECK(checkpoint.seed == SEED);
    sq_checkpoint_free(&checkpoint);
    free(bytes);
    remove(checkpoint_path);
}

/* A version-2 checkpoint is a version-3 one without the scale_gradient field at offset 76,
 * with version 2 and its own CRC. Loading and resuming it fail and name both versions. */
static void test_version_2_checkpoint_rejected(void) {
    sq_calibration_options o = small_options();
    o.iterations = 2;
    o.checkpoint_path = checkpoint_path;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_rotation_set_free(&out);
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(sq_io_read_file(checkpoint_path, &bytes, &size, &err) == SQ_OK);
    if (bytes == NULL || size < 104) {
        free(bytes);
        return;
    }
    size_t old_size = size - 4;
    uint8_t *old = malloc(old_size);
    memcpy(old, bytes, 76);
    memcpy(old + 76, bytes + 80, size - 4 - 80);
    old[8] = 2;
    uint32_t crc = sq_crc32_update(0, old, old_size - 4);
    for (int i = 0; i < 4; i++) {
        old[old_size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    CHECK(sq_io_write_file_atomic(checkpoint_path, old, old_size, &err) == SQ_OK);

    sq_checkpoint checkpoint;
    sq_status status = sq_checkpoint_load(checkpoint_path, &checkpoint, &err);
    CHECK_MSG(status == SQ_ERR_UNSUPPORTED, "status %s: %s", sq_status_name(status), err.message);
    CHECK_MSG(strstr(err.message, "version 2, expected 3") != NULL, "message: %s", err.message);
    CHECK_MSG(strstr(err.message, "without --resume") != NULL, "message: %s", err.message);

    o.resume = 1;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_ERR_UNSUPPORTED, "resume status %s: %s", sq_status_name(status), err.message);
    CHECK(out.r1 == NULL);
    free(old);
    free(bytes);
    remove(checkpoint_path);
}

/* Returns 1 when R1 or any R2 of a and b differ in some element. */
static int rotations_differ(const sq_rotation_set *a, const sq_rotation_set *b) {
    const sq_config *c = &model.config;
    size_t r1_count = (size_t)c->dim * c->dim;
    size_t r2_count = (size_t)c->n_layers * c->head_dim * c->head_dim;
    if (a->r1 == NULL || b->r1 == NULL) {
        return -1;
    }
    return memcmp(a->r1, b->r1, r1_count * sizeof(float)) != 0 || memcmp(a->r2, b->r2, r2_count * sizeof(float)) != 0;
}

/* Learning through 4-bit weights in groups of GROUP columns follows other gradients than with
 * one scale per row, so the rotations differ after a few iterations. At 16 bits nothing is
 * quantized and the group changes no bit. */
static void test_weight_group_changes_learning(void) {
    sq_calibration_options o = small_options();
    o.iterations = 3;
    o.checkpoint_path = NULL;
    o.settings.w_bits = 4;
    sq_error err = {0};
    sq_rotation_set per_row = {0};
    sq_rotation_set grouped = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &per_row, &err);
    CHECK_MSG(status == SQ_OK, "W4 per row: %s", err.message);
    o.settings.w_group = GROUP;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &grouped, &err);
    CHECK_MSG(status == SQ_OK, "W4 in groups of %d: %s", GROUP, err.message);
    CHECK_MSG(rotations_differ(&per_row, &grouped) == 1, "W4 rotations with groups of %d equal the per-row ones",
              GROUP);
    CHECK(sq_rotation_set_orthogonality_error(&grouped) < 1e-5);
    sq_rotation_set_free(&per_row);
    sq_rotation_set_free(&grouped);

    o.settings.w_bits = 16;
    o.settings.w_group = 0;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &per_row, &err);
    CHECK_MSG(status == SQ_OK, "W16: %s", err.message);
    o.settings.w_group = GROUP;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &grouped, &err);
    CHECK_MSG(status == SQ_OK, "W16 with a group: %s", err.message);
    CHECK_MSG(rotations_differ(&per_row, &grouped) == 0, "the group changed W16 learning");
    sq_rotation_set_free(&per_row);
    sq_rotation_set_free(&grouped);
}

/* The scale term changes the gradient whenever activations or KV are quantized, so the
 * rotations differ after a few iterations. Without quantizers it has nothing to act on. */
static void test_scale_gradient_changes_learning(void) {
    sq_calibration_options o = small_options();
    o.iterations = 3;
    o.checkpoint_path = NULL;
    sq_error err = {0};
    sq_rotation_set plain = {0};
    sq_rotation_set scaled = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &plain, &err);
    CHECK_MSG(status == SQ_OK, "straight-through: %s", err.message);
    o.settings.scale_gradient = 1;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &scaled, &err);
    CHECK_MSG(status == SQ_OK, "with the scale term: %s", err.message);
    CHECK_MSG(rotations_differ(&plain, &scaled) == 1, "the scale term left the rotations unchanged");
    CHECK(sq_rotation_set_orthogonality_error(&scaled) < 1e-5);
    sq_rotation_set_free(&plain);
    sq_rotation_set_free(&scaled);

    o.settings.a_bits = 16;
    o.settings.kv_bits = 16;
    o.settings.scale_gradient = 0;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &plain, &err);
    CHECK_MSG(status == SQ_OK, "A16KV16: %s", err.message);
    o.settings.scale_gradient = 1;
    status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &scaled, &err);
    CHECK_MSG(status == SQ_OK, "A16KV16 with the scale term: %s", err.message);
    CHECK_MSG(rotations_differ(&plain, &scaled) == 0, "the scale term changed learning without quantizers");
    sq_rotation_set_free(&plain);
    sq_rotation_set_free(&scaled);
}

static void test_invalid_weight_group_rejected(void) {
    sq_calibration_options o = small_options();
    o.checkpoint_path = NULL;
    o.settings.w_bits = 4;
    o.settings.w_group = GROUP_NOT_DIVIDING;
    sq_rotation_set out = {0};
    sq_error err = {0};
    sq_status status = sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err);
    CHECK_MSG(status == SQ_ERR_INVALID_ARG, "status %s: %s", sq_status_name(status), err.message);
    CHECK_MSG(strstr(err.message, "--w-group 8") != NULL, "message: %s", err.message);
    CHECK_MSG(strstr(err.message, "input width 172") != NULL, "message: %s", err.message);
    CHECK(out.r1 == NULL);

    o.settings.w_bits = 16;
    status = sq_learn_settings_validate(&o.settings, &model.config, &err);
    CHECK_MSG(status == SQ_ERR_INVALID_ARG, "W16 status %s: %s", sq_status_name(status), err.message);

    o.settings.w_bits = 4;
    o.settings.w_group = -1;
    status = sq_learn_settings_validate(&o.settings, &model.config, &err);
    CHECK_MSG(status == SQ_ERR_INVALID_ARG, "negative group status %s: %s", sq_status_name(status), err.message);
    CHECK_MSG(strstr(err.message, "--w-group -1") != NULL, "message: %s", err.message);

    o.settings.w_group = 172;
    status = sq_learn_settings_validate(&o.settings, &model.config, &err);
    CHECK_MSG(status == SQ_ERR_INVALID_ARG, "group 172 status %s: %s", sq_status_name(status), err.message);
    CHECK_MSG(strstr(err.message, "input width 64") != NULL, "message: %s", err.message);
}

static void test_corrupt_checkpoint_rejected(void) {
    sq_calibration_options o = small_options();
    o.iterations = 2;
    o.checkpoint_path = checkpoint_path;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_OK);
    sq_rotation_set_free(&out);
    uint8_t *bytes = NULL;
    size_t size = 0;
    CHECK(sq_io_read_file(checkpoint_path, &bytes, &size, &err) == SQ_OK);
    if (bytes == NULL) {
        return;
    }
    sq_checkpoint checkpoint;

    bytes[200] ^= 0x40;
    CHECK(sq_io_write_file_atomic(checkpoint_path, bytes, size, &err) == SQ_OK);
    CHECK(sq_checkpoint_load(checkpoint_path, &checkpoint, &err) == SQ_ERR_CHECKSUM);
    o.resume = 1;
    CHECK(sq_calibrate(&model, tokens, n_tokens, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_ERR_CHECKSUM);
    CHECK(out.r1 == NULL);

    bytes[200] ^= 0x40;
    CHECK(sq_io_write_file_atomic(checkpoint_path, bytes, size - 9, &err) == SQ_OK);
    CHECK(sq_checkpoint_load(checkpoint_path, &checkpoint, &err) == SQ_ERR_FORMAT);
    free(bytes);
    remove(checkpoint_path);
}

static void test_too_few_tokens(void) {
    sq_calibration_options o = small_options();
    o.checkpoint_path = NULL;
    sq_rotation_set out = {0};
    sq_error err = {0};
    CHECK(sq_calibrate(&model, tokens, 100, &o, NULL, NULL, NULL, NULL, &out, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "100 tokens") != NULL);
}

int main(void) {
    if (!setup()) {
        CHECK(0);
        TEST_MAIN_END();
    }
    RUN_TEST(test_short_run_lowers_loss);
    RUN_TEST(test_resume_matches_uninterrupted);
    RUN_TEST(test_initial_rotations_equal_rotate);
    RUN_TEST(test_nan_rolls_back_and_halves_lr);
    RUN_TEST(test_repeated_nan_fails);
    RUN_TEST(test_resume_rejects_other_settings);
    RUN_TEST(test_resume_rejects_other_weight_group);
    RUN_TEST(test_checkpoint_layout_version_3);
    RUN_TEST(test_version_2_checkpoint_rejected);
    RUN_TEST(test_corrupt_checkpoint_rejected);
    RUN_TEST(test_weight_group_changes_learning);
    RUN_TEST(test_scale_gradient_changes_learning);
    RUN_TEST(test_invalid_weight_group_rejected);
    RUN_TEST(test_too_few_tokens);
    free(tokens);
    sq_model_free(&model);
    rmdir(temp_dir);
    TEST_MAIN_END();
}
