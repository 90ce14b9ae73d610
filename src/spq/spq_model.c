/* Release of sq_spq_model and the checks of its settings. */
#include "spq/spq_model.h"

#include <stdlib.h>
#include <string.h>

void sq_spq_model_free(sq_spq_model *model) {
    if (model == NULL) {
        return;
    }
    free(model->layers);
    sq_tokenizer_free(model->tokenizer);
    free(model->chat_template);
    free(model->name);
    free(model->source_format);
    free(model->storage);
    memset(model, 0, sizeof(*model));
}

static int divides_all(int group, const sq_config *c) {
    return c->dim % group == 0 && (c->n_heads * c->head_dim) % group == 0 && c->hidden_dim % group == 0;
}

sq_status sq_spq_settings_validate(const sq_spq_settings *s, const sq_config *c, sq_error *err) {
    if (s->w_bits < 2 || s->w_bits > 4) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "w_bits %d is not supported, expected 2 to 4 (4-bit storage)", s->w_bits);
    }
    if (s->w_group < 0 || (s->w_group > 0 && !divides_all(s->w_group, c))) {
        return sq_error_set(err, SQ_ERR_FORMAT, "w_group %d does not divide the input widths %d, %d and %d", s->w_group,
                            c->dim, c->n_heads * c->head_dim, c->hidden_dim);
    }
    if (s->a_bits < 2 || s->a_bits > 8) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED,
                            "a_bits %d is not supported by the integer runtime, expected 2 to 8", s->a_bits);
    }
    if ((s->kv_bits < 2 || s->kv_bits > 8) && s->kv_bits != 16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "kv_bits %d is not supported, expected 2 to 8, or 16 for an fp32 cache",
                            s->kv_bits);
    }
    if (!(s->a_clip > 0.0f && s->a_clip <= 1.0f) || !(s->kv_clip > 0.0f && s->kv_clip <= 1.0f)) {
        return sq_error_set(err, SQ_ERR_FORMAT, "clip ratios a_clip %g and kv_clip %g must lie in (0, 1]", (double)s->a_clip,
                            (double)s->kv_clip);
    }
    if (s->embed_bits != 8 && s->embed_bits != 16) {
        return sq_error_set(err, SQ_ERR_UNSUPPORTED, "embed_bits %d is not supported, expected 8 or 16", s->embed_bits);
    }
    return SQ_OK;
}
