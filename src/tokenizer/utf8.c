/* UTF-8 validation, decoding and encoding (RFC 3629: at most 4 bytes, no surrogates, no
 * overlong forms, nothing above U+10FFFF). */
#include "tokenizer/tokenizer_internal.h"

size_t sq_utf8_sequence_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

/* Returns 1 when byte may follow lead as the second byte of a sequence. The second byte is
 * restricted after E0 (overlong), ED (surrogates), F0 (overlong) and F4 (above U+10FFFF). */
static int valid_second_byte(unsigned char lead, unsigned char byte) {
    switch (lead) {
    case 0xE0: return byte >= 0xA0 && byte <= 0xBF;
    case 0xED: return byte >= 0x80 && byte <= 0x9F;
    case 0xF0: return byte >= 0x90 && byte <= 0xBF;
    case 0xF4: return byte >= 0x80 && byte <= 0x8F;
    default: return (byte & 0xC0) == 0x80;
    }
}

size_t sq_utf8_find_invalid(const char *text, size_t length) {
    const unsigned char *bytes = (const unsigned char *)text;
    size_t position = 0;
    while (position < length) {
        unsigned char lead = bytes[position];
        if (lead < 0x80) {
            position++;
            continue;
        }

        size_t sequence_length = sq_utf8_sequence_length(lead);
        if (sequence_length == 0 || position + sequence_length > length) {
            return position;
        }
        if (!valid_second_byte(lead, bytes[position + 1])) {
            return position;
        }
        for (size_t k = 2; k < sequence_length; k++) {
            if ((bytes[position + k] & 0xC0) != 0x80) {
                return position;
            }
        }
        position += sequence_length;
    }
    return length;
}

uint32_t sq_utf8_decode(const unsigned char *text, size_t position, size_t *char_length) {
    unsigned char lead = text[position];
    if (lead < 0x80) {
        *char_length = 1;
        return lead;
    }
    if (lead < 0xE0) {
        *char_length = 2;
        return ((uint32_t)(lead & 0x1F) << 6) | (text[position + 1] & 0x3F);
    }
    if (lead < 0xF0) {
        *char_length = 3;
        return ((uint32_t)(lead & 0x0F) << 12) | ((uint32_t)(text[position + 1] & 0x3F) << 6) |
               (text[position + 2] & 0x3F);
    }
    *char_length = 4;
    return ((uint32_t)(lead & 0x07) << 18) | ((uint32_t)(text[position + 1] & 0x3F) << 12) |
           ((uint32_t)(text[position + 2] & 0x3F) << 6) | (text[position + 3] & 0x3F);
}

size_t sq_utf8_encode(uint32_t codepoint, char *out) {
    unsigned char *bytes = (unsigned char *)out;
    if (codepoint < 0x80) {
        bytes[0] = (unsigned char)codepoint;
        return 1;
    }
    if (codepoint < 0x800) {
        bytes[0] = (unsigned char)(0xC0 | (codepoint >> 6));
        bytes[1] = (unsigned char)(0x80 | (codepoint & 0x3F));
        return 2;
    }
    if (codepoint < 0x10000) {
        bytes[0] = (unsigned char)(0xE0 | (codepoint >> 12));
        bytes[1] = (unsigned char)(0x80 | ((codepoint >> 6) & 0x3F));
        bytes[2] = (unsigned char)(0x80 | (codepoint & 0x3F));
        return 3;
    }
    bytes[0] = (unsigned char)(0xF0 | (codepoint >> 18));
    bytes[1] = (unsigned char)(0x80 | ((codepoint >> 12) & 0x3F));
    bytes[2] = (unsigned char)(0x80 | ((codepoint >> 6) & 0x3F));
    bytes[3] = (unsigned char)(0x80 | (codepoint & 0x3F));
    return 4;
}
