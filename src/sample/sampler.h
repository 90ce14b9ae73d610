/* Token sampling: greedy at temperature 0, otherwise temperature, top-k, top-p (nucleus) and a
 * repetition penalty, drawn from a seeded generator so that runs reproduce. */
#ifndef SQ_SAMPLE_SAMPLER_H
#define SQ_SAMPLE_SAMPLER_H

#include <stdint.h>

#include "core/status.h"

typedef struct sq_sampler_params {
    float temperature;        /* 0 selects the most likely token */
    int32_t top_k;            /* keep the k most likely tokens; 0 keeps all */
    float top_p;              /* keep the smallest set whose probability reaches p; 1 keeps all */
    float repetition_penalty; /* > 1 makes recently seen tokens less likely; 1 disables it */
    uint64_t seed;
} sq_sampler_params;

typedef struct sq_candidate {
    float probability;
    int32_t id;
} sq_candidate;

typedef struct sq_sampler {
    sq_sampler_params params;
    int32_t vocab_size;
    uint64_t rng_state;     /* xorshift64* state, never zero */
    struct sq_candidate *candidates; /* (vocab_size) scratch: token ids with their probabilities */
} sq_sampler;

/* Returns the default parameters: temperature 0.8, top_k 40, top_p 0.95, no penalty, seed 42. */
sq_sampler_params sq_sampler_default_params(void);

/* Validates params (the message names the invalid field) and allocates the scratch buffers. */
sq_status sq_sampler_init(sq_sampler *sampler, const sq_sampler_params *params, int32_t vocab_size, sq_error *err);

void sq_sampler_free(sq_sampler *sampler);

/* Picks the next token from logits (vocab_size, modified in place); recent holds the
 * n_recent previous tokens the repetition penalty applies to. */
int32_t sq_sampler_sample(sq_sampler *sampler, float *logits, const int32_t *recent, int32_t n_recent);

#endif
