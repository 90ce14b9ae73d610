/* Prefill and sampling loop of the integer runtime. */
#include "runtime/rt_generate.h"

#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

sq_status sq_rt_generate(sq_rt_session *s, sq_sampler *sampler, const sq_tokenizer *tokenizer,
                         const int32_t *prompt, size_t n_prompt, int32_t max_tokens, sq_rt_token_fn on_token,
                         void *user_data, int32_t *generated, int32_t *n_generated, sq_rt_generate_stats *stats,
                         sq_error *err) {
    *n_generated = 0;
    if (n_prompt == 0 || n_prompt >= (size_t)s->capacity) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "the prompt has %zu tokens; expected 1 to %d for this session",
                            n_prompt, s->capacity - 1);
    }

    /* ---- prefill ---- */
    double begin = now_seconds();
    for (size_t start = 0; start < n_prompt; start += (size_t)s->max_batch) {
        int32_t batch = (int32_t)(n_prompt - start < (size_t)s->max_batch ? n_prompt - start : (size_t)s->max_batch);
        sq_logits_mode mode = start + (size_t)batch == n_prompt ? SQ_LOGITS_LAST : SQ_LOGITS_NONE;
        sq_status status = sq_rt_forward(s, prompt + start, batch, (int32_t)start, mode, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    double prefilled = now_seconds();

    /* ---- decode ---- */
    int32_t position = (int32_t)n_prompt;
    sq_status status = SQ_OK;
    while (*n_generated < max_tokens && position < s->capacity) {
        int32_t next = sq_sampler_sample(sampler, s->logits, generated, *n_generated);
        if (sq_tokenizer_is_control(tokenizer, next)) {
            break;
        }
        generated[(*n_generated)++] = next;
        if (on_token != NULL && on_token(user_data, next) != 0) {
            break;
        }
        if (position + 1 >= s->capacity || *n_generated == max_tokens) {
            break;
        }
        status = sq_rt_forward(s, &next, 1, position, SQ_LOGITS_LAST, err);
        if (status != SQ_OK) {
            break;
        }
        position++;
    }
    if (stats != NULL) {
        stats->prefill_seconds = prefilled - begin;
        stats->decode_seconds = now_seconds() - prefilled;
    }
    return status;
}
