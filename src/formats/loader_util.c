/* Helpers shared by the model loaders. */
#include "formats/loader_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

sq_status sq_loader_prefix_error(sq_error *err, const char *path, sq_status status) {
    if (err == NULL) {
        return status;
    }
    char quoted[SQ_ERROR_MESSAGE_MAX];
    snprintf(quoted, sizeof(quoted), "'%s'", path);
    if (strstr(err->message, quoted) == NULL) {
        char message[SQ_ERROR_MESSAGE_MAX];
        snprintf(message, sizeof(message), "%s", err->message);
        sq_error_set(err, status, "%s: %s", quoted, message);
    }
    err->status = status;
    return status;
}

sq_status sq_loader_check_weights(const sq_model *model, const char *path, sq_error *err) {
    sq_status status = sq_model_check_finite(model, err);
    if (status != SQ_OK) {
        return sq_loader_prefix_error(err, path, status);
    }
    return SQ_OK;
}

char *sq_path_join(const char *directory, const char *name) {
    size_t directory_length = strlen(directory);
    size_t name_length = strlen(name);
    int needs_separator = directory_length > 0 && directory[directory_length - 1] != '/';
    char *path = malloc(directory_length + (size_t)needs_separator + name_length + 1);
    if (path == NULL) {
        return NULL;
    }
    memcpy(path, directory, directory_length);
    if (needs_separator) {
        path[directory_length] = '/';
    }
    memcpy(path + directory_length + (size_t)needs_separator, name, name_length + 1);
    return path;
}

int sq_path_is_file(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}
