/* Writing and parsing of the metadata JSON. */
#include "spq/spq_metadata.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"
#include "spq/spq_format.h"

#define SQ_SPQ_FORMAT_NAME "spinquant-spq"

/* ---- writing ---- */

typedef struct text_buffer {
    char *data;
    size_t length;
    size_t capacity;
    int failed; /* an allocation failed; later appends do nothing */
} text_buffer;

static void append(text_buffer *b, const char *s, size_t n) {
    if (b->failed) {
        return;
    }
    if (b->length + n + 1 > b->capacity) {
        size_t capacity = b->capacity > 0 ? b->capacity : 4096;
        while (b->length + n + 1 > capacity) {
            capacity *= 2;
        }
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, s, n);
    b->length += n;
    b->data[b->length] = '\0';
}

static void appendf(text_buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void appendf(text_buffer *b, const char *fmt, ...) {
    char small[256];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, args);
    va_end(args);
    if (n >= 0 && (size_t)n < sizeof(small)) {
        append(b, small, (size_t)n);
        return;
    }
    char *large = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (large == NULL) {
        b->failed = 1;
        return;
    }
    va_start(args, fmt);
    vsnprintf(large, (size_t)n + 1, fmt, args);
    va_end(args);
    append(b, large, (size_t)n);
    free(large);
}

/* Appends s as a JSON string literal, or null when s is NULL. */
static void append_json_string(text_buffer *b, const char *s) {
    if (s == NULL) {
        append(b, "null", 4);
        return;
    }
    append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            char escaped[2] = {'\\', (char)*p};
            append(b, escaped, 2);
        } else if (*p < 0x20) {
            appendf(b, "\\u%04x", *p);
        } else {
            append(b, (const char *)p, 1);
        }
    }
    append(b, "\"", 1);
}

sq_status sq_spq_metadata_write(const sq_spq_model *m, const sq_spq_layout *layout, char **json, size_t *length,
                                sq_error *err) {
    const sq_config *c = &m->config;
    const sq_spq_settings *s = &m->settings;
    text_buffer b = {0};
    appendf(&b, "{\n  \"format\": \"%s\",\n  \"format_version\": %u,\n", SQ_SPQ_FORMAT_NAME, SQ_SPQ_VERSION);
    append(&b, "  \"source\": {\"name\": ", 21);
    append_json_string(&b, m->name);
    append(&b, ", \"format\": ", 12);
    append_json_string(&b, m->source_format);
    appendf(&b, ", \"parameters\": %" PRIu64 ", \"weights_fnv1a64\": \"%016" PRIx64 "\"},\n", m->source_parameters,
            m->source_hash);
    appendf(&b,
            "  \"config\": {\"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, "
            "\"head_dim\": %d, \"vocab_size\": %d, \"context_length\": %d, \"rope_theta\": %.9g, \"norm_eps\": %.9g},\n",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
            c->context_length, (double)c->rope_theta, (double)c->norm_eps);
    appendf(&b,
            "  \"quantization\": {\"w_bits\": %d, \"w_group\": %d, \"w_clip\": %s, \"gptq\": %s, \"a_bits\": %d, "
            "\"a_symmetric\": %s, \"a_clip\": %.9g, \"kv_bits\": %d, \"kv_clip\": %.9g, \"embed_bits\": %d},\n",
            s->w_bits, s->w_group, s->w_clip ? "true" : "false", s->gptq ? "true" : "false", s->a_bits,
            s->a_symmetric ? "true" : "false", (double)s->a_clip, s->kv_bits, (double)s->kv_clip, s->embed_bits);
    append(&b, "  \"rotation\": {\"kind\": ", 23);
    append_json_string(&b, s->rotation);
    appendf(&b, ", \"mode\": \"%s\", \"online_seed\": \"%" PRIu64 "\"},\n", s->mode_had ? "had" : "nohad",
            s->online_seed);
    appendf(&b, "  \"classifier\": \"%s\",\n  \"norms_fused\": %s,\n",
            m->classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM ? "tied_transform" : "separate",
            m->norms_fused ? "true" : "false");
    append(&b, "  \"chat_template\": ", 19);
    append_json_string(&b, m->chat_template);
    appendf(&b, ",\n  \"tensor_bytes\": %" PRIu64 ",\n  \"tensors\": [\n", layout->tensor_bytes);
    for (int32_t i = 0; i < layout->n_tensors; i++) {
        const sq_spq_tensor_info *t = &layout->tensors[i];
        appendf(&b,
                "    {\"name\": \"%s\", \"section\": %d, \"offset\": %" PRIu64 ", \"size\": %" PRIu64
                ", \"dtype\": \"%s\", \"shape\": [%" PRId64 ", %" PRId64 "], \"row_stride\": %" PRIu64 "}%s\n",
                t->name, t->section, t->offset, t->size, sq_spq_dtype_name(t->dtype), t->rows, t->cols, t->row_stride,
                i + 1 < layout->n_tensors ? "," : "");
    }
    append(&b, "  ]\n}\n", 6);
    if (b.failed) {
        free(b.data);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the metadata JSON");
    }
    *json = b.data;
    *length = b.length;
    return SQ_OK;
}

/* ---- parsing ---- */

static const sq_json_value *member(const sq_json_value *object, const char *key, sq_json_type type, sq_error *err) {
    const sq_json_value *value = sq_json_get(object, key);
    if (value == NULL || value->type != type) {
        sq_error_set(err, SQ_ERR_FORMAT, "metadata: member \"%s\" is %s, expected a %s", key,
                     value == NULL ? "missing" : sq_json_type_name(value->type), sq_json_type_name(type));
        return NULL;
    }
    return value;
}

static sq_status get_int(const sq_json_value *object, const char *key, int64_t min, int64_t max, int64_t *out,
                         sq_error *err) {
    const sq_json_value *value = member(object, key, SQ_JSON_NUMBER, err);
    if (value == NULL) {
        return SQ_ERR_FORMAT;
    }
    if (!value->is_integer || value->integer < min || value->integer > max) {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: \"%s\" = %g, expected an integer from %lld to %lld", key,
                            value->number, (long long)min, (long long)max);
    }
    *out = value->integer;
    return SQ_OK;
}

static sq_status get_i32(const sq_json_value *object, const char *key, int64_t min, int64_t max, int32_t *out,
                         sq_error *err) {
    int64_t value = 0;
    sq_status status = get_int(object, key, min, max, &value, err);
    *out = (int32_t)value;
    return status;
}

static sq_status get_flag(const sq_json_value *object, const char *key, int *out, sq_error *err) {
    const sq_json_value *value = member(object, key, SQ_JSON_BOOL, err);
    if (value == NULL) {
        return SQ_ERR_FORMAT;
    }
    *out = value->boolean;
    return SQ_OK;
}

static sq_status get_float(const sq_json_value *object, const char *key, float *out, sq_error *err) {
    const sq_json_value *value = member(object, key, SQ_JSON_NUMBER, err);
    if (value == NULL) {
        return SQ_ERR_FORMAT;
    }
    *out = (float)value->number;
    return SQ_OK;
}

/* Copies an optional string member (null or absent gives NULL). */
static sq_status get_optional_string(const sq_json_value *object, const char *key, char **out, sq_error *err) {
    *out = NULL;
    const sq_json_value *value = sq_json_get(object, key);
    if (value == NULL || value->type == SQ_JSON_NULL) {
        return SQ_OK;
    }
    if (value->type != SQ_JSON_STRING) {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: \"%s\" is %s, expected a string or null", key,
                            sq_json_type_name(value->type));
    }
    *out = malloc(value->length + 1);
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot copy the metadata string \"%s\"", key);
    }
    memcpy(*out, value->string, value->length + 1);
    return SQ_OK;
}

static sq_status parse_u64_text(const sq_json_value *object, const char *key, int base, uint64_t *out,
                                sq_error *err) {
    const sq_json_value *value = member(object, key, SQ_JSON_STRING, err);
    if (value == NULL) {
        return SQ_ERR_FORMAT;
    }
    char *end = NULL;
    unsigned long long parsed = strtoull(value->string, &end, base);
    if (value->length == 0 || end != value->string + value->length || value->string[0] == '-') {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: \"%s\" = \"%s\" is not an unsigned %s number", key,
                            value->string, base == 16 ? "hexadecimal" : "decimal");
    }
    *out = (uint64_t)parsed;
    return SQ_OK;
}

static sq_status parse_config(const sq_json_value *root, sq_config *c, sq_error *err) {
    const sq_json_value *o = member(root, "config", SQ_JSON_OBJECT, err);
    if (o == NULL) {
        return SQ_ERR_FORMAT;
    }
    sq_status status;
    if ((status = get_i32(o, "dim", 1, INT32_MAX, &c->dim, err)) ||
        (status = get_i32(o, "hidden_dim", 1, INT32_MAX, &c->hidden_dim, err)) ||
        (status = get_i32(o, "n_layers", 1, 4096, &c->n_layers, err)) ||
        (status = get_i32(o, "n_heads", 1, 4096, &c->n_heads, err)) ||
        (status = get_i32(o, "n_kv_heads", 1, 4096, &c->n_kv_heads, err)) ||
        (status = get_i32(o, "head_dim", 1, INT32_MAX, &c->head_dim, err)) ||
        (status = get_i32(o, "vocab_size", 1, INT32_MAX, &c->vocab_size, err)) ||
        (status = get_i32(o, "context_length", 1, INT32_MAX, &c->context_length, err)) ||
        (status = get_float(o, "rope_theta", &c->rope_theta, err)) ||
        (status = get_float(o, "norm_eps", &c->norm_eps, err))) {
        return status;
    }
    return sq_config_validate(c, err);
}

static sq_status parse_settings(const sq_json_value *root, sq_spq_settings *s, sq_error *err) {
    const sq_json_value *q = member(root, "quantization", SQ_JSON_OBJECT, err);
    const sq_json_value *r = q != NULL ? member(root, "rotation", SQ_JSON_OBJECT, err) : NULL;
    if (r == NULL) {
        return SQ_ERR_FORMAT;
    }
    int64_t value;
    sq_status status;
    if ((status = get_int(q, "w_bits", 1, 64, &value, err)) != SQ_OK) {
        return status;
    }
    s->w_bits = (int)value;
    if ((status = get_int(q, "w_group", 0, INT32_MAX, &value, err)) != SQ_OK) {
        return status;
    }
    s->w_group = (int)value;
    if ((status = get_int(q, "a_bits", 1, 64, &value, err)) != SQ_OK) {
        return status;
    }
    s->a_bits = (int)value;
    if ((status = get_int(q, "kv_bits", 1, 64, &value, err)) != SQ_OK) {
        return status;
    }
    s->kv_bits = (int)value;
    if ((status = get_int(q, "embed_bits", 1, 64, &value, err)) != SQ_OK) {
        return status;
    }
    s->embed_bits = (int)value;
    if ((status = get_flag(q, "w_clip", &s->w_clip, err)) || (status = get_flag(q, "gptq", &s->gptq, err)) ||
        (status = get_flag(q, "a_symmetric", &s->a_symmetric, err)) ||
        (status = get_float(q, "a_clip", &s->a_clip, err)) || (status = get_float(q, "kv_clip", &s->kv_clip, err))) {
        return status;
    }

    const sq_json_value *kind = member(r, "kind", SQ_JSON_STRING, err);
    const sq_json_value *mode = kind != NULL ? member(r, "mode", SQ_JSON_STRING, err) : NULL;
    if (mode == NULL) {
        return SQ_ERR_FORMAT;
    }
    if (kind->length >= sizeof(s->rotation)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: rotation kind \"%s\" is too long", kind->string);
    }
    memcpy(s->rotation, kind->string, kind->length + 1);
    if (strcmp(mode->string, "had") != 0 && strcmp(mode->string, "nohad") != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: rotation mode \"%s\", expected \"had\" or \"nohad\"",
                            mode->string);
    }
    s->mode_had = strcmp(mode->string, "had") == 0;
    return parse_u64_text(r, "online_seed", 10, &s->online_seed, err);
}

/* Checks one entry of the file's tensor table against the expected layout entry. */
static sq_status check_tensor_entry(const sq_json_value *entry, const sq_spq_tensor_info *expected, int32_t index,
                                    sq_error *err) {
    const sq_json_value *name = entry->type == SQ_JSON_OBJECT ? sq_json_get(entry, "name") : NULL;
    const sq_json_value *dtype = entry->type == SQ_JSON_OBJECT ? sq_json_get(entry, "dtype") : NULL;
    const sq_json_value *shape = entry->type == SQ_JSON_OBJECT ? sq_json_get(entry, "shape") : NULL;
    int64_t section, offset, size, row_stride;
    int ok = name != NULL && name->type == SQ_JSON_STRING && strcmp(name->string, expected->name) == 0 &&
             dtype != NULL && dtype->type == SQ_JSON_STRING && sq_spq_dtype_from_name(dtype->string) == (int)expected->dtype &&
             shape != NULL && shape->type == SQ_JSON_ARRAY && shape->length == 2 && shape->items[0].is_integer &&
             shape->items[1].is_integer && shape->items[0].integer == expected->rows &&
             shape->items[1].integer == expected->cols;
    ok = ok && get_int(entry, "section", 0, INT32_MAX, &section, NULL) == SQ_OK && section == expected->section &&
         get_int(entry, "offset", 0, INT64_MAX, &offset, NULL) == SQ_OK && (uint64_t)offset == expected->offset &&
         get_int(entry, "size", 0, INT64_MAX, &size, NULL) == SQ_OK && (uint64_t)size == expected->size &&
         get_int(entry, "row_stride", 0, INT64_MAX, &row_stride, NULL) == SQ_OK &&
         (uint64_t)row_stride == expected->row_stride;
    if (!ok) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "metadata: tensor table entry %d does not match the layout of this configuration; expected "
                            "\"%s\" (%s, %lld x %lld) in section %d at offset %llu, %llu bytes",
                            index, expected->name, sq_spq_dtype_name(expected->dtype), (long long)expected->rows,
                            (long long)expected->cols, expected->section, (unsigned long long)expected->offset,
                            (unsigned long long)expected->size);
    }
    return SQ_OK;
}

static sq_status parse_document(const sq_json_value *root, sq_spq_model *m, sq_spq_layout *layout, sq_error *err) {
    const sq_json_value *format = member(root, "format", SQ_JSON_STRING, err);
    if (format == NULL) {
        return SQ_ERR_FORMAT;
    }
    if (strcmp(format->string, SQ_SPQ_FORMAT_NAME) != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: format \"%s\", expected \"%s\"", format->string,
                            SQ_SPQ_FORMAT_NAME);
    }
    int64_t version;
    sq_status status = get_int(root, "format_version", 0, UINT32_MAX, &version, err);
    if (status == SQ_OK && version != SQ_SPQ_VERSION) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "metadata: format_version %lld, expected %u", (long long)version,
                            SQ_SPQ_VERSION);
    }
    if (status == SQ_OK) {
        status = parse_config(root, &m->config, err);
    }
    if (status == SQ_OK) {
        status = parse_settings(root, &m->settings, err);
    }
    if (status == SQ_OK) {
        status = sq_spq_settings_validate(&m->settings, &m->config, err);
    }
    if (status != SQ_OK) {
        return status;
    }

    const sq_json_value *source = member(root, "source", SQ_JSON_OBJECT, err);
    const sq_json_value *classifier = source != NULL ? member(root, "classifier", SQ_JSON_STRING, err) : NULL;
    if (classifier == NULL) {
        return SQ_ERR_FORMAT;
    }
    int64_t parameters;
    if ((status = get_optional_string(source, "name", &m->name, err)) ||
        (status = get_optional_string(source, "format", &m->source_format, err)) ||
        (status = get_int(source, "parameters", 0, INT64_MAX, &parameters, err)) ||
        (status = parse_u64_text(source, "weights_fnv1a64", 16, &m->source_hash, err)) ||
        (status = get_optional_string(root, "chat_template", &m->chat_template, err)) ||
        (status = get_flag(root, "norms_fused", &m->norms_fused, err))) {
        return status;
    }
    m->source_parameters = (uint64_t)parameters;
    if (strcmp(classifier->string, "tied_transform") == 0) {
        m->classifier_kind = SQ_SPQ_CLASSIFIER_TIED_TRANSFORM;
    } else if (strcmp(classifier->string, "separate") == 0) {
        m->classifier_kind = SQ_SPQ_CLASSIFIER_SEPARATE;
    } else {
        return sq_error_set(err, SQ_ERR_FORMAT, "metadata: classifier \"%s\", expected \"separate\" or \"tied_transform\"",
                            classifier->string);
    }

    status = sq_spq_layout_build(&m->config, &m->settings, m->classifier_kind, layout, err);
    if (status != SQ_OK) {
        return status;
    }
    int64_t tensor_bytes;
    const sq_json_value *tensors = member(root, "tensors", SQ_JSON_ARRAY, err);
    if (tensors == NULL || get_int(root, "tensor_bytes", 0, INT64_MAX, &tensor_bytes, err) != SQ_OK) {
        return SQ_ERR_FORMAT;
    }
    if ((uint64_t)tensor_bytes != layout->tensor_bytes || tensors->length != (size_t)layout->n_tensors) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "metadata: %zu tensors of %lld bytes, but this configuration has %d tensors of %llu bytes",
                            tensors->length, (long long)tensor_bytes, layout->n_tensors,
                            (unsigned long long)layout->tensor_bytes);
    }
    for (int32_t i = 0; i < layout->n_tensors; i++) {
        if ((status = check_tensor_entry(&tensors->items[i], &layout->tensors[i], i, err)) != SQ_OK) {
            return status;
        }
    }
    return SQ_OK;
}

sq_status sq_spq_metadata_parse(const char *json, size_t length, sq_spq_model *m, sq_spq_layout *layout,
                                sq_error *err) {
    memset(layout, 0, sizeof(*layout));
    sq_json_value *root = NULL;
    sq_status status = sq_json_parse(json, length, &root, err);
    if (status == SQ_OK && root->type != SQ_JSON_OBJECT) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "metadata: the document is %s, expected an object",
                              sq_json_type_name(root->type));
    }
    if (status == SQ_OK) {
        status = parse_document(root, m, layout, err);
    }
    sq_json_free(root);
    if (status != SQ_OK) {
        sq_spq_layout_free(layout);
        if (status != SQ_ERR_NOMEM && status != SQ_ERR_UNSUPPORTED) {
            status = SQ_ERR_FORMAT;
        }
    }
    return status;
}
