/* CRC-32 by slice-by-8: eight table lookups advance the CRC over eight bytes at once. The
 * tables are constant (core/crc32_tables.h), so there is no global mutable state. Bytes are
 * assembled in little-endian order explicitly, so the result does not depend on the host. */
#include "core/crc32.h"

#include "core/crc32_tables.h"

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t sq_crc32_update(uint32_t crc, const void *data, size_t size) {
    const uint8_t *bytes = data;
    const uint32_t(*t)[256] = sq_crc32_tables;
    crc = ~crc;

    while (size >= 8) {
        uint32_t low = load_le32(bytes) ^ crc;
        uint32_t high = load_le32(bytes + 4);
        crc = t[7][low & 0xFF] ^ t[6][(low >> 8) & 0xFF] ^ t[5][(low >> 16) & 0xFF] ^ t[4][low >> 24] ^
              t[3][high & 0xFF] ^ t[2][(high >> 8) & 0xFF] ^ t[1][(high >> 16) & 0xFF] ^ t[0][high >> 24];
        bytes += 8;
        size -= 8;
    }

    while (size > 0) {
        crc = (crc >> 8) ^ t[0][(crc ^ *bytes) & 0xFF];
        bytes++;
        size--;
    }
    return ~crc;
}
