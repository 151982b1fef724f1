/* fuzz_npz.c — an .npz through cnn_npz_load, every array through the
 * converters, then the whole file as weights and training state of the
 * runtime tests' fake model (tests/runtime/fake_model.c, linked in): the
 * path --init, --weights and --resume take. */
#include <stdlib.h>
#include "rt.h"
#include "fuzz.h"

static void fuzz_arrays(const CnnNpz *z)
{
    for (int i = 0; i < z->n; i++) {
        const CnnArray *a = &z->arr[i];
        char shape[128];
        cnn_array_shape_str(a, shape, sizeof shape);
        if (a->count > (1 << 24)) continue;   /* the converters trust count; the loader checked it */
        void *buf = malloc(a->count ? (size_t)a->count * 8 : 1);
        if (!buf) continue;
        cnn_array_floats(a, buf);
        cnn_array_ints(a, buf);
        free(buf);
    }
}

static void fuzz_one(const char *path)
{
    CnnErr e;
    CnnNpz z = {0};
    if (cnn_npz_load(&z, path, &e)) {
        fuzz_arrays(&z);
        CnnNet n;
        if (cnn_net_alloc(&n, &cnn_model, 4, &e)) {
            CnnOptimConfig cfg = cnn_optim_defaults(&cnn_model);
            int64_t batch;
            cnn_state_config(&z, &cfg, &batch);
            CnnOptim o;
            CnnTrainState ts;
            if (cnn_optim_alloc(&o, &cfg, cnn_model.param_floats, &e)) {
                if (cnn_weights_from_npz(&n, &z, &e)) cnn_state_from_npz(&n, &z, &o, &ts, &e);
                cnn_optim_free(&o);
            }
            cnn_net_free(&n);
        }
    }
    cnn_npz_free(&z);
}
