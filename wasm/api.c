/* The C API that the JavaScript package calls in the Emscripten build. Everything goes through
 * an sq_api_context, which owns the model, the run state, the sampler and the last error
 * message, so several models can live in one WebAssembly instance. Strings are UTF-8 and
 * pointers returned to JavaScript stay valid until the next call on the same context.
 * Model files are read from the Emscripten file system (MEMFS in browsers, where the JavaScript
 * side writes them first; the host file system through NODEFS in Node). */
#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "eval/perplexity.h"
#include "formats/formats.h"
#include "forward/forward.h"
#include "sample/sampler.h"

#define API_BATCH 32

typedef struct sq_api_context {
    sq_model model;
    int has_model;
    sq_threadpool *pool;
    sq_run_state *state;         /* sized for the whole context, created on first use */
    sq_sampler sampler;
    int has_sampler;
    sq_token_decoder decoder;
    int32_t position;            /* tokens in the KV cache */
    int32_t *ids;                /* last tokenize result */
    size_t n_ids;
    int32_t *history;            /* (context_length) tokens seen by the repetition penalty */
    int32_t n_history;
    char piece[256];             /* text of the last decoded token */
    char result[512];            /* last JSON result */
    sq_error error;
} sq_api_context;

EMSCRIPTEN_KEEPALIVE int sq_api_version(void) {
    return 2;
}

EMSCRIPTEN_KEEPALIVE sq_api_context *sq_api_context_create(int threads) {
    sq_api_context *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return NULL;
    }
    if (sq_threadpool_create(threads < 1 ? 1 : threads, &ctx->pool, &ctx->error) != SQ_OK) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

static void release_model(sq_api_context *ctx) {
    sq_run_state_free(ctx->state);
    ctx->state = NULL;
    if (ctx->has_sampler) {
        sq_sampler_free(&ctx->sampler);
        ctx->has_sampler = 0;
    }
    if (ctx->has_model) {
        sq_model_free(&ctx->model);
        ctx->has_model = 0;
    }
    free(ctx->history);
    ctx->history = NULL;
}

EMSCRIPTEN_KEEPALIVE void sq_api_context_free(sq_api_context *ctx) {
    if (ctx == NULL) {
        return;
    }
    release_model(ctx);
    free(ctx->ids);
    sq_threadpool_free(ctx->pool);
    free(ctx);
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_last_error(sq_api_context *ctx) {
    return ctx->error.message;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_last_error_code(sq_api_context *ctx) {
    return sq_status_name(ctx->error.status);
}

/* Loads a model file (and an optional tokenizer file; pass NULL or ""). Returns 0 on success. */
EMSCRIPTEN_KEEPALIVE int sq_api_model_load(sq_api_context *ctx, const char *path, const char *tokenizer_path) {
    release_model(ctx);
    sq_error_clear(&ctx->error);
    const char *tokenizer = tokenizer_path != NULL && tokenizer_path[0] != '\0' ? tokenizer_path : NULL;
    if (sq_model_load(path, tokenizer, NULL, &ctx->model, &ctx->error) != SQ_OK) {
        return -1;
    }
    ctx->has_model = 1;
    if (ctx->model.tokenizer == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "model '%s' has no tokenizer; pass a tokenizer file", path);
        release_model(ctx);
        return -1;
    }
    ctx->history = malloc((size_t)ctx->model.config.context_length * sizeof(int32_t));
    if (ctx->history == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_NOMEM, "cannot allocate the token history");
        release_model(ctx);
        return -1;
    }
    return 0;
}

/* Returns a JSON object with the model's configuration. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_model_info(sq_api_context *ctx) {
    const sq_config *c = &ctx->model.config;
    snprintf(ctx->result, sizeof(ctx->result),
             "{\"format\":\"%s\",\"dim\":%d,\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,"
             "\"head_dim\":%d,\"vocab_size\":%d,\"context_length\":%d,\"bos_id\":%d,\"eos_id\":%d}",
             ctx->model.format, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim,
             c->vocab_size, c->context_length, sq_tokenizer_bos_id(ctx->model.tokenizer),
             sq_tokenizer_eos_id(ctx->model.tokenizer));
    return ctx->result;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_chat_template(sq_api_context *ctx) {
    return ctx->model.chat_template != NULL ? ctx->model.chat_template : "";
}

/* Tokenizes text (add_bos: 1, 0, or -1 for the tokenizer's default) and returns the count,
 * or -1; the ids are at sq_api_tokens(ctx). */
EMSCRIPTEN_KEEPALIVE int sq_api_tokenize(sq_api_context *ctx, const char *text, int add_bos, int parse_special) {
    free(ctx->ids);
    ctx->ids = NULL;
    ctx->n_ids = 0;
    if (sq_tokenizer_encode(ctx->model.tokenizer, text, strlen(text), add_bos, parse_special, &ctx->ids, &ctx->n_ids,
                            &ctx->error) != SQ_OK) {
        return -1;
    }
    return (int)ctx->n_ids;
}

EMSCRIPTEN_KEEPALIVE const int32_t *sq_api_tokens(sq_api_context *ctx) {
    return ctx->ids;
}

static int ensure_state(sq_api_context *ctx, int32_t capacity) {
    if (ctx->state != NULL && ctx->state->capacity >= capacity) {
        return 0;
    }
    sq_run_state_free(ctx->state);
    ctx->state = NULL;
    return sq_run_state_create(&ctx->model, capacity, API_BATCH, ctx->pool, &ctx->state, &ctx->error) == SQ_OK ? 0 : -1;
}

/* Evaluates perplexity of text; returns 0 and leaves a JSON result at sq_api_result(ctx). */
EMSCRIPTEN_KEEPALIVE int sq_api_perplexity(sq_api_context *ctx, const char *text, int window, int max_windows) {
    if (sq_api_tokenize(ctx, text, -1, 0) < 0) {
        return -1;
    }
    if (window <= 0) {
        window = ctx->model.config.context_length < 2048 ? ctx->model.config.context_length : 2048;
    }
    if (ensure_state(ctx, window) != 0) {
        return -1;
    }
    sq_perplexity_result r;
    if (sq_perplexity_evaluate(ctx->state, ctx->ids, ctx->n_ids, window, max_windows, NULL, NULL, &r, &ctx->error) !=
        SQ_OK) {
        return -1;
    }
    snprintf(ctx->result, sizeof(ctx->result),
             "{\"ppl\":%.9f,\"mean_nll\":%.9f,\"n_tokens\":%lld,\"n_windows\":%lld,\"n_predicted\":%lld,\"window\":%d}",
             r.ppl, r.mean_nll, (long long)r.n_tokens, (long long)r.n_windows, (long long)r.n_predicted, r.window);
    ctx->position = 0;
    return 0;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_result(sq_api_context *ctx) {
    return ctx->result;
}

/* Starts a generation: resets the cache, configures the sampler and prefills the n_prompt
 * tokens at prompt. Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_generate_begin(sq_api_context *ctx, const int32_t *prompt, int n_prompt,
                                               float temperature, int top_k, float top_p, float repetition_penalty,
                                               double seed) {
    int32_t context = ctx->model.config.context_length;
    if (n_prompt < 1 || n_prompt >= context) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "the prompt has %d tokens, expected 1 to %d", n_prompt,
                     context - 1);
        return -1;
    }
    if (ctx->has_sampler) {
        sq_sampler_free(&ctx->sampler);
        ctx->has_sampler = 0;
    }
    sq_sampler_params params = {temperature, top_k, top_p, repetition_penalty, (uint64_t)seed};
    if (sq_sampler_init(&ctx->sampler, &params, ctx->model.config.vocab_size, &ctx->error) != SQ_OK) {
        return -1;
    }
    ctx->has_sampler = 1;
    if (ensure_state(ctx, context) != 0) {
        return -1;
    }
    for (int start = 0; start < n_prompt; start += API_BATCH) {
        int batch = n_prompt - start < API_BATCH ? n_prompt - start : API_BATCH;
        sq_logits_mode mode = start + batch == n_prompt ? SQ_LOGITS_LAST : SQ_LOGITS_NONE;
        if (sq_forward(ctx->state, prompt + start, batch, start, mode, &ctx->error) != SQ_OK) {
            return -1;
        }
    }
    ctx->position = n_prompt;
    ctx->n_history = 0;
    sq_token_decoder_init(&ctx->decoder);
    ctx->decoder.previous_id = prompt[n_prompt - 1];
    return 0;
}

/* Samples the next token, runs it through the model and returns its id; the text it completes
 * is at sq_api_piece(ctx). Returns -1 at a control token (end of turn) or the end of the
 * context, and -2 on error. */
EMSCRIPTEN_KEEPALIVE int sq_api_generate_next(sq_api_context *ctx) {
    ctx->piece[0] = '\0';
    if (ctx->position >= ctx->state->capacity) {
        size_t n = sq_token_decoder_flush(&ctx->decoder, ctx->piece, sizeof(ctx->piece));
        ctx->piece[n] = '\0';
        return -1;
    }
    int32_t next = sq_sampler_sample(&ctx->sampler, ctx->state->logits, ctx->history, ctx->n_history);
    if (sq_tokenizer_is_control(ctx->model.tokenizer, next)) {
        size_t n = sq_token_decoder_flush(&ctx->decoder, ctx->piece, sizeof(ctx->piece));
        ctx->piece[n] = '\0';
        return -1;
    }
    ctx->history[ctx->n_history++] = next;
    size_t n = sq_token_decoder_push(&ctx->decoder, ctx->model.tokenizer, next, ctx->piece, sizeof(ctx->piece));
    ctx->piece[n] = '\0';
    if (ctx->position + 1 < ctx->state->capacity) {
        if (sq_forward(ctx->state, &next, 1, ctx->position, SQ_LOGITS_LAST, &ctx->error) != SQ_OK) {
            return -2;
        }
    }
    ctx->position++;
    return next;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_piece(sq_api_context *ctx) {
    return ctx->piece;
}
