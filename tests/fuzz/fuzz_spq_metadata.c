/* libFuzzer harness: the JSON metadata section of a .spq file (sq_spq_metadata_parse): the
 * configuration, settings and tensor table, checked against the layout they imply. */
#include "fuzz_common.h"
#include "spq/spq_layout.h"
#include "spq/spq_metadata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sq_spq_model model;
    sq_spq_layout layout;
    memset(&model, 0, sizeof(model));
    memset(&layout, 0, sizeof(layout));
    sq_error err;
    sq_status status = sq_spq_metadata_parse((const char *)data, size, &model, &layout, &err);
    fuzz_check_failure(status, &err);
    sq_spq_layout_free(&layout);
    sq_spq_model_free(&model);
    return 0;
}
