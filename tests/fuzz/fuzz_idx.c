/* fuzz_idx.c — an IDX file (plain or gzip) through cnn_idx_read, then, as
 * images and labels, through the checks of a 2x2x1 model with 3 classes. */
#include <stdlib.h>
#include "rt.h"
#include "fuzz.h"

static const CnnModel fuzz_model = {.name = "fuzz", .in_h = 2, .in_w = 2, .in_c = 1, .outputs = 3};

static void fuzz_one(const char *path)
{
    CnnErr e;
    CnnIdx idx;
    if (cnn_idx_read(path, true, &idx, &e)) free(idx.data);
    CnnData d;
    if (cnn_idx_images(path, &fuzz_model, &d, &e)) {
        cnn_idx_labels(path, &fuzz_model, &d, &e);
        cnn_data_free(&d);
    }
}
