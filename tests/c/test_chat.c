/* Tests of chat prompt rendering (src/chat/chat_template.c). Each expected string was written
 * by hand from the Jinja template it stands for. The templates are SmolLM2-135M-Instruct's
 * ChatML template with its default system message (copied from the chat_template of
 * models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf), plain ChatML, and the Llama 2 chat template
 * of meta-llama/Llama-2-7b-chat-hf with bos_token "<s>" and eos_token "</s>". */
#include <stdlib.h>
#include <string.h>

#include "chat/chat_template.h"
#include "test_util.h"

/* The template text as stored in the model file, where "\n" is a newline character. */
static const char smollm2_template[] =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/* The Llama 2 chat template. Only test_llama2_strips_content exercises its content.strip(),
 * and no test exercises its role alternation check. */
static const char llama2_template[] =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/* Renders and compares with expected; reports both strings on a mismatch. */
static void check_render(const char *template_text, const sq_chat_message *messages, int n, int add_generation_prompt,
                         const char *expected, const char *what) {
    char *out = NULL;
    sq_error err = {0};
    sq_status status = sq_chat_render(template_text, messages, n, add_generation_prompt, &out, &err);
    CHECK_MSG(status == SQ_OK, "%s: %s", what, err.message);
    if (status == SQ_OK) {
        CHECK_MSG(out != NULL && strcmp(out, expected) == 0, "%s:\n--- got ---\n%s\n--- expected ---\n%s", what,
                  out != NULL ? out : "(null)", expected);
    }
    free(out);
}

static void test_smollm2_default_system(void) {
    sq_chat_message user_only[1] = {{"user", "Hi there"}};
    check_render(smollm2_template, user_only, 1, 1,
                 "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                 "<|im_start|>user\nHi there<|im_end|>\n"
                 "<|im_start|>assistant\n",
                 "SmolLM2, user only, generation prompt");
    check_render(smollm2_template, user_only, 1, 0,
                 "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                 "<|im_start|>user\nHi there<|im_end|>\n",
                 "SmolLM2, user only, no generation prompt");
}

static void test_smollm2_explicit_system(void) {
    sq_chat_message messages[2] = {{"system", "Answer in one word."}, {"user", "Capital of France?"}};
    check_render(smollm2_template, messages, 2, 1,
                 "<|im_start|>system\nAnswer in one word.<|im_end|>\n"
                 "<|im_start|>user\nCapital of France?<|im_end|>\n"
                 "<|im_start|>assistant\n",
                 "SmolLM2, explicit system");
}

static void test_smollm2_multi_turn(void) {
    sq_chat_message messages[3] = {{"user", "Hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Tell a joke."}};
    check_render(smollm2_template, messages, 3, 1,
                 "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                 "<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
                 "<|im_start|>user\nTell a joke.<|im_end|>\n"
                 "<|im_start|>assistant\n",
                 "SmolLM2, multi-turn");
}

/* The default system turn sits inside the loop (loop.first), so with no messages the template
 * renders only the generation prompt. */
static void test_smollm2_no_messages(void) {
    check_render(smollm2_template, NULL, 0, 1, "<|im_start|>assistant\n", "SmolLM2, no messages");
}

/* A NULL template selects plain ChatML, which has no default system message. */
static void test_plain_chatml(void) {
    sq_chat_message user_only[1] = {{"user", "Hi"}};
    check_render(NULL, user_only, 1, 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "ChatML, user only");
    sq_chat_message messages[2] = {{"system", "S"}, {"user", "U"}};
    check_render(NULL, messages, 2, 0, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n",
                 "ChatML, system and user");
    /* Content is copied verbatim, including newlines and template-like text. */
    sq_chat_message raw[1] = {{"user", "line 1\nline 2 {{ x }} <|im_end|>"}};
    check_render(NULL, raw, 1, 0, "<|im_start|>user\nline 1\nline 2 {{ x }} <|im_end|><|im_end|>\n", "ChatML, raw content");
}

static void test_llama2_single_turn(void) {
    /* bos_token is left to the tokenizer for the first turn, so the text starts at "[INST]". */
    sq_chat_message user_only[1] = {{"user", "Hello"}};
    check_render(llama2_template, user_only, 1, 1, "[INST] Hello [/INST]", "Llama 2, user only");

    sq_chat_message with_system[2] = {{"system", "Be kind."}, {"user", "Hello"}};
    check_render(llama2_template, with_system, 2, 1, "[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHello [/INST]",
                 "Llama 2, system and user");
}

/* Later turns start with bos_token "<s>" in the text itself, because the tokenizer adds BOS
 * only at the start of the whole prompt. */
static void test_llama2_multi_turn(void) {
    sq_chat_message messages[4] = {{"system", "S"}, {"user", "U1"}, {"assistant", "A1"}, {"user", "U2"}};
    check_render(llama2_template, messages, 4, 1,
                 "[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] A1 </s><s>[INST] U2 [/INST]", "Llama 2, multi-turn");
}

/* content.strip() in the Llama 2 template removes surrounding whitespace. */
static void test_llama2_strips_content(void) {
    sq_chat_message messages[1] = {{"user", "  padded \n"}};
    check_render(llama2_template, messages, 1, 1, "[INST] padded [/INST]", "Llama 2, strip");
}

static void test_invalid_role_rejected(void) {
    static const char *roles[] = {"tool", "System", "", "assistant "};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        sq_chat_message messages[2] = {{"user", "Hi"}, {roles[i], "x"}};
        char *out = NULL;
        sq_error err = {0};
        CHECK_MSG(sq_chat_render(smollm2_template, messages, 2, 1, &out, &err) == SQ_ERR_INVALID_ARG, "role '%s' accepted",
                  roles[i]);
        char quoted[32];
        snprintf(quoted, sizeof(quoted), "'%s'", roles[i]);
        CHECK_MSG(strstr(err.message, quoted) != NULL, "message: %s", err.message);
        free(out);
    }
}

static void test_unknown_template_unsupported(void) {
    static const char *templates[] = {
        "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}",
        "",
        "{{ bos_token }}<start_of_turn>user\n",
    };
    sq_chat_message messages[1] = {{"user", "Hi"}};
    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
        char *out = NULL;
        sq_error err = {0};
        CHECK_MSG(sq_chat_render(templates[i], messages, 1, 1, &out, &err) == SQ_ERR_UNSUPPORTED, "template %zu accepted",
                  i);
        CHECK(err.message[0] != '\0');
        free(out);
    }
}

int main(void) {
    RUN_TEST(test_smollm2_default_system);
    RUN_TEST(test_smollm2_explicit_system);
    RUN_TEST(test_smollm2_multi_turn);
    RUN_TEST(test_smollm2_no_messages);
    RUN_TEST(test_plain_chatml);
    RUN_TEST(test_llama2_single_turn);
    RUN_TEST(test_llama2_multi_turn);
    RUN_TEST(test_llama2_strips_content);
    RUN_TEST(test_invalid_role_rejected);
    RUN_TEST(test_unknown_template_unsupported);
    TEST_MAIN_END();
}
