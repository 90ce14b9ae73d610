/* GGML tensor types as GGUF stores them: block layouts for size checks, and conversion of
 * F32, F16, BF16, Q8_0, Q4_0 and Q4_1 data to fp32. Layouts follow ggml's ggml-quants.h:
 *   Q8_0: 32 values per 34-byte block {fp16 d; int8 q[32]}, x = q * d;
 *   Q4_0: 32 values per 18-byte block {fp16 d; uint8 qs[16]}, x = (nibble - 8) * d;
 *   Q4_1: 32 values per 20-byte block {fp16 d; fp16 m; uint8 qs[16]}, x = nibble * d + m;
 * where value j < 16 of a 4-bit block is the low nibble of qs[j] and value j + 16 its high
 * nibble. Every multi-byte field is little-endian. */
#ifndef SQ_FORMATS_DEQUANT_H
#define SQ_FORMATS_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* ggml_type numbers (a tensor's type field in GGUF). */
enum {
    SQ_GGML_TYPE_F32 = 0,
    SQ_GGML_TYPE_F16 = 1,
    SQ_GGML_TYPE_Q4_0 = 2,
    SQ_GGML_TYPE_Q4_1 = 3,
    SQ_GGML_TYPE_Q5_0 = 6,
    SQ_GGML_TYPE_Q5_1 = 7,
    SQ_GGML_TYPE_Q8_0 = 8,
    SQ_GGML_TYPE_Q8_1 = 9,
    SQ_GGML_TYPE_Q2_K = 10,
    SQ_GGML_TYPE_Q3_K = 11,
    SQ_GGML_TYPE_Q4_K = 12,
    SQ_GGML_TYPE_Q5_K = 13,
    SQ_GGML_TYPE_Q6_K = 14,
    SQ_GGML_TYPE_Q8_K = 15,
    SQ_GGML_TYPE_I8 = 24,
    SQ_GGML_TYPE_I16 = 25,
    SQ_GGML_TYPE_I32 = 26,
    SQ_GGML_TYPE_I64 = 27,
    SQ_GGML_TYPE_F64 = 28,
    SQ_GGML_TYPE_BF16 = 30,
};

/* Looks up the block layout of type: values per block and bytes per block. Returns 0 for a
 * type whose layout this engine does not know. */
int sq_ggml_type_layout(uint32_t type, uint32_t *block_values, uint32_t *block_bytes);

/* Returns the ggml name of type ("Q4_1"), or "unknown". */
const char *sq_ggml_type_name(uint32_t type);

/* Returns 1 when sq_dequantize converts type. */
int sq_ggml_type_is_supported(uint32_t type);

/* Exact conversions of one IEEE half-precision or bfloat16 value (including subnormals,
 * infinities and NaN). */
float sq_fp16_to_fp32(uint16_t bits);
float sq_bf16_to_fp32(uint16_t bits);

/* Each converts count values from src (raw little-endian file bytes, any alignment) into dst.
 * For the block types count must be a multiple of 32. */
void sq_dequantize_f32(const uint8_t *src, float *dst, size_t count);
void sq_dequantize_f16(const uint8_t *src, float *dst, size_t count);
void sq_dequantize_bf16(const uint8_t *src, float *dst, size_t count);
void sq_dequantize_q8_0(const uint8_t *src, float *dst, size_t count);
void sq_dequantize_q4_0(const uint8_t *src, float *dst, size_t count);
void sq_dequantize_q4_1(const uint8_t *src, float *dst, size_t count);

/* Converts count values of type from src (src_size bytes) into dst. Fails with
 * SQ_ERR_UNSUPPORTED for a type without a converter, and with SQ_ERR_FORMAT when count does
 * not fill whole blocks or src_size differs from what count values of type occupy. */
sq_status sq_dequantize(uint32_t type, const uint8_t *src, size_t src_size, float *dst, size_t count,
                        sq_error *err);

#endif
