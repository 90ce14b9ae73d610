/* libFuzzer harness: chat template recognition and rendering (sq_chat_render) with the
 * template text taken from the input, as a GGUF file's tokenizer.chat_template would supply it.
 * The input is split at its first NUL byte: before it the template, after it one user message. */
#include <stdlib.h>

#include "chat/chat_template.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 2);
    if (text == NULL) {
        fuzz_fail("out of memory", "input copy");
    }
    memcpy(text, data, size);
    text[size] = '\0';
    text[size + 1] = '\0';
    const char *content = text + strlen(text) + 1;

    sq_chat_message messages[3] = {
        {"system", "You are terse."},
        {"user", content},
        {"assistant", "Fine."},
    };
    for (int n = 1; n <= 3; n++) {
        char *rendered = NULL;
        sq_error err;
        sq_status status = sq_chat_render(text, messages + (n == 1 ? 1 : 0), n == 1 ? 1 : n, n != 3, &rendered, &err);
        fuzz_check_failure(status, &err);
        if (status == SQ_OK) {
            if (rendered == NULL) {
                fuzz_fail("sq_chat_render succeeded without output", "");
            }
            free(rendered);
        }
    }
    free(text);
    return 0;
}
