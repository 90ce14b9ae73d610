/* Reading and writing the rotation file. */
#include "rotation/rotation_file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32.h"
#include "core/io.h"

static const uint8_t ROTATION_MAGIC[8] = {'S', 'Q', 'R', 'O', 'T', 0, 0, 1};
#define ROTATION_VERSION 1u
#define ROTATION_HEADER_BYTES 40u

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_floats(uint8_t *p, const float *values, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], 4);
        put_u32(p + 4 * i, bits);
    }
}

static void get_floats(float *values, const uint8_t *p, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = get_u32(p + 4 * i);
        memcpy(&values[i], &bits, 4);
    }
}

static void set_identity(float *m, int32_t n) {
    memset(m, 0, (size_t)n * (size_t)n * sizeof(float));
    for (int32_t i = 0; i < n; i++) {
        m[(int64_t)i * n + i] = 1.0f;
    }
}

sq_status sq_rotation_set_alloc(sq_rotation_set *set, const sq_config *config, sq_error *err) {
    memset(set, 0, sizeof(*set));
    set->dim = config->dim;
    set->head_dim = config->head_dim;
    set->n_layers = config->n_layers;
    size_t r2_count = (size_t)config->n_layers * (size_t)config->head_dim * (size_t)config->head_dim;
    set->r1 = malloc((size_t)config->dim * (size_t)config->dim * sizeof(float));
    set->r2 = malloc(r2_count * sizeof(float));
    if (set->r1 == NULL || set->r2 == NULL) {
        sq_rotation_set_free(set);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate rotations for dim %d and %d layers", config->dim,
                            config->n_layers);
    }
    set_identity(set->r1, set->dim);
    for (int32_t l = 0; l < set->n_layers; l++) {
        set_identity(set->r2 + (int64_t)l * set->head_dim * set->head_dim, set->head_dim);
    }
    return SQ_OK;
}

void sq_rotation_set_free(sq_rotation_set *set) {
    free(set->r1);
    free(set->r2);
    set->r1 = NULL;
    set->r2 = NULL;
}

/* Counted in 64 bits: with the header limits the count fits, even where size_t has 32 bits. */
static uint64_t payload_floats(uint32_t dim, uint32_t head_dim, uint32_t n_layers) {
    return (uint64_t)dim * dim + (uint64_t)n_layers * head_dim * head_dim;
}

sq_status sq_rotation_set_save(const sq_rotation_set *set, const char *path, sq_error *err) {
    size_t r1_count = (size_t)set->dim * (size_t)set->dim;
    size_t r2_count = (size_t)set->n_layers * (size_t)set->head_dim * (size_t)set->head_dim;
    size_t size = ROTATION_HEADER_BYTES + 4 * (r1_count + r2_count) + 4;
    uint8_t *bytes = calloc(size, 1);
    if (bytes == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the rotation file", size);
    }
    memcpy(bytes, ROTATION_MAGIC, 8);
    put_u32(bytes + 8, ROTATION_VERSION);
    put_u32(bytes + 12, (uint32_t)set->dim);
    put_u32(bytes + 16, (uint32_t)set->head_dim);
    put_u32(bytes + 20, (uint32_t)set->n_layers);
    put_u32(bytes + 24, set->mode_had ? 1u : 0u);
    put_u32(bytes + 32, (uint32_t)set->online_seed);
    put_u32(bytes + 36, (uint32_t)(set->online_seed >> 32));
    put_floats(bytes + ROTATION_HEADER_BYTES, set->r1, r1_count);
    put_floats(bytes + ROTATION_HEADER_BYTES + 4 * r1_count, set->r2, r2_count);
    put_u32(bytes + size - 4, sq_crc32_update(0, bytes, size - 4));

    sq_status status = sq_io_write_file_atomic(path, bytes, size, err);
    free(bytes);
    return status;
}

sq_status sq_rotation_set_load(const char *path, const sq_config *config, sq_rotation_set *set, sq_error *err) {
    memset(set, 0, sizeof(*set));
    uint8_t *bytes = NULL;
    size_t size = 0;
    sq_status status = sq_io_read_file(path, &bytes, &size, err);
    if (status != SQ_OK) {
        return status;
    }
    if (size < ROTATION_HEADER_BYTES + 4 || memcmp(bytes, ROTATION_MAGIC, 8) != 0) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s' is not a rotation file (missing the SQROT header)", path);
    }
    uint32_t version = get_u32(bytes + 8);
    uint32_t dim = get_u32(bytes + 12);
    uint32_t head_dim = get_u32(bytes + 16);
    uint32_t n_layers = get_u32(bytes + 20);
    uint32_t mode = get_u32(bytes + 24);
    if (version != ROTATION_VERSION) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "rotation file '%s' has format version %u, expected %u", path,
                            version, ROTATION_VERSION);
    }
    if (dim == 0 || dim > 65536 || head_dim == 0 || head_dim > 4096 || n_layers == 0 || n_layers > 4096 || mode > 1) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "rotation file '%s' has an invalid header (dim %u, head_dim %u, layers %u, mode %u)",
                            path, dim, head_dim, n_layers, mode);
    }
    uint64_t expected = ROTATION_HEADER_BYTES + 4 * payload_floats(dim, head_dim, n_layers) + 4;
    if ((uint64_t)size != expected) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_FORMAT, "rotation file '%s' has %zu bytes, expected %llu for its header", path, size,
                            (unsigned long long)expected);
    }
    uint32_t stored_crc = get_u32(bytes + size - 4);
    uint32_t computed_crc = sq_crc32_update(0, bytes, size - 4);
    if (stored_crc != computed_crc) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_CHECKSUM, "rotation file '%s' is corrupt: CRC-32 %08x, expected %08x", path,
                            computed_crc, stored_crc);
    }
    if (config != NULL && ((int32_t)dim != config->dim || (int32_t)head_dim != config->head_dim ||
                           (int32_t)n_layers != config->n_layers)) {
        free(bytes);
        return sq_error_set(err, SQ_ERR_MISMATCH,
                            "rotation file '%s' is for dim %u, head_dim %u, %u layers, but the model has dim %d, head_dim %d, %d layers",
                            path, dim, head_dim, n_layers, config->dim, config->head_dim, config->n_layers);
    }

    sq_config dims = {0};
    dims.dim = (int32_t)dim;
    dims.head_dim = (int32_t)head_dim;
    dims.n_layers = (int32_t)n_layers;
    status = sq_rotation_set_alloc(set, &dims, err);
    if (status != SQ_OK) {
        free(bytes);
        return status;
    }
    set->mode_had = (int32_t)mode;
    set->online_seed = (uint64_t)get_u32(bytes + 32) | (uint64_t)get_u32(bytes + 36) << 32;
    size_t r1_count = (size_t)dim * dim;
    get_floats(set->r1, bytes + ROTATION_HEADER_BYTES, r1_count);
    get_floats(set->r2, bytes + ROTATION_HEADER_BYTES + 4 * r1_count, (size_t)n_layers * head_dim * head_dim);
    free(bytes);
    return SQ_OK;
}

static double orthogonality_error(const float *r, int32_t n) {
    double worst = 0.0;
    for (int32_t i = 0; i < n; i++) {
        for (int32_t j = 0; j < n; j++) {
            double dot = 0.0;
            for (int32_t k = 0; k < n; k++) {
                dot += (double)r[(int64_t)k * n + i] * (double)r[(int64_t)k * n + j];
            }
            double error = fabs(dot - (i == j ? 1.0 : 0.0));
            worst = error > worst ? error : worst;
        }
    }
    return worst;
}

double sq_rotation_set_orthogonality_error(const sq_rotation_set *set) {
    double worst = orthogonality_error(set->r1, set->dim);
    for (int32_t l = 0; l < set->n_layers; l++) {
        double e = orthogonality_error(set->r2 + (int64_t)l * set->head_dim * set->head_dim, set->head_dim);
        worst = e > worst ? e : worst;
    }
    return worst;
}
