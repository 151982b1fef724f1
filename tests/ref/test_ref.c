/* test_ref.c — generated code against PyTorch, tensor by tensor (Check).
 *
 * `reference.py suite DIR MODELS...` has written, per model, PyTorch-default
 * weights (DIR/NAME.w.npz), a batch (NAME.b.npz) and PyTorch's trace
 * (NAME.ref.npz: output, loss, every parameter gradient, and every
 * tensor after 3 optimizer steps), and listed the models in DIR/list.txt.
 * For each model this test runs `cnnc build`, the executable's `trace` with
 * the same weights and batch, and compares every array of the reference.
 *
 * Error measure: |ref − got| / max(|ref|, 1e-2·max|ref|, 1e-6) ≤ 1e-4 per
 * element; the 1e-2 floor keeps elements that are sums of large cancelling
 * terms (relative noise of float32 rounding) from failing.  after.* arrays are
 * compared as updates, after − initial weights: what the optimizer did, on
 * the scale of the update rather than of the weights it barely moved (with a
 * floor of a tenth of the largest update, FLOOR_UPDATE); less
 * the rounding of float32 weights themselves (an update is stored in a
 * float32 weight, exact only to its spacing: 4 ulp over 3 steps), within 1e-3
 * (Adam divides by sqrt(v), which amplifies gradient rounding; a wrong
 * optimizer is off by order 1).  After Adam steps,
 * an element whose first gradient is below 1% of its tensor's largest has a
 * step direction set by rounding noise (Adam divides by √v), so those
 * elements are left out of after.* and counted in the output. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rt.h"

enum { MAX_MODELS = 256 };
#define RTOL 1e-4          /* outputs, losses, gradients */
#define RTOL_UPDATE 1e-3   /* after.*: updates pass through Adam's 1/sqrt(v), which amplifies rounding */
#define FLOOR 1e-2
/* An update is judged on at least a tenth of its tensor's largest (about a third of one of its 3 Adam
   steps): a small update is the residual of steps that cancel, and carries their rounding, not its
   own.  vgg-small's fc1 on a batch where its Winograd dL/dweight gives rounding noise for taps the
   direct sum makes exactly 0 (Adam steps on that noise move steps 2 and 3): an update of 9.0e-5,
   a thirtieth of the largest, off by 9.9e-8 — 1.04 of the tolerance on the 1e-2 floor, 0.39 on
   this one.  A wrong optimizer is off by order 1. */
#define FLOOR_UPDATE 1e-1
#define ATOL 1e-6
#define ADAM_NOISE 1e-2
/* test_ref DIR CNNC --tolerance-scale S multiplies RTOL and RTOL_UPDATE by S: for Winograd
   F(4×4,3×3) builds (ref.mk), whose float32 rounding is several times F(2×2)'s. */
static double tolerance_scale = 1;

static char names[MAX_MODELS][128], models[MAX_MODELS][1024];
static int nmodels;
static const char *dir, *cnnc;

static void format_index(const CnnArray *a, long k, char *buf, size_t n)
{
    long idx[CNN_NPY_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = a->shape[d] ? k % a->shape[d] : 0;
        k = a->shape[d] ? k / a->shape[d] : 0;
    }
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < a->ndim && o < n; d++) o += (size_t)snprintf(buf + o, n - o, "%s%ld", d ? "," : "", idx[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Compares one array; prints a line and returns false when it differs. */
static bool compare_array(const char *model, const CnnArray *r, const CnnArray *g, const CnnArray *grad,
                          const CnnArray *init)
{
    if (!g || g->count != r->count) {
        fprintf(stderr, "%s: %s missing or of another size in the executable's trace\n", model, r->name);
        return false;
    }
    float *a = malloc(sizeof(float) * (size_t)(r->count + 1)), *b = malloc(sizeof(float) * (size_t)(r->count + 1));
    float *gr = grad ? malloc(sizeof(float) * (size_t)(grad->count + 1)) : NULL;
    cnn_array_floats(r, a);
    cnn_array_floats(g, b);
    float *w = NULL;
    if (init && init->count == r->count) {
        w = malloc(sizeof(float) * (size_t)(r->count + 1));
        cnn_array_floats(init, w);
        for (long i = 0; i < r->count; i++) a[i] -= w[i], b[i] -= w[i];
    }
    double amax = 0, gmax = 0;
    for (long i = 0; i < r->count; i++) amax = fmax(amax, fabs(a[i]));
    if (gr) {
        cnn_array_floats(grad, gr);
        for (long i = 0; i < grad->count; i++) gmax = fmax(gmax, fabs(gr[i]));
    }
    double worst = 0, scale = fmax((w ? FLOOR_UPDATE : FLOOR) * amax, ATOL);
    long at = 0, masked = 0;
    for (long i = 0; i < r->count; i++) {
        if (gr && fabs(gr[i]) < ADAM_NOISE * gmax) { masked++; continue; }
        double stored = w ? 4 * FLT_EPSILON * fabs(w[i]) : 0;   /* float32 spacing of the weight */
        double err = fmax(fabs((double)a[i] - b[i]) - stored, 0) / fmax(fabs(a[i]), scale);
        if (!(err <= worst)) worst = err, at = i;     /* also catches NaN */
    }
    bool ok = worst <= (w ? RTOL_UPDATE : RTOL) * tolerance_scale;
    if (!ok) {
        char where[96];
        format_index(r, at, where, sizeof where);
        fprintf(stderr, "%s: %s%s maxdiff=%.3g rel=%.3g at %s ref=%.9g got=%.9g%s\n", model, r->name,
                init ? " (update from the initial weights)" : "", fabs((double)a[at] - b[at]), worst, where, a[at],
                b[at], masked ? " (noise-level gradients left out)" : "");
    }
    free(a);
    free(b);
    free(gr);
    free(w);
    return ok;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

START_TEST(model_matches_pytorch)
{
    const char *n = names[_i];
    ck_assert_msg(run("%s build %s -o %s/%s > %s/%s.log 2>&1", cnnc, models[_i], dir, n, dir, n) == 0,
                  "%s: cnnc build failed (see %s/%s.log)", n, dir, n);
    ck_assert_msg(run("%s/%s trace --init %s/%s.w.npz --batch %s/%s.b.npz --steps 3 --out %s/%s.got.npz >> %s/%s.log 2>&1",
                      dir, n, dir, n, dir, n, dir, n, dir, n) == 0, "%s: trace failed (see %s/%s.log)", n, dir, n);
    CnnNpz ref, got, init;
    CnnErr e;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.ref.npz", dir, n);
    ck_assert_msg(cnn_npz_load(&ref, path, &e), "%s", e.msg);
    snprintf(path, sizeof path, "%s/%s.got.npz", dir, n);
    ck_assert_msg(cnn_npz_load(&got, path, &e), "%s", e.msg);
    snprintf(path, sizeof path, "%s/%s.w.npz", dir, n);
    ck_assert_msg(cnn_npz_load(&init, path, &e), "%s", e.msg);
    int failed = 0;
    for (int i = 0; i < ref.n; i++) {
        const CnnArray *r = &ref.arr[i];
        const CnnArray *grad = NULL, *w0 = NULL;
        if (!strncmp(r->name, "after.", 6)) {
            char gname[CNN_NPY_NAME + 8];
            snprintf(gname, sizeof gname, "grad.%s", r->name + 6);
            grad = cnn_npz_get(&ref, gname);
            w0 = cnn_npz_get(&init, r->name + 6);
        }
        failed += !compare_array(n, r, cnn_npz_get(&got, r->name), grad, w0);
    }
    int arrays = ref.n;
    cnn_npz_free(&ref);
    cnn_npz_free(&got);
    cnn_npz_free(&init);
    ck_assert_msg(failed == 0, "%s: %d of %d tensors differ from PyTorch", n, failed, arrays);
}
END_TEST

static void read_list(void)
{
    char path[1024], line[1200];
    snprintf(path, sizeof path, "%s/list.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "test_ref: no %s (run reference.py suite first)\n", path); exit(1); }
    while (nmodels < MAX_MODELS && fgets(line, sizeof line, f))
        if (sscanf(line, "%127s %1023s", names[nmodels], models[nmodels]) == 2) nmodels++;
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[3], "--tolerance-scale")) tolerance_scale = atof(argv[4]);
    if ((argc != 3 && argc != 5) || !(tolerance_scale >= 1)) {
        fprintf(stderr, "usage: test_ref DIR CNNC [--tolerance-scale S≥1]\n");
        return 2;
    }
    dir = argv[1];
    cnnc = argv[2];
    read_list();
    Suite *s = suite_create("pytorch-reference");
    TCase *tc = tcase_create("models");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, model_matches_pytorch, 0, nmodels);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
