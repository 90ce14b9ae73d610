/* Option-table parser for the CLI. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sq_status parse_value(const cli_option *option, const char *value, sq_error *err) {
    char *end = NULL;
    errno = 0;
    switch (option->kind) {
    case CLI_STRING:
        *(const char **)option->target = value;
        return SQ_OK;
    case CLI_INT: {
        long parsed = strtol(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || parsed < option->min_value || parsed > option->max_value) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid value '%s' for %s, expected an integer from %.0f to %.0f",
                                value, option->name, option->min_value, option->max_value);
        }
        *(int32_t *)option->target = (int32_t)parsed;
        return SQ_OK;
    }
    case CLI_UINT64: {
        unsigned long long parsed = strtoull(value, &end, 10);
        if (end == value || *end != '\0' || errno != 0 || value[0] == '-') {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid value '%s' for %s, expected a non-negative integer",
                                value, option->name);
        }
        *(uint64_t *)option->target = (uint64_t)parsed;
        return SQ_OK;
    }
    case CLI_FLOAT: {
        double parsed = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0 || !isfinite(parsed) || parsed < option->min_value ||
            parsed > option->max_value) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid value '%s' for %s, expected a number from %g to %g",
                                value, option->name, option->min_value, option->max_value);
        }
        *(float *)option->target = (float)parsed;
        return SQ_OK;
    }
    case CLI_FLAG:
        break;
    }
    return SQ_OK;
}

sq_status cli_parse(int argc, char **argv, int first, const cli_option *options, int n_options,
                    const char **positionals, int max_positionals, int *n_positionals, sq_error *err) {
    *n_positionals = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (*n_positionals >= max_positionals) {
                return sq_error_set(err, SQ_ERR_INVALID_ARG, "unexpected argument '%s'", arg);
            }
            positionals[(*n_positionals)++] = arg;
            continue;
        }

        const cli_option *option = NULL;
        for (int j = 0; j < n_options; j++) {
            if (strcmp(options[j].name, arg) == 0) {
                option = &options[j];
                break;
            }
        }
        if (option == NULL) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "unknown option '%s'; run with --help to list the options", arg);
        }
        if (option->kind == CLI_FLAG) {
            *(int *)option->target = 1;
            continue;
        }
        if (i + 1 >= argc) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "option %s is missing its value", arg);
        }
        sq_status status = parse_value(option, argv[++i], err);
        if (status != SQ_OK) {
            return status;
        }
    }
    return SQ_OK;
}

void cli_print_options(const cli_option *options, int n_options) {
    for (int i = 0; i < n_options; i++) {
        const char *value = options[i].kind == CLI_FLAG ? "" : options[i].kind == CLI_STRING ? " VALUE" : " N";
        char flag[64];
        snprintf(flag, sizeof(flag), "%s%s", options[i].name, value);
        fprintf(stderr, "  %-28s %s\n", flag, options[i].help);
    }
}

int cli_wants_help(int argc, char **argv, int first) {
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }
    return 0;
}

int cli_parse_or_exit(int argc, char **argv, const char *usage, const cli_option *options, int n_options,
                      const char **positionals, int min_positionals, int max_positionals, int *n_positionals) {
    if (cli_wants_help(argc, argv, 2)) {
        fprintf(stderr, "usage: %s\n\noptions:\n", usage);
        cli_print_options(options, n_options);
        return 0;
    }
    sq_error err = {0};
    if (cli_parse(argc, argv, 2, options, n_options, positionals, max_positionals, n_positionals, &err) != SQ_OK) {
        fprintf(stderr, "spinquant: error: %s\nusage: %s\n", err.message, usage);
        return 2;
    }
    if (*n_positionals < min_positionals) {
        fprintf(stderr, "spinquant: error: missing argument\nusage: %s\n", usage);
        return 2;
    }
    return -1;
}
