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
