/* spinquant generate: prompt prefill, then token-by-token sampling streamed to stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/chat_template.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "forward/forward.h"
#include "runtime/rt_generate.h"
#include "spq/spq_reader.h"
#include "sample/sampler.h"

#define CLI_PREFILL_BATCH 32

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct generate_options {
    const char *tokenizer_path;
    const char *prompt;
    const char *system;
    int32_t max_tokens;
    int32_t threads;
    int chat;
    int json;
    int verbose;
    sq_sampler_params sampler;
} generate_options;

/* Applies the chat template when requested; otherwise returns a copy of the prompt. */
static sq_status build_prompt(const sq_model *model, const generate_options *o, char **out, sq_error *err) {
    if (!o->chat) {
        *out = strdup(o->prompt);
        return *out != NULL ? SQ_OK : sq_error_set(err, SQ_ERR_NOMEM, "cannot copy the prompt");
    }
    sq_chat_message messages[2];
    int n = 0;
    if (o->system != NULL) {
        messages[n++] = (sq_chat_message){"system", o->system};
    }
    messages[n++] = (sq_chat_message){"user", o->prompt};
    return sq_chat_render(model->chat_template, messages, n, 1, out, err);
}

/* Runs the generation loop; fills generated (capacity max_tokens) and *n_generated. */
static sq_status generate(sq_run_state *state, sq_sampler *sampler, const sq_tokenizer *tokenizer, const int32_t *prompt,
                          size_t n_prompt, const generate_options *o, int32_t *generated, int32_t *n_generated,
                          double *decode_seconds, sq_error *err) {
    int32_t vocab = state->model->config.vocab_size;
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    decoder.previous_id = n_prompt > 0 ? prompt[n_prompt - 1] : -1;
    char piece[256];

    /* ---- prefill ---- */
    for (size_t start = 0; start < n_prompt; start += CLI_PREFILL_BATCH) {
        int32_t batch = (int32_t)(n_prompt - start < CLI_PREFILL_BATCH ? n_prompt - start : CLI_PREFILL_BATCH);
        sq_logits_mode mode = start + (size_t)batch == n_prompt ? SQ_LOGITS_LAST : SQ_LOGITS_NONE;
        sq_status status = sq_forward(state, prompt + start, batch, (int32_t)start, mode, err);
        if (status != SQ_OK) {
            return status;
        }
    }

    /* ---- decode ---- */
    double begin = seconds_now();
    int32_t position = (int32_t)n_prompt;
    *n_generated = 0;
    while (*n_generated < o->max_tokens && position < state->capacity) {
        int32_t next = sq_sampler_sample(sampler, state->logits, generated, *n_generated);
        if (sq_tokenizer_is_control(tokenizer, next)) {
            break;
        }
        generated[(*n_generated)++] = next;
        size_t n = sq_token_decoder_push(&decoder, tokenizer, next, piece, sizeof(piece));
        if (!o->json && n > 0) {
            fwrite(piece, 1, n, stdout);
            fflush(stdout);
        }
        if (position + 1 >= state->capacity || *n_generated == o->max_tokens) {
            break;
        }
        sq_status status = sq_forward(state, &next, 1, position, SQ_LOGITS_LAST, err);
        if (status != SQ_OK) {
            return status;
        }
        position++;
        (void)vocab;
    }
    size_t n = sq_token_decoder_flush(&decoder, piece, sizeof(piece));
    if (!o->json) {
        fwrite(piece, 1, n, stdout);
        printf("\n");
    }
    *decode_seconds = seconds_now() - begin;
    return SQ_OK;
}

/* Appends the decoded text of ids to a new NUL-terminated string. */
static char *decode_all(const sq_tokenizer *tokenizer, int32_t previous, const int32_t *ids, int32_t n) {
    size_t capacity = 64 + (size_t)n * 64;
    char *text = malloc(capacity);
    if (text == NULL) {
        return NULL;
    }
    sq_token_decoder decoder;
    sq_token_decoder_init(&decoder);
    decoder.previous_id = previous;
    size_t length = 0;
    for (int32_t i = 0; i < n; i++) {
        length += sq_token_decoder_push(&decoder, tokenizer, ids[i], text + length, capacity - length);
    }
    length += sq_token_decoder_flush(&decoder, text + length, capacity - length);
    text[length] = '\0';
    return text;
}

/* Streams the text of each token of the integer runtime to stdout. */
typedef struct spq_printer {
    const sq_tokenizer *tokenizer;
    sq_token_decoder decoder;
    int quiet;
} spq_printer;

static int print_token(void *user_data, int32_t token) {
    spq_printer *p = user_data;
    char piece[256];
    size_t n = sq_token_decoder_push(&p->decoder, p->tokenizer, token, piece, sizeof(piece));
    if (!p->quiet && n > 0) {
        fwrite(piece, 1, n, stdout);
        fflush(stdout);
    }
    return 0;
}

/* generate for a .spq model: the integer runtime with the same options and output. */
static int generate_spq(const char *path, const generate_options *o) {
    sq_logger logger = cli_logger(o->verbose);
    sq_error err = {0};
    sq_rt_model *model = NULL;
    sq_model shell = {0};
    char *prompt_text = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int32_t *generated = NULL;
    int32_t n_generated = 0;
    sq_threadpool *pool = NULL;
    sq_rt_session *session = NULL;
    sq_sampler sampler = {0};
    sq_rt_generate_stats stats = {0};

    sq_status status = sq_rt_model_load(path, &logger, &model, NULL, &err);
    if (status == SQ_OK) {
        shell.chat_template = model->spq.chat_template; /* build_prompt reads only the template */
        status = build_prompt(&shell, o, &prompt_text, &err);
    }
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(model->spq.tokenizer, prompt_text, strlen(prompt_text), o->chat ? 0 : -1, 1, &prompt,
                                     &n_prompt, &err);
    }
    if (status == SQ_OK && (n_prompt == 0 || n_prompt >= (size_t)model->spq.config.context_length)) {
        status = sq_error_set(&err, SQ_ERR_INVALID_ARG, "the prompt has %zu tokens; expected 1 to %d", n_prompt,
                              model->spq.config.context_length - 1);
    }
    if (status == SQ_OK) {
        generated = malloc((size_t)o->max_tokens * sizeof(int32_t));
        status = generated != NULL ? SQ_OK : sq_error_set(&err, SQ_ERR_NOMEM, "cannot allocate %d tokens", o->max_tokens);
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(o->threads, &pool, &err);
    }
    if (status == SQ_OK) {
        int64_t needed = (int64_t)n_prompt + o->max_tokens;
        int32_t context = model->spq.config.context_length;
        status = sq_rt_session_create(model, needed < context ? (int32_t)needed : context, CLI_PREFILL_BATCH, pool,
                                      &session, &err);
    }
    if (status == SQ_OK) {
        status = sq_sampler_init(&sampler, &o->sampler, model->spq.config.vocab_size, &err);
    }
    if (status == SQ_OK) {
        spq_printer printer = {model->spq.tokenizer, {0}, o->json};
        sq_token_decoder_init(&printer.decoder);
        printer.decoder.previous_id = prompt[n_prompt - 1];
        status = sq_rt_generate(session, &sampler, model->spq.tokenizer, prompt, n_prompt, o->max_tokens, print_token,
                                &printer, generated, &n_generated, &stats, &err);
        char piece[64];
        size_t n = sq_token_decoder_flush(&printer.decoder, piece, sizeof(piece));
        if (status == SQ_OK && !o->json) {
            fwrite(piece, 1, n, stdout);
            printf("\n");
        }
    }
    if (status == SQ_OK && o->json) {
        char *text = decode_all(model->spq.tokenizer, prompt[n_prompt - 1], generated, n_generated);
        printf("{\"prompt_tokens\": ");
        cli_json_ids(stdout, prompt, n_prompt);
        printf(", \"tokens\": ");
        cli_json_ids(stdout, generated, (size_t)n_generated);
        printf(", \"text\": ");
        cli_json_string(stdout, text != NULL ? text : "", text != NULL ? strlen(text) : 0);
        printf(", \"tokens_per_second\": %.3f, \"runtime\": \"integer\"}\n",
               stats.decode_seconds > 0 ? n_generated / stats.decode_seconds : 0.0);
        free(text);
    }
    sq_sampler_free(&sampler);
    sq_rt_session_free(session);
    sq_threadpool_free(pool);
    free(generated);
    free(prompt);
    free(prompt_text);
    sq_rt_model_free(model);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}

int cmd_generate(int argc, char **argv) {
    generate_options o = {0};
    o.prompt = "";
    o.max_tokens = 256;
    o.threads = 1;
    o.sampler = sq_sampler_default_params();
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &o.tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--prompt", CLI_STRING, &o.prompt, 0, 0, "text to continue (default: empty)"},
        {"--chat", CLI_FLAG, &o.chat, 0, 0, "wrap the prompt as a user message in the model's chat template"},
        {"--system", CLI_STRING, &o.system, 0, 0, "system message for --chat"},
        {"--max-tokens", CLI_INT, &o.max_tokens, 1, 1 << 24, "maximum number of new tokens (default 256)"},
        {"--temperature", CLI_FLOAT, &o.sampler.temperature, 0, 100, "sampling temperature; 0 is greedy (default 0.8)"},
        {"--top-k", CLI_INT, &o.sampler.top_k, 0, 1 << 24, "sample from the k most likely tokens; 0 is off (default 40)"},
        {"--top-p", CLI_FLOAT, &o.sampler.top_p, 1e-6, 1, "nucleus sampling probability mass (default 0.95)"},
        {"--repetition-penalty", CLI_FLOAT, &o.sampler.repetition_penalty, 1e-3, 100, "penalty for repeated tokens; 1 is off"},
        {"--seed", CLI_UINT64, &o.sampler.seed, 0, 0, "random seed (default 42)"},
        {"--threads", CLI_INT, &o.threads, 1, 64, "worker threads (default 1)"},
        {"--json", CLI_FLAG, &o.json, 0, 0, "print one JSON object instead of streaming text"},
        {"--verbose", CLI_FLAG, &o.verbose, 0, 0, "log loading steps to stderr"},
    };
    const char *usage = "spinquant generate MODEL [--tokenizer FILE] [--prompt TEXT] [--max-tokens N] [--temperature T] "
                        "[--top-k K] [--top-p P] [--seed S] [--json]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, 13, positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }
    if (sq_spq_is_spq_file(positionals[0])) {
        return generate_spq(positionals[0], &o);
    }

    sq_logger logger = cli_logger(o.verbose);
    sq_error err = {0};
    sq_model model = {0};
    char *prompt_text = NULL;
    int32_t *prompt = NULL;
    size_t n_prompt = 0;
    int32_t *generated = NULL;
    int32_t n_generated = 0;
    double decode_seconds = 0.0;
    sq_threadpool *pool = NULL;
    sq_run_state *state = NULL;
    sq_sampler sampler = {0};

    sq_status status = cli_load_model(positionals[0], o.tokenizer_path, &logger, &model, &err);
    if (status == SQ_OK) {
        status = build_prompt(&model, &o, &prompt_text, &err);
    }
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(model.tokenizer, prompt_text, strlen(prompt_text), -1, 1, &prompt,
                                     &n_prompt, &err);
    }
    if (status == SQ_OK && n_prompt == 0) {
        status = sq_error_set(&err, SQ_ERR_INVALID_ARG,
                              "the prompt is empty and this tokenizer adds no BOS token; give a --prompt");
    }
    if (status == SQ_OK && n_prompt >= (size_t)model.config.context_length) {
        status = sq_error_set(&err, SQ_ERR_INVALID_ARG, "the prompt has %zu tokens, but the context holds %d; shorten it",
                              n_prompt, model.config.context_length);
    }
    if (status == SQ_OK) {
        generated = malloc((size_t)o.max_tokens * sizeof(int32_t));
        status = generated != NULL ? SQ_OK : sq_error_set(&err, SQ_ERR_NOMEM, "cannot allocate %d tokens", o.max_tokens);
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(o.threads, &pool, &err);
    }
    if (status == SQ_OK) {
        /* The cache holds only the positions this run can reach, not the model's whole context. */
        int64_t needed = (int64_t)n_prompt + o.max_tokens;
        int32_t capacity = needed < model.config.context_length ? (int32_t)needed : model.config.context_length;
        status = sq_run_state_create(&model, capacity, CLI_PREFILL_BATCH, pool, &state, &err);
    }
    if (status == SQ_OK) {
        status = sq_sampler_init(&sampler, &o.sampler, model.config.vocab_size, &err);
    }
    if (status == SQ_OK) {
        status = generate(state, &sampler, model.tokenizer, prompt, n_prompt, &o, generated, &n_generated,
                          &decode_seconds, &err);
    }

    if (status == SQ_OK && o.json) {
        char *text = decode_all(model.tokenizer, prompt[n_prompt - 1], generated, n_generated);
        printf("{\"prompt_tokens\": ");
        cli_json_ids(stdout, prompt, n_prompt);
        printf(", \"tokens\": ");
        cli_json_ids(stdout, generated, (size_t)n_generated);
        printf(", \"text\": ");
        cli_json_string(stdout, text != NULL ? text : "", text != NULL ? strlen(text) : 0);
        printf(", \"tokens_per_second\": %.3f}\n", decode_seconds > 0 ? n_generated / decode_seconds : 0.0);
        free(text);
    }
    sq_sampler_free(&sampler);
    sq_run_state_free(state);
    sq_threadpool_free(pool);
    free(generated);
    free(prompt);
    free(prompt_text);
    sq_model_free(&model);
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
