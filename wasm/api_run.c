/* Running the loaded model through the C API: token-by-token generation and windowed
 * perplexity, one step per call so that JavaScript can yield to its event loop and honour an
 * abort request between steps. Both runtimes (fp32 and integer) go through the helpers at the
 * top of this file. */
#include "api.h"

#include <emscripten.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/perplexity.h"

/* Tokens per forward call of the perplexity evaluation, as in the native CLI's eval command. */
#define API_EVAL_BATCH 64

int32_t sq_api_capacity(const sq_api_context *ctx) {
    if (ctx->runtime == SQ_API_RUNTIME_INTEGER) {
        return ctx->session != NULL ? ctx->session->capacity : 0;
    }
    return ctx->state != NULL ? ctx->state->capacity : 0;
}

/* Recreates the run state when it is smaller than capacity or was built for another batch. */
static int ensure_state(sq_api_context *ctx, int32_t capacity, int32_t max_batch) {
    if (ctx->runtime == SQ_API_RUNTIME_NONE) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "no model is loaded");
        return -1;
    }
    if (ctx->runtime == SQ_API_RUNTIME_INTEGER) {
        if (ctx->session != NULL && ctx->session->capacity >= capacity && ctx->session->max_batch == max_batch) {
            return 0;
        }
        sq_rt_session_free(ctx->session);
        ctx->session = NULL;
        return sq_rt_session_create(ctx->rt_model, capacity, max_batch, ctx->pool, &ctx->session, &ctx->error) ==
                       SQ_OK
                   ? 0
                   : -1;
    }
    if (ctx->state != NULL && ctx->state->capacity >= capacity && ctx->state->max_batch == max_batch) {
        return 0;
    }
    sq_run_state_free(ctx->state);
    ctx->state = NULL;
    return sq_run_state_create(&ctx->model, capacity, max_batch, ctx->pool, &ctx->state, &ctx->error) == SQ_OK ? 0
                                                                                                                : -1;
}

int sq_api_ensure_capacity(sq_api_context *ctx, int32_t capacity) {
    return ensure_state(ctx, capacity, SQ_API_BATCH);
}

int sq_api_forward(sq_api_context *ctx, const int32_t *tokens, int32_t n, int32_t position, sq_logits_mode mode) {
    sq_status status = ctx->runtime == SQ_API_RUNTIME_INTEGER
                           ? sq_rt_forward(ctx->session, tokens, n, position, mode, &ctx->error)
                           : sq_forward(ctx->state, tokens, n, position, mode, &ctx->error);
    return status == SQ_OK ? 0 : -1;
}

float *sq_api_logits(const sq_api_context *ctx) {
    return ctx->runtime == SQ_API_RUNTIME_INTEGER ? ctx->session->logits : ctx->state->logits;
}

/* ---- generation ---- */

/* Starts a generation: resets the cache, configures the sampler and prefills the n_prompt
 * tokens at prompt. max_tokens bounds the new tokens, so the cache holds only
 * n_prompt + max_tokens positions (at most the model's context). Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_generate_begin(sq_api_context *ctx, const int32_t *prompt, int n_prompt,
                                               int max_tokens, float temperature, int top_k, float top_p,
                                               float repetition_penalty, double seed) {
    sq_error_clear(&ctx->error);
    if (ctx->runtime == SQ_API_RUNTIME_NONE) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "no model is loaded");
        return -1;
    }
    int32_t context = sq_api_config(ctx)->context_length;
    if (n_prompt < 1 || n_prompt >= context) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "the prompt has %d tokens, expected 1 to %d", n_prompt,
                     context - 1);
        return -1;
    }
    if (max_tokens < 1) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "invalid maxTokens %d, expected at least 1", max_tokens);
        return -1;
    }
    if (ctx->has_sampler) {
        sq_sampler_free(&ctx->sampler);
        ctx->has_sampler = 0;
    }
    sq_sampler_params params = {temperature, top_k, top_p, repetition_penalty, (uint64_t)seed};
    if (sq_sampler_init(&ctx->sampler, &params, sq_api_config(ctx)->vocab_size, &ctx->error) != SQ_OK) {
        return -1;
    }
    ctx->has_sampler = 1;

    int64_t needed = (int64_t)n_prompt + max_tokens;
    int32_t capacity = needed < context ? (int32_t)needed : context;
    if (sq_api_ensure_capacity(ctx, capacity) != 0) {
        return -1;
    }
    for (int start = 0; start < n_prompt; start += SQ_API_BATCH) {
        int batch = n_prompt - start < SQ_API_BATCH ? n_prompt - start : SQ_API_BATCH;
        sq_logits_mode mode = start + batch == n_prompt ? SQ_LOGITS_LAST : SQ_LOGITS_NONE;
        if (sq_api_forward(ctx, prompt + start, batch, start, mode) != 0) {
            return -1;
        }
    }
    ctx->position = n_prompt;
    ctx->n_history = 0;
    sq_token_decoder_init(&ctx->decoder);
    ctx->decoder.previous_id = prompt[n_prompt - 1];
    return 0;
}

/* Writes the decoder's held-back bytes to piece. */
static void flush_piece(sq_api_context *ctx) {
    size_t n = sq_token_decoder_flush(&ctx->decoder, ctx->piece, sizeof(ctx->piece));
    ctx->piece[n] = '\0';
}

/* Samples the next token, runs it through the model (unless it is the last one the cache or
 * max_tokens allows) and returns its id; the text it completes is at sq_api_piece(ctx).
 * Returns -1 at a control token (end of turn), -3 when the cache is full, and -2 on error.
 * After -1 or -3 sq_api_piece holds any bytes the decoder had held back. */
EMSCRIPTEN_KEEPALIVE int sq_api_generate_next(sq_api_context *ctx, int is_last) {
    ctx->piece[0] = '\0';
    int32_t capacity = sq_api_capacity(ctx);
    if (ctx->position >= capacity) {
        flush_piece(ctx);
        return -3;
    }
    int32_t next = sq_sampler_sample(&ctx->sampler, sq_api_logits(ctx), ctx->history, ctx->n_history);
    if (sq_tokenizer_is_control(ctx->tokenizer, next)) {
        flush_piece(ctx);
        return -1;
    }
    ctx->history[ctx->n_history++] = next;
    size_t n = sq_token_decoder_push(&ctx->decoder, ctx->tokenizer, next, ctx->piece, sizeof(ctx->piece));
    ctx->piece[n] = '\0';
    if (is_last) {
        size_t tail = sq_token_decoder_flush(&ctx->decoder, ctx->piece + n, sizeof(ctx->piece) - n);
        ctx->piece[n + tail] = '\0';
    } else if (ctx->position + 1 < capacity) {
        if (sq_api_forward(ctx, &next, 1, ctx->position, SQ_LOGITS_LAST) != 0) {
            return -2;
        }
    }
    ctx->position++;
    return next;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_piece(sq_api_context *ctx) {
    return ctx->piece;
}

/* ---- perplexity, one window per call ---- */

/* Tokenizes text as the native eval command does (the tokenizer's default BOS, no special
 * tokens) and prepares windows of window tokens (0: the smaller of the context and 2048).
 * Returns the number of whole windows, or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_perplexity_begin(sq_api_context *ctx, const char *text, int window) {
    sq_error_clear(&ctx->error);
    if (ctx->runtime == SQ_API_RUNTIME_NONE) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "no model is loaded");
        return -1;
    }
    int32_t context = sq_api_config(ctx)->context_length;
    if (window <= 0) {
        window = context < 2048 ? context : 2048;
    }
    if (window < 2 || window > context) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "invalid window %d, expected 2 to the model's context of %d",
                     window, context);
        return -1;
    }
    if (sq_api_tokenize(ctx, text, -1, 0) < 0) {
        return -1;
    }
    int64_t n_windows = (int64_t)(ctx->n_ids / (size_t)window);
    if (n_windows == 0) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG,
                     "the text has %zu tokens, fewer than one window of %d; use a longer text or a smaller window",
                     ctx->n_ids, window);
        return -1;
    }
    if (ensure_state(ctx, window, API_EVAL_BATCH) != 0) {
        return -1;
    }
    ctx->perplexity_nll = 0.0;
    ctx->perplexity_predicted = 0;
    ctx->perplexity_window = window;
    ctx->position = 0;
    return n_windows > 0x7fffffff ? 0x7fffffff : (int)n_windows;
}

/* Evaluates window index (0-based) of the text given to sq_api_perplexity_begin. */
EMSCRIPTEN_KEEPALIVE int sq_api_perplexity_window(sq_api_context *ctx, int index) {
    int32_t window = ctx->perplexity_window;
    if (window < 2 || index < 0 || (size_t)(index + 1) * (size_t)window > ctx->n_ids) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "window %d does not exist; call sq_api_perplexity_begin first",
                     index);
        return -1;
    }
    const int32_t *tokens = ctx->ids + (size_t)index * (size_t)window;
    sq_perplexity_result r;
    sq_status status = ctx->runtime == SQ_API_RUNTIME_INTEGER
                           ? sq_rt_perplexity(ctx->session, tokens, (size_t)window, window, 1, NULL, NULL, &r,
                                              &ctx->error)
                           : sq_perplexity_evaluate(ctx->state, tokens, (size_t)window, window, 1, NULL, NULL, &r,
                                                    &ctx->error);
    if (status != SQ_OK) {
        return -1;
    }
    ctx->perplexity_nll += r.mean_nll * (double)r.n_predicted;
    ctx->perplexity_predicted += r.n_predicted;
    return 0;
}

/* Returns the JSON result over the windows evaluated so far. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_perplexity_result(sq_api_context *ctx) {
    int64_t predicted = ctx->perplexity_predicted;
    double mean_nll = predicted > 0 ? ctx->perplexity_nll / (double)predicted : 0.0;
    int32_t window = ctx->perplexity_window;
    snprintf(ctx->result, sizeof(ctx->result),
             "{\"ppl\":%.17g,\"mean_nll\":%.17g,\"n_tokens\":%zu,\"n_windows\":%lld,\"n_predicted\":%lld,"
             "\"window\":%d}",
             predicted > 0 ? exp(mean_nll) : 0.0, mean_nll, ctx->n_ids,
             (long long)(window > 1 ? predicted / (window - 1) : 0), (long long)predicted, window);
    return ctx->result;
}
