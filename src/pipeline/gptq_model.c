/* Sequential GPTQ: residual streams of the calibration windows are kept between layers, and
 * each layer is re-run once per quantization stage to collect the Hessian of the next input. */
#include "pipeline/gptq_model.h"

#include <stdlib.h>
#include <string.h>

#include "forward/forward.h"

#define GPTQ_BATCH 64

typedef struct capture_context {
    sq_fake_quant online;     /* rotations only: every bit width is 16 */
    sq_forward_point point;   /* the input whose Hessian is collected */
    int32_t layer;
    double *hessian;          /* (cols, cols) */
    long n_seen;
    sq_status status;         /* first failure of sq_gptq_hessian_add */
    sq_error error;
} capture_context;

static void capture_hook(void *context, sq_forward_point point, int32_t layer, float *data, int32_t rows,
                         int32_t cols) {
    capture_context *c = context;
    sq_fake_quant_hook(&c->online, point, layer, data, rows, cols);
    if (point == c->point && layer == c->layer && c->status == SQ_OK) {
        c->status = sq_gptq_hessian_add(c->hessian, data, rows, cols, &c->n_seen, &c->error);
    }
}

/* Runs layer over every window, reading the residual streams from streams and, when
 * write_back is set, storing the layer's outputs there. */
static sq_status run_layer(sq_run_state *state, int32_t layer, float *streams, int32_t n_windows, int32_t window,
                           int write_back, sq_error *err) {
    int32_t dim = state->model->config.dim;
    for (int32_t w = 0; w < n_windows; w++) {
        for (int32_t start = 0; start < window; start += GPTQ_BATCH) {
            int32_t batch = window - start < GPTQ_BATCH ? window - start : GPTQ_BATCH;
            float *x = streams + ((int64_t)w * window + start) * dim;
            memcpy(state->x, x, (size_t)batch * dim * sizeof(float));
            sq_status status = sq_forward_layer(state, layer, batch, start, err);
            if (status != SQ_OK) {
                return status;
            }
            if (write_back) {
                memcpy(x, state->x, (size_t)batch * dim * sizeof(float));
            }
        }
    }
    return SQ_OK;
}

typedef struct quant_stage {
    sq_forward_point point;
    int32_t cols;
    float *weights[3];
    int32_t rows[3];
    const char *names[3];
} quant_stage;

sq_status sq_gptq_model(sq_model *model, const sq_fake_quant *online, const int32_t *calibration, int32_t n_windows,
                        int32_t window, const sq_gptq_params *params, sq_threadpool *pool, const sq_logger *logger,
                        sq_error *err) {
    const sq_config *c = &model->config;
    if (n_windows < 1 || window < 2) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "GPTQ needs at least one calibration window of 2 or more tokens (got %d of %d)",
                            n_windows, window);
    }
    int32_t q_dim = c->n_heads * c->head_dim;
    int32_t kv_dim = c->n_kv_heads * c->head_dim;
    int32_t widest = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    widest = widest > q_dim ? widest : q_dim;

    capture_context capture = {0};
    capture.online = *online;
    capture.online.act.bits = 16;
    capture.online.act_heads.bits = 16;
    capture.online.kv.bits = 16;
    sq_run_state *state = NULL;
    size_t stream_floats = (size_t)n_windows * (size_t)window * (size_t)c->dim;
    float *streams = malloc(stream_floats * sizeof(float));
    capture.hessian = malloc((size_t)widest * (size_t)widest * sizeof(double));
    sq_status status = SQ_OK;
    if (streams == NULL || capture.hessian == NULL) {
        status = sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu MiB for GPTQ calibration streams; use fewer samples",
                              (stream_floats * sizeof(float) + (size_t)widest * widest * sizeof(double)) >> 20);
    }
    if (status == SQ_OK) {
        status = sq_run_state_create(model, window, GPTQ_BATCH, pool, &state, err);
    }

    /* ---- embeddings of every calibration token ---- */
    for (int64_t t = 0; status == SQ_OK && t < (int64_t)n_windows * window; t++) {
        int32_t token = calibration[t];
        if (token < 0 || token >= c->vocab_size) {
            status = sq_error_set(err, SQ_ERR_INVALID_ARG, "calibration token %d is outside the vocabulary", token);
            break;
        }
        memcpy(streams + t * c->dim, model->token_embedding + (int64_t)token * c->dim, (size_t)c->dim * sizeof(float));
    }
    if (status == SQ_OK) {
        state->hooks.fn = capture_hook;
        state->hooks.context = &capture;
    }

    /* ---- layer by layer, stage by stage ---- */
    for (int32_t l = 0; status == SQ_OK && l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        quant_stage stages[4] = {
            {SQ_POINT_ATTN_INPUT, c->dim, {w->wk, w->wv, w->wq}, {kv_dim, kv_dim, q_dim}, {"k_proj", "v_proj", "q_proj"}},
            {SQ_POINT_ATTN_OUTPUT, q_dim, {w->wo, NULL, NULL}, {c->dim, 0, 0}, {"o_proj", NULL, NULL}},
            {SQ_POINT_MLP_INPUT, c->dim, {w->w_up, w->w_gate, NULL}, {c->hidden_dim, c->hidden_dim, 0}, {"up_proj", "gate_proj", NULL}},
            {SQ_POINT_DOWN_INPUT, c->hidden_dim, {w->w_down, NULL, NULL}, {c->dim, 0, 0}, {"down_proj", NULL, NULL}},
        };
        for (int s = 0; status == SQ_OK && s < 4; s++) {
            capture.point = stages[s].point;
            capture.layer = l;
            capture.n_seen = 0;
            memset(capture.hessian, 0, (size_t)stages[s].cols * stages[s].cols * sizeof(double));
            status = run_layer(state, l, streams, n_windows, window, 0, err);
            if (status == SQ_OK && capture.status != SQ_OK) {
                *err = capture.error;
                status = capture.status;
            }
            for (int m = 0; status == SQ_OK && m < 3 && stages[s].weights[m] != NULL; m++) {
                status = sq_gptq_quantize(stages[s].weights[m], stages[s].rows[m], stages[s].cols, capture.hessian, params, err);
                if (status != SQ_OK) {
                    char cause[SQ_ERROR_MESSAGE_MAX];
                    memcpy(cause, err->message, sizeof(cause));
                    sq_error_set(err, status, "GPTQ failed on layer %d %s: %s", l, stages[s].names[m], cause);
                }
            }
        }
        capture.point = SQ_POINT_COUNT;
        if (status == SQ_OK) {
            status = run_layer(state, l, streams, n_windows, window, 1, err);
        }
        SQ_LOG_INFO_F(logger, "GPTQ: layer %d of %d quantized", l + 1, c->n_layers);
    }

    sq_run_state_free(state);
    free(streams);
    free(capture.hessian);
    return status;
}
