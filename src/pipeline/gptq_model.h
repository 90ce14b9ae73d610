/* GPTQ over a whole model, layer by layer in forward order. Each layer's inputs come from the
 * already-quantized layers before it, and within a layer the linear layers are quantized in
 * the order [q, k, v] → o_proj → [gate, up] → down_proj, each from the Hessian of its own
 * input, recomputed after the previous group was quantized. Activations stay in full
 * precision; online rotations (R3, R4) given in `online` are applied as at evaluation.
 * Memory: the residual stream of every calibration token (n_windows * window * dim floats)
 * plus one Hessian of the widest input (hidden_dim^2 doubles). Time: about five passes of each
 * layer over the calibration tokens. */
#ifndef SQ_PIPELINE_GPTQ_MODEL_H
#define SQ_PIPELINE_GPTQ_MODEL_H

#include <stdint.h>

#include "core/log.h"
#include "core/status.h"
#include "core/threadpool.h"
#include "model/model.h"
#include "pipeline/fake_quant.h"
#include "quant/gptq.h"

/* Quantizes every linear layer of model in place (the embedding and classifier are left to
 * the caller). calibration holds n_windows windows of window tokens each, back to back. */
sq_status sq_gptq_model(sq_model *model, const sq_fake_quant *online, const int32_t *calibration, int32_t n_windows,
                        int32_t window, const sq_gptq_params *params, sq_threadpool *pool, const sq_logger *logger,
                        sq_error *err);

#endif
