/* Overflow-checked size arithmetic for values read from model files. Each helper returns 1 and
 * stores the result when it fits in 64 bits, 0 otherwise (leaving *out unspecified). */
#ifndef SQ_FORMATS_CHECKED_MATH_H
#define SQ_FORMATS_CHECKED_MATH_H

#include <stdint.h>

static inline int sq_checked_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) {
        return 0;
    }
    *out = a * b;
    return 1;
}

static inline int sq_checked_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (b > UINT64_MAX - a) {
        return 0;
    }
    *out = a + b;
    return 1;
}

/* Adds a * b to *total. */
static inline int sq_checked_mul_add_u64(uint64_t *total, uint64_t a, uint64_t b) {
    uint64_t product;
    return sq_checked_mul_u64(a, b, &product) && sq_checked_add_u64(*total, product, total);
}

/* Rounds value up to a multiple of alignment, which must be a power of two. */
static inline int sq_checked_align_u64(uint64_t value, uint64_t alignment, uint64_t *out) {
    uint64_t padded;
    if (!sq_checked_add_u64(value, alignment - 1, &padded)) {
        return 0;
    }
    *out = padded & ~(alignment - 1);
    return 1;
}

#endif
