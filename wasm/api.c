/* The C API that the JavaScript package calls in the Emscripten build: contexts, model loading
 * from the Emscripten file system, model information and tokenization. Everything goes through
 * an sq_api_context, which owns the model, the run state, the sampler and the last error
 * message, so several models can live in one WebAssembly instance. Strings are UTF-8 and
 * pointers returned to JavaScript stay valid until the next call on the same context.
 * The other parts of the API: api_run.c (generation and perplexity), api_stream.c (loading a
 * model from bytes pushed chunk by chunk) and api_calibrate.c (rotation learning and .spq
 * export). Every function returns 0 (or a count) on success and -1 on failure, with the message
 * at sq_api_last_error. */
#include "api.h"

#include <emscripten.h>
#include <emscripten/heap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "kernels/qdot.h"

EMSCRIPTEN_KEEPALIVE int sq_api_version(void) {
    return 3;
}

/* The largest size WebAssembly memory may grow to, and its current size, in bytes. */
EMSCRIPTEN_KEEPALIVE double sq_api_heap_max(void) {
    return (double)emscripten_get_heap_max();
}

EMSCRIPTEN_KEEPALIVE double sq_api_heap_size(void) {
    return (double)emscripten_get_heap_size();
}

/* Returns 1 when this build runs worker threads (the pthread variant). */
EMSCRIPTEN_KEEPALIVE int sq_api_has_threads(void) {
#ifdef SQ_NO_THREADS
    return 0;
#else
    return 1;
#endif
}

EMSCRIPTEN_KEEPALIVE sq_api_context *sq_api_context_create(int threads) {
    sq_api_context *ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return NULL;
    }
    ctx->threads = threads < 1 ? 1 : threads;
    if (sq_threadpool_create(ctx->threads, &ctx->pool, &ctx->error) != SQ_OK) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void sq_api_release_model(sq_api_context *ctx) {
    sq_run_state_free(ctx->state);
    ctx->state = NULL;
    sq_rt_session_free(ctx->session);
    ctx->session = NULL;
    if (ctx->has_sampler) {
        sq_sampler_free(&ctx->sampler);
        ctx->has_sampler = 0;
    }
    if (ctx->runtime == SQ_API_RUNTIME_FP32) {
        sq_model_free(&ctx->model);
    }
    sq_rt_model_free(ctx->rt_model);
    ctx->rt_model = NULL;
    ctx->runtime = SQ_API_RUNTIME_NONE;
    ctx->tokenizer = NULL;
    ctx->chat_template = NULL;
    free(ctx->history);
    ctx->history = NULL;
    ctx->position = 0;
}

EMSCRIPTEN_KEEPALIVE void sq_api_context_free(sq_api_context *ctx) {
    if (ctx == NULL) {
        return;
    }
    sq_api_release_model(ctx);
    sq_api_stream_release(ctx);
    free(ctx->ids);
    free(ctx->text);
    free(ctx->export_bytes);
    sq_threadpool_free(ctx->pool);
    free(ctx);
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_last_error(sq_api_context *ctx) {
    return ctx->error.message;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_last_error_code(sq_api_context *ctx) {
    return sq_status_name(ctx->error.status);
}

/* Checks the tokenizer and allocates the token history; shared by both runtimes. */
static int finish_adoption(sq_api_context *ctx) {
    if (ctx->tokenizer == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG,
                     "the model has no tokenizer; pass a tokenizer file (tokenizer.bin) with it");
        sq_api_release_model(ctx);
        return -1;
    }
    ctx->history = malloc((size_t)sq_api_config(ctx)->context_length * sizeof(int32_t));
    if (ctx->history == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_NOMEM, "cannot allocate the token history of %d tokens",
                     sq_api_config(ctx)->context_length);
        sq_api_release_model(ctx);
        return -1;
    }
    return 0;
}

int sq_api_adopt_fp32(sq_api_context *ctx) {
    ctx->runtime = SQ_API_RUNTIME_FP32;
    ctx->tokenizer = ctx->model.tokenizer;
    ctx->chat_template = ctx->model.chat_template;
    return finish_adoption(ctx);
}

int sq_api_adopt_integer(sq_api_context *ctx, sq_rt_model *rt_model) {
    ctx->runtime = SQ_API_RUNTIME_INTEGER;
    ctx->rt_model = rt_model;
    ctx->tokenizer = rt_model->spq.tokenizer;
    ctx->chat_template = rt_model->spq.chat_template;
    return finish_adoption(ctx);
}

const sq_config *sq_api_config(const sq_api_context *ctx) {
    return ctx->runtime == SQ_API_RUNTIME_INTEGER ? &ctx->rt_model->spq.config : &ctx->model.config;
}

/* Loads a model file or Hugging Face folder, and a tokenizer file unless tokenizer_path is NULL
 * or "", from the Emscripten file system (MEMFS, or the host's files through NODEFS under
 * Node.js). A .spq file goes to the integer runtime and every other format to the fp32 one. */
EMSCRIPTEN_KEEPALIVE int sq_api_model_load(sq_api_context *ctx, const char *path, const char *tokenizer_path) {
    sq_api_release_model(ctx);
    sq_error_clear(&ctx->error);
    const char *tokenizer = tokenizer_path != NULL && tokenizer_path[0] != '\0' ? tokenizer_path : NULL;
    if (sq_spq_is_spq_file(path)) {
        if (tokenizer != NULL) {
            sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG,
                         "'%s' is a .spq model, which carries its own tokenizer; load it without a tokenizer file",
                         path);
            return -1;
        }
        sq_rt_model *rt_model = NULL;
        if (sq_rt_model_load(path, NULL, &rt_model, NULL, &ctx->error) != SQ_OK) {
            return -1;
        }
        return sq_api_adopt_integer(ctx, rt_model);
    }
    if (sq_model_load(path, tokenizer, NULL, &ctx->model, &ctx->error) != SQ_OK) {
        return -1;
    }
    return sq_api_adopt_fp32(ctx);
}

/* Returns the JSON result of the last call that produces one (calibration, export). */
EMSCRIPTEN_KEEPALIVE const char *sq_api_result(sq_api_context *ctx) {
    return ctx->result;
}

/* Returns a JSON object describing the loaded model. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_model_info(sq_api_context *ctx) {
    const sq_config *c = sq_api_config(ctx);
    const char *format = "none";
    const char *runtime = "none";
    const char *kernels = "fp32";
    size_t bytes = 0;
    if (ctx->runtime == SQ_API_RUNTIME_FP32) {
        format = ctx->model.format;
        runtime = "fp32";
        bytes = sq_model_parameter_count(&ctx->model) * sizeof(float);
    } else if (ctx->runtime == SQ_API_RUNTIME_INTEGER) {
        format = "spq";
        runtime = "integer";
        kernels = sq_kernel_isa_name(ctx->rt_model->kernels->isa);
        bytes = sq_rt_model_bytes(ctx->rt_model);
    }
    int length = snprintf(
        ctx->result, sizeof(ctx->result),
        "{\"format\":\"%s\",\"runtime\":\"%s\",\"kernels\":\"%s\",\"weight_bytes\":%zu,\"dim\":%d,"
        "\"hidden_dim\":%d,\"n_layers\":%d,\"n_heads\":%d,\"n_kv_heads\":%d,\"head_dim\":%d,\"vocab_size\":%d,"
        "\"context_length\":%d,\"bos_id\":%d,\"eos_id\":%d,\"adds_bos\":%s,\"has_chat_template\":%s",
        format, runtime, kernels, bytes, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
        c->head_dim, c->vocab_size, c->context_length,
        ctx->tokenizer != NULL ? sq_tokenizer_bos_id(ctx->tokenizer) : -1,
        ctx->tokenizer != NULL ? sq_tokenizer_eos_id(ctx->tokenizer) : -1,
        ctx->tokenizer != NULL && sq_tokenizer_adds_bos(ctx->tokenizer) ? "true" : "false",
        ctx->chat_template != NULL ? "true" : "false");
    if (ctx->runtime == SQ_API_RUNTIME_INTEGER && length > 0 && (size_t)length < sizeof(ctx->result)) {
        const sq_spq_settings *s = &ctx->rt_model->spq.settings;
        length += snprintf(ctx->result + length, sizeof(ctx->result) - (size_t)length,
                           ",\"quantization\":{\"w_bits\":%d,\"w_group\":%d,\"a_bits\":%d,\"kv_bits\":%d,"
                           "\"embed_bits\":%d,\"rotation\":\"%s\",\"mode\":\"%s\"}",
                           s->w_bits, s->w_group, s->a_bits, s->kv_bits, s->embed_bits, s->rotation,
                           s->mode_had ? "had" : "nohad");
    }
    if (length > 0 && (size_t)length + 2 < sizeof(ctx->result)) {
        strcat(ctx->result, "}");
    }
    return ctx->result;
}

/* Returns the decoded text of token id as the tokenizer stores it (without dropping a leading
 * space), for building the chat template's bos_token and eos_token. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_token_text(sq_api_context *ctx, int id) {
    size_t length = 0;
    const char *text = id >= 0 ? sq_tokenizer_decode(ctx->tokenizer, -1, id, &length) : "";
    if (length >= sizeof(ctx->piece)) {
        length = sizeof(ctx->piece) - 1;
    }
    memcpy(ctx->piece, text, length);
    ctx->piece[length] = '\0';
    return ctx->piece;
}

EMSCRIPTEN_KEEPALIVE const char *sq_api_chat_template(sq_api_context *ctx) {
    return ctx->chat_template != NULL ? ctx->chat_template : "";
}

/* Tokenizes text (add_bos: 1, 0, or -1 for the tokenizer's default) and returns the count,
 * or -1; the ids are at sq_api_tokens(ctx). */
EMSCRIPTEN_KEEPALIVE int sq_api_tokenize(sq_api_context *ctx, const char *text, int add_bos, int parse_special) {
    free(ctx->ids);
    ctx->ids = NULL;
    ctx->n_ids = 0;
    if (sq_tokenizer_encode(ctx->tokenizer, text, strlen(text), add_bos, parse_special, &ctx->ids, &ctx->n_ids,
                            &ctx->error) != SQ_OK) {
        return -1;
    }
    return (int)ctx->n_ids;
}

EMSCRIPTEN_KEEPALIVE const int32_t *sq_api_tokens(sq_api_context *ctx) {
    return ctx->ids;
}

/* Decodes n ids into one NUL-terminated UTF-8 string and returns it, or NULL on failure. An
 * incomplete UTF-8 sequence at the end becomes U+FFFD, and with skip_control control tokens
 * (BOS, EOS, end of turn) are left out. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_detokenize(sq_api_context *ctx, const int32_t *ids, int n, int skip_control) {
    size_t piece_capacity = sq_token_decoder_min_capacity(ctx->tokenizer);
    size_t capacity = (size_t)(n > 0 ? n : 0) * piece_capacity + 16;
    free(ctx->text);
    ctx->text = malloc(capacity);
    if (ctx->text == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_NOMEM, "cannot allocate %zu bytes for the decoded text", capacity);
        return NULL;
    }
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    size_t length = 0;
    int32_t vocab_size = sq_tokenizer_vocab_size(ctx->tokenizer);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab_size) {
            sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "token id %d at index %d is outside the vocabulary of %d",
                         ids[i], i, vocab_size);
            return NULL;
        }
        if (skip_control && sq_tokenizer_is_control(ctx->tokenizer, ids[i])) {
            decoder.previous_id = ids[i];
            continue;
        }
        length += sq_token_decoder_push(&decoder, ctx->tokenizer, ids[i], ctx->text + length, capacity - length);
    }
    length += sq_token_decoder_flush(&decoder, ctx->text + length, capacity - length);
    ctx->text[length] = '\0';
    return ctx->text;
}
