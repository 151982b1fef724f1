/* fuzz_csv.c — a CSV file through cnn_csv_load for a 2x2x1 model with 3
 * classes (label, then 4 pixel columns). */
#include "rt.h"
#include "fuzz.h"

static const CnnModel fuzz_model = {.name = "fuzz", .in_h = 2, .in_w = 2, .in_c = 1, .outputs = 3};

static void fuzz_one(const char *path)
{
    CnnErr e;
    CnnData d;
    if (cnn_csv_load(path, &fuzz_model, &d, &e)) cnn_data_free(&d);
}
