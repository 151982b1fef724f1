/* gradcheck.c — `gradcheck [--seed N]`: backward() against finite differences.
 *
 * On a random batch of GC_BATCH images with random labels (or targets), in
 * training mode with one fixed dropout seed (so every evaluation sees the
 * same masks), for every trainable tensor:
 *   - up to GC_SAMPLES elements: difference quotients of L at p +- h,
 *     h = H * max(1, |p|), against the analytic gradient a, with
 *         err = |a - n| / max(|a|, |n|, floor),  floor = max(1e-2 * max|a| of the tensor, 1e-5)
 *     so elements far smaller than the tensor's largest gradient are judged
 *     on an absolute scale (float32 noise in L, about 1e-7, divided by 2h
 *     swamps them);
 *   - the gradient's own direction u = a/|a|: (L(p + h u) - L(p - h u)) / 2h
 *     must equal |a| (<g, a>/|a| = |a| holds for the true gradient g and
 *     generically for no other a): a whole-tensor check in the spirit of
 *     KANN's random direction, with floor 1e-2 * the largest tensor's |a|.
 * L is summed in double.  Why several quotients: a ReLU or max-pool kink
 * within h of p makes the central difference wrong although backward is
 * right; the one-sided difference on the kink-free side stays right, and so
 * does a smaller h.  So an element passes when the central, forward or
 * backward quotient at one of GC_TRIES step sizes agrees within 5%; a
 * wrong backward disagrees with all of them (measured on lenet5: at h = 1e-2
 * a third of samples straddle a kink, at 1e-3 few do, below 1e-4 float
 * noise wins).  When none agrees and the central differences at the
 * different steps also disagree with each other, the difference quotient is
 * not measuring a derivative (a kink, the jump of an unpool whose argmax
 * moves, or noise around a true zero): that sample is counted "at a kink"
 * and proves nothing either way.  A smooth L with a wrong gradient gives
 * stable quotients and fails.  Exit status 1 when any tensor fails. */
#include "rt.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GC_BATCH = 2, GC_SAMPLES = 20, GC_TRIES = 3 };
static const double gc_steps[GC_TRIES] = {1e-3, 3e-3, 3e-4};
static const double gc_tolerance = 5e-2;

typedef struct CnnCheck {
    CnnNet net;
    float *target;       /* [GC_BATCH][outputs] for MSE/BCE */
    float *grads;        /* [param_floats] analytic gradient */
    float *stats;        /* [stat_floats] statistics as they were, restored before each forward */
    float *dir;          /* [largest tensor] the direction of the whole-tensor check */
    double loss0;        /* L at the parameters as they are */
    double central;      /* the last central difference */
    double dir_floor;    /* 1e-2 * the largest gradient norm of any tensor */
    CnnRng rng;
} CnnCheck;

static double cnn_check_loss(CnnCheck *k)
{
    CnnNet *n = &k->net;
    memcpy(n->ctx.stats, k->stats, (size_t)n->m->stat_floats * sizeof(float));
    const float *out = n->m->forward(&n->ctx, n->x);
    return cnn_loss(n->m, out, n->label, k->target, GC_BATCH, NULL, NULL);
}

/* The difference quotients of L along d (d NULL: the one element p[0]) with
 * step h_rel: central, forward and backward, the closest to a first.  The
 * float steps actually taken are the divisors. */
static double cnn_check_numeric(CnnCheck *k, float *p, long len, const float *d, double h_rel, double a,
                                double floor, double *best_n)
{
    float *save = k->net.scratch;
    memcpy(save, p, (size_t)len * sizeof(float));
    double h = h_rel * (d ? 1.0 : fmax(1.0, fabs(p[0])));
    for (long i = 0; i < len; i++) p[i] = (float)(save[i] + h * (d ? d[i] : 1));
    double up = d ? h : (double)p[0] - save[0], plus = cnn_check_loss(k);
    for (long i = 0; i < len; i++) p[i] = (float)(save[i] - h * (d ? d[i] : 1));
    double down = d ? h : (double)save[0] - p[0], minus = cnn_check_loss(k);
    memcpy(p, save, (size_t)len * sizeof(float));
    double q[3] = {(plus - minus) / (up + down), (plus - k->loss0) / up, (k->loss0 - minus) / down};
    k->central = q[0];
    double best = INFINITY;
    for (int i = 0; i < 3; i++) {
        double err = fabs(a - q[i]) / fmax(fmax(fabs(a), fabs(q[i])), floor);
        if (err < best) best = err, *best_n = q[i];
    }
    return best;
}

/* The smallest error over the step sizes (stopping at the first pass).
 * *unstable: no step size agreed, and the central differences at the
 * different steps disagree among themselves as much: the finite difference
 * is not measuring a derivative here (a kink or float noise), so the
 * element proves nothing either way.  A wrong backward with a smooth L
 * gives stable differences that disagree with it, and fails. */
static double cnn_check_compare(CnnCheck *k, float *p, long len, const float *d, double a, double floor, double *num,
                                bool *unstable)
{
    double best = INFINITY, c[GC_TRIES];
    int t = 0;
    for (; t < GC_TRIES && best > gc_tolerance; t++) {
        double n = 0, err = cnn_check_numeric(k, p, len, d, gc_steps[t], a, floor, &n);
        if (err < best) best = err, *num = n;
        c[t] = k->central;
    }
    *unstable = false;
    for (int i = 1; best > gc_tolerance && i < t; i++)
        if (fabs(c[i] - c[0]) > gc_tolerance * fmax(fmax(fabs(c[i]), fabs(c[0])), floor)) *unstable = true;
    return best;
}

typedef struct CnnTensorCheck {
    double worst, dir_err, worst_a, worst_n;
    long worst_k, checked, unstable;
    bool dir_unstable;
} CnnTensorCheck;

static void cnn_check_elements(CnnCheck *k, const CnnTensor *t, CnnTensorCheck *r)
{
    const float *a = k->grads + t->offset;
    float *p = k->net.ctx.params + t->offset;
    double gmax = 0;
    for (long i = 0; i < t->size; i++) gmax = fmax(gmax, fabs(a[i]));
    double floor = fmax(1e-2 * gmax, 1e-5);
    r->checked = t->size < GC_SAMPLES ? t->size : GC_SAMPLES;
    for (long s = 0; s < r->checked; s++) {
        long i = t->size <= GC_SAMPLES ? s : (long)cnn_rng_below(&k->rng, (uint64_t)t->size);
        bool unstable;
        double n = 0, err = cnn_check_compare(k, p + i, 1, NULL, a[i], floor, &n, &unstable);
        if (unstable) {
            r->unstable++;
            continue;
        }
        if (err >= r->worst) r->worst = err, r->worst_a = a[i], r->worst_n = n, r->worst_k = i;
    }
}

/* Along u = a/|a| (a random +-1/sqrt(n) direction when a is zero). */
static void cnn_check_direction(CnnCheck *k, const CnnTensor *t, CnnTensorCheck *r)
{
    const float *a = k->grads + t->offset;
    double norm = 0, n = 0;
    for (long i = 0; i < t->size; i++) norm += (double)a[i] * a[i];
    norm = sqrt(norm);
    for (long i = 0; i < t->size; i++)
        k->dir[i] = norm > 0 ? (float)(a[i] / norm)
                             : (float)((cnn_rng_next(&k->rng) >> 63 ? 1 : -1) / sqrt((double)t->size));
    r->dir_err = cnn_check_compare(k, k->net.ctx.params + t->offset, t->size, k->dir, norm, k->dir_floor, &n,
                                   &r->dir_unstable);
}

/* PASS, FAIL, or UNSURE when no measurement was stable (every sample and
 * the direction at a kink or in noise): not counted as a failure, but said. */
static bool cnn_check_tensor(CnnCheck *k, const CnnTensor *t)
{
    CnnTensorCheck r = {0};
    cnn_check_elements(k, t, &r);
    cnn_check_direction(k, t, &r);
    bool elements_ok = r.worst <= gc_tolerance, dir_ok = r.dir_err <= gc_tolerance || r.dir_unstable;
    bool unsure = r.unstable == r.checked && r.dir_unstable;
    char skipped[48] = "", dir[32];
    if (r.unstable) snprintf(skipped, sizeof skipped, " (%ld at a kink)", r.unstable);
    snprintf(dir, sizeof dir, r.dir_unstable ? "at a kink" : "%.1e", r.dir_err);
    printf("%-24s %3ld elements%s  max rel err %.1e  direction %s  %s\n", t->name, r.checked, skipped, r.worst, dir,
           unsure ? "UNSURE (try another --seed)" : elements_ok && dir_ok ? "PASS" : "FAIL");
    if (!elements_ok) {
        char where[64];
        cnn_tensor_format_index(t, cnn_tensor_torch_offset(t, r.worst_k), where, sizeof where);
        printf("    worst at %s%s: analytic %.6e, numeric %.6e\n", t->name, where, r.worst_a, r.worst_n);
    }
    return elements_ok && dir_ok;
}

/* Random inputs in [0,1), labels in [0, classes), targets in [0,1) (MSE)
 * or {0, 1} (BCE). */
static void cnn_check_batch(CnnCheck *k)
{
    const CnnModel *m = k->net.m;
    for (long i = 0; i < cnn_model_in_floats(m) * GC_BATCH; i++) k->net.x[i] = (float)cnn_rng_uniform(&k->rng);
    for (int b = 0; b < GC_BATCH; b++) k->net.label[b] = (int32_t)cnn_rng_below(&k->rng, (uint64_t)cnn_model_classes(m));
    for (long i = 0; k->target && i < (long)m->outputs * GC_BATCH; i++)
        k->target[i] = m->loss == CNN_LOSS_BCE ? (float)(cnn_rng_next(&k->rng) >> 63) : (float)cnn_rng_uniform(&k->rng);
}

static bool cnn_check_alloc(CnnCheck *k, const CnnModel *m, CnnErr *e)
{
    if (!cnn_net_alloc(&k->net, m, GC_BATCH, e)) return false;
    k->grads = malloc((size_t)(m->param_floats + 1) * sizeof(float));
    k->stats = malloc((size_t)(m->stat_floats + 1) * sizeof(float));
    k->dir = malloc((size_t)cnn_model_max_tensor(m) * sizeof(float));
    k->target = m->loss == CNN_LOSS_CROSSENTROPY ? NULL : malloc((size_t)m->outputs * GC_BATCH * sizeof(float));
    if (!k->grads || !k->stats || !k->dir || (m->loss != CNN_LOSS_CROSSENTROPY && !k->target))
        return cnn_fail(e, "out of memory");
    return true;
}

static void cnn_check_free(CnnCheck *k)
{
    cnn_net_free(&k->net);
    free(k->grads);
    free(k->stats);
    free(k->dir);
    free(k->target);
}

/* Forward + backward once; the analytic gradient is kept aside.  A second
 * forward must give the same loss, or nothing below can be trusted. */
static void cnn_check_analytic(CnnCheck *k)
{
    CnnNet *n = &k->net;
    const CnnModel *m = n->m;
    memcpy(k->stats, n->ctx.stats, (size_t)m->stat_floats * sizeof(float));
    const float *out = m->forward(&n->ctx, n->x);
    double loss = cnn_loss(m, out, n->label, k->target, GC_BATCH, n->dout, NULL);
    m->backward(&n->ctx, n->x, n->dout);
    memcpy(k->grads, n->ctx.grads, (size_t)m->param_floats * sizeof(float));
    double again = k->loss0 = cnn_check_loss(k);
    for (int i = 0; i < m->ntensors; i++) {
        const CnnTensor *t = &m->tensors[i];
        double norm = 0;
        for (long j = 0; t->role == CNN_TENSOR_PARAM && j < t->size; j++)
            norm += (double)k->grads[t->offset + j] * k->grads[t->offset + j];
        k->dir_floor = fmax(k->dir_floor, 1e-2 * sqrt(norm));
    }
    k->dir_floor = fmax(k->dir_floor, 1e-7);
    printf("gradcheck %s: batch %d, loss %.6f\n", m->name, GC_BATCH, loss);
    if (again != loss)
        printf("warning: a second forward gave loss %.9g, not %.9g: forward is not deterministic, or backward "
               "changed something it should not\n", again, loss);
}

int cnn_gradcheck(const CnnModel *m, uint64_t seed)
{
    CnnCheck k = {0};
    CnnErr e;
    if (!cnn_check_alloc(&k, m, &e)) {
        cnn_print_error(&e);
        cnn_check_free(&k);
        return 1;
    }
    cnn_rng_seed(&k.rng, seed);
    cnn_net_init(&k.net, &k.rng);
    cnn_check_batch(&k);
    k.net.ctx.batch = GC_BATCH;
    k.net.ctx.training = 1;
    k.net.ctx.seed = cnn_rng_next(&k.rng);
    cnn_check_analytic(&k);
    int failed = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].role == CNN_TENSOR_PARAM) failed += !cnn_check_tensor(&k, &m->tensors[i]);
    printf("%s\n", failed ? "gradcheck FAILED" : "gradcheck passed");
    cnn_check_free(&k);
    return failed ? 1 : 0;
}
