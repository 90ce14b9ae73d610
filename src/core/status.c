/* Error record helpers. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>

sq_status sq_error_set(sq_error *err, sq_status status, const char *fmt, ...) {
    if (err == NULL) {
        return status;
    }
    err->status = status;
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, args);
    va_end(args);
    return status;
}

void sq_error_clear(sq_error *err) {
    if (err != NULL) {
        err->status = SQ_OK;
        err->message[0] = '\0';
    }
}

const char *sq_status_name(sq_status status) {
    switch (status) {
    case SQ_OK: return "OK";
    case SQ_ERR_IO: return "E_IO";
    case SQ_ERR_FORMAT: return "E_FORMAT";
    case SQ_ERR_UNSUPPORTED: return "E_UNSUPPORTED";
    case SQ_ERR_INVALID_ARG: return "E_INVALID_ARG";
    case SQ_ERR_NOMEM: return "E_MEMORY";
    case SQ_ERR_MISMATCH: return "E_MISMATCH";
    case SQ_ERR_CHECKSUM: return "E_CHECKSUM";
    case SQ_ERR_ABORTED: return "E_ABORTED";
    case SQ_ERR_NUMERIC: return "E_NUMERIC";
    }
    return "E_UNKNOWN";
}
