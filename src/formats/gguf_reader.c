/* GGUF v2/v3 metadata parser. A file contains, in order:
 *   - magic "GGUF", uint32 version, uint64 tensor count, uint64 key-value count;
 *   - the key-value pairs: string key, uint32 value type, value;
 *   - the tensor infos: string name, uint32 n_dims, uint64 ne[n_dims], uint32 type, uint64 offset;
 *   - padding to the alignment, then the tensor data section.
 * A string is a uint64 length followed by that many bytes. An array is a uint32 element type,
 * a uint64 count and the elements. */
#include "formats/gguf_reader.h"

#include <stdlib.h>
#include <string.h>

#include "formats/checked_math.h"
#include "formats/dequant.h"

#define MAX_ARRAY_DEPTH 8

/* Smallest encodings, used to bound declared counts by the bytes that remain. */
#define MIN_KV_BYTES 13          /* key length (8) + value type (4) + a one-byte value */
#define MIN_TENSOR_INFO_BYTES 24 /* name length (8) + n_dims (4) + type (4) + offset (8) */

/* Returns the encoded size of a scalar value type, or 0 for STRING, ARRAY and unknown types. */
static uint64_t scalar_size(uint32_t type) {
    switch (type) {
    case SQ_GGUF_TYPE_UINT8:
    case SQ_GGUF_TYPE_INT8:
    case SQ_GGUF_TYPE_BOOL: return 1;
    case SQ_GGUF_TYPE_UINT16:
    case SQ_GGUF_TYPE_INT16: return 2;
    case SQ_GGUF_TYPE_UINT32:
    case SQ_GGUF_TYPE_INT32:
    case SQ_GGUF_TYPE_FLOAT32: return 4;
    case SQ_GGUF_TYPE_UINT64:
    case SQ_GGUF_TYPE_INT64:
    case SQ_GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

const char *sq_gguf_type_name(uint32_t type) {
    static const char *const names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                        "bool",  "string", "array",  "uint64", "int64",  "float64"};
    return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

static sq_status read_string(sq_file_reader *reader, sq_gguf_string *out, const char *item, sq_error *err) {
    uint64_t length;
    sq_status status = sq_file_reader_read_u64(reader, &length, item, err);
    if (status != SQ_OK) {
        return status;
    }
    if (length > sq_file_reader_remaining(reader) || length >= SIZE_MAX) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': %s at offset %llu declares %llu bytes but only %llu remain in the file",
                            reader->path, item, (unsigned long long)(reader->position - 8),
                            (unsigned long long)length, (unsigned long long)sq_file_reader_remaining(reader));
    }
    out->data = malloc((size_t)length + 1);
    if (out->data == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': cannot allocate %llu bytes for %s", reader->path,
                            (unsigned long long)length, item);
    }
    out->length = length;
    out->data[length] = '\0';
    return sq_file_reader_read(reader, out->data, length, item, err);
}

static void free_value(sq_gguf_value *value);

static void free_array(sq_gguf_value *value) {
    if (value->array.elements == NULL) {
        return;
    }
    if (value->array.element_type == SQ_GGUF_TYPE_STRING) {
        sq_gguf_string *strings = value->array.elements;
        for (uint64_t i = 0; i < value->array.count; i++) {
            free(strings[i].data);
        }
    } else if (value->array.element_type == SQ_GGUF_TYPE_ARRAY) {
        sq_gguf_value *items = value->array.elements;
        for (uint64_t i = 0; i < value->array.count; i++) {
            free_value(&items[i]);
        }
    }
    free(value->array.elements);
}

static void free_value(sq_gguf_value *value) {
    if (value->type == SQ_GGUF_TYPE_STRING) {
        free(value->string.data);
    } else if (value->type == SQ_GGUF_TYPE_ARRAY) {
        free_array(value);
    }
}

/* Decodes one little-endian scalar of type into a value record. */
static sq_status decode_scalar(const uint8_t *bytes, uint32_t type, sq_gguf_value *value, const char *path,
                               uint64_t offset, sq_error *err) {
    value->type = (sq_gguf_type)type;
    switch (type) {
    case SQ_GGUF_TYPE_UINT8: value->u64 = bytes[0]; break;
    case SQ_GGUF_TYPE_INT8: value->i64 = (int8_t)bytes[0]; break;
    case SQ_GGUF_TYPE_UINT16: value->u64 = sq_load_le16(bytes); break;
    case SQ_GGUF_TYPE_INT16: value->i64 = (int16_t)sq_load_le16(bytes); break;
    case SQ_GGUF_TYPE_UINT32: value->u64 = sq_load_le32(bytes); break;
    case SQ_GGUF_TYPE_INT32: value->i64 = (int32_t)sq_load_le32(bytes); break;
    case SQ_GGUF_TYPE_UINT64: value->u64 = sq_load_le64(bytes); break;
    case SQ_GGUF_TYPE_INT64: value->i64 = (int64_t)sq_load_le64(bytes); break;
    case SQ_GGUF_TYPE_FLOAT32: {
        uint32_t bits = sq_load_le32(bytes);
        float f;
        memcpy(&f, &bits, sizeof(f));
        value->f64 = f;
        break;
    }
    case SQ_GGUF_TYPE_FLOAT64: {
        uint64_t bits = sq_load_le64(bytes);
        memcpy(&value->f64, &bits, sizeof(value->f64));
        break;
    }
    case SQ_GGUF_TYPE_BOOL:
        if (bytes[0] > 1) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': bool value at offset %llu is %u, expected 0 or 1", path,
                                (unsigned long long)offset, bytes[0]);
        }
        value->boolean = bytes[0];
        break;
    default:
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': invalid value type %u at offset %llu", path, type,
                            (unsigned long long)offset);
    }
    return SQ_OK;
}

static sq_status read_value(sq_file_reader *reader, uint32_t type, int depth, sq_gguf_value *value, sq_error *err);

/* Reads the scalar elements of an array into a packed native array. */
static sq_status read_scalar_elements(sq_file_reader *reader, uint32_t element_type, uint64_t count,
                                      void *elements, sq_error *err) {
    uint64_t size = scalar_size(element_type);
    uint8_t bytes[8];
    for (uint64_t i = 0; i < count; i++) {
        uint64_t offset = reader->position;
        sq_status status = sq_file_reader_read(reader, bytes, size, "an array element", err);
        if (status != SQ_OK) {
            return status;
        }
        sq_gguf_value scalar;
        if ((status = decode_scalar(bytes, element_type, &scalar, reader->path, offset, err)) != SQ_OK) {
            return status;
        }
        switch (element_type) {
        case SQ_GGUF_TYPE_UINT8: ((uint8_t *)elements)[i] = (uint8_t)scalar.u64; break;
        case SQ_GGUF_TYPE_INT8: ((int8_t *)elements)[i] = (int8_t)scalar.i64; break;
        case SQ_GGUF_TYPE_UINT16: ((uint16_t *)elements)[i] = (uint16_t)scalar.u64; break;
        case SQ_GGUF_TYPE_INT16: ((int16_t *)elements)[i] = (int16_t)scalar.i64; break;
        case SQ_GGUF_TYPE_UINT32: ((uint32_t *)elements)[i] = (uint32_t)scalar.u64; break;
        case SQ_GGUF_TYPE_INT32: ((int32_t *)elements)[i] = (int32_t)scalar.i64; break;
        case SQ_GGUF_TYPE_FLOAT32: ((float *)elements)[i] = (float)scalar.f64; break;
        case SQ_GGUF_TYPE_BOOL: ((uint8_t *)elements)[i] = (uint8_t)scalar.boolean; break;
        case SQ_GGUF_TYPE_UINT64: ((uint64_t *)elements)[i] = scalar.u64; break;
        case SQ_GGUF_TYPE_INT64: ((int64_t *)elements)[i] = scalar.i64; break;
        case SQ_GGUF_TYPE_FLOAT64: ((double *)elements)[i] = scalar.f64; break;
        default: break;
        }
    }
    return SQ_OK;
}

static sq_status read_array(sq_file_reader *reader, int depth, sq_gguf_value *value, sq_error *err) {
    uint64_t start = reader->position;
    uint32_t element_type;
    uint64_t count;
    sq_status status;
    if ((status = sq_file_reader_read_u32(reader, &element_type, "an array element type", err)) != SQ_OK ||
        (status = sq_file_reader_read_u64(reader, &count, "an array length", err)) != SQ_OK) {
        return status;
    }
    value->type = SQ_GGUF_TYPE_ARRAY;
    value->array.element_type = (sq_gguf_type)element_type;
    value->array.count = 0;
    value->array.elements = NULL;

    /* Bound the count by the smallest encoding of one element before allocating. */
    uint64_t element_bytes;
    size_t stored_bytes;
    if (element_type == SQ_GGUF_TYPE_STRING) {
        element_bytes = 8;
        stored_bytes = sizeof(sq_gguf_string);
    } else if (element_type == SQ_GGUF_TYPE_ARRAY) {
        if (depth + 1 >= MAX_ARRAY_DEPTH) {
            return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s': arrays at offset %llu are nested deeper than %d levels",
                                reader->path, (unsigned long long)start, MAX_ARRAY_DEPTH);
        }
        element_bytes = 12;
        stored_bytes = sizeof(sq_gguf_value);
    } else if ((element_bytes = scalar_size(element_type)) != 0) {
        stored_bytes = element_type == SQ_GGUF_TYPE_FLOAT32 ? sizeof(float) : (size_t)element_bytes;
    } else {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': invalid array element type %u at offset %llu", reader->path,
                            element_type, (unsigned long long)start);
    }
    if (count > sq_file_reader_remaining(reader) / element_bytes) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s': array at offset %llu declares %llu %s elements but only %llu bytes remain",
                            reader->path, (unsigned long long)start, (unsigned long long)count,
                            sq_gguf_type_name(element_type), (unsigned long long)sq_file_reader_remaining(reader));
    }
    if (count == 0) {
        return SQ_OK;
    }
    if (count > SIZE_MAX / stored_bytes) {
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': an array of %llu elements does not fit in memory", reader->path,
                            (unsigned long long)count);
    }
    value->array.elements = calloc((size_t)count, stored_bytes);
    if (value->array.elements == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': cannot allocate an array of %llu elements", reader->path,
                            (unsigned long long)count);
    }

    if (element_type == SQ_GGUF_TYPE_STRING) {
        sq_gguf_string *strings = value->array.elements;
        for (uint64_t i = 0; i < count; i++) {
            value->array.count = i + 1; /* lets free_array release the strings read so far */
            if ((status = read_string(reader, &strings[i], "an array string", err)) != SQ_OK) {
                return status;
            }
        }
        return SQ_OK;
    }
    if (element_type == SQ_GGUF_TYPE_ARRAY) {
        sq_gguf_value *items = value->array.elements;
        for (uint64_t i = 0; i < count; i++) {
            value->array.count = i + 1;
            if ((status = read_value(reader, SQ_GGUF_TYPE_ARRAY, depth + 1, &items[i], err)) != SQ_OK) {
                return status;
            }
        }
        return SQ_OK;
    }
    value->array.count = count;
    return read_scalar_elements(reader, element_type, count, value->array.elements, err);
}

static sq_status read_value(sq_file_reader *reader, uint32_t type, int depth, sq_gguf_value *value, sq_error *err) {
    memset(value, 0, sizeof(*value));
    if (type == SQ_GGUF_TYPE_STRING) {
        value->type = SQ_GGUF_TYPE_STRING;
        return read_string(reader, &value->string, "a string value", err);
    }
    if (type == SQ_GGUF_TYPE_ARRAY) {
        return read_array(reader, depth, value, err);
    }

    uint64_t size = scalar_size(type);
    uint64_t offset = reader->position;
    if (size == 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': invalid value type %u before offset %llu", reader->path, type,
                            (unsigned long long)offset);
    }
    uint8_t bytes[8];
    sq_status status = sq_file_reader_read(reader, bytes, size, "a scalar value", err);
    if (status != SQ_OK) {
        return status;
    }
    return decode_scalar(bytes, type, value, reader->path, offset, err);
}

int sq_gguf_string_compare(const sq_gguf_string *a, const char *b, size_t b_length) {
    size_t n = a->length < b_length ? (size_t)a->length : b_length;
    int c = memcmp(a->data, b, n);
    if (c != 0) {
        return c;
    }
    return a->length < b_length ? -1 : (a->length > b_length ? 1 : 0);
}

typedef struct name_entry {
    const sq_gguf_string *name;
    uint64_t index;
} name_entry;

static int compare_name_entries(const void *a, const void *b) {
    const name_entry *x = a;
    const name_entry *y = b;
    return sq_gguf_string_compare(x->name, y->name->data, (size_t)y->name->length);
}

/* Builds an index of names sorted bytewise and rejects duplicates. The names are strided: name
 * i is the sq_gguf_string at (const char *)base + i * stride. */
static sq_status build_name_index(const void *base, size_t stride, uint64_t count, uint64_t **out, const char *kind,
                                  const char *path, sq_error *err) {
    *out = NULL;
    if (count == 0) {
        return SQ_OK;
    }
    name_entry *entries = malloc((size_t)count * sizeof(name_entry));
    uint64_t *order = malloc((size_t)count * sizeof(uint64_t));
    if (entries == NULL || order == NULL) {
        free(entries);
        free(order);
        return sq_error_set(err, SQ_ERR_NOMEM, "'%s': cannot allocate the %s index", path, kind);
    }
    for (uint64_t i = 0; i < count; i++) {
        entries[i].name = (const sq_gguf_string *)((const char *)base + (size_t)i * stride);
        entries[i].index = i;
    }
    qsort(entries, (size_t)count, sizeof(name_entry), compare_name_entries);
    for (uint64_t i = 0; i < count; i++) {
        if (i > 0 && compare_name_entries(&entries[i - 1], &entries[i]) == 0) {
            sq_error_set(err, SQ_ERR_FORMAT, "'%s': duplicate %s '%s'", path, kind, entries[i].name->data);
            free(entries);
            free(order);
            return SQ_ERR_FORMAT;
        }
        order[i] = entries[i].index;
    }
    free(entries);
    *out = order;
    return SQ_OK;
}

/* Reads the fixed header. The declared counts are returned separately, so file->n_kv and
 * file->n_tensors only count entries actually read, which sq_gguf_close relies on. */
static sq_status read_header(sq_gguf_file *file, uint64_t *n_tensors, uint64_t *n_kv, sq_error *err) {
    sq_file_reader *reader = &file->reader;
    if (reader->size == 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s' is empty", reader->path);
    }

    uint8_t magic[4];
    sq_status status = sq_file_reader_read(reader, magic, 4, "the GGUF magic", err);
    if (status != SQ_OK) {
        return status;
    }
    if (memcmp(magic, "GGUF", 4) != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s' is not a GGUF file: it starts with %02x %02x %02x %02x, expected \"GGUF\"",
                            reader->path, magic[0], magic[1], magic[2], magic[3]);
    }

    if ((status = sq_file_reader_read_u32(reader, &file->version, "the GGUF version", err)) != SQ_OK) {
        return status;
    }
    if (file->version == 0x02000000u || file->version == 0x03000000u) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s' is a big-endian GGUF file; only little-endian files are supported",
                            reader->path);
    }
    if (file->version != 2 && file->version != 3) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "'%s' has GGUF version %u; only versions 2 and 3 are supported",
                            reader->path, file->version);
    }

    if ((status = sq_file_reader_read_u64(reader, n_tensors, "the tensor count", err)) != SQ_OK ||
        (status = sq_file_reader_read_u64(reader, n_kv, "the metadata key count", err)) != SQ_OK) {
        return status;
    }
    uint64_t remaining = sq_file_reader_remaining(reader);
    if (*n_kv > remaining / MIN_KV_BYTES || *n_tensors > remaining / MIN_TENSOR_INFO_BYTES ||
        *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_INFO_BYTES > remaining) {
        return sq_error_set(err, SQ_ERR_FORMAT,
                            "'%s' declares %llu metadata keys and %llu tensors, more than its remaining %llu bytes can hold",
                            reader->path, (unsigned long long)*n_kv, (unsigned long long)*n_tensors,
                            (unsigned long long)remaining);
    }
    return SQ_OK;
}

static sq_status read_metadata(sq_gguf_file *file, uint64_t declared, sq_error *err) {
    sq_file_reader *reader = &file->reader;
    sq_status status;
    if (declared > 0) {
        file->kv = declared <= SIZE_MAX / sizeof(sq_gguf_kv) ? calloc((size_t)declared, sizeof(sq_gguf_kv)) : NULL;
        if (file->kv == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "'%s': cannot allocate %llu metadata entries", reader->path,
                                (unsigned long long)declared);
        }
    }
    for (uint64_t i = 0; i < declared; i++) {
        sq_gguf_kv *kv = &file->kv[i];
        file->n_kv = i + 1; /* counts the entries read so far, so sq_gguf_close frees exactly those */
        uint32_t type;
        if ((status = read_string(reader, &kv->key, "a metadata key", err)) != SQ_OK ||
            (status = sq_file_reader_read_u32(reader, &type, "a metadata value type", err)) != SQ_OK ||
            (status = read_value(reader, type, 0, &kv->value, err)) != SQ_OK) {
            return status;
        }
    }
    if ((status = build_name_index(file->kv, sizeof(sq_gguf_kv), file->n_kv, &file->kv_by_key, "metadata key",
                                   reader->path, err)) != SQ_OK) {
        return status;
    }

    file->alignment = SQ_GGUF_DEFAULT_ALIGNMENT;
    const sq_gguf_value *alignment = sq_gguf_find_key(file, "general.alignment");
    if (alignment != NULL) {
        if (alignment->type != SQ_GGUF_TYPE_UINT32 || alignment->u64 == 0 ||
            (alignment->u64 & (alignment->u64 - 1)) != 0) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': general.alignment must be a power-of-two uint32, got type %s value %llu",
                                reader->path, sq_gguf_type_name(alignment->type),
                                (unsigned long long)alignment->u64);
        }
        file->alignment = alignment->u64;
    }
    return SQ_OK;
}

static sq_status read_tensor_info(sq_gguf_file *file, sq_gguf_tensor *tensor, sq_error *err) {
    sq_file_reader *reader = &file->reader;
    sq_status status;
    if ((status = read_string(reader, &tensor->name, "a tensor name", err)) != SQ_OK ||
        (status = sq_file_reader_read_u32(reader, &tensor->n_dims, "a tensor dimension count", err)) != SQ_OK) {
        return status;
    }
    if (tensor->n_dims > SQ_GGUF_MAX_DIMS) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' has %u dimensions, at most %d are allowed",
                            reader->path, tensor->name.data, tensor->n_dims, SQ_GGUF_MAX_DIMS);
    }

    tensor->n_elements = 1;
    for (uint32_t d = 0; d < SQ_GGUF_MAX_DIMS; d++) {
        tensor->ne[d] = 1;
    }
    for (uint32_t d = 0; d < tensor->n_dims; d++) {
        if ((status = sq_file_reader_read_u64(reader, &tensor->ne[d], "a tensor dimension", err)) != SQ_OK) {
            return status;
        }
        if (tensor->ne[d] > (uint64_t)INT64_MAX ||
            !sq_checked_mul_u64(tensor->n_elements, tensor->ne[d], &tensor->n_elements) ||
            tensor->n_elements > (uint64_t)INT64_MAX) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' dimension %u = %llu makes its size overflow",
                                reader->path, tensor->name.data, d, (unsigned long long)tensor->ne[d]);
        }
    }
    if ((status = sq_file_reader_read_u32(reader, &tensor->type, "a tensor type", err)) != SQ_OK ||
        (status = sq_file_reader_read_u64(reader, &tensor->offset, "a tensor data offset", err)) != SQ_OK) {
        return status;
    }
    if (tensor->offset % file->alignment != 0) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' data offset %llu is not a multiple of the alignment %llu",
                            reader->path, tensor->name.data, (unsigned long long)tensor->offset,
                            (unsigned long long)file->alignment);
    }

    uint32_t block_values, block_bytes;
    tensor->n_bytes = 0;
    if (sq_ggml_type_layout(tensor->type, &block_values, &block_bytes)) {
        if (tensor->ne[0] % block_values != 0) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': tensor '%s' of type %s has rows of %llu values, not a multiple of the block size %u",
                                reader->path, tensor->name.data, sq_ggml_type_name(tensor->type),
                                (unsigned long long)tensor->ne[0], block_values);
        }
        if (!sq_checked_mul_u64(tensor->n_elements / block_values, block_bytes, &tensor->n_bytes)) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': tensor '%s' size overflows", reader->path, tensor->name.data);
        }
    }
    return SQ_OK;
}

static sq_status read_tensor_infos(sq_gguf_file *file, uint64_t declared, sq_error *err) {
    sq_file_reader *reader = &file->reader;
    sq_status status;
    if (declared > 0) {
        file->tensors =
            declared <= SIZE_MAX / sizeof(sq_gguf_tensor) ? calloc((size_t)declared, sizeof(sq_gguf_tensor)) : NULL;
        if (file->tensors == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "'%s': cannot allocate %llu tensor infos", reader->path,
                                (unsigned long long)declared);
        }
    }
    for (uint64_t i = 0; i < declared; i++) {
        file->n_tensors = i + 1; /* likewise for sq_gguf_close */
        if ((status = read_tensor_info(file, &file->tensors[i], err)) != SQ_OK) {
            return status;
        }
    }
    if ((status = build_name_index(file->tensors, sizeof(sq_gguf_tensor), file->n_tensors, &file->tensors_by_name,
                                   "tensor name", reader->path, err)) != SQ_OK) {
        return status;
    }

    /* The data section starts at the next multiple of the alignment. */
    if (!sq_checked_align_u64(reader->position, file->alignment, &file->data_offset)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "'%s': the data section offset overflows", reader->path);
    }
    /* Each tensor must start where the previous one ends, padded to the alignment, as long as
     * the sizes are known. llama.cpp's gguf_init_from_file_impl enforces the same layout, and the
     * check catches corrupt offsets and tensor counts. */
    uint64_t expected_offset = 0;
    int sizes_known = 1;
    for (uint64_t i = 0; i < file->n_tensors; i++) {
        const sq_gguf_tensor *tensor = &file->tensors[i];
        uint64_t start, end;
        if (tensor->n_bytes == 0 && tensor->n_elements != 0) {
            sizes_known = 0; /* unknown layout: the caller rejects the type before reading it */
            continue;
        }
        if (sizes_known && tensor->offset != expected_offset) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': tensor '%s' has data offset %llu, expected %llu (right after the previous tensor)",
                                reader->path, tensor->name.data, (unsigned long long)tensor->offset,
                                (unsigned long long)expected_offset);
        }
        if (sizes_known && (!sq_checked_add_u64(expected_offset, tensor->n_bytes, &expected_offset) ||
                            !sq_checked_align_u64(expected_offset, file->alignment, &expected_offset))) {
            return sq_error_set(err, SQ_ERR_FORMAT, "'%s': the tensor data section size overflows", reader->path);
        }
        if (!sq_checked_add_u64(file->data_offset, tensor->offset, &start) ||
            !sq_checked_add_u64(start, tensor->n_bytes, &end) || end > reader->size) {
            return sq_error_set(err, SQ_ERR_FORMAT,
                                "'%s': tensor '%s' data (%llu bytes at data offset %llu) lies outside the file of %llu bytes",
                                reader->path, tensor->name.data, (unsigned long long)tensor->n_bytes,
                                (unsigned long long)tensor->offset, (unsigned long long)reader->size);
        }
    }
    return SQ_OK;
}

sq_status sq_gguf_open(const char *path, sq_gguf_file **out, sq_error *err) {
    *out = NULL;
    sq_gguf_file *file = calloc(1, sizeof(sq_gguf_file));
    if (file == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a GGUF reader for '%s'", path);
    }
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    sq_status status = sq_file_reader_open(&file->reader, path, err);
    if (status == SQ_OK) {
        status = read_header(file, &n_tensors, &n_kv, err);
    }
    if (status == SQ_OK) {
        status = read_metadata(file, n_kv, err);
    }
    if (status == SQ_OK) {
        status = read_tensor_infos(file, n_tensors, err);
    }
    if (status != SQ_OK) {
        sq_gguf_close(file);
        return status;
    }
    *out = file;
    return SQ_OK;
}

void sq_gguf_close(sq_gguf_file *file) {
    if (file == NULL) {
        return;
    }
    for (uint64_t i = 0; i < file->n_kv; i++) {
        free(file->kv[i].key.data);
        free_value(&file->kv[i].value);
    }
    free(file->kv);
    for (uint64_t i = 0; i < file->n_tensors; i++) {
        free(file->tensors[i].name.data);
    }
    free(file->tensors);
    free(file->kv_by_key);
    free(file->tensors_by_name);
    sq_file_reader_close(&file->reader);
    free(file);
}
