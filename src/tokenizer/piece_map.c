/* Hash maps of the tokenizer: piece text -> token id, and adjacent id pair -> merge rule. Both
 * use open addressing with linear probing at a load factor of at most one half. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* FNV-1a, 64-bit. */
uint64_t sq_hash_bytes(const void *data, size_t length) {
    const unsigned char *bytes = data;
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < length; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

/* The splitmix64 finalizer: spreads an id pair over all 64 bits. */
static uint64_t hash_pair_key(uint64_t key) {
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebull;
    key ^= key >> 31;
    return key;
}

static size_t capacity_for(size_t count) {
    size_t capacity = 16;
    while (capacity < 2 * count) {
        capacity *= 2;
    }
    return capacity;
}

static int piece_equals(const sq_tokenizer *tokenizer, int32_t id, const char *text, size_t length) {
    return tokenizer->piece_lengths[id] == length &&
           memcmp(tokenizer->piece_text + tokenizer->piece_offsets[id], text, length) == 0;
}

sq_status sq_piece_map_build(sq_tokenizer *tokenizer, sq_error *err) {
    size_t capacity = capacity_for((size_t)tokenizer->vocab_size);
    int32_t *slots = malloc(capacity * sizeof(*slots));
    if (slots == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a piece map of %zu slots", capacity);
    }
    for (size_t i = 0; i < capacity; i++) {
        slots[i] = -1;
    }

    for (int32_t id = 0; id < tokenizer->vocab_size; id++) {
        const char *text = tokenizer->piece_text + tokenizer->piece_offsets[id];
        size_t length = tokenizer->piece_lengths[id];
        size_t slot = (size_t)sq_hash_bytes(text, length) & (capacity - 1);
        while (slots[slot] >= 0 && !piece_equals(tokenizer, slots[slot], text, length)) {
            slot = (slot + 1) & (capacity - 1);
        }
        if (slots[slot] < 0) {
            slots[slot] = id;
        }
    }

    tokenizer->pieces.slots = slots;
    tokenizer->pieces.capacity = capacity;
    return SQ_OK;
}

int32_t sq_piece_map_find(const sq_tokenizer *tokenizer, const char *text, size_t length) {
    const sq_piece_map *map = &tokenizer->pieces;
    size_t slot = (size_t)sq_hash_bytes(text, length) & (map->capacity - 1);
    while (map->slots[slot] >= 0) {
        if (piece_equals(tokenizer, map->slots[slot], text, length)) {
            return map->slots[slot];
        }
        slot = (slot + 1) & (map->capacity - 1);
    }
    return -1;
}

sq_status sq_pair_map_reserve(sq_pair_map *map, size_t count, sq_error *err) {
    size_t capacity = capacity_for(count);
    if (capacity > SIZE_MAX / sizeof(sq_pair_entry)) {
        return sq_error_set(err, SQ_ERR_NOMEM, "a merge table of %zu rules is too large", count);
    }
    sq_pair_entry *slots = malloc(capacity * sizeof(*slots));
    if (slots == NULL) {
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate a merge table of %zu slots",
                            capacity);
    }
    for (size_t i = 0; i < capacity; i++) {
        slots[i].key = SQ_PAIR_EMPTY;
    }
    free(map->slots);
    map->slots = slots;
    map->capacity = capacity;
    map->count = 0;
    return SQ_OK;
}

static uint64_t pair_key(int32_t left, int32_t right) {
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static void pair_map_place(sq_pair_map *map, sq_pair_entry entry) {
    size_t slot = (size_t)hash_pair_key(entry.key) & (map->capacity - 1);
    while (map->slots[slot].key != SQ_PAIR_EMPTY) {
        slot = (slot + 1) & (map->capacity - 1);
    }
    map->slots[slot] = entry;
}

/* Doubles the capacity and re-inserts every entry. Returns 0 when out of memory. */
static int pair_map_grow(sq_pair_map *map) {
    size_t capacity = map->capacity == 0 ? 16 : 2 * map->capacity;
    if (capacity > SIZE_MAX / sizeof(sq_pair_entry)) {
        return 0;
    }
    sq_pair_entry *slots = malloc(capacity * sizeof(*slots));
    if (slots == NULL) {
        return 0;
    }
    for (size_t i = 0; i < capacity; i++) {
        slots[i].key = SQ_PAIR_EMPTY;
    }

    sq_pair_map old = *map;
    map->slots = slots;
    map->capacity = capacity;
    for (size_t i = 0; i < old.capacity; i++) {
        if (old.slots[i].key != SQ_PAIR_EMPTY) {
            pair_map_place(map, old.slots[i]);
        }
    }
    free(old.slots);
    return 1;
}

int sq_pair_map_insert(sq_pair_map *map, int32_t left, int32_t right, int32_t result, int32_t rank) {
    if (2 * (map->count + 1) > map->capacity && !pair_map_grow(map)) {
        return -1;
    }

    uint64_t key = pair_key(left, right);
    size_t slot = (size_t)hash_pair_key(key) & (map->capacity - 1);
    while (map->slots[slot].key != SQ_PAIR_EMPTY) {
        if (map->slots[slot].key == key) {
            return 0;
        }
        slot = (slot + 1) & (map->capacity - 1);
    }
    map->slots[slot].key = key;
    map->slots[slot].result = result;
    map->slots[slot].rank = rank;
    map->count++;
    return 1;
}

const sq_pair_entry *sq_pair_map_find(const sq_pair_map *map, int32_t left, int32_t right) {
    if (map->capacity == 0) {
        return NULL;
    }
    uint64_t key = pair_key(left, right);
    size_t slot = (size_t)hash_pair_key(key) & (map->capacity - 1);
    while (map->slots[slot].key != SQ_PAIR_EMPTY) {
        if (map->slots[slot].key == key) {
            return &map->slots[slot];
        }
        slot = (slot + 1) & (map->capacity - 1);
    }
    return NULL;
}

void sq_pair_map_free(sq_pair_map *map) {
    free(map->slots);
    map->slots = NULL;
    map->capacity = 0;
    map->count = 0;
}

sq_status sq_id_buffer_push(sq_id_buffer *buffer, int32_t id, sq_error *err) {
    if (buffer->count == buffer->capacity) {
        size_t capacity = buffer->capacity == 0 ? 64 : 2 * buffer->capacity;
        int32_t *data = realloc(buffer->data, capacity * sizeof(*data));
        if (data == NULL) {
            return sq_error_set(err, SQ_ERR_NOMEM, "cannot grow the token list to %zu ids", capacity);
        }
        buffer->data = data;
        buffer->capacity = capacity;
    }
    buffer->data[buffer->count++] = id;
    return SQ_OK;
}
