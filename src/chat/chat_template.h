/* Chat prompt formatting for the native CLI. It recognizes the two template families that
 * Llama-family chat models ship rather than interpreting Jinja:
 *   - ChatML ("<|im_start|>role\ncontent<|im_end|>\n"), including a default system message
 *     written literally in the template (SmolLM2 and Qwen do this);
 *   - Llama 2 ("[INST] <<SYS>>…<</SYS>> … [/INST]").
 * NOTE: any other template is reported as unsupported; the JavaScript package renders the
 * template itself with a Jinja engine and supports every template. */
#ifndef SQ_CHAT_CHAT_TEMPLATE_H
#define SQ_CHAT_CHAT_TEMPLATE_H

#include "core/status.h"

typedef struct sq_chat_message {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} sq_chat_message;

/* Renders messages with template_text (the model's chat template; NULL selects ChatML) and,
 * with add_generation_prompt, the opening of the assistant's turn. The caller frees *out. */
sq_status sq_chat_render(const char *template_text, const sq_chat_message *messages, int n_messages,
                         int add_generation_prompt, char **out, sq_error *err);

#endif
