/* A read-only parser for GGUF v2 and v3 files (little-endian): the header, the key-value
 * metadata of every value type including nested arrays, and the tensor table. Tensor data is
 * read on request, so opening a file costs only its metadata.
 *
 * Every count, string length and dimension is checked against the bytes left in the file
 * before anything is allocated, so memory use is bounded by a small multiple of the file size.
 * Tensor data ranges are checked against the file size for every type whose block layout
 * dequant.h lists. Other types get n_bytes = 0, and the caller rejects them before reading.
 * Limits: at most 4 dimensions per tensor (as ggml), arrays nested at most 8 deep. */
#ifndef SQ_FORMATS_GGUF_READER_H
#define SQ_FORMATS_GGUF_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "formats/file_reader.h"

#define SQ_GGUF_MAX_DIMS 4
#define SQ_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types (gguf_metadata_value_type). */
typedef enum sq_gguf_type {
    SQ_GGUF_TYPE_UINT8 = 0,
    SQ_GGUF_TYPE_INT8 = 1,
    SQ_GGUF_TYPE_UINT16 = 2,
    SQ_GGUF_TYPE_INT16 = 3,
    SQ_GGUF_TYPE_UINT32 = 4,
    SQ_GGUF_TYPE_INT32 = 5,
    SQ_GGUF_TYPE_FLOAT32 = 6,
    SQ_GGUF_TYPE_BOOL = 7,
    SQ_GGUF_TYPE_STRING = 8,
    SQ_GGUF_TYPE_ARRAY = 9,
    SQ_GGUF_TYPE_UINT64 = 10,
    SQ_GGUF_TYPE_INT64 = 11,
    SQ_GGUF_TYPE_FLOAT64 = 12,
} sq_gguf_type;

/* A GGUF string: length bytes of data followed by a NUL this reader adds (the bytes themselves
 * may contain NULs). */
typedef struct sq_gguf_string {
    char *data;
    uint64_t length;
} sq_gguf_string;

typedef struct sq_gguf_value sq_gguf_value;

struct sq_gguf_value {
    sq_gguf_type type;
    union {
        uint64_t u64; /* UINT8, UINT16, UINT32, UINT64 */
        int64_t i64;  /* INT8, INT16, INT32, INT64 */
        double f64;   /* FLOAT32 (converted exactly), FLOAT64 */
        int boolean;  /* BOOL: 0 or 1 */
        sq_gguf_string string;
        struct {
            sq_gguf_type element_type;
            uint64_t count;
            /* [count] elements: a packed C array of the element type for scalars (uint8_t,
             * int8_t, ..., float for FLOAT32, uint8_t for BOOL, double for FLOAT64),
             * sq_gguf_string for STRING, sq_gguf_value for ARRAY. */
            void *elements;
        } array;
    };
};

typedef struct sq_gguf_kv {
    sq_gguf_string key;
    sq_gguf_value value;
} sq_gguf_kv;

typedef struct sq_gguf_tensor {
    sq_gguf_string name;
    uint32_t n_dims;
    uint64_t ne[SQ_GGUF_MAX_DIMS]; /* element counts, fastest-varying first; unused ones are 1 */
    uint32_t type;                 /* ggml type number (dequant.h) */
    uint64_t offset;               /* from the start of the data section */
    uint64_t n_elements;
    uint64_t n_bytes;              /* 0 when the type's block layout is unknown */
} sq_gguf_tensor;

typedef struct sq_gguf_file {
    sq_file_reader reader;
    uint32_t version;
    uint64_t n_kv;
    sq_gguf_kv *kv;              /* [n_kv] in file order */
    uint64_t n_tensors;
    sq_gguf_tensor *tensors;     /* [n_tensors] in file order */
    uint64_t alignment;          /* general.alignment, or 32 */
    uint64_t data_offset;        /* absolute file offset of the tensor data section */
    uint64_t *kv_by_key;         /* [n_kv] indices into kv sorted by key, for binary search */
    uint64_t *tensors_by_name;   /* [n_tensors] indices into tensors sorted by name */
} sq_gguf_file;

/* Parses the metadata and tensor table of the GGUF file at path. Fails with SQ_ERR_IO for a
 * missing file, SQ_ERR_FORMAT for a wrong magic or corrupt content and SQ_ERR_UNSUPPORTED
 * for another version. */
sq_status sq_gguf_open(const char *path, sq_gguf_file **out, sq_error *err);

/* Closes the file and frees everything; safe on NULL. */
void sq_gguf_close(sq_gguf_file *file);

/* Returns the value stored under key, or NULL. */
const sq_gguf_value *sq_gguf_find_key(const sq_gguf_file *file, const char *key);

/* Returns the tensor named name, or NULL. */
const sq_gguf_tensor *sq_gguf_find_tensor(const sq_gguf_file *file, const char *name);

/* Typed getters: each fails with SQ_ERR_FORMAT naming the key when it is missing or has an
 * incompatible type. get_uint accepts any integer type with a non-negative value, get_float
 * accepts FLOAT32 and FLOAT64, and get_array checks the element type. */
sq_status sq_gguf_get_uint(const sq_gguf_file *file, const char *key, uint64_t *value, sq_error *err);
sq_status sq_gguf_get_float(const sq_gguf_file *file, const char *key, double *value, sq_error *err);
sq_status sq_gguf_get_bool(const sq_gguf_file *file, const char *key, int *value, sq_error *err);
sq_status sq_gguf_get_string(const sq_gguf_file *file, const char *key, const sq_gguf_string **value,
                             sq_error *err);
sq_status sq_gguf_get_array(const sq_gguf_file *file, const char *key, sq_gguf_type element_type,
                            const sq_gguf_value **array, sq_error *err);

/* Compares a stored string with b (b_length bytes) bytewise, like memcmp with the shorter
 * string ordered first. */
int sq_gguf_string_compare(const sq_gguf_string *a, const char *b, size_t b_length);

/* Returns the name of a metadata value type ("uint32"), or "unknown". */
const char *sq_gguf_type_name(uint32_t type);

/* Reads the raw bytes of tensor (tensor->n_bytes, which must be non-zero) into buffer. */
sq_status sq_gguf_read_tensor_data(sq_gguf_file *file, const sq_gguf_tensor *tensor, void *buffer,
                                   sq_error *err);

/* Reads tensor and converts it to fp32 into dst, which has room for count values. count must
 * equal tensor->n_elements. Fails with SQ_ERR_UNSUPPORTED naming the tensor for a type without a
 * converter. */
sq_status sq_gguf_read_tensor_f32(sq_gguf_file *file, const sq_gguf_tensor *tensor, float *dst,
                                  size_t count, sq_error *err);

#endif
