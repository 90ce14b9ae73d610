/* CRC-32 (IEEE 802.3 polynomial, as zlib and PNG use), computed incrementally. */
#ifndef SQ_CORE_CRC32_H
#define SQ_CORE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over data; start with crc = 0. crc32("123456789") = 0xCBF43926. */
uint32_t sq_crc32_update(uint32_t crc, const void *data, size_t size);

#endif
