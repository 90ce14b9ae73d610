/* Quantized KV cache storage and dequantization. */
#include "runtime/rt_kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/rt_quantize.h"

static void *alloc_bytes(size_t n, size_t *total) {
    *total += n;
    return calloc(n > 0 ? n : 1, 1);
}

sq_status sq_rt_kv_cache_init(sq_rt_kv_cache *c, const sq_config *config, int bits, float clip, int32_t capacity,
                              sq_error *err) {
    memset(c, 0, sizeof(*c));
    c->bits = bits;
    c->clip = clip;
    c->n_layers = config->n_layers;
    c->capacity = capacity;
    c->n_kv_heads = config->n_kv_heads;
    c->head_dim = config->head_dim;
    size_t slots = (size_t)c->n_layers * (size_t)capacity * (size_t)c->n_kv_heads;
    if (bits == 16) {
        c->keys_f32 = alloc_bytes(slots * (size_t)c->head_dim * sizeof(float), &c->bytes);
        c->values_f32 = alloc_bytes(slots * (size_t)c->head_dim * sizeof(float), &c->bytes);
        if (c->keys_f32 == NULL || c->values_f32 == NULL) {
            sq_rt_kv_cache_free(c);
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate an fp32 KV cache of %d positions", capacity);
        }
        return SQ_OK;
    }
    c->head_bytes = bits > 4 ? (size_t)c->head_dim : (size_t)c->head_dim / 2;
    c->key_codes = alloc_bytes(slots * c->head_bytes, &c->bytes);
    c->value_codes = alloc_bytes(slots * c->head_bytes, &c->bytes);
    c->key_scales = alloc_bytes(slots * sizeof(float), &c->bytes);
    c->value_scales = alloc_bytes(slots * sizeof(float), &c->bytes);
    c->key_zeros = alloc_bytes(slots * sizeof(int32_t), &c->bytes);
    c->value_zeros = alloc_bytes(slots * sizeof(int32_t), &c->bytes);
    if (c->key_codes == NULL || c->value_codes == NULL || c->key_scales == NULL || c->value_scales == NULL ||
        c->key_zeros == NULL || c->value_zeros == NULL) {
        sq_rt_kv_cache_free(c);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a %d-bit KV cache of %d positions", bits, capacity);
    }
    return SQ_OK;
}

void sq_rt_kv_cache_free(sq_rt_kv_cache *c) {
    free(c->key_codes);
    free(c->value_codes);
    free(c->key_scales);
    free(c->value_scales);
    free(c->key_zeros);
    free(c->value_zeros);
    free(c->keys_f32);
    free(c->values_f32);
    memset(c, 0, sizeof(*c));
}

/* Index of the (layer, position, head) slot. */
static size_t slot(const sq_rt_kv_cache *c, int32_t layer, int32_t position, int32_t head) {
    return ((size_t)layer * (size_t)c->capacity + (size_t)position) * (size_t)c->n_kv_heads + (size_t)head;
}

static void store_head(const sq_rt_kv_cache *c, size_t s, const float *x, uint8_t *codes, float *scales,
                       int32_t *zeros) {
    uint8_t unpacked[256];
    uint8_t *out = codes + s * c->head_bytes;
    sq_rt_group_params(x, c->head_dim, c->bits, 0, c->clip, &scales[s], &zeros[s]);
    if (c->bits > 4) {
        for (int32_t i = 0; i < c->head_dim; i++) {
            out[i] = sq_rt_encode(x[i], scales[s], zeros[s], c->bits);
        }
        return;
    }
    for (int32_t start = 0; start < c->head_dim; start += (int32_t)sizeof(unpacked)) {
        int32_t n = c->head_dim - start < (int32_t)sizeof(unpacked) ? c->head_dim - start : (int32_t)sizeof(unpacked);
        for (int32_t i = 0; i < n; i++) {
            unpacked[i] = sq_rt_encode(x[start + i], scales[s], zeros[s], c->bits);
        }
        for (int32_t i = 0; i < n; i += 2) {
            out[(start + i) / 2] = (uint8_t)(unpacked[i] | (unpacked[i + 1] << 4));
        }
    }
}

void sq_rt_kv_store(sq_rt_kv_cache *c, int32_t layer, int32_t position, const float *keys, const float *values) {
    for (int32_t h = 0; h < c->n_kv_heads; h++) {
        size_t s = slot(c, layer, position, h);
        const float *k = keys + (size_t)h * (size_t)c->head_dim;
        const float *v = values + (size_t)h * (size_t)c->head_dim;
        if (c->bits == 16) {
            memcpy(c->keys_f32 + s * (size_t)c->head_dim, k, (size_t)c->head_dim * sizeof(float));
            memcpy(c->values_f32 + s * (size_t)c->head_dim, v, (size_t)c->head_dim * sizeof(float));
            continue;
        }
        store_head(c, s, k, c->key_codes, c->key_scales, c->key_zeros);
        store_head(c, s, v, c->value_codes, c->value_scales, c->value_zeros);
    }
}

/* Dequantizes count consecutive positions of one head, starting at slot first; the slots of
 * consecutive positions are n_kv_heads apart. */
static void load_rows(const sq_rt_kv_cache *c, size_t first, int32_t count, const uint8_t *codes, const float *scales,
                      const int32_t *zeros, const float *f32, float *out) {
    size_t step = (size_t)c->n_kv_heads;
    size_t head_dim = (size_t)c->head_dim;
    if (c->bits == 16) {
        for (int32_t p = 0; p < count; p++) {
            memcpy(out + (size_t)p * head_dim, f32 + (first + (size_t)p * step) * head_dim, head_dim * sizeof(float));
        }
        return;
    }
    for (int32_t p = 0; p < count; p++) {
        size_t s = first + (size_t)p * step;
        const uint8_t *in = codes + s * c->head_bytes;
        float scale = scales[s];
        int32_t zero = zeros[s];
        float *row = out + (size_t)p * head_dim;
        if (c->bits > 4) {
            for (size_t i = 0; i < head_dim; i++) {
                row[i] = (float)((int32_t)in[i] - zero) * scale;
            }
        } else {
            for (size_t i = 0; i < head_dim; i += 2) {
                row[i] = (float)((int32_t)(in[i / 2] & 15) - zero) * scale;
                row[i + 1] = (float)((int32_t)(in[i / 2] >> 4) - zero) * scale;
            }
        }
    }
}

void sq_rt_kv_load_keys(const sq_rt_kv_cache *c, int32_t layer, int32_t first, int32_t count, int32_t head,
                        float *out) {
    load_rows(c, slot(c, layer, first, head), count, c->key_codes, c->key_scales, c->key_zeros, c->keys_f32, out);
}

void sq_rt_kv_load_values(const sq_rt_kv_cache *c, int32_t layer, int32_t first, int32_t count, int32_t head,
                          float *out) {
    load_rows(c, slot(c, layer, first, head), count, c->value_codes, c->value_scales, c->value_zeros, c->values_f32,
              out);
}
