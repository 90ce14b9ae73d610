/* A reader for safetensors files: a little-endian uint64 header size N, N bytes of JSON
 * mapping each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the end of the header, plus an optional "__metadata__" object), then the data.
 * Opening checks every entry: known dtype, non-negative shape, data range inside the file and
 * matching the shape's byte size. Tensors of dtype F32, F16 and BF16 can be read as fp32.
 * Limit: the header may be at most 16 MiB, which bounds the memory of its JSON tree. Real
 * headers need about 100 bytes per tensor, and the reference implementation allows 100 MB. */
#ifndef SQ_FORMATS_SAFETENSORS_H
#define SQ_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "formats/file_reader.h"

#define SQ_SAFETENSORS_MAX_DIMS 8

typedef enum sq_safetensors_dtype {
    SQ_ST_BOOL, SQ_ST_U8, SQ_ST_I8, SQ_ST_F8_E4M3, SQ_ST_F8_E5M2, SQ_ST_I16, SQ_ST_U16, SQ_ST_F16,
    SQ_ST_BF16, SQ_ST_I32, SQ_ST_U32, SQ_ST_F32, SQ_ST_I64, SQ_ST_U64, SQ_ST_F64,
} sq_safetensors_dtype;

typedef struct sq_safetensors_tensor {
    char *name;
    sq_safetensors_dtype dtype;
    uint32_t n_dims;
    uint64_t shape[SQ_SAFETENSORS_MAX_DIMS]; /* slowest-varying first, as in PyTorch */
    uint64_t n_elements;
    uint64_t begin;                          /* absolute file offset of the first byte */
    uint64_t n_bytes;
} sq_safetensors_tensor;

typedef struct sq_safetensors_file {
    sq_file_reader reader;
    size_t n_tensors;
    sq_safetensors_tensor *tensors; /* [n_tensors] in header order */
} sq_safetensors_file;

/* Opens and validates the file at path. Fails with SQ_ERR_IO when it cannot be read and
 * SQ_ERR_FORMAT when the header is invalid. */
sq_status sq_safetensors_open(const char *path, sq_safetensors_file **out, sq_error *err);

void sq_safetensors_close(sq_safetensors_file *file);

/* Returns the tensor named name, or NULL. */
const sq_safetensors_tensor *sq_safetensors_find(const sq_safetensors_file *file, const char *name);

/* Returns the dtype's safetensors name ("BF16"). */
const char *sq_safetensors_dtype_name(sq_safetensors_dtype dtype);

/* Reads tensor as fp32 into dst (count values, which must equal tensor->n_elements). Fails
 * with SQ_ERR_UNSUPPORTED for dtypes other than F32, F16 and BF16. */
sq_status sq_safetensors_read_f32(sq_safetensors_file *file, const sq_safetensors_tensor *tensor, float *dst,
                                  size_t count, sq_error *err);

#endif
