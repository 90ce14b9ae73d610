/* ChatML and Llama 2 prompt rendering into a growable string. */
#include "chat/chat_template.h"

#include <stdlib.h>
#include <string.h>

typedef struct text_builder {
    char *data;
    size_t length;
    size_t capacity;
    int failed;
} text_builder;

static void append(text_builder *b, const char *s, size_t n) {
    if (b->failed) {
        return;
    }
    if (b->length + n + 1 > b->capacity) {
        size_t capacity = (b->length + n + 1) * 2;
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, s, n);
    b->length += n;
    b->data[b->length] = '\0';
}

static void append_string(text_builder *b, const char *s) {
    append(b, s, strlen(s));
}

/* Finds a system turn written literally in a ChatML template, such as
 * '<|im_start|>system\nYou are …<|im_end|>\n', and returns its content span. */
static int find_default_system(const char *template_text, const char **begin, size_t *length) {
    static const char opener[] = "<|im_start|>system\n";
    const char *start = strstr(template_text, opener);
    if (start == NULL) {
        return 0;
    }
    start += sizeof(opener) - 1;
    const char *end = strstr(start, "<|im_end|>");
    if (end == NULL) {
        return 0;
    }
    *begin = start;
    *length = (size_t)(end - start);
    return 1;
}

static void render_chatml(text_builder *b, const char *template_text, const sq_chat_message *messages, int n,
                          int add_generation_prompt) {
    const char *system_text = NULL;
    size_t system_length = 0;
    int has_system = n > 0 && strcmp(messages[0].role, "system") == 0;
    /* The template adds its default system turn inside the message loop, so only when there are messages. */
    if (n > 0 && !has_system && template_text != NULL &&
        find_default_system(template_text, &system_text, &system_length)) {
        append_string(b, "<|im_start|>system\n");
        append(b, system_text, system_length);
        append_string(b, "<|im_end|>\n");
    }
    for (int i = 0; i < n; i++) {
        append_string(b, "<|im_start|>");
        append_string(b, messages[i].role);
        append_string(b, "\n");
        append_string(b, messages[i].content);
        append_string(b, "<|im_end|>\n");
    }
    if (add_generation_prompt) {
        append_string(b, "<|im_start|>assistant\n");
    }
}

/* Appends s without leading and trailing white space, as Jinja's str.strip() does for ASCII. */
static void append_stripped(text_builder *b, const char *s) {
    size_t begin = 0;
    size_t end = strlen(s);
    while (begin < end && strchr(" \t\n\r\f\v", s[begin]) != NULL) {
        begin++;
    }
    while (end > begin && strchr(" \t\n\r\f\v", s[end - 1]) != NULL) {
        end--;
    }
    append(b, s + begin, end - begin);
}

static void render_llama2(text_builder *b, const sq_chat_message *messages, int n) {
    int i = 0;
    const char *system_text = NULL;
    if (n > 0 && strcmp(messages[0].role, "system") == 0) {
        system_text = messages[0].content;
        i = 1;
    }
    for (; i < n; i++) {
        if (strcmp(messages[i].role, "user") == 0) {
            /* The tokenizer adds BOS once; later turns carry it in the text, as the template does. */
            if (b->length > 0) {
                append_string(b, "<s>");
            }
            append_string(b, "[INST] ");
            if (system_text != NULL) {
                append_string(b, "<<SYS>>\n");
                append_stripped(b, system_text);
                append_string(b, "\n<</SYS>>\n\n");
                system_text = NULL;
            }
            append_stripped(b, messages[i].content);
            append_string(b, " [/INST]");
        } else {
            append_string(b, " ");
            append_stripped(b, messages[i].content);
            append_string(b, " </s>");
        }
    }
}

sq_status sq_chat_render(const char *template_text, const sq_chat_message *messages, int n_messages,
                         int add_generation_prompt, char **out, sq_error *err) {
    for (int i = 0; i < n_messages; i++) {
        const char *role = messages[i].role;
        if (strcmp(role, "system") != 0 && strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
            return sq_error_set(err, SQ_ERR_INVALID_ARG, "invalid chat role '%s', expected system, user or assistant", role);
        }
    }

    text_builder b = {0};
    append(&b, "", 0);
    if (template_text == NULL || strstr(template_text, "<|im_start|>") != NULL) {
        render_chatml(&b, template_text, messages, n_messages, add_generation_prompt);
    } else if (strstr(template_text, "[INST]") != NULL) {
        render_llama2(&b, messages, n_messages);
    } else {
        free(b.data);
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "the model's chat template is neither ChatML nor Llama 2; the native CLI cannot render it");
    }
    if (b.failed) {
        free(b.data);
        return sq_error_set(err, SQ_ERR_NOMEM, "cannot allocate the chat prompt");
    }
    *out = b.data;
    return SQ_OK;
}
