/* Conversions between IEEE binary32 and binary16 (round to nearest, ties to even; binary16
 * subnormals, infinities and NaN handled), for the fp16 embedding and classifier tables. */
#ifndef SQ_SPQ_SPQ_HALF_H
#define SQ_SPQ_SPQ_HALF_H

#include <stdint.h>
#include <string.h>

static inline float sq_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1Fu;
    uint32_t mantissa = h & 0x3FFu;
    uint32_t bits;
    if (exponent == 0x1Fu) {
        bits = sign | 0x7F800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        /* Subnormal: value = mantissa · 2^-24, exact in binary32. */
        float value = (float)mantissa * 5.9604644775390625e-8f;
        memcpy(&bits, &value, sizeof(bits));
        bits |= sign;
    }
    float result;
    memcpy(&result, &bits, sizeof(result));
    return result;
}

static inline uint16_t sq_float_to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof(bits));
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t exponent = (bits >> 23) & 0xFFu;
    uint32_t mantissa = bits & 0x7FFFFFu;
    if (exponent == 0xFFu) {
        return (uint16_t)(sign | 0x7C00u | (mantissa != 0 ? 0x200u : 0));
    }
    int32_t half_exponent = (int32_t)exponent - 112;
    if (half_exponent >= 0x1F) {
        return (uint16_t)(sign | 0x7C00u);
    }
    if (half_exponent <= 0) {
        /* Subnormal or zero: shift the full significand, then round half to even. */
        if (half_exponent < -10) {
            return sign;
        }
        uint32_t significand = mantissa | 0x800000u;
        uint32_t shift = (uint32_t)(14 - half_exponent);
        uint32_t result = significand >> shift;
        uint32_t remainder = significand & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (remainder > halfway || (remainder == halfway && (result & 1u))) {
            result++;
        }
        return (uint16_t)(sign | result);
    }
    uint32_t result = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
    uint32_t remainder = mantissa & 0x1FFFu;
    if (remainder > 0x1000u || (remainder == 0x1000u && (result & 1u))) {
        result++; /* may carry into the exponent, which rounds up to the next binade or to infinity */
    }
    return (uint16_t)(sign | result);
}

#endif
