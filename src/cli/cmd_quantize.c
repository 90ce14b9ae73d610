/* spinquant quantize: applies a quantization recipe (the same as eval) to a model and writes
 * the integer .spq file the runtime executes. The file is assembled in memory, read back with
 * the .spq reader (every section, the tokenizer included) and only then written, through a
 * temporary file renamed over --out, so a failure leaves no partial file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/recipe_options.h"
#include "core/io.h"
#include "spq/spq_quantize.h"
#include "spq/spq_reader.h"
#include "spq/spq_writer.h"
#include "spq/tokenizer_access.h"

#define QUANTIZE_OPTIONS 6

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Checks that the tokenizer rebuilt from the file encodes a sample like the model's own. */
static sq_status check_tokenizer(const sq_tokenizer *expected, const sq_tokenizer *actual, sq_error *err) {
    static const char sample[] = "Once upon a time, 42 cats said \"hello\"\n\tto the caf\xc3\xa9 owner.";
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    sq_status status = sq_tokenizer_encode(expected, sample, sizeof(sample) - 1, -1, 1, &a, &na, err);
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(actual, sample, sizeof(sample) - 1, -1, 1, &b, &nb, err);
    }
    if (status == SQ_OK && (na != nb || memcmp(a, b, na * sizeof(int32_t)) != 0)) {
        status = sq_error_set(err, SQ_ERR_MISMATCH,
                              "the tokenizer stored in the .spq file encodes a sample into %zu tokens, the model's into %zu; "
                              "the file was not written",
                              nb, na);
    }
    free(a);
    free(b);
    return status;
}

int cmd_quantize(int argc, char **argv) {
    const char *tokenizer_path = NULL;
    const char *out_path = NULL;
    int32_t threads = 1;
    int json = 0;
    int verbose = 0;
    sq_spq_quantize_options quantize_options = {0};
    recipe_options quant;
    recipe_options_defaults(&quant);
    quant.w_bits = 4;
    quant.a_bits = 8;
    quant.kv_bits = 8;
    quant.embed_bits = 8;
    cli_option options[QUANTIZE_OPTIONS + RECIPE_OPTION_COUNT] = {
        {"--tokenizer", CLI_STRING, &tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--out", CLI_STRING, &out_path, 0, 0, "path of the .spq file to write"},
        {"--threads", CLI_INT, &threads, 1, 64, "worker threads (default 1)"},
        {"--json", CLI_FLAG, &json, 0, 0, "print one JSON object"},
        {"--verbose", CLI_FLAG, &verbose, 0, 0, "log the steps to stderr"},
        {"--separate-classifier", CLI_FLAG, &quantize_options.separate_classifier, 0, 0,
         "store a tied classifier as its own table, rounded as eval rounds it (a larger file)"},
    };
    recipe_options_table(&quant, options + QUANTIZE_OPTIONS);
    const char *usage = "spinquant quantize MODEL [--tokenizer FILE] --out MODEL.spq [--rotation none|hadamard|random|FILE] "
                        "[--w-bits 4] [--a-bits 8|4] [--kv-bits 8|4] [--w-group N] [--gptq --calib FILE] [--mode had|nohad] "
                        "[--embed-bits 8|16] [--json]\n(defaults: --w-bits 4 --a-bits 8 --kv-bits 8 --embed-bits 8)";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, QUANTIZE_OPTIONS + RECIPE_OPTION_COUNT, positionals, 1, 1,
                                 &n_positionals);
    if (code >= 0) {
        return code;
    }
    if (out_path == NULL) {
        fprintf(stderr, "spinquant: error: missing --out MODEL.spq\nusage: %s\n", usage);
        return CLI_EXIT_USAGE;
    }

    double begin = seconds_now();
    sq_logger logger = cli_logger(verbose);
    sq_error err = {0};
    sq_model model = {0};
    sq_recipe recipe;
    int32_t *calibration = NULL;
    sq_threadpool *pool = NULL;
    sq_spq_tokenizer_source tokenizer = {0};
    sq_spq_model spq = {0};
    sq_spq_model check = {0};
    sq_spq_build_report report = {0};
    uint8_t *bytes = NULL;
    size_t size = 0;
    size_t parameters = 0;

    /* GPTQ can run for minutes, so an unwritable --out fails before it rather than after. */
    sq_status status = sq_io_check_writable(out_path, &err);
    if (status == SQ_OK) {
        status = cli_load_model(positionals[0], tokenizer_path, &logger, &model, &err);
    }
    if (status == SQ_OK) {
        parameters = sq_model_parameter_count(&model);
        status = recipe_options_build(&quant, &model, &recipe, &calibration, &err);
    }
    if (status == SQ_OK) {
        status = sq_spq_tokenizer_source_open(positionals[0], tokenizer_path, model.config.vocab_size, &tokenizer, &err);
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(threads, &pool, &err);
    }
    if (status == SQ_OK) {
        status = sq_spq_quantize_model_ex(&model, &recipe, &quantize_options, pool, &logger, &spq, &report, &err);
    }

    /* ---- serialize, read back, write ---- */
    if (status == SQ_OK) {
        status = sq_spq_serialize(&spq, &tokenizer.desc, &bytes, &size, &err);
    }
    if (status == SQ_OK) {
        status = sq_spq_read_buffer(bytes, size, 0, &check, NULL, &err);
    }
    if (status == SQ_OK) {
        status = check_tokenizer(model.tokenizer, check.tokenizer, &err);
    }
    if (status == SQ_OK) {
        status = sq_io_write_file_atomic(out_path, bytes, size, &err);
    }

    if (status == SQ_OK) {
        double fp16_bytes = 2.0 * (double)parameters;
        double seconds = seconds_now() - begin;
        if (json) {
            printf("{\"out\": ");
            cli_json_string(stdout, out_path, strlen(out_path));
            printf(", \"file_bytes\": %zu, \"parameters\": %zu, \"fp16_bytes\": %.0f, \"ratio_to_fp16\": %.6f, "
                   "\"classifier\": \"%s\", \"weight_groups\": %lld, \"grid_search_groups\": %lld, "
                   "\"max_relative_error\": %.3g, \"seconds\": %.3f, ",
                   size, parameters, fp16_bytes, (double)size / fp16_bytes,
                   spq.classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM ? "tied_transform" : "separate",
                   (long long)report.groups, (long long)report.fallback_groups, report.max_relative_error, seconds);
            recipe_options_print_json(stdout, &quant);
            printf("}\n");
        } else {
            printf("wrote %s: %zu bytes, %.1f %% of the fp16 size (%zu parameters), %s classifier, %.1f s\n", out_path, size,
                   100.0 * (double)size / fp16_bytes, parameters,
                   spq.classifier_kind == SQ_SPQ_CLASSIFIER_TIED_TRANSFORM ? "tied" : "separate", seconds);
        }
    }
    sq_spq_model_free(&check);
    free(bytes);
    sq_spq_model_free(&spq);
    sq_spq_tokenizer_source_close(&tokenizer);
    sq_threadpool_free(pool);
    free(calibration);
    sq_model_free(&model);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
