/* Status codes and the error record that every library function fills in on failure.
 * Library code never prints and never exits: it returns an sq_status and, when it fails,
 * writes a one-line message into the caller's sq_error. */
#ifndef SQ_CORE_STATUS_H
#define SQ_CORE_STATUS_H

#include <stddef.h>

typedef enum sq_status {
    SQ_OK = 0,
    SQ_ERR_IO = 1,          /* a file could not be opened, read or written */
    SQ_ERR_FORMAT = 2,      /* the bytes do not follow the expected format (truncated, corrupt) */
    SQ_ERR_UNSUPPORTED = 3, /* a valid file with a feature this engine does not implement */
    SQ_ERR_INVALID_ARG = 4, /* a caller-supplied value is out of range */
    SQ_ERR_NOMEM = 5,       /* an allocation failed or would exceed a size limit */
    SQ_ERR_MISMATCH = 6,    /* two inputs disagree, such as a tokenizer built for another vocabulary */
    SQ_ERR_CHECKSUM = 7,    /* a section checksum does not match its bytes */
    SQ_ERR_ABORTED = 8,     /* a cancel request stopped the operation */
    SQ_ERR_NUMERIC = 9,     /* NaN or Inf appeared where a finite number is required */
} sq_status;

#define SQ_ERROR_MESSAGE_MAX 512

typedef struct sq_error {
    sq_status status;
    char message[SQ_ERROR_MESSAGE_MAX];
} sq_error;

/* Records status and a printf-style message in err (which may be NULL) and returns status. */
sq_status sq_error_set(sq_error *err, sq_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears err to SQ_OK with an empty message. */
void sq_error_clear(sq_error *err);

/* Returns a short stable name for status, such as "E_FORMAT". */
const char *sq_status_name(sq_status status);

#endif
