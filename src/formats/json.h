/* A small strict JSON parser (RFC 8259) for config.json, safetensors headers and their shard
 * index. It rejects what the RFC rejects (trailing commas, comments, single quotes, leading
 * zeros, control characters in strings, invalid UTF-8, lone surrogates, trailing content) and
 * also duplicate object keys and nesting deeper than 64 levels. The parsed tree is read-only. */
#ifndef SQ_FORMATS_JSON_H
#define SQ_FORMATS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SQ_JSON_MAX_DEPTH 64

typedef enum sq_json_type {
    SQ_JSON_NULL,
    SQ_JSON_BOOL,
    SQ_JSON_NUMBER,
    SQ_JSON_STRING,
    SQ_JSON_ARRAY,
    SQ_JSON_OBJECT,
} sq_json_type;

typedef struct sq_json_member sq_json_member;
typedef struct sq_json_value sq_json_value;

struct sq_json_value {
    sq_json_type type;
    int boolean;         /* BOOL */
    int is_integer;      /* NUMBER written without fraction or exponent that fits in int64 */
    int64_t integer;     /* NUMBER, exact when is_integer */
    double number;       /* NUMBER, nearest double */
    char *string;        /* STRING: decoded UTF-8, NUL-terminated (may contain NULs from \u0000) */
    size_t length;       /* STRING: bytes; ARRAY and OBJECT: element count */
    sq_json_value *items;    /* ARRAY: [length] elements */
    sq_json_member *members; /* OBJECT: [length] members in document order */
};

struct sq_json_member {
    char *key; /* decoded UTF-8, NUL-terminated */
    size_t key_length;
    sq_json_value value;
};

/* Parses length bytes of text. On failure the message gives the line, column and byte offset
 * and what was expected there. The caller frees *out with sq_json_free. */
sq_status sq_json_parse(const char *text, size_t length, sq_json_value **out, sq_error *err);

/* Frees a tree returned by sq_json_parse; safe on NULL. */
void sq_json_free(sq_json_value *value);

/* Returns the member value under key when object is an OBJECT that has it, otherwise NULL. */
const sq_json_value *sq_json_get(const sq_json_value *object, const char *key);

/* Returns "null", "boolean", "number", "string", "array" or "object". */
const char *sq_json_type_name(sq_json_type type);

#endif
