/* pthread pool: workers wait on a condition variable for a new generation of work, take
 * task indices from a shared counter, and the caller waits until every task is done. */
#include "core/threadpool.h"

#include <stdlib.h>

#ifdef SQ_NO_THREADS

struct sq_threadpool {
    int n_threads;
};

sq_status sq_threadpool_create(int n_threads, sq_threadpool **out, sq_error *err) {
    if (n_threads < 1) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid thread count %d, expected at least 1", n_threads);
    }
    *out = calloc(1, sizeof(sq_threadpool));
    if (*out == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the thread pool");
    }
    (*out)->n_threads = 1;
    return SQ_OK;
}

void sq_threadpool_free(sq_threadpool *pool) {
    free(pool);
}

void sq_threadpool_run(sq_threadpool *pool, sq_task_fn fn, void *context, int n_tasks) {
    (void)pool;
    for (int i = 0; i < n_tasks; i++) {
        fn(context, i, n_tasks);
    }
}

int sq_threadpool_size(const sq_threadpool *pool) {
    (void)pool;
    return 1;
}

#else

#include <pthread.h>

#define SQ_MAX_THREADS 64

struct sq_threadpool {
    int n_threads;
    pthread_t workers[SQ_MAX_THREADS];
    pthread_mutex_t mutex;
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    unsigned long generation; /* incremented for every sq_threadpool_run */
    int shutting_down;

    sq_task_fn fn;
    void *context;
    int n_tasks;
    int next_task;    /* next task index to hand out */
    int tasks_done;
};

/* Takes tasks until none are left; called with the mutex unlocked. */
static void run_available_tasks(sq_threadpool *pool) {
    for (;;) {
        pthread_mutex_lock(&pool->mutex);
        if (pool->next_task >= pool->n_tasks) {
            pthread_mutex_unlock(&pool->mutex);
            return;
        }
        int task = pool->next_task++;
        pthread_mutex_unlock(&pool->mutex);

        pool->fn(pool->context, task, pool->n_tasks);

        pthread_mutex_lock(&pool->mutex);
        pool->tasks_done++;
        if (pool->tasks_done == pool->n_tasks) {
            pthread_cond_signal(&pool->work_done);
        }
        pthread_mutex_unlock(&pool->mutex);
    }
}

static void *worker_main(void *arg) {
    sq_threadpool *pool = arg;
    unsigned long seen_generation = 0;
    for (;;) {
        pthread_mutex_lock(&pool->mutex);
        while (!pool->shutting_down && pool->generation == seen_generation) {
            pthread_cond_wait(&pool->work_ready, &pool->mutex);
        }
        if (pool->shutting_down) {
            pthread_mutex_unlock(&pool->mutex);
            return NULL;
        }
        seen_generation = pool->generation;
        pthread_mutex_unlock(&pool->mutex);
        run_available_tasks(pool);
    }
}

sq_status sq_threadpool_create(int n_threads, sq_threadpool **out, sq_error *err) {
    if (n_threads < 1 || n_threads > SQ_MAX_THREADS) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid thread count %d, expected 1 to %d", n_threads,
                            SQ_MAX_THREADS);
    }
    sq_threadpool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the thread pool");
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    pool->n_threads = 1;
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&pool->workers[i], NULL, worker_main, pool) != 0) {
            sq_threadpool_free(pool);
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot start worker thread %d of %d", i, n_threads);
        }
        pool->n_threads++;
    }
    *out = pool;
    return SQ_OK;
}

void sq_threadpool_free(sq_threadpool *pool) {
    if (pool == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->shutting_down = 1;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 1; i < pool->n_threads; i++) {
        pthread_join(pool->workers[i], NULL);
    }
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->work_ready);
    pthread_cond_destroy(&pool->work_done);
    free(pool);
}

void sq_threadpool_run(sq_threadpool *pool, sq_task_fn fn, void *context, int n_tasks) {
    if (pool == NULL || pool->n_threads == 1 || n_tasks <= 1) {
        for (int i = 0; i < n_tasks; i++) {
            fn(context, i, n_tasks);
        }
        return;
    }

    pthread_mutex_lock(&pool->mutex);
    pool->fn = fn;
    pool->context = context;
    pool->n_tasks = n_tasks;
    pool->next_task = 0;
    pool->tasks_done = 0;
    pool->generation++;
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->mutex);

    run_available_tasks(pool);

    pthread_mutex_lock(&pool->mutex);
    while (pool->tasks_done < pool->n_tasks) {
        pthread_cond_wait(&pool->work_done, &pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
}

int sq_threadpool_size(const sq_threadpool *pool) {
    return pool == NULL ? 1 : pool->n_threads;
}

#endif
