/* The tensor layout of a .spq file, derived from the configuration and settings alone. */
#include "spq/spq_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q4_layout.h"
#include "spq/spq_format.h"

/* Upper bound on any tensor section: far above any model this engine runs, low enough that
 * offset arithmetic cannot overflow. */
#define MAX_SECTION_BYTES ((uint64_t)1 << 40)

const char *sq_spq_dtype_name(sq_spq_dtype dtype) {
    switch (dtype) {
    case SQ_SPQ_DTYPE_F32: return "f32";
    case SQ_SPQ_DTYPE_F16: return "f16";
    case SQ_SPQ_DTYPE_I8: return "i8";
    case SQ_SPQ_DTYPE_Q4: return "q4";
    }
    return "unknown";
}

int sq_spq_dtype_from_name(const char *name) {
    for (int dtype = SQ_SPQ_DTYPE_F32; dtype <= SQ_SPQ_DTYPE_Q4; dtype++) {
        if (strcmp(name, sq_spq_dtype_name((sq_spq_dtype)dtype)) == 0) {
            return dtype;
        }
    }
    return -1;
}

typedef struct layout_builder {
    sq_spq_layout *layout;
    int32_t section;
    uint64_t cursor; /* next free payload offset in the current section */
} layout_builder;

static uint64_t row_bytes(sq_spq_dtype dtype, int64_t cols) {
    switch (dtype) {
    case SQ_SPQ_DTYPE_F32: return (uint64_t)cols * 4;
    case SQ_SPQ_DTYPE_F16: return (uint64_t)cols * 2;
    case SQ_SPQ_DTYPE_I8: return (uint64_t)cols;
    case SQ_SPQ_DTYPE_Q4: return sq_q4_row_bytes(cols);
    }
    return 0;
}

static void add_tensor(layout_builder *b, const char *name, sq_spq_dtype dtype, int64_t rows, int64_t cols) {
    sq_spq_tensor_info *t = &b->layout->tensors[b->layout->n_tensors++];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->section = b->section;
    t->offset = sq_spq_align(b->cursor);
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->row_stride = row_bytes(dtype, cols);
    t->size = t->row_stride * (uint64_t)rows;
    b->cursor = t->offset + t->size;
}

static void add_matrix(layout_builder *b, const char *prefix, const char *name, int64_t rows, int64_t cols,
                       int w_group) {
    char full[SQ_SPQ_TENSOR_NAME_MAX];
    char scales[SQ_SPQ_TENSOR_NAME_MAX];
    snprintf(full, sizeof(full), "%s%s", prefix, name);
    snprintf(scales, sizeof(scales), "%s%s.scales", prefix, name);
    int64_t group = w_group > 0 ? w_group : cols;
    add_tensor(b, full, SQ_SPQ_DTYPE_Q4, rows, cols);
    add_tensor(b, scales, SQ_SPQ_DTYPE_F32, rows, cols / group);
}

static void add_table(layout_builder *b, const char *name, int64_t rows, int64_t cols, int embed_bits) {
    if (embed_bits == 8) {
        char scales[SQ_SPQ_TENSOR_NAME_MAX];
        snprintf(scales, sizeof(scales), "%s.scales", name);
        add_tensor(b, name, SQ_SPQ_DTYPE_I8, rows, cols);
        add_tensor(b, scales, SQ_SPQ_DTYPE_F32, rows, 1);
    } else {
        add_tensor(b, name, SQ_SPQ_DTYPE_F16, rows, cols);
    }
}

static void end_section(layout_builder *b) {
    b->layout->payload_sizes[b->section] = b->cursor;
    b->section++;
    b->cursor = 0;
}

sq_status sq_spq_layout_build(const sq_config *c, const sq_spq_settings *s, sq_spq_classifier_kind classifier_kind,
                              sq_spq_layout *layout, sq_error *err) {
    memset(layout, 0, sizeof(*layout));
    layout->n_sections = c->n_layers + SQ_SPQ_EXTRA_SECTIONS;
    /* Two tensors for the embedding, sixteen per layer, at most three for the output. */
    int32_t capacity = 2 + 16 * c->n_layers + 3;
    layout->tensors = calloc((size_t)capacity, sizeof(sq_spq_tensor_info));
    layout->payload_sizes = calloc((size_t)layout->n_sections, sizeof(uint64_t));
    if (layout->tensors == NULL || layout->payload_sizes == NULL) {
        sq_spq_layout_free(layout);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the tensor table of %d layers", c->n_layers);
    }
    layout_builder b = {layout, SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1, 0};
    int64_t dim = c->dim;
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    int64_t kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t hidden = c->hidden_dim;

    add_table(&b, "token_embedding", c->vocab_size, dim, s->embed_bits);
    end_section(&b);
    for (int32_t l = 0; l < c->n_layers; l++) {
        char prefix[24];
        char name[SQ_SPQ_TENSOR_NAME_MAX];
        snprintf(prefix, sizeof(prefix), "layers.%d.", (int)l);
        snprintf(name, sizeof(name), "%sattn_norm", prefix);
        add_tensor(&b, name, SQ_SPQ_DTYPE_F32, 1, dim);
        add_matrix(&b, prefix, "wq", q_dim, dim, s->w_group);
        add_matrix(&b, prefix, "wk", kv_dim, dim, s->w_group);
        add_matrix(&b, prefix, "wv", kv_dim, dim, s->w_group);
        add_matrix(&b, prefix, "wo", dim, q_dim, s->w_group);
        snprintf(name, sizeof(name), "%sffn_norm", prefix);
        add_tensor(&b, name, SQ_SPQ_DTYPE_F32, 1, dim);
        add_matrix(&b, prefix, "w_gate", hidden, dim, s->w_group);
        add_matrix(&b, prefix, "w_up", hidden, dim, s->w_group);
        add_matrix(&b, prefix, "w_down", dim, hidden, s->w_group);
        end_section(&b);
    }
    add_tensor(&b, "final_norm", SQ_SPQ_DTYPE_F32, 1, dim);
    if (classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM) {
        add_tensor(&b, "classifier_transform", SQ_SPQ_DTYPE_F32, dim, dim);
    } else {
        add_table(&b, "classifier", c->vocab_size, dim, s->embed_bits);
    }
    end_section(&b);

    for (int32_t i = SQ_SPQ_SECTIONS_BEFORE_LAYERS - 1; i < layout->n_sections; i++) {
        if (layout->payload_sizes[i] > MAX_SECTION_BYTES) {
            uint64_t size = layout->payload_sizes[i];
            sq_spq_layout_free(layout);
            return sq_error_set(err, SQ_ERR_NOMEM, "section %d would hold %llu bytes, more than the limit of %llu", (int)i,
                                (unsigned long long)size, (unsigned long long)MAX_SECTION_BYTES);
        }
        layout->tensor_bytes += sq_spq_align(layout->payload_sizes[i]);
    }
    if (layout->tensor_bytes > (uint64_t)SIZE_MAX / 2) {
        uint64_t total = layout->tensor_bytes;
        sq_spq_layout_free(layout);
        return sq_error_set(err, SQ_ERR_NOMEM, "the model's %llu tensor bytes do not fit this machine's address space",
                            (unsigned long long)total);
    }
    return SQ_OK;
}

void sq_spq_layout_free(sq_spq_layout *layout) {
    free(layout->tensors);
    free(layout->payload_sizes);
    memset(layout, 0, sizeof(*layout));
}

const sq_spq_tensor_info *sq_spq_layout_find(const sq_spq_layout *layout, const char *name) {
    for (int32_t i = 0; i < layout->n_tensors; i++) {
        if (strcmp(layout->tensors[i].name, name) == 0) {
            return &layout->tensors[i];
        }
    }
    return NULL;
}
