/* The regex split of the BPE pre-tokenizers, written out by hand. The GPT-2 pattern is
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * with leftmost-first alternation, as Hugging Face tokenizers and llama.cpp apply it. Every
 * character matches some alternative, so the matches tile the text. SQ_PRETOKENIZER_DIGITS_GPT2
 * first cuts the text before and after every \p{N} character (Hugging Face's Digits pre-tokenizer
 * with individual_digits, as SmolLM2 uses) and runs the pattern on each segment separately, so
 * the end of a segment is an end of text for (?!\S). */
#include "tokenizer/tokenizer_internal.h"

void sq_pretokenize_begin(sq_pretokenize_iterator *iterator, sq_pretokenizer kind,
                          const char *text, size_t length) {
    iterator->text = (const unsigned char *)text;
    iterator->length = length;
    iterator->position = 0;
    iterator->segment_end = 0;
    iterator->kind = kind;
}

static uint32_t codepoint_at(const sq_pretokenize_iterator *iterator, size_t position,
                             size_t *char_length) {
    return sq_utf8_decode(iterator->text, position, char_length);
}

/* Class of [^\s\p{L}\p{N}]. */
static int is_other(uint32_t codepoint) {
    return !sq_unicode_is_whitespace(codepoint) && !sq_unicode_is_letter(codepoint) &&
           !sq_unicode_is_number(codepoint);
}

/* Returns the end of the run of characters of one class starting at position. */
static size_t run_end(const sq_pretokenize_iterator *iterator, size_t position, size_t end,
                      int (*in_class)(uint32_t)) {
    while (position < end) {
        size_t char_length;
        if (!in_class(codepoint_at(iterator, position, &char_length))) {
            break;
        }
        position += char_length;
    }
    return position;
}

/* Matches 's 't 're 've 'm 'll 'd at position and returns the match length, or 0. */
static size_t match_contraction(const unsigned char *text, size_t position, size_t end) {
    if (text[position] != '\'' || position + 1 >= end) {
        return 0;
    }
    unsigned char second = text[position + 1];
    if (second == 's' || second == 't' || second == 'm' || second == 'd') {
        return 2;
    }
    if (position + 2 < end) {
        unsigned char third = text[position + 2];
        if ((second == 'r' && third == 'e') || (second == 'v' && third == 'e') ||
            (second == 'l' && third == 'l')) {
            return 3;
        }
    }
    return 0;
}

/* Returns the end of the GPT-2 pattern's match at position, within [position, end). */
static size_t match_gpt2(const sq_pretokenize_iterator *iterator, size_t position, size_t end) {
    const unsigned char *text = iterator->text;
    size_t contraction = match_contraction(text, position, end);
    if (contraction > 0) {
        return position + contraction;
    }

    /* " ?X+" for X = \p{L}, \p{N}, [^\s\p{L}\p{N}], in that order: the optional space is taken
     * only when a character of the class follows it. */
    int (*const classes[3])(uint32_t) = {sq_unicode_is_letter, sq_unicode_is_number, is_other};
    size_t char_length;
    uint32_t first = codepoint_at(iterator, position, &char_length);
    for (int c = 0; c < 3; c++) {
        if (classes[c](first)) {
            return run_end(iterator, position, end, classes[c]);
        }
        if (first == ' ' && position + 1 < end) {
            size_t next_length;
            if (classes[c](codepoint_at(iterator, position + 1, &next_length))) {
                return run_end(iterator, position + 1, end, classes[c]);
            }
        }
    }

    /* The character is whitespace. "\s+(?!\S)" takes the whole run when the run ends the text.
     * Otherwise it takes the run without its last character, the longest prefix that whitespace
     * follows. A run of one character has no such prefix, so "\s+" takes the character. */
    size_t whitespace_end = run_end(iterator, position, end, sq_unicode_is_whitespace);
    if (whitespace_end == end) {
        return end;
    }
    size_t last_start = whitespace_end - 1;
    while ((text[last_start] & 0xC0) == 0x80) {
        last_start--;
    }
    return last_start > position ? last_start : whitespace_end;
}

/* Returns the end of the digit-split segment that starts at position. */
static size_t segment_end_at(const sq_pretokenize_iterator *iterator, size_t position) {
    size_t char_length;
    if (sq_unicode_is_number(codepoint_at(iterator, position, &char_length))) {
        return position + char_length;
    }
    while (position < iterator->length) {
        if (sq_unicode_is_number(codepoint_at(iterator, position, &char_length))) {
            break;
        }
        position += char_length;
    }
    return position;
}

int sq_pretokenize_next(sq_pretokenize_iterator *iterator, size_t *start, size_t *end) {
    size_t position = iterator->position;
    if (position >= iterator->length) {
        return 0;
    }

    if (iterator->kind == SQ_PRETOKENIZER_DIGITS_GPT2) {
        if (position >= iterator->segment_end) {
            iterator->segment_end = segment_end_at(iterator, position);
        }
    } else {
        iterator->segment_end = iterator->length;
    }

    *start = position;
    *end = match_gpt2(iterator, position, iterator->segment_end);
    iterator->position = *end;
    return 1;
}
