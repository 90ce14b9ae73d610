/* Sampler: repetition penalty, then greedy or temperature → softmax → top-k → top-p → draw. */
#include "sample/sampler.h"

#include <math.h>
#include <stdlib.h>

sq_sampler_params sq_sampler_default_params(void) {
    sq_sampler_params params = {0.8f, 40, 0.95f, 1.0f, 42};
    return params;
}

sq_status sq_sampler_init(sq_sampler *sampler, const sq_sampler_params *params, int32_t vocab_size, sq_error *err) {
    if (!(params->temperature >= 0.0f) || !isfinite(params->temperature)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid temperature %g, expected a finite value >= 0",
                            (double)params->temperature);
    }
    if (params->top_k < 0) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid top-k %d, expected 0 (off) or a positive count", params->top_k);
    }
    if (!(params->top_p > 0.0f && params->top_p <= 1.0f)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid top-p %g, expected a value in (0, 1]", (double)params->top_p);
    }
    if (!(params->repetition_penalty > 0.0f) || !isfinite(params->repetition_penalty)) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid repetition penalty %g, expected a positive finite value",
                            (double)params->repetition_penalty);
    }
    sampler->params = *params;
    sampler->vocab_size = vocab_size;
    sampler->rng_state = params->seed ^ 0x9E3779B97F4A7C15ULL;
    if (sampler->rng_state == 0) {
        sampler->rng_state = 1;
    }
    sampler->candidates = malloc((size_t)vocab_size * sizeof(sq_candidate));
    if (sampler->candidates == NULL) {
        sq_sampler_free(sampler);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the sampler for %d tokens", vocab_size);
    }
    return SQ_OK;
}

void sq_sampler_free(sq_sampler *sampler) {
    free(sampler->candidates);
    sampler->candidates = NULL;
}

/* Returns a uniform float in [0, 1) from xorshift64*. */
static float next_uniform(sq_sampler *sampler) {
    uint64_t x = sampler->rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sampler->rng_state = x;
    return (float)((x * 0x2545F4914F6CDD1DULL) >> 40) / 16777216.0f;
}

static int32_t argmax(const float *values, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (values[i] > values[best]) {
            best = i;
        }
    }
    return best;
}

/* Orders candidates by descending probability; ties keep the lower token id first. */
static int compare_by_probability(const void *a, const void *b) {
    const sq_candidate *ca = a;
    const sq_candidate *cb = b;
    if (ca->probability != cb->probability) {
        return ca->probability > cb->probability ? -1 : 1;
    }
    return ca->id < cb->id ? -1 : (ca->id > cb->id);
}

int32_t sq_sampler_sample(sq_sampler *sampler, float *logits, const int32_t *recent, int32_t n_recent) {
    const sq_sampler_params *p = &sampler->params;
    int32_t n = sampler->vocab_size;

    if (p->repetition_penalty != 1.0f) {
        for (int32_t i = 0; i < n_recent; i++) {
            int32_t id = recent[i];
            if (id >= 0 && id < n) {
                logits[id] = logits[id] > 0 ? logits[id] / p->repetition_penalty : logits[id] * p->repetition_penalty;
            }
        }
    }
    if (p->temperature == 0.0f) {
        return argmax(logits, n);
    }

    float max_logit = logits[argmax(logits, n)];
    double sum = 0.0;
    sq_candidate *candidates = sampler->candidates;
    for (int32_t i = 0; i < n; i++) {
        candidates[i].probability = expf((logits[i] - max_logit) / p->temperature);
        candidates[i].id = i;
        sum += candidates[i].probability;
    }
    for (int32_t i = 0; i < n; i++) {
        candidates[i].probability = (float)(candidates[i].probability / sum);
    }
    qsort(candidates, (size_t)n, sizeof(sq_candidate), compare_by_probability);
    int32_t keep = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    double cumulative = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        cumulative += candidates[i].probability;
        if (cumulative >= p->top_p) {
            keep = i + 1;
            break;
        }
    }

    double kept_mass = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        kept_mass += candidates[i].probability;
    }
    double target = next_uniform(sampler) * kept_mass;
    double running = 0.0;
    for (int32_t i = 0; i < keep; i++) {
        running += candidates[i].probability;
        if (target < running) {
            return candidates[i].id;
        }
    }
    return candidates[keep - 1].id;
}
