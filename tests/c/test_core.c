/* Tests of the core helpers: CRC-32 against published check values, the thread pool's
 * run-every-task-once contract, the atomic file write (no temporary file left, target kept on
 * failure), the checked file read (also across several read chunks), the logger's level filter
 * and the error record. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/crc32.h"
#include "core/io.h"
#include "core/log.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "test_util.h"

/* ---- CRC-32 ---- */

/* Check values of CRC-32/ISO-HDLC (the zlib and PNG CRC), from the CRC catalogue and zlib. */
static void test_crc32_known_vectors(void) {
    static const struct {
        const char *text;
        uint32_t crc;
    } cases[] = {
        {"", 0x00000000u},
        {"a", 0xE8B7BE43u},
        {"abc", 0x352441C2u},
        {"123456789", 0xCBF43926u},
        {"The quick brown fox jumps over the lazy dog", 0x414FA339u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t crc = sq_crc32_update(0, cases[i].text, strlen(cases[i].text));
        CHECK_MSG(crc == cases[i].crc, "crc32(\"%s\") = %08x, expected %08x", cases[i].text, crc, cases[i].crc);
    }

    uint8_t zeros[32] = {0};
    uint8_t ones[32];
    uint8_t ramp[256];
    memset(ones, 0xFF, sizeof(ones));
    for (int i = 0; i < 256; i++) {
        ramp[i] = (uint8_t)i;
    }
    CHECK(sq_crc32_update(0, zeros, sizeof(zeros)) == 0x190A55ADu);
    CHECK(sq_crc32_update(0, ones, sizeof(ones)) == 0xFF6CAB0Bu);
    CHECK(sq_crc32_update(0, ramp, sizeof(ramp)) == 0x29058C73u);
}

/* Continuing a CRC over consecutive pieces must give the CRC of the whole buffer. */
static void test_crc32_incremental(void) {
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t length = strlen(text);
    for (size_t split = 0; split <= length; split++) {
        uint32_t crc = sq_crc32_update(0, text, split);
        crc = sq_crc32_update(crc, text + split, length - split);
        CHECK_MSG(crc == 0x414FA339u, "split at %zu gives %08x", split, crc);
    }
    uint32_t crc = 0;
    for (size_t i = 0; i < 9; i++) {
        crc = sq_crc32_update(crc, "123456789" + i, 1);
    }
    CHECK(crc == 0xCBF43926u);
}

/* The bit-at-a-time definition of CRC-32, independent of the table-driven code. */
static uint32_t crc32_bitwise(const uint8_t *data, size_t size) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1u) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
    }
    return ~crc;
}

/* Random data at every start offset and many lengths exercises the 8-byte slices and the tail. */
static void test_crc32_matches_bitwise(void) {
    uint8_t data[1100];
    uint64_t state = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < sizeof(data); i++) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        data[i] = (uint8_t)(state >> 56);
    }
    for (size_t offset = 0; offset < 8; offset++) {
        for (size_t length = 0; length + offset <= sizeof(data); length += 1 + length / 8) {
            uint32_t expected = crc32_bitwise(data + offset, length);
            uint32_t crc = sq_crc32_update(0, data + offset, length);
            CHECK_MSG(crc == expected, "offset %zu, length %zu: %08x, expected %08x", offset, length, crc, expected);
        }
    }
}

/* ---- thread pool ---- */

typedef struct task_record {
    _Atomic int *runs;      /* (n_tasks) how often each task index ran */
    _Atomic int bad_count;  /* calls whose n_tasks argument was wrong or index out of range */
    int n_tasks;
} task_record;

static void record_task(void *context, int task_index, int n_tasks) {
    task_record *record = context;
    if (n_tasks != record->n_tasks || task_index < 0 || task_index >= record->n_tasks) {
        atomic_fetch_add(&record->bad_count, 1);
        return;
    }
    atomic_fetch_add(&record->runs[task_index], 1);
}

static int run_and_count(sq_threadpool *pool, int n_tasks) {
    task_record record;
    record.runs = calloc((size_t)(n_tasks > 0 ? n_tasks : 1), sizeof(_Atomic int));
    atomic_init(&record.bad_count, 0);
    record.n_tasks = n_tasks;
    sq_threadpool_run(pool, record_task, &record, n_tasks);

    int wrong = atomic_load(&record.bad_count);
    for (int i = 0; i < n_tasks; i++) {
        if (atomic_load(&record.runs[i]) != 1) {
            wrong++;
        }
    }
    free(record.runs);
    return wrong;
}

static void test_threadpool_runs_each_task_once(void) {
    static const int thread_counts[] = {1, 2, 3, 4, 7, 16};
    static const int task_counts[] = {0, 1, 2, 3, 5, 8, 17, 64, 1000};
    for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
        sq_threadpool *pool = NULL;
        sq_error err = {0};
        sq_status status = sq_threadpool_create(thread_counts[t], &pool, &err);
        CHECK_MSG(status == SQ_OK, "create with %d threads: %s", thread_counts[t], err.message);
        if (status != SQ_OK) {
            continue;
        }
#ifndef SQ_NO_THREADS
        CHECK(sq_threadpool_size(pool) == thread_counts[t]);
#endif
        for (size_t n = 0; n < sizeof(task_counts) / sizeof(task_counts[0]); n++) {
            /* Repeated runs on one pool exercise the generation hand-over between runs. */
            int failures = 0;
            for (int repeat = 0; repeat < 30; repeat++) {
                failures += run_and_count(pool, task_counts[n]) != 0;
            }
            CHECK_MSG(failures == 0, "%d threads, %d tasks: %d of 30 runs lost or repeated a task",
                      thread_counts[t], task_counts[n], failures);
        }
        sq_threadpool_free(pool);
    }
}

/* Alternating task counts on one pool: a short run right after a long one must not see stale
 * work from the previous generation. */
static void test_threadpool_alternating_runs(void) {
    sq_threadpool *pool = NULL;
    sq_error err = {0};
    CHECK(sq_threadpool_create(4, &pool, &err) == SQ_OK);
    int failures = 0;
    for (int repeat = 0; repeat < 500; repeat++) {
        failures += run_and_count(pool, repeat % 2 == 0 ? 97 : 2) != 0;
    }
    CHECK_MSG(failures == 0, "%d of 500 alternating runs lost or repeated a task", failures);
    sq_threadpool_free(pool);
}

static void test_threadpool_null_pool_and_invalid_counts(void) {
    CHECK(run_and_count(NULL, 10) == 0);
    CHECK(sq_threadpool_size(NULL) == 1);

    sq_threadpool *pool = NULL;
    sq_error err = {0};
    CHECK(sq_threadpool_create(0, &pool, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "0") != NULL);
    CHECK(sq_threadpool_create(-3, &pool, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "-3") != NULL);
#ifndef SQ_NO_THREADS
    CHECK(sq_threadpool_create(1000, &pool, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "1000") != NULL);
#endif
    sq_threadpool_free(NULL);
}

/* ---- file I/O ---- */

/* Creates a fresh directory under /tmp for one test; the caller removes it. */
static char *make_temp_dir(void) {
    char *path = malloc(64);
    strcpy(path, "/tmp/sq_test_core_XXXXXX");
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

static int path_exists(const char *path) {
    struct stat info;
    return stat(path, &info) == 0;
}

/* Returns 1 when the file at path contains exactly the size bytes of expected. */
static int file_equals(const char *path, const void *expected, size_t size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return 0;
    }
    char *buffer = malloc(size + 1);
    size_t got = fread(buffer, 1, size + 1, file);
    fclose(file);
    int same = got == size && memcmp(buffer, expected, size) == 0;
    free(buffer);
    return same;
}

static void write_plain_file(const char *path, const char *text) {
    FILE *file = fopen(path, "wb");
    fputs(text, file);
    fclose(file);
}

static void test_io_atomic_write_success(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *target = join_path(dir, "out.bin");
    char *temp = join_path(dir, "out.bin.tmp");
    sq_error err = {0};

    const char first[] = "first version";
    CHECK(sq_io_write_file_atomic(target, first, sizeof(first), &err) == SQ_OK);
    CHECK(file_equals(target, first, sizeof(first)));
    CHECK(!path_exists(temp));

    /* Replacing an existing file, with a shorter content. */
    const char second[] = "v2";
    CHECK(sq_io_write_file_atomic(target, second, sizeof(second), &err) == SQ_OK);
    CHECK(file_equals(target, second, sizeof(second)));
    CHECK(!path_exists(temp));

    /* An empty write gives an empty file. */
    CHECK(sq_io_write_file_atomic(target, "", 0, &err) == SQ_OK);
    CHECK(file_equals(target, "", 0));
    CHECK(!path_exists(temp));

    remove(target);
    rmdir(dir);
    free(target);
    free(temp);
    free(dir);
}

/* The temporary file cannot be created (its name is taken by a directory): the write fails,
 * names the file, and the existing target keeps its content. Works as root, unlike a
 * read-only directory. */
static void test_io_atomic_write_temp_blocked(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *target = join_path(dir, "keep.txt");
    char *temp = join_path(dir, "keep.txt.tmp");
    write_plain_file(target, "original");
    CHECK(mkdir(temp, 0700) == 0);

    sq_error err = {0};
    sq_status status = sq_io_write_file_atomic(target, "replacement", 11, &err);
    CHECK(status == SQ_ERR_IO);
    CHECK_MSG(strstr(err.message, "keep.txt") != NULL, "message: %s", err.message);
    CHECK(file_equals(target, "original", 8));

    rmdir(temp);
    remove(target);
    rmdir(dir);
    free(target);
    free(temp);
    free(dir);
}

/* A read-only directory: only meaningful when not running as root, because root ignores the
 * permission bits. */
static void test_io_atomic_write_readonly_dir(void) {
    if (geteuid() == 0) {
        fprintf(stderr, "note: test_io_atomic_write_readonly_dir skipped: running as root\n");
        return;
    }
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *target = join_path(dir, "keep.txt");
    char *temp = join_path(dir, "keep.txt.tmp");
    write_plain_file(target, "original");
    chmod(dir, 0500);

    sq_error err = {0};
    CHECK(sq_io_write_file_atomic(target, "replacement", 11, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "keep.txt") != NULL);
    CHECK(file_equals(target, "original", 8));
    CHECK(!path_exists(temp));

    chmod(dir, 0700);
    remove(target);
    rmdir(dir);
    free(target);
    free(temp);
    free(dir);
}

/* The target is a directory: the rename fails, the directory survives and the temporary file
 * is removed. */
static void test_io_atomic_write_onto_directory(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *target = join_path(dir, "subdir");
    char *temp = join_path(dir, "subdir.tmp");
    char *inside = join_path(target, "inner.txt");
    CHECK(mkdir(target, 0700) == 0);
    write_plain_file(inside, "inner");

    sq_error err = {0};
    sq_status status = sq_io_write_file_atomic(target, "data", 4, &err);
    CHECK(status == SQ_ERR_IO);
    CHECK_MSG(strstr(err.message, "subdir") != NULL, "message: %s", err.message);
    CHECK(sq_io_is_directory(target));
    CHECK(file_equals(inside, "inner", 5));
    CHECK(!path_exists(temp));

    /* An empty directory as the target as well. */
    remove(inside);
    status = sq_io_write_file_atomic(target, "data", 4, &err);
    CHECK(status == SQ_ERR_IO);
    CHECK(sq_io_is_directory(target));
    CHECK(!path_exists(temp));

    rmdir(target);
    rmdir(dir);
    free(inside);
    free(target);
    free(temp);
    free(dir);
}

/* A missing parent directory: nothing is created. */
static void test_io_atomic_write_missing_dir(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *target = join_path(dir, "missing/out.bin");
    sq_error err = {0};
    CHECK(sq_io_write_file_atomic(target, "x", 1, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "missing/out.bin") != NULL);
    CHECK(!path_exists(target));
    rmdir(dir);
    free(target);
    free(dir);
}

static void test_io_read_file(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *path = join_path(dir, "text.txt");
    char *empty = join_path(dir, "empty.txt");
    char *missing = join_path(dir, "no_such_file.bin");
    write_plain_file(path, "hello\nworld");
    write_plain_file(empty, "");

    sq_error err = {0};
    uint8_t *data = NULL;
    size_t size = 99;
    CHECK(sq_io_read_file(path, &data, &size, &err) == SQ_OK);
    CHECK(size == 11);
    CHECK(data != NULL);
    if (data != NULL) {
        CHECK(memcmp(data, "hello\nworld", 11) == 0);
        CHECK(data[11] == '\0');
    }
    free(data);

    CHECK(sq_io_read_file(empty, &data, &size, &err) == SQ_OK);
    CHECK(size == 0);
    CHECK(data != NULL);
    CHECK(data == NULL || data[0] == '\0');
    free(data);

    CHECK(sq_io_read_file(missing, &data, &size, &err) == SQ_ERR_IO);
    CHECK_MSG(strstr(err.message, missing) != NULL, "message: %s", err.message);
    CHECK(data == NULL);
    CHECK(size == 0);

    CHECK(sq_io_is_directory(dir));
    CHECK(!sq_io_is_directory(path));
    CHECK(!sq_io_is_directory(missing));
    remove(path);
    remove(empty);

    /* A directory is not a readable file: an I/O error naming it, not an attempt to allocate
     * the size that ftell reports for a directory (LONG_MAX on Linux). */
    sq_status status = sq_io_read_file(dir, &data, &size, &err);
    CHECK_MSG(status == SQ_ERR_IO, "status %s, message: %s", sq_status_name(status), err.message);
    CHECK(strstr(err.message, dir) != NULL);
    CHECK(data == NULL);

    rmdir(dir);
    free(path);
    free(empty);
    free(missing);
    free(dir);
}

/* A file of two full chunks and 3 bytes more: sq_io_read_file must return every byte, and
 * sq_io_read_chunked must stop at the end of the file with the count it read. */
static void test_io_read_file_in_chunks(void) {
    char *dir = make_temp_dir();
    CHECK(dir != NULL);
    if (dir == NULL) {
        return;
    }
    char *path = join_path(dir, "chunks.bin");
    size_t length = 2 * SQ_IO_READ_CHUNK_BYTES + 3;
    uint8_t *expected = malloc(length);
    for (size_t i = 0; i < length; i++) {
        expected[i] = (uint8_t)((i * 131u + i / 4099u) & 0xFFu);
    }
    FILE *file = fopen(path, "wb");
    CHECK(file != NULL);
    if (file != NULL) {
        CHECK(fwrite(expected, 1, length, file) == length);
        fclose(file);
    }

    sq_error err = {0};
    uint8_t *data = NULL;
    size_t size = 0;
    CHECK_MSG(sq_io_read_file(path, &data, &size, &err) == SQ_OK, "%s", err.message);
    CHECK(size == length);
    CHECK(data != NULL);
    if (data != NULL) {
        CHECK(memcmp(data, expected, length) == 0);
        CHECK(data[length] == '\0');
    }
    free(data);

    /* Asking for 10 bytes more than the file has returns the file's length, not an error. */
    uint8_t *buffer = malloc(length + 10);
    file = fopen(path, "rb");
    CHECK(file != NULL);
    if (file != NULL) {
        size_t got = sq_io_read_chunked(file, buffer, length + 10);
        CHECK_MSG(got == length, "read %zu of %zu bytes", got, length);
        CHECK(feof(file));
        CHECK(!ferror(file));
        CHECK(memcmp(buffer, expected, length) == 0);
        fclose(file);
    }

    free(buffer);
    free(expected);
    remove(path);
    rmdir(dir);
    free(path);
    free(dir);
}

/* ---- logger and error record ---- */

typedef struct log_capture {
    int calls;
    sq_log_level level;
    char function[64];
    char message[1100];
} log_capture;

static void capture_log(sq_log_level level, const char *function, const char *message, void *user_data) {
    log_capture *capture = user_data;
    capture->calls++;
    capture->level = level;
    snprintf(capture->function, sizeof(capture->function), "%s", function);
    snprintf(capture->message, sizeof(capture->message), "%s", message);
}

static void test_log_filter_and_format(void) {
    log_capture capture = {0};
    sq_logger logger = {capture_log, &capture, SQ_LOG_WARN};

    SQ_LOG_INFO_F(&logger, "dropped %d", 1);
    CHECK(capture.calls == 0);
    SQ_LOG_WARN_F(&logger, "kept %d of %s", 2, "three");
    CHECK(capture.calls == 1);
    CHECK(capture.level == SQ_LOG_WARN);
    CHECK(strcmp(capture.message, "kept 2 of three") == 0);
    CHECK(strcmp(capture.function, "test_log_filter_and_format") == 0);
    SQ_LOG_ERROR_F(&logger, "error");
    CHECK(capture.calls == 2);
    CHECK(capture.level == SQ_LOG_ERROR);

    /* A message longer than the internal buffer is truncated, not overflowed. */
    char long_text[2000];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    SQ_LOG_ERROR_F(&logger, "%s", long_text);
    CHECK(capture.calls == 3);
    CHECK(strlen(capture.message) < sizeof(long_text) - 1);
    CHECK(strlen(capture.message) > 500);

    /* NULL loggers and NULL callbacks drop everything without crashing. */
    SQ_LOG_ERROR_F(NULL, "nothing");
    sq_logger silent = {NULL, NULL, SQ_LOG_DEBUG};
    SQ_LOG_ERROR_F(&silent, "nothing");
    CHECK(capture.calls == 3);
}

static void test_status_error_record(void) {
    sq_error err;
    CHECK(sq_error_set(&err, SQ_ERR_FORMAT, "bad %s at %d", "header", 7) == SQ_ERR_FORMAT);
    CHECK(err.status == SQ_ERR_FORMAT);
    CHECK(strcmp(err.message, "bad header at 7") == 0);
    CHECK(sq_error_set(NULL, SQ_ERR_IO, "ignored") == SQ_ERR_IO);

    char long_text[SQ_ERROR_MESSAGE_MAX * 2];
    memset(long_text, 'y', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    sq_error_set(&err, SQ_ERR_IO, "%s", long_text);
    CHECK(strlen(err.message) == SQ_ERROR_MESSAGE_MAX - 1);

    sq_error_clear(&err);
    CHECK(err.status == SQ_OK);
    CHECK(err.message[0] == '\0');
    sq_error_clear(NULL);

    CHECK(strcmp(sq_status_name(SQ_OK), "OK") == 0);
    CHECK(strcmp(sq_status_name(SQ_ERR_CHECKSUM), "E_CHECKSUM") == 0);
    CHECK(strcmp(sq_status_name((sq_status)99), "E_UNKNOWN") == 0);
}

int main(void) {
    RUN_TEST(test_crc32_known_vectors);
    RUN_TEST(test_crc32_incremental);
    RUN_TEST(test_crc32_matches_bitwise);
    RUN_TEST(test_threadpool_runs_each_task_once);
    RUN_TEST(test_threadpool_alternating_runs);
    RUN_TEST(test_threadpool_null_pool_and_invalid_counts);
    RUN_TEST(test_io_atomic_write_success);
    RUN_TEST(test_io_atomic_write_temp_blocked);
    RUN_TEST(test_io_atomic_write_readonly_dir);
    RUN_TEST(test_io_atomic_write_onto_directory);
    RUN_TEST(test_io_atomic_write_missing_dir);
    RUN_TEST(test_io_read_file);
    RUN_TEST(test_io_read_file_in_chunks);
    RUN_TEST(test_log_filter_and_format);
    RUN_TEST(test_status_error_record);
    TEST_MAIN_END();
}
