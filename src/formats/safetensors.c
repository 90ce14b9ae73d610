/* safetensors reader; the layout is described in safetensors.h. */
#include "formats/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "formats/checked_math.h"
#include "formats/dequant.h"
#include "formats/json.h"

#define MAX_HEADER_BYTES (16u << 20)

static const struct {
    const char *name;
    sq_safetensors_dtype dtype;
    uint32_t bytes;
} DTYPES[] = {
    {"BOOL", SQ_ST_BOOL, 1}, {"U8", SQ_ST_U8, 1},     {"I8", SQ_ST_I8, 1},     {"F8_E4M3", SQ_ST_F8_E4M3, 1},
    {"F8_E5M2", SQ_ST_F8_E5M2, 1}, {"I16", SQ_ST_I16, 2}, {"U16", SQ_ST_U16, 2}, {"F16", SQ_ST_F16, 2},
    {"BF16", SQ_ST_BF16, 2}, {"I32", SQ_ST_I32, 4},   {"U32", SQ_ST_U32, 4},   {"F32", SQ_ST_F32, 4},
    {"I64", SQ_ST_I64, 8},   {"U64", SQ_ST_U64, 8},   {"F64", SQ_ST_F64, 8},
};

#define DTYPE_COUNT (sizeof(DTYPES) / sizeof(DTYPES[0]))

const char *sq_safetensors_dtype_name(sq_safetensors_dtype dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (DTYPES[i].dtype == dtype) {
            return DTYPES[i].name;
        }
    }
    return "unknown";
}

static uint32_t dtype_bytes(sq_safetensors_dtype dtype) {
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (DTYPES[i].dtype == dtype) {
            return DTYPES[i].bytes;
        }
    }
    return 0;
}

/* Reads a non-negative JSON integer. */
static int read_json_u64(const sq_json_value *value, uint64_t *out) {
    if (value == NULL || value->type != SQ_JSON_NUMBER || !value->is_integer || value->integer < 0) {
        return 0;
    }
    *out = (uint64_t)value->integer;
    return 1;
}

/* Validates one header entry and fills tensor; data_size is the byte count after the header. */
static sq_status parse_entry(const char *path, const sq_json_member *member, uint64_t data_start, uint64_t data_size,
                             sq_safetensors_tensor *tensor, sq_error *err) {
    const sq_json_value *entry = &member->value;
    const sq_json_value *dtype = sq_json_get(entry, "dtype");
    const sq_json_value *shape = sq_json_get(entry, "shape");
    const sq_json_value *offsets = sq_json_get(entry, "data_offsets");
    if (entry->type != SQ_JSON_OBJECT || dtype == NULL || dtype->type != SQ_JSON_STRING || shape == NULL ||
        shape->type != SQ_JSON_ARRAY || offsets == NULL || offsets->type != SQ_JSON_ARRAY || offsets->length != 2) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': header entry '%s' must be an object with a string dtype, a shape array and two data_offsets",
                            path, member->key);
    }

    int known = 0;
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(dtype->string, DTYPES[i].name) == 0) {
            tensor->dtype = DTYPES[i].dtype;
            known = 1;
        }
    }
    if (!known) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': tensor '%s' has unknown dtype '%s'", path, member->key,
                            dtype->string);
    }

    if (shape->length > SQ_SAFETENSORS_MAX_DIMS) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' has %zu dimensions, at most %d are supported", path,
                            member->key, shape->length, SQ_SAFETENSORS_MAX_DIMS);
    }
    tensor->n_dims = (uint32_t)shape->length;
    tensor->n_elements = 1;
    for (size_t d = 0; d < shape->length; d++) {
        if (!read_json_u64(&shape->items[d], &tensor->shape[d]) ||
            !sq_checked_mul_u64(tensor->n_elements, tensor->shape[d], &tensor->n_elements)) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': tensor '%s' shape entry %zu is not a non-negative integer or overflows", path,
                                member->key, d);
        }
    }

    uint64_t begin = 0, end = 0, expected = 0;
    if (!read_json_u64(&offsets->items[0], &begin) || !read_json_u64(&offsets->items[1], &end) || begin > end ||
        end > data_size) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': tensor '%s' data_offsets must be integers with begin <= end <= %llu (the data size)",
                            path, member->key, (unsigned long long)data_size);
    }
    if (!sq_checked_mul_u64(tensor->n_elements, dtype_bytes(tensor->dtype), &expected) || expected != end - begin) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' spans %llu bytes but its shape and dtype %s need %llu",
                            path, member->key, (unsigned long long)(end - begin), dtype->string,
                            (unsigned long long)expected);
    }
    tensor->begin = data_start + begin;
    tensor->n_bytes = end - begin;
    tensor->name = malloc(member->key_length + 1);
    if (tensor->name == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a tensor name");
    }
    memcpy(tensor->name, member->key, member->key_length + 1);
    return SQ_OK;
}

static sq_status parse_header(sq_safetensors_file *file, const sq_json_value *header, uint64_t data_start,
                              sq_error *err) {
    const char *path = file->reader.path;
    if (header->type != SQ_JSON_OBJECT) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': the safetensors header is a JSON %s, expected an object", path,
                            sq_json_type_name(header->type));
    }
    file->tensors = calloc(header->length > 0 ? header->length : 1, sizeof(sq_safetensors_tensor));
    if (file->tensors == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu tensor entries", header->length);
    }
    uint64_t data_size = file->reader.size - data_start;
    for (size_t i = 0; i < header->length; i++) {
        const sq_json_member *member = &header->members[i];
        if (strcmp(member->key, "__metadata__") == 0) {
            continue;
        }
        sq_status status = parse_entry(path, member, data_start, data_size, &file->tensors[file->n_tensors], err);
        if (status != SQ_OK) {
            return status;
        }
        file->n_tensors++;
    }
    return SQ_OK;
}

sq_status sq_safetensors_open(const char *path, sq_safetensors_file **out, sq_error *err) {
    *out = NULL;
    sq_safetensors_file *file = calloc(1, sizeof(sq_safetensors_file));
    if (file == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a safetensors reader");
    }
    sq_status status = sq_file_reader_open(&file->reader, path, err);
    uint64_t header_size = 0;
    if (status == SQ_OK && file->reader.size == 0) {
        status = sq_error_set(err, SQ_ERR_FORMAT, "'%s' is empty", path);
    }
    if (status == SQ_OK) {
        status = sq_file_reader_read_u64(&file->reader, &header_size, "the safetensors header size", err);
    }
    if (status == SQ_OK && (header_size > MAX_HEADER_BYTES || header_size > sq_file_reader_remaining(&file->reader))) {
        status = sq_error_set(err, SQ_ERR_FORMAT,
                              "'%s' declares a safetensors header of %llu bytes; the file has %llu bytes after the size field and the limit is %u",
                              path, (unsigned long long)header_size,
                              (unsigned long long)sq_file_reader_remaining(&file->reader), MAX_HEADER_BYTES);
    }

    char *text = NULL;
    sq_json_value *header = NULL;
    if (status == SQ_OK) {
        text = malloc((size_t)header_size + 1);
        if (text == NULL) {
            status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes for the header of '%s'",
                                  (unsigned long long)header_size, path);
        }
    }
    if (status == SQ_OK) {
        status = sq_file_reader_read(&file->reader, text, header_size, "the safetensors header", err);
    }
    if (status == SQ_OK && (status = sq_json_parse(text, (size_t)header_size, &header, err)) != SQ_OK) {
        char message[SQ_ERROR_MESSAGE_MAX];
        snprintf(message, sizeof(message), "%s", err != NULL ? err->message : "");
        sq_error_set(err, status, "'%s': safetensors header: %s", path, message);
    }
    if (status == SQ_OK) {
        status = parse_header(file, header, 8 + header_size, err);
    }
    free(text);
    sq_json_free(header);
    if (status != SQ_OK) {
        sq_safetensors_close(file);
        return status;
    }
    *out = file;
    return SQ_OK;
}

void sq_safetensors_close(sq_safetensors_file *file) {
    if (file == NULL) {
        return;
    }
    for (size_t i = 0; i < file->n_tensors; i++) {
        free(file->tensors[i].name);
    }
    free(file->tensors);
    sq_file_reader_close(&file->reader);
    free(file);
}

const sq_safetensors_tensor *sq_safetensors_find(const sq_safetensors_file *file, const char *name) {
    for (size_t i = 0; i < file->n_tensors; i++) {
        if (strcmp(file->tensors[i].name, name) == 0) {
            return &file->tensors[i];
        }
    }
    return NULL;
}

sq_status sq_safetensors_read_f32(sq_safetensors_file *file, const sq_safetensors_tensor *tensor, float *dst,
                                  size_t count, sq_error *err) {
    const char *path = file->reader.path;
    if (tensor->dtype != SQ_ST_F32 && tensor->dtype != SQ_ST_F16 && tensor->dtype != SQ_ST_BF16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': tensor '%s' has dtype %s; supported dtypes are F32, F16, BF16",
                            path, tensor->name, sq_safetensors_dtype_name(tensor->dtype));
    }
    if ((uint64_t)count != tensor->n_elements) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "'%s': tensor '%s' has %llu values, the destination holds %zu", path,
                            tensor->name, (unsigned long long)tensor->n_elements, count);
    }
    sq_status status = sq_file_reader_seek(&file->reader, tensor->begin, err);
    if (status != SQ_OK) {
        return status;
    }
    if (tensor->dtype == SQ_ST_F32) {
        return sq_file_reader_read(&file->reader, dst, tensor->n_bytes, tensor->name, err);
    }

    /* 16-bit data is read into the second half of dst and widened in place from the front:
     * value i is written to bytes [4i, 4i + 4), which never overlaps the unread source values
     * at bytes [2 * count + 2j, ...) for j > i. */
    uint8_t *raw = (uint8_t *)dst + 2 * count;
    if ((status = sq_file_reader_read(&file->reader, raw, tensor->n_bytes, tensor->name, err)) != SQ_OK) {
        return status;
    }
    for (size_t i = 0; i < count; i++) {
        uint16_t bits = sq_load_le16(raw + 2 * i);
        dst[i] = tensor->dtype == SQ_ST_F16 ? sq_fp16_to_fp32(bits) : sq_bf16_to_fp32(bits);
    }
    return SQ_OK;
}
