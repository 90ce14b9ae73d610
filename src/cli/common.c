/* CLI helpers: logging to stderr, loading, and JSON output. */
#include "cli/common.h"

#include <stdlib.h>
#include <string.h>

#include "core/io.h"
#include "formats/formats.h"
#include "spq/spq_reader.h"

static void log_to_stderr(sq_log_level level, const char *function, const char *message, void *user_data) {
    (void)user_data;
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (level >= SQ_LOG_WARN) {
        fprintf(stderr, "spinquant: %s: %s: %s\n", names[level], function, message);
    } else {
        fprintf(stderr, "spinquant: %s\n", message);
    }
}

sq_logger cli_logger(int verbose) {
    sq_logger logger = {log_to_stderr, NULL, verbose ? SQ_LOG_DEBUG : SQ_LOG_WARN};
    return logger;
}

int cli_report_error(const sq_error *err) {
    fprintf(stderr, "spinquant: error: %s\n", err->message[0] != '\0' ? err->message : sq_status_name(err->status));
    return err->status == SQ_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

sq_status cli_load_model(const char *path, const char *tokenizer_path, const sq_logger *logger, sq_model *model,
                         sq_error *err) {
    /* NOTE: info and tokenize read fp32 formats only; a .spq file needs the integer runtime. */
    if (sq_spq_is_spq_file(path)) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "'%s' is a .spq file, which this command cannot read; generate, eval and bench run "
                            ".spq files, or pass the model it was quantized from",
                            path);
    }
    sq_status status = sq_model_load(path, tokenizer_path, logger, model, err);
    if (status != SQ_OK) {
        return status;
    }
    if (model->tokenizer == NULL) {
        sq_model_free(model);
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "model '%s' has no tokenizer; pass one with --tokenizer FILE", path);
    }
    return SQ_OK;
}

sq_status cli_read_text(const char *path, char **text, size_t *length, sq_error *err) {
    uint8_t *data = NULL;
    size_t size = 0;
    sq_status status = sq_io_read_file(path, &data, &size, err);
    if (status != SQ_OK) {
        return status;
    }
    size_t kept = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '\r') {
            data[kept++] = data[i];
        }
    }
    data[kept] = '\0';
    *text = (char *)data;
    *length = kept;
    return SQ_OK;
}

void cli_error_name_file(sq_error *err, const char *path) {
    char message[SQ_ERROR_MESSAGE_MAX];
    memcpy(message, err->message, sizeof(message));
    sq_error_set(err, err->status, "'%s': %s", path, message);
}

sq_status cli_tokenize_file(const sq_model *model, const char *path, int32_t **ids, size_t *count, sq_error *err) {
    char *text = NULL;
    size_t length = 0;
    sq_status status = cli_read_text(path, &text, &length, err);
    if (status != SQ_OK) {
        return status;
    }
    status = sq_tokenizer_encode(model->tokenizer, text, length, -1, 0, ids, count, err);
    free(text);
    if (status != SQ_OK) {
        cli_error_name_file(err, path);
    }
    return status;
}

/* Returns the length of the valid UTF-8 sequence at s (1..4), or 0 when it is invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t available) {
    unsigned char c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || n > available || (n == 2 && c < 0xC2)) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

void cli_json_string(FILE *out, const char *s, size_t length) {
    const unsigned char *bytes = (const unsigned char *)s;
    fputc('"', out);
    for (size_t i = 0; i < length;) {
        unsigned char c = bytes[i];
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            fputc(c, out);
            i++;
        } else {
            size_t n = utf8_sequence_length(bytes + i, length - i);
            if (n == 0) {
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(bytes + i, 1, n, out);
                i += n;
            }
        }
    }
    fputc('"', out);
}

void cli_json_ids(FILE *out, const int32_t *ids, size_t count) {
    fputc('[', out);
    for (size_t i = 0; i < count; i++) {
        fprintf(out, i == 0 ? "%d" : ", %d", ids[i]);
    }
    fputc(']', out);
}
