/* Strict recursive-descent JSON parser; see json.h for what it accepts. */
#include "formats/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *text;
    size_t length;
    size_t position;
    sq_error *err;
} parser;

/* Records an error at the current position with its line and column. */
static sq_status fail(parser *p, const char *expected) {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < p->position && i < p->length; i++) {
        if (p->text[i] == '\n') {
            line++;
            column = 1;
        } else {
            column++;
        }
    }
    if (p->position >= p->length) {
        return sq_error_set(p->err, SQ_ERR_FORMAT, "invalid JSON at line %zu, column %zu (byte %zu): %s, found the end of the text",
                            line, column, p->position, expected);
    }
    unsigned char c = (unsigned char)p->text[p->position];
    if (c >= 0x20 && c < 0x7f) {
        return sq_error_set(p->err, SQ_ERR_FORMAT, "invalid JSON at line %zu, column %zu (byte %zu): %s, found '%c'", line,
                            column, p->position, expected, c);
    }
    return sq_error_set(p->err, SQ_ERR_FORMAT, "invalid JSON at line %zu, column %zu (byte %zu): %s, found byte 0x%02x",
                        line, column, p->position, expected, c);
}

static sq_status out_of_memory(parser *p) {
    return sq_error_set(p->err, SQ_ERR_NOMEM, "cannot allocate memory while parsing JSON at byte %zu", p->position);
}

static void skip_whitespace(parser *p) {
    while (p->position < p->length) {
        char c = p->text[p->position];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        p->position++;
    }
}

static int peek(const parser *p) {
    return p->position < p->length ? (unsigned char)p->text[p->position] : -1;
}

static int consume_literal(parser *p, const char *literal) {
    size_t n = strlen(literal);
    if (p->length - p->position < n || memcmp(p->text + p->position, literal, n) != 0) {
        return 0;
    }
    p->position += n;
    return 1;
}

static void free_contents(sq_json_value *value) {
    switch (value->type) {
    case SQ_JSON_STRING: free(value->string); break;
    case SQ_JSON_ARRAY:
        for (size_t i = 0; i < value->length; i++) {
            free_contents(&value->items[i]);
        }
        free(value->items);
        break;
    case SQ_JSON_OBJECT:
        for (size_t i = 0; i < value->length; i++) {
            free(value->members[i].key);
            free_contents(&value->members[i].value);
        }
        free(value->members);
        break;
    default: break;
    }
}

/* Appends code point cp as UTF-8 to out (which has room for 4 more bytes). */
static size_t encode_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Returns the length of the valid UTF-8 sequence at s (at most available bytes), or 0. */
static size_t utf8_sequence_length(const unsigned char *s, size_t available) {
    size_t n;
    uint32_t min;
    uint32_t cp;
    if (s[0] < 0x80) {
        return 1;
    } else if ((s[0] & 0xe0) == 0xc0) {
        n = 2, min = 0x80, cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, min = 0x800, cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n > available) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0; /* overlong encoding, beyond Unicode, or a surrogate */
    }
    return n;
}

static int parse_hex4(parser *p, uint32_t *out) {
    if (p->length - p->position < 4) {
        return 0;
    }
    uint32_t value = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->position + (size_t)i];
        value <<= 4;
        if (c >= '0' && c <= '9') {
            value |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            value |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            value |= (uint32_t)(c - 'A' + 10);
        } else {
            return 0;
        }
    }
    p->position += 4;
    *out = value;
    return 1;
}

/* Decodes the \u escape whose 'u' was just consumed, combining a surrogate pair. */
static sq_status parse_unicode_escape(parser *p, uint32_t *cp) {
    if (!parse_hex4(p, cp)) {
        return fail(p, "expected four hex digits after \\u");
    }
    if (*cp >= 0xdc00 && *cp <= 0xdfff) {
        return fail(p, "expected a high surrogate before this low surrogate escape");
    }
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        uint32_t low;
        if (!consume_literal(p, "\\u") || !parse_hex4(p, &low) || low < 0xdc00 || low > 0xdfff) {
            return fail(p, "expected a \\u low surrogate after a high surrogate");
        }
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (low - 0xdc00);
    }
    return SQ_OK;
}

static sq_status parse_string(parser *p, char **out, size_t *out_length) {
    p->position++; /* opening quote */

    /* The decoded string is never longer than its source, so one allocation suffices. */
    size_t end = p->position;
    while (end < p->length && p->text[end] != '"') {
        end += p->text[end] == '\\' ? 2 : 1;
    }
    size_t capacity = (end < p->length ? end : p->length) - p->position + 1;
    char *buffer = malloc(capacity);
    if (buffer == NULL) {
        return out_of_memory(p);
    }

    size_t n = 0;
    sq_status status = SQ_OK;
    for (;;) {
        int c = peek(p);
        if (c < 0) {
            status = fail(p, "expected a closing quote");
            break;
        }
        if (c == '"') {
            p->position++;
            break;
        }
        if (c < 0x20) {
            status = fail(p, "expected an escape sequence for this control character");
            break;
        }
        if (c == '\\') {
            p->position++;
            int e = peek(p);
            const char *simple = "\"\\/bfnrt";
            const char *decoded = "\"\\/\b\f\n\r\t";
            const char *found = e > 0 ? strchr(simple, e) : NULL;
            if (found != NULL) {
                buffer[n++] = decoded[found - simple];
                p->position++;
                continue;
            }
            if (e != 'u') {
                status = fail(p, "expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u");
                break;
            }
            p->position++;
            uint32_t cp = 0;
            if ((status = parse_unicode_escape(p, &cp)) != SQ_OK) {
                break;
            }
            n += encode_utf8(cp, buffer + n); /* at most 4 bytes from 6 or 12 source bytes */
            continue;
        }
        size_t sequence = utf8_sequence_length((const unsigned char *)p->text + p->position, p->length - p->position);
        if (sequence == 0) {
            status = fail(p, "expected valid UTF-8");
            break;
        }
        memcpy(buffer + n, p->text + p->position, sequence);
        n += sequence;
        p->position += sequence;
    }
    if (status != SQ_OK) {
        free(buffer);
        return status;
    }
    buffer[n] = '\0';
    *out = buffer;
    *out_length = n;
    return SQ_OK;
}

static int is_digit(int c) {
    return c >= '0' && c <= '9';
}

static sq_status parse_number(parser *p, sq_json_value *value) {
    size_t start = p->position;
    int integral = 1;
    if (peek(p) == '-') {
        p->position++;
    }
    if (peek(p) == '0') {
        p->position++;
        if (is_digit(peek(p))) {
            return fail(p, "expected no leading zero");
        }
    } else if (is_digit(peek(p))) {
        while (is_digit(peek(p))) {
            p->position++;
        }
    } else {
        return fail(p, "expected a digit");
    }
    if (peek(p) == '.') {
        integral = 0;
        p->position++;
        if (!is_digit(peek(p))) {
            return fail(p, "expected a digit after the decimal point");
        }
        while (is_digit(peek(p))) {
            p->position++;
        }
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        integral = 0;
        p->position++;
        if (peek(p) == '+' || peek(p) == '-') {
            p->position++;
        }
        if (!is_digit(peek(p))) {
            return fail(p, "expected a digit in the exponent");
        }
        while (is_digit(peek(p))) {
            p->position++;
        }
    }

    /* strtod needs a NUL-terminated copy; the grammar above already validated the text. */
    size_t n = p->position - start;
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        return out_of_memory(p);
    }
    memcpy(copy, p->text + start, n);
    copy[n] = '\0';
    value->type = SQ_JSON_NUMBER;
    value->number = strtod(copy, NULL);
    if (integral) {
        /* Accumulate exactly, detecting int64 overflow. */
        int negative = copy[0] == '-';
        uint64_t magnitude = 0;
        int fits = 1;
        for (size_t i = (size_t)negative; i < n; i++) {
            uint64_t digit = (uint64_t)(copy[i] - '0');
            if (magnitude > (UINT64_MAX - digit) / 10) {
                fits = 0;
                break;
            }
            magnitude = magnitude * 10 + digit;
        }
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (fits && magnitude <= limit) {
            value->is_integer = 1;
            if (!negative) {
                value->integer = (int64_t)magnitude;
            } else if (magnitude == limit) {
                value->integer = INT64_MIN; /* its magnitude does not fit in int64 */
            } else {
                value->integer = -(int64_t)magnitude;
            }
        }
    }
    free(copy);
    return SQ_OK;
}

static sq_status parse_value(parser *p, int depth, sq_json_value *value);

static int compare_members(const void *a, const void *b) {
    const sq_json_member *x = *(const sq_json_member *const *)a;
    const sq_json_member *y = *(const sq_json_member *const *)b;
    size_t n = x->key_length < y->key_length ? x->key_length : y->key_length;
    int c = memcmp(x->key, y->key, n);
    if (c != 0) {
        return c;
    }
    return x->key_length < y->key_length ? -1 : (x->key_length > y->key_length ? 1 : 0);
}

/* Finds a duplicate key by sorting pointers to the members; returns it or NULL. */
static const sq_json_member *find_duplicate_key(parser *p, const sq_json_value *object, sq_status *status) {
    *status = SQ_OK;
    if (object->length < 2) {
        return NULL;
    }
    const sq_json_member **sorted = malloc(object->length * sizeof(*sorted));
    if (sorted == NULL) {
        *status = out_of_memory(p);
        return NULL;
    }
    for (size_t i = 0; i < object->length; i++) {
        sorted[i] = &object->members[i];
    }
    qsort(sorted, object->length, sizeof(*sorted), compare_members);
    const sq_json_member *duplicate = NULL;
    for (size_t i = 1; i < object->length && duplicate == NULL; i++) {
        if (compare_members(&sorted[i - 1], &sorted[i]) == 0) {
            duplicate = sorted[i];
        }
    }
    free(sorted);
    return duplicate;
}

/* Grows *items (of element_size bytes each) so that it has room for at least count + 1 elements. */
static int reserve(void **items, size_t *capacity, size_t count, size_t element_size) {
    if (count < *capacity) {
        return 1;
    }
    size_t grown = *capacity == 0 ? 4 : *capacity * 2;
    if (grown > SIZE_MAX / element_size) {
        return 0;
    }
    void *resized = realloc(*items, grown * element_size);
    if (resized == NULL) {
        return 0;
    }
    memset((char *)resized + *capacity * element_size, 0, (grown - *capacity) * element_size);
    *items = resized;
    *capacity = grown;
    return 1;
}

static sq_status parse_array(parser *p, int depth, sq_json_value *value) {
    p->position++; /* [ */
    value->type = SQ_JSON_ARRAY;
    size_t capacity = 0;
    skip_whitespace(p);
    if (peek(p) == ']') {
        p->position++;
        return SQ_OK;
    }
    for (;;) {
        if (!reserve((void **)&value->items, &capacity, value->length, sizeof(sq_json_value))) {
            return out_of_memory(p);
        }
        sq_status status = parse_value(p, depth + 1, &value->items[value->length]);
        value->length++; /* counted even on failure so that free_contents releases it */
        if (status != SQ_OK) {
            return status;
        }
        skip_whitespace(p);
        if (peek(p) == ',') {
            p->position++;
            continue;
        }
        if (peek(p) == ']') {
            p->position++;
            return SQ_OK;
        }
        return fail(p, "expected ',' or ']' in an array");
    }
}

static sq_status parse_object(parser *p, int depth, sq_json_value *value) {
    p->position++; /* { */
    value->type = SQ_JSON_OBJECT;
    size_t capacity = 0;
    skip_whitespace(p);
    if (peek(p) == '}') {
        p->position++;
        return SQ_OK;
    }
    for (;;) {
        skip_whitespace(p);
        if (peek(p) != '"') {
            return fail(p, "expected a string key in an object");
        }
        if (!reserve((void **)&value->members, &capacity, value->length, sizeof(sq_json_member))) {
            return out_of_memory(p);
        }
        sq_json_member *member = &value->members[value->length];
        value->length++; /* counted even on failure so that free_contents releases it */
        sq_status status = parse_string(p, &member->key, &member->key_length);
        if (status != SQ_OK) {
            return status;
        }
        skip_whitespace(p);
        if (peek(p) != ':') {
            return fail(p, "expected ':' after an object key");
        }
        p->position++;
        if ((status = parse_value(p, depth + 1, &member->value)) != SQ_OK) {
            return status;
        }
        skip_whitespace(p);
        if (peek(p) == ',') {
            p->position++;
            continue;
        }
        if (peek(p) == '}') {
            p->position++;
            break;
        }
        return fail(p, "expected ',' or '}' in an object");
    }

    sq_status status;
    const sq_json_member *duplicate = find_duplicate_key(p, value, &status);
    if (status != SQ_OK) {
        return status;
    }
    if (duplicate != NULL) {
        return sq_error_set(p->err, SQ_ERR_FORMAT, "invalid JSON: duplicate object key \"%s\" before byte %zu",
                            duplicate->key, p->position);
    }
    return SQ_OK;
}

static sq_status parse_value(parser *p, int depth, sq_json_value *value) {
    memset(value, 0, sizeof(*value));
    if (depth >= SQ_JSON_MAX_DEPTH) {
        return fail(p, "expected at most 64 levels of nesting");
    }
    skip_whitespace(p);
    int c = peek(p);
    switch (c) {
    case '{': return parse_object(p, depth, value);
    case '[': return parse_array(p, depth, value);
    case '"':
        value->type = SQ_JSON_STRING;
        return parse_string(p, &value->string, &value->length);
    case 't':
    case 'f':
    case 'n':
        if (consume_literal(p, "true")) {
            value->type = SQ_JSON_BOOL;
            value->boolean = 1;
        } else if (consume_literal(p, "false")) {
            value->type = SQ_JSON_BOOL;
        } else if (consume_literal(p, "null")) {
            value->type = SQ_JSON_NULL;
        } else {
            return fail(p, "expected true, false or null");
        }
        return SQ_OK;
    default:
        if (c == '-' || is_digit(c)) {
            return parse_number(p, value);
        }
        return fail(p, "expected a JSON value");
    }
}

sq_status sq_json_parse(const char *text, size_t length, sq_json_value **out, sq_error *err) {
    *out = NULL;
    sq_json_value *root = calloc(1, sizeof(sq_json_value));
    if (root == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a JSON value");
    }
    parser p = {text, length, 0, err};
    sq_status status = parse_value(&p, 0, root);
    if (status == SQ_OK) {
        skip_whitespace(&p);
        if (p.position != p.length) {
            status = fail(&p, "expected the end of the text after the top-level value");
        }
    }
    if (status != SQ_OK) {
        sq_json_free(root);
        return status;
    }
    *out = root;
    return SQ_OK;
}

void sq_json_free(sq_json_value *value) {
    if (value != NULL) {
        free_contents(value);
        free(value);
    }
}

const sq_json_value *sq_json_get(const sq_json_value *object, const char *key) {
    if (object == NULL || object->type != SQ_JSON_OBJECT) {
        return NULL;
    }
    size_t key_length = strlen(key);
    for (size_t i = 0; i < object->length; i++) {
        const sq_json_member *member = &object->members[i];
        if (member->key_length == key_length && memcmp(member->key, key, key_length) == 0) {
            return &member->value;
        }
    }
    return NULL;
}

const char *sq_json_type_name(sq_json_type type) {
    switch (type) {
    case SQ_JSON_NULL: return "null";
    case SQ_JSON_BOOL: return "boolean";
    case SQ_JSON_NUMBER: return "number";
    case SQ_JSON_STRING: return "string";
    case SQ_JSON_ARRAY: return "array";
    case SQ_JSON_OBJECT: return "object";
    }
    return "unknown";
}
