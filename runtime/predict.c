/* predict.c — `predict --weights W.npz FILE...`: the class of each picture.
 *
 * A FILE is either an IDX file of images (any number, shaped like the
 * model's input) or one PGM/PPM picture.  One line per image:
 *     FILE[i]: class K (p=0.93)
 * where p is the softmax probability of class K for cross-entropy models,
 * the output itself for BCE (or 1 - output for class 0 of a single output),
 * and the largest output for MSE. */
#include "rt.h"
#include <stdlib.h>
#include <string.h>

/* IDX files start with two zero bytes; gzip files with 1f 8b. */
static bool cnn_looks_like_idx(const char *path)
{
    unsigned char h[2] = {0xff, 0xff};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(h, 1, 2, f);
    fclose(f);
    return n == 2 && ((h[0] == 0 && h[1] == 0) || (h[0] == 0x1f && h[1] == 0x8b));
}

static void cnn_predict_batch(CnnNet *n, const char *path, long first, const float *x, int b)
{
    n->ctx.batch = b;
    n->ctx.training = 0;
    const float *out = n->m->forward(&n->ctx, x);
    for (int i = 0; i < b; i++) {
        double p;
        int k = cnn_predict_class(n->m, out + (long)i * n->m->outputs, &p);
        printf("%s[%ld]: class %d (p=%.2f)\n", path, first + i, k, p);
    }
}

static bool cnn_predict_file(CnnNet *n, const char *path, CnnErr *e)
{
    if (!cnn_looks_like_idx(path)) {
        if (!cnn_image_load(path, n->m, n->x, e)) return false;
        cnn_predict_batch(n, path, 0, n->x, 1);
        return true;
    }
    CnnData d;
    if (!cnn_idx_images(path, n->m, &d, e)) return false;
    long in = cnn_model_in_floats(n->m);
    for (long i = 0; i < d.n; i += n->ctx.max_batch) {
        int b = (int)(d.n - i < n->ctx.max_batch ? d.n - i : n->ctx.max_batch);
        cnn_predict_batch(n, path, i, d.x + i * in, b);
    }
    cnn_data_free(&d);
    return true;
}

int cnn_predict(const CnnModel *m, const char *weights, char **files, int nfiles)
{
    CnnNet n;
    CnnErr e;
    int status = 0;
    if (!cnn_net_alloc(&n, m, 64, &e) || !cnn_weights_load(&n, weights, &e)) {
        cnn_print_error(&e);
        cnn_net_free(&n);
        return 1;
    }
    for (int i = 0; i < nfiles; i++)
        if (!cnn_predict_file(&n, files[i], &e)) {
            cnn_print_error(&e);
            status = 1;
        }
    cnn_net_free(&n);
    return status;
}
