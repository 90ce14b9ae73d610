/* spinquant info: the configuration, parameter count and tokenizer of a model. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"

int cmd_info(int argc, char **argv) {
    const char *tokenizer_path = NULL;
    int json = 0;
    int verbose = 0;
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--json", CLI_FLAG, &json, 0, 0, "print one JSON object"},
        {"--verbose", CLI_FLAG, &verbose, 0, 0, "log loading steps to stderr"},
    };
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, "spinquant info MODEL [--tokenizer FILE] [--json]", options, 3,
                                 positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }

    sq_logger logger = cli_logger(verbose);
    sq_error err = {0};
    sq_model model = {0};
    if (cli_load_model(positionals[0], tokenizer_path, &logger, &model, &err) != SQ_OK) {
        return cli_report_error(&err);
    }

    const sq_config *c = &model.config;
    const char *kind = sq_tokenizer_get_kind(model.tokenizer) == SQ_TOKENIZER_SPM ? "spm" : "bpe";
    if (json) {
        printf("{\"format\": \"%s\", \"name\": ", model.format);
        if (model.name != NULL) {
            cli_json_string(stdout, model.name, strlen(model.name));
        } else {
            printf("null");
        }
        printf(", \"dim\": %d, \"hidden_dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, "
               "\"head_dim\": %d, \"vocab_size\": %d, \"context_length\": %d, \"rope_theta\": %g, \"norm_eps\": %g, "
               "\"tied_classifier\": %s, \"parameters\": %zu, \"tokenizer\": \"%s\", \"bos_id\": %d, \"eos_id\": %d, "
               "\"chat_template\": %s}\n",
               c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
               c->context_length, (double)c->rope_theta, (double)c->norm_eps, model.tied_classifier ? "true" : "false",
               sq_model_parameter_count(&model), kind, sq_tokenizer_bos_id(model.tokenizer),
               sq_tokenizer_eos_id(model.tokenizer), model.chat_template != NULL ? "true" : "false");
    } else {
        printf("format          %s\n", model.format);
        printf("name            %s\n", model.name != NULL ? model.name : "(none)");
        printf("dim             %d\nhidden_dim      %d\nn_layers        %d\n", c->dim, c->hidden_dim, c->n_layers);
        printf("n_heads         %d\nn_kv_heads      %d\nhead_dim        %d\n", c->n_heads, c->n_kv_heads, c->head_dim);
        printf("vocab_size      %d\ncontext_length  %d\n", c->vocab_size, c->context_length);
        printf("rope_theta      %g\nnorm_eps        %g\n", (double)c->rope_theta, (double)c->norm_eps);
        printf("classifier      %s\n", model.tied_classifier ? "tied to the embedding" : "separate");
        printf("parameters      %zu\n", sq_model_parameter_count(&model));
        printf("tokenizer       %s (BOS %d, EOS %d)\n", kind, sq_tokenizer_bos_id(model.tokenizer),
               sq_tokenizer_eos_id(model.tokenizer));
        printf("chat template   %s\n", model.chat_template != NULL ? "yes" : "no");
    }
    sq_model_free(&model);
    return CLI_EXIT_OK;
}
