/* Tests of the BPE tokenizer with SmolLM2's vocabulary (GGUF tokenizer.ggml.model = "gpt2",
 * pre "smollm"): the regex pre-tokenizer split, the byte-level mapping, the \p{L}/\p{N}/\s
 * classes, encoding against reference ids from Hugging Face tokenizers and llama.cpp, special
 * tokens, decoding, speed and bad inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_tokenizer_support.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_internal.h"

#define SMOLLM2_PATH "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
#define REFERENCE_PATH "tests/reference/smollm2-reference.json"
#define WIKITEXT_PATH "../shared/data/wikitext-2-raw/wiki.test.raw"

static int file_exists(const char *path) {
    return access(path, R_OK) == 0;
}

static int ids_equal(const int32_t *a, size_t a_count, const int32_t *b, size_t b_count) {
    return a_count == b_count && (a_count == 0 || memcmp(a, b, a_count * sizeof(int32_t)) == 0);
}

static int32_t *encode(const sq_tokenizer *tokenizer, const char *text, size_t length, int add_bos,
                       int parse_special, size_t *count) {
    int32_t *ids = NULL;
    sq_error err;
    sq_status status = sq_tokenizer_encode(tokenizer, text, length, add_bos, parse_special, &ids,
                                           count, &err);
    CHECK_MSG(status == SQ_OK, "encode failed: %s", err.message);
    return ids;
}

/* ---- Pre-tokenizer split ----
 * Expected words come from Hugging Face tokenizers 0.23.3: pre_tokenizers.Sequence([Digits(
 * individual_digits=True), ByteLevel(add_prefix_space=False)]) for "smollm" and ByteLevel alone
 * for "gpt2", mapped back from byte-level characters to UTF-8. */

typedef struct split_case {
    const char *text;
    const char *words[16]; /* NULL-terminated */
} split_case;

static const split_case smol_split_cases[] = {
    {"Hello world's end", {"Hello", " world", "'s", " end", NULL}},
    {"a  b", {"a", " ", " b", NULL}},
    {"a   b  ", {"a", "  ", " b", "  ", NULL}},
    {"x\n\n  y", {"x", "\n\n ", " y", NULL}},
    {"  leading", {" ", " leading", NULL}},
    {"trailing  ", {"trailing", "  ", NULL}},
    {"tab\t\tx", {"tab", "\t", "\t", "x", NULL}},
    {"don't I'll we've they're 'S 'Re", {"don", "'t", " I", "'ll", " we", "'ve", " they", "'re", " '", "S", " '", "Re", NULL}},
    {"''s", {"''", "s", NULL}},
    {"abc123def 4 5", {"abc", "1", "2", "3", "def", " ", "4", " ", "5", NULL}},
    {"a  1", {"a", "  ", "1", NULL}},
    {"\n 1", {"\n ", "1", NULL}},
    {"4 \302\275 months", {"4", " ", "\302\275", " months", NULL}},
    {"\342\205\253 century", {"\342\205\253", " century", NULL}},
    {"h\303\251llo \320\274\320\270\321\200 \344\270\255\346\226\207", {"h\303\251llo", " \320\274\320\270\321\200", " \344\270\255\346\226\207", NULL}},
    {"e\314\201t", {"e", "\314\201", "t", NULL}},
    {"emoji \360\237\230\200\360\237\230\200 !!", {"emoji", " \360\237\230\200\360\237\230\200", " !!", NULL}},
    {"x = y + z;  // c", {"x", " =", " y", " +", " z", ";", " ", " //", " c", NULL}},
    {"\343\200\200x\302\240y", {"\343\200\200", "x", "\302\240", "y", NULL}},
    {"a\342\200\213b", {"a", "\342\200\213", "b", NULL}},
    {"$100.50", {"$", "1", "0", "0", ".", "5", "0", NULL}},
    {"  \n", {"  \n", NULL}},
};
static const split_case gpt2_split_cases[] = {
    {"Hello world's end", {"Hello", " world", "'s", " end", NULL}},
    {"a  b", {"a", " ", " b", NULL}},
    {"a   b  ", {"a", "  ", " b", "  ", NULL}},
    {"x\n\n  y", {"x", "\n\n ", " y", NULL}},
    {"  leading", {" ", " leading", NULL}},
    {"trailing  ", {"trailing", "  ", NULL}},
    {"tab\t\tx", {"tab", "\t", "\t", "x", NULL}},
    {"don't I'll we've they're 'S 'Re", {"don", "'t", " I", "'ll", " we", "'ve", " they", "'re", " '", "S", " '", "Re", NULL}},
    {"''s", {"''", "s", NULL}},
    {"abc123def 4 5", {"abc", "123", "def", " 4", " 5", NULL}},
    {"a  1", {"a", " ", " 1", NULL}},
    {"\n 1", {"\n", " 1", NULL}},
    {"4 \302\275 months", {"4", " \302\275", " months", NULL}},
    {"\342\205\253 century", {"\342\205\253", " century", NULL}},
    {"h\303\251llo \320\274\320\270\321\200 \344\270\255\346\226\207", {"h\303\251llo", " \320\274\320\270\321\200", " \344\270\255\346\226\207", NULL}},
    {"e\314\201t", {"e", "\314\201", "t", NULL}},
    {"emoji \360\237\230\200\360\237\230\200 !!", {"emoji", " \360\237\230\200\360\237\230\200", " !!", NULL}},
    {"x = y + z;  // c", {"x", " =", " y", " +", " z", ";", " ", " //", " c", NULL}},
    {"\343\200\200x\302\240y", {"\343\200\200", "x", "\302\240", "y", NULL}},
    {"a\342\200\213b", {"a", "\342\200\213", "b", NULL}},
    {"$100.50", {"$", "100", ".", "50", NULL}},
    {"  \n", {"  \n", NULL}},
};

static void check_split_cases(sq_pretokenizer kind, const split_case *cases, size_t n_cases) {
    for (size_t c = 0; c < n_cases; c++) {
        const char *text = cases[c].text;
        sq_pretokenize_iterator words;
        sq_pretokenize_begin(&words, kind, text, strlen(text));
        size_t start;
        size_t end;
        size_t w = 0;
        int same = 1;
        while (sq_pretokenize_next(&words, &start, &end)) {
            const char *expected = cases[c].words[w];
            if (expected == NULL || strlen(expected) != end - start ||
                memcmp(expected, text + start, end - start) != 0) {
                same = 0;
                break;
            }
            w++;
        }
        CHECK_MSG(same, "split of \"%s\" differs at word %zu", text, w);
        CHECK_MSG(!same || cases[c].words[w] == NULL, "split of \"%s\" ends after %zu words", text, w);
    }
}

static void test_split_smollm(void) {
    check_split_cases(SQ_PRETOKENIZER_DIGITS_GPT2, smol_split_cases,
                      sizeof(smol_split_cases) / sizeof(smol_split_cases[0]));
}

static void test_split_gpt2(void) {
    check_split_cases(SQ_PRETOKENIZER_GPT2, gpt2_split_cases,
                      sizeof(gpt2_split_cases) / sizeof(gpt2_split_cases[0]));
}

static void test_split_empty_text(void) {
    sq_pretokenize_iterator words;
    sq_pretokenize_begin(&words, SQ_PRETOKENIZER_DIGITS_GPT2, "", 0);
    size_t start;
    size_t end;
    CHECK(!sq_pretokenize_next(&words, &start, &end));
}

/* Categories from the Unicode Character Database (UnicodeData.txt). */
static void test_unicode_classes(void) {
    const uint32_t letters[] = {'A', 'z', 0xAA, 0xB5, 0xC0, 0xDF, 0x3B1, 0x43C, 0x5D0, 0x627,
                                0x4E2D, 0xD55C, 0x3042, 0x1D400, 0x20000};
    const uint32_t numbers[] = {'0', '9', 0xB2, 0xBD, 0x663, 0x966, 0x216B, 0x2460, 0x3007,
                                0xFF10, 0x1D7CE};
    const uint32_t neither[] = {' ', '_', '$', '\'', 0x301, 0x200B, 0x2014, 0x1F600, 0xD7A4,
                                0xE000, 0x10FFFF};
    const uint32_t spaces[] = {' ', '\t', '\n', 0x0B, 0x0C, '\r', 0x85, 0xA0, 0x1680, 0x2000,
                               0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000};
    const uint32_t not_spaces[] = {'a', 0x1C, 0x1F, 0x180E, 0x200B, 0xFEFF};
    for (size_t i = 0; i < sizeof(letters) / sizeof(letters[0]); i++) {
        CHECK_MSG(sq_unicode_is_letter(letters[i]), "U+%04X is a letter", (unsigned)letters[i]);
        CHECK_MSG(!sq_unicode_is_number(letters[i]), "U+%04X is not a number", (unsigned)letters[i]);
    }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        CHECK_MSG(sq_unicode_is_number(numbers[i]), "U+%04X is a number", (unsigned)numbers[i]);
        CHECK_MSG(!sq_unicode_is_letter(numbers[i]), "U+%04X is not a letter", (unsigned)numbers[i]);
    }
    for (size_t i = 0; i < sizeof(neither) / sizeof(neither[0]); i++) {
        CHECK_MSG(!sq_unicode_is_letter(neither[i]), "U+%04X is not a letter", (unsigned)neither[i]);
        CHECK_MSG(!sq_unicode_is_number(neither[i]), "U+%04X is not a number", (unsigned)neither[i]);
    }
    for (size_t i = 0; i < sizeof(spaces) / sizeof(spaces[0]); i++) {
        CHECK_MSG(sq_unicode_is_whitespace(spaces[i]), "U+%04X is white space", (unsigned)spaces[i]);
    }
    for (size_t i = 0; i < sizeof(not_spaces) / sizeof(not_spaces[0]); i++) {
        CHECK_MSG(!sq_unicode_is_whitespace(not_spaces[i]), "U+%04X is not white space",
                  (unsigned)not_spaces[i]);
    }

    /* The generated tables must be sorted, non-overlapping and disjoint from each other. */
    for (size_t i = 0; i < sq_unicode_letter_range_count; i++) {
        CHECK(sq_unicode_letter_ranges[i].first <= sq_unicode_letter_ranges[i].last);
        if (i > 0) {
            CHECK(sq_unicode_letter_ranges[i - 1].last + 1 < sq_unicode_letter_ranges[i].first);
        }
    }
    for (size_t i = 0; i < sq_unicode_number_range_count; i++) {
        CHECK(sq_unicode_number_ranges[i].first <= sq_unicode_number_ranges[i].last);
        if (i > 0) {
            CHECK(sq_unicode_number_ranges[i - 1].last + 1 < sq_unicode_number_ranges[i].first);
        }
        CHECK(!sq_unicode_is_letter(sq_unicode_number_ranges[i].first));
    }
}

/* GPT-2 bytes_to_unicode: space is Ġ (U+0120), newline Ċ (U+010A), printable bytes map to
 * themselves, and the mapping is a bijection onto 256 code points. */
static void test_byte_level_mapping(void) {
    CHECK(sq_bpe_byte_to_codepoint(' ') == 0x120);
    CHECK(sq_bpe_byte_to_codepoint('\n') == 0x10A);
    CHECK(sq_bpe_byte_to_codepoint('\t') == 0x109);
    CHECK(sq_bpe_byte_to_codepoint(0x00) == 0x100);
    CHECK(sq_bpe_byte_to_codepoint(0x7F) == 0x121);
    CHECK(sq_bpe_byte_to_codepoint(0xA0) == 0x142);
    CHECK(sq_bpe_byte_to_codepoint(0xAD) == 0x143);
    CHECK(sq_bpe_byte_to_codepoint('A') == 'A');
    CHECK(sq_bpe_byte_to_codepoint(0xE9) == 0xE9);
    int seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t codepoint = sq_bpe_byte_to_codepoint((uint8_t)b);
        CHECK(codepoint < 0x144);
        if (codepoint < 0x144) {
            seen[codepoint]++;
        }
        CHECK(sq_bpe_codepoint_to_byte(codepoint) == b);
    }
    int distinct = 0;
    for (int i = 0; i < 0x144; i++) {
        CHECK(seen[i] <= 1);
        distinct += seen[i];
    }
    CHECK(distinct == 256);
    CHECK(sq_bpe_codepoint_to_byte(0x144) == -1);
    CHECK(sq_bpe_codepoint_to_byte(0x20) == -1);
    CHECK(sq_bpe_codepoint_to_byte(0x4E2D) == -1);
}

/* ---- A hand-made vocabulary whose merges can be followed on paper ---- */

static sq_status create_small_bpe(const char *const *merges, int32_t n_merges, int32_t unk_id,
                                  const char *pre, sq_tokenizer **tokenizer, sq_error *err) {
    static const char *const pieces[] = {"<unk>", "a", "b", "c", "ab", "bc", "abc", "aa", "<|x|>"};
    static const int32_t types[] = {SQ_TOKEN_TYPE_UNKNOWN, 1, 1, 1, 1, 1, 1, 1, SQ_TOKEN_TYPE_CONTROL};
    uint32_t lengths[9];
    for (int i = 0; i < 9; i++) {
        lengths[i] = (uint32_t)strlen(pieces[i]);
    }
    uint32_t merge_lengths[8];
    for (int i = 0; i < n_merges; i++) {
        merge_lengths[i] = (uint32_t)strlen(merges[i]);
    }
    sq_tokenizer_desc desc = {
        .kind = SQ_TOKENIZER_BPE,
        .vocab_size = 9,
        .pieces = pieces,
        .piece_lengths = lengths,
        .token_types = types,
        .n_merges = n_merges,
        .merges = merges,
        .merge_lengths = merge_lengths,
        .bos_id = -1,
        .eos_id = 8,
        .unk_id = unk_id,
        .pad_id = -1,
        .pre_tokenizer = pre,
    };
    *tokenizer = NULL;
    return sq_tokenizer_create(&desc, tokenizer, err);
}

static void test_small_vocabulary_merges(void) {
    const char *merges[] = {"b c", "a b", "a bc", "a a"};
    sq_tokenizer *tokenizer;
    sq_error err;
    sq_status status = create_small_bpe(merges, 4, 0, "gpt2", &tokenizer, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    if (status != SQ_OK) {
        return;
    }

    /* "abc": "b c" has rank 0 and beats "a b" (rank 1); then "a bc" (rank 2) gives "abc". */
    size_t count;
    int32_t *ids = encode(tokenizer, "abc", 3, 0, 0, &count);
    const int32_t abc[] = {6};
    CHECK(ids_equal(ids, count, abc, 1));
    free(ids);

    /* Equal pairs merge leftmost first: "aaa" -> aa a, "aaaa" -> aa aa. */
    ids = encode(tokenizer, "aaa", 3, 0, 0, &count);
    const int32_t aaa[] = {7, 1};
    CHECK(ids_equal(ids, count, aaa, 2));
    free(ids);
    ids = encode(tokenizer, "aaaa", 4, 0, 0, &count);
    const int32_t aaaa[] = {7, 7};
    CHECK(ids_equal(ids, count, aaaa, 2));
    free(ids);

    /* "d" has no byte-level token, so it becomes <unk>; the control token matches literally. */
    ids = encode(tokenizer, "ad<|x|>ab", 9, 0, 1, &count);
    const int32_t with_special[] = {1, 0, 8, 4};
    CHECK(ids_equal(ids, count, with_special, 4));
    free(ids);
    CHECK(sq_tokenizer_is_control(tokenizer, 8));
    sq_tokenizer_free(tokenizer);

    /* With "a b" first, "ab c" is no rule, so "abc" stays two tokens. */
    const char *reordered[] = {"a b", "b c", "a bc"};
    status = create_small_bpe(reordered, 3, 0, "gpt2", &tokenizer, &err);
    CHECK(status == SQ_OK);
    ids = encode(tokenizer, "abc", 3, 0, 0, &count);
    const int32_t ab_c[] = {4, 3};
    CHECK(ids_equal(ids, count, ab_c, 2));
    free(ids);
    sq_tokenizer_free(tokenizer);

    /* Without an unknown token an unmapped byte is an error. */
    status = create_small_bpe(merges, 4, -1, "gpt2", &tokenizer, &err);
    CHECK(status == SQ_OK);
    int32_t *no_ids;
    CHECK(sq_tokenizer_encode(tokenizer, "ad", 2, 0, 0, &no_ids, &count, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "0x64") != NULL);
    sq_tokenizer_free(tokenizer);
}

static void test_bad_bpe_descriptions_rejected(void) {
    sq_tokenizer *tokenizer;
    sq_error err;
    const char *merges[] = {"b c", "a b"};

    CHECK(create_small_bpe(merges, 2, 0, "llama-bpe", &tokenizer, &err) == SQ_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "llama-bpe") != NULL);
    CHECK(tokenizer == NULL);

    const char *no_space[] = {"b c", "ab"};
    CHECK(create_small_bpe(no_space, 2, 0, "smollm", &tokenizer, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "merge 1") != NULL);

    const char *unknown_part[] = {"b c", "a q"};
    CHECK(create_small_bpe(unknown_part, 2, 0, "smollm", &tokenizer, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "right part") != NULL);

    const char *unknown_result[] = {"c a"};
    CHECK(create_small_bpe(unknown_result, 1, 0, "smollm", &tokenizer, &err) == SQ_ERR_FORMAT);
    CHECK(strstr(err.message, "merged text") != NULL);

    const char *leading_space[] = {" a"};
    CHECK(create_small_bpe(leading_space, 1, 0, "smollm", &tokenizer, &err) == SQ_ERR_FORMAT);

    /* A negative merge count, and a positive n_merges without the merges array. */
    CHECK(create_small_bpe(merges, 0, 0, "smollm", &tokenizer, &err) == SQ_OK);
    sq_tokenizer_free(tokenizer);
    const char *pieces[] = {"a"};
    uint32_t lengths[] = {1};
    sq_tokenizer_desc desc = {
        .kind = SQ_TOKENIZER_BPE, .vocab_size = 1, .pieces = pieces, .piece_lengths = lengths,
        .n_merges = -1, .bos_id = -1, .eos_id = -1, .unk_id = -1, .pad_id = -1,
    };
    CHECK(sq_tokenizer_create(&desc, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    desc.n_merges = 3;
    CHECK(sq_tokenizer_create(&desc, &tokenizer, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "3 merges") != NULL);
}

/* ---- SmolLM2 ---- */

static gguf_vocab smollm2_vocab;
static sq_tokenizer *smollm2;

static int load_smollm2(void) {
    if (!file_exists(SMOLLM2_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", SMOLLM2_PATH);
        return 0;
    }
    gguf_vocab_load(SMOLLM2_PATH, &smollm2_vocab);
    sq_tokenizer_desc desc = gguf_vocab_desc(&smollm2_vocab);
    sq_error err;
    sq_status status = sq_tokenizer_create(&desc, &smollm2, &err);
    CHECK_MSG(status == SQ_OK, "%s", err.message);
    return status == SQ_OK;
}

static void test_smollm2_basics(void) {
    CHECK(strcmp(smollm2_vocab.model, "gpt2") == 0);
    CHECK(strcmp(smollm2_vocab.pre, "smollm") == 0);
    CHECK(sq_tokenizer_get_kind(smollm2) == SQ_TOKENIZER_BPE);
    CHECK(sq_tokenizer_vocab_size(smollm2) == 49152);
    CHECK(sq_tokenizer_bos_id(smollm2) == 1);
    CHECK(sq_tokenizer_eos_id(smollm2) == 2);
    CHECK(sq_tokenizer_adds_bos(smollm2) == 0);
    CHECK(sq_tokenizer_is_control(smollm2, 0));
    CHECK(sq_tokenizer_is_control(smollm2, 2));
    CHECK(sq_tokenizer_is_control(smollm2, 16));
    CHECK(!sq_tokenizer_is_control(smollm2, 17));
    CHECK(sq_tokenizer_find(smollm2, "<|im_start|>") == 1);
    CHECK(sq_tokenizer_find(smollm2, "\xC4\xA0world") == gguf_vocab_find(&smollm2_vocab, "\xC4\xA0world"));
}

/* Facts checked against the vocabulary by string, independently of the merge order. */
static void test_smollm2_hand_checked(void) {
    size_t count;
    int32_t *ids = encode(smollm2, "Hello world", 11, -1, 1, &count);
    const int32_t hello[] = {gguf_vocab_find(&smollm2_vocab, "Hello"),
                             gguf_vocab_find(&smollm2_vocab, "\xC4\xA0world")};
    CHECK(hello[0] >= 0);
    CHECK(hello[1] >= 0);
    CHECK(ids_equal(ids, count, hello, 2));
    free(ids);

    /* Digits are split one per token, and the space before them stays alone. */
    ids = encode(smollm2, "in 2024", 7, 0, 1, &count);
    const int32_t year[] = {gguf_vocab_find(&smollm2_vocab, "in"), gguf_vocab_find(&smollm2_vocab, "\xC4\xA0"),
                            gguf_vocab_find(&smollm2_vocab, "2"), gguf_vocab_find(&smollm2_vocab, "0"),
                            gguf_vocab_find(&smollm2_vocab, "2"), gguf_vocab_find(&smollm2_vocab, "4")};
    CHECK(ids_equal(ids, count, year, 6));
    free(ids);

    /* Special tokens are one token with parse_special, ordinary text without it. */
    ids = encode(smollm2, "<|im_start|>", 12, 0, 1, &count);
    const int32_t im_start[] = {1};
    CHECK(ids_equal(ids, count, im_start, 1));
    free(ids);
    ids = encode(smollm2, "<|im_start|>", 12, 0, 0, &count);
    CHECK(count > 1);
    for (size_t i = 0; i < count; i++) {
        CHECK(ids[i] != 1);
    }
    free(ids);

    /* add_bos 1 prepends <|im_start|>, SmolLM2's BOS, even though the vocabulary default is 0. */
    ids = encode(smollm2, "Hi", 2, 1, 1, &count);
    CHECK(count == 2);
    CHECK(ids[0] == 1);
    free(ids);
}

static void test_smollm2_reference_strings(void) {
    if (!file_exists(REFERENCE_PATH)) {
        fprintf(stderr, "skipped: %s not found\n", REFERENCE_PATH);
        return;
    }
    size_t length;
    char *text = support_read_text(REFERENCE_PATH, &length);
    json_value reference;
    json_parse_text(text, length, &reference);
    const json_value *cases = json_get(&reference, "tokenize");
    CHECK(cases != NULL);
    CHECK(cases != NULL && cases->count >= 15);

    for (size_t c = 0; cases != NULL && c < cases->count; c++) {
        const json_value *entry = &cases->items[c];
        const json_value *input = json_get(entry, "text");
        const json_value *expected = json_get(entry, "ids");
        const json_value *parse_special = json_get(entry, "parse_special");
        CHECK(input != NULL);
        CHECK(expected != NULL);
        if (input == NULL || expected == NULL) {
            continue;
        }
        int special = parse_special == NULL || parse_special->number != 0;
        size_t count;
        int32_t *ids = encode(smollm2, input->string, input->string_length, 0, special, &count);
        int same = count == expected->count;
        for (size_t i = 0; same && i < count; i++) {
            same = ids[i] == (int32_t)expected->items[i].number;
        }
        CHECK_MSG(same, "reference string %zu (\"%.40s\") encodes differently (%zu ids, expected %zu)",
                  c, input->string, count, expected->count);

        /* Byte-level BPE is lossless: decoding gives the text back. */
        char *decoded = malloc(input->string_length + 1);
        size_t decoded_length = 0;
        int fits = 1;
        for (size_t i = 0; i < count && fits; i++) {
            size_t piece_length;
            const char *piece = sq_tokenizer_decode(smollm2, i > 0 ? ids[i - 1] : -1, ids[i], &piece_length);
            fits = decoded_length + piece_length <= input->string_length;
            if (fits) {
                memcpy(decoded + decoded_length, piece, piece_length);
                decoded_length += piece_length;
            }
        }
        CHECK_MSG(fits, "reference string %zu decodes to more bytes than it has", c);
        CHECK_MSG(fits && support_bytes_equal(decoded, decoded_length, input->string),
                  "reference string %zu does not decode back", c);
        free(decoded);
        free(ids);
    }
    json_free(&reference);
    free(text);
}

static void test_smollm2_wikitext_reference(void) {
    if (!file_exists(REFERENCE_PATH) || !file_exists(WIKITEXT_PATH)) {
        fprintf(stderr, "skipped: %s or %s not found\n", REFERENCE_PATH, WIKITEXT_PATH);
        return;
    }
    size_t json_length;
    char *json_text = support_read_text(REFERENCE_PATH, &json_length);
    json_value reference;
    json_parse_text(json_text, json_length, &reference);
    const json_value *wikitext = json_get(&reference, "wikitext2_test_tokens");
    const json_value *n_tokens = json_get(wikitext, "n_tokens");
    const json_value *digest = json_get(wikitext, "sha256_of_ids_as_int32_le");
    const json_value *first = json_get(wikitext, "first_64");
    const json_value *last = json_get(wikitext, "last_64");
    CHECK(n_tokens != NULL);
    CHECK(digest != NULL);
    CHECK(first != NULL);
    CHECK(last != NULL);

    size_t text_length;
    char *text = support_read_text(WIKITEXT_PATH, &text_length);
    struct timespec start;
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t count;
    int32_t *ids = encode(smollm2, text, text_length, 0, 1, &count);
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + 1e-9 * (double)(end.tv_nsec - start.tv_nsec);
    fprintf(stderr, "BPE encode of wiki.test.raw: %zu bytes -> %zu tokens in %.3f s\n", text_length,
            count, seconds);
    CHECK(seconds < 10.0);

    if (n_tokens != NULL && digest != NULL && first != NULL && last != NULL) {
        CHECK_MSG(count == (size_t)n_tokens->number, "%zu tokens, expected %.0f", count, n_tokens->number);
        for (size_t i = 0; i < first->count && i < count; i++) {
            CHECK(ids[i] == (int32_t)first->items[i].number);
        }
        for (size_t i = 0; i < last->count && i < count; i++) {
            CHECK(ids[count - last->count + i] == (int32_t)last->items[i].number);
        }
        sha256_state sha;
        sha256_init(&sha);
        for (size_t i = 0; i < count; i++) {
            uint8_t le[4] = {(uint8_t)ids[i], (uint8_t)(ids[i] >> 8), (uint8_t)(ids[i] >> 16),
                             (uint8_t)(ids[i] >> 24)};
            sha256_update(&sha, le, 4);
        }
        char hex[65];
        sha256_final_hex(&sha, hex);
        CHECK_MSG(strcmp(hex, digest->string) == 0, "sha256 of the ids is %s, expected %s", hex,
                  digest->string);
    }

    /* The streaming decoder gives the text back and never splits a character. */
    size_t capacity = sq_token_decoder_min_capacity(smollm2);
    char *chunk = malloc(capacity);
    char *decoded = malloc(text_length + capacity);
    size_t decoded_length = 0;
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    int chunks_valid = 1;
    for (size_t i = 0; i < count && decoded_length <= text_length; i++) {
        size_t n = sq_token_decoder_push(&decoder, smollm2, ids[i], chunk, capacity);
        chunks_valid &= support_utf8_valid((const unsigned char *)chunk, n);
        memcpy(decoded + decoded_length, chunk, n);
        decoded_length += n;
    }
    decoded_length += sq_token_decoder_flush(&decoder, decoded + decoded_length, capacity);
    CHECK(chunks_valid);
    CHECK(decoded_length == text_length);
    CHECK(support_bytes_equal(decoded, decoded_length, text));

    free(chunk);
    free(decoded);
    free(ids);
    free(text);
    json_free(&reference);
    free(json_text);
}

/* Returns the byte length that a UTF-8 lead byte announces (1 for ASCII). */
static size_t lead_length(unsigned char lead) {
    if (lead < 0x80) {
        return 1;
    }
    if (lead < 0xE0) {
        return 2;
    }
    if (lead < 0xF0) {
        return 3;
    }
    return 4;
}

/* Korean and emoji split over byte-level tokens: no chunk may cut a character. */
static void test_smollm2_streaming_korean_emoji(void) {
    const char *text = "\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94 "
                       "\xF0\x9F\x99\x82\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x87\xB0\xF0\x9F\x87\xB7!";
    size_t count;
    int32_t *ids = encode(smollm2, text, strlen(text), 0, 0, &count);

    char out[256];
    char all[512];
    size_t total = 0;
    int held_back = 0;
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    for (size_t i = 0; i < count; i++) {
        size_t raw_length;
        sq_tokenizer_decode(smollm2, -1, ids[i], &raw_length);
        size_t n = sq_token_decoder_push(&decoder, smollm2, ids[i], out, sizeof(out));
        held_back |= n != raw_length;
        if (n == 0) {
            continue;
        }

        /* The chunk starts on a character boundary and its last character is complete. */
        CHECK(((unsigned char)out[0] & 0xC0) != 0x80);
        size_t last_start = n - 1;
        while (last_start > 0 && ((unsigned char)out[last_start] & 0xC0) == 0x80) {
            last_start--;
        }
        CHECK(n - last_start == lead_length((unsigned char)out[last_start]));

        memcpy(all + total, out, n);
        total += n;
    }
    total += sq_token_decoder_flush(&decoder, all + total, sizeof(all) - total);

    CHECK(held_back); /* some token did end inside a character */
    CHECK(support_bytes_equal(all, total, text));
    free(ids);
}

static void test_smollm2_clone_and_errors(void) {
    sq_tokenizer *copy = NULL;
    sq_error err;
    CHECK(sq_tokenizer_clone(smollm2, &copy, &err) == SQ_OK);
    const char *text = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n";
    size_t count;
    size_t copy_count;
    int32_t *ids = encode(smollm2, text, strlen(text), 0, 1, &count);
    int32_t *copy_ids = encode(copy, text, strlen(text), 0, 1, &copy_count);
    CHECK(ids_equal(ids, count, copy_ids, copy_count));
    free(ids);
    free(copy_ids);
    sq_tokenizer_free(copy);

    int32_t *no_ids;
    CHECK(sq_tokenizer_encode(smollm2, "caf\xE9", 4, 0, 1, &no_ids, &count, &err) == SQ_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "offset 3") != NULL);

    /* A control token decodes to its text; an id past the vocabulary to nothing. */
    size_t length;
    const char *piece = sq_tokenizer_decode(smollm2, -1, 2, &length);
    CHECK(support_bytes_equal(piece, length, "<|im_end|>"));
    piece = sq_tokenizer_decode(smollm2, -1, 49152, &length);
    CHECK(length == 0);
}

static void test_sha256_helper(void) {
    sha256_state sha;
    sha256_init(&sha);
    sha256_update(&sha, "abc", 3);
    char hex[65];
    sha256_final_hex(&sha, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
}

int main(void) {
    RUN_TEST(test_sha256_helper);
    RUN_TEST(test_split_smollm);
    RUN_TEST(test_split_gpt2);
    RUN_TEST(test_split_empty_text);
    RUN_TEST(test_unicode_classes);
    RUN_TEST(test_byte_level_mapping);
    RUN_TEST(test_small_vocabulary_merges);
    RUN_TEST(test_bad_bpe_descriptions_rejected);
    if (load_smollm2()) {
        RUN_TEST(test_smollm2_basics);
        RUN_TEST(test_smollm2_hand_checked);
        RUN_TEST(test_smollm2_reference_strings);
        RUN_TEST(test_smollm2_wikitext_reference);
        RUN_TEST(test_smollm2_streaming_korean_emoji);
        RUN_TEST(test_smollm2_clone_and_errors);
        sq_tokenizer_free(smollm2);
        gguf_vocab_free(&smollm2_vocab);
    }
    TEST_MAIN_END();
}
