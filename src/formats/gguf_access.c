/* Lookups and typed access for a parsed GGUF file: keys and tensors by name (binary search over
 * the sorted indices sq_gguf_open builds), typed metadata getters, and tensor data reads. */
#include <stdlib.h>
#include <string.h>

#include "formats/dequant.h"
#include "formats/gguf_reader.h"

/* Binary search over a sorted index of strided names. */
static int64_t find_name(const void *base, size_t stride, const uint64_t *order, uint64_t count, const char *name) {
    size_t length = strlen(name);
    uint64_t low = 0;
    uint64_t high = count;
    while (low < high) {
        uint64_t middle = low + (high - low) / 2;
        const sq_gguf_string *candidate = (const sq_gguf_string *)((const char *)base + (size_t)order[middle] * stride);
        int c = sq_gguf_string_compare(candidate, name, length);
        if (c == 0) {
            return (int64_t)order[middle];
        }
        if (c < 0) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return -1;
}

const sq_gguf_value *sq_gguf_find_key(const sq_gguf_file *file, const char *key) {
    int64_t index = find_name(file->kv, sizeof(sq_gguf_kv), file->kv_by_key, file->n_kv, key);
    return index < 0 ? NULL : &file->kv[index].value;
}

const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf_file *file, const char *name) {
    int64_t index = find_name(file->tensors, sizeof(sq_gguf_tensor), file->tensors_by_name, file->n_tensors, name);
    return index < 0 ? NULL : &file->tensors[index];
}

static sq_status find_typed(const sq_gguf_file *file, const char *key, const sq_gguf_value **value, sq_error *err) {
    *value = sq_gguf_find_key(file, key);
    if (*value == NULL) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': missing metadata key %s", file->reader.path, key);
    }
    return SQ_OK;
}

static sq_status wrong_type(const sq_gguf_file *file, const char *key, const sq_gguf_value *value, const char *expected,
                            sq_error *err) {
    return sq_error_set(err, SQ_ERR_FORMAT, "'%s': metadata key %s has type %s, expected %s", file->reader.path, key,
                        sq_gguf_type_name(value->type), expected);
}

sq_status sq_gguf_get_uint(const sq_gguf_file *file, const char *key, uint64_t *out, sq_error *err) {
    const sq_gguf_value *value;
    sq_status status = find_typed(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    switch (value->type) {
    case SQ_GGUF_TYPE_UINT8:
    case SQ_GGUF_TYPE_UINT16:
    case SQ_GGUF_TYPE_UINT32:
    case SQ_GGUF_TYPE_UINT64: *out = value->u64; return SQ_OK;
    case SQ_GGUF_TYPE_INT8:
    case SQ_GGUF_TYPE_INT16:
    case SQ_GGUF_TYPE_INT32:
    case SQ_GGUF_TYPE_INT64:
        if (value->i64 < 0) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': metadata key %s = %lld, expected a non-negative value",
                                file->reader.path, key, (long long)value->i64);
        }
        *out = (uint64_t)value->i64;
        return SQ_OK;
    default: return wrong_type(file, key, value, "an integer", err);
    }
}

sq_status sq_gguf_get_float(const sq_gguf_file *file, const char *key, double *out, sq_error *err) {
    const sq_gguf_value *value;
    sq_status status = find_typed(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    if (value->type != SQ_GGUF_TYPE_FLOAT32 && value->type != SQ_GGUF_TYPE_FLOAT64) {
        return wrong_type(file, key, value, "float32 or float64", err);
    }
    *out = value->f64;
    return SQ_OK;
}

sq_status sq_gguf_get_bool(const sq_gguf_file *file, const char *key, int *out, sq_error *err) {
    const sq_gguf_value *value;
    sq_status status = find_typed(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    if (value->type != SQ_GGUF_TYPE_BOOL) {
        return wrong_type(file, key, value, "bool", err);
    }
    *out = value->boolean;
    return SQ_OK;
}

sq_status sq_gguf_get_string(const sq_gguf_file *file, const char *key, const sq_gguf_string **out, sq_error *err) {
    const sq_gguf_value *value;
    sq_status status = find_typed(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    if (value->type != SQ_GGUF_TYPE_STRING) {
        return wrong_type(file, key, value, "string", err);
    }
    *out = &value->string;
    return SQ_OK;
}

sq_status sq_gguf_get_array(const sq_gguf_file *file, const char *key, sq_gguf_type element_type,
                            const sq_gguf_value **out, sq_error *err) {
    const sq_gguf_value *value;
    sq_status status = find_typed(file, key, &value, err);
    if (status != SQ_OK) {
        return status;
    }
    if (value->type != SQ_GGUF_TYPE_ARRAY || value->array.element_type != element_type) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': metadata key %s has type %s of %s, expected an array of %s",
                            file->reader.path, key, sq_gguf_type_name(value->type),
                            value->type == SQ_GGUF_TYPE_ARRAY ? sq_gguf_type_name(value->array.element_type) : "-",
                            sq_gguf_type_name(element_type));
    }
    *out = value;
    return SQ_OK;
}

sq_status sq_gguf_read_tensor_data(sq_gguf_file *file, const sq_gguf_tensor *tensor, void *buffer, sq_error *err) {
    if (tensor->n_bytes == 0) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': tensor '%s' has type %u (%s) whose data layout is unknown",
                            file->reader.path, tensor->name.data, tensor->type, sq_ggml_type_name(tensor->type));
    }
    sq_status status = sq_file_reader_seek(&file->reader, file->data_offset + tensor->offset, err);
    if (status != SQ_OK) {
        return status;
    }
    return sq_file_reader_read(&file->reader, buffer, tensor->n_bytes, tensor->name.data, err);
}

sq_status sq_gguf_read_tensor_f32(sq_gguf_file *file, const sq_gguf_tensor *tensor, float *dst, size_t count,
                                  sq_error *err) {
    if (!sq_ggml_type_is_supported(tensor->type)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "'%s': tensor '%s' has type %u (%s); supported types are F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                            file->reader.path, tensor->name.data, tensor->type, sq_ggml_type_name(tensor->type));
    }
    if ((uint64_t)count != tensor->n_elements) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "'%s': tensor '%s' has %llu values, the destination holds %zu",
                            file->reader.path, tensor->name.data, (unsigned long long)tensor->n_elements, count);
    }
    if (tensor->n_bytes > SIZE_MAX) {
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': tensor '%s' of %llu bytes does not fit in memory",
                            file->reader.path, tensor->name.data, (unsigned long long)tensor->n_bytes);
    }

    /* F32 data goes straight into dst; other types pass through a scratch buffer. */
    if (tensor->type == SQ_GGML_TYPE_F32) {
        return sq_gguf_read_tensor_data(file, tensor, dst, err);
    }
    uint8_t *raw = malloc((size_t)tensor->n_bytes);
    if (raw == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %llu bytes to read tensor '%s'",
                            (unsigned long long)tensor->n_bytes, tensor->name.data);
    }
    sq_status status = sq_gguf_read_tensor_data(file, tensor, raw, err);
    if (status == SQ_OK) {
        status = sq_dequantize(tensor->type, raw, (size_t)tensor->n_bytes, dst, count, err);
    }
    free(raw);
    return status;
}
