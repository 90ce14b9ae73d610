/* spinquant calibrate: learns R1 and R2 with Cayley SGD on calibration text and writes them
 * as a rotation file, which `spinquant eval --rotation FILE` and the recipe read.
 *
 * The defaults (100 iterations of one 256-token window, cycling through the first 64 windows)
 * are sized for time. Measured with --threads 2 on an idle 2-core Xeon VM, SmolLM2-135M takes
 * about 8 s per iteration at W16A4KV4, 14 minutes in all with 760 MB peak memory. It takes
 * about 20 s per iteration with --w-bits 4, because the effective weights are then built and
 * quantized explicitly. stories260K takes 0.1 s per iteration.
 * The trade-off is gradient noise: one short window per step is far from the reference's
 * 8 windows of 2048 tokens. On stories260K the learned rotations then beat random Hadamard
 * on average but not for every seed, and more tokens per step (--windows-per-step, --window)
 * cost proportionally more time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/io.h"
#include "eval/perplexity.h"
#include "forward/forward.h"
#include "learn/calibrate.h"
#include "pipeline/recipe.h"

/* Tokens per forward call of the final evaluation. */
#define CALIBRATE_EVAL_BATCH 64

/* Bytes of the evaluation text's start searched for in the calibration text. */
#define OVERLAP_PROBE_BYTES 1024

typedef struct calibrate_args {
    const char *tokenizer_path;
    const char *text_path;
    const char *out_path;
    const char *mode;
    const char *log_path;
    const char *checkpoint_path;
    const char *eval_text_path;
    int32_t iterations;
    float lr;
    int32_t window;
    int32_t samples;
    int32_t windows_per_step;
    int32_t w_bits;
    int32_t w_group;
    int32_t a_bits;
    int32_t kv_bits;
    int32_t checkpoint_every;
    int32_t threads;
    int32_t eval_window;
    int32_t stop_after;
    int32_t scale_gradient;
    uint64_t seed;
    int resume;
    int json;
} calibrate_args;

typedef struct progress_sink {
    FILE *log;           /* CSV log, or NULL */
    int32_t stop_after;  /* stop after this many iterations of this run; 0: never */
    int32_t completed;   /* iterations completed in this run */
    double first_loss;
    double last_loss;
    double seconds;
} progress_sink;

static int report_progress(void *user_data, const sq_calibration_progress *p) {
    progress_sink *sink = user_data;
    if (p->recovered) {
        fprintf(stderr, "spinquant: iteration %d/%d: non-finite loss or gradient, rolled back; learning rate now %.4g\n",
                p->iteration + 1, p->iterations, p->lr / 2);
    } else {
        fprintf(stderr,
                "spinquant: iteration %d/%d  loss %.5f  lr %.4f  grad norm %.4g  orthogonality error %.2e  "
                "%.2f s/it  %.0f s left%s\n",
                p->iteration, p->iterations, p->loss, p->lr, p->grad_norm, p->orthogonality_error, p->seconds,
                p->seconds_left, p->reorthonormalized > 0 ? "  (re-orthonormalized)" : "");
        if (sink->completed == 0) {
            sink->first_loss = p->loss;
        }
        sink->last_loss = p->loss;
        sink->completed++;
    }
    sink->seconds += p->seconds;
    if (sink->log != NULL) {
        fprintf(sink->log, "%d,%.9g,%.9g,%.9g,%.6g,%.6g,%.6g,%s\n", p->recovered ? p->iteration + 1 : p->iteration,
                p->loss, p->lr, p->grad_norm, p->orthogonality_error, p->seconds, p->seconds_left,
                p->recovered ? "rolled_back" : (p->reorthonormalized > 0 ? "reorthonormalized" : ""));
        fflush(sink->log);
    }
    return sink->stop_after > 0 && sink->completed >= sink->stop_after;
}

/* Returns 1 when the first OVERLAP_PROBE_BYTES of needle (or all of it, when shorter) occur
 * in haystack. Both are NUL-terminated. */
static int starts_inside(const char *needle, size_t needle_length, const char *haystack) {
    size_t probe_length = needle_length < OVERLAP_PROBE_BYTES ? needle_length : OVERLAP_PROBE_BYTES;
    char probe[OVERLAP_PROBE_BYTES + 1];
    if (probe_length == 0) {
        return 0;
    }
    memcpy(probe, needle, probe_length);
    probe[probe_length] = '\0';
    return strstr(haystack, probe) != NULL;
}

/* Warns when the evaluation text is the calibration file, or when the start of either text
 * occurs in the other, since perplexity on training text overstates the gain. */
static void warn_overlap(const char *calibration_path, const char *calibration, size_t calibration_length,
                         const char *eval_path, const char *eval_text, size_t eval_length) {
    struct stat a;
    struct stat b;
    if (stat(calibration_path, &a) == 0 && stat(eval_path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        fprintf(stderr, "spinquant: warning: --eval-text is the calibration file; the perplexity will look better "
                        "than on unseen text\n");
        return;
    }
    if (starts_inside(eval_text, eval_length, calibration) || starts_inside(calibration, calibration_length, eval_text)) {
        fprintf(stderr, "spinquant: warning: the first %d bytes of one of --text and --eval-text occur in the other; "
                        "the texts overlap, so the perplexity will look better than on unseen text\n",
                OVERLAP_PROBE_BYTES);
    }
}

/* Perplexity of the model file with the given rotation recipe and the run's bit widths. */
static sq_status evaluate(const calibrate_args *a, const char *model_path, sq_rotation_kind rotation,
                          const char *rotation_path, const int32_t *ids, size_t count, sq_threadpool *pool,
                          const sq_logger *logger, double *ppl, sq_error *err) {
    sq_model model = {0};
    sq_online online = {0};
    sq_run_state *state = NULL;
    sq_perplexity_result result = {0};
    sq_recipe recipe = sq_recipe_default();
    recipe.rotation = rotation;
    recipe.rotation_path = rotation_path;
    recipe.seed = a->seed;
    recipe.mode_had = strcmp(a->mode, "had") == 0;
    recipe.w_bits = a->w_bits;
    recipe.w_group = a->w_group;
    recipe.a_bits = a->a_bits;
    recipe.kv_bits = a->kv_bits;
    sq_status status = cli_load_model(model_path, a->tokenizer_path, logger, &model, err);
    if (status == SQ_OK) {
        status = sq_recipe_apply(&recipe, &model, pool, logger, &online, err);
    }
    if (status == SQ_OK) {
        status = sq_run_state_create(&model, a->eval_window, CALIBRATE_EVAL_BATCH, pool, &state, err);
    }
    if (status == SQ_OK) {
        state->hooks = sq_online_hooks(&online);
        status = sq_perplexity_evaluate(state, ids, count, a->eval_window, 0, NULL, NULL, &result, err);
    }
    *ppl = result.ppl;
    sq_run_state_free(state);
    sq_online_free(&online);
    sq_model_free(&model);
    return status;
}

/* Tokenizes the evaluation text and compares random Hadamard with the learned rotations. */
static sq_status compare_on_eval_text(const calibrate_args *a, const char *model_path, const sq_model *model,
                                      const char *eval_text, size_t eval_length, sq_threadpool *pool,
                                      const sq_logger *logger, double *hadamard_ppl, double *learned_ppl,
                                      sq_error *err) {
    int32_t *ids = NULL;
    size_t count = 0;
    sq_status status = sq_tokenizer_encode(model->tokenizer, eval_text, eval_length, -1, 0, &ids, &count, err);
    if (status == SQ_OK) {
        status = evaluate(a, model_path, SQ_ROTATION_HADAMARD, NULL, ids, count, pool, logger, hadamard_ppl, err);
    }
    if (status == SQ_OK) {
        status = evaluate(a, model_path, SQ_ROTATION_FILE, a->out_path, ids, count, pool, logger, learned_ppl, err);
    }
    if (status == SQ_OK) {
        printf("perplexity on %s (windows of %d, W%d A%d KV%d, weight group %d, mode %s): random Hadamard (seed "
               "%llu) %.6f, learned %.6f\n",
               a->eval_text_path, a->eval_window, a->w_bits, a->a_bits, a->kv_bits, a->w_group, a->mode,
               (unsigned long long)a->seed, *hadamard_ppl, *learned_ppl);
    }
    free(ids);
    return status;
}

static sq_calibration_options build_options(const calibrate_args *a) {
    sq_calibration_options o = sq_calibration_options_default();
    o.settings.w_bits = a->w_bits;
    o.settings.w_group = a->w_group;
    o.settings.scale_gradient = a->scale_gradient;
    o.settings.a_bits = a->a_bits;
    o.settings.kv_bits = a->kv_bits;
    o.settings.mode_had = strcmp(a->mode, "had") == 0;
    o.settings.online_seed = a->seed;
    o.iterations = a->iterations;
    o.lr = a->lr;
    o.window = a->window;
    o.samples = a->samples;
    o.windows_per_step = a->windows_per_step;
    o.seed = a->seed;
    o.checkpoint_path = a->checkpoint_path;
    o.checkpoint_every = a->checkpoint_every;
    o.resume = a->resume;
    return o;
}

static FILE *open_log(const char *path, int resume, sq_error *err) {
    struct stat st;
    int append = resume && stat(path, &st) == 0;
    FILE *log = fopen(path, append ? "a" : "w");
    if (log == NULL) {
        sq_error_set(err, SQ_ERR_IO, "cannot open the log '%s' for writing", path);
        return NULL;
    }
    if (!append) {
        fprintf(log, "iteration,loss,lr,grad_norm,orthogonality_error,seconds,seconds_left,event\n");
    }
    return log;
}

int cmd_calibrate(int argc, char **argv) {
    calibrate_args a = {0};
    a.mode = "had";
    a.iterations = 100;
    a.lr = 1.5f;
    a.window = 256;
    a.samples = 64;
    a.windows_per_step = 1;
    a.w_bits = 16;
    a.a_bits = 4;
    a.kv_bits = 4;
    a.checkpoint_every = 5;
    a.threads = 1;
    const cli_option options[] = {
        {"--tokenizer", CLI_STRING, &a.tokenizer_path, 0, 0, "tokenizer file (llama2.c tokenizer.bin) for models without one"},
        {"--text", CLI_STRING, &a.text_path, 0, 0, "UTF-8 calibration text"},
        {"--out", CLI_STRING, &a.out_path, 0, 0, "rotation file to write"},
        {"--iters", CLI_INT, &a.iterations, 1, 1 << 20, "optimizer iterations (default 100)"},
        {"--lr", CLI_FLOAT, &a.lr, 1e-9, 1e3, "initial learning rate, decayed by a cosine to 0 (default 1.5)"},
        {"--window", CLI_INT, &a.window, 2, 1 << 20, "tokens per calibration window (default 256, at most the context)"},
        {"--samples", CLI_INT, &a.samples, 1, 1 << 20, "calibration windows taken in order from the text (default 64)"},
        {"--windows-per-step", CLI_INT, &a.windows_per_step, 1, 1 << 16, "windows averaged per iteration (default 1)"},
        {"--w-bits", CLI_INT, &a.w_bits, 2, 16, "weight bits during learning, RTN below 16 (default 16)"},
        {"--w-group", CLI_INT, &a.w_group, 0, 1 << 20, "weight columns per scale during learning and for --eval-text "
                                                         "(0: one scale per output channel; default 0); must divide "
                                                         "every linear layer's input width, no effect at --w-bits 16"},
        {"--a-bits", CLI_INT, &a.a_bits, 2, 16, "activation bits (default 4)"},
        {"--scale-gradient", CLI_INT, &a.scale_gradient, 0, 1, "1: the activation and KV quantizers also pass the gradient through their scales to each group's extreme values; 0: plain straight-through estimator, as the SpinQuant reference code (default 0)"},
        {"--kv-bits", CLI_INT, &a.kv_bits, 2, 16, "KV cache bits (default 4)"},
        {"--mode", CLI_STRING, &a.mode, 0, 0, "had (R1-R4) or nohad (R1 and R2 only); default had"},
        {"--seed", CLI_UINT64, &a.seed, 0, 0, "seed of the initial random Hadamard rotations (default 0)"},
        {"--log", CLI_STRING, &a.log_path, 0, 0, "CSV file receiving one line per iteration"},
        {"--checkpoint", CLI_STRING, &a.checkpoint_path, 0, 0, "checkpoint file, written atomically"},
        {"--checkpoint-every", CLI_INT, &a.checkpoint_every, 1, 1 << 20, "iterations between checkpoints (default 5)"},
        {"--resume", CLI_FLAG, &a.resume, 0, 0, "continue from --checkpoint"},
        {"--stop-after", CLI_INT, &a.stop_after, 0, 1 << 20, "stop after this many iterations of this run, to continue later with --resume"},
        {"--threads", CLI_INT, &a.threads, 1, 64, "worker threads (default 1); results do not depend on it"},
        {"--eval-text", CLI_STRING, &a.eval_text_path, 0, 0, "text on which to compare random Hadamard and learned perplexity"},
        {"--eval-window", CLI_INT, &a.eval_window, 2, 1 << 20, "tokens per evaluation window (default: --window)"},
        {"--json", CLI_FLAG, &a.json, 0, 0, "print a JSON summary"},
    };
    const int n_options = (int)(sizeof(options) / sizeof(options[0]));
    const char *usage = "spinquant calibrate MODEL --text FILE --out FILE [--iters N] [--lr X] [--window N] "
                        "[--samples N] [--w-bits B] [--w-group N] [--a-bits B] [--kv-bits B] [--scale-gradient 0|1] [--mode had|nohad] [--seed S] "
                        "[--log FILE.csv] [--checkpoint FILE [--resume]] [--threads N] [--eval-text FILE] [--json]";
    const char *positionals[1];
    int n_positionals = 0;
    int code = cli_parse_or_exit(argc, argv, usage, options, n_options, positionals, 1, 1, &n_positionals);
    if (code >= 0) {
        return code;
    }
    if (a.text_path == NULL || a.out_path == NULL) {
        fprintf(stderr, "spinquant: error: missing %s\nusage: %s\n", a.text_path == NULL ? "--text FILE" : "--out FILE",
                usage);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(a.mode, "had") != 0 && strcmp(a.mode, "nohad") != 0) {
        fprintf(stderr, "spinquant: error: invalid --mode '%s', expected had or nohad\n", a.mode);
        return CLI_EXIT_USAGE;
    }
    if (a.resume && a.checkpoint_path == NULL) {
        fprintf(stderr, "spinquant: error: --resume needs --checkpoint FILE\n");
        return CLI_EXIT_USAGE;
    }
    if (a.eval_window == 0) {
        a.eval_window = a.window;
    }

    sq_logger logger = cli_logger(0);
    logger.min_level = SQ_LOG_INFO;
    sq_error err = {0};
    char *text = NULL;
    size_t length = 0;
    char *eval_text = NULL;
    size_t eval_length = 0;
    sq_model model = {0};
    int32_t *ids = NULL;
    size_t count = 0;
    sq_threadpool *pool = NULL;
    sq_rotation_set set = {0};
    progress_sink sink = {0};
    sink.stop_after = a.stop_after;
    sq_calibration_options calibration = build_options(&a);

    sq_status status = cli_read_text(a.text_path, &text, &length, &err);
    if (status == SQ_OK && a.eval_text_path != NULL) {
        status = cli_read_text(a.eval_text_path, &eval_text, &eval_length, &err);
        if (status == SQ_OK) {
            warn_overlap(a.text_path, text, length, a.eval_text_path, eval_text, eval_length);
        }
    }
    /* Output paths are checked before the long run, which would otherwise fail only at its end. */
    if (status == SQ_OK) {
        status = sq_io_check_writable(a.out_path, &err);
    }
    if (status == SQ_OK && a.checkpoint_path != NULL) {
        status = sq_io_check_writable(a.checkpoint_path, &err);
    }
    if (status == SQ_OK) {
        status = cli_load_model(positionals[0], a.tokenizer_path, &logger, &model, &err);
    }
    if (status == SQ_OK) {
        status = sq_learn_settings_validate(&calibration.settings, &model.config, &err);
    }
    if (status == SQ_OK && a.eval_window > model.config.context_length) {
        status = sq_error_set(&err, SQ_ERR_INVALID_ARG, "--eval-window %d exceeds the model's context of %d tokens",
                              a.eval_window, model.config.context_length);
    }
    if (status == SQ_OK) {
        status = sq_tokenizer_encode(model.tokenizer, text, length, -1, 0, &ids, &count, &err);
    }
    if (status == SQ_OK) {
        status = sq_learn_prepare_model(&model, calibration.settings.mode_had, a.seed, &logger, &err);
    }
    if (status == SQ_OK) {
        status = sq_threadpool_create(a.threads, &pool, &err);
    }
    if (status == SQ_OK && a.log_path != NULL) {
        sink.log = open_log(a.log_path, a.resume, &err);
        status = sink.log != NULL ? SQ_OK : SQ_ERR_IO;
    }
    if (status == SQ_OK) {
        fprintf(stderr,
                "spinquant: calibrating on %zu tokens: %d windows of %d, %d iterations, W%d A%d KV%d, weight group %d, "
                "mode %s\n",
                count, a.samples, a.window, a.iterations, a.w_bits, a.a_bits, a.kv_bits, a.w_group, a.mode);
        status = sq_calibrate(&model, ids, count, &calibration, pool, &logger, report_progress, &sink, &set, &err);
    }
    if (status == SQ_OK) {
        status = sq_rotation_set_save(&set, a.out_path, &err);
    }
    if (sink.log != NULL) {
        fclose(sink.log);
    }

    double hadamard_ppl = 0.0;
    double learned_ppl = 0.0;
    if (status == SQ_OK && a.eval_text_path != NULL) {
        status = compare_on_eval_text(&a, positionals[0], &model, eval_text, eval_length, pool, &logger,
                                      &hadamard_ppl, &learned_ppl, &err);
    }
    if (status == SQ_OK && a.json) {
        printf("{\"out\": ");
        cli_json_string(stdout, a.out_path, strlen(a.out_path));
        printf(", \"iterations\": %d, \"iterations_this_run\": %d, \"first_loss\": %.9g, \"final_loss\": %.9g, "
               "\"seconds\": %.3f, \"window\": %d, \"samples\": %d, \"w_bits\": %d, \"w_group\": %d, \"a_bits\": %d, "
               "\"kv_bits\": %d, \"scale_gradient\": %d, \"mode\": \"%s\", \"seed\": %llu, \"orthogonality_error\": %.3g",
               a.iterations, sink.completed, sink.first_loss, sink.last_loss, sink.seconds, a.window, a.samples,
               a.w_bits, a.w_group, a.a_bits, a.kv_bits, a.scale_gradient, a.mode, (unsigned long long)a.seed,
               sq_rotation_set_orthogonality_error(&set));
        if (a.eval_text_path != NULL) {
            printf(", \"eval_window\": %d, \"hadamard_ppl\": %.9f, \"learned_ppl\": %.9f", a.eval_window, hadamard_ppl,
                   learned_ppl);
        }
        printf("}\n");
    }
    if (status == SQ_ERR_ABORTED && a.checkpoint_path != NULL) {
        fprintf(stderr, "spinquant: %s; continue with --resume --checkpoint %s\n", err.message, a.checkpoint_path);
    }

    sq_rotation_set_free(&set);
    sq_threadpool_free(pool);
    free(ids);
    sq_model_free(&model);
    free(text);
    free(eval_text);
    if (status == SQ_ERR_ABORTED) {
        return CLI_EXIT_FAILURE;
    }
    return status == SQ_OK ? CLI_EXIT_OK : cli_report_error(&err);
}
