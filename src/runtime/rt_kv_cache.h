/* The KV cache of the integer runtime. Keys (after RoPE and R3) and values are quantized per
 * token and per KV head, asymmetrically (rt_quantize.h), when they are stored, and dequantized
 * as (code - zero)·scale when attention reads them, which is the value the fake-quant evaluator
 * keeps in its fp32 cache. Codes of up to 4 bits are packed two per byte (element 2i in the low
 * nibble of byte i); wider codes take a byte. With 16 bits the cache keeps fp32 values. */
#ifndef SQ_RUNTIME_RT_KV_CACHE_H
#define SQ_RUNTIME_RT_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"

typedef struct sq_rt_kv_cache {
    int bits;              /* 2..8, or 16 for fp32 */
    float clip;            /* clip ratio of the quantizer */
    int32_t n_layers;
    int32_t capacity;      /* positions per layer */
    int32_t n_kv_heads;
    int32_t head_dim;
    size_t head_bytes;     /* bytes of one head's codes */
    uint8_t *key_codes;    /* (n_layers, capacity, n_kv_heads, head_bytes) */
    uint8_t *value_codes;
    float *key_scales;     /* (n_layers, capacity, n_kv_heads) */
    float *value_scales;
    int32_t *key_zeros;    /* (n_layers, capacity, n_kv_heads) */
    int32_t *value_zeros;
    float *keys_f32;       /* (n_layers, capacity, n_kv_heads · head_dim) when bits is 16 */
    float *values_f32;
    size_t bytes;          /* total allocation */
} sq_rt_kv_cache;

sq_status sq_rt_kv_cache_init(sq_rt_kv_cache *cache, const sq_config *config, int bits, float clip, int32_t capacity,
                              sq_error *err);

void sq_rt_kv_cache_free(sq_rt_kv_cache *cache);

/* Stores the keys and values of one token, (n_kv_heads · head_dim) each, at position. */
void sq_rt_kv_store(sq_rt_kv_cache *cache, int32_t layer, int32_t position, const float *keys, const float *values);

/* Writes the dequantized keys or values of head at positions first .. first + count - 1 into
 * out (count, head_dim). */
void sq_rt_kv_load_keys(const sq_rt_kv_cache *cache, int32_t layer, int32_t first, int32_t count, int32_t head,
                        float *out);
void sq_rt_kv_load_values(const sq_rt_kv_cache *cache, int32_t layer, int32_t first, int32_t count, int32_t head,
                          float *out);

#endif
