/* Code point classes for the BPE pre-tokenizer regex: \p{L}, \p{N} and \s. */
#include "tokenizer/tokenizer_internal.h"

static int range_table_contains(const sq_unicode_range *ranges, size_t count, uint32_t codepoint) {
    size_t low = 0;
    size_t high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (codepoint < ranges[middle].first) {
            high = middle;
        } else if (codepoint > ranges[middle].last) {
            low = middle + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

int sq_unicode_is_letter(uint32_t codepoint) {
    if (codepoint < 0x80) {
        return (codepoint | 0x20) >= 'a' && (codepoint | 0x20) <= 'z';
    }
    return range_table_contains(sq_unicode_letter_ranges, sq_unicode_letter_range_count, codepoint);
}

int sq_unicode_is_number(uint32_t codepoint) {
    if (codepoint < 0x80) {
        return codepoint >= '0' && codepoint <= '9';
    }
    return range_table_contains(sq_unicode_number_ranges, sq_unicode_number_range_count, codepoint);
}

/* The White_Space property of Unicode's PropList.txt, unchanged since Unicode 6.3. */
int sq_unicode_is_whitespace(uint32_t codepoint) {
    if (codepoint < 0x80) {
        return codepoint == ' ' || (codepoint >= 0x09 && codepoint <= 0x0D);
    }
    switch (codepoint) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return 1;
    default:
        return codepoint >= 0x2000 && codepoint <= 0x200A;
    }
}
