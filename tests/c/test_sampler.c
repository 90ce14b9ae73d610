/* Tests of the token sampler (src/sample/sampler.c): greedy selection and its tie rule, seeded
 * reproducibility, top-k, top-p, the repetition penalty, parameter validation, and a
 * chi-square test that sampled frequencies follow softmax(logits / T). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sample/sampler.h"
#include "test_util.h"

static sq_sampler_params params_with(float temperature, int32_t top_k, float top_p, uint64_t seed) {
    sq_sampler_params p = sq_sampler_default_params();
    p.temperature = temperature;
    p.top_k = top_k;
    p.top_p = top_p;
    p.repetition_penalty = 1.0f;
    p.seed = seed;
    return p;
}

/* Samples once from a copy of logits (n), so the caller's array is never modified. */
static int32_t sample_copy(sq_sampler *sampler, const float *logits, int n) {
    float copy[64];
    /* The sampler reads vocab_size logits, so a shorter row would leave it reading garbage. */
    CHECK(n == sampler->vocab_size);
    memcpy(copy, logits, (size_t)n * sizeof(float));
    return sq_sampler_sample(sampler, copy, NULL, 0);
}

/* Draws `draws` samples and counts them per token. */
static void count_draws(sq_sampler *sampler, const float *logits, int n, int draws, int *counts) {
    memset(counts, 0, (size_t)n * sizeof(int));
    for (int i = 0; i < draws; i++) {
        int32_t id = sample_copy(sampler, logits, n);
        if (id >= 0 && id < n) {
            counts[id]++;
        }
    }
}

/* Pearson's chi-square statistic of counts against probabilities (n), over `draws` draws;
 * categories with probability 0 must have count 0 and are left out. */
static double chi_square(const int *counts, const double *probabilities, int n, int draws) {
    double statistic = 0.0;
    for (int i = 0; i < n; i++) {
        if (probabilities[i] == 0.0) {
            statistic += counts[i] > 0 ? INFINITY : 0.0;
            continue;
        }
        double expected = probabilities[i] * draws;
        statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
    }
    return statistic;
}

static void test_greedy_picks_first_maximum(void) {
    sq_sampler sampler;
    sq_error err = {0};
    sq_sampler_params p = params_with(0.0f, 40, 0.95f, 1);
    CHECK(sq_sampler_init(&sampler, &p, 5, &err) == SQ_OK);
    float logits[5] = {1.0f, 3.0f, 3.0f, 2.0f, -7.0f};
    for (int i = 0; i < 10; i++) {
        CHECK(sample_copy(&sampler, logits, 5) == 1);
    }
    float last[5] = {-1.0f, -2.0f, -3.0f, -4.0f, 0.5f};
    CHECK(sample_copy(&sampler, last, 5) == 4);
    float first[5] = {9.0f, 9.0f, 9.0f, 9.0f, 9.0f};
    CHECK(sample_copy(&sampler, first, 5) == 0);
    sq_sampler_free(&sampler);
}

static void test_same_seed_same_sequence(void) {
    float logits[6] = {0.1f, 0.5f, 0.2f, 0.4f, 0.3f, 0.0f};
    sq_sampler_params p = params_with(1.0f, 0, 1.0f, 1234);
    sq_sampler a, b, c;
    sq_error err = {0};
    CHECK(sq_sampler_init(&a, &p, 6, &err) == SQ_OK);
    CHECK(sq_sampler_init(&b, &p, 6, &err) == SQ_OK);
    p.seed = 1235;
    CHECK(sq_sampler_init(&c, &p, 6, &err) == SQ_OK);
    int same = 1;
    int differs_from_other_seed = 0;
    for (int i = 0; i < 200; i++) {
        int32_t x = sample_copy(&a, logits, 6);
        int32_t y = sample_copy(&b, logits, 6);
        int32_t z = sample_copy(&c, logits, 6);
        same &= x == y;
        differs_from_other_seed |= x != z;
    }
    CHECK(same);
    CHECK(differs_from_other_seed);
    sq_sampler_free(&a);
    sq_sampler_free(&b);
    sq_sampler_free(&c);
}

static void test_top_k_one_is_argmax(void) {
    float logits[8] = {0.3f, 1.2f, 1.1f, -0.4f, 1.19f, 0.0f, 0.9f, 1.0f};
    sq_sampler sampler;
    sq_error err = {0};
    sq_sampler_params p = params_with(2.0f, 1, 1.0f, 9);
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_OK);
    int all_argmax = 1;
    for (int i = 0; i < 500; i++) {
        all_argmax &= sample_copy(&sampler, logits, 8) == 1;
    }
    CHECK(all_argmax);

    /* A tie for the maximum keeps the lower token id. */
    float tied[8] = {0.0f, 2.0f, 1.0f, 2.0f, -1.0f, -1.0f, -1.0f, -1.0f};
    int lower_id = 1;
    for (int i = 0; i < 200; i++) {
        lower_id &= sample_copy(&sampler, tied, 8) == 1;
    }
    CHECK(lower_id);
    sq_sampler_free(&sampler);
}

static void test_tiny_top_p_is_argmax(void) {
    float logits[8] = {0.3f, 1.2f, 1.1f, -0.4f, 1.19f, 0.0f, 0.9f, 1.25f};
    sq_sampler sampler;
    sq_error err = {0};
    sq_sampler_params p = params_with(1.5f, 0, 1e-6f, 10);
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_OK);
    int all_argmax = 1;
    for (int i = 0; i < 500; i++) {
        all_argmax &= sample_copy(&sampler, logits, 8) == 7;
    }
    CHECK(all_argmax);
    sq_sampler_free(&sampler);
}

/* 20000 draws from 4 tokens at T = 0.7: the chi-square statistic (3 degrees of freedom) must
 * stay below 25, which a correct sampler exceeds with probability about 1.6e-5. */
static void test_frequencies_follow_softmax(void) {
    enum { DRAWS = 20000 };
    float logits[4] = {0.5f, 1.0f, -0.3f, 0.0f};
    double temperature = 0.7;
    double probabilities[4];
    double sum = 0.0;
    for (int i = 0; i < 4; i++) {
        probabilities[i] = exp(logits[i] / temperature);
        sum += probabilities[i];
    }
    for (int i = 0; i < 4; i++) {
        probabilities[i] /= sum;
    }

    sq_sampler sampler;
    sq_error err = {0};
    sq_sampler_params p = params_with((float)temperature, 0, 1.0f, 2024);
    CHECK(sq_sampler_init(&sampler, &p, 4, &err) == SQ_OK);
    int counts[4];
    count_draws(&sampler, logits, 4, DRAWS, counts);
    double statistic = chi_square(counts, probabilities, 4, DRAWS);
    fprintf(stderr, "note: counts %d %d %d %d, expected %.0f %.0f %.0f %.0f, chi-square %.2f\n", counts[0], counts[1],
            counts[2], counts[3], probabilities[0] * DRAWS, probabilities[1] * DRAWS, probabilities[2] * DRAWS,
            probabilities[3] * DRAWS, statistic);
    CHECK_MSG(statistic < 25.0, "chi-square %.2f over 4 tokens", statistic);

    /* Several seeds, to catch a bias that one seed hides. */
    int failures = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        p.seed = seed;
        sq_sampler other;
        CHECK(sq_sampler_init(&other, &p, 4, &err) == SQ_OK);
        count_draws(&other, logits, 4, DRAWS, counts);
        failures += chi_square(counts, probabilities, 4, DRAWS) >= 25.0;
        sq_sampler_free(&other);
    }
    CHECK(failures == 0);
    sq_sampler_free(&sampler);
}

/* top-k 2 and top-p renormalize over the kept tokens and never draw the others. */
static void test_top_k_and_top_p_renormalize(void) {
    enum { DRAWS = 20000 };
    /* Probabilities 0.5, 0.3, 0.15, 0.05 at T = 1. */
    float logits[4] = {(float)log(0.5), (float)log(0.3), (float)log(0.15), (float)log(0.05)};
    double kept[4] = {0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0};
    sq_sampler sampler;
    sq_error err = {0};
    int counts[4];

    sq_sampler_params p = params_with(1.0f, 2, 1.0f, 31);
    CHECK(sq_sampler_init(&sampler, &p, 4, &err) == SQ_OK);
    count_draws(&sampler, logits, 4, DRAWS, counts);
    CHECK(counts[2] == 0);
    CHECK(counts[3] == 0);
    CHECK_MSG(chi_square(counts, kept, 4, DRAWS) < 20.0, "top-k 2 counts %d %d", counts[0], counts[1]);
    sq_sampler_free(&sampler);

    /* Cumulative mass 0.5, then 0.8 >= 0.75: the first two tokens are kept. */
    p = params_with(1.0f, 0, 0.75f, 32);
    CHECK(sq_sampler_init(&sampler, &p, 4, &err) == SQ_OK);
    count_draws(&sampler, logits, 4, DRAWS, counts);
    CHECK(counts[2] == 0);
    CHECK(counts[3] == 0);
    CHECK_MSG(chi_square(counts, kept, 4, DRAWS) < 20.0, "top-p 0.75 counts %d %d", counts[0], counts[1]);
    sq_sampler_free(&sampler);

    /* top-p 0.9 keeps three tokens: 0.5, 0.3, 0.15 renormalized by 0.95. */
    double three[4] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0};
    p = params_with(1.0f, 0, 0.9f, 33);
    CHECK(sq_sampler_init(&sampler, &p, 4, &err) == SQ_OK);
    count_draws(&sampler, logits, 4, DRAWS, counts);
    CHECK(counts[3] == 0);
    CHECK_MSG(chi_square(counts, three, 4, DRAWS) < 25.0, "top-p 0.9 counts %d %d %d", counts[0], counts[1], counts[2]);
    sq_sampler_free(&sampler);

    /* top-k larger than the vocabulary keeps everything. */
    double all[4] = {0.5, 0.3, 0.15, 0.05};
    p = params_with(1.0f, 100, 1.0f, 34);
    CHECK(sq_sampler_init(&sampler, &p, 4, &err) == SQ_OK);
    count_draws(&sampler, logits, 4, DRAWS, counts);
    CHECK_MSG(chi_square(counts, all, 4, DRAWS) < 25.0, "top-k 100 counts %d %d %d %d", counts[0], counts[1], counts[2],
              counts[3]);
    sq_sampler_free(&sampler);
}

/* The penalty divides positive logits and multiplies negative ones for recent tokens. */
static void test_repetition_penalty(void) {
    sq_sampler sampler;
    sq_error err = {0};
    sq_sampler_params p = params_with(0.0f, 0, 1.0f, 1);
    p.repetition_penalty = 2.0f;
    CHECK(sq_sampler_init(&sampler, &p, 3, &err) == SQ_OK);

    float positive[3] = {2.0f, 1.9f, -1.0f};
    int32_t recent[3] = {0, -5, 99}; /* out-of-range ids are ignored */
    CHECK(sq_sampler_sample(&sampler, positive, recent, 3) == 1);
    CHECK(positive[0] == 1.0f);

    float negative[3] = {-1.0f, -1.5f, -3.0f};
    CHECK(sq_sampler_sample(&sampler, negative, recent, 1) == 1);
    CHECK(negative[0] == -2.0f);

    float untouched[3] = {2.0f, 1.9f, -1.0f};
    CHECK(sq_sampler_sample(&sampler, untouched, NULL, 0) == 0);
    sq_sampler_free(&sampler);
}

static void test_invalid_parameters_rejected(void) {
    sq_sampler sampler;
    sq_error err = {0};
    struct {
        sq_sampler_params params;
        const char *value; /* text the message must contain */
    } cases[] = {
        {params_with(-1.0f, 40, 0.9f, 1), "-1"},
        {params_with(NAN, 40, 0.9f, 1), "nan"},
        {params_with(INFINITY, 40, 0.9f, 1), "inf"},
        {params_with(0.8f, 40, 0.0f, 1), "top-p 0"},
        {params_with(0.8f, 40, 1.5f, 1), "1.5"},
        {params_with(0.8f, 40, -0.2f, 1), "-0.2"},
        {params_with(0.8f, 40, NAN, 1), "nan"},
        {params_with(0.8f, -2, 0.9f, 1), "-2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sq_error_clear(&err);
        CHECK_MSG(sq_sampler_init(&sampler, &cases[i].params, 8, &err) == SQ_ERR_INVALID_ARG, "case %zu accepted", i);
        CHECK_MSG(strstr(err.message, cases[i].value) != NULL, "case %zu: message '%s' lacks '%s'", i, err.message,
                  cases[i].value);
    }
    sq_sampler_params p = params_with(0.8f, 40, 0.9f, 1);
    p.repetition_penalty = 0.0f;
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_ERR_INVALID_ARG);
    p.repetition_penalty = NAN;
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_ERR_INVALID_ARG);

    /* Boundary values that are valid. */
    p = params_with(0.0f, 0, 1.0f, 1);
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_OK);
    sq_sampler_free(&sampler);
    p = params_with(0.8f, 0, 1e-6f, 0);
    CHECK(sq_sampler_init(&sampler, &p, 8, &err) == SQ_OK);
    sq_sampler_free(&sampler);

    /* The defaults documented in sampler.h. */
    sq_sampler_params defaults = sq_sampler_default_params();
    CHECK(defaults.temperature == 0.8f);
    CHECK(defaults.top_k == 40);
    CHECK(defaults.top_p == 0.95f);
    CHECK(defaults.repetition_penalty == 1.0f);
    CHECK(defaults.seed == 42);
}

int main(void) {
    RUN_TEST(test_greedy_picks_first_maximum);
    RUN_TEST(test_same_seed_same_sequence);
    RUN_TEST(test_top_k_one_is_argmax);
    RUN_TEST(test_tiny_top_p_is_argmax);
    RUN_TEST(test_frequencies_follow_softmax);
    RUN_TEST(test_top_k_and_top_p_renormalize);
    RUN_TEST(test_repetition_penalty);
    RUN_TEST(test_invalid_parameters_rejected);
    TEST_MAIN_END();
}
