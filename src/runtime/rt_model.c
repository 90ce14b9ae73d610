/* Preparing a .spq model for the integer runtime. */
#include "runtime/rt_model.h"

#include <stdlib.h>
#include <string.h>

#include "spq/spq_half.h"
#include "spq/spq_reader.h"

static int32_t gcd(int32_t a, int32_t b) {
    while (b != 0) {
        int32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

sq_status sq_rt_matrix_prepare(const sq_spq_qmatrix *w, int32_t act_group, sq_rt_matrix *m, size_t *bytes,
                               sq_error *err) {
    m->weights = w;
    m->act_group = act_group;
    m->kernel_group = gcd(w->group, act_group);
    m->n_kernel_groups = w->cols / m->kernel_group;
    size_t count = (size_t)w->rows * (size_t)m->n_kernel_groups;
    m->weight_sums = malloc(count * sizeof(int32_t));
    if (m->weight_sums == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu weight sums", count);
    }
    *bytes += count * sizeof(int32_t);
    for (int32_t r = 0; r < w->rows; r++) {
        const uint8_t *row = w->codes + (size_t)r * w->row_stride;
        for (int32_t g = 0; g < m->n_kernel_groups; g++) {
            int32_t begin = g * m->kernel_group;
            int32_t end = begin + m->kernel_group;
            int32_t sum = 0;
            if (m->kernel_group % SQ_Q4_BLOCK == 0) {
                /* Whole blocks: each byte contains two nibbles of the group, each code + 8. */
                for (size_t i = (size_t)begin / 2; i < (size_t)end / 2; i++) {
                    sum += (row[i] & 15) + (row[i] >> 4) - 16;
                }
            } else {
                for (int32_t c = begin; c < end; c++) {
                    sum += sq_q4_get_weight(row, c);
                }
            }
            m->weight_sums[(size_t)r * (size_t)m->n_kernel_groups + (size_t)g] = sum;
        }
    }
    return SQ_OK;
}

static sq_status expand_half(const sq_spq_table *table, float **out, size_t *bytes, sq_error *err) {
    size_t count = (size_t)table->rows * (size_t)table->cols;
    *out = malloc(count * sizeof(float));
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu bytes for an fp32 copy of an fp16 table",
                            count * sizeof(float));
    }
    const uint16_t *half = table->data;
    for (size_t i = 0; i < count; i++) {
        (*out)[i] = sq_half_to_float(half[i]);
    }
    *bytes += count * sizeof(float);
    return SQ_OK;
}

static sq_status prepare(sq_rt_model *m, const sq_logger *logger, sq_error *err) {
    const sq_config *c = &m->spq.config;
    m->kernels = sq_qdot_select();
    m->layers = calloc((size_t)c->n_layers, sizeof(sq_rt_layer));
    if (m->layers == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d layers", c->n_layers);
    }
    sq_status status = SQ_OK;
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        const sq_spq_layer *w = &m->spq.layers[l];
        sq_rt_layer *r = &m->layers[l];
        size_t *bytes = &m->derived_bytes;
        if ((status = sq_rt_matrix_prepare(&w->wq, c->dim, &r->wq, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->wk, c->dim, &r->wk, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->wv, c->dim, &r->wv, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->wo, c->head_dim, &r->wo, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->w_gate, c->dim, &r->w_gate, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->w_up, c->dim, &r->w_up, bytes, err)) ||
            (status = sq_rt_matrix_prepare(&w->w_down, c->hidden_dim, &r->w_down, bytes, err))) {
            break;
        }
    }
    if (status == SQ_OK && m->spq.embedding.dtype == SQ_SPQ_DTYPE_F16) {
        status = expand_half(&m->spq.embedding, &m->embedding_f32, &m->derived_bytes, err);
    }
    if (status == SQ_OK && m->spq.classifier_kind == SQ_SPQ_CLASSIFIER_SEPARATE &&
        m->spq.classifier.dtype == SQ_SPQ_DTYPE_F16) {
        status = expand_half(&m->spq.classifier, &m->classifier_f32, &m->derived_bytes, err);
    }
    if (status == SQ_OK && m->spq.settings.mode_had) {
        status = sq_hadamard_plan_create(c->head_dim, m->spq.settings.online_seed, logger, &m->r3, err);
        if (status == SQ_OK) {
            status = sq_hadamard_plan_create(c->hidden_dim, m->spq.settings.online_seed, logger, &m->r4, err);
        }
    }
    return status;
}

sq_status sq_rt_model_create(sq_spq_model *spq, const sq_logger *logger, sq_rt_model **out, sq_error *err) {
    *out = NULL;
    sq_rt_model *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        sq_spq_model_free(spq);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the runtime model");
    }
    m->spq = *spq;
    memset(spq, 0, sizeof(*spq));
    if (m->spq.tokenizer == NULL) {
        sq_rt_model_free(m);
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "the .spq model has no tokenizer");
    }
    sq_status status = prepare(m, logger, err);
    if (status != SQ_OK) {
        sq_rt_model_free(m);
        return status;
    }
    *out = m;
    return SQ_OK;
}

sq_status sq_rt_model_load(const char *path, const sq_logger *logger, sq_rt_model **out, sq_spq_failure *failure,
                           sq_error *err) {
    sq_spq_model spq;
    sq_status status = sq_spq_load_file(path, &spq, failure, err);
    if (status != SQ_OK) {
        *out = NULL;
        return status;
    }
    status = sq_rt_model_create(&spq, logger, out, err);
    if (status == SQ_OK) {
        const sq_config *c = &(*out)->spq.config;
        const sq_spq_settings *s = &(*out)->spq.settings;
        SQ_LOG_INFO_F(logger, "loaded '%s': W%dA%dKV%d, %s, dim %d, %d layers, vocab %d, %s kernels", path, s->w_bits,
                      s->a_bits, s->kv_bits, s->mode_had ? "had" : "nohad", c->dim, c->n_layers, c->vocab_size,
                      sq_kernel_isa_name((*out)->kernels->isa));
    }
    return status;
}

void sq_rt_matrix_free(sq_rt_matrix *m) {
    free(m->weight_sums);
}

void sq_rt_model_free(sq_rt_model *m) {
    if (m == NULL) {
        return;
    }
    for (int32_t l = 0; m->layers != NULL && l < m->spq.config.n_layers; l++) {
        sq_rt_layer *r = &m->layers[l];
        sq_rt_matrix_free(&r->wq);
        sq_rt_matrix_free(&r->wk);
        sq_rt_matrix_free(&r->wv);
        sq_rt_matrix_free(&r->wo);
        sq_rt_matrix_free(&r->w_gate);
        sq_rt_matrix_free(&r->w_up);
        sq_rt_matrix_free(&r->w_down);
    }
    free(m->layers);
    free(m->embedding_f32);
    free(m->classifier_f32);
    sq_hadamard_plan_free(m->r3);
    sq_hadamard_plan_free(m->r4);
    sq_spq_model_free(&m->spq);
    free(m);
}

sq_status sq_rt_model_set_kernels(sq_rt_model *m, sq_kernel_isa isa, sq_error *err) {
    const sq_qdot_kernels *kernels = sq_qdot_kernels_for(isa);
    if (kernels == NULL) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "the %s kernels are not available in this build or on this CPU",
                            sq_kernel_isa_name(isa));
    }
    m->kernels = kernels;
    return SQ_OK;
}

size_t sq_rt_model_bytes(const sq_rt_model *m) {
    return m->spq.storage_size + m->derived_bytes;
}
