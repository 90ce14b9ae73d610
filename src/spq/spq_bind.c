/* Name-based access to the tensor fields of sq_spq_model. */
#include "spq/spq_bind.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The field a tensor name refers to: exactly one of the pointers is set. */
typedef struct tensor_field {
    const float **f32;
    const uint8_t **q4;
    const void **table_data;
    sq_spq_qmatrix *matrix; /* the matrix of a q4 tensor or of its .scales */
    sq_spq_table *table;    /* the table of an i8/f16 tensor or of its .scales */
} tensor_field;

static sq_spq_qmatrix *layer_matrix(sq_spq_layer *layer, const char *name) {
    static const char *const names[] = {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"};
    sq_spq_qmatrix *matrices[] = {&layer->wq, &layer->wk, &layer->wv, &layer->wo, &layer->w_gate, &layer->w_up,
                                  &layer->w_down};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            return matrices[i];
        }
    }
    return NULL;
}

/* Resolves name to its field; returns 0 for an unknown name. */
static int resolve(sq_spq_model *m, const char *name, tensor_field *field) {
    memset(field, 0, sizeof(*field));
    char base[SQ_SPQ_TENSOR_NAME_MAX];
    snprintf(base, sizeof(base), "%s", name);
    size_t length = strlen(base);
    int scales = length > 7 && strcmp(base + length - 7, ".scales") == 0;
    if (scales) {
        base[length - 7] = '\0';
    }

    if (strcmp(base, "token_embedding") == 0 || strcmp(base, "classifier") == 0) {
        field->table = strcmp(base, "classifier") == 0 ? &m->classifier : &m->embedding;
        if (scales) {
            field->f32 = &field->table->scales;
        } else {
            field->table_data = &field->table->data;
        }
        return 1;
    }
    if (scales) {
        int layer;
        int consumed = 0;
        char rest[SQ_SPQ_TENSOR_NAME_MAX];
        if (sscanf(base, "layers.%d.%31s%n", &layer, rest, &consumed) != 2 || base[consumed] != '\0' || layer < 0 ||
            layer >= m->config.n_layers || (field->matrix = layer_matrix(&m->layers[layer], rest)) == NULL) {
            return 0;
        }
        field->f32 = &field->matrix->scales;
        return 1;
    }
    if (strcmp(base, "final_norm") == 0) {
        field->f32 = &m->final_norm;
        return 1;
    }
    if (strcmp(base, "classifier_transform") == 0) {
        field->f32 = &m->classifier_transform;
        return 1;
    }
    int layer;
    int consumed = 0;
    char rest[SQ_SPQ_TENSOR_NAME_MAX];
    if (sscanf(base, "layers.%d.%31s%n", &layer, rest, &consumed) != 2 || base[consumed] != '\0' || layer < 0 ||
        layer >= m->config.n_layers) {
        return 0;
    }
    sq_spq_layer *l = &m->layers[layer];
    if (strcmp(rest, "attn_norm") == 0) {
        field->f32 = &l->attn_norm;
    } else if (strcmp(rest, "ffn_norm") == 0) {
        field->f32 = &l->ffn_norm;
    } else if ((field->matrix = layer_matrix(l, rest)) != NULL) {
        field->q4 = &field->matrix->codes;
    } else {
        return 0;
    }
    return 1;
}

const void *sq_spq_model_tensor(const sq_spq_model *model, const char *name) {
    tensor_field field;
    if (model->layers == NULL || !resolve((sq_spq_model *)model, name, &field)) {
        return NULL;
    }
    if (field.f32 != NULL) {
        return *field.f32;
    }
    if (field.q4 != NULL) {
        return *field.q4;
    }
    return *field.table_data;
}

/* Returns the index of the first value that is not finite (or negative when non_negative), or -1. */
static int64_t find_invalid(const float *values, int64_t count, int non_negative) {
    for (int64_t i = 0; i < count; i++) {
        if (!isfinite(values[i]) || (non_negative && values[i] < 0.0f)) {
            return i;
        }
    }
    return -1;
}

sq_status sq_spq_model_bind(sq_spq_model *m, const sq_spq_layout *layout, const uint8_t *base,
                            const uint64_t *section_offsets, sq_spq_failure *failure, sq_error *err) {
    if (m->layers == NULL) {
        m->layers = calloc((size_t)m->config.n_layers, sizeof(sq_spq_layer));
        if (m->layers == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d layers", m->config.n_layers);
        }
    }
    for (int32_t i = 0; i < layout->n_tensors; i++) {
        const sq_spq_tensor_info *t = &layout->tensors[i];
        const uint8_t *address = base + section_offsets[t->section] + t->offset;
        tensor_field field;
        if (!resolve(m, t->name, &field)) {
            return sq_error_set(err, SQ_ERR_FORMAT, "unknown tensor \"%s\"", t->name);
        }
        if (field.matrix != NULL) {
            field.matrix->rows = (int32_t)t->rows;
            if (field.q4 != NULL) {
                field.matrix->cols = (int32_t)t->cols;
                field.matrix->row_stride = (size_t)t->row_stride;
            } else {
                field.matrix->group = (int32_t)(field.matrix->cols / t->cols);
            }
        }
        if (field.table != NULL && field.table_data != NULL) {
            field.table->dtype = t->dtype;
            field.table->rows = (int32_t)t->rows;
            field.table->cols = (int32_t)t->cols;
        }

        if (field.f32 != NULL) {
            const float *values = (const float *)(const void *)address;
            int scales = strstr(t->name, ".scales") != NULL;
            int64_t bad = find_invalid(values, t->rows * t->cols, scales);
            if (bad >= 0) {
                int32_t layer;
                if (failure != NULL) {
                    failure->section = t->section;
                    failure->kind = sq_spq_expected_kind(t->section, m->config.n_layers, &layer);
                    failure->layer = layer;
                }
                return sq_error_set(err, SQ_ERR_FORMAT, "section %d: tensor %s has the invalid value %g at index %lld",
                                    t->section, t->name, (double)values[bad], (long long)bad);
            }
            *field.f32 = values;
        } else if (field.q4 != NULL) {
            *field.q4 = address;
        } else {
            *field.table_data = address;
        }
    }
    return SQ_OK;
}
