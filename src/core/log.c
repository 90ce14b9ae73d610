/* Formats a log line and hands it to the logger's callback. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

void sq_log_write(const sq_logger *logger, sq_log_level level, const char *function,
                  const char *fmt, ...) {
    if (logger == NULL || logger->callback == NULL || level < logger->min_level) {
        return;
    }
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    logger->callback(level, function, message, logger->user_data);
}
