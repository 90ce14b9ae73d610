/* Perplexity by the protocol GPTQ, QuaRot and SpinQuant report: the token sequence is cut
 * into non-overlapping windows of `window` tokens (the last partial window is dropped), each
 * window runs from an empty KV cache, and the negative log-likelihood is averaged over window
 * positions 1..window-1. */
#ifndef SQ_EVAL_PERPLEXITY_H
#define SQ_EVAL_PERPLEXITY_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "forward/forward.h"

typedef struct sq_perplexity_result {
    double ppl;           /* exp(mean_nll) */
    double mean_nll;      /* nats per predicted token */
    int64_t n_tokens;     /* tokens in the whole sequence */
    int64_t n_windows;    /* windows evaluated */
    int64_t n_predicted;  /* n_windows * (window - 1) */
    int32_t window;
} sq_perplexity_result;

/* Called after each window; returning non-zero cancels the evaluation with SQ_ERR_ABORTED. */
typedef int (*sq_perplexity_progress_fn)(void *user_data, int64_t windows_done, int64_t windows_total,
                                         double mean_nll_so_far);

/* A model as the windowed driver uses it: a forward pass that leaves the logits of every token
 * of a batch in logits (batch, vocab_size), from positions start .. start + batch - 1. */
typedef struct sq_perplexity_model {
    void *context;                /* the run state or session passed to forward */
    sq_status (*forward)(void *context, const int32_t *tokens, int32_t batch, int32_t start, sq_error *err);
    const float *const *logits;   /* address of the model's logits pointer, read after each forward */
    int32_t vocab_size;
    int32_t capacity;             /* maximum tokens in one window (the KV cache size) */
    int32_t max_batch;            /* maximum tokens per forward call */
    const char *capacity_owner;   /* "run state" or "session", for the error message */
} sq_perplexity_model;

/* Evaluates tokens (n_tokens) with any model by the protocol above. */
sq_status sq_perplexity_run(const sq_perplexity_model *model, const int32_t *tokens, size_t n_tokens, int32_t window,
                            int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                            sq_perplexity_result *result, sq_error *err);

/* Evaluates tokens (n_tokens) with state, whose capacity must be at least window.
 * max_windows <= 0 evaluates every full window. Fails when not even one window fits. */
sq_status sq_perplexity_evaluate(sq_run_state *state, const int32_t *tokens, size_t n_tokens, int32_t window,
                                 int64_t max_windows, sq_perplexity_progress_fn progress, void *user_data,
                                 sq_perplexity_result *result, sq_error *err);

/* Returns -log softmax(logits)[target] for one row of vocab_size logits, in double precision. */
double sq_negative_log_likelihood(const float *logits, int32_t vocab_size, int32_t target);

#endif
