/* Rotation learning and .spq export through the C API. The JavaScript package runs these in a
 * worker, because each call blocks until it is done. sq_api_calibrate learns R1 and R2 on the
 * loaded fp32 model and writes the rotation file. It consumes the model, since learning fuses
 * and folds its weights. sq_api_export_spq quantizes a model file with a rotation file into
 * .spq bytes. Progress goes to the JavaScript function Module.onCalibrationProgress, whose
 * truthy return value stops the run with SQ_ERR_ABORTED. */
#include "api.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/formats.h"
#include "learn/calibrate.h"
#include "pipeline/recipe.h"
#include "spq/spq_quantize.h"
#include "spq/spq_writer.h"
#include "spq/tokenizer_access.h"

EM_JS(int, sq_api_js_calibration_progress,
      (int iteration, int iterations, double loss, double lr, double grad_norm, double orthogonality_error,
       double seconds, double seconds_left, int recovered),
      {
          var handler = Module["onCalibrationProgress"];
          if (typeof handler != "function") {
              return 0;
          }
          var stop = handler({
              iteration : iteration,
              iterations : iterations,
              loss : loss,
              lr : lr,
              gradNorm : grad_norm,
              orthogonalityError : orthogonality_error,
              seconds : seconds,
              secondsLeft : seconds_left,
              recovered : recovered != 0
          });
          return stop ? 1 : 0;
      });

typedef struct calibration_summary {
    int32_t completed;
    double first_loss;
    double final_loss;
    double seconds;
} calibration_summary;

static int forward_progress(void *user_data, const sq_calibration_progress *p) {
    calibration_summary *summary = user_data;
    if (!p->recovered) {
        if (summary->completed == 0) {
            summary->first_loss = p->loss;
        }
        summary->final_loss = p->loss;
        summary->completed++;
    }
    summary->seconds += p->seconds;
    return sq_api_js_calibration_progress(p->iteration, p->iterations, p->loss, p->lr, p->grad_norm,
                                          p->orthogonality_error, p->seconds, p->seconds_left, p->recovered);
}

/* Learns R1 and R2 on the loaded fp32 model with the calibration text, writes the rotation
 * file to rotation_path and leaves a JSON summary at sq_api_result. The model is unloaded
 * afterwards, also on failure. The arguments follow the native calibrate command's flags.
 * Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_calibrate(sq_api_context *ctx, const char *text, int iterations, double lr,
                                          int window, int samples, int windows_per_step, int w_bits, int a_bits,
                                          int kv_bits, int mode_had, double seed, const char *rotation_path) {
    sq_error_clear(&ctx->error);
    if (ctx->runtime != SQ_API_RUNTIME_FP32) {
        sq_error_set(&ctx->error, SQ_ERR_UNSUPPORTED,
                     ctx->runtime == SQ_API_RUNTIME_NONE
                         ? "no model is loaded"
                         : "rotation learning needs the original model (llama2.c, GGUF or Hugging Face), not a .spq file");
        return -1;
    }
    sq_calibration_options options = sq_calibration_options_default();
    options.settings.w_bits = w_bits;
    options.settings.a_bits = a_bits;
    options.settings.kv_bits = kv_bits;
    options.settings.mode_had = mode_had != 0;
    options.settings.online_seed = (uint64_t)seed;
    options.iterations = iterations;
    options.lr = lr;
    options.window = window;
    options.samples = samples;
    options.windows_per_step = windows_per_step;
    options.seed = (uint64_t)seed;

    sq_rotation_set set = {0};
    calibration_summary summary = {0};
    sq_status status = SQ_OK;
    if (window < 2 || window > ctx->model.config.context_length) {
        status = sq_error_set(&ctx->error, SQ_ERR_INVALID_ARG, "invalid window %d, expected 2 to the context of %d",
                              window, ctx->model.config.context_length);
    }
    if (status == SQ_OK && sq_api_tokenize(ctx, text, -1, 0) < 0) {
        status = ctx->error.status;
    }
    if (status == SQ_OK) {
        status = sq_learn_prepare_model(&ctx->model, options.settings.mode_had, options.seed, NULL, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_calibrate(&ctx->model, ctx->ids, ctx->n_ids, &options, ctx->pool, NULL, forward_progress,
                              &summary, &set, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_rotation_set_save(&set, rotation_path, &ctx->error);
    }
    if (status == SQ_OK) {
        snprintf(ctx->result, sizeof(ctx->result),
                 "{\"iterations\":%d,\"first_loss\":%.9g,\"final_loss\":%.9g,\"seconds\":%.3f,"
                 "\"calibration_tokens\":%zu,\"orthogonality_error\":%.3g}",
                 summary.completed, summary.first_loss, summary.final_loss, summary.seconds, ctx->n_ids,
                 sq_rotation_set_orthogonality_error(&set));
    }
    sq_rotation_set_free(&set);
    sq_api_release_model(ctx);
    return status == SQ_OK ? 0 : -1;
}

/* Builds the .spq recipe: RTN weights, the rotation file when given (else a random Hadamard
 * rotation from seed), and the runtime's activation and KV widths. */
static sq_recipe export_recipe(const char *rotation_path, int w_bits, int w_group, int a_bits, int kv_bits,
                               int embed_bits, int mode_had, double seed) {
    sq_recipe recipe = sq_recipe_default();
    recipe.w_bits = w_bits;
    recipe.w_group = w_group;
    recipe.a_bits = a_bits;
    recipe.kv_bits = kv_bits;
    recipe.embed_bits = embed_bits;
    recipe.mode_had = mode_had != 0;
    recipe.seed = (uint64_t)seed;
    if (rotation_path != NULL && rotation_path[0] != '\0') {
        recipe.rotation = SQ_ROTATION_FILE;
        recipe.rotation_path = rotation_path;
    } else {
        recipe.rotation = SQ_ROTATION_HADAMARD;
    }
    return recipe;
}

/* Quantizes the model file at model_path (with tokenizer_path for llama2.c models) into .spq
 * bytes and checks them with the .spq reader. The bytes stay until sq_api_export_free, and
 * sq_api_export_bytes and sq_api_export_size return them. Leaves a JSON report at
 * sq_api_result. Returns 0 or -1. */
EMSCRIPTEN_KEEPALIVE int sq_api_export_spq(sq_api_context *ctx, const char *model_path, const char *tokenizer_path,
                                           const char *rotation_path, int w_bits, int w_group, int a_bits,
                                           int kv_bits, int embed_bits, int mode_had, double seed) {
    sq_error_clear(&ctx->error);
    free(ctx->export_bytes);
    ctx->export_bytes = NULL;
    ctx->export_size = 0;
    const char *tokenizer = tokenizer_path != NULL && tokenizer_path[0] != '\0' ? tokenizer_path : NULL;
    sq_recipe recipe = export_recipe(rotation_path, w_bits, w_group, a_bits, kv_bits, embed_bits, mode_had, seed);
    sq_model model = {0};
    sq_spq_tokenizer_source source = {0};
    sq_spq_model spq = {0};
    sq_spq_model check = {0};
    sq_spq_build_report report = {0};
    uint8_t *bytes = NULL;
    size_t size = 0;
    size_t parameters = 0;

    sq_status status = sq_model_load(model_path, tokenizer, NULL, &model, &ctx->error);
    if (status == SQ_OK) {
        parameters = sq_model_parameter_count(&model);
        status = sq_recipe_validate(&recipe, &model.config, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_spq_tokenizer_source_open(model_path, tokenizer, model.config.vocab_size, &source, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_spq_quantize_model(&model, &recipe, ctx->pool, NULL, &spq, &report, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_spq_serialize(&spq, &source.desc, &bytes, &size, &ctx->error);
    }
    if (status == SQ_OK) {
        status = sq_spq_read_buffer(bytes, size, 0, &check, NULL, &ctx->error);
    }
    if (status == SQ_OK) {
        ctx->export_bytes = bytes;
        ctx->export_size = size;
        bytes = NULL;
        snprintf(ctx->result, sizeof(ctx->result),
                 "{\"file_bytes\":%zu,\"parameters\":%zu,\"weight_groups\":%lld,\"grid_search_groups\":%lld,"
                 "\"w_bits\":%d,\"w_group\":%d,\"a_bits\":%d,\"kv_bits\":%d,\"embed_bits\":%d,\"mode\":\"%s\"}",
                 size, parameters, (long long)report.groups, (long long)report.fallback_groups,
                 w_bits, w_group, a_bits, kv_bits, embed_bits, mode_had ? "had" : "nohad");
    }
    sq_spq_model_free(&check);
    free(bytes);
    sq_spq_model_free(&spq);
    sq_spq_tokenizer_source_close(&source);
    sq_model_free(&model);
    return status == SQ_OK ? 0 : -1;
}

EMSCRIPTEN_KEEPALIVE const uint8_t *sq_api_export_bytes(sq_api_context *ctx) {
    return ctx->export_bytes;
}

EMSCRIPTEN_KEEPALIVE double sq_api_export_size(sq_api_context *ctx) {
    return (double)ctx->export_size;
}

EMSCRIPTEN_KEEPALIVE void sq_api_export_free(sq_api_context *ctx) {
    free(ctx->export_bytes);
    ctx->export_bytes = NULL;
    ctx->export_size = 0;
}
