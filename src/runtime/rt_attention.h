/* Attention of the integer runtime over its quantized KV cache. */
#ifndef SQ_RUNTIME_RT_ATTENTION_H
#define SQ_RUNTIME_RT_ATTENTION_H

#include "runtime/rt_session.h"

/* Cached positions dequantized at a time. */
#define SQ_RT_ATTENTION_TILE 32
/* Largest number of query heads per KV head (grouped-query attention). */
#define SQ_RT_ATTENTION_MAX_GROUP 64

/* Computes session->attn for n_tokens tokens at position.. from session->q and the cache of
 * layer (which must already hold positions up to position + n_tokens - 1). */
void sq_rt_attention(sq_rt_session *session, int32_t layer, int32_t n_tokens, int32_t position);

#endif
