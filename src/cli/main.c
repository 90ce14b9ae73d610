/* spinquant: command-line entry point that dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/common.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "print a model's configuration and tokenizer"},
    {"tokenize", cmd_tokenize, "print the token ids of a prompt or a text file"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"eval", cmd_eval, "measure perplexity, optionally under simulated quantization"},
    {"rotate", cmd_rotate, "write a rotation file with random Hadamard or random orthogonal R1 and R2"},
    {"calibrate", cmd_calibrate, "learn R1 and R2 by Cayley SGD on calibration text and write a rotation file"},
    {"quantize", cmd_quantize, "write an integer .spq model (int4 weights) with a quantization recipe"},
    {"bench", cmd_bench, "measure prefill and decode speed, time shares and memory"},
};

static void print_usage(void) {
    fprintf(stderr, "usage: spinquant COMMAND MODEL [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(stderr, "\nMODEL is a llama2.c .bin (with --tokenizer), a .gguf file or a Hugging Face directory.\n"
                    "Run 'spinquant COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc, argv);
        }
    }
    fprintf(stderr, "spinquant: error: unknown command '%s'; run 'spinquant --help' to list the commands\n", argv[1]);
    return CLI_EXIT_USAGE;
}
