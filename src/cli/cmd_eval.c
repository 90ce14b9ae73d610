/* spinquant eval: windowed perplexity of a model on a text file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "eval/perplexity.h"
#include "cli/recipe_options.h"
#include "forward/forward.h"
#include "pipeline/recipe.h"
#include "runtime/rt_session.h"
#include "spq/spq_reader.h"

/* Tokens per forward call during evaluation: large enough to reuse each weight row across
 * many tokens, small enough that the logits buffer (batch x vocabulary) stays modest. */
#define CLI_EVAL_BATCH 64

static int report_progress(void *user_data, int64_t done, int64_t total, double mean_nll) {
    const int *verbose = user_data;
    if (*verbose) {
        fprintf(stderr, "spinquant: window %lld/%lld, mean NLL so far %.6f\n", (long long)done, (long long)total, mean_nll);
    }
    return 0;
}

/* Evaluates a .spq model with the integer runtime and prints the result like the fp32 path. */
static int eval_spq(const char *path, const char *text_path, int32_t window, int32_t max_windows, int32_t threads,
                    int json, int verbose) {
    sq_logger logger = cli_logger(verbose);
    sq_error err = {0};
    char *text = NULL;
    size_t length = 0;
    sq_rt_model *model = NULL;
    int32_t *ids = NULL;
    size_t count = 0;
    sq_threadpool *pool = NULL;
    sq_rt_session *session = NULL;
    sq_perplexity_result result = {0};
    sq_status status = cli_read_text(text_path, &text, &length, &err);
    if (status == SQ_OK) {
        status = sq_rt_model_load(path, &logger, &model, NULL, &err);
    }
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(model->spq.tokenizer, text, length, -1, 0, &ids, &count, &err);
    }
    if (status == SQ_OK) {
        int32_t context = model->spq.config.context_length;
        window = window > 0 ? window : (context < 2048 ? context : 2048);
        status = sq_threadpool_create(threads, &pool, &err);
    }
    if (status == SQ_OK) {
        status = sq_rt_session_create(model, window, CLI_EVAL_BATCH, pool, &session, &err);
    }
    if (status == SQ_OK) {
        status = sq_rt_perplexity(session, ids, count, window, max_windows, report_progress, &verbose, &result, &err);
    }
    if (status == SQ_OK && json) {
        const sq_spq_settings *s = &model->spq.settings;
        printf("{\"ppl\": %.9f, \"mean_nll\": %.9f, \"n_tokens\": %lld, \"n_windows\": %lld, \"n_predicted\": %lld, "
               "\"window\": %d, \"runtime\": \"integer\", \"kernels\": \"%s\", \"w_bits\": %d, \"a_bits\": %d, "
               "\"kv_bits\": %d, \"w_group\": %d, \"rotation\": \"%s\", \"mode\": \"%s\", \"embed_bits\": %d}\n",
               result.ppl, result.mean_nll, (long long)result.n_tokens, (long long)result.n_windows,
               (long long)result.n_predicted, result.window, sq_kernel_isa_name(model->kernels->isa), s->w_bits,
               s->a_bits, s->kv_bits, s->w_group, s->rotation, s->mode_had ? "had" : "nohad", s->embed_bits);
    } else if (status == SQ_OK) {
        printf("perplexity %.6f (mean NLL %.6f) over %lld windows of %d tokens, %lld predicted of %lld (integer runtime)\n",
               result.ppl, result.mean_nll, (long long)result.n_windows, result.window, (long long)result.n_predicted,
               (long long)result.n_tokens);
    }
    sq_rt_session_free(session);
    sq_threadpool_free(pool);
    free(ids);
    sq_rt_model_free(model);
    free(text);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}

int cmd_eval(int argc, char **argv) {
    const char *tokenizer_path = NULL;
    const char *text_path = NULL;
    int32_t window = 0;
    int32_t max_windows = 0;
    int32_t threads = 1;
    int json = 0;
    int verbose = 0;
    recipe_options quant;
    recipe_options_defaults(&quant);
    cli_option options[7 + RECIPE_OPTION_COUNT] = {
        {"--tokenizer", CLI_STRING, &tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--text", CLI_STRING, &text_path, 0, 0, "UTF-8 text to evaluate"},
        {"--window", CLI_INT, &window, 2, 1 << 20, "tokens per window (default: the smaller of the context and 2048)"},
        {"--max-windows", CLI_INT, &max_windows, 0, 1 << 30, "evaluate at most this many windows (0: all)"},
        {"--threads", CLI_INT, &threads, 1, 64, "worker threads (default 1)"},
        {"--json", CLI_FLAG, &json, 0, 0, "print one JSON object"},
        {"--verbose", CLI_FLAG, &verbose, 0, 0, "print progress per window to stderr"},
    };
    recipe_options_table(&quant, options + 7);
    const char *usage = "spinquant eval MODEL [--tokenizer FILE] --text FILE [--window N] [--max-windows N] "
                        "[--w-bits B] [--a-bits B] [--kv-bits B] [--rotation none|hadamard|random|FILE] [--json]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, 7 + RECIPE_OPTION_COUNT, positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }
    if (text_path == NULL) {
        fprintf(stderr, "spinquant: error: missing --text FILE\nusage: %s\n", usage);
        return CLI_EXIT_USAGE;
    }
    if (sq_spq_is_spq_file(positionals[0])) {
        if (recipe_options_active(&quant)) {
            fprintf(stderr, "spinquant: error: '%s' is an integer .spq model, which is already quantized; drop the "
                            "quantization and rotation flags\n", positionals[0]);
            return CLI_EXIT_USAGE;
        }
        return eval_spq(positionals[0], text_path, window, max_windows, threads, json, verbose);
    }

    sq_logger logger = cli_logger(verbose);
    sq_error err = {0};
    sq_model model = {0};
    int32_t *ids = NULL;
    size_t count = 0;
    sq_threadpool *pool = NULL;
    sq_run_state *state = NULL;
    sq_perplexity_result result = {0};
    sq_recipe recipe;
    int32_t *calibration = NULL;
    sq_online online = {0};
    int quantized = recipe_options_active(&quant);
    sq_status status = cli_load_model(positionals[0], tokenizer_path, &logger, &model, &err);
    if (status == SQ_OK) {
        status = cli_tokenize_file(&model, text_path, &ids, &count, &err);
    }
    if (status == SQ_OK) {
        if (window == 0) {
            window = model.config.context_length < 2048 ? model.config.context_length : 2048;
        }
        if (window > model.config.context_length) {
            status = sq_error_set(&err, SQ_ERR_INVALID_ARG, "--window %d exceeds the model's context of %d tokens", window,
                                  model.config.context_length);
        }
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(threads, &pool, &err);
    }
    if (status == SQ_OK && quantized) {
        status = recipe_options_build(&quant, &model, &recipe, &calibration, &err);
        if (status == SQ_OK) {
            status = sq_recipe_apply(&recipe, &model, pool, &logger, &online, &err);
        }
    }
    if (status == SQ_OK) {
        status = sq_run_state_create(&model, window, CLI_EVAL_BATCH, pool, &state, &err);
    }
    if (status == SQ_OK && quantized) {
        state->hooks = sq_online_hooks(&online);
    }
    if (status == SQ_OK) {
        status = sq_perplexity_evaluate(state, ids, count, window, max_windows, report_progress, &verbose, &result, &err);
    }

    if (status == SQ_OK) {
        if (json) {
            printf("{\"ppl\": %.9f, \"mean_nll\": %.9f, \"n_tokens\": %lld, \"n_windows\": %lld, \"n_predicted\": %lld, "
                   "\"window\": %d, ",
                   result.ppl, result.mean_nll, (long long)result.n_tokens, (long long)result.n_windows,
                   (long long)result.n_predicted, result.window);
            recipe_options_print_json(stdout, &quant);
            printf("}\n");
        } else {
            printf("perplexity %.6f (mean NLL %.6f) over %lld windows of %d tokens, %lld predicted of %lld\n", result.ppl,
                   result.mean_nll, (long long)result.n_windows, result.window, (long long)result.n_predicted,
                   (long long)result.n_tokens);
        }
    }
    sq_run_state_free(state);
    sq_online_free(&online);
    free(calibration);
    sq_threadpool_free(pool);
    free(ids);
    sq_model_free(&model);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
