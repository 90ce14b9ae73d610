/* Helpers for the tokenizer tests, independent of the engine's own parsers:
 *   - a GGUF metadata reader that builds an sq_tokenizer_desc from tokenizer.ggml.* keys;
 *   - a small JSON reader for the reference files;
 *   - SHA-256, to compare a token list with a reference digest;
 *   - a UTF-8 validity check.
 * Every function here aborts the test (exit 2) on malformed input, because the inputs are fixed
 * reference files and not the code under test. */
#ifndef SQ_TEST_TOKENIZER_SUPPORT_H
#define SQ_TEST_TOKENIZER_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "tokenizer/tokenizer.h"

static inline void support_fail(const char *what, const char *detail) {
    fprintf(stderr, "test support: %s: %s\n", what, detail);
    exit(2);
}

static inline char *support_read_text(const char *path, size_t *size) {
    uint8_t *data;
    sq_error err;
    if (sq_io_read_file(path, &data, size, &err) != SQ_OK) {
        support_fail("cannot read reference file", err.message);
    }
    return (char *)data;
}

/* Returns 1 when text is valid UTF-8 (checked here independently of the library). */
static inline int support_utf8_valid(const unsigned char *text, size_t length) {
    size_t i = 0;
    while (i < length) {
        unsigned c = text[i];
        size_t n;
        uint32_t codepoint;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { n = 2; codepoint = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 3; codepoint = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 4; codepoint = c & 0x07; }
        else { return 0; }
        if (i + n > length) { return 0; }
        for (size_t k = 1; k < n; k++) {
            if ((text[i + k] & 0xC0) != 0x80) { return 0; }
            codepoint = (codepoint << 6) | (text[i + k] & 0x3F);
        }
        if ((n == 3 && codepoint < 0x800) || (n == 4 && codepoint < 0x10000) ||
            (codepoint >= 0xD800 && codepoint <= 0xDFFF) || codepoint > 0x10FFFF) {
            return 0;
        }
        i += n;
    }
    return 1;
}

/* Returns 1 when data[0, length) equals the NUL-terminated expected string. */
static inline int support_bytes_equal(const char *data, size_t length, const char *expected) {
    return length == strlen(expected) && memcmp(data, expected, length) == 0;
}

/* ---- GGUF metadata ---- */

typedef struct gguf_vocab {
    uint8_t *file;           /* whole file; the strings below point into it */
    char model[32];          /* tokenizer.ggml.model */
    char pre[64];            /* tokenizer.ggml.pre, or "" */
    int32_t n_tokens;
    const char **tokens;
    uint32_t *token_lengths;
    float *scores;           /* NULL when absent */
    int32_t *token_types;    /* NULL when absent */
    int32_t n_merges;
    const char **merges;
    uint32_t *merge_lengths;
    int32_t bos_id, eos_id, unk_id, pad_id;
    int add_bos;             /* -1 when absent */
    int add_space_prefix;    /* -1 when absent */
} gguf_vocab;

typedef struct gguf_cursor {
    const uint8_t *data;
    size_t size;
    size_t offset;
} gguf_cursor;

static inline const uint8_t *gguf_take(gguf_cursor *cursor, size_t count) {
    if (count > cursor->size - cursor->offset) {
        support_fail("GGUF", "truncated metadata");
    }
    const uint8_t *p = cursor->data + cursor->offset;
    cursor->offset += count;
    return p;
}

static inline uint64_t gguf_u64(gguf_cursor *cursor) {
    uint64_t v;
    memcpy(&v, gguf_take(cursor, 8), 8);
    return v;
}

static inline uint32_t gguf_u32(gguf_cursor *cursor) {
    uint32_t v;
    memcpy(&v, gguf_take(cursor, 4), 4);
    return v;
}

static inline size_t gguf_scalar_size(uint32_t type) {
    switch (type) {
    case 0: case 1: case 7: return 1;   /* uint8, int8, bool */
    case 2: case 3: return 2;           /* uint16, int16 */
    case 4: case 5: case 6: return 4;   /* uint32, int32, float32 */
    case 10: case 11: case 12: return 8; /* uint64, int64, float64 */
    default: return 0;
    }
}

/* Reads one value of type as an integer (for ids and flags), skipping anything else. */
static inline int64_t gguf_read_scalar(gguf_cursor *cursor, uint32_t type) {
    size_t size = gguf_scalar_size(type);
    if (size == 0) {
        support_fail("GGUF", "unexpected value type");
    }
    const uint8_t *p = gguf_take(cursor, size);
    switch (type) {
    case 0: case 7: return p[0];
    case 1: return (int8_t)p[0];
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 5: { int32_t v; memcpy(&v, p, 4); return v; }
    case 10: { uint64_t v; memcpy(&v, p, 8); return (int64_t)v; }
    case 11: { int64_t v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

static inline void gguf_skip_value(gguf_cursor *cursor, uint32_t type) {
    if (type == 8) {
        gguf_take(cursor, gguf_u64(cursor));
    } else if (type == 9) {
        uint32_t element_type = gguf_u32(cursor);
        uint64_t count = gguf_u64(cursor);
        for (uint64_t i = 0; i < count; i++) {
            gguf_skip_value(cursor, element_type);
        }
    } else {
        size_t size = gguf_scalar_size(type);
        if (size == 0) {
            support_fail("GGUF", "unknown value type");
        }
        gguf_take(cursor, size);
    }
}

/* Reads a string array into freshly allocated pointer and length arrays. */
static inline int32_t gguf_read_strings(gguf_cursor *cursor, const char ***strings, uint32_t **lengths) {
    if (gguf_u32(cursor) != 8) {
        support_fail("GGUF", "expected an array of strings");
    }
    uint64_t count = gguf_u64(cursor);
    *strings = malloc(count * sizeof(**strings) + 1);
    *lengths = malloc(count * sizeof(**lengths) + 1);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t length = gguf_u64(cursor);
        (*strings)[i] = (const char *)gguf_take(cursor, length);
        (*lengths)[i] = (uint32_t)length;
    }
    return (int32_t)count;
}

static inline void gguf_read_string(gguf_cursor *cursor, char *out, size_t capacity) {
    uint64_t length = gguf_u64(cursor);
    const uint8_t *p = gguf_take(cursor, length);
    size_t n = length < capacity - 1 ? (size_t)length : capacity - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static inline void gguf_vocab_load(const char *path, gguf_vocab *vocab) {
    memset(vocab, 0, sizeof(*vocab));
    vocab->bos_id = vocab->eos_id = vocab->unk_id = vocab->pad_id = -1;
    vocab->add_bos = vocab->add_space_prefix = -1;

    size_t size;
    vocab->file = (uint8_t *)support_read_text(path, &size);
    gguf_cursor cursor = {vocab->file, size, 0};
    if (memcmp(gguf_take(&cursor, 4), "GGUF", 4) != 0) {
        support_fail("GGUF", path);
    }
    uint32_t version = gguf_u32(&cursor);
    if (version != 2 && version != 3) {
        support_fail("GGUF version", path);
    }
    gguf_u64(&cursor); /* tensor count */
    uint64_t n_kv = gguf_u64(&cursor);

    for (uint64_t i = 0; i < n_kv; i++) {
        char key[128];
        gguf_read_string(&cursor, key, sizeof(key));
        uint32_t type = gguf_u32(&cursor);

        if (strcmp(key, "tokenizer.ggml.model") == 0 && type == 8) {
            gguf_read_string(&cursor, vocab->model, sizeof(vocab->model));
        } else if (strcmp(key, "tokenizer.ggml.pre") == 0 && type == 8) {
            gguf_read_string(&cursor, vocab->pre, sizeof(vocab->pre));
        } else if (strcmp(key, "tokenizer.ggml.tokens") == 0 && type == 9) {
            vocab->n_tokens = gguf_read_strings(&cursor, &vocab->tokens, &vocab->token_lengths);
        } else if (strcmp(key, "tokenizer.ggml.merges") == 0 && type == 9) {
            vocab->n_merges = gguf_read_strings(&cursor, &vocab->merges, &vocab->merge_lengths);
        } else if ((strcmp(key, "tokenizer.ggml.scores") == 0 ||
                    strcmp(key, "tokenizer.ggml.token_type") == 0) && type == 9) {
            uint32_t element_type = gguf_u32(&cursor);
            uint64_t count = gguf_u64(&cursor);
            if (gguf_scalar_size(element_type) != 4) {
                support_fail("GGUF", "scores or token types are not 4-byte values");
            }
            void *values = malloc(count * 4 + 4);
            memcpy(values, gguf_take(&cursor, count * 4), count * 4);
            if (strcmp(key, "tokenizer.ggml.scores") == 0) {
                vocab->scores = values;
            } else {
                vocab->token_types = values;
            }
        } else if (strcmp(key, "tokenizer.ggml.bos_token_id") == 0) {
            vocab->bos_id = (int32_t)gguf_read_scalar(&cursor, type);
        } else if (strcmp(key, "tokenizer.ggml.eos_token_id") == 0) {
            vocab->eos_id = (int32_t)gguf_read_scalar(&cursor, type);
        } else if (strcmp(key, "tokenizer.ggml.unknown_token_id") == 0) {
            vocab->unk_id = (int32_t)gguf_read_scalar(&cursor, type);
        } else if (strcmp(key, "tokenizer.ggml.padding_token_id") == 0) {
            vocab->pad_id = (int32_t)gguf_read_scalar(&cursor, type);
        } else if (strcmp(key, "tokenizer.ggml.add_bos_token") == 0) {
            vocab->add_bos = (int)gguf_read_scalar(&cursor, type);
        } else if (strcmp(key, "tokenizer.ggml.add_space_prefix") == 0) {
            vocab->add_space_prefix = (int)gguf_read_scalar(&cursor, type);
        } else {
            gguf_skip_value(&cursor, type);
        }
    }

    /* GGUF stores 0xFFFFFFFF for "no such token". */
    int32_t *ids[4] = {&vocab->bos_id, &vocab->eos_id, &vocab->unk_id, &vocab->pad_id};
    for (int i = 0; i < 4; i++) {
        if (*ids[i] < 0 || *ids[i] >= vocab->n_tokens) {
            *ids[i] = -1;
        }
    }
}

static inline sq_tokenizer_desc gguf_vocab_desc(const gguf_vocab *vocab) {
    int spm = strcmp(vocab->model, "llama") == 0;
    sq_tokenizer_desc desc = {
        .kind = spm ? SQ_TOKENIZER_SPM : SQ_TOKENIZER_BPE,
        .vocab_size = vocab->n_tokens,
        .pieces = vocab->tokens,
        .piece_lengths = vocab->token_lengths,
        .scores = vocab->scores,
        .token_types = vocab->token_types,
        .n_merges = vocab->n_merges,
        .merges = vocab->merges,
        .merge_lengths = vocab->merge_lengths,
        .bos_id = vocab->bos_id,
        .eos_id = vocab->eos_id,
        .unk_id = vocab->unk_id,
        .pad_id = vocab->pad_id,
        .add_bos = vocab->add_bos >= 0 ? vocab->add_bos : spm,
        .add_space_prefix = vocab->add_space_prefix >= 0 ? vocab->add_space_prefix : spm,
        .pre_tokenizer = vocab->pre[0] != '\0' ? vocab->pre : NULL,
    };
    return desc;
}

/* Returns the id whose text is exactly text, by linear search, or -1. */
static inline int32_t gguf_vocab_find(const gguf_vocab *vocab, const char *text) {
    size_t length = strlen(text);
    for (int32_t i = 0; i < vocab->n_tokens; i++) {
        if (vocab->token_lengths[i] == length && memcmp(vocab->tokens[i], text, length) == 0) {
            return i;
        }
    }
    return -1;
}

static inline void gguf_vocab_free(gguf_vocab *vocab) {
    free(vocab->file);
    free(vocab->tokens);
    free(vocab->token_lengths);
    free(vocab->scores);
    free(vocab->token_types);
    free(vocab->merges);
    free(vocab->merge_lengths);
}

/* ---- JSON ---- */

typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    double number;              /* JSON_NUMBER, JSON_BOOL */
    char *string;               /* JSON_STRING (NUL-terminated, may contain NUL via \u0000) */
    size_t string_length;
    struct json_value *items;   /* JSON_ARRAY elements or JSON_OBJECT values */
    char **keys;                /* JSON_OBJECT keys */
    size_t count;
} json_value;

typedef struct json_parser {
    const char *text;
    size_t length;
    size_t position;
} json_parser;

static inline void json_skip_space(json_parser *parser) {
    while (parser->position < parser->length &&
           strchr(" \t\r\n", parser->text[parser->position]) != NULL) {
        parser->position++;
    }
}

static inline char json_peek(json_parser *parser) {
    json_skip_space(parser);
    if (parser->position >= parser->length) {
        support_fail("JSON", "unexpected end of input");
    }
    return parser->text[parser->position];
}

static inline void json_expect(json_parser *parser, char c) {
    if (json_peek(parser) != c) {
        support_fail("JSON", "unexpected character");
    }
    parser->position++;
}

static inline unsigned json_hex4(json_parser *parser) {
    unsigned value = 0;
    for (int i = 0; i < 4; i++) {
        char c = parser->text[parser->position++];
        unsigned digit;
        if (c >= 'a') {
            digit = (unsigned)(c - 'a' + 10);
        } else if (c >= 'A') {
            digit = (unsigned)(c - 'A' + 10);
        } else {
            digit = (unsigned)(c - '0');
        }
        value = value * 16 + digit;
    }
    return value;
}

static inline size_t json_put_utf8(unsigned codepoint, char *out) {
    if (codepoint < 0x80) { out[0] = (char)codepoint; return 1; }
    if (codepoint < 0x800) {
        out[0] = (char)(0xC0 | (codepoint >> 6));
        out[1] = (char)(0x80 | (codepoint & 0x3F));
        return 2;
    }
    if (codepoint < 0x10000) {
        out[0] = (char)(0xE0 | (codepoint >> 12));
        out[1] = (char)(0x80 | ((codepoint >> 6) & 0x3F));
        out[2] = (char)(0x80 | (codepoint & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (codepoint >> 18));
    out[1] = (char)(0x80 | ((codepoint >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((codepoint >> 6) & 0x3F));
    out[3] = (char)(0x80 | (codepoint & 0x3F));
    return 4;
}

static inline char *json_parse_string(json_parser *parser, size_t *length) {
    json_expect(parser, '"');
    char *out = malloc(parser->length - parser->position + 1);
    size_t n = 0;
    for (;;) {
        if (parser->position >= parser->length) {
            support_fail("JSON", "unterminated string");
        }
        char c = parser->text[parser->position++];
        if (c == '"') {
            break;
        }
        if (c != '\\') {
            out[n++] = c;
            continue;
        }
        char e = parser->text[parser->position++];
        switch (e) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned codepoint = json_hex4(parser);
            if (codepoint >= 0xD800 && codepoint < 0xDC00) {
                parser->position += 2; /* the "\u" of the low surrogate */
                unsigned low = json_hex4(parser);
                codepoint = 0x10000 + ((codepoint - 0xD800) << 10) + (low - 0xDC00);
            }
            n += json_put_utf8(codepoint, out + n);
            break;
        }
        default: out[n++] = e; break;
        }
    }
    out[n] = '\0';
    *length = n;
    return out;
}

static inline void json_parse_value(json_parser *parser, json_value *value) {
    memset(value, 0, sizeof(*value));
    char c = json_peek(parser);
    if (c == '"') {
        value->type = JSON_STRING;
        value->string = json_parse_string(parser, &value->string_length);
    } else if (c == '[' || c == '{') {
        int object = c == '{';
        value->type = object ? JSON_OBJECT : JSON_ARRAY;
        parser->position++;
        size_t capacity = 0;
        if (json_peek(parser) == (object ? '}' : ']')) {
            parser->position++;
            return;
        }
        for (;;) {
            if (value->count == capacity) {
                capacity = capacity == 0 ? 8 : 2 * capacity;
                value->items = realloc(value->items, capacity * sizeof(*value->items));
                if (object) {
                    value->keys = realloc(value->keys, capacity * sizeof(*value->keys));
                }
            }
            if (object) {
                size_t key_length;
                value->keys[value->count] = json_parse_string(parser, &key_length);
                json_expect(parser, ':');
            }
            json_parse_value(parser, &value->items[value->count++]);
            char next = json_peek(parser);
            parser->position++;
            if (next == (object ? '}' : ']')) {
                break;
            }
            if (next != ',') {
                support_fail("JSON", "expected a comma");
            }
        }
    } else if (c == 't' || c == 'f' || c == 'n') {
        value->type = c == 'n' ? JSON_NULL : JSON_BOOL;
        value->number = c == 't';
        parser->position += c == 'f' ? 5 : 4;
    } else {
        value->type = JSON_NUMBER;
        char *end;
        value->number = strtod(parser->text + parser->position, &end);
        if (end == parser->text + parser->position) {
            support_fail("JSON", "invalid number");
        }
        parser->position = (size_t)(end - parser->text);
    }
}

static inline void json_free(json_value *value) {
    free(value->string);
    for (size_t i = 0; i < value->count; i++) {
        json_free(&value->items[i]);
        if (value->keys != NULL) {
            free(value->keys[i]);
        }
    }
    free(value->items);
    free(value->keys);
}

static inline void json_parse_text(const char *text, size_t length, json_value *value) {
    json_parser parser = {text, length, 0};
    json_parse_value(&parser, value);
}

/* Returns the member named key of an object, or NULL. */
static inline const json_value *json_get(const json_value *object, const char *key) {
    if (object == NULL || object->type != JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < object->count; i++) {
        if (strcmp(object->keys[i], key) == 0) {
            return &object->items[i];
        }
    }
    return NULL;
}

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct sha256_state {
    uint32_t h[8];
    uint8_t block[64];
    size_t block_length;
    uint64_t total_length;
} sha256_state;

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t sha256_rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

static inline void sha256_compress(sha256_state *state, const uint8_t *block) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = ((uint32_t)block[4 * i] << 24) | ((uint32_t)block[4 * i + 1] << 16) |
               ((uint32_t)block[4 * i + 2] << 8) | block[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = sha256_rotr(w[i - 15], 7) ^ sha256_rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = sha256_rotr(w[i - 2], 17) ^ sha256_rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state->h[0], b = state->h[1], c = state->h[2], d = state->h[3];
    uint32_t e = state->h[4], f = state->h[5], g = state->h[6], h = state->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = sha256_rotr(e, 6) ^ sha256_rotr(e, 11) ^ sha256_rotr(e, 25);
        uint32_t choice = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + choice + sha256_k[i] + w[i];
        uint32_t s0 = sha256_rotr(a, 2) ^ sha256_rotr(a, 13) ^ sha256_rotr(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + majority;
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state->h[0] += a; state->h[1] += b; state->h[2] += c; state->h[3] += d;
    state->h[4] += e; state->h[5] += f; state->h[6] += g; state->h[7] += h;
}

static inline void sha256_init(sha256_state *state) {
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(state->h, initial, sizeof(initial));
    state->block_length = 0;
    state->total_length = 0;
}

static inline void sha256_update(sha256_state *state, const void *data, size_t length) {
    const uint8_t *bytes = data;
    state->total_length += length;
    for (size_t i = 0; i < length; i++) {
        state->block[state->block_length++] = bytes[i];
        if (state->block_length == 64) {
            sha256_compress(state, state->block);
            state->block_length = 0;
        }
    }
}

/* Writes the digest as 64 lowercase hex digits and a NUL. */
static inline void sha256_final_hex(sha256_state *state, char hex[65]) {
    uint64_t bit_length = state->total_length * 8;
    uint8_t pad = 0x80;
    sha256_update(state, &pad, 1);
    pad = 0;
    while (state->block_length != 56) {
        sha256_update(state, &pad, 1);
    }
    uint8_t length_bytes[8];
    for (int i = 0; i < 8; i++) {
        length_bytes[i] = (uint8_t)(bit_length >> (56 - 8 * i));
    }
    sha256_update(state, length_bytes, 8);
    for (int i = 0; i < 8; i++) {
        snprintf(hex + 8 * i, 9, "%08x", state->h[i]);
    }
}

#endif
