/* Forward and backward passes of RMSNorm, RoPE, attention, SwiGLU, cross-entropy and the
 * fake quantizer, in double precision. */
#include "learn/learn_ops.h"

#include <math.h>
#include <string.h>

/* ---- RMSNorm ---- */

void sq_learn_rmsnorm_forward(double *y, double *inverse_rms, const double *x, const float *gain, int32_t rows,
                              int32_t n, double eps) {
    for (int32_t r = 0; r < rows; r++) {
        const double *xr = x + (int64_t)r * n;
        double *yr = y + (int64_t)r * n;
        double sum_squares = 0.0;
        for (int32_t i = 0; i < n; i++) {
            sum_squares += xr[i] * xr[i];
        }
        double inv = 1.0 / sqrt(sum_squares / n + eps);
        inverse_rms[r] = inv;
        for (int32_t i = 0; i < n; i++) {
            yr[i] = gain != NULL ? (double)gain[i] * (inv * xr[i]) : inv * xr[i];
        }
    }
}

void sq_learn_rmsnorm_backward(double *d_x, const double *d_y, const double *x, const double *inverse_rms,
                               const float *gain, int32_t rows, int32_t n) {
    for (int32_t r = 0; r < rows; r++) {
        const double *xr = x + (int64_t)r * n;
        const double *dyr = d_y + (int64_t)r * n;
        double *dxr = d_x + (int64_t)r * n;
        double inv = inverse_rms[r];

        /* dx_j = inv·(g_j·dy_j − x_j·inv²·Σ_i g_i·dy_i·x_i / n) */
        double dot = 0.0;
        for (int32_t i = 0; i < n; i++) {
            double g = gain != NULL ? (double)gain[i] : 1.0;
            dot += g * dyr[i] * xr[i];
        }
        double coefficient = inv * inv * dot / n;
        for (int32_t i = 0; i < n; i++) {
            double g = gain != NULL ? (double)gain[i] : 1.0;
            dxr[i] += inv * (g * dyr[i] - xr[i] * coefficient);
        }
    }
}

/* ---- RoPE ---- */

/* Rotates every pair by +angle (direction 1) or −angle (direction -1). */
static void rope_rotate(double *x, const double *cos_table, const double *sin_table, int32_t rows, int32_t n_heads,
                        int32_t head_dim, double direction) {
    int32_t half = head_dim / 2;
    for (int32_t r = 0; r < rows; r++) {
        const double *c = cos_table + (int64_t)r * half;
        const double *s = sin_table + (int64_t)r * half;
        for (int32_t h = 0; h < n_heads; h++) {
            double *head = x + ((int64_t)r * n_heads + h) * head_dim;
            for (int32_t i = 0; i < half; i++) {
                double x0 = head[2 * i];
                double x1 = head[2 * i + 1];
                double sine = direction * s[i];
                head[2 * i] = x0 * c[i] - x1 * sine;
                head[2 * i + 1] = x0 * sine + x1 * c[i];
            }
        }
    }
}

void sq_learn_rope_forward(double *x, const double *cos_table, const double *sin_table, int32_t rows,
                           int32_t n_heads, int32_t head_dim) {
    rope_rotate(x, cos_table, sin_table, rows, n_heads, head_dim, 1.0);
}

void sq_learn_rope_backward(double *d_x, const double *cos_table, const double *sin_table, int32_t rows,
                            int32_t n_heads, int32_t head_dim) {
    /* The transpose of a plane rotation is the rotation by the opposite angle. */
    rope_rotate(d_x, cos_table, sin_table, rows, n_heads, head_dim, -1.0);
}

/* ---- attention ---- */

typedef struct attention_task {
    double *out;
    double *probabilities;
    double *d_q;
    double *d_k;
    double *d_v;
    const double *d_out;
    const double *q;
    const double *k;
    const double *v;
    const sq_learn_attention_shape *shape;
} attention_task;

static void attention_forward_head(void *context, int h, int n_tasks) {
    const attention_task *t = context;
    const sq_learn_attention_shape *s = t->shape;
    (void)n_tasks;
    int32_t hd = s->head_dim;
    int64_t q_width = (int64_t)s->n_heads * hd;
    int64_t kv_width = (int64_t)s->n_kv_heads * hd;
    int32_t g = h / (s->n_heads / s->n_kv_heads);
    double scale = 1.0 / sqrt((double)hd);

    for (int32_t tok = 0; tok < s->tokens; tok++) {
        const double *q = t->q + tok * q_width + (int64_t)h * hd;
        double *p_row = t->probabilities + ((int64_t)h * s->tokens + tok) * s->tokens;
        double max_score = -INFINITY;
        for (int32_t p = 0; p <= tok; p++) {
            const double *k = t->k + p * kv_width + (int64_t)g * hd;
            double dot = 0.0;
            for (int32_t i = 0; i < hd; i++) {
                dot += q[i] * k[i];
            }
            p_row[p] = dot * scale;
            max_score = p_row[p] > max_score ? p_row[p] : max_score;
        }
        double sum = 0.0;
        for (int32_t p = 0; p <= tok; p++) {
            p_row[p] = exp(p_row[p] - max_score);
            sum += p_row[p];
        }
        double *o = t->out + tok * q_width + (int64_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(double));
        for (int32_t p = 0; p <= tok; p++) {
            p_row[p] /= sum;
            const double *v = t->v + p * kv_width + (int64_t)g * hd;
            for (int32_t i = 0; i < hd; i++) {
                o[i] += p_row[p] * v[i];
            }
        }
    }
}

void sq_learn_attention_forward(sq_threadpool *pool, double *out, double *probabilities, const double *q,
                                const double *k, const double *v, const sq_learn_attention_shape *shape) {
    attention_task task = {out, probabilities, NULL, NULL, NULL, NULL, q, k, v, shape};
    sq_threadpool_run(pool, attention_forward_head, &task, shape->n_heads);
}

/* One task per KV head g: it owns d_k and d_v of g and d_q of the query heads reading g. */
static void attention_backward_group(void *context, int g, int n_tasks) {
    const attention_task *t = context;
    const sq_learn_attention_shape *s = t->shape;
    (void)n_tasks;
    int32_t hd = s->head_dim;
    int64_t q_width = (int64_t)s->n_heads * hd;
    int64_t kv_width = (int64_t)s->n_kv_heads * hd;
    int32_t group = s->n_heads / s->n_kv_heads;
    double scale = 1.0 / sqrt((double)hd);

    for (int32_t h = g * group; h < (g + 1) * group; h++) {
        for (int32_t tok = 0; tok < s->tokens; tok++) {
            const double *p_row = t->probabilities + ((int64_t)h * s->tokens + tok) * s->tokens;
            const double *d_o = t->d_out + tok * q_width + (int64_t)h * hd;
            const double *q = t->q + tok * q_width + (int64_t)h * hd;
            double *d_q = t->d_q + tok * q_width + (int64_t)h * hd;

            /* dP_p = d_o·v_p, and Σ_p P_p·dP_p for the softmax backward. */
            double weighted = 0.0;
            for (int32_t p = 0; p <= tok; p++) {
                const double *v = t->v + p * kv_width + (int64_t)g * hd;
                double d_p = 0.0;
                for (int32_t i = 0; i < hd; i++) {
                    d_p += d_o[i] * v[i];
                }
                weighted += p_row[p] * d_p;
            }
            for (int32_t p = 0; p <= tok; p++) {
                const double *v = t->v + p * kv_width + (int64_t)g * hd;
                const double *k = t->k + p * kv_width + (int64_t)g * hd;
                double *d_k = t->d_k + p * kv_width + (int64_t)g * hd;
                double *d_v = t->d_v + p * kv_width + (int64_t)g * hd;
                double d_p = 0.0;
                for (int32_t i = 0; i < hd; i++) {
                    d_p += d_o[i] * v[i];
                }
                double d_score = p_row[p] * (d_p - weighted) * scale;
                for (int32_t i = 0; i < hd; i++) {
                    d_q[i] += d_score * k[i];
                    d_k[i] += d_score * q[i];
                    d_v[i] += p_row[p] * d_o[i];
                }
            }
        }
    }
}

void sq_learn_attention_backward(sq_threadpool *pool, double *d_q, double *d_k, double *d_v, const double *d_out,
                                 const double *probabilities, const double *q, const double *k, const double *v,
                                 const sq_learn_attention_shape *shape) {
    attention_task task = {NULL, (double *)probabilities, d_q, d_k, d_v, d_out, q, k, v, shape};
    sq_threadpool_run(pool, attention_backward_group, &task, shape->n_kv_heads);
}

/* ---- SwiGLU ---- */

void sq_learn_swiglu_forward(double *out, const double *gate, const double *up, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        double sigmoid = 1.0 / (1.0 + exp(-gate[i]));
        out[i] = gate[i] * sigmoid * up[i];
    }
}

void sq_learn_swiglu_backward(double *d_gate, double *d_up, const double *d_out, const double *gate, const double *up,
                              int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        double sigmoid = 1.0 / (1.0 + exp(-gate[i]));
        double silu = gate[i] * sigmoid;
        /* silu'(x) = sigmoid(x)·(1 + x·(1 − sigmoid(x))) */
        double silu_derivative = sigmoid * (1.0 + gate[i] * (1.0 - sigmoid));
        d_gate[i] += d_out[i] * up[i] * silu_derivative;
        d_up[i] += d_out[i] * silu;
    }
}

/* ---- cross-entropy ---- */

sq_status sq_learn_cross_entropy_forward_backward(double *logits, const int32_t *targets, int32_t rows,
                                                  int32_t vocab_size, double gradient_scale, double *loss_sum,
                                                  sq_error *err) {
    for (int32_t r = 0; r < rows; r++) {
        double *row = logits + (int64_t)r * vocab_size;
        int32_t target = targets[r];
        if (target < 0 || target >= vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "target token %d is outside the vocabulary of %d", target,
                                vocab_size);
        }
        double max_logit = -INFINITY;
        for (int32_t i = 0; i < vocab_size; i++) {
            if (!isfinite(row[i])) {
                return sq_error_set(err, SQ_ERR_NUMERIC, "logit %d of row %d is %g, expected a finite value", i, r,
                                    row[i]);
            }
            max_logit = row[i] > max_logit ? row[i] : max_logit;
        }
        double sum = 0.0;
        for (int32_t i = 0; i < vocab_size; i++) {
            sum += exp(row[i] - max_logit);
        }
        double log_sum = log(sum) + max_logit;
        *loss_sum += log_sum - row[target];
        for (int32_t i = 0; i < vocab_size; i++) {
            row[i] = gradient_scale * exp(row[i] - log_sum);
        }
        row[target] -= gradient_scale;
    }
    return SQ_OK;
}

/* ---- fake quantization ---- */

sq_status sq_learn_fake_quant_forward(double *x, int64_t rows, int32_t cols, const sq_act_quant_params *params,
                                      float *scratch, sq_error *err) {
    if (params->bits >= SQ_ACT_BITS_FULL) {
        return SQ_OK;
    }
    for (int64_t r = 0; r < rows; r++) {
        double *row = x + r * cols;
        for (int32_t i = 0; i < cols; i++) {
            scratch[i] = (float)row[i];
        }
        sq_status status = sq_quant_act_fake(scratch, 1, cols, params, err);
        if (status != SQ_OK) {
            return status;
        }
        for (int32_t i = 0; i < cols; i++) {
            row[i] = (double)scratch[i];
        }
    }
    return SQ_OK;
}
