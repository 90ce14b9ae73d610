/* Reading and writing the calibration checkpoint (layout in checkpoint.h). */
#include "learn/checkpoint.h"

#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/io.h"

static const uint8_t checkpoint_magic[8] = {'S', 'Q', 'C', 'K', 'P', 'T', 0, 1};

enum {
    CHECKPOINT_VERSION = 3,
    CHECKPOINT_U32_FIELDS = 17,
    CHECKPOINT_SEED_OFFSET = 12 + 4 * CHECKPOINT_U32_FIELDS,
    CHECKPOINT_LR_OFFSET = CHECKPOINT_SEED_OFFSET + 8,
    CHECKPOINT_CLIP_OFFSET = CHECKPOINT_LR_OFFSET + 8,
    CHECKPOINT_HEADER_BYTES = CHECKPOINT_CLIP_OFFSET + 8,
};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void put_f64(uint8_t *p, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_u64(p, bits);
}

static double get_f64(const uint8_t *p) {
    uint64_t bits = get_u64(p);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* Pointers to the u32 fields, in file order. */
static void u32_fields(sq_checkpoint *c, uint32_t **fields) {
    uint32_t *list[CHECKPOINT_U32_FIELDS] = {
        &c->dim,            &c->head_dim,    &c->n_layers,             &c->mode_had,
        &c->w_bits,         &c->w_group,     &c->a_bits,               &c->kv_bits,
        &c->window,         &c->samples,     &c->windows_per_step,     &c->iterations,
        &c->next_iteration, &c->lr_halvings, &c->consecutive_failures, &c->calibration_crc,
        &c->scale_gradient,
    };
    memcpy(fields, list, sizeof(list));
}

static size_t rotation_doubles(const sq_checkpoint *c) {
    return (size_t)c->dim * c->dim + (size_t)c->n_layers * c->head_dim * c->head_dim;
}

sq_status sq_checkpoint_save(const sq_checkpoint *checkpoint, const char *path, sq_error *err) {
    sq_checkpoint c = *checkpoint;
    size_t r1_count = (size_t)c.dim * c.dim;
    size_t r2_count = (size_t)c.n_layers * c.head_dim * c.head_dim;
    size_t size = CHECKPOINT_HEADER_BYTES + 2 * rotation_doubles(&c) * sizeof(double) + 4;
    uint8_t *bytes = malloc(size);
    if (bytes == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the checkpoint", size);
    }

    memcpy(bytes, checkpoint_magic, sizeof(checkpoint_magic));
    put_u32(bytes + 8, CHECKPOINT_VERSION);
    uint32_t *fields[CHECKPOINT_U32_FIELDS];
    u32_fields(&c, fields);
    for (int i = 0; i < CHECKPOINT_U32_FIELDS; i++) {
        put_u32(bytes + 12 + 4 * i, *fields[i]);
    }
    put_u64(bytes + CHECKPOINT_SEED_OFFSET, c.seed);
    put_f64(bytes + CHECKPOINT_LR_OFFSET, c.lr);
    put_f64(bytes + CHECKPOINT_CLIP_OFFSET, c.max_grad_norm);
    uint8_t *p = bytes + CHECKPOINT_HEADER_BYTES;
    const double *arrays[4] = {c.r1, c.r2, c.last_good_r1, c.last_good_r2};
    size_t counts[4] = {r1_count, r2_count, r1_count, r2_count};
    for (int a = 0; a < 4; a++) {
        for (size_t i = 0; i < counts[a]; i++, p += 8) {
            put_f64(p, arrays[a][i]);
        }
    }
    put_u32(p, sq_crc32_update(0, bytes, size - 4));

    sq_status status = sq_io_write_file_atomic(path, bytes, size, err);
    free(bytes);
    return status;
}

void sq_checkpoint_free(sq_checkpoint *c) {
    free(c->r1);
    free(c->r2);
    free(c->last_good_r1);
    free(c->last_good_r2);
    c->r1 = c->r2 = c->last_good_r1 = c->last_good_r2 = NULL;
}

sq_status sq_checkpoint_load(const char *path, sq_checkpoint *c, sq_error *err) {
    memset(c, 0, sizeof(*c));
    uint8_t *bytes = NULL;
    size_t size = 0;
    sq_status status = sq_io_read_file(path, &bytes, &size, err);
    if (status != SQ_OK) {
        return status;
    }
    if (size < sizeof(checkpoint_magic) + 4 || memcmp(bytes, checkpoint_magic, sizeof(checkpoint_magic)) != 0) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s' is not a spinquant calibration checkpoint", path);
    }
    if (get_u32(bytes + 8) != CHECKPOINT_VERSION) {
        uint32_t version = get_u32(bytes + 8);
        free(bytes);
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "checkpoint '%s' has format version %u, expected %d; it was written by %s spinquant and "
                            "cannot be resumed, so start a new run without --resume",
                            path, version, CHECKPOINT_VERSION, version < CHECKPOINT_VERSION ? "an older" : "a newer");
    }
    if (size < CHECKPOINT_HEADER_BYTES + 4) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "checkpoint '%s' has %zu bytes, expected at least %d (truncated)",
                            path, size, CHECKPOINT_HEADER_BYTES + 4);
    }
    uint32_t *fields[CHECKPOINT_U32_FIELDS];
    u32_fields(c, fields);
    for (int i = 0; i < CHECKPOINT_U32_FIELDS; i++) {
        *fields[i] = get_u32(bytes + 12 + 4 * i);
    }
    c->seed = get_u64(bytes + CHECKPOINT_SEED_OFFSET);
    c->lr = get_f64(bytes + CHECKPOINT_LR_OFFSET);
    c->max_grad_norm = get_f64(bytes + CHECKPOINT_CLIP_OFFSET);

    /* The dimensions bound the size, so a corrupt header cannot overflow the expected size. */
    if (c->dim == 0 || c->dim > 65536 || c->head_dim == 0 || c->head_dim > 65536 || c->n_layers > 65536) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "checkpoint '%s' has invalid dimensions %u, %u, %u", path, c->dim,
                            c->head_dim, c->n_layers);
    }
    size_t r1_count = (size_t)c->dim * c->dim;
    size_t r2_count = (size_t)c->n_layers * c->head_dim * c->head_dim;
    size_t expected = CHECKPOINT_HEADER_BYTES + 2 * rotation_doubles(c) * sizeof(double) + 4;
    if (size != expected) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "checkpoint '%s' has %zu bytes, expected %zu (truncated or corrupt)",
                            path, size, expected);
    }
    if (sq_crc32_update(0, bytes, size - 4) != get_u32(bytes + size - 4)) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_CHECKSUM, "checkpoint '%s' fails its checksum (corrupt file)", path);
    }

    c->r1 = malloc(r1_count * sizeof(double));
    c->r2 = malloc(r2_count * sizeof(double) + 1);
    c->last_good_r1 = malloc(r1_count * sizeof(double));
    c->last_good_r2 = malloc(r2_count * sizeof(double) + 1);
    if (c->r1 == NULL || c->r2 == NULL || c->last_good_r1 == NULL || c->last_good_r2 == NULL) {
        sq_checkpoint_free(c);
        free(bytes);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the rotations of checkpoint '%s'", path);
    }
    const uint8_t *p = bytes + CHECKPOINT_HEADER_BYTES;
    double *arrays[4] = {c->r1, c->r2, c->last_good_r1, c->last_good_r2};
    size_t counts[4] = {r1_count, r2_count, r1_count, r2_count};
    for (int a = 0; a < 4; a++) {
        for (size_t i = 0; i < counts[a]; i++, p += 8) {
            arrays[a][i] = get_f64(p);
        }
    }
    free(bytes);
    return SQ_OK;
}
