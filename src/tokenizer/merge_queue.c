/* The merge loop shared by SPM and BPE: a doubly linked list of symbols and a binary min-heap
 * of candidate merges ordered by (rank, position of the left symbol). Merging changes only the
 * two pairs next to the merged symbol, so each merge costs O(log n) and a sequence of n symbols
 * takes O(n log n). A heap entry whose symbols have changed since it was pushed is stale and is
 * skipped when popped. */
#include <stdlib.h>

#include "tokenizer/tokenizer_internal.h"

sq_status sq_merge_workspace_reserve(sq_merge_workspace *workspace, size_t symbol_count,
                                     sq_error *err) {
    if (symbol_count > INT32_MAX) {
        return sq_error_set(err, SQ_ERR_INVALID_ARG,
                            "a run of %zu characters is too long to tokenize (maximum %d)",
                            symbol_count, INT32_MAX);
    }
    if (symbol_count > workspace->symbol_capacity) {
        sq_merge_symbol *symbols = realloc(workspace->symbols, symbol_count * sizeof(*symbols));
        if (symbols == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate %zu merge symbols",
                                symbol_count);
        }
        workspace->symbols = symbols;
        workspace->symbol_capacity = symbol_count;
    }
    return SQ_OK;
}

void sq_merge_workspace_free(sq_merge_workspace *workspace) {
    free(workspace->symbols);
    free(workspace->heap);
    workspace->symbols = NULL;
    workspace->heap = NULL;
    workspace->symbol_capacity = 0;
    workspace->heap_capacity = 0;
    workspace->heap_count = 0;
}

/* Returns 1 when a must merge before b. */
static int candidate_before(const sq_merge_candidate *a, const sq_merge_candidate *b) {
    if (a->rank != b->rank) {
        return a->rank < b->rank;
    }
    return a->left < b->left;
}

static sq_status heap_push(sq_merge_workspace *workspace, sq_merge_candidate candidate,
                           sq_error *err) {
    if (workspace->heap_count == workspace->heap_capacity) {
        size_t capacity = workspace->heap_capacity == 0 ? 64 : 2 * workspace->heap_capacity;
        sq_merge_candidate *heap = realloc(workspace->heap, capacity * sizeof(*heap));
        if (heap == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot grow the merge queue to %zu entries",
                                capacity);
        }
        workspace->heap = heap;
        workspace->heap_capacity = capacity;
    }

    sq_merge_candidate *heap = workspace->heap;
    size_t child = workspace->heap_count++;
    while (child > 0) {
        size_t parent = (child - 1) / 2;
        if (!candidate_before(&candidate, &heap[parent])) {
            break;
        }
        heap[child] = heap[parent];
        child = parent;
    }
    heap[child] = candidate;
    return SQ_OK;
}

static sq_merge_candidate heap_pop(sq_merge_workspace *workspace) {
    sq_merge_candidate *heap = workspace->heap;
    sq_merge_candidate top = heap[0];
    sq_merge_candidate last = heap[--workspace->heap_count];
    size_t count = workspace->heap_count;

    size_t parent = 0;
    for (;;) {
        size_t child = 2 * parent + 1;
        if (child >= count) {
            break;
        }
        if (child + 1 < count && candidate_before(&heap[child + 1], &heap[child])) {
            child++;
        }
        if (!candidate_before(&heap[child], &last)) {
            break;
        }
        heap[parent] = heap[child];
        parent = child;
    }
    if (count > 0) {
        heap[parent] = last;
    }
    return top;
}

/* Pushes the pair (left, right) when a merge rule exists for it. */
static sq_status push_pair(const sq_pair_map *merges, sq_merge_workspace *workspace, int32_t left,
                           int32_t right, sq_error *err) {
    if (left < 0 || right < 0) {
        return SQ_OK;
    }
    const sq_merge_symbol *symbols = workspace->symbols;
    const sq_pair_entry *rule = sq_pair_map_find(merges, symbols[left].id, symbols[right].id);
    if (rule == NULL) {
        return SQ_OK;
    }
    sq_merge_candidate candidate = {
        .rank = rule->rank,
        .left = left,
        .right = right,
        .left_id = symbols[left].id,
        .right_id = symbols[right].id,
        .result = rule->result,
    };
    return heap_push(workspace, candidate, err);
}

sq_status sq_merge_symbols(const sq_pair_map *merges, sq_merge_workspace *workspace, size_t count,
                           sq_id_buffer *out, sq_error *err) {
    sq_merge_symbol *symbols = workspace->symbols;
    int32_t n = (int32_t)count;
    workspace->heap_count = 0;

    for (int32_t i = 0; i < n; i++) {
        symbols[i].prev = i - 1;
        symbols[i].next = i + 1 < n ? i + 1 : -1;
    }
    for (int32_t i = 0; i + 1 < n; i++) {
        sq_status status = push_pair(merges, workspace, i, i + 1, err);
        if (status != SQ_OK) {
            return status;
        }
    }

    while (workspace->heap_count > 0) {
        sq_merge_candidate candidate = heap_pop(workspace);
        sq_merge_symbol *left = &symbols[candidate.left];
        if (left->id != candidate.left_id || left->next != candidate.right ||
            symbols[candidate.right].id != candidate.right_id) {
            continue;
        }

        /* Merge right into left and unlink right. */
        sq_merge_symbol *right = &symbols[candidate.right];
        left->id = candidate.result;
        left->next = right->next;
        if (right->next >= 0) {
            symbols[right->next].prev = candidate.left;
        }
        right->id = -1;

        sq_status status = push_pair(merges, workspace, left->prev, candidate.left, err);
        if (status == SQ_OK) {
            status = push_pair(merges, workspace, candidate.left, left->next, err);
        }
        if (status != SQ_OK) {
            return status;
        }
    }

    for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
        sq_status status = sq_id_buffer_push(out, symbols[i].id, err);
        if (status != SQ_OK) {
            return status;
        }
    }
    return SQ_OK;
}
