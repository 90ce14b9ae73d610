/* Tests of the GGUF reader and the GGUF and llama2.c model loaders:
 *   - a hand-assembled GGUF with every metadata type, nested arrays and a custom alignment;
 *   - re-serializing stories260K.gguf from the parsed metadata reproduces the file byte for byte;
 *   - stories260K.bin and stories260K.gguf (an F32 conversion by a third party) load to
 *     bit-identical weights;
 *   - SmolLM2 Q4_1/Q8_0 values match tests/reference/smollm2-gguf-values.json, written by the
 *     gguf Python package's own decoder (the command is recorded in the file);
 *   - edited copies of stories260K.gguf are rejected with the right status. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io.h"
#include "formats/formats.h"
#include "formats/gguf_reader.h"
#include "formats/json.h"
#include "test_util.h"

#define STORIES_BIN "models/stories260K/stories260K.bin"
#define STORIES_GGUF "models/stories260K/stories260K.gguf"
#define STORIES_TOKENIZER "models/stories260K/tok512.bin"
#define SMOLLM2_GGUF "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
#define SMOLLM2_VALUES "tests/reference/smollm2-gguf-values.json"

static char temp_dir[64];

/* ---- A growable byte buffer and GGUF encoders, written from the GGUF specification. ---- */

typedef struct buffer {
    uint8_t *data;
    size_t size;
    size_t capacity;
} buffer;

static void put_bytes(buffer *b, const void *bytes, size_t n) {
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2 + 64;
        b->data = realloc(b->data, b->capacity);
        if (b->data == NULL) {
            abort();
        }
    }
    memcpy(b->data + b->size, bytes, n);
    b->size += n;
}

static void put_u8(buffer *b, uint8_t v) {
    put_bytes(b, &v, 1);
}

static void put_u16(buffer *b, uint16_t v) {
    uint8_t bytes[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put_bytes(b, bytes, 2);
}

static void put_u32(buffer *b, uint32_t v) {
    uint8_t bytes[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(b, bytes, 4);
}

static void put_u64(buffer *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_f32(buffer *b, float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    put_u32(b, bits);
}

static void put_f64(buffer *b, double f) {
    uint64_t bits;
    memcpy(&bits, &f, 8);
    put_u64(b, bits);
}

static void put_string(buffer *b, const char *s, size_t n) {
    put_u64(b, n);
    put_bytes(b, s, n);
}

static void put_cstring(buffer *b, const char *s) {
    put_string(b, s, strlen(s));
}

static void put_key(buffer *b, const char *key, uint32_t type) {
    put_cstring(b, key);
    put_u32(b, type);
}

static void pad_to(buffer *b, size_t alignment) {
    while (b->size % alignment != 0) {
        put_u8(b, 0);
    }
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return 0;
    }
    size_t written = fwrite(data, 1, size, f);
    return fclose(f) == 0 && written == size;
}

static void temp_path(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", temp_dir, name);
}

/* ---- Hand-assembled GGUF with every metadata type ---- */

static void build_all_types_gguf(buffer *b, uint32_t version) {
    put_bytes(b, "GGUF", 4);
    put_u32(b, version);
    put_u64(b, 2);  /* tensors */
    put_u64(b, 20); /* metadata keys */

    put_key(b, "t.u8", 0);
    put_u8(b, 200);
    put_key(b, "t.i8", 1);
    put_u8(b, (uint8_t)(int8_t)-100);
    put_key(b, "t.u16", 2);
    put_u16(b, 60000);
    put_key(b, "t.i16", 3);
    put_u16(b, (uint16_t)(int16_t)-30000);
    put_key(b, "t.u32", 4);
    put_u32(b, 4000000000u);
    put_key(b, "t.i32", 5);
    put_u32(b, (uint32_t)(int32_t)-2000000000);
    put_key(b, "t.f32", 6);
    put_f32(b, 1.5f);
    put_key(b, "t.bool", 7);
    put_u8(b, 1);
    put_key(b, "t.string", 8);
    put_string(b, "a\0b", 3);
    put_key(b, "t.u64", 10);
    put_u64(b, 0xfedcba9876543210ull);
    put_key(b, "t.i64", 11);
    put_u64(b, (uint64_t)(int64_t)-5);
    put_key(b, "t.f64", 12);
    put_f64(b, -0.125);
    put_key(b, "general.alignment", 4);
    put_u32(b, 64);

    put_key(b, "a.i16", 9);
    put_u32(b, 3);
    put_u64(b, 3);
    put_u16(b, 1);
    put_u16(b, (uint16_t)(int16_t)-2);
    put_u16(b, 3);
    put_key(b, "a.f32", 9);
    put_u32(b, 6);
    put_u64(b, 2);
    put_f32(b, 0.25f);
    put_f32(b, -8.0f);
    put_key(b, "a.bool", 9);
    put_u32(b, 7);
    put_u64(b, 2);
    put_u8(b, 0);
    put_u8(b, 1);
    put_key(b, "a.string", 9);
    put_u32(b, 8);
    put_u64(b, 2);
    put_cstring(b, "hello");
    put_cstring(b, "");
    put_key(b, "a.u64", 9);
    put_u32(b, 10);
    put_u64(b, 1);
    put_u64(b, 1ull << 40);
    put_key(b, "a.empty", 9);
    put_u32(b, 4);
    put_u64(b, 0);
    put_key(b, "a.nested", 9); /* [[1, 2], [3]] as arrays of uint8 */
    put_u32(b, 9);
    put_u64(b, 2);
    put_u32(b, 0);
    put_u64(b, 2);
    put_u8(b, 1);
    put_u8(b, 2);
    put_u32(b, 0);
    put_u64(b, 1);
    put_u8(b, 3);

    /* Tensor infos: an F32 (2, 4) matrix at 0 and a Q8_0 vector of 32 at 64. */
    put_cstring(b, "w.f32");
    put_u32(b, 2);
    put_u64(b, 4);
    put_u64(b, 2);
    put_u32(b, 0);
    put_u64(b, 0);
    put_cstring(b, "w.q8");
    put_u32(b, 1);
    put_u64(b, 32);
    put_u32(b, 8);
    put_u64(b, 64);
    pad_to(b, 64);

    for (int i = 0; i < 8; i++) {
        put_f32(b, (float)i - 3.5f);
    }
    pad_to(b, 64);
    put_u16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 32; j++) {
        put_u8(b, (uint8_t)(int8_t)(j - 10));
    }
}

static void test_reader_all_types(void) {
    buffer b = {0};
    build_all_types_gguf(&b, 3);
    char path[128];
    temp_path(path, sizeof(path), "all_types.gguf");
    CHECK(write_file(path, b.data, b.size));

    sq_gguf_file *f = NULL;
    sq_error err;
    sq_error_clear(&err);
    sq_status status = sq_gguf_open(path, &f, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status != SQ_OK) {
        free(b.data);
        return;
    }
    CHECK(f->version == 3);
    CHECK(f->n_kv == 20);
    CHECK(f->alignment == 64);
    CHECK(f->data_offset % 64 == 0);

    uint64_t u = 0;
    double d = 0.0;
    int flag = 0;
    const sq_gguf_string *s = NULL;
    const sq_gguf_value *v = NULL;
    CHECK(sq_gguf_get_uint(f, "t.u8", &u, &err) == SQ_OK);
    CHECK(u == 200);
    CHECK(sq_gguf_get_uint(f, "t.u16", &u, &err) == SQ_OK);
    CHECK(u == 60000);
    CHECK(sq_gguf_get_uint(f, "t.u32", &u, &err) == SQ_OK);
    CHECK(u == 4000000000u);
    CHECK(sq_gguf_get_uint(f, "t.u64", &u, &err) == SQ_OK);
    CHECK(u == 0xfedcba9876543210ull);
    CHECK(sq_gguf_get_uint(f, "t.i8", &u, &err) == SQ_ERR_FORMAT); /* negative */
    v = sq_gguf_find_key(f, "t.i8");
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(v->type == SQ_GGUF_TYPE_INT8);
        CHECK(v->i64 == -100);
    }
    v = sq_gguf_find_key(f, "t.i16");
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(v->i64 == -30000);
    }
    v = sq_gguf_find_key(f, "t.i32");
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(v->i64 == -2000000000);
    }
    v = sq_gguf_find_key(f, "t.i64");
    CHECK(v != NULL);
    if (v != NULL) {
        CHECK(v->i64 == -5);
    }
    CHECK(sq_gguf_get_float(f, "t.f32", &d, &err) == SQ_OK);
    CHECK(d == 1.5);
    CHECK(sq_gguf_get_float(f, "t.f64", &d, &err) == SQ_OK);
    CHECK(d == -0.125);
    CHECK(sq_gguf_get_bool(f, "t.bool", &flag, &err) == SQ_OK);
    CHECK(flag == 1);
    status = sq_gguf_get_string(f, "t.string", &s, &err);
    CHECK(status == SQ_OK);
    if (status == SQ_OK) {
        CHECK(s->length == 3);
        CHECK(memcmp(s->data, "a\0b", 3) == 0);
    }
    CHECK(sq_gguf_get_string(f, "t.u8", &s, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "t.u8") != NULL);
    CHECK(sq_gguf_get_uint(f, "missing.key", &u, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "missing.key") != NULL);

    status = sq_gguf_get_array(f, "a.i16", SQ_GGUF_TYPE_INT16, &v, &err);
    CHECK(status == SQ_OK);
    if (status == SQ_OK) {
        CHECK(v->array.count == 3);
    }
    if (v != NULL && v->array.count == 3) {
        const int16_t *items = v->array.elements;
        CHECK(items[0] == 1);
        CHECK(items[1] == -2);
        CHECK(items[2] == 3);
    }
    CHECK(sq_gguf_get_array(f, "a.i16", SQ_GGUF_TYPE_INT32, &v, &err) == SQ_ERR_FORMAT);
    CHECK(sq_gguf_get_array(f, "a.f32", SQ_GGUF_TYPE_FLOAT32, &v, &err) == SQ_OK &&
          ((const float *)v->array.elements)[1] == -8.0f);
    CHECK(sq_gguf_get_array(f, "a.bool", SQ_GGUF_TYPE_BOOL, &v, &err) == SQ_OK &&
          ((const uint8_t *)v->array.elements)[1] == 1);
    status = sq_gguf_get_array(f, "a.string", SQ_GGUF_TYPE_STRING, &v, &err);
    CHECK(status == SQ_OK);
    if (status == SQ_OK) {
        CHECK(v->array.count == 2);
    }
    if (v != NULL && v->array.count == 2) {
        const sq_gguf_string *items = v->array.elements;
        CHECK(strcmp(items[0].data, "hello") == 0);
        CHECK(items[1].length == 0);
    }
    CHECK(sq_gguf_get_array(f, "a.u64", SQ_GGUF_TYPE_UINT64, &v, &err) == SQ_OK &&
          ((const uint64_t *)v->array.elements)[0] == (1ull << 40));
    status = sq_gguf_get_array(f, "a.empty", SQ_GGUF_TYPE_UINT32, &v, &err);
    CHECK(status == SQ_OK);
    if (status == SQ_OK) {
        CHECK(v->array.count == 0);
    }
    status = sq_gguf_get_array(f, "a.nested", SQ_GGUF_TYPE_ARRAY, &v, &err);
    CHECK(status == SQ_OK);
    if (status == SQ_OK) {
        CHECK(v->array.count == 2);
    }
    if (v != NULL && v->array.count == 2) {
        const sq_gguf_value *inner = v->array.elements;
        CHECK(inner[0].array.count == 2);
        CHECK(((const uint8_t *)inner[0].array.elements)[1] == 2);
        CHECK(inner[1].array.count == 1);
        CHECK(((const uint8_t *)inner[1].array.elements)[0] == 3);
    }

    const sq_gguf_tensor *t = sq_gguf_find_tensor(f, "w.f32");
    float values[32] = {0};
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK(t->n_dims == 2);
        CHECK(t->ne[0] == 4);
        CHECK(t->ne[1] == 2);
        CHECK(t->n_bytes == 32);
        CHECK(sq_gguf_read_tensor_f32(f, t, values, 8, &err) == SQ_OK);
    }
    CHECK(values[0] == -3.5f);
    CHECK(values[7] == 3.5f);
    t = sq_gguf_find_tensor(f, "w.q8");
    CHECK(t != NULL);
    if (t != NULL) {
        CHECK(t->type == 8);
        CHECK(t->n_bytes == 34);
        CHECK(t->offset == 64);
        CHECK(sq_gguf_read_tensor_f32(f, t, values, 32, &err) == SQ_OK);
    }
    CHECK(values[0] == -5.0f);
    CHECK(values[31] == 10.5f);
    CHECK(sq_gguf_find_tensor(f, "w.missing") == NULL);
    sq_gguf_close(f);

    /* Version 2 has the same layout. */
    free(b.data);
    memset(&b, 0, sizeof(b));
    build_all_types_gguf(&b, 2);
    CHECK(write_file(path, b.data, b.size));
    CHECK(sq_gguf_open(path, &f, &err) == SQ_OK);
    sq_gguf_close(f);
    free(b.data);
    remove(path);
}

/* Writes bytes to a temporary file and returns sq_gguf_open's status and message. */
static sq_status open_bytes(const uint8_t *bytes, size_t size, sq_error *err) {
    char path[128];
    temp_path(path, sizeof(path), "case.gguf");
    if (!write_file(path, bytes, size)) {
        return SQ_ERR_IO;
    }
    sq_gguf_file *f = NULL;
    sq_error_clear(err);
    sq_status status = sq_gguf_open(path, &f, err);
    sq_gguf_close(f);
    remove(path);
    return status;
}

static void test_reader_rejects_headers(void) {
    buffer b = {0};
    build_all_types_gguf(&b, 3);
    uint8_t *copy = malloc(b.size);
    sq_error err;

    memcpy(copy, b.data, b.size);
    copy[0] = 'X';
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "GGUF") != NULL);

    memcpy(copy, b.data, b.size);
    copy[4] = 1; /* version 1 used 32-bit counts */
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "version 1") != NULL);

    memcpy(copy, b.data, b.size);
    copy[4] = 0;
    copy[7] = 3; /* big-endian version 3 */
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "big-endian") != NULL);

    memcpy(copy, b.data, b.size);
    copy[8 + 7] = 0x10; /* tensor count around 2^60 */
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_FORMAT);

    memcpy(copy, b.data, b.size);
    copy[16] = 0xff; /* metadata key count 255 */
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_FORMAT);

    /* The first key's length becomes 2^40. */
    memcpy(copy, b.data, b.size);
    copy[24 + 5] = 1;
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "remain") != NULL);

    /* The first key is renamed to the second one: a duplicate. */
    memcpy(copy, b.data, b.size);
    memcpy(copy + 24 + 8, "t.i8", 4);
    CHECK(open_bytes(copy, b.size, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "duplicate") != NULL);

    CHECK(open_bytes(copy, 0, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "empty") != NULL);

    free(copy);
    free(b.data);
}

/* ---- Re-serializing a parsed file ---- */

static void put_value(buffer *b, uint32_t type, const sq_gguf_value *v);

static void put_scalar_element(buffer *b, uint32_t type, const void *elements, uint64_t i) {
    switch (type) {
    case SQ_GGUF_TYPE_UINT8:
    case SQ_GGUF_TYPE_BOOL: put_u8(b, ((const uint8_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_INT8: put_u8(b, (uint8_t)((const int8_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_UINT16: put_u16(b, ((const uint16_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_INT16: put_u16(b, (uint16_t)((const int16_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_UINT32: put_u32(b, ((const uint32_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_INT32: put_u32(b, (uint32_t)((const int32_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_FLOAT32: put_f32(b, ((const float *)elements)[i]); break;
    case SQ_GGUF_TYPE_UINT64: put_u64(b, ((const uint64_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_INT64: put_u64(b, (uint64_t)((const int64_t *)elements)[i]); break;
    case SQ_GGUF_TYPE_FLOAT64: put_f64(b, ((const double *)elements)[i]); break;
    default: abort();
    }
}

static void put_value(buffer *b, uint32_t type, const sq_gguf_value *v) {
    switch (type) {
    case SQ_GGUF_TYPE_UINT8:
    case SQ_GGUF_TYPE_BOOL: put_u8(b, type == SQ_GGUF_TYPE_BOOL ? (uint8_t)v->boolean : (uint8_t)v->u64); break;
    case SQ_GGUF_TYPE_INT8: put_u8(b, (uint8_t)v->i64); break;
    case SQ_GGUF_TYPE_UINT16: put_u16(b, (uint16_t)v->u64); break;
    case SQ_GGUF_TYPE_INT16: put_u16(b, (uint16_t)v->i64); break;
    case SQ_GGUF_TYPE_UINT32: put_u32(b, (uint32_t)v->u64); break;
    case SQ_GGUF_TYPE_INT32: put_u32(b, (uint32_t)v->i64); break;
    case SQ_GGUF_TYPE_FLOAT32: put_f32(b, (float)v->f64); break;
    case SQ_GGUF_TYPE_UINT64: put_u64(b, v->u64); break;
    case SQ_GGUF_TYPE_INT64: put_u64(b, (uint64_t)v->i64); break;
    case SQ_GGUF_TYPE_FLOAT64: put_f64(b, v->f64); break;
    case SQ_GGUF_TYPE_STRING: put_string(b, v->string.data, (size_t)v->string.length); break;
    case SQ_GGUF_TYPE_ARRAY:
        put_u32(b, v->array.element_type);
        put_u64(b, v->array.count);
        for (uint64_t i = 0; i < v->array.count; i++) {
            if (v->array.element_type == SQ_GGUF_TYPE_STRING) {
                const sq_gguf_string *s = &((const sq_gguf_string *)v->array.elements)[i];
                put_string(b, s->data, (size_t)s->length);
            } else if (v->array.element_type == SQ_GGUF_TYPE_ARRAY) {
                put_value(b, SQ_GGUF_TYPE_ARRAY, &((const sq_gguf_value *)v->array.elements)[i]);
            } else {
                put_scalar_element(b, v->array.element_type, v->array.elements, i);
            }
        }
        break;
    default: abort();
    }
}

/* An edit applied while re-serializing: drop a key, replace or add one, change tensor infos. */
typedef struct gguf_edit {
    const char *drop_key;
    const char *set_key;
    uint32_t set_type;
    const sq_gguf_value *set_value;
    const char *tensor;   /* tensor whose info changes */
    int64_t tensor_type;  /* new type, or -1 */
    int swap_dims;        /* swap ne[0] and ne[1] */
    const char *rename_to;
} gguf_edit;

/* Rebuilds the file at path from its parsed metadata with edit applied; the tensor data
 * section is copied unchanged. */
static buffer rewrite_gguf(const char *path, const gguf_edit *edit) {
    buffer out = {0};
    sq_gguf_file *f = NULL;
    sq_error err;
    if (sq_gguf_open(path, &f, &err) != SQ_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, err.message);
        return out;
    }
    uint8_t *original;
    size_t original_size;
    if (sq_io_read_file(path, &original, &original_size, &err) != SQ_OK) {
        sq_gguf_close(f);
        return out;
    }

    uint64_t n_kv = 0;
    int set_exists = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const char *key = f->kv[i].key.data;
        if (edit->drop_key == NULL || strcmp(key, edit->drop_key) != 0) {
            n_kv++;
        }
        if (edit->set_key != NULL && strcmp(key, edit->set_key) == 0) {
            set_exists = 1;
        }
    }
    if (edit->set_key != NULL && !set_exists) {
        n_kv++;
    }

    put_bytes(&out, "GGUF", 4);
    put_u32(&out, f->version);
    put_u64(&out, f->n_tensors);
    put_u64(&out, n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const sq_gguf_kv *kv = &f->kv[i];
        if (edit->drop_key != NULL && strcmp(kv->key.data, edit->drop_key) == 0) {
            continue;
        }
        put_string(&out, kv->key.data, (size_t)kv->key.length);
        if (edit->set_key != NULL && strcmp(kv->key.data, edit->set_key) == 0) {
            put_u32(&out, edit->set_type);
            put_value(&out, edit->set_type, edit->set_value);
        } else {
            put_u32(&out, kv->value.type);
            put_value(&out, kv->value.type, &kv->value);
        }
    }
    if (edit->set_key != NULL && !set_exists) {
        put_key(&out, edit->set_key, edit->set_type);
        put_value(&out, edit->set_type, edit->set_value);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const sq_gguf_tensor *t = &f->tensors[i];
        int edited = edit->tensor != NULL && strcmp(t->name.data, edit->tensor) == 0;
        if (edited && edit->rename_to != NULL) {
            put_cstring(&out, edit->rename_to);
        } else {
            put_string(&out, t->name.data, (size_t)t->name.length);
        }
        put_u32(&out, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint32_t source = d;
            if (edited && edit->swap_dims && d < 2) {
                source = 1 - d;
            }
            put_u64(&out, t->ne[source]);
        }
        put_u32(&out, edited && edit->tensor_type >= 0 ? (uint32_t)edit->tensor_type : t->type);
        put_u64(&out, t->offset);
    }
    pad_to(&out, (size_t)f->alignment);
    put_bytes(&out, original + f->data_offset, original_size - (size_t)f->data_offset);
    free(original);
    sq_gguf_close(f);
    return out;
}

static void test_reader_roundtrip_stories(void) {
    gguf_edit none = {NULL, NULL, 0, NULL, NULL, -1, 0, NULL};
    buffer rebuilt = rewrite_gguf(STORIES_GGUF, &none);
    uint8_t *original;
    size_t size;
    sq_error err;
    CHECK(sq_io_read_file(STORIES_GGUF, &original, &size, &err) == SQ_OK);
    CHECK_MSG(rebuilt.size == size, "rebuilt %zu bytes, original %zu", rebuilt.size, size);
    CHECK(rebuilt.size == size);
    if (rebuilt.size == size) {
        CHECK(memcmp(rebuilt.data, original, size) == 0);
    }
    free(original);
    free(rebuilt.data);
}

/* ---- Model loading ---- */

static int same_floats(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_stories_bin_equals_gguf(void) {
    sq_model bin, gguf;
    sq_error err;
    sq_status status = sq_load_llama2c(STORIES_BIN, &bin, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    status = sq_load_gguf(STORIES_GGUF, NULL, &gguf, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (bin.layers == NULL || gguf.layers == NULL) {
        sq_model_free(&bin);
        sq_model_free(&gguf);
        return;
    }

    const sq_config *a = &bin.config;
    const sq_config *b = &gguf.config;
    CHECK(a->dim == 64);
    CHECK(b->dim == 64);
    CHECK(a->hidden_dim == 172);
    CHECK(b->hidden_dim == 172);
    CHECK(a->n_layers == 5);
    CHECK(b->n_layers == 5);
    CHECK(a->n_heads == 8);
    CHECK(b->n_heads == 8);
    CHECK(a->n_kv_heads == 4);
    CHECK(b->n_kv_heads == 4);
    CHECK(a->head_dim == 8);
    CHECK(b->head_dim == 8);
    CHECK(a->vocab_size == 512);
    CHECK(b->vocab_size == 512);
    CHECK(a->rope_theta == 10000.0f);
    CHECK(b->rope_theta == 10000.0f);
    CHECK(a->norm_eps == 1e-5f);
    CHECK(b->norm_eps == 1e-5f);
    /* The two files disagree on the context length: the .bin header says seq_len 512 and the
     * third-party GGUF conversion wrote llama.context_length 2048. */
    CHECK(a->context_length == 512);
    CHECK(b->context_length == 2048);
    CHECK(bin.tied_classifier == 1);
    CHECK(gguf.tied_classifier == 0); /* the GGUF stores output.weight as a copy */
    CHECK(strcmp(bin.format, "llama2c") == 0);
    CHECK(strcmp(gguf.format, "gguf") == 0);
    CHECK(bin.tokenizer == NULL);
    CHECK(gguf.tokenizer != NULL);
    if (gguf.tokenizer != NULL) {
        CHECK(sq_tokenizer_vocab_size(gguf.tokenizer) == 512);
    }

    size_t dim = 64, vocab = 512, q_dim = 64, kv_dim = 32, hidden = 172;
    CHECK(same_floats(bin.token_embedding, gguf.token_embedding, vocab * dim));
    CHECK(same_floats(bin.classifier, gguf.classifier, vocab * dim));
    CHECK(same_floats(bin.final_norm, gguf.final_norm, dim));
    for (int l = 0; l < 5; l++) {
        const sq_layer_weights *x = &bin.layers[l];
        const sq_layer_weights *y = &gguf.layers[l];
        CHECK_MSG(same_floats(x->attn_norm, y->attn_norm, dim), "layer %d attn_norm", l);
        CHECK_MSG(same_floats(x->wq, y->wq, q_dim * dim), "layer %d wq", l);
        CHECK_MSG(same_floats(x->wk, y->wk, kv_dim * dim), "layer %d wk", l);
        CHECK_MSG(same_floats(x->wv, y->wv, kv_dim * dim), "layer %d wv", l);
        CHECK_MSG(same_floats(x->wo, y->wo, dim * q_dim), "layer %d wo", l);
        CHECK_MSG(same_floats(x->ffn_norm, y->ffn_norm, dim), "layer %d ffn_norm", l);
        CHECK_MSG(same_floats(x->w_gate, y->w_gate, hidden * dim), "layer %d w_gate", l);
        CHECK_MSG(same_floats(x->w_up, y->w_up, hidden * dim), "layer %d w_up", l);
        CHECK_MSG(same_floats(x->w_down, y->w_down, dim * hidden), "layer %d w_down", l);
    }
    sq_model_free(&bin);
    sq_model_free(&gguf);
}

/* The first float of the .bin after its 28-byte header is token_embedding[0][0]; read it
 * without the loader. */
static void test_llama2c_first_values(void) {
    uint8_t *bytes;
    size_t size;
    sq_error err;
    CHECK(sq_io_read_file(STORIES_BIN, &bytes, &size, &err) == SQ_OK);
    sq_model model;
    CHECK(sq_load_llama2c(STORIES_BIN, &model, &err) == SQ_OK);
    if (model.layers != NULL) {
        float first, last_norm;
        memcpy(&first, bytes + 28, 4);
        /* rms_att of layer 0 follows the 512 x 64 embedding. */
        memcpy(&last_norm, bytes + 28 + 4 * (512 * 64), 4);
        CHECK(model.token_embedding[0] == first);
        CHECK(model.layers[0].attn_norm[0] == last_norm);
        CHECK(model.config.context_length == 512);
    }
    sq_model_free(&model);
    free(bytes);
}

static float *smollm2_tensor(const sq_model *m, const char *name, int32_t *cols) {
    const sq_config *c = &m->config;
    int layer = -1;
    char kind[32] = "";
    if (strcmp(name, "token_embd.weight") == 0) {
        *cols = c->dim;
        return m->token_embedding;
    }
    if (strcmp(name, "output_norm.weight") == 0) {
        *cols = c->dim;
        return m->final_norm;
    }
    if (sscanf(name, "blk.%d.%31[a-z_].weight", &layer, kind) != 2 || layer < 0 || layer >= c->n_layers) {
        return NULL;
    }
    const sq_layer_weights *w = &m->layers[layer];
    *cols = c->dim;
    if (strcmp(kind, "attn_norm") == 0) return w->attn_norm;
    if (strcmp(kind, "ffn_norm") == 0) return w->ffn_norm;
    if (strcmp(kind, "attn_q") == 0) return w->wq;
    if (strcmp(kind, "attn_k") == 0) return w->wk;
    if (strcmp(kind, "attn_v") == 0) return w->wv;
    if (strcmp(kind, "ffn_gate") == 0) return w->w_gate;
    if (strcmp(kind, "ffn_up") == 0) return w->w_up;
    *cols = strcmp(kind, "ffn_down") == 0 ? c->hidden_dim : c->n_heads * c->head_dim;
    if (strcmp(kind, "ffn_down") == 0) return w->w_down;
    if (strcmp(kind, "attn_output") == 0) return w->wo;
    return NULL;
}

static void test_smollm2_config_and_values(void) {
    sq_model model;
    sq_error err;
    sq_status status = sq_load_gguf(SMOLLM2_GGUF, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status != SQ_OK) {
        return;
    }
    const sq_config *c = &model.config;
    CHECK(c->dim == 576);
    CHECK(c->hidden_dim == 1536);
    CHECK(c->n_layers == 30);
    CHECK(c->n_heads == 9);
    CHECK(c->n_kv_heads == 3);
    CHECK(c->head_dim == 64);
    CHECK(c->vocab_size == 49152);
    CHECK(c->context_length == 8192);
    CHECK(c->rope_theta == 100000.0f);
    CHECK(c->norm_eps == 1e-5f);
    CHECK(model.tied_classifier == 1);
    CHECK(model.classifier == model.token_embedding);
    CHECK(model.tokenizer != NULL);
    if (model.tokenizer != NULL) {
        CHECK(sq_tokenizer_get_kind(model.tokenizer) == SQ_TOKENIZER_BPE);
        CHECK(sq_tokenizer_vocab_size(model.tokenizer) == 49152);
        CHECK(sq_tokenizer_adds_bos(model.tokenizer) == 0);
    }
    CHECK(model.chat_template != NULL);
    if (model.chat_template != NULL) {
        CHECK(strstr(model.chat_template, "<|im_start|>") != NULL);
    }
    CHECK(model.name != NULL);
    if (model.name != NULL) {
        CHECK(strcmp(model.name, "Smollm2 135M 8k Lc100K Mix1 Ep2") == 0);
    }

    uint8_t *text;
    size_t size;
    sq_json_value *reference = NULL;
    CHECK(sq_io_read_file(SMOLLM2_VALUES, &text, &size, &err) == SQ_OK);
    CHECK(sq_json_parse((const char *)text, size, &reference, &err) == SQ_OK);
    const sq_json_value *values = sq_json_get(reference, "values");
    CHECK(values != NULL);
    if (values != NULL) {
        CHECK(values->type == SQ_JSON_ARRAY);
        CHECK(values->length >= 100);
    }
    size_t compared = 0;
    for (size_t i = 0; values != NULL && i < values->length; i++) {
        const sq_json_value *entry = &values->items[i];
        const char *name = sq_json_get(entry, "tensor")->string;
        int64_t row = sq_json_get(entry, "row")->integer;
        int64_t col = sq_json_get(entry, "col")->integer;
        double expected = sq_json_get(entry, "value")->number;
        int32_t cols = 0;
        const float *tensor = smollm2_tensor(&model, name, &cols);
        CHECK_MSG(tensor != NULL, "unknown tensor %s", name);
        if (tensor == NULL) {
            continue;
        }
        float actual = tensor[row * cols + col];
        CHECK_MSG(fabs((double)actual - expected) <= 1e-6 * fmax(1.0, fabs(expected)), "%s[%lld][%lld] = %.9g, expected %.9g",
                  name, (long long)row, (long long)col, (double)actual, expected);
        compared++;
    }
    CHECK(compared == 110);
    sq_json_free(reference);
    free(text);
    sq_model_free(&model);
}

/* Loads an edited copy of stories260K.gguf and returns the status. */
static sq_status load_edited(const gguf_edit *edit, sq_error *err) {
    buffer b = rewrite_gguf(STORIES_GGUF, edit);
    char path[128];
    temp_path(path, sizeof(path), "edited.gguf");
    if (b.data == NULL || !write_file(path, b.data, b.size)) {
        free(b.data);
        return SQ_ERR_IO;
    }
    free(b.data);
    sq_model model;
    sq_error_clear(err);
    sq_status status = sq_load_gguf(path, NULL, &model, err);
    sq_model_free(&model);
    remove(path);
    return status;
}

static void test_gguf_loader_rejections(void) {
    sq_error err;
    sq_gguf_value v;

    memset(&v, 0, sizeof(v));
    v.type = SQ_GGUF_TYPE_STRING;
    v.string.data = "gpt2";
    v.string.length = 4;
    gguf_edit arch = {NULL, "general.architecture", SQ_GGUF_TYPE_STRING, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&arch, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "gpt2") != NULL);

    /* Type edits change the tensor's size, so they are made on the last tensor in the file, where
     * no later tensor's offset depends on it. */
    const char *last = "blk.4.ffn_norm.weight";
    gguf_edit q5 = {NULL, NULL, 0, NULL, last, 6, 0, NULL}; /* Q5_0: a known layout without a converter */
    CHECK(load_edited(&q5, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, last) != NULL);
    CHECK(strstr(err.message, "type 6") != NULL);
    gguf_edit unknown_type = {NULL, NULL, 0, NULL, last, 99, 0, NULL};
    CHECK(load_edited(&unknown_type, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, last) != NULL);
    CHECK(strstr(err.message, "99") != NULL);

    /* F16 reinterprets the first half of the F32 bytes: a valid layout, so it loads unless
     * some reinterpreted value is NaN or infinite. */
    gguf_edit f16 = {NULL, NULL, 0, NULL, last, 1, 0, NULL};
    sq_status f16_status = load_edited(&f16, &err);
    CHECK(f16_status == SQ_OK || (f16_status == SQ_ERR_NUMERIC && strstr(err.message, "ffn_norm") != NULL));

    /* In the middle of the file the changed size breaks the offsets of the following tensors. */
    gguf_edit q8_middle = {NULL, NULL, 0, NULL, "blk.0.attn_q.weight", 8, 0, NULL};
    CHECK(load_edited(&q8_middle, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "offset") != NULL);

    gguf_edit swapped = {NULL, NULL, 0, NULL, "blk.2.attn_k.weight", -1, 1, NULL};
    CHECK(load_edited(&swapped, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "blk.2.attn_k.weight") != NULL);

    gguf_edit renamed = {NULL, NULL, 0, NULL, "blk.4.ffn_up.weight", -1, 0, "blk.4.ffn_upp.weight"};
    CHECK(load_edited(&renamed, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "blk.4.ffn_upp.weight") != NULL);

    gguf_edit no_dim = {"llama.embedding_length", NULL, 0, NULL, NULL, -1, 0, NULL};
    CHECK(load_edited(&no_dim, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "llama.embedding_length") != NULL);

    memset(&v, 0, sizeof(v));
    v.type = SQ_GGUF_TYPE_UINT32;
    v.u64 = 7;
    gguf_edit heads = {NULL, "llama.attention.head_count", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&heads, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "head_count") != NULL);

    v.u64 = 3; /* 8 query heads over 3 kv heads */
    gguf_edit kv_heads = {NULL, "llama.attention.head_count_kv", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&kv_heads, &err) == SQ_ERR_FORMAT);

    v.u64 = 0;
    gguf_edit zero = {NULL, "llama.block_count", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&zero, &err) == SQ_ERR_FORMAT);

    v.u64 = 1u << 30;
    gguf_edit huge = {NULL, "llama.feed_forward_length", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&huge, &err) != SQ_OK);
    CHECK(err.message[0] != '\0');

    v.u64 = 8;
    gguf_edit experts = {NULL, "llama.expert_count", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&experts, &err) == SQ_ERR_UNSUPPORTED);

    v.u64 = 4;
    gguf_edit rotary = {NULL, "llama.rope.dimension_count", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&rotary, &err) == SQ_ERR_UNSUPPORTED);

    v.u64 = 1000;
    gguf_edit vocab = {NULL, "llama.vocab_size", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&vocab, &err) == SQ_ERR_FORMAT); /* token_embd has 512 rows */

    memset(&v, 0, sizeof(v));
    v.type = SQ_GGUF_TYPE_STRING;
    v.string.data = "bert";
    v.string.length = 4;
    gguf_edit tokenizer = {NULL, "tokenizer.ggml.model", SQ_GGUF_TYPE_STRING, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&tokenizer, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "bert") != NULL);

    /* A tensor the model does not read (here the classifier, renamed) is rejected. */
    gguf_edit extra = {NULL, NULL, 0, NULL, "output.weight", -1, 0, "unused.weight"};
    CHECK(load_edited(&extra, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "unused.weight") != NULL);

    v.type = SQ_GGUF_TYPE_UINT32;
    v.u64 = 3;
    gguf_edit fewer_layers = {NULL, "llama.block_count", SQ_GGUF_TYPE_UINT32, &v, NULL, -1, 0, NULL};
    CHECK(load_edited(&fewer_layers, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "blk.3.") != NULL || strstr(err.message, "blk.4.") != NULL);
}

/* A tokenizer given to sq_model_load replaces the file's own, even an unsupported one. */
static void test_model_load_tokenizer_override(void) {
    sq_gguf_value v;
    memset(&v, 0, sizeof(v));
    v.type = SQ_GGUF_TYPE_STRING;
    v.string.data = "bert";
    v.string.length = 4;
    gguf_edit tokenizer = {NULL, "tokenizer.ggml.model", SQ_GGUF_TYPE_STRING, &v, NULL, -1, 0, NULL};
    buffer b = rewrite_gguf(STORIES_GGUF, &tokenizer);
    char path[128];
    temp_path(path, sizeof(path), "bert.gguf");
    CHECK(write_file(path, b.data, b.size));
    free(b.data);

    sq_model model;
    sq_error err;
    CHECK(sq_model_load(path, NULL, NULL, &model, &err) == SQ_ERR_UNSUPPORTED);
    sq_status status = sq_model_load(path, STORIES_TOKENIZER, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    CHECK(model.tokenizer != NULL);
    if (model.tokenizer != NULL) {
        CHECK(sq_tokenizer_vocab_size(model.tokenizer) == 512);
    }
    sq_model_free(&model);
    remove(path);
}

static void test_model_load_detects_formats(void) {
    sq_model model;
    sq_error err;

    sq_error_clear(&err);
    CHECK(sq_model_load(STORIES_BIN, NULL, NULL, &model, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "--tokenizer") != NULL);

    sq_status status = sq_model_load(STORIES_BIN, STORIES_TOKENIZER, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    CHECK(status != SQ_OK || (strcmp(model.format, "llama2c") == 0 && model.tokenizer != NULL));
    sq_model_free(&model);

    status = sq_model_load(STORIES_GGUF, NULL, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    CHECK(status != SQ_OK || strcmp(model.format, "gguf") == 0);
    sq_model_free(&model);

    /* The 32000-token Llama 2 vocabulary does not fit a 512-token model. */
    const char *big_tokenizer = "../shared/models/llama2-tokenizer/tokenizer.bin";
    if (access(big_tokenizer, R_OK) == 0) {
        CHECK(sq_model_load(STORIES_BIN, big_tokenizer, NULL, &model, &err) == SQ_ERR_MISMATCH);
        CHECK(strstr(err.message, big_tokenizer) != NULL);
        CHECK(strstr(err.message, STORIES_BIN) != NULL);
        CHECK(strstr(err.message, "512") != NULL);
    }

    CHECK(sq_model_load("models/does-not-exist.bin", NULL, NULL, &model, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "does-not-exist") != NULL);
    CHECK(sq_model_load(temp_dir, NULL, NULL, &model, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "config.json") != NULL);
}

int main(void) {
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/sq_test_gguf_XXXXXX");
    if (mkdtemp(temp_dir) == NULL) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    RUN_TEST(test_reader_all_types);
    RUN_TEST(test_reader_rejects_headers);
    RUN_TEST(test_reader_roundtrip_stories);
    RUN_TEST(test_stories_bin_equals_gguf);
    RUN_TEST(test_llama2c_first_values);
    RUN_TEST(test_smollm2_config_and_values);
    RUN_TEST(test_gguf_loader_rejections);
    RUN_TEST(test_model_load_tokenizer_override);
    RUN_TEST(test_model_load_detects_formats);
    rmdir(temp_dir);
    TEST_MAIN_END();
}
