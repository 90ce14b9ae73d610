/* Tests of the fp32 forward pass (src/forward) and of the perplexity evaluation
 * (src/eval/perplexity.c). Tiny random models are built here, and a naive reference forward
 * written in this file (double precision, one token at a time, its own KV cache) gives the
 * expected logits. Batched prefill must give the same bits as token-by-token decoding, and the
 * tiled matrix product the same bits as the scalar dot product. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/threadpool.h"
#include "eval/perplexity.h"
#include "forward/forward.h"
#include "forward/matmul.h"
#include "model/model.h"
#include "test_util.h"

/* ---- test data: SplitMix64 and Box-Muller, independent of the engine's generator ---- */

static uint64_t random_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double random_uniform(uint64_t *state) {
    return (double)(random_next(state) >> 11) / 9007199254740992.0;
}

static double random_gaussian(uint64_t *state) {
    double u = 1.0 - random_uniform(state);
    double v = random_uniform(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void fill_gaussian(float *x, size_t count, double scale, uint64_t *state) {
    for (size_t i = 0; i < count; i++) {
        x[i] = (float)(scale * random_gaussian(state));
    }
}

/* Norm gains around 1 so that a forgotten gain changes the output. */
static void fill_gain(float *x, size_t count, uint64_t *state) {
    for (size_t i = 0; i < count; i++) {
        x[i] = (float)(1.0 + 0.3 * random_gaussian(state));
    }
}

static sq_config tiny_config(void) {
    sq_config c = {0};
    c.dim = 16;
    c.hidden_dim = 24;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 32;
    c.context_length = 64;
    c.rope_theta = 10000.0f;
    c.norm_eps = 1e-5f;
    return c;
}

/* A second shape: q_dim (30) differs from dim (20), one KV head for five query heads, widths
 * that are not multiples of 8. */
static sq_config odd_config(void) {
    sq_config c = {0};
    c.dim = 20;
    c.hidden_dim = 36;
    c.n_layers = 3;
    c.n_heads = 5;
    c.n_kv_heads = 1;
    c.head_dim = 6;
    c.vocab_size = 37;
    c.context_length = 48;
    c.rope_theta = 500.0f;
    c.norm_eps = 1e-6f;
    return c;
}

static int build_random_model(sq_model *model, const sq_config *config, int tied, uint64_t seed) {
    memset(model, 0, sizeof(*model));
    model->config = *config;
    sq_error err = {0};
    if (sq_model_alloc_weights(model, tied, &err) != SQ_OK) {
        fprintf(stderr, "sq_model_alloc_weights: %s\n", err.message);
        return 0;
    }
    const sq_config *c = config;
    size_t dim = (size_t)c->dim;
    size_t q_dim = (size_t)c->n_heads * (size_t)c->head_dim;
    size_t kv_dim = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t hidden = (size_t)c->hidden_dim;
    uint64_t state = seed;
    fill_gaussian(model->token_embedding, (size_t)c->vocab_size * dim, 1.0, &state);
    for (int32_t l = 0; l < c->n_layers; l++) {
        sq_layer_weights *w = &model->layers[l];
        fill_gain(w->attn_norm, dim, &state);
        fill_gaussian(w->wq, q_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wk, kv_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wv, kv_dim * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->wo, dim * q_dim, 1.0 / sqrt((double)q_dim), &state);
        fill_gain(w->ffn_norm, dim, &state);
        fill_gaussian(w->w_gate, hidden * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->w_up, hidden * dim, 1.0 / sqrt((double)dim), &state);
        fill_gaussian(w->w_down, dim * hidden, 1.0 / sqrt((double)hidden), &state);
    }
    fill_gain(model->final_norm, dim, &state);
    if (!tied) {
        fill_gaussian(model->classifier, (size_t)c->vocab_size * dim, 1.0 / sqrt((double)dim), &state);
    }
    return 1;
}

static void random_tokens(int32_t *tokens, int n, int32_t vocab, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        tokens[i] = (int32_t)(random_next(&seed) % (uint64_t)vocab);
    }
}

/* ---- naive reference forward, double precision, one token at a time ---- */

typedef struct reference {
    const sq_model *model;
    int32_t capacity;
    double *keys;   /* (n_layers, capacity, kv_dim) */
    double *values; /* (n_layers, capacity, kv_dim) */
} reference;

static void reference_init(reference *r, const sq_model *model, int32_t capacity) {
    const sq_config *c = &model->config;
    size_t size = (size_t)c->n_layers * (size_t)capacity * (size_t)(c->n_kv_heads * c->head_dim);
    r->model = model;
    r->capacity = capacity;
    r->keys = calloc(size, sizeof(double));
    r->values = calloc(size, sizeof(double));
}

static void reference_free(reference *r) {
    free(r->keys);
    free(r->values);
}

static void rms_norm_double(double *y, const double *x, const float *gain, int n, double eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        sum += x[i] * x[i];
    }
    double inverse = 1.0 / sqrt(sum / n + eps);
    for (int i = 0; i < n; i++) {
        y[i] = x[i] * inverse * (double)gain[i];
    }
}

/* y (rows) = W (rows, cols) · x (cols) */
static void matvec_double(double *y, const float *w, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double sum = 0.0;
        for (int k = 0; k < cols; k++) {
            sum += (double)w[(size_t)r * cols + k] * x[k];
        }
        y[r] = sum;
    }
}

/* Rotates pairs (2i, 2i+1) of each head by pos * theta^(-2i / head_dim). */
static void rope_double(double *x, int n_heads, int head_dim, int pos, double theta) {
    for (int h = 0; h < n_heads; h++) {
        for (int i = 0; i < head_dim / 2; i++) {
            double angle = pos * pow(theta, -2.0 * i / head_dim);
            double x0 = x[h * head_dim + 2 * i];
            double x1 = x[h * head_dim + 2 * i + 1];
            x[h * head_dim + 2 * i] = x0 * cos(angle) - x1 * sin(angle);
            x[h * head_dim + 2 * i + 1] = x0 * sin(angle) + x1 * cos(angle);
        }
    }
}

/* Runs token at position pos (earlier positions must have run) and writes vocab_size logits. */
static void reference_step(reference *r, int32_t token, int pos, double *logits) {
    const sq_model *m = r->model;
    const sq_config *c = &m->config;
    int dim = c->dim;
    int hd = c->head_dim;
    int q_dim = c->n_heads * hd;
    int kv_dim = c->n_kv_heads * hd;
    int group = c->n_heads / c->n_kv_heads;
    double *x = malloc((size_t)dim * sizeof(double));
    double *xb = malloc((size_t)dim * sizeof(double));
    double *delta = malloc((size_t)dim * sizeof(double));
    double *q = malloc((size_t)q_dim * sizeof(double));
    double *k = malloc((size_t)kv_dim * sizeof(double));
    double *v = malloc((size_t)kv_dim * sizeof(double));
    double *attn = malloc((size_t)q_dim * sizeof(double));
    double *gate = malloc((size_t)c->hidden_dim * sizeof(double));
    double *up = malloc((size_t)c->hidden_dim * sizeof(double));
    double *scores = malloc((size_t)(pos + 1) * sizeof(double));

    for (int i = 0; i < dim; i++) {
        x[i] = m->token_embedding[(size_t)token * dim + i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        const sq_layer_weights *w = &m->layers[l];
        double *layer_keys = r->keys + (size_t)l * r->capacity * kv_dim;
        double *layer_values = r->values + (size_t)l * r->capacity * kv_dim;

        rms_norm_double(xb, x, w->attn_norm, dim, c->norm_eps);
        matvec_double(q, w->wq, xb, q_dim, dim);
        matvec_double(k, w->wk, xb, kv_dim, dim);
        matvec_double(v, w->wv, xb, kv_dim, dim);
        rope_double(q, c->n_heads, hd, pos, c->rope_theta);
        rope_double(k, c->n_kv_heads, hd, pos, c->rope_theta);
        memcpy(layer_keys + (size_t)pos * kv_dim, k, (size_t)kv_dim * sizeof(double));
        memcpy(layer_values + (size_t)pos * kv_dim, v, (size_t)kv_dim * sizeof(double));

        for (int h = 0; h < c->n_heads; h++) {
            int kv_head = h / group;
            double max_score = -INFINITY;
            for (int p = 0; p <= pos; p++) {
                double dot = 0.0;
                for (int i = 0; i < hd; i++) {
                    dot += q[h * hd + i] * layer_keys[(size_t)p * kv_dim + kv_head * hd + i];
                }
                scores[p] = dot / sqrt((double)hd);
                max_score = fmax(max_score, scores[p]);
            }
            double sum = 0.0;
            for (int p = 0; p <= pos; p++) {
                scores[p] = exp(scores[p] - max_score);
                sum += scores[p];
            }
            for (int i = 0; i < hd; i++) {
                double out = 0.0;
                for (int p = 0; p <= pos; p++) {
                    out += scores[p] / sum * layer_values[(size_t)p * kv_dim + kv_head * hd + i];
                }
                attn[h * hd + i] = out;
            }
        }
        matvec_double(delta, w->wo, attn, dim, q_dim);
        for (int i = 0; i < dim; i++) {
            x[i] += delta[i];
        }

        rms_norm_double(xb, x, w->ffn_norm, dim, c->norm_eps);
        matvec_double(gate, w->w_gate, xb, c->hidden_dim, dim);
        matvec_double(up, w->w_up, xb, c->hidden_dim, dim);
        for (int i = 0; i < c->hidden_dim; i++) {
            gate[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i];
        }
        matvec_double(delta, w->w_down, gate, dim, c->hidden_dim);
        for (int i = 0; i < dim; i++) {
            x[i] += delta[i];
        }
    }
    rms_norm_double(xb, x, m->final_norm, dim, c->norm_eps);
    matvec_double(logits, m->classifier, xb, c->vocab_size, dim);

    free(x);
    free(xb);
    free(delta);
    free(q);
    free(k);
    free(v);
    free(attn);
    free(gate);
    free(up);
    free(scores);
}

/* Logits of every position of tokens (n), (n, vocab_size), from the reference. */
static double *reference_logits(const sq_model *model, const int32_t *tokens, int n) {
    int32_t vocab = model->config.vocab_size;
    double *logits = malloc((size_t)n * (size_t)vocab * sizeof(double));
    reference r;
    reference_init(&r, model, n);
    for (int pos = 0; pos < n; pos++) {
        reference_step(&r, tokens[pos], pos, logits + (size_t)pos * vocab);
    }
    reference_free(&r);
    return logits;
}

/* Runs tokens (n) through sq_forward in batches of `batch` and returns every position's
 * logits (n, vocab_size), or NULL on failure. */
static float *engine_logits(const sq_model *model, const int32_t *tokens, int n, int batch, sq_threadpool *pool) {
    int32_t vocab = model->config.vocab_size;
    sq_run_state *state = NULL;
    sq_error err = {0};
    if (sq_run_state_create(model, n, batch, pool, &state, &err) != SQ_OK) {
        fprintf(stderr, "sq_run_state_create: %s\n", err.message);
        return NULL;
    }
    float *logits = malloc((size_t)n * (size_t)vocab * sizeof(float));
    for (int start = 0; start < n; start += batch) {
        int count = n - start < batch ? n - start : batch;
        if (sq_forward(state, tokens + start, count, start, SQ_LOGITS_ALL, &err) != SQ_OK) {
            fprintf(stderr, "sq_forward: %s\n", err.message);
            free(logits);
            sq_run_state_free(state);
            return NULL;
        }
        memcpy(logits + (size_t)start * vocab, state->logits, (size_t)count * vocab * sizeof(float));
    }
    sq_run_state_free(state);
    return logits;
}

/* Largest |actual - expected| / max(1, |expected|) over count values. */
static double worst_relative_error(const float *actual, const double *expected, size_t count) {
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) {
        double error = fabs((double)actual[i] - expected[i]) / fmax(1.0, fabs(expected[i]));
        worst = isnan(error) ? INFINITY : fmax(worst, error);
    }
    return worst;
}

/* ---- forward pass against the reference ---- */

static void check_against_reference(const sq_config *config, int tied, uint64_t seed) {
    sq_model model;
    CHECK(build_random_model(&model, config, tied, seed));
    enum { N = 23 };
    int32_t tokens[N];
    random_tokens(tokens, N, config->vocab_size, seed + 1);
    double *expected = reference_logits(&model, tokens, N);

    static const int batches[] = {1, 3, 7, N};
    for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
        float *actual = engine_logits(&model, tokens, N, batches[b], NULL);
        CHECK(actual != NULL);
        if (actual != NULL) {
            double error = worst_relative_error(actual, expected, (size_t)N * config->vocab_size);
            CHECK_MSG(error <= 1e-4, "dim %d, batch %d: worst relative logit error %.3g", config->dim, batches[b], error);
        }
        free(actual);
    }
    free(expected);
    sq_model_free(&model);
}

static void test_forward_matches_reference(void) {
    sq_config tiny = tiny_config();
    sq_config odd = odd_config();
    check_against_reference(&tiny, 0, 11);
    check_against_reference(&odd, 0, 12);
}

static void test_forward_tied_classifier_matches_reference(void) {
    sq_config tiny = tiny_config();
    check_against_reference(&tiny, 1, 13);
}

/* Multi-head attention without grouping and a larger head (n_kv_heads == n_heads). */
static void test_forward_mha_matches_reference(void) {
    sq_config c = tiny_config();
    c.dim = 24;
    c.n_heads = 3;
    c.n_kv_heads = 3;
    c.head_dim = 8;
    check_against_reference(&c, 0, 14);
}

/* Batched prefill and token-by-token decoding must give identical bits, with and without
 * worker threads, because every output is one fixed-order dot product. */
static void test_forward_batches_bit_identical(void) {
    sq_config configs[2] = {tiny_config(), odd_config()};
    for (int k = 0; k < 2; k++) {
        sq_model model;
        CHECK(build_random_model(&model, &configs[k], 0, 21 + (uint64_t)k));
        enum { N = 29 };
        int32_t tokens[N];
        random_tokens(tokens, N, configs[k].vocab_size, 22);
        size_t count = (size_t)N * configs[k].vocab_size;
        float *single = engine_logits(&model, tokens, N, 1, NULL);
        CHECK(single != NULL);

        sq_threadpool *pool = NULL;
        sq_error err = {0};
        CHECK(sq_threadpool_create(3, &pool, &err) == SQ_OK);
        static const int batches[] = {1, 2, 3, 7, 16, N};
        for (size_t b = 0; b < sizeof(batches) / sizeof(batches[0]) && single != NULL; b++) {
            for (int threaded = 0; threaded < 2; threaded++) {
                float *batched = engine_logits(&model, tokens, N, batches[b], threaded ? pool : NULL);
                CHECK(batched != NULL);
                if (batched != NULL) {
                    CHECK_MSG(memcmp(batched, single, count * sizeof(float)) == 0,
                              "config %d, batch %d, %s: logits differ from token-by-token", k, batches[b],
                              threaded ? "3 threads" : "serial");
                }
                free(batched);
            }
        }
        sq_threadpool_free(pool);
        free(single);
        sq_model_free(&model);
    }
}

/* SQ_LOGITS_LAST writes the last token's logits to row 0. SQ_LOGITS_NONE still fills the cache,
 * so a later call continues from the same context. */
static void test_forward_logits_modes(void) {
    sq_config c = tiny_config();
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 31));
    enum { N = 12 };
    int32_t tokens[N];
    random_tokens(tokens, N, c.vocab_size, 32);
    float *all = engine_logits(&model, tokens, N, N, NULL);
    CHECK(all != NULL);

    sq_run_state *state = NULL;
    sq_error err = {0};
    CHECK(sq_run_state_create(&model, N, N, NULL, &state, &err) == SQ_OK);
    CHECK(sq_forward(state, tokens, N, 0, SQ_LOGITS_LAST, &err) == SQ_OK);
    if (all != NULL) {
        CHECK(memcmp(state->logits, all + (size_t)(N - 1) * c.vocab_size, (size_t)c.vocab_size * sizeof(float)) == 0);
    }

    CHECK(sq_forward(state, tokens, 8, 0, SQ_LOGITS_NONE, &err) == SQ_OK);
    CHECK(sq_forward(state, tokens + 8, N - 8, 8, SQ_LOGITS_ALL, &err) == SQ_OK);
    if (all != NULL) {
        CHECK(memcmp(state->logits, all + (size_t)8 * c.vocab_size, (size_t)(N - 8) * c.vocab_size * sizeof(float)) == 0);
    }

    sq_run_state_free(state);
    free(all);
    sq_model_free(&model);
}

/* ---- hook points ---- */

typedef struct hook_log {
    int calls[SQ_POINT_COUNT];
    int bad_shape;
    int bad_layer;
    const sq_config *config;
    int expected_rows;
    int classifier_rows;
} hook_log;

static void log_hook(void *context, sq_forward_point point, int32_t layer, float *data, int32_t rows, int32_t cols) {
    hook_log *log = context;
    const sq_config *c = log->config;
    (void)data;
    int32_t widths[SQ_POINT_COUNT] = {
        c->dim, c->n_heads * c->head_dim, c->n_kv_heads * c->head_dim, c->n_kv_heads * c->head_dim,
        c->n_heads * c->head_dim, c->dim, c->hidden_dim, c->dim,
    };
    log->calls[point]++;
    int expected_rows = point == SQ_POINT_CLASSIFIER_INPUT ? log->classifier_rows : log->expected_rows;
    if (cols != widths[point] || rows != expected_rows) {
        log->bad_shape++;
    }
    if ((point == SQ_POINT_CLASSIFIER_INPUT) != (layer == -1) || layer >= c->n_layers) {
        log->bad_layer++;
    }
}

static void test_forward_hook_points(void) {
    sq_config c = odd_config();
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 41));
    int32_t tokens[5] = {1, 2, 3, 4, 5};
    sq_run_state *state = NULL;
    sq_error err = {0};
    CHECK(sq_run_state_create(&model, 16, 8, NULL, &state, &err) == SQ_OK);
    hook_log log = {{0}, 0, 0, &c, 5, 1};
    state->hooks.fn = log_hook;
    state->hooks.context = &log;

    CHECK(sq_forward(state, tokens, 5, 0, SQ_LOGITS_LAST, &err) == SQ_OK);
    for (int p = 0; p < SQ_POINT_CLASSIFIER_INPUT; p++) {
        CHECK_MSG(log.calls[p] == c.n_layers, "point %d called %d times, expected %d", p, log.calls[p], c.n_layers);
    }
    CHECK(log.calls[SQ_POINT_CLASSIFIER_INPUT] == 1);
    CHECK(log.bad_shape == 0);
    CHECK(log.bad_layer == 0);

    memset(log.calls, 0, sizeof(log.calls));
    log.expected_rows = 2;
    log.classifier_rows = 2;
    CHECK(sq_forward(state, tokens, 2, 5, SQ_LOGITS_ALL, &err) == SQ_OK);
    CHECK(log.calls[SQ_POINT_CLASSIFIER_INPUT] == 1);
    CHECK(log.bad_shape == 0);

    memset(log.calls, 0, sizeof(log.calls));
    CHECK(sq_forward(state, tokens, 2, 7, SQ_LOGITS_NONE, &err) == SQ_OK);
    CHECK(log.calls[SQ_POINT_CLASSIFIER_INPUT] == 0);
    CHECK(log.calls[SQ_POINT_DOWN_INPUT] == c.n_layers);

    sq_run_state_free(state);
    sq_model_free(&model);
}

/* ---- argument errors ---- */

static void test_forward_invalid_arguments(void) {
    sq_config c = tiny_config();
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 51));
    sq_run_state *state = NULL;
    sq_error err = {0};
    CHECK(sq_run_state_create(&model, 0, 4, NULL, &state, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_run_state_create(&model, 8, 0, NULL, &state, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_run_state_create(&model, 8, 4, NULL, &state, &err) == SQ_OK);

    int32_t tokens[5] = {1, 2, 3, 4, 5};
    CHECK(sq_forward(state, tokens, 4, 0, SQ_LOGITS_ALL, &err) == SQ_OK);
    CHECK(sq_forward(state, tokens, 4, 4, SQ_LOGITS_ALL, &err) == SQ_OK);

    /* Positions past the capacity of 8. */
    CHECK(sq_forward(state, tokens, 1, 8, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "8") != NULL, "message: %s", err.message);
    CHECK(sq_forward(state, tokens, 2, 7, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_forward(state, tokens, 1, -1, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    /* position + n_tokens overflows int32: run in a child process so that a crash is reported
     * as a failed check instead of ending the test program. */
    fflush(stderr);
    pid_t child = fork();
    if (child == 0) {
        sq_status status = sq_forward(state, tokens, 2, INT32_MAX - 1, SQ_LOGITS_LAST, &err);
        _exit(status == SQ_ERR_INVALID_ARG ? 0 : 1);
    }
    int child_status = 0;
    CHECK(child > 0);
    CHECK(child > 0 && waitpid(child, &child_status, 0) == child);
    CHECK_MSG(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
              "sq_forward at position INT32_MAX - 1 with 2 tokens: %s %d, expected SQ_ERR_INVALID_ARG",
              WIFSIGNALED(child_status) ? "killed by signal" : "exit code",
              WIFSIGNALED(child_status) ? WTERMSIG(child_status) : WEXITSTATUS(child_status));

    /* Batch sizes outside 1..max_batch. */
    CHECK(sq_forward(state, tokens, 0, 0, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_forward(state, tokens, 5, 0, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);

    /* Token ids outside the vocabulary of 32. */
    int32_t too_large[2] = {3, 32};
    CHECK(sq_forward(state, too_large, 2, 0, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "32") != NULL, "message: %s", err.message);
    int32_t negative[1] = {-1};
    CHECK(sq_forward(state, negative, 1, 0, SQ_LOGITS_LAST, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "-1") != NULL, "message: %s", err.message);

    CHECK(sq_forward_layer(state, 2, 1, 0, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_forward_layer(state, -1, 1, 0, &err) == SQ_ERR_INVALID_ARG);

    sq_run_state_free(state);
    sq_model_free(&model);
}

/* ---- RMSNorm and matrix product ---- */

static void test_rmsnorm_hand_values(void) {
    /* x = (3, 4): mean square 12.5. */
    float x[4] = {3.0f, 4.0f, 0.0f, -2.0f};
    float gain[2] = {2.0f, -1.0f};
    float y[4];
    sq_rmsnorm(y, x, gain, 2, 2, 0.0f);
    CHECK_CLOSE(y[0], 2.0 * 3.0 / sqrt(12.5), 1e-6);
    CHECK_CLOSE(y[1], -4.0 / sqrt(12.5), 1e-6);
    CHECK_CLOSE(y[2], 0.0, 1e-6);
    CHECK_CLOSE(y[3], 2.0 / sqrt(2.0), 1e-6);

    sq_rmsnorm(y, x, NULL, 1, 2, 0.5f);
    CHECK_CLOSE(y[0], 3.0 / sqrt(13.0), 1e-6);
    CHECK_CLOSE(y[1], 4.0 / sqrt(13.0), 1e-6);
}

static void test_dot_against_double(void) {
    uint64_t state = 61;
    for (int n = 1; n <= 70; n++) {
        float *a = malloc((size_t)n * sizeof(float));
        float *b = malloc((size_t)n * sizeof(float));
        fill_gaussian(a, (size_t)n, 1.0, &state);
        fill_gaussian(b, (size_t)n, 1.0, &state);
        double expected = 0.0;
        double magnitude = 0.0;
        for (int i = 0; i < n; i++) {
            expected += (double)a[i] * b[i];
            magnitude += fabs((double)a[i] * b[i]);
        }
        float actual = sq_dot_f32(a, b, n);
        CHECK_MSG(fabs(actual - expected) <= 1e-6 * magnitude + 1e-7, "n %d: %.9g vs %.9g", n, actual, expected);
        free(a);
        free(b);
    }
}

/* Every output of the tiled product, serial or threaded, equals sq_dot_f32 bit for bit. */
static void test_matmul_equals_dot_bitwise(void) {
    static const int batches[] = {1, 2, 3, 5, 8};
    static const int ins[] = {1, 3, 7, 8, 9, 15, 17, 33, 64, 67};
    static const int outs[] = {1, 3, 4, 5, 7, 9, 13, 31, 40};
    sq_threadpool *pools[3] = {NULL, NULL, NULL};
    sq_error err = {0};
    CHECK(sq_threadpool_create(2, &pools[1], &err) == SQ_OK);
    CHECK(sq_threadpool_create(3, &pools[2], &err) == SQ_OK);
    uint64_t state = 71;
    int mismatches = 0;
    int cases = 0;
    for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
        for (size_t ii = 0; ii < sizeof(ins) / sizeof(ins[0]); ii++) {
            for (size_t oi = 0; oi < sizeof(outs) / sizeof(outs[0]); oi++) {
                int batch = batches[bi], in = ins[ii], out = outs[oi];
                float *x = malloc((size_t)batch * in * sizeof(float));
                float *w = malloc((size_t)out * in * sizeof(float));
                float *y = malloc((size_t)batch * out * sizeof(float));
                fill_gaussian(x, (size_t)batch * in, 1.0, &state);
                fill_gaussian(w, (size_t)out * in, 1.0, &state);
                for (int p = 0; p < 4; p++) {
                    memset(y, 0xFF, (size_t)batch * out * sizeof(float));
                    if (p == 3) {
                        sq_matmul_f32(y, x, w, batch, in, out);
                    } else {
                        sq_matmul_f32_parallel(pools[p], y, x, w, batch, in, out);
                    }
                    int bad = 0;
                    for (int b = 0; b < batch; b++) {
                        for (int o = 0; o < out; o++) {
                            float expected = sq_dot_f32(x + (size_t)b * in, w + (size_t)o * in, in);
                            float actual = y[(size_t)b * out + o];
                            bad += memcmp(&expected, &actual, sizeof(float)) != 0;
                        }
                    }
                    if (bad != 0 && mismatches < 5) {
                        fprintf(stderr, "matmul batch %d in %d out %d variant %d: %d outputs differ\n", batch, in, out, p, bad);
                    }
                    mismatches += bad != 0;
                    cases++;
                }
                free(x);
                free(w);
                free(y);
            }
        }
    }
    CHECK_MSG(mismatches == 0, "%d of %d matrix products differ from sq_dot_f32", mismatches, cases);
    sq_threadpool_free(pools[1]);
    sq_threadpool_free(pools[2]);
}

/* ---- perplexity ---- */

static void test_negative_log_likelihood_hand_values(void) {
    /* softmax(0, ln 3) = (1/4, 3/4). */
    float logits[2] = {0.0f, (float)log(3.0)};
    CHECK_CLOSE(sq_negative_log_likelihood(logits, 2, 0), log(4.0), 1e-6);
    CHECK_CLOSE(sq_negative_log_likelihood(logits, 2, 1), -log(0.75), 1e-6);

    /* Large logits must not overflow: softmax(1000, 1000, 1000) is uniform. */
    float large[3] = {1000.0f, 1000.0f, 1000.0f};
    CHECK_CLOSE(sq_negative_log_likelihood(large, 3, 2), log(3.0), 1e-9);
}

typedef struct cancel_after {
    int64_t limit;
    int64_t calls;
} cancel_after;

static int stop_after_limit(void *user_data, int64_t done, int64_t total, double mean_nll) {
    cancel_after *c = user_data;
    (void)total;
    (void)mean_nll;
    c->calls++;
    return done >= c->limit;
}

/* Expected mean NLL from the reference: each window from an empty cache, positions 1..W-1. */
static double reference_mean_nll(const sq_model *model, const int32_t *tokens, int window, int n_windows) {
    int32_t vocab = model->config.vocab_size;
    double total = 0.0;
    for (int w = 0; w < n_windows; w++) {
        double *logits = reference_logits(model, tokens + (size_t)w * window, window);
        for (int p = 0; p + 1 < window; p++) {
            const double *row = logits + (size_t)p * vocab;
            double max_logit = row[0];
            for (int i = 1; i < vocab; i++) {
                max_logit = fmax(max_logit, row[i]);
            }
            double sum = 0.0;
            for (int i = 0; i < vocab; i++) {
                sum += exp(row[i] - max_logit);
            }
            total += log(sum) - (row[tokens[(size_t)w * window + p + 1]] - max_logit);
        }
        free(logits);
    }
    return total / (double)(n_windows * (window - 1));
}

static void test_perplexity_matches_reference(void) {
    sq_config c = tiny_config();
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 81));
    enum { WINDOW = 8, N = 3 * WINDOW + 5 };
    int32_t tokens[N];
    random_tokens(tokens, N, c.vocab_size, 82);

    /* A batch of 3 splits every window across forward calls. */
    sq_run_state *state = NULL;
    sq_error err = {0};
    CHECK(sq_run_state_create(&model, WINDOW, 3, NULL, &state, &err) == SQ_OK);
    sq_perplexity_result result = {0};
    CHECK(sq_perplexity_evaluate(state, tokens, N, WINDOW, 0, NULL, NULL, &result, &err) == SQ_OK);
    double expected = reference_mean_nll(&model, tokens, WINDOW, 3);
    CHECK_CLOSE(result.mean_nll, expected, 1e-5);
    CHECK_CLOSE(result.ppl, exp(expected), 1e-4);
    CHECK(result.n_windows == 3);
    CHECK(result.n_predicted == 3 * (WINDOW - 1));
    CHECK(result.n_tokens == N);
    CHECK(result.window == WINDOW);

    /* max_windows limits the evaluation to the first windows. */
    CHECK(sq_perplexity_evaluate(state, tokens, N, WINDOW, 2, NULL, NULL, &result, &err) == SQ_OK);
    CHECK(result.n_windows == 2);
    CHECK_CLOSE(result.mean_nll, reference_mean_nll(&model, tokens, WINDOW, 2), 1e-5);

    /* Cancelling from the progress callback. */
    cancel_after cancel = {1, 0};
    CHECK(sq_perplexity_evaluate(state, tokens, N, WINDOW, 0, stop_after_limit, &cancel, &result, &err) == SQ_ERR_ABORTED);
    CHECK(cancel.calls == 1);

    /* Invalid windows: too small, larger than the state, more than the text. */
    CHECK(sq_perplexity_evaluate(state, tokens, N, 1, 0, NULL, NULL, &result, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_perplexity_evaluate(state, tokens, N, WINDOW + 1, 0, NULL, NULL, &result, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_perplexity_evaluate(state, tokens, WINDOW - 1, WINDOW, 0, NULL, NULL, &result, &err) == SQ_ERR_INVALID_ARG);
    CHECK_MSG(strstr(err.message, "7") != NULL, "message: %s", err.message);

    sq_run_state_free(state);
    sq_model_free(&model);
}

/* A token outside the vocabulary must be rejected before its log-likelihood is read: with a
 * batch of 3, row 2 of the first batch predicts token 3, which belongs to the next batch. Run
 * in a child process because the read of logits[target] can crash. */
static void test_perplexity_rejects_out_of_vocabulary_target(void) {
    sq_config c = tiny_config();
    sq_model model;
    CHECK(build_random_model(&model, &c, 0, 91));
    int32_t tokens[8] = {1, 2, 3, -100000000, 5, 6, 7, 8};
    int32_t too_large[8] = {1, 2, 3, 32, 5, 6, 7, 8};
    const int32_t *cases[2] = {tokens, too_large};
    for (int k = 0; k < 2; k++) {
        sq_run_state *state = NULL;
        sq_error err = {0};
        CHECK(sq_run_state_create(&model, 8, 3, NULL, &state, &err) == SQ_OK);
        fflush(stderr);
        pid_t child = fork();
        if (child == 0) {
            sq_perplexity_result result = {0};
            sq_status status = sq_perplexity_evaluate(state, cases[k], 8, 8, 0, NULL, NULL, &result, &err);
            _exit(status == SQ_ERR_INVALID_ARG ? 0 : 1);
        }
        int child_status = 0;
        CHECK(child > 0);
    CHECK(child > 0 && waitpid(child, &child_status, 0) == child);
        CHECK_MSG(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
                  "token %d at position 3: %s %d, expected SQ_ERR_INVALID_ARG without a crash", cases[k][3],
                  WIFSIGNALED(child_status) ? "killed by signal" : "exit code",
                  WIFSIGNALED(child_status) ? WTERMSIG(child_status) : WEXITSTATUS(child_status));
        sq_run_state_free(state);
    }
    sq_model_free(&model);
}

int main(void) {
    RUN_TEST(test_forward_matches_reference);
    RUN_TEST(test_forward_tied_classifier_matches_reference);
    RUN_TEST(test_forward_mha_matches_reference);
    RUN_TEST(test_forward_batches_bit_identical);
    RUN_TEST(test_forward_logits_modes);
    RUN_TEST(test_forward_hook_points);
    RUN_TEST(test_forward_invalid_arguments);
    RUN_TEST(test_rmsnorm_hand_values);
    RUN_TEST(test_dot_against_double);
    RUN_TEST(test_matmul_equals_dot_bitwise);
    RUN_TEST(test_negative_log_likelihood_hand_values);
    RUN_TEST(test_perplexity_matches_reference);
    RUN_TEST(test_perplexity_rejects_out_of_vocabulary_target);
    TEST_MAIN_END();
}
