/* Windowed perplexity over a token sequence. */
#include "eval/perplexity.h"

#include <math.h>

double sq_negative_log_likelihood(const float *logits, int32_t vocab_size, int32_t target) {
    float max_logit = logits[0];
    for (int32_t i = 1; i < vocab_size; i++) {
        max_logit = logits[i] > max_logit ? logits[i] : max_logit;
    }
    double sum = 0.0;
    for (int32_t i = 0; i < vocab_size; i++) {
        sum += exp((double)logits[i] - (double)max_logit);
    }
    return log(sum) - ((double)logits[target] - (double)max_logit);
}

sq_status sq_perplexity_run(const sq_perplexity_model *model, const int32_t *tokens, size_t n_tokens, int32_t window,
                            int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                            sq_perplexity_result *result, sq_error *err) {
    int32_t vocab_size = model->vocab_size;
    if (window < 2) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid window %d, expected at least 2 tokens", window);
    }
    if (window > model->capacity) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "window %d exceeds the %s's context of %d tokens", window,
                            model->capacity_owner, model->capacity);
    }
    int64_t n_windows = (int64_t)(n_tokens / (size_t)window);
    if (n_windows == 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "the text has %zu tokens, fewer than one window of %d; use a longer text or a smaller --window",
                            n_tokens, window);
    }
    if (max_windows > 0 && max_windows < n_windows) {
        n_windows = max_windows;
    }
    /* Targets are read before the forward pass validates them, so check every id up front. */
    for (int64_t i = 0; i < n_windows * window; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab_size) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "token id %d at index %lld is outside the vocabulary of %d",
                                tokens[i], (long long)i, vocab_size);
        }
    }

    double total_nll = 0.0;
    int64_t predicted = 0;
    for (int64_t w = 0; w < n_windows; w++) {
        const int32_t *window_tokens = tokens + w * window;
        for (int32_t start = 0; start < window; start += model->max_batch) {
            int32_t batch = window - start < model->max_batch ? window - start : model->max_batch;
            sq_status status = model->forward(model->context, window_tokens + start, batch, start, err);
            if (status != SQ_OK) {
                return status;
            }
            /* Row b predicts the token at window position start + b + 1. */
            for (int32_t b = 0; b < batch && start + b + 1 < window; b++) {
                const float *row = *model->logits + (int64_t)b * vocab_size;
                double nll = sq_negative_log_likelihood(row, vocab_size, window_tokens[start + b + 1]);
                if (!isfinite(nll)) {
                    return sq_error_set(err, SQ_ERR_NUMERIC, "non-finite log-likelihood at window %lld, position %d",
                                        (long long)w, start + b + 1);
                }
                total_nll += nll;
                predicted++;
            }
        }
        if (progress != NULL && progress(user_data, w + 1, n_windows, total_nll / (double)predicted) != 0) {
            return sq_error_set(err, SQ_ERR_ABORTED, "evaluation cancelled after %lld of %lld windows",
                                (long long)(w + 1), (long long)n_windows);
        }
    }

    result->mean_nll = total_nll / (double)predicted;
    result->ppl = exp(result->mean_nll);
    result->n_tokens = (int64_t)n_tokens;
    result->n_windows = n_windows;
    result->n_predicted = predicted;
    result->window = window;
    return SQ_OK;
}

static sq_status forward_all_logits(void *context, const int32_t *tokens, int32_t batch, int32_t start,
                                    sq_error *err) {
    return sq_forward(context, tokens, batch, start, SQ_LOGITS_ALL, err);
}

sq_status sq_perplexity_evaluate(sq_run_state *state, const int32_t *tokens, size_t n_tokens, int32_t window,
                                 int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                                 sq_perplexity_result *result, sq_error *err) {
    sq_perplexity_model model = {
        .context = state,
        .forward = forward_all_logits,
        .logits = (const float *const *)&state->logits,
        .vocab_size = state->model->config.vocab_size,
        .capacity = state->capacity,
        .max_batch = state->max_batch,
        .capacity_owner = "run state",
    };
    return sq_perplexity_run(&model, tokens, n_tokens, window, max_windows, progress, user_data, result, err);
}
