/* Command-line option parsing for the spinquant subcommands: a table of options per command,
 * strict number parsing, and one error message naming the flag, the value and what was
 * expected. */
#ifndef SQ_CLI_ARGS_H
#define SQ_CLI_ARGS_H

#include <stdint.h>

#include "core/status.h"

typedef enum cli_option_kind {
    CLI_STRING = 0,
    CLI_INT = 1,
    CLI_FLOAT = 2,
    CLI_FLAG = 3,   /* takes no value; sets an int to 1 */
    CLI_UINT64 = 4,
} cli_option_kind;

typedef struct cli_option {
    const char *name;        /* including the dashes, such as "--max-tokens" */
    cli_option_kind kind;
    void *target;            /* const char **, int32_t *, float *, int *, or uint64_t * by kind */
    double min_value;        /* inclusive range for CLI_INT and CLI_FLOAT */
    double max_value;
    const char *help;        /* one line: what it sets and in what unit */
} cli_option;

/* Parses argv[first..argc) against options; positional arguments go to positionals (up to
 * max_positionals, the count to *n_positionals). Unknown flags, missing values, malformed or
 * out-of-range numbers are SQ_ERR_INVALID_ARG errors. */
sq_status cli_parse(int argc, char **argv, int first, const cli_option *options, int n_options,
                    const char **positionals, int max_positionals, int *n_positionals, sq_error *err);

/* Writes "  --name VALUE  help" lines for options to stderr. */
void cli_print_options(const cli_option *options, int n_options);

/* Returns 1 when argv[first..argc) contains --help or -h. */
int cli_wants_help(int argc, char **argv, int first);

/* Parses the command's options and prints the error or, for --help, the usage line and the
 * option table. Returns -1 to continue, or the exit code to return. */
int cli_parse_or_exit(int argc, char **argv, const char *usage, const cli_option *options, int n_options,
                      const char **positionals, int min_positionals, int max_positionals, int *n_positionals);

#endif
