/* A fixed-size pool of worker threads that runs one parallel-for at a time. Work is split
 * into tasks by index, so results never depend on the thread count. Built without threads
 * (SQ_NO_THREADS, as for WASI and single-threaded WebAssembly) the pool runs every task on
 * the calling thread. */
#ifndef SQ_CORE_THREADPOOL_H
#define SQ_CORE_THREADPOOL_H

#include "core/status.h"

typedef struct sq_threadpool sq_threadpool;

/* Runs task task_index of n_tasks; context is the pointer given to sq_threadpool_run. */
typedef void (*sq_task_fn)(void *context, int task_index, int n_tasks);

/* Creates a pool with n_threads workers in total, counting the calling thread (1 = serial). */
sq_status sq_threadpool_create(int n_threads, sq_threadpool **out, sq_error *err);

void sq_threadpool_free(sq_threadpool *pool);

/* Runs fn for every task index in [0, n_tasks) and returns when all have finished. A NULL
 * pool runs the tasks serially. */
void sq_threadpool_run(sq_threadpool *pool, sq_task_fn fn, void *context, int n_tasks);

int sq_threadpool_size(const sq_threadpool *pool);

#endif
