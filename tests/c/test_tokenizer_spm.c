/* Tests of the SPM tokenizer: llama2.c tokenizer.bin loading, encoding against the llama2.c
 * reference outputs and against a naive O(n^2) transcription of llama2.c's encode, GGUF "llama"
 * vocabularies (▁ for spaces), decoding, the streaming decoder and bad inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "formats/formats.h"
#include "test_tokenizer_support.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

#define TOK512_PATH "models/stories260K/tok512.bin"
#define STORIES_GGUF_PATH "models/stories260K/stories260K.gguf"
#define LLAMA2_TOKENIZER_PATH "../shared/models/llama2-tokenizer/tokenizer.bin"
#define TINYSTORIES_40K_PATH "../shared/reference/tinystories-40k.txt"
#define TINYSTORIES_EVAL_PATH "../shared/reference/stories260K-tinystories-40k-eval.json"
#define GREEDY_PATH "../shared/reference/stories260K-greedy.jsonl"
#define TINYSTORIES_PART_PATH "../shared/data/tinystories/tinystories-valid-part.txt"

static int file_exists(const char *path) {
    return access(path, R_OK) == 0;
}

static sq_tokenizer *load_llama2c(const char *path, int32_t vocab_size) {
    sq_tokenizer *tokenizer = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_load_llama2c(path, vocab_size, &tokenizer, &err);
    CHECK_MSG(status == SQ_OK, "loading %s: %s", path, err.message);
    return tokenizer;
}

/* Encodes text and returns the ids, failing the check on error. */
static int32_t *encode(const sq_tokenizer *tokenizer, const char *text, size_t length, int add_bos,
                       int parse_special, size_t *count) {
    int32_t *ids = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_encode(tokenizer, text, length, add_bos, parse_special, &ids,
                                           count, &err);
    CHECK_MSG(status == SQ_OK, "encode failed: %s", err.message);
    return ids;
}

static int ids_equal(const int32_t *a, size_t a_count, const int32_t *b, size_t b_count) {
    return a_count == b_count && (a_count == 0 || memcmp(a, b, a_count * sizeof(int32_t)) == 0);
}

/* ---- A naive transcription of llama2.c run.c `encode`, for comparison ---- */

typedef struct naive_entry {
    const char *piece;
    int32_t id;
} naive_entry;

typedef struct naive_vocab {
    int32_t size;
    char **pieces; /* NUL-terminated */
    float *scores;
    naive_entry *sorted; /* sorted by piece, for bsearch */
} naive_vocab;

static int naive_compare(const void *a, const void *b) {
    return strcmp(((const naive_entry *)a)->piece, ((const naive_entry *)b)->piece);
}

/* Reads tokenizer.bin with its own parser so the naive encoder shares no code with the library. */
static void naive_vocab_load(naive_vocab *vocab, const char *path, int32_t size) {
    size_t file_size;
    char *data = support_read_text(path, &file_size);
    vocab->size = size;
    vocab->pieces = malloc((size_t)size * sizeof(char *));
    vocab->scores = malloc((size_t)size * sizeof(float));
    vocab->sorted = malloc((size_t)size * sizeof(naive_entry));
    size_t offset = 4;
    for (int32_t i = 0; i < size; i++) {
        int32_t length;
        memcpy(&vocab->scores[i], data + offset, 4);
        memcpy(&length, data + offset + 4, 4);
        vocab->pieces[i] = malloc((size_t)length + 1);
        memcpy(vocab->pieces[i], data + offset + 8, (size_t)length);
        vocab->pieces[i][length] = '\0';
        offset += 8 + (size_t)length;
        vocab->sorted[i].piece = vocab->pieces[i];
        vocab->sorted[i].id = i;
    }
    free(data);
    qsort(vocab->sorted, (size_t)size, sizeof(naive_entry), naive_compare);
}

static void naive_vocab_free(naive_vocab *vocab) {
    for (int32_t i = 0; i < vocab->size; i++) {
        free(vocab->pieces[i]);
    }
    free(vocab->pieces);
    free(vocab->scores);
    free(vocab->sorted);
}

static int32_t naive_lookup(const naive_vocab *vocab, const char *text) {
    naive_entry key = {text, -1};
    const naive_entry *found = bsearch(&key, vocab->sorted, (size_t)vocab->size,
                                       sizeof(naive_entry), naive_compare);
    return found != NULL ? found->id : -1;
}

/* llama2.c's algorithm: BOS, the dummy prefix " ", one token per UTF-8 character (bytes + 3 when
 * absent), then merge the best-scoring pair, leftmost on ties, until none is left. */
static int32_t *naive_encode(const naive_vocab *vocab, const char *text, int bos, size_t *count) {
    size_t length = strlen(text);
    int32_t *tokens = malloc((length + 3) * sizeof(int32_t));
    size_t n = 0;
    if (bos) {
        tokens[n++] = 1;
    }
    if (length > 0) {
        tokens[n++] = naive_lookup(vocab, " ");
    }

    char buffer[8];
    size_t i = 0;
    while (i < length) {
        size_t char_length = 1;
        while (i + char_length < length && ((unsigned char)text[i + char_length] & 0xC0) == 0x80) {
            char_length++;
        }
        memcpy(buffer, text + i, char_length);
        buffer[char_length] = '\0';
        int32_t id = naive_lookup(vocab, buffer);
        if (id >= 0) {
            tokens[n++] = id;
        } else {
            for (size_t k = 0; k < char_length; k++) {
                tokens[n++] = (unsigned char)buffer[k] + 3;
            }
        }
        i += char_length;
    }

    char *pair = malloc(4096);
    for (;;) {
        float best_score = -1e10f;
        int32_t best_id = -1;
        size_t best_index = 0;
        for (size_t k = 0; k + 1 < n; k++) {
            snprintf(pair, 4096, "%s%s", vocab->pieces[tokens[k]], vocab->pieces[tokens[k + 1]]);
            int32_t id = naive_lookup(vocab, pair);
            if (id >= 0 && vocab->scores[id] > best_score) {
                best_score = vocab->scores[id];
                best_id = id;
                best_index = k;
            }
        }
        if (best_id < 0) {
            break;
        }
        tokens[best_index] = best_id;
        memmove(tokens + best_index + 1, tokens + best_index + 2, (n - best_index - 2) * sizeof(int32_t));
        n--;
    }
    free(pair);
    *count = n;
    return tokens;
}

/* xorshift64*, fixed seed, so failures reproduce. */
static uint64_t rng_next(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

/* Writes a random text of fragments: characters that test merges, spaces, byte fallback (Korean,
 * emoji, a lone combining mark) and whole vocabulary pieces. */
static void random_text(uint64_t *rng, const naive_vocab *vocab, char *out, size_t capacity) {
    static const char *const fragments[] = {
        "a", "b", "e", "t", "h", "o", "n", " ", " ", "  ", "\n", "\n\n", "\t", "the", " the",
        "Once", " upon", ".", "!", ",", "'", "\"", "0", "7", "\xC3\xA9", "\xED\x95\x9C",
        "\xF0\x9F\x98\x80", "\xCC\x81", "\xE2\x80\x8A", "Lily", " Tim", "x", "Z",
    };
    size_t n_fragments = sizeof(fragments) / sizeof(fragments[0]);
    size_t length = 0;
    size_t parts = 1 + rng_next(rng) % 40;
    for (size_t p = 0; p < parts; p++) {
        const char *fragment;
        if (rng_next(rng) % 3 == 0) {
            int32_t id = 259 + (int32_t)(rng_next(rng) % (uint64_t)(vocab->size - 259));
            fragment = vocab->pieces[id];
        } else {
            fragment = fragments[rng_next(rng) % n_fragments];
        }
        size_t fragment_length = strlen(fragment);
        if (length + fragment_length + 1 > capacity) {
            break;
        }
        memcpy(out + length, fragment, fragment_length);
        length += fragment_length;
    }
    out[length] = '\0';
}

static void compare_with_naive(const char *path, int32_t vocab_size, int n_strings) {
    if (!file_exists(path)) {
        fprintf(stderr, "skipped: %s not found\n", path);
        return;
    }
    sq_tokenizer *tokenizer = load_llama2c(path, vocab_size);
    naive_vocab vocab;
    naive_vocab_load(&vocab, path, vocab_size);
    uint64_t rng = 0x9E3779B97F4A7C15ull;

    int mismatches = 0;
    char text[1024];
    for (int s = 0; s < n_strings; s++) {
        random_text(&rng, &vocab, text, sizeof(text));
        size_t expected_count;
        int32_t *expected = naive_encode(&vocab, text, 1, &expected_count);
        size_t count;
        int32_t *ids = encode(tokenizer, text, strlen(text), 1, 0, &count);
        if (!ids_equal(ids, count, expected, expected_count)) {
            if (mismatches++ < 3) {
                fprintf(stderr, "mismatch with naive llama2.c encode for \"%s\" (%zu vs %zu ids)\n",
                        text, count, expected_count);
            }
        }
        free(expected);
        free(ids);
    }
    CHECK_MSG(mismatches == 0, "%d of %d random strings differ from naive llama2.c encode (%s)",
              mismatches, n_strings, path);
    naive_vocab_free(&vocab);
    sq_tokenizer_free(tokenizer);
}

static void test_random_strings_match_naive_tok512(void) {
    compare_with_naive(TOK512_PATH, 512, 600);
}

static void test_random_strings_match_naive_llama2(void) {
    compare_with_naive(LLAMA2_TOKENIZER_PATH, 32000, 150);
}

/* ---- Reference outputs of the llama2.c program ---- */

static void test_tinystories_40k_reference(void) {
    size_t text_length;
    size_t json_length;
    char *text = support_read_text(TINYSTORIES_40K_PATH, &text_length);
    char *json_text = support_read_text(TINYSTORIES_EVAL_PATH, &json_length);
    json_value reference;
    json_parse_text(json_text, json_length, &reference);
    const json_value *n_tokens = json_get(&reference, "n_tokens");
    const json_value *first_tokens = json_get(&reference, "first_tokens");
    CHECK(n_tokens != NULL);
    CHECK(first_tokens != NULL);
    CHECK(first_tokens != NULL && first_tokens->count == 64);

    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    size_t count;
    int32_t *ids = encode(tokenizer, text, text_length, 1, 0, &count);
    CHECK_MSG(n_tokens != NULL && count == (size_t)n_tokens->number, "got %zu tokens, expected 19175",
              count);
    int first_mismatch = -1;
    for (size_t i = 0; first_tokens != NULL && i < first_tokens->count && i < count; i++) {
        if (ids[i] != (int32_t)first_tokens->items[i].number && first_mismatch < 0) {
            first_mismatch = (int)i;
        }
    }
    CHECK_MSG(first_mismatch < 0, "first 64 ids differ at index %d", first_mismatch);

    /* Decoding after BOS drops the dummy-prefix space, so the text comes back unchanged. */
    size_t decoded_length = 0;
    char *decoded = malloc(text_length + 1);
    int fits = 1;
    for (size_t i = 1; i < count; i++) {
        size_t piece_length;
        const char *piece = sq_tokenizer_decode(tokenizer, ids[i - 1], ids[i], &piece_length);
        if (decoded_length + piece_length > text_length) {
            fits = 0;
            break;
        }
        memcpy(decoded + decoded_length, piece, piece_length);
        decoded_length += piece_length;
    }
    CHECK(fits);
    CHECK(decoded_length == text_length);
    CHECK(support_bytes_equal(decoded, decoded_length, text));

    free(decoded);
    free(ids);
    sq_tokenizer_free(tokenizer);
    json_free(&reference);
    free(json_text);
    free(text);
}

static void test_greedy_prompts_reference(void) {
    size_t length;
    char *lines = support_read_text(GREEDY_PATH, &length);
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    int prompts = 0;
    char *line = lines;
    while (line < lines + length) {
        char *end = strchr(line, '\n');
        if (end == NULL) {
            end = lines + length;
        }
        if (end > line) {
            json_value entry;
            json_parse_text(line, (size_t)(end - line), &entry);
            const json_value *prompt = json_get(&entry, "prompt");
            const json_value *expected = json_get(&entry, "prompt_tokens");
            CHECK(prompt != NULL);
            CHECK(expected != NULL);
            if (prompt != NULL && expected != NULL) {
                size_t count;
                int32_t *ids = encode(tokenizer, prompt->string, prompt->string_length, 1, 0, &count);
                int same = count == expected->count;
                for (size_t i = 0; same && i < count; i++) {
                    same = ids[i] == (int32_t)expected->items[i].number;
                }
                CHECK_MSG(same, "prompt \"%s\" encodes differently from llama2.c", prompt->string);
                free(ids);
                prompts++;
            }
            json_free(&entry);
        }
        line = end + 1;
    }
    CHECK(prompts == 3);
    sq_tokenizer_free(tokenizer);
    free(lines);
}

/* Meta's Llama 2 SentencePiece model encodes "Hello world" as [1, 15043, 3186] and "I believe
 * the meaning of life is" as [1, 306, 4658, 278, 6593, 310, 2834, 338]; llama2.c's
 * tokenizer.bin is an export of that model. */
static void test_llama2_known_sentences(void) {
    if (!file_exists(LLAMA2_TOKENIZER_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", LLAMA2_TOKENIZER_PATH);
        return;
    }
    sq_tokenizer *tokenizer = load_llama2c(LLAMA2_TOKENIZER_PATH, 32000);
    size_t count;
    int32_t *ids = encode(tokenizer, "Hello world", 11, -1, 0, &count);
    const int32_t hello[] = {1, 15043, 3186};
    CHECK(ids_equal(ids, count, hello, 3));
    free(ids);

    const char *sentence = "I believe the meaning of life is";
    ids = encode(tokenizer, sentence, strlen(sentence), 1, 0, &count);
    const int32_t meaning[] = {1, 306, 4658, 278, 6593, 310, 2834, 338};
    CHECK(ids_equal(ids, count, meaning, 8));
    free(ids);
    sq_tokenizer_free(tokenizer);
}

/* ---- Behaviour on small cases worked out by hand ---- */

static void test_tok512_basics(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    CHECK(sq_tokenizer_get_kind(tokenizer) == SQ_TOKENIZER_SPM);
    CHECK(sq_tokenizer_vocab_size(tokenizer) == 512);
    CHECK(sq_tokenizer_bos_id(tokenizer) == 1);
    CHECK(sq_tokenizer_eos_id(tokenizer) == 2);
    CHECK(sq_tokenizer_adds_bos(tokenizer) == 1);
    CHECK(sq_tokenizer_is_control(tokenizer, 1));
    CHECK(sq_tokenizer_is_control(tokenizer, 2));
    CHECK(!sq_tokenizer_is_control(tokenizer, 0));
    CHECK(!sq_tokenizer_is_control(tokenizer, 300));
    CHECK(!sq_tokenizer_is_control(tokenizer, -1));
    CHECK(!sq_tokenizer_is_control(tokenizer, 512));

    /* tok512.bin stores the space piece as a plain " " at id 410 and <0xNN> at id NN + 3. */
    CHECK(sq_tokenizer_find(tokenizer, " ") == 410);
    CHECK(sq_tokenizer_find(tokenizer, "<0x41>") == 0x41 + 3);
    CHECK(sq_tokenizer_find(tokenizer, "no such piece") == -1);
    CHECK(sq_tokenizer_find(tokenizer, NULL) == -1);

    size_t count;
    int32_t *ids = encode(tokenizer, "", 0, 1, 0, &count);
    const int32_t bos_only[] = {1};
    CHECK(ids_equal(ids, count, bos_only, 1));
    free(ids);
    ids = encode(tokenizer, "", 0, 0, 0, &count);
    CHECK(ids != NULL);
    CHECK(count == 0);
    free(ids);
    ids = encode(tokenizer, NULL, 0, 0, 0, &count);
    CHECK(ids != NULL);
    CHECK(count == 0);
    free(ids);

    /* "한" (ED 95 9C) has no piece: the prefix space, then one byte token per byte. */
    CHECK(sq_tokenizer_find(tokenizer, "\xED\x95\x9C") == -1);
    ids = encode(tokenizer, "\xED\x95\x9C", 3, 1, 0, &count);
    const int32_t korean[] = {1, 410, 0xED + 3, 0x95 + 3, 0x9C + 3};
    CHECK(ids_equal(ids, count, korean, 5));
    free(ids);

    /* add_bos -1 follows the tokenizer's default (BOS for llama2.c). */
    ids = encode(tokenizer, "a", 1, -1, 0, &count);
    CHECK(count == 2);
    CHECK(ids[0] == 1);
    free(ids);
    ids = encode(tokenizer, "a", 1, 0, 0, &count);
    CHECK(count == 1);
    CHECK(ids[0] != 1);
    free(ids);
    sq_tokenizer_free(tokenizer);
}

/* A hand-made vocabulary whose merges can be followed on paper. */
static sq_tokenizer *create_small_spm(int32_t unk_id, int add_space_prefix, sq_error *err,
                                      sq_status *status) {
    static const char *const pieces[] = {"<unk>", " ", "a", "b", "ab", " a", " ab", "aa", "x", "y", "xy"};
    static const float scores[] = {0, 0, 0, 0, -1, -2, -3, -1, 0, 0, -2e10f};
    static const int32_t types[] = {SQ_TOKEN_TYPE_UNKNOWN, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    uint32_t lengths[11];
    for (int i = 0; i < 11; i++) {
        lengths[i] = (uint32_t)strlen(pieces[i]);
    }
    sq_tokenizer_desc desc = {
        .kind = SQ_TOKENIZER_SPM,
        .vocab_size = 11,
        .pieces = pieces,
        .piece_lengths = lengths,
        .scores = scores,
        .token_types = types,
        .bos_id = -1,
        .eos_id = -1,
        .unk_id = unk_id,
        .pad_id = -1,
        .add_bos = 0,
        .add_space_prefix = add_space_prefix,
    };
    sq_tokenizer *tokenizer = NULL;
    *status = sq_tokenizer_create(&desc, &tokenizer, err);
    return tokenizer;
}

static void test_small_vocabulary_merges(void) {
    sq_error err;
    sq_status status;
    sq_tokenizer *tokenizer = create_small_spm(0, 1, &err, &status);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (tokenizer == NULL) {
        return;
    }

    /* " abc": symbols [" ", a, b, <unk>]; "ab" (-1) beats " a" (-2), then " ab" (-3). */
    size_t count;
    int32_t *ids = encode(tokenizer, "abc", 3, -1, 0, &count);
    const int32_t abc[] = {6, 0};
    CHECK(ids_equal(ids, count, abc, 2));
    free(ids);
    sq_tokenizer_free(tokenizer);

    /* Without the prefix, "aaa" has two equal "aa" pairs: the leftmost merges. */
    tokenizer = create_small_spm(0, 0, &err, &status);
    ids = encode(tokenizer, "aaa", 3, -1, 0, &count);
    const int32_t aaa[] = {7, 2};
    CHECK(ids_equal(ids, count, aaa, 2));
    free(ids);

    /* "xy" scores -2e10, below llama2.c's -1e10 threshold, so x and y never merge. */
    ids = encode(tokenizer, "xy", 2, -1, 0, &count);
    const int32_t xy[] = {8, 9};
    CHECK(ids_equal(ids, count, xy, 2));
    free(ids);

    /* Requesting BOS from a vocabulary without one is an error. */
    int32_t *no_ids = NULL;
    status = sq_tokenizer_encode(tokenizer, "a", 1, 1, 0, &no_ids, &count, &err);
    CHECK(status == SQ_ERR_INVALID_ARG);
    CHECK(no_ids == NULL);
    sq_tokenizer_free(tokenizer);

    /* Without an unknown token, a character with neither piece nor byte pieces is an error. */
    tokenizer = create_small_spm(-1, 0, &err, &status);
    status = sq_tokenizer_encode(tokenizer, "ac", 2, 0, 0, &no_ids, &count, &err);
    CHECK(status == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "U+0063") != NULL);
    sq_tokenizer_free(tokenizer);
}

static void test_invalid_utf8_rejected(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    static const struct {
        const char *text;
        size_t length;
        size_t offset;
    } cases[] = {
        {"ab\xFF" "cd", 5, 2},          /* 0xFF never occurs in UTF-8 */
        {"\x80", 1, 0},                 /* lone continuation byte */
        {"ok\xC0\x80", 4, 2},           /* overlong NUL */
        {"\xE0\x80\x80", 3, 0},         /* overlong 3-byte form */
        {"x\xED\xA0\x80", 4, 1},        /* UTF-16 surrogate U+D800 */
        {"\xF4\x90\x80\x80", 4, 0},     /* above U+10FFFF */
        {"abc\xE4\xB8", 5, 3},          /* truncated at the end */
        {"\xE4\xB8" "a", 3, 0},         /* truncated before an ASCII byte */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int32_t *ids = (int32_t *)&ids;
        size_t count = 99;
        sq_error err;
        sq_status status = sq_tokenizer_encode(tokenizer, cases[i].text, cases[i].length, 1, 0,
                                               &ids, &count, &err);
        CHECK_MSG(status == SQ_ERR_INVALID_ARG, "case %zu", i);
        char expected[64];
        snprintf(expected, sizeof(expected), "offset %zu", cases[i].offset);
        CHECK_MSG(strstr(err.message, expected) != NULL, "case %zu: message \"%s\" lacks \"%s\"",
                  i, err.message, expected);
        CHECK(ids == NULL);
        CHECK(count == 0);
    }

    int32_t *ids;
    size_t count;
    sq_error err;
    CHECK(sq_tokenizer_encode(tokenizer, NULL, 3, 1, 0, &ids, &count, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_tokenizer_encode(tokenizer, "a", 1, 1, 0, NULL, &count, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_tokenizer_encode(NULL, "a", 1, 1, 0, &ids, &count, &err) == SQ_ERR_INVALID_ARG);

    /* A NUL byte is valid UTF-8 and falls back to the <0x00> byte token. */
    ids = encode(tokenizer, "a\0b", 3, 0, 0, &count);
    int has_nul = 0;
    for (size_t i = 0; i < count; i++) {
        has_nul |= ids[i] == 3;
    }
    CHECK(has_nul);
    free(ids);
    sq_tokenizer_free(tokenizer);
}

/* ---- Decoding ---- */

static void test_decode_conventions(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    size_t length;
    const char *text;

    /* Byte tokens decode to the raw byte. */
    text = sq_tokenizer_decode(tokenizer, 5, 0x0A + 3, &length);
    CHECK(support_bytes_equal(text, length, "\n"));

    /* After BOS a piece's leading space is dropped; elsewhere it stays. */
    int32_t once = sq_tokenizer_find(tokenizer, " O");
    CHECK(once >= 0);
    text = sq_tokenizer_decode(tokenizer, 1, once, &length);
    CHECK(support_bytes_equal(text, length, "O"));
    text = sq_tokenizer_decode(tokenizer, 100, once, &length);
    CHECK(support_bytes_equal(text, length, " O"));
    text = sq_tokenizer_decode(tokenizer, -1, once, &length);
    CHECK(length == 2);

    /* The byte token for a space keeps its space after BOS, as in llama2.c. */
    text = sq_tokenizer_decode(tokenizer, 1, 0x20 + 3, &length);
    CHECK(support_bytes_equal(text, length, " "));

    /* Out-of-range ids decode to nothing. */
    text = sq_tokenizer_decode(tokenizer, -1, 512, &length);
    CHECK(support_bytes_equal(text, length, ""));
    text = sq_tokenizer_decode(tokenizer, -1, -5, &length);
    CHECK(support_bytes_equal(text, length, ""));
    sq_tokenizer_free(tokenizer);
}

/* Pushes ids after the leading BOS through the streaming decoder, checking that every chunk is
 * valid UTF-8. */
static char *stream_decode(const sq_tokenizer *tokenizer, const int32_t *ids, size_t count,
                           size_t *length, int *chunks_valid) {
    size_t capacity = sq_token_decoder_min_capacity(tokenizer);
    char *chunk = malloc(capacity);
    char *all = malloc(count * capacity + capacity);
    *length = 0;
    *chunks_valid = 1;
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    decoder.previous_id = ids[0];
    for (size_t i = 1; i < count; i++) {
        size_t n = sq_token_decoder_push(&decoder, tokenizer, ids[i], chunk, capacity);
        *chunks_valid &= support_utf8_valid((const unsigned char *)chunk, n) && chunk[n] == '\0';
        memcpy(all + *length, chunk, n);
        *length += n;
    }
    size_t n = sq_token_decoder_flush(&decoder, chunk, capacity);
    memcpy(all + *length, chunk, n);
    *length += n;
    free(chunk);
    return all;
}

static void test_streaming_decoder_keeps_characters_whole(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    const char *text = "\xEC\x95\x88\xEB\x85\x95 \xF0\x9F\x98\x80 world, "
                       "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4! caf\xC3\xA9";
    size_t count;
    int32_t *ids = encode(tokenizer, text, strlen(text), 1, 0, &count);
    int byte_tokens = 0;
    for (size_t i = 0; i < count; i++) {
        byte_tokens += ids[i] >= 3 && ids[i] < 259;
    }
    CHECK(byte_tokens >= 16); /* the Korean and emoji characters fall back to bytes */

    size_t length;
    int chunks_valid;
    char *decoded = stream_decode(tokenizer, ids, count, &length, &chunks_valid);
    CHECK(chunks_valid);
    CHECK(support_bytes_equal(decoded, length, text));
    free(decoded);
    free(ids);

    if (file_exists(LLAMA2_TOKENIZER_PATH)) {
        sq_tokenizer *llama2 = load_llama2c(LLAMA2_TOKENIZER_PATH, 32000);
        ids = encode(llama2, text, strlen(text), 1, 0, &count);
        decoded = stream_decode(llama2, ids, count, &length, &chunks_valid);
        CHECK(chunks_valid);
        CHECK(support_bytes_equal(decoded, length, text));
        free(decoded);
        free(ids);
        sq_tokenizer_free(llama2);
    }
    sq_tokenizer_free(tokenizer);
}

static void test_streaming_decoder_replaces_invalid_bytes(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    const int32_t byte_ff = 0xFF + 3;
    const int32_t byte_e4 = 0xE4 + 3;
    const int32_t byte_b8 = 0xB8 + 3;
    const int32_t byte_ad = 0xAD + 3;
    int32_t letter_a = sq_tokenizer_find(tokenizer, "a");
    CHECK(letter_a >= 0);
    char out[64];
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);

    /* 0xFF can never start a character. */
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_ff, out, sizeof(out)) == 3);
    CHECK(memcmp(out, "\xEF\xBF\xBD", 4) == 0);

    /* E4 B8 AD is "中": nothing comes out until the last byte arrives. */
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_e4, out, sizeof(out)) == 0);
    CHECK(out[0] == '\0');
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_b8, out, sizeof(out)) == 0);
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_ad, out, sizeof(out)) == 3);
    CHECK(memcmp(out, "\xE4\xB8\xAD", 4) == 0);

    /* A held-back lead byte followed by ASCII becomes U+FFFD, then the ASCII. */
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_e4, out, sizeof(out)) == 0);
    CHECK(sq_token_decoder_push(&decoder, tokenizer, letter_a, out, sizeof(out)) == 4);
    CHECK(memcmp(out, "\xEF\xBF\xBD" "a", 5) == 0);

    /* An unfinished character at the end is flushed as U+FFFD; a second flush is empty. */
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_e4, out, sizeof(out)) == 0);
    CHECK(sq_token_decoder_flush(&decoder, out, sizeof(out)) == 3);
    CHECK(memcmp(out, "\xEF\xBF\xBD", 4) == 0);
    CHECK(sq_token_decoder_flush(&decoder, out, sizeof(out)) == 0);

    /* A lone continuation byte is U+FFFD. */
    CHECK(sq_token_decoder_push(&decoder, tokenizer, byte_b8, out, sizeof(out)) == 3);

    /* Characters that do not fit are dropped whole: " Once" needs 5 bytes plus the NUL. */
    int32_t once = sq_tokenizer_find(tokenizer, " Once");
    if (once < 0) {
        once = sq_tokenizer_find(tokenizer, " the");
    }
    CHECK(once >= 0);
    sq_token_decoder_init(&decoder);
    size_t written = sq_token_decoder_push(&decoder, tokenizer, once, out, 4);
    CHECK(written == 3);
    CHECK(out[3] == '\0');
    CHECK(sq_token_decoder_push(&decoder, tokenizer, once, NULL, 0) == 0);
    CHECK(sq_token_decoder_min_capacity(tokenizer) > 3 * 6);
    sq_tokenizer_free(tokenizer);
}

/* ---- GGUF "llama" vocabulary (▁ for spaces) ---- */

static void test_gguf_spm_matches_llama2c(void) {
    if (!file_exists(STORIES_GGUF_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", STORIES_GGUF_PATH);
        return;
    }
    gguf_vocab vocab;
    gguf_vocab_load(STORIES_GGUF_PATH, &vocab);
    CHECK(strcmp(vocab.model, "llama") == 0);
    sq_tokenizer_desc desc = gguf_vocab_desc(&vocab);
    sq_tokenizer *gguf_tokenizer = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_create(&desc, &gguf_tokenizer, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status != SQ_OK) {
        gguf_vocab_free(&vocab);
        return;
    }
    sq_tokenizer *bin_tokenizer = load_llama2c(TOK512_PATH, 512);

    /* The same vocabulary with ▁ instead of spaces gives the same ids on the whole 40k text. */
    size_t text_length;
    char *text = support_read_text(TINYSTORIES_40K_PATH, &text_length);
    size_t gguf_count;
    size_t bin_count;
    int32_t *gguf_ids = encode(gguf_tokenizer, text, text_length, 1, 0, &gguf_count);
    int32_t *bin_ids = encode(bin_tokenizer, text, text_length, 1, 0, &bin_count);
    CHECK(gguf_count == 19175);
    CHECK(ids_equal(gguf_ids, gguf_count, bin_ids, bin_count));

    /* ▁ decodes to a space, dropped after BOS. */
    int32_t meta_t = sq_tokenizer_find(gguf_tokenizer, "\xE2\x96\x81t");
    CHECK(meta_t == 259);
    size_t length;
    const char *piece = sq_tokenizer_decode(gguf_tokenizer, 42, meta_t, &length);
    CHECK(support_bytes_equal(piece, length, " t"));
    piece = sq_tokenizer_decode(gguf_tokenizer, 1, meta_t, &length);
    CHECK(support_bytes_equal(piece, length, "t"));
    piece = sq_tokenizer_decode(gguf_tokenizer, -1, 1, &length);
    CHECK(support_bytes_equal(piece, length, "<s>"));

    /* With parse_special, "<s>" is the BOS token and the text after it gets its own prefix. */
    size_t count;
    int32_t *ids = encode(gguf_tokenizer, "<s>hi", 5, 0, 1, &count);
    size_t plain_count;
    int32_t *plain = encode(gguf_tokenizer, "hi", 2, 0, 0, &plain_count);
    CHECK(ids[0] == 1);
    CHECK(count == plain_count + 1);
    CHECK(ids_equal(ids + 1, count - 1, plain, plain_count));
    free(ids);
    free(plain);
    ids = encode(gguf_tokenizer, "<s>", 3, 0, 0, &count);
    int has_bos = 0;
    for (size_t i = 0; i < count; i++) {
        has_bos |= ids[i] == 1;
    }
    CHECK(!has_bos); /* without parse_special the text is ordinary characters */
    free(ids);

    free(gguf_ids);
    free(bin_ids);
    free(text);
    sq_tokenizer_free(bin_tokenizer);
    sq_tokenizer_free(gguf_tokenizer);
    gguf_vocab_free(&vocab);
}

/* The engine's GGUF loader builds the same tokenizer from stories260K.gguf. */
static void test_model_loader_gguf_tokenizer(void) {
    if (!file_exists(STORIES_GGUF_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", STORIES_GGUF_PATH);
        return;
    }
    sq_model model = {0};
    sq_error err;
    sq_status status = sq_model_load(STORIES_GGUF_PATH, NULL, NULL, &model, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    CHECK(status != SQ_OK || model.tokenizer != NULL);
    if (status != SQ_OK || model.tokenizer == NULL) {
        return;
    }

    size_t text_length;
    char *text = support_read_text(TINYSTORIES_40K_PATH, &text_length);
    sq_tokenizer *bin_tokenizer = load_llama2c(TOK512_PATH, 512);
    size_t model_count;
    size_t bin_count;
    int32_t *model_ids = encode(model.tokenizer, text, text_length, -1, 0, &model_count);
    int32_t *bin_ids = encode(bin_tokenizer, text, text_length, 1, 0, &bin_count);
    CHECK(model_count == 19175);
    CHECK(ids_equal(model_ids, model_count, bin_ids, bin_count));

    free(model_ids);
    free(bin_ids);
    free(text);
    sq_tokenizer_free(bin_tokenizer);
    sq_model_free(&model);
}

/* ---- Copies, bad descriptions and bad files ---- */

static void test_clone_is_independent(void) {
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    const char *text = "Once upon a time, there was a little girl named Lily.";
    size_t count;
    int32_t *expected = encode(tokenizer, text, strlen(text), 1, 0, &count);

    sq_tokenizer *copy = NULL;
    sq_error err;
    CHECK(sq_tokenizer_clone(tokenizer, &copy, &err) == SQ_OK);
    sq_tokenizer_free(tokenizer);

    size_t copy_count;
    int32_t *ids = encode(copy, text, strlen(text), 1, 0, &copy_count);
    CHECK(ids_equal(ids, copy_count, expected, count));
    size_t length;
    const char *piece = sq_tokenizer_decode(copy, 1, ids[1], &length);
    CHECK(length > 0);
    CHECK(piece[0] != ' ');
    CHECK(sq_tokenizer_find(copy, " ") == 410);
    free(ids);
    free(expected);
    sq_tokenizer_free(copy);
    sq_tokenizer_free(NULL);
}

static void test_invalid_descriptions_rejected(void) {
    const char *pieces[] = {"<unk>", "<s>", "</s>", "a"};
    uint32_t lengths[] = {5, 3, 4, 1};
    sq_tokenizer_desc good = {
        .kind = SQ_TOKENIZER_SPM,
        .vocab_size = 4,
        .pieces = pieces,
        .piece_lengths = lengths,
        .bos_id = 1,
        .eos_id = 2,
        .unk_id = 0,
        .pad_id = -1,
        .add_bos = 1,
        .add_space_prefix = 1,
    };
    sq_tokenizer *tokenizer = NULL;
    sq_error err;
    CHECK(sq_tokenizer_create(&good, &tokenizer, &err) == SQ_OK);
    sq_tokenizer_free(tokenizer);

    sq_tokenizer_desc bad = good;
    bad.kind = (sq_tokenizer_kind)7;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(tokenizer == NULL);
    CHECK(strstr(err.message, "kind 7") != NULL);

    bad = good;
    bad.vocab_size = 0;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "vocab_size 0") != NULL);

    bad = good;
    bad.bos_id = 4;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "bos_id 4") != NULL);

    bad = good;
    bad.eos_id = -2;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);

    bad = good;
    bad.bos_id = -1;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "add_bos") != NULL);

    bad = good;
    bad.pieces = NULL;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);

    const char *null_piece[] = {"<unk>", NULL, "</s>", "a"};
    bad = good;
    bad.pieces = null_piece;
    CHECK(sq_tokenizer_create(&bad, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "token 1") != NULL);

    CHECK(sq_tokenizer_create(NULL, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(sq_tokenizer_create(&good, NULL, &err) == SQ_ERR_INVALID_ARG);
}

/* Writes bytes to a new temporary file and stores its path. */
static void write_temp_file(const void *bytes, size_t size, char path[64]) {
    snprintf(path, 64, "/tmp/sq_test_tokenizer_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, bytes, size) == (ssize_t)size);
        close(fd);
    }
}

/* Appends one llama2.c entry to buffer. */
static size_t put_entry(uint8_t *buffer, size_t offset, float score, int32_t length, const char *text) {
    memcpy(buffer + offset, &score, 4);
    memcpy(buffer + offset + 4, &length, 4);
    if (length > 0 && text != NULL) {
        memcpy(buffer + offset + 8, text, (size_t)length);
        return offset + 8 + (size_t)length;
    }
    return offset + 8;
}

static sq_status load_bytes(const uint8_t *bytes, size_t size, int32_t vocab_size, sq_error *err,
                            char path[64]) {
    write_temp_file(bytes, size, path);
    sq_tokenizer *tokenizer = (sq_tokenizer *)&tokenizer;
    sq_status status = sq_tokenizer_load_llama2c(path, vocab_size, &tokenizer, err);
    if (status == SQ_OK) {
        sq_tokenizer_free(tokenizer);
    } else {
        CHECK(tokenizer == NULL);
    }
    remove(path);
    return status;
}

static void test_bad_llama2c_files_rejected(void) {
    uint8_t buffer[256];
    int32_t max_length = 5;
    memcpy(buffer, &max_length, 4);
    size_t size = 4;
    size = put_entry(buffer, size, 0, 5, "<unk>");
    size = put_entry(buffer, size, 0, 3, "<s>");
    size = put_entry(buffer, size, 0, 4, "</s>");
    size = put_entry(buffer, size, -1, 1, "a");
    size_t good_size = size;
    char path[64];
    sq_error err;

    CHECK(load_bytes(buffer, good_size, 4, &err, path) == SQ_OK);

    /* Fewer entries than vocab_size. */
    CHECK(load_bytes(buffer, good_size, 6, &err, path) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, path) != NULL);
    CHECK(strstr(err.message, "after 4 entries") != NULL);
    CHECK(strstr(err.message, "vocab_size is 6") != NULL);

    /* More entries than vocab_size. */
    CHECK(load_bytes(buffer, good_size, 3, &err, path) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, "1 more complete entries") != NULL);

    /* Truncated inside an entry's text, and inside its header. */
    CHECK(load_bytes(buffer, good_size - 1, 4, &err, path) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "entry 3") != NULL);
    CHECK(load_bytes(buffer, good_size - 6, 4, &err, path) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "entry 3") != NULL);

    /* Negative and huge lengths. */
    uint8_t corrupt[256];
    memcpy(corrupt, buffer, good_size);
    size_t third = 4 + (8 + 5) + (8 + 3);
    int32_t negative = -7;
    memcpy(corrupt + third + 4, &negative, 4);
    CHECK(load_bytes(corrupt, good_size, 4, &err, path) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "negative length -7") != NULL);
    CHECK(strstr(err.message, "entry 2") != NULL);
    int32_t huge = 0x7FFFFFFF;
    memcpy(corrupt + third + 4, &huge, 4);
    CHECK(load_bytes(corrupt, good_size, 4, &err, path) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "2147483647") != NULL);

    /* A header that is too short or not positive. */
    CHECK(load_bytes(buffer, 2, 4, &err, path) == SQ_ERR_FORMAT);
    int32_t zero = 0;
    memcpy(corrupt, buffer, good_size);
    memcpy(corrupt, &zero, 4);
    CHECK(load_bytes(corrupt, good_size, 4, &err, path) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "max_token_length 0") != NULL);

    /* Too small a vocabulary, and a missing file. */
    CHECK(load_bytes(buffer, good_size, 2, &err, path) == SQ_ERR_INVALID_ARG);
    sq_tokenizer *tokenizer = NULL;
    CHECK(sq_tokenizer_load_llama2c("/nonexistent/tokenizer.bin", 512, &tokenizer, &err) == SQ_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent/tokenizer.bin") != NULL);
    CHECK(tokenizer == NULL);

    /* The stories260K tokenizer read with the wrong vocab_size. */
    CHECK(sq_tokenizer_load_llama2c(TOK512_PATH, 32000, &tokenizer, &err) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, "after 512 entries") != NULL);
    CHECK(sq_tokenizer_load_llama2c(TOK512_PATH, 500, &tokenizer, &err) == SQ_ERR_MISMATCH);
    CHECK(strstr(err.message, "12 more complete entries") != NULL);
}

/* ---- Speed ---- */

static void test_encode_speed(void) {
    if (!file_exists(TINYSTORIES_PART_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", TINYSTORIES_PART_PATH);
        return;
    }
    size_t text_length;
    char *text = support_read_text(TINYSTORIES_PART_PATH, &text_length);
    sq_tokenizer *tokenizer = load_llama2c(TOK512_PATH, 512);
    struct timespec start;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t count;
    int32_t *ids = encode(tokenizer, text, text_length, 1, 0, &count);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
    fprintf(stderr, "SPM encode: %zu bytes -> %zu tokens in %.3f s\n", text_length, count, seconds);
    CHECK(count > text_length / 4);
    CHECK(seconds < 10.0);
    free(ids);
    free(text);
    sq_tokenizer_free(tokenizer);
}

int main(void) {
    RUN_TEST(test_tok512_basics);
    RUN_TEST(test_tinystories_40k_reference);
    RUN_TEST(test_greedy_prompts_reference);
    RUN_TEST(test_llama2_known_sentences);
    RUN_TEST(test_small_vocabulary_merges);
    RUN_TEST(test_random_strings_match_naive_tok512);
    RUN_TEST(test_random_strings_match_naive_llama2);
    RUN_TEST(test_invalid_utf8_rejected);
    RUN_TEST(test_decode_conventions);
    RUN_TEST(test_streaming_decoder_keeps_characters_whole);
    RUN_TEST(test_streaming_decoder_replaces_invalid_bytes);
    RUN_TEST(test_gguf_spm_matches_llama2c);
    RUN_TEST(test_model_loader_gguf_tokenizer);
    RUN_TEST(test_clone_is_independent);
    RUN_TEST(test_invalid_descriptions_rejected);
    RUN_TEST(test_bad_llama2c_files_rejected);
    RUN_TEST(test_encode_speed);
    TEST_MAIN_END();
}
