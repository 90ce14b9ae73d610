/* Shared pieces of the spinquant subcommands: the stderr logger, model and text loading, and
 * JSON string output. */
#ifndef SQ_CLI_COMMON_H
#define SQ_CLI_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "core/log.h"
#include "core/status.h"
#include "model/model.h"

/* Exit codes: 0 success, 1 a failure while running, 2 invalid usage or arguments. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILURE = 1, CLI_EXIT_USAGE = 2 };

/* A logger that writes "spinquant: LEVEL: function: message" lines to stderr. */
sq_logger cli_logger(int verbose);

/* Prints "spinquant: error: <message>" and returns the exit code for status. */
int cli_report_error(const sq_error *err);

/* Loads MODEL (and an optional tokenizer) and checks it has a tokenizer. */
sq_status cli_load_model(const char *path, const char *tokenizer_path, const sq_logger *logger, sq_model *model,
                         sq_error *err);

/* Reads a UTF-8 text file, drops every '\r', and returns a NUL-terminated buffer the caller frees. */
sq_status cli_read_text(const char *path, char **text, size_t *length, sq_error *err);

/* Reads a text file as cli_read_text does and encodes it as one sequence (BOS as the tokenizer
 * adds it by default, special-token text left as plain text). Errors name the file. The
 * caller frees *ids. */
sq_status cli_tokenize_file(const sq_model *model, const char *path, int32_t **ids, size_t *count, sq_error *err);

/* Prefixes err's message with "'path': " so the user knows which file it is about. */
void cli_error_name_file(sq_error *err, const char *path);

/* Writes s as a JSON string literal (with quotes), escaping control characters; invalid UTF-8
 * bytes become U+FFFD so the output stays valid JSON. */
void cli_json_string(FILE *out, const char *s, size_t length);

/* Writes ids as a JSON array. */
void cli_json_ids(FILE *out, const int32_t *ids, size_t count);

#endif
