/* spinquant bench: prefill and decode speed of a model, with the integer runtime for a .spq
 * file and the fp32 path otherwise, optionally both side by side in one run (--compare).
 *
 * The prompt is a fixed pseudo-random token sequence, so no tokenizer is involved. Prefill runs
 * it in batches, and decode then feeds back the most likely token one at a time. For the integer
 * runtime the time share of the integer products (with activation quantization and the
 * classifier), the online Hadamard transforms, attention (RoPE, KV cache, softmax) and the rest
 * comes from the session's profile. Peak memory is the process's maximum resident set size after
 * each engine ran, so the engine measured first is not charged for the second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if !defined(__wasi__)
#include <sys/resource.h>
#endif

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "forward/forward.h"
#include "runtime/rt_session.h"
#include "spq/spq_reader.h"

typedef struct bench_options {
    const char *tokenizer_path;
    const char *compare_path;
    const char *compare_tokenizer_path;
    int32_t threads;
    int32_t prompt_tokens;
    int32_t decode_tokens;
    int32_t batch;
    int json;
    int verbose;
} bench_options;

typedef struct bench_result {
    const char *engine;     /* "integer" or "fp32" */
    const char *path;
    const char *kernels;
    double load_seconds;
    double prefill_seconds;
    double decode_seconds;
    int32_t prompt_tokens;
    int32_t decode_tokens;
    size_t model_bytes;     /* weights held in memory */
    size_t session_bytes;   /* activations and KV cache (integer runtime) */
    long peak_rss_kb;
    sq_rt_profile prefill_profile;
    sq_rt_profile decode_profile;
    int profiled;
} bench_result;

/* One forward pass of either engine. */
typedef sq_status (*forward_fn)(void *engine, const int32_t *tokens, int32_t n, int32_t position, sq_logits_mode mode,
                                sq_error *err);

static sq_status forward_integer(void *engine, const int32_t *tokens, int32_t n, int32_t position, sq_logits_mode mode,
                                 sq_error *err) {
    return sq_rt_forward(engine, tokens, n, position, mode, err);
}

static sq_status forward_fp32(void *engine, const int32_t *tokens, int32_t n, int32_t position, sq_logits_mode mode,
                              sq_error *err) {
    return sq_forward(engine, tokens, n, position, mode, err);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Returns the process's maximum resident set size in KiB (Linux ru_maxrss), or -1 where it is
 * unknown (WASI has no getrusage). */
static long peak_rss_kb(void) {
#if defined(__wasi__)
    return -1;
#else
    struct rusage usage;
    return getrusage(RUSAGE_SELF, &usage) == 0 ? usage.ru_maxrss : -1;
#endif
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        best = x[i] > x[best] ? i : best;
    }
    return best;
}

/* Runs prefill and decode; when profile is not NULL it is reset between the two phases. */
static sq_status run_phases(forward_fn forward, void *engine, const float *const *logits, int32_t vocab,
                            const bench_options *o, sq_rt_session *profiled, bench_result *r, sq_error *err) {
    int32_t *prompt = malloc((size_t)o->prompt_tokens * sizeof(int32_t));
    if (prompt == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %d prompt tokens", o->prompt_tokens);
    }
    for (int32_t i = 0; i < o->prompt_tokens; i++) {
        prompt[i] = (int32_t)(((int64_t)i * 7919 + 13) % vocab);
    }

    sq_status status = SQ_OK;
    double begin = seconds_now();
    for (int32_t start = 0; status == SQ_OK && start < o->prompt_tokens; start += o->batch) {
        int32_t n = o->prompt_tokens - start < o->batch ? o->prompt_tokens - start : o->batch;
        sq_logits_mode mode = start + n == o->prompt_tokens ? SQ_LOGITS_LAST : SQ_LOGITS_NONE;
        status = forward(engine, prompt + start, n, start, mode, err);
    }
    r->prefill_seconds = seconds_now() - begin;
    r->prompt_tokens = o->prompt_tokens;
    if (profiled != NULL) {
        r->prefill_profile = profiled->profile;
        memset(&profiled->profile, 0, sizeof(profiled->profile));
    }

    begin = seconds_now();
    for (int32_t i = 0; status == SQ_OK && i < o->decode_tokens; i++) {
        int32_t next = argmax(*logits, vocab);
        status = forward(engine, &next, 1, o->prompt_tokens + i, SQ_LOGITS_LAST, err);
    }
    r->decode_seconds = seconds_now() - begin;
    r->decode_tokens = o->decode_tokens;
    if (profiled != NULL) {
        r->decode_profile = profiled->profile;
        r->profiled = 1;
    }
    free(prompt);
    return status;
}

static sq_status bench_integer(const char *path, const bench_options *o, sq_threadpool *pool, const sq_logger *logger,
                               bench_result *r, sq_error *err) {
    sq_rt_model *model = NULL;
    sq_rt_session *session = NULL;
    double begin = seconds_now();
    sq_status status = sq_rt_model_load(path, logger, &model, NULL, err);
    r->load_seconds = seconds_now() - begin;
    if (status == SQ_OK) {
        status = sq_rt_session_create(model, o->prompt_tokens + o->decode_tokens, o->batch, pool, &session, err);
    }
    if (status == SQ_OK) {
        r->engine = "integer";
        r->path = path;
        r->kernels = sq_kernel_isa_name(model->kernels->isa);
        r->model_bytes = sq_rt_model_bytes(model);
        r->session_bytes = sq_rt_session_bytes(session);
        session->profiling = 1;
        const float *logits = session->logits;
        status = run_phases(forward_integer, session, &logits, model->spq.config.vocab_size, o, session, r, err);
    }
    r->peak_rss_kb = peak_rss_kb();
    sq_rt_session_free(session);
    sq_rt_model_free(model);
    return status;
}

static sq_status bench_fp32(const char *path, const char *tokenizer_path, const bench_options *o, sq_threadpool *pool,
                            const sq_logger *logger, bench_result *r, sq_error *err) {
    sq_model model = {0};
    sq_run_state *state = NULL;
    double begin = seconds_now();
    sq_status status = cli_load_model(path, tokenizer_path, logger, &model, err);
    r->load_seconds = seconds_now() - begin;
    if (status == SQ_OK) {
        status = sq_run_state_create(&model, o->prompt_tokens + o->decode_tokens, o->batch, pool, &state, err);
    }
    if (status == SQ_OK) {
        r->engine = "fp32";
        r->path = path;
        r->kernels = "fp32";
        r->model_bytes = sq_model_parameter_count(&model) * sizeof(float);
        const float *logits = state->logits;
        status = run_phases(forward_fp32, state, &logits, model.config.vocab_size, o, NULL, r, err);
    }
    r->peak_rss_kb = peak_rss_kb();
    sq_run_state_free(state);
    sq_model_free(&model);
    return status;
}

static double profile_total(const sq_rt_profile *p) {
    double total = p->matmul + p->classifier + p->hadamard + p->attention + p->other;
    return total > 0.0 ? total : 1.0;
}

static void print_profile_json(const char *name, const sq_rt_profile *p) {
    double total = profile_total(p);
    printf("\"%s\": {\"matmul\": %.4f, \"classifier\": %.4f, \"hadamard\": %.4f, \"attention\": %.4f, "
           "\"other\": %.4f}",
           name, p->matmul / total, p->classifier / total, p->hadamard / total, p->attention / total,
           p->other / total);
}

static void print_result_json(const bench_result *r) {
    printf("{\"engine\": \"%s\", \"model\": ", r->engine);
    cli_json_string(stdout, r->path, strlen(r->path));
    printf(", \"kernels\": \"%s\", \"load_seconds\": %.3f, \"prompt_tokens\": %d, \"prefill_tokens_per_second\": %.3f, "
           "\"decode_tokens\": %d, \"decode_tokens_per_second\": %.3f, \"model_bytes\": %zu, \"session_bytes\": %zu, "
           "\"peak_rss_bytes\": %lld",
           r->kernels, r->load_seconds, r->prompt_tokens, r->prompt_tokens / r->prefill_seconds, r->decode_tokens,
           r->decode_tokens / r->decode_seconds, r->model_bytes, r->session_bytes,
           r->peak_rss_kb >= 0 ? (long long)r->peak_rss_kb * 1024 : -1LL);
    if (r->profiled) {
        printf(", \"time_share\": {");
        print_profile_json("prefill", &r->prefill_profile);
        printf(", ");
        print_profile_json("decode", &r->decode_profile);
        printf("}");
    }
    printf("}");
}

static void print_profile_text(const char *name, const sq_rt_profile *p) {
    double total = profile_total(p);
    printf("  %-8s time share: matmul %.1f %%, classifier %.1f %%, hadamard %.1f %%, attention %.1f %%, "
           "other %.1f %%\n",
           name, 100.0 * p->matmul / total, 100.0 * p->classifier / total, 100.0 * p->hadamard / total,
           100.0 * p->attention / total, 100.0 * p->other / total);
}

static void print_result_text(const bench_result *r) {
    printf("%s (%s, %s kernels)\n", r->path, r->engine, r->kernels);
    printf("  prefill  %.2f tokens/s (%d tokens)\n  decode   %.2f tokens/s (%d tokens)\n",
           r->prompt_tokens / r->prefill_seconds, r->prompt_tokens, r->decode_tokens / r->decode_seconds,
           r->decode_tokens);
    if (r->profiled) {
        print_profile_text("prefill", &r->prefill_profile);
        print_profile_text("decode", &r->decode_profile);
    }
    printf("  model bytes %zu, session bytes %zu, ", r->model_bytes, r->session_bytes);
    if (r->peak_rss_kb >= 0) {
        printf("peak RSS %.1f MiB, ", (double)r->peak_rss_kb / 1024.0);
    }
    printf("load %.2f s\n", r->load_seconds);
}

int cmd_bench(int argc, char **argv) {
    bench_options o = {0};
    o.threads = 1;
    o.prompt_tokens = 128;
    o.decode_tokens = 64;
    o.batch = 32;
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &o.tokenizer_path, 0, 0, "tokenizer file for a fp32 MODEL without one"},
        {"--compare", CLI_STRING, &o.compare_path, 0, 0, "also run this fp32 model (the source of a .spq) and report speed ratios"},
        {"--compare-tokenizer", CLI_STRING, &o.compare_tokenizer_path, 0, 0, "tokenizer file for the --compare model"},
        {"--threads", CLI_INT, &o.threads, 1, 64, "worker threads (default 1)"},
        {"--prompt-tokens", CLI_INT, &o.prompt_tokens, 1, 1 << 20, "tokens to prefill (default 128)"},
        {"--decode-tokens", CLI_INT, &o.decode_tokens, 1, 1 << 20, "tokens to decode one at a time (default 64)"},
        {"--batch", CLI_INT, &o.batch, 1, 4096, "tokens per prefill call (default 32)"},
        {"--json", CLI_FLAG, &o.json, 0, 0, "print one JSON object"},
        {"--verbose", CLI_FLAG, &o.verbose, 0, 0, "log loading steps to stderr"},
    };
    const char *usage = "spinquant bench MODEL [--compare FP32_MODEL] [--threads N] [--prompt-tokens N] "
                        "[--decode-tokens N] [--json]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, (int)(sizeof(options) / sizeof(options[0])), positionals,
                                 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }

    sq_logger logger = cli_logger(o.verbose);
    sq_error err = {0};
    sq_threadpool *pool = NULL;
    bench_result first = {0};
    bench_result second = {0};
    int compare = o.compare_path != NULL;
    sq_status status = sq_threadpool_create(o.threads, &pool, &err);
    if (status == SQ_OK) {
        status = sq_spq_is_spq_file(positionals[0]) ? bench_integer(positionals[0], &o, pool, &logger, &first, &err)
                                                    : bench_fp32(positionals[0], o.tokenizer_path, &o, pool, &logger,
                                                                 &first, &err);
    }
    if (status == SQ_OK && compare) {
        status = sq_spq_is_spq_file(o.compare_path)
                     ? bench_integer(o.compare_path, &o, pool, &logger, &second, &err)
                     : bench_fp32(o.compare_path, o.compare_tokenizer_path, &o, pool, &logger, &second, &err);
    }

    if (status == SQ_OK) {
        double decode_ratio = compare ? (first.decode_tokens / first.decode_seconds) /
                                            (second.decode_tokens / second.decode_seconds) : 0.0;
        double prefill_ratio = compare ? (first.prompt_tokens / first.prefill_seconds) /
                                             (second.prompt_tokens / second.prefill_seconds) : 0.0;
        if (o.json) {
            printf("{\"threads\": %d, \"batch\": %d, \"results\": [", o.threads, o.batch);
            print_result_json(&first);
            if (compare) {
                printf(", ");
                print_result_json(&second);
                printf("], \"decode_speed_ratio\": %.4f, \"prefill_speed_ratio\": %.4f}\n", decode_ratio, prefill_ratio);
            } else {
                printf("]}\n");
            }
        } else {
            print_result_text(&first);
            if (compare) {
                print_result_text(&second);
                printf("speed ratio %s / %s: decode %.2fx, prefill %.2fx (%d threads)\n", first.engine, second.engine,
                       decode_ratio, prefill_ratio, o.threads);
            }
        }
    }
    sq_threadpool_free(pool);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
