/* libFuzzer harness: the JSON parser (sq_json_parse) on arbitrary bytes, with a walk over the
 * parsed tree that checks its documented invariants. */
#include "formats/json.h"
#include "fuzz_common.h"

static void check_value(const sq_json_value *value, int depth) {
    if (depth > SQ_JSON_MAX_DEPTH + 1) {
        fuzz_fail("the tree is nested deeper than SQ_JSON_MAX_DEPTH", "");
    }
    switch (value->type) {
    case SQ_JSON_STRING:
        if (value->string == NULL || value->string[value->length] != '\0') {
            fuzz_fail("a string is not NUL-terminated at its length", "");
        }
        if (!fuzz_utf8_valid((const uint8_t *)value->string, value->length)) {
            fuzz_fail("a decoded string is not valid UTF-8", value->string);
        }
        break;
    case SQ_JSON_ARRAY:
        for (size_t i = 0; i < value->length; i++) {
            check_value(&value->items[i], depth + 1);
        }
        break;
    case SQ_JSON_OBJECT:
        for (size_t i = 0; i < value->length; i++) {
            const sq_json_member *member = &value->members[i];
            if (member->key[member->key_length] != '\0') {
                fuzz_fail("a key is not NUL-terminated at its length", "");
            }
            /* sq_json_get matches NUL-terminated keys, so it finds this member unless the key
             * contains a NUL (from \u0000). */
            if (memchr(member->key, '\0', member->key_length) == NULL && sq_json_get(value, member->key) != &member->value) {
                fuzz_fail("sq_json_get does not find a member", member->key);
            }
            check_value(&member->value, depth + 1);
        }
        break;
    case SQ_JSON_NUMBER:
        /* Integers up to 2^53 in magnitude have an exact double. */
        if (value->is_integer && value->integer <= (1LL << 53) && value->integer >= -(1LL << 53) &&
            (double)value->integer != value->number) {
            fuzz_fail("an integer and its double disagree", "");
        }
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_json_value *root = NULL;
    sq_error err;
    sq_status status = sq_json_parse((const char *)data, size, &root, &err);
    fuzz_check_failure(status, &err);
    if (status == SQ_OK) {
        if (!fuzz_utf8_valid(data, size)) {
            fuzz_fail("the parser accepted invalid UTF-8", "");
        }
        check_value(root, 0);
        sq_json_free(root);
    }
    return 0;
}
