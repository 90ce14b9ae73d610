/* Token -> bytes decoding and the streaming decoder.
 *
 * The bytes of every token are computed once when the tokenizer is created:
 *   - SPM: a byte piece "<0xNN>" becomes that byte and "▁" (U+2581) becomes a space;
 *   - BPE: every byte-level character becomes the byte it stands for;
 *   - control and user-defined tokens keep their text. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Returns the byte of an "<0xNN>" piece (upper- or lower-case hex), or -1. */
static int parse_byte_piece(const char *text, size_t length) {
    if (length != 6 || text[0] != '<' || text[1] != '0' || text[2] != 'x' || text[5] != '>') {
        return -1;
    }
    int value = 0;
    for (int i = 3; i < 5; i++) {
        char c = text[i];
        int digit;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

/* Writes the SPM decoding of a normal piece to out and returns its length. */
static size_t decode_spm_piece(const char *text, size_t length, char *out) {
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        if (i + 3 <= length && memcmp(text + i, "\xE2\x96\x81", 3) == 0) {
            out[written++] = ' ';
            i += 2;
        } else {
            out[written++] = text[i];
        }
    }
    return written;
}

/* Writes the byte-level decoding of a BPE piece to out and returns its length. A character
 * outside the byte-level alphabet (or invalid UTF-8) is copied unchanged. */
static size_t decode_bpe_piece(const char *text, size_t length, char *out) {
    const unsigned char *bytes = (const unsigned char *)text;
    size_t written = 0;
    size_t position = 0;
    while (position < length) {
        size_t char_length = sq_utf8_sequence_length(bytes[position]);
        int valid = char_length > 0 && char_length <= length - position &&
                    sq_utf8_find_invalid(text + position, char_length) == char_length;
        int byte = -1;
        if (valid) {
            byte = sq_bpe_codepoint_to_byte(sq_utf8_decode(bytes, position, &char_length));
        } else {
            char_length = 1;
        }

        if (byte >= 0) {
            out[written++] = (char)byte;
        } else {
            memcpy(out + written, text + position, char_length);
            written += char_length;
        }
        position += char_length;
    }
    return written;
}

sq_status sq_decode_table_build(sq_tokenizer *tokenizer, sq_error *err) {
    size_t n = (size_t)tokenizer->vocab_size;

    /* No decoding is longer than its piece, so the piece blob's size bounds the table. */
    tokenizer->decoded_text = malloc(tokenizer->piece_text_size);
    tokenizer->decoded_offsets = malloc(n * sizeof(uint32_t));
    tokenizer->decoded_lengths = malloc(n * sizeof(uint32_t));
    tokenizer->strip_after_bos = calloc(n, 1);
    if (tokenizer->decoded_text == NULL || tokenizer->decoded_offsets == NULL ||
        tokenizer->decoded_lengths == NULL || tokenizer->strip_after_bos == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the decoding table of %zu tokens", n);
    }

    size_t offset = 0;
    size_t max_length = 0;
    for (size_t id = 0; id < n; id++) {
        const char *text = tokenizer->piece_text + tokenizer->piece_offsets[id];
        size_t length = tokenizer->piece_lengths[id];
        int32_t type = tokenizer->token_types[id];
        char *out = tokenizer->decoded_text + offset;
        size_t written;
        int byte = type == SQ_TOKEN_TYPE_BYTE ? parse_byte_piece(text, length) : -1;

        if (type == SQ_TOKEN_TYPE_CONTROL || type == SQ_TOKEN_TYPE_USER_DEFINED) {
            memcpy(out, text, length);
            written = length;
        } else if (byte >= 0) {
            out[0] = (char)byte;
            written = 1;
        } else if (tokenizer->kind == SQ_TOKENIZER_SPM) {
            written = decode_spm_piece(text, length, out);
            /* llama2.c drops the leading space of a piece, not of a byte token, after BOS. */
            tokenizer->strip_after_bos[id] = written > 0 && out[0] == ' ';
        } else {
            written = decode_bpe_piece(text, length, out);
        }
        out[written] = '\0';

        tokenizer->decoded_offsets[id] = (uint32_t)offset;
        tokenizer->decoded_lengths[id] = (uint32_t)written;
        offset += written + 1;
        if (written > max_length) {
            max_length = written;
        }
    }
    tokenizer->decoded_text_size = offset;
    tokenizer->max_decoded_length = max_length;
    return SQ_OK;
}

const char *sq_tokenizer_decode(const sq_tokenizer *tokenizer, int32_t previous_id, int32_t id,
                                size_t *length) {
    if (id < 0 || id >= tokenizer->vocab_size) {
        *length = 0;
        return "";
    }
    const char *text = tokenizer->decoded_text + tokenizer->decoded_offsets[id];
    size_t text_length = tokenizer->decoded_lengths[id];
    if (tokenizer->kind == SQ_TOKENIZER_SPM && previous_id == tokenizer->bos_id &&
        tokenizer->bos_id >= 0 && tokenizer->strip_after_bos[id]) {
        text++;
        text_length--;
    }
    *length = text_length;
    return text;
}

size_t sq_token_decoder_min_capacity(const sq_tokenizer *tokenizer) {
    /* Up to 3 held-back bytes plus the token, each byte possibly replaced by the 3-byte U+FFFD,
     * plus the NUL. */
    return 3 * (tokenizer->max_decoded_length + 3) + 1;
}

void sq_token_decoder_init(sq_token_decoder *decoder) {
    decoder->previous_id = -1;
    decoder->pending_length = 0;
}

/* Output cursor that writes whole characters only and keeps room for the NUL. */
typedef struct decoder_output {
    char *data;
    size_t capacity;
    size_t length;
} decoder_output;

static void output_write(decoder_output *output, const void *bytes, size_t count) {
    if (output->capacity == 0 || output->length + count > output->capacity - 1) {
        return;
    }
    memcpy(output->data + output->length, bytes, count);
    output->length += count;
}

static void output_replacement(decoder_output *output) {
    output_write(output, "\xEF\xBF\xBD", 3);
}

/* Returns 1 when byte can be byte number index (1-based) of a sequence starting with lead. */
static int continues_sequence(unsigned char lead, size_t index, unsigned char byte) {
    if (index == 1) {
        switch (lead) {
        case 0xE0: return byte >= 0xA0 && byte <= 0xBF;
        case 0xED: return byte >= 0x80 && byte <= 0x9F;
        case 0xF0: return byte >= 0x90 && byte <= 0xBF;
        case 0xF4: return byte >= 0x80 && byte <= 0x8F;
        default: break;
        }
    }
    return (byte & 0xC0) == 0x80;
}

/* Feeds one byte through the UTF-8 state kept in decoder->pending. */
static void decoder_feed(sq_token_decoder *decoder, unsigned char byte, decoder_output *output) {
    if (decoder->pending_length > 0) {
        unsigned char lead = decoder->pending[0];
        if (continues_sequence(lead, decoder->pending_length, byte)) {
            decoder->pending[decoder->pending_length++] = byte;
            if (decoder->pending_length == sq_utf8_sequence_length(lead)) {
                output_write(output, decoder->pending, decoder->pending_length);
                decoder->pending_length = 0;
            }
            return;
        }
        /* The held-back sequence can never complete: replace it and start over at byte. */
        output_replacement(output);
        decoder->pending_length = 0;
    }

    size_t sequence_length = sq_utf8_sequence_length(byte);
    if (sequence_length == 1) {
        output_write(output, &byte, 1);
    } else if (sequence_length == 0) {
        output_replacement(output);
    } else {
        decoder->pending[0] = byte;
        decoder->pending_length = 1;
    }
}

size_t sq_token_decoder_push(sq_token_decoder *decoder, const sq_tokenizer *tokenizer, int32_t id,
                             char *out, size_t capacity) {
    decoder_output output = {out, out != NULL ? capacity : 0, 0};
    size_t length;
    const unsigned char *bytes =
        (const unsigned char *)sq_tokenizer_decode(tokenizer, decoder->previous_id, id, &length);
    decoder->previous_id = id;

    for (size_t i = 0; i < length; i++) {
        decoder_feed(decoder, bytes[i], &output);
    }
    if (output.capacity > 0) {
        out[output.length] = '\0';
    }
    return output.length;
}

size_t sq_token_decoder_flush(sq_token_decoder *decoder, char *out, size_t capacity) {
    decoder_output output = {out, out != NULL ? capacity : 0, 0};
    if (decoder->pending_length > 0) {
        output_replacement(&output);
        decoder->pending_length = 0;
    }
    if (output.capacity > 0) {
        out[output.length] = '\0';
    }
    return output.length;
}
