/* Text generation with the integer runtime: prompt prefill in batches, then one token at a
 * time from the sampler. The stopping rules are those of the fp32 generate command: a control
 * token ends the text, and so do max_tokens and the session's capacity. */
#ifndef SQ_RUNTIME_RT_GENERATE_H
#define SQ_RUNTIME_RT_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rt_session.h"
#include "sample/sampler.h"
#include "tokenizer/tokenizer.h"

/* Receives each generated token as soon as it is sampled; returning non-zero stops. */
typedef int (*sq_rt_token_fn)(void *user_data, int32_t token);

typedef struct sq_rt_generate_stats {
    double prefill_seconds;
    double decode_seconds;
} sq_rt_generate_stats;

/* Runs prompt (n_prompt >= 1 tokens) and samples up to max_tokens tokens into generated
 * (capacity max_tokens), calling on_token (may be NULL) for each. A control token stops the
 * generation and is not stored. */
sq_status sq_rt_generate(sq_rt_session *session, sq_sampler *sampler, const sq_tokenizer *tokenizer,
                         const int32_t *prompt, size_t n_prompt, int32_t max_tokens, sq_rt_token_fn on_token,
                         void *user_data, int32_t *generated, int32_t *n_generated, sq_rt_generate_stats *stats,
                         sq_error *err);

#endif
