/* spinquant rotate: writes a rotation file with random Hadamard or random orthogonal R1 and R2. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pipeline/recipe.h"
#include "rotation/rotation_file.h"

int cmd_rotate(int argc, char **argv) {
    const char *tokenizer_path = NULL;
    const char *rotation = "hadamard";
    const char *mode = "had";
    const char *out_path = NULL;
    uint64_t seed = 0;
    int json = 0;
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--rotation", CLI_STRING, &rotation, 0, 0, "hadamard (random Hadamard) or random (Haar orthogonal); default hadamard"},
        {"--mode", CLI_STRING, &mode, 0, 0, "had (R1-R4) or nohad (R1 and R2 only); recorded in the file"},
        {"--seed", CLI_UINT64, &seed, 0, 0, "random seed (default 0)"},
        {"--out", CLI_STRING, &out_path, 0, 0, "rotation file to write"},
        {"--json", CLI_FLAG, &json, 0, 0, "print a JSON summary"},
    };
    const char *usage = "spinquant rotate MODEL --rotation hadamard|random --seed S --out FILE [--mode had|nohad]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, 6, positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }
    if (out_path == NULL) {
        fprintf(stderr, "spinquant: error: missing --out FILE\nusage: %s\n", usage);
        return CLI_EXIT_USAGE;
    }

    sq_error err = {0};
    sq_recipe recipe = sq_recipe_default();
    recipe.seed = seed;
    if (strcmp(rotation, "hadamard") == 0) {
        recipe.rotation = SQ_ROTATION_HADAMARD;
    } else if (strcmp(rotation, "random") == 0) {
        recipe.rotation = SQ_ROTATION_RANDOM;
    } else {
        fprintf(stderr, "spinquant: error: invalid --rotation '%s', expected hadamard or random\n", rotation);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(mode, "had") != 0 && strcmp(mode, "nohad") != 0) {
        fprintf(stderr, "spinquant: error: invalid --mode '%s', expected had or nohad\n", mode);
        return CLI_EXIT_USAGE;
    }
    recipe.mode_had = strcmp(mode, "had") == 0;

    sq_logger logger = cli_logger(0);
    sq_model model = {0};
    sq_rotation_set set = {0};
    sq_status status = cli_load_model(positionals[0], tokenizer_path, &logger, &model, &err);
    if (status == SQ_OK) {
        status = sq_recipe_build_rotations(&recipe, &model.config, &set, &err);
    }
    if (status == SQ_OK) {
        status = sq_rotation_set_save(&set, out_path, &err);
    }
    if (status == SQ_OK && json) {
        printf("{\"out\": ");
        cli_json_string(stdout, out_path, strlen(out_path));
        printf(", \"dim\": %d, \"head_dim\": %d, \"n_layers\": %d, \"rotation\": \"%s\", \"mode\": \"%s\", "
               "\"seed\": %llu, \"orthogonality_error\": %.3g}\n",
               set.dim, set.head_dim, set.n_layers, rotation, mode, (unsigned long long)seed,
               sq_rotation_set_orthogonality_error(&set));
    }
    sq_rotation_set_free(&set);
    sq_model_free(&model);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
