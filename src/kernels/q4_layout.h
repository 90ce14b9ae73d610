/* The packed 4-bit row layout shared by the .spq weight tensors, the 4-bit activation buffers
 * and every integer kernel.
 *
 * A row of n elements is cut into blocks of SQ_Q4_BLOCK = 32 elements; block b occupies the 16
 * bytes at offset 16·b. Byte k (0..15) of a block holds element 32·b + k in its low nibble and
 * element 32·b + 16 + k in its high nibble. So one 16-byte load gives elements 0..15 by masking
 * and elements 16..31 by shifting, each already in element order, which is what SIMD code needs.
 * A last, partial block keeps its 16 bytes: nibbles past the row end are padding (the writers
 * store the value 8, which weights read as 0).
 *
 * Weights store nibble = code + 8 for a signed code in [-8, 7]. Activations store their
 * unsigned code in [0, 15] unchanged. */
#ifndef SQ_KERNELS_Q4_LAYOUT_H
#define SQ_KERNELS_Q4_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define SQ_Q4_BLOCK 32
#define SQ_Q4_BLOCK_BYTES 16

/* Returns the bytes of one packed row of n elements: 16 per started block of 32. */
static inline size_t sq_q4_row_bytes(int64_t n) {
    return (size_t)((n + SQ_Q4_BLOCK - 1) / SQ_Q4_BLOCK) * SQ_Q4_BLOCK_BYTES;
}

/* Returns the byte index of element i in its row. */
static inline size_t sq_q4_byte_index(int64_t i) {
    uint64_t u = (uint64_t)i; /* unsigned, so the divisions become shifts */
    return (size_t)((u / SQ_Q4_BLOCK) * SQ_Q4_BLOCK_BYTES + (u % 16));
}

/* Returns 1 when element i sits in the high nibble of its byte. */
static inline int sq_q4_is_high(int64_t i) {
    return ((uint64_t)i % SQ_Q4_BLOCK) >= 16;
}

/* Returns the raw nibble (0..15) of element i. */
static inline int sq_q4_get_nibble(const uint8_t *row, int64_t i) {
    uint8_t byte = row[sq_q4_byte_index(i)];
    return sq_q4_is_high(i) ? byte >> 4 : byte & 15;
}

/* Stores nibble (0..15) as element i, leaving the other nibble of the byte unchanged. */
static inline void sq_q4_set_nibble(uint8_t *row, int64_t i, int nibble) {
    uint8_t *byte = &row[sq_q4_byte_index(i)];
    if (sq_q4_is_high(i)) {
        *byte = (uint8_t)((*byte & 0x0F) | ((nibble & 15) << 4));
    } else {
        *byte = (uint8_t)((*byte & 0xF0) | (nibble & 15));
    }
}

/* Returns the signed weight code (nibble - 8) of element i. */
static inline int sq_q4_get_weight(const uint8_t *row, int64_t i) {
    return sq_q4_get_nibble(row, i) - 8;
}

#endif
