/* spinquant tokenize: token ids of a prompt or a text file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"

int cmd_tokenize(int argc, char **argv) {
    const char *tokenizer_path = NULL;
    const char *prompt = NULL;
    const char *text_path = NULL;
    int json = 0;
    int no_bos = 0;
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--prompt", CLI_STRING, &prompt, 0, 0, "text to tokenize"},
        {"--text", CLI_STRING, &text_path, 0, 0, "UTF-8 file to tokenize ('\\r' is dropped)"},
        {"--no-bos", CLI_FLAG, &no_bos, 0, 0, "do not prepend BOS even when the tokenizer adds it by default"},
        {"--json", CLI_FLAG, &json, 0, 0, "print {\"ids\": [...], \"count\": N}"},
    };
    const char *usage = "spinquant tokenize MODEL [--tokenizer FILE] (--prompt TEXT | --text FILE) [--json]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, 5, positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }
    if ((prompt == NULL) == (text_path == NULL)) {
        fprintf(stderr, "spinquant: error: give exactly one of --prompt TEXT or --text FILE\nusage: %s\n", usage);
        return CLI_EXIT_USAGE;
    }

    sq_logger logger = cli_logger(0);
    sq_error err = {0};
    char *text = NULL;
    size_t length = 0;
    if (text_path != NULL && cli_read_text(text_path, &text, &length, &err) != SQ_OK) {
        return cli_report_error(&err);
    }
    sq_model model = {0};
    if (cli_load_model(positionals[0], tokenizer_path, &logger, &model, &err) != SQ_OK) {
        free(text);
        return cli_report_error(&err);
    }

    const char *input = text != NULL ? text : prompt;
    size_t input_length = text != NULL ? length : strlen(prompt);
    int32_t *ids = NULL;
    size_t count = 0;
    sq_status status = sq_tokenizer_encode(model.tokenizer, input, input_length, no_bos ? 0 : -1, 1, &ids, &count, &err);
    if (status != SQ_OK) {
        if (text_path != NULL) {
            cli_error_name_file(&err, text_path);
        }
        free(text);
        sq_model_free(&model);
        return cli_report_error(&err);
    }

    if (json) {
        printf("{\"ids\": ");
        cli_json_ids(stdout, ids, count);
        printf(", \"count\": %zu}\n", count);
    } else {
        for (size_t i = 0; i < count; i++) {
            printf(i == 0 ? "%d" : " %d", ids[i]);
        }
        printf("\n");
    }
    free(ids);
    free(text);
    sq_model_free(&model);
    return CLI_EXIT_OK;
}
