/* Loading a model from bytes that JavaScript pushes chunk by chunk, so a download goes straight
 * into WebAssembly memory and JavaScript never keeps the whole file. The first 8 bytes pick the
 * path:
 *   - a .spq file goes through the .spq streaming reader, which copies tensor bytes to their
 *     final place and checks each section's CRC-32 as soon as it is complete;
 *   - any other format (llama2.c, GGUF) is collected in one malloc'd buffer, which is then
 *     exposed as a MEMFS file that reads from WebAssembly memory without a copy, and loaded
 *     by the usual file loaders. The buffer is freed after loading unless the caller keeps it
 *     for later reads (calibration reads the model file twice).
 * Usage: sq_api_stream_begin, then for each chunk write it at sq_api_stream_scratch and call
 * sq_api_stream_feed, then sq_api_stream_end (or sq_api_stream_abort). */
#include "api.h"

#include <emscripten.h>
#include <emscripten/heap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Starting size of the buffer when the total size is unknown; it doubles as bytes arrive. */
#define STREAM_INITIAL_CAPACITY ((uint64_t)16 << 20)

/* MEMFS file whose contents are a live view of WebAssembly memory. The getter builds a new view
 * on every read because growing the memory replaces HEAPU8's buffer. */
EM_JS(int, sq_api_js_expose, (const char *path, const uint8_t *data, double size), {
    try {
        var name = UTF8ToString(path);
        var start = data >>> 0;
        FS.writeFile(name, new Uint8Array(0));
        var node = FS.lookupPath(name).node;
        Object.defineProperty(node, "contents", {
            configurable : true,
            get : function() { return HEAPU8.subarray(start, start + size); },
            set : function(value) {}
        });
        node.usedBytes = size;
        return 0;
    } catch (e) {
        return -1;
    }
});

EM_JS(void, sq_api_js_unlink, (const char *path), {
    try {
        FS.unlink(UTF8ToString(path));
    } catch (e) {
    }
});

void sq_api_stream_release(sq_api_context *ctx) {
    sq_api_stream *s = &ctx->stream;
    if (ctx->source_path[0] != '\0') {
        sq_api_js_unlink(ctx->source_path);
        ctx->source_path[0] = '\0';
    }
    sq_spq_stream_free(s->spq);
    free(s->scratch);
    free(s->buffer);
    memset(s, 0, sizeof(*s));
}

/* Starts a stream of total_size bytes (0 when unknown). Frees the loaded model first, so the
 * new one has the memory to itself. Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_stream_begin(sq_api_context *ctx, double total_size) {
    sq_error_clear(&ctx->error);
    sq_api_release_model(ctx);
    sq_api_stream_release(ctx);
    if (!(total_size >= 0) || total_size > 18014398509481984.0) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "invalid total size %.0f bytes", total_size);
        return -1;
    }
    sq_api_stream *s = &ctx->stream;
    s->scratch = malloc(SQ_API_CHUNK_MAX);
    if (s->scratch == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_NOMEM, "cannot allocate the %d-byte chunk buffer", SQ_API_CHUNK_MAX);
        return -1;
    }
    s->total = (uint64_t)total_size;
    s->mode = SQ_API_STREAM_HEADER;
    return 0;
}

/* Returns where JavaScript writes the next chunk (at most sq_api_stream_chunk_max bytes). */
EMSCRIPTEN_KEEPALIVE uint8_t *sq_api_stream_scratch(sq_api_context *ctx) {
    return ctx->stream.scratch;
}

EMSCRIPTEN_KEEPALIVE int sq_api_stream_chunk_max(void) {
    return SQ_API_CHUNK_MAX;
}

/* Makes the whole-file buffer hold at least needed bytes. */
static int reserve_buffer(sq_api_context *ctx, uint64_t needed) {
    sq_api_stream *s = &ctx->stream;
    if (needed <= s->capacity) {
        return 0;
    }
    uint64_t capacity = s->capacity > 0 ? s->capacity : STREAM_INITIAL_CAPACITY;
    if (s->total > 0) {
        if (needed > s->total && needed > sizeof(s->header)) {
            sq_error_set(&ctx->error, SQ_ERR_FORMAT, "the source sent more than the %llu bytes it announced",
                         (unsigned long long)s->total);
            return -1;
        }
        capacity = needed;
    }
    while (capacity < needed) {
        capacity *= 2;
    }
    uint8_t *grown = capacity <= SIZE_MAX ? realloc(s->buffer, (size_t)capacity) : NULL;
    if (grown == NULL) {
        sq_error_set(&ctx->error, SQ_ERR_NOMEM,
                     "cannot allocate %llu bytes for the model file in WebAssembly memory (limit %.0f bytes)",
                     (unsigned long long)capacity, (double)emscripten_get_heap_max());
        return -1;
    }
    s->buffer = grown;
    s->capacity = capacity;
    return 0;
}

/* Chooses the .spq reader or the whole-file buffer from the first 8 bytes. */
static int choose_mode(sq_api_context *ctx) {
    sq_api_stream *s = &ctx->stream;
    if (memcmp(s->header, SQ_SPQ_MAGIC, SQ_SPQ_MAGIC_SIZE) == 0) {
        /* A known total size bounds what the .spq reader allocates by the bytes that will arrive. */
        if (sq_spq_stream_create(&s->spq, &ctx->error) != SQ_OK ||
            sq_spq_stream_set_total_size(s->spq, s->total, &ctx->error) != SQ_OK) {
            return -1;
        }
        s->mode = SQ_API_STREAM_SPQ;
        return sq_spq_stream_feed(s->spq, s->header, sizeof(s->header), &ctx->error) == SQ_OK ? 0 : -1;
    }
    s->mode = SQ_API_STREAM_BUFFER;
    uint64_t initial = s->total > sizeof(s->header) ? s->total : sizeof(s->header);
    if (reserve_buffer(ctx, initial) != 0) {
        return -1;
    }
    memcpy(s->buffer, s->header, sizeof(s->header));
    return 0;
}

/* Consumes n bytes at bytes (normally sq_api_stream_scratch). Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_stream_feed(sq_api_context *ctx, const uint8_t *bytes, int n) {
    sq_api_stream *s = &ctx->stream;
    if (s->mode == SQ_API_STREAM_IDLE) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "no stream is open; call sq_api_stream_begin first");
        return -1;
    }
    if (n < 0) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "invalid chunk size %d", n);
        return -1;
    }
    uint64_t consumed = 0;
    while (s->mode == SQ_API_STREAM_HEADER && consumed < (uint64_t)n) {
        s->header[s->received++] = bytes[consumed++];
        if (s->received == sizeof(s->header) && choose_mode(ctx) != 0) {
            return -1;
        }
    }
    uint64_t rest = (uint64_t)n - consumed;
    if (rest == 0) {
        return 0;
    }
    if (s->mode == SQ_API_STREAM_SPQ) {
        if (sq_spq_stream_feed(s->spq, bytes + consumed, (size_t)rest, &ctx->error) != SQ_OK) {
            return -1;
        }
    } else {
        if (reserve_buffer(ctx, s->received + rest) != 0) {
            return -1;
        }
        memcpy(s->buffer + s->received, bytes + consumed, (size_t)rest);
    }
    s->received += rest;
    return 0;
}

/* Checks the byte count and finishes the .spq reader into an integer model. */
static int finish_spq(sq_api_context *ctx, const char *tokenizer_path) {
    sq_api_stream *s = &ctx->stream;
    if (tokenizer_path != NULL && tokenizer_path[0] != '\0') {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG,
                     "a .spq model carries its own tokenizer; load it without a tokenizer file");
        return -1;
    }
    sq_spq_model spq = {0};
    if (sq_spq_stream_finish(s->spq, &spq, &ctx->error) != SQ_OK) {
        return -1;
    }
    sq_rt_model *rt_model = NULL;
    if (sq_rt_model_create(&spq, NULL, &rt_model, &ctx->error) != SQ_OK) {
        return -1;
    }
    return sq_api_adopt_integer(ctx, rt_model);
}

/* Finishes the stream and loads the model (with the tokenizer file at tokenizer_path for a
 * llama2.c model; NULL or "" otherwise). With keep_source the file's bytes stay readable at
 * sq_api_source_path until the context is freed. Returns 0 or -1; the stream is closed either
 * way. */
EMSCRIPTEN_KEEPALIVE int sq_api_stream_end(sq_api_context *ctx, const char *tokenizer_path, int keep_source) {
    sq_api_stream *s = &ctx->stream;
    int result = -1;
    if (s->mode == SQ_API_STREAM_IDLE) {
        sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "no stream is open; call sq_api_stream_begin first");
    } else if (s->total > 0 && s->received != s->total) {
        sq_error_set(&ctx->error, SQ_ERR_FORMAT, "the model file ended after %llu of its %llu bytes",
                     (unsigned long long)s->received, (unsigned long long)s->total);
    } else if (s->mode == SQ_API_STREAM_HEADER) {
        sq_error_set(&ctx->error, SQ_ERR_FORMAT, "the model file has only %llu bytes, too short for any model format",
                     (unsigned long long)s->received);
    } else if (s->mode == SQ_API_STREAM_SPQ) {
        result = finish_spq(ctx, tokenizer_path);
    } else {
        snprintf(ctx->source_path, sizeof(ctx->source_path), "/sq-source-%p.bin", (void *)ctx);
        if (sq_api_js_expose(ctx->source_path, s->buffer, (double)s->received) != 0) {
            sq_error_set(&ctx->error, SQ_ERR_IO, "cannot create the in-memory file %s", ctx->source_path);
            ctx->source_path[0] = '\0';
        } else {
            result = sq_api_model_load(ctx, ctx->source_path, tokenizer_path);
        }
    }

    /* Keep only the exposed buffer, and only when asked to. */
    sq_spq_stream_free(s->spq);
    s->spq = NULL;
    free(s->scratch);
    s->scratch = NULL;
    s->mode = SQ_API_STREAM_IDLE;
    if (!keep_source || result != 0) {
        sq_api_stream_release(ctx);
    }
    return result;
}

/* Drops a stream in progress, as after a cancelled download. */
EMSCRIPTEN_KEEPALIVE void sq_api_stream_abort(sq_api_context *ctx) {
    sq_api_stream_release(ctx);
}

/* Returns the MEMFS path of the kept source file, or "" when there is none. */
EMSCRIPTEN_KEEPALIVE const char *sq_api_source_path(sq_api_context *ctx) {
    return ctx->source_path;
}

/* Returns the bytes received by the open stream. */
EMSCRIPTEN_KEEPALIVE double sq_api_stream_received(sq_api_context *ctx) {
    return (double)ctx->stream.received;
}
