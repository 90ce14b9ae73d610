/* Conversion of GGML tensor data to fp32; block layouts are described in dequant.h. */
#include "formats/dequant.h"

#include <string.h>

#include "formats/file_reader.h"

#define SQ_QK 32 /* values per Q8_0, Q4_0 and Q4_1 block */

typedef struct type_entry {
    uint32_t type;
    const char *name;
    uint32_t block_values;
    uint32_t block_bytes;
    int supported;
} type_entry;

/* Sizes from ggml-quants.h; only the types listed here can be size-checked. */
static const type_entry TYPES[] = {
    {SQ_GGML_TYPE_F32, "F32", 1, 4, 1},
    {SQ_GGML_TYPE_F16, "F16", 1, 2, 1},
    {SQ_GGML_TYPE_Q4_0, "Q4_0", 32, 18, 1},
    {SQ_GGML_TYPE_Q4_1, "Q4_1", 32, 20, 1},
    {SQ_GGML_TYPE_Q5_0, "Q5_0", 32, 22, 0},
    {SQ_GGML_TYPE_Q5_1, "Q5_1", 32, 24, 0},
    {SQ_GGML_TYPE_Q8_0, "Q8_0", 32, 34, 1},
    {SQ_GGML_TYPE_Q8_1, "Q8_1", 32, 36, 0},
    {SQ_GGML_TYPE_Q2_K, "Q2_K", 256, 84, 0},
    {SQ_GGML_TYPE_Q3_K, "Q3_K", 256, 110, 0},
    {SQ_GGML_TYPE_Q4_K, "Q4_K", 256, 144, 0},
    {SQ_GGML_TYPE_Q5_K, "Q5_K", 256, 176, 0},
    {SQ_GGML_TYPE_Q6_K, "Q6_K", 256, 210, 0},
    {SQ_GGML_TYPE_Q8_K, "Q8_K", 256, 292, 0},
    {SQ_GGML_TYPE_I8, "I8", 1, 1, 0},
    {SQ_GGML_TYPE_I16, "I16", 1, 2, 0},
    {SQ_GGML_TYPE_I32, "I32", 1, 4, 0},
    {SQ_GGML_TYPE_I64, "I64", 1, 8, 0},
    {SQ_GGML_TYPE_F64, "F64", 1, 8, 0},
    {SQ_GGML_TYPE_BF16, "BF16", 1, 2, 1},
};

static const type_entry *find_type(uint32_t type) {
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++) {
        if (TYPES[i].type == type) {
            return &TYPES[i];
        }
    }
    return NULL;
}

int sq_ggml_type_layout(uint32_t type, uint32_t *block_values, uint32_t *block_bytes) {
    const type_entry *entry = find_type(type);
    if (entry == NULL) {
        return 0;
    }
    *block_values = entry->block_values;
    *block_bytes = entry->block_bytes;
    return 1;
}

const char *sq_ggml_type_name(uint32_t type) {
    const type_entry *entry = find_type(type);
    return entry != NULL ? entry->name : "unknown";
}

int sq_ggml_type_is_supported(uint32_t type) {
    const type_entry *entry = find_type(type);
    return entry != NULL && entry->supported;
}

static float float_from_bits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof(value));
    return value;
}

float sq_fp16_to_fp32(uint16_t bits) {
    uint32_t sign = (uint32_t)(bits >> 15) << 31;
    uint32_t exponent = (bits >> 10) & 0x1f;
    uint32_t mantissa = bits & 0x3ff;

    if (exponent == 0x1f) {
        return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
    }
    if (exponent == 0) {
        if (mantissa == 0) {
            return float_from_bits(sign);
        }
        /* Subnormal half: shift the mantissa up until its leading one reaches the implicit
         * bit, lowering the exponent once per shift. Every half subnormal is a normal float. */
        int32_t unbiased = -14;
        while ((mantissa & 0x400) == 0) {
            mantissa <<= 1;
            unbiased--;
        }
        mantissa &= 0x3ff;
        return float_from_bits(sign | ((uint32_t)(unbiased + 127) << 23) | (mantissa << 13));
    }
    return float_from_bits(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

float sq_bf16_to_fp32(uint16_t bits) {
    return float_from_bits((uint32_t)bits << 16);
}

void sq_dequantize_f32(const uint8_t *src, float *dst, size_t count) {
    memcpy(dst, src, count * sizeof(float));
}

void sq_dequantize_f16(const uint8_t *src, float *dst, size_t count) {
    for (size_t i = 0; i < count; i++) {
        dst[i] = sq_fp16_to_fp32(sq_load_le16(src + 2 * i));
    }
}

void sq_dequantize_bf16(const uint8_t *src, float *dst, size_t count) {
    for (size_t i = 0; i < count; i++) {
        dst[i] = sq_bf16_to_fp32(sq_load_le16(src + 2 * i));
    }
}

void sq_dequantize_q8_0(const uint8_t *src, float *dst, size_t count) {
    for (size_t block = 0; block < count / SQ_QK; block++) {
        const uint8_t *b = src + block * 34;
        float d = sq_fp16_to_fp32(sq_load_le16(b));
        const int8_t *q = (const int8_t *)(b + 2);
        float *out = dst + block * SQ_QK;
        for (int j = 0; j < SQ_QK; j++) {
            out[j] = (float)q[j] * d;
        }
    }
}

void sq_dequantize_q4_0(const uint8_t *src, float *dst, size_t count) {
    for (size_t block = 0; block < count / SQ_QK; block++) {
        const uint8_t *b = src + block * 18;
        float d = sq_fp16_to_fp32(sq_load_le16(b));
        const uint8_t *qs = b + 2;
        float *out = dst + block * SQ_QK;
        for (int j = 0; j < SQ_QK / 2; j++) {
            out[j] = (float)((int)(qs[j] & 0x0f) - 8) * d;
            out[j + SQ_QK / 2] = (float)((int)(qs[j] >> 4) - 8) * d;
        }
    }
}

void sq_dequantize_q4_1(const uint8_t *src, float *dst, size_t count) {
    for (size_t block = 0; block < count / SQ_QK; block++) {
        const uint8_t *b = src + block * 20;
        float d = sq_fp16_to_fp32(sq_load_le16(b));
        float m = sq_fp16_to_fp32(sq_load_le16(b + 2));
        const uint8_t *qs = b + 4;
        float *out = dst + block * SQ_QK;
        for (int j = 0; j < SQ_QK / 2; j++) {
            out[j] = (float)(qs[j] & 0x0f) * d + m;
            out[j + SQ_QK / 2] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

sq_status sq_dequantize(uint32_t type, const uint8_t *src, size_t src_size, float *dst, size_t count,
                        sq_error *err) {
    const type_entry *entry = find_type(type);
    if (entry == NULL || !entry->supported) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "tensor type %u (%s) cannot be converted to fp32; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                            type, sq_ggml_type_name(type));
    }
    if (count % entry->block_values != 0 || (count / entry->block_values) > SIZE_MAX / entry->block_bytes ||
        (count / entry->block_values) * entry->block_bytes != src_size) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "%zu values of type %s need whole %u-value blocks of %u bytes, got %zu bytes",
                            count, entry->name, entry->block_values, entry->block_bytes, src_size);
    }

    switch (type) {
    case SQ_GGML_TYPE_F32: sq_dequantize_f32(src, dst, count); break;
    case SQ_GGML_TYPE_F16: sq_dequantize_f16(src, dst, count); break;
    case SQ_GGML_TYPE_BF16: sq_dequantize_bf16(src, dst, count); break;
    case SQ_GGML_TYPE_Q8_0: sq_dequantize_q8_0(src, dst, count); break;
    case SQ_GGML_TYPE_Q4_0: sq_dequantize_q4_0(src, dst, count); break;
    case SQ_GGML_TYPE_Q4_1: sq_dequantize_q4_1(src, dst, count); break;
    default: break;
    }
    return SQ_OK;
}
