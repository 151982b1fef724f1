/* bench.c — `EXE bench`: how fast this model trains and infers here.
 *
 * Synthetic data (uniform pixels, random labels), so no file loading is
 * timed.  Three figures, each the median of five repetitions after a
 * warm-up: training images/s (forward, loss, backward and the optimizer step
 * at the given batch), inference images/s (forward in eval mode at the same
 * batch) and single-image latency (forward of one image).  A repetition runs
 * at least 0.2 s, so timer resolution does not matter.  bench/ compares these
 * with PyTorch on the same machine in the same run. */
#include "rt.h"
#include <stdio.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { BENCH_REPS = 5 };
#define BENCH_MIN_SECONDS 0.2

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* One training step; times: NULL, or the loss's and the update's seconds are added to times[0], [1]. */
static void bench_train_step(CnnNet *n, CnnOptim *o, double *times)
{
    const float *out = n->m->forward(&n->ctx, n->x);
    double t0 = times ? cnn_now() : 0;
    cnn_loss(n->m, out, n->label, NULL, n->ctx.batch, n->dout, NULL);
    double t1 = times ? cnn_now() : 0;
    n->m->backward(&n->ctx, n->x, n->dout);
    double t2 = times ? cnn_now() : 0;
    cnn_optim_step(o, n->ctx.params, n->ctx.grads);
    if (times) times[0] += t1 - t0, times[1] += cnn_now() - t2;
}

/* Calls to `work` per second, median of BENCH_REPS timed repetitions. */
static double bench_rate(CnnNet *n, CnnOptim *o, int training)
{
    double rates[BENCH_REPS];
    n->ctx.training = training;
    for (int w = 0; w < 3; w++) training ? bench_train_step(n, o, NULL) : (void)n->m->forward(&n->ctx, n->x);
    for (int r = 0; r < BENCH_REPS; r++) {
        long calls = 0;
        double t0 = cnn_now(), t;
        do {
            if (training) bench_train_step(n, o, NULL);
            else n->m->forward(&n->ctx, n->x);
            calls++;
        } while ((t = cnn_now() - t0) < BENCH_MIN_SECONDS);
        rates[r] = (double)calls / t;
    }
    return median(rates, BENCH_REPS);
}

static void bench_fill(CnnNet *n, int batch, CnnRng *rng)
{
    long in = cnn_model_in_floats(n->m);
    for (long i = 0; i < in * batch; i++) n->x[i] = (float)cnn_rng_uniform(rng);
    for (int b = 0; b < batch; b++) n->label[b] = (int32_t)cnn_rng_below(rng, (uint64_t)cnn_model_classes(n->m));
}

void cnn_lap(const CnnCtx *c, int slot)
{
    if (!c->profile) return;
    double now = cnn_now();
    if (slot >= 0) c->profile[1 + slot] += now - c->profile[0];
    c->profile[0] = now;
}

/* `bench --layers`: each layer's share of a training step, the median over
 * every step of at least BENCH_REPS · BENCH_MIN_SECONDS of training (and at
 * least BENCH_LAYER_STEPS steps) after a warm-up, with the arithmetic rate of
 * those that multiply (2 FLOPs per MAC; backward = dL/dweight plus dL/din when
 * it is computed).  The same span as bench_rate's figures: a shared machine's
 * slow spells last from a tenth of a second to seconds, and 25 steps of a small
 * model (60 ms) fell inside one; over a second the median sees slow and fast
 * spells alike, and a few interrupted steps drop out of it.  At most
 * BENCH_LAYER_STEPS_MAX steps: the samples' memory (a step under 0.25 ms ends there). */
enum { BENCH_LAYER_STEPS = 25, BENCH_LAYER_STEPS_MAX = 4096 };

/* Per slot (each layer's forward, then each layer's backward, then the loss
 * and the update) the median seconds over the steps; NULL if out of memory. */
static double *bench_layer_medians(CnnNet *n, CnnOptim *o)
{
    const int layers = n->m->nlayers, slots = 2 * layers + 2;
    double *prof = calloc(1 + 2 * (size_t)layers, sizeof *prof);
    double *samples = calloc((size_t)BENCH_LAYER_STEPS_MAX * slots, sizeof *samples);
    double *medians = calloc((size_t)slots, sizeof *medians);
    double *column = calloc(BENCH_LAYER_STEPS_MAX, sizeof *column);
    if (!prof || !samples || !medians || !column) {
        free(prof), free(samples), free(medians), free(column);
        return NULL;
    }
    for (int w = 0; w < 3; w++) bench_train_step(n, o, NULL);
    int steps = 0;
    for (double t0 = cnn_now(); steps < BENCH_LAYER_STEPS_MAX
                                && (steps < BENCH_LAYER_STEPS || cnn_now() - t0 < BENCH_REPS * BENCH_MIN_SECONDS);
         steps++) {
        double secs[2] = {0, 0};   /* the parts of a step between the layers: the loss, the update */
        memset(prof, 0, (1 + 2 * (size_t)layers) * sizeof *prof);
        n->ctx.profile = prof;
        bench_train_step(n, o, secs);
        n->ctx.profile = NULL;
        double *row = samples + (size_t)steps * slots;
        memcpy(row, prof + 1, 2 * (size_t)layers * sizeof *row);
        row[2 * layers] = secs[0], row[2 * layers + 1] = secs[1];
    }
    for (int i = 0; i < slots; i++) {
        for (int s = 0; s < steps; s++) column[s] = samples[(size_t)s * slots + i];
        medians[i] = median(column, steps);
    }
    free(prof), free(samples), free(column);
    return medians;
}

static void bench_layers(CnnNet *n, CnnOptim *o, int batch, bool csv)
{
    const CnnModel *m = n->m;
    double *med = bench_layer_medians(n, o);
    if (!med) return;
    if (csv) printf("layer,kind,forward_ms,backward_ms,forward_gflops,backward_gflops\n");
    else printf("%-10s %-10s %12s %12s %12s %12s\n", "layer", "kind", "forward ms", "backward ms", "fwd GFLOP/s",
                "bwd GFLOP/s");
    for (int i = 0; i < m->nlayers; i++) {
        const CnnLayerInfo *l = &m->layers[i];
        double f = med[i], b = med[m->nlayers + i];
        double flops = 2.0 * (double)l->macs * batch;
        double fg = l->backward_macs_factor && f > 0 ? flops / f / 1e9 : 0;
        double bg = l->backward_macs_factor && b > 0 ? flops * l->backward_macs_factor / b / 1e9 : 0;
        if (csv) printf("%s,%s,%.4f,%.4f,%.2f,%.2f\n", l->name, l->kind, 1e3 * f, 1e3 * b, fg, bg);
        else if (l->backward_macs_factor)
            printf("%-10s %-10s %12.3f %12.3f %12.1f %12.1f\n", l->name, l->kind, 1e3 * f, 1e3 * b, fg, bg);
        else
            printf("%-10s %-10s %12.3f %12.3f %12s %12s\n", l->name, l->kind, 1e3 * f, 1e3 * b, "", "");
    }
    const char *names[2] = {"loss", cnn_optim_name(o->cfg.kind)};
    for (int i = 0; i < 2; i++) {
        double t = med[2 * m->nlayers + i];
        if (csv) printf("%s,step,%.4f,0.0000,0.00,0.00\n", names[i], 1e3 * t);
        else printf("%-10s %-10s %12.3f %12s %12s %12s\n", names[i], "step", 1e3 * t, "", "", "");
    }
    free(med);
}

int cnn_bench(const CnnModel *m, int batch, const CnnOptimConfig *opt, unsigned opt_set, bool csv, bool layers)
{
    CnnErr e;
    CnnNet n;
    CnnOptim o = {0};
    CnnRng rng;
    if (batch <= 0) batch = m->batch > 0 ? m->batch : 64;
    CnnOptimConfig cfg = cnn_optim_defaults(m);
    cnn_optim_override(&cfg, opt, opt_set);
    if (!cnn_net_alloc(&n, m, batch, &e) || !cnn_optim_alloc(&o, &cfg, m->param_floats, &e)) {
        cnn_print_error(&e);
        cnn_net_free(&n);
        return 1;
    }
    cnn_rng_seed(&rng, 1);
    cnn_net_init(&n, &rng);
    bench_fill(&n, batch, &rng);
    n.ctx.batch = batch;
    if (layers) {
        bench_layers(&n, &o, batch, csv);
        cnn_optim_free(&o);
        cnn_net_free(&n);
        return 0;
    }
    double train = bench_rate(&n, &o, 1) * batch;
    double infer = bench_rate(&n, &o, 0) * batch;
    n.ctx.batch = 1;
    double latency = 1000.0 / bench_rate(&n, &o, 0);
    if (csv)
        printf("train_img_s,infer_img_s,latency_ms\n%.1f,%.1f,%.6f\n", train, infer, latency);
    else
        printf("%s: train %.0f img/s (batch %d, %s) | inference %.0f img/s | latency %.3f ms | %d threads\n",
               m->name, train, batch, cnn_optim_name(cfg.kind), infer, latency, omp_get_max_threads());
    cnn_optim_free(&o);
    cnn_net_free(&n);
    return 0;
}
