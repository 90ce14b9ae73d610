/* The state behind the C API of the Emscripten build (wasm/api*.c), shared by its source files.
 * JavaScript gets only an opaque sq_api_context pointer. A context owns at most one model:
 * either an fp32 model (llama2.c, GGUF, Hugging Face) run by sq_forward, or an integer .spq
 * model run by the integer runtime. The run functions reach both through the helpers below. */
#ifndef SQ_WASM_API_H
#define SQ_WASM_API_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "forward/forward.h"
#include "model/model.h"
#include "runtime/rt_model.h"
#include "runtime/rt_session.h"
#include "sample/sampler.h"
#include "spq/spq_reader.h"

/* Tokens per forward call during prefill and perplexity. */
#define SQ_API_BATCH 32

/* Bytes of the scratch block that receives each streamed chunk. */
#define SQ_API_CHUNK_MAX (1 << 20)

typedef enum sq_api_runtime {
    SQ_API_RUNTIME_NONE = 0,
    SQ_API_RUNTIME_FP32 = 1,    /* model and state */
    SQ_API_RUNTIME_INTEGER = 2, /* rt_model and session */
} sq_api_runtime;

/* How streamed bytes are stored, decided by the first 8 bytes. */
typedef enum sq_api_stream_mode {
    SQ_API_STREAM_IDLE = 0,     /* no stream */
    SQ_API_STREAM_HEADER = 1,   /* fewer than 8 bytes seen, format unknown */
    SQ_API_STREAM_SPQ = 2,      /* fed to the .spq streaming reader */
    SQ_API_STREAM_BUFFER = 3,   /* collected in one buffer, then read as a file */
} sq_api_stream_mode;

typedef struct sq_api_stream {
    sq_api_stream_mode mode;
    uint64_t total;             /* expected size in bytes, 0 when unknown */
    uint64_t received;
    uint8_t header[8];          /* the first bytes until the format is known */
    uint8_t *scratch;           /* (SQ_API_CHUNK_MAX) where JavaScript writes each chunk */
    sq_spq_stream *spq;         /* SQ_API_STREAM_SPQ */
    uint8_t *buffer;            /* (capacity) SQ_API_STREAM_BUFFER: the file's bytes */
    uint64_t capacity;
} sq_api_stream;

typedef struct sq_api_context {
    int threads;
    sq_threadpool *pool;
    sq_api_runtime runtime;

    sq_model model;              /* SQ_API_RUNTIME_FP32 */
    sq_run_state *state;         /* created on first use, sized for the largest request so far */
    sq_rt_model *rt_model;       /* SQ_API_RUNTIME_INTEGER */
    sq_rt_session *session;
    const sq_tokenizer *tokenizer; /* the loaded model's */
    const char *chat_template;     /* the loaded model's, or NULL */

    sq_sampler sampler;
    int has_sampler;
    sq_token_decoder decoder;
    int32_t position;            /* tokens in the KV cache */
    int32_t *history;            /* (context_length) generated tokens, for the repetition penalty */
    int32_t n_history;

    int32_t *ids;                /* last tokenize result */
    size_t n_ids;

    double perplexity_nll;       /* sum of the NLL of the windows evaluated so far */
    int64_t perplexity_predicted;
    int32_t perplexity_window;

    sq_api_stream stream;
    char source_path[64];        /* MEMFS path of a streamed file kept for later reads, or "" */

    uint8_t *export_bytes;       /* (export_size) .spq file made by sq_api_export_spq, or NULL */
    size_t export_size;

    char *text;                  /* last string result that may be long (detokenize) */
    char piece[256];             /* text of the last generated token */
    char result[1024];           /* last JSON result */
    sq_error error;
} sq_api_context;

/* Frees the loaded model and everything sized for it. */
void sq_api_release_model(sq_api_context *ctx);

/* Takes ownership of the loaded fp32 model in ctx->model and prepares the context for it.
 * Returns 0 or -1 (with ctx->error set). */
int sq_api_adopt_fp32(sq_api_context *ctx);

/* Takes ownership of rt_model and prepares the context for it. Returns 0 or -1. */
int sq_api_adopt_integer(sq_api_context *ctx, sq_rt_model *rt_model);

/* Returns the configuration of the loaded model. */
const sq_config *sq_api_config(const sq_api_context *ctx);

/* Makes the run state (or session) hold at least capacity positions. Returns 0 or -1. */
int sq_api_ensure_capacity(sq_api_context *ctx, int32_t capacity);

/* Returns the positions the current run state (or session) holds, 0 when none exists. */
int32_t sq_api_capacity(const sq_api_context *ctx);

/* Runs n tokens at position through the loaded model. Returns 0 or -1. */
int sq_api_forward(sq_api_context *ctx, const int32_t *tokens, int32_t n, int32_t position, sq_logits_mode mode);

/* Returns the logits of the last forward call: (rows, vocab_size). */
float *sq_api_logits(const sq_api_context *ctx);

/* Exposes size bytes at data as a MEMFS file at path without copying them, for reading only.
 * The file reads the bytes from WebAssembly memory, so data must stay allocated until
 * sq_api_js_unlink removes the file. Returns 0, or -1 when the file cannot be created. */
int sq_api_js_expose(const char *path, const uint8_t *data, double size);

/* Removes a MEMFS file if it exists. */
void sq_api_js_unlink(const char *path);

/* Loads the model at path from the Emscripten file system into ctx. Returns 0 or -1. */
int sq_api_model_load(sq_api_context *ctx, const char *path, const char *tokenizer_path);

/* Tokenizes text into ctx->ids (add_bos: 1, 0 or -1 for the tokenizer's default). Returns the
 * count or -1. */
int sq_api_tokenize(sq_api_context *ctx, const char *text, int add_bos, int parse_special);

/* Frees a stream in progress and a streamed file kept for later reads. */
void sq_api_stream_release(sq_api_context *ctx);

#endif
