/* Logging through a caller-supplied callback. The library prints nothing by itself: a NULL
 * logger, or one with a NULL callback, drops every message. */
#ifndef SQ_CORE_LOG_H
#define SQ_CORE_LOG_H

typedef enum sq_log_level {
    SQ_LOG_DEBUG = 0,
    SQ_LOG_INFO = 1,
    SQ_LOG_WARN = 2,
    SQ_LOG_ERROR = 3,
} sq_log_level;

/* Receives one formatted line without a trailing newline; function is the caller's __func__. */
typedef void (*sq_log_callback)(sq_log_level level, const char *function, const char *message,
                                void *user_data);

typedef struct sq_logger {
    sq_log_callback callback;
    void *user_data;
    sq_log_level min_level; /* messages below this level are dropped */
} sq_logger;

void sq_log_write(const sq_logger *logger, sq_log_level level, const char *function,
                  const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#define SQ_LOG_DEBUG_F(logger, ...) sq_log_write((logger), SQ_LOG_DEBUG, __func__, __VA_ARGS__)
#define SQ_LOG_INFO_F(logger, ...) sq_log_write((logger), SQ_LOG_INFO, __func__, __VA_ARGS__)
#define SQ_LOG_WARN_F(logger, ...) sq_log_write((logger), SQ_LOG_WARN, __func__, __VA_ARGS__)
#define SQ_LOG_ERROR_F(logger, ...) sq_log_write((logger), SQ_LOG_ERROR, __func__, __VA_ARGS__)

#endif
