/* optim.c — SGD, SGD with momentum and Adam, as torch.optim computes them.
 *
 * One flat array covers every parameter tensor: the three rules work element
 * by element, so the tensors' boundaries do not matter.  The formulas are
 * torch's single-tensor code (torch/optim/sgd.py, adam.py), float32 on the
 * tensors and double on the scalars, including torch's order of operations:
 *   SGD       p -= lr*g
 *   momentum  buf = g (first step), then buf = momentum*buf + g;  p -= lr*buf
 *             (dampening 0, no Nesterov)
 *   Adam      m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
 *             bc1 = 1 - beta1^t;  bc2 = 1 - beta2^t
 *             p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)     (eps outside the root)
 */
#include "rt.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const cnn_optim_names[] = {
    [CNN_OPT_SGD] = "sgd", [CNN_OPT_MOMENTUM] = "momentum", [CNN_OPT_ADAM] = "adam"};

const char *cnn_optim_name(CnnOptimizer k)
{
    return (unsigned)k <= CNN_OPT_ADAM ? cnn_optim_names[k] : "?";
}

bool cnn_optim_parse(const char *s, CnnOptimizer *k)
{
    for (int i = 0; i <= CNN_OPT_ADAM; i++)
        if (strcmp(s, cnn_optim_names[i]) == 0) {
            *k = (CnnOptimizer)i;
            return true;
        }
    return false;
}

/* The shortest decimal that reads back as f, as a double: the generator
 * stores 0.9 as 0.9f, but torch computes 1 - beta1 from the double 0.9. */
double cnn_float_to_decimal(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return f;
}

/* Unset settings (zero) get torch's defaults.  An "sgd" with a momentum in
 * the .cnn file is the momentum optimizer. */
CnnOptimConfig cnn_optim_defaults(const CnnModel *m)
{
    CnnOptimConfig c = {
        .kind = m->optimizer,
        .lr = m->lr > 0 ? cnn_float_to_decimal(m->lr) : m->optimizer == CNN_OPT_ADAM ? 0.001 : 0.01,
        .momentum = m->momentum > 0 ? cnn_float_to_decimal(m->momentum) : 0.9,
        .beta1 = m->beta1 > 0 ? cnn_float_to_decimal(m->beta1) : 0.9,
        .beta2 = m->beta2 > 0 ? cnn_float_to_decimal(m->beta2) : 0.999,
        .eps = m->eps > 0 ? cnn_float_to_decimal(m->eps) : 1e-8,
    };
    if (c.kind == CNN_OPT_SGD && m->momentum > 0) c.kind = CNN_OPT_MOMENTUM;
    return c;
}

void cnn_optim_override(CnnOptimConfig *base, const CnnOptimConfig *flags, unsigned set)
{
    if (set & CNN_SET_KIND) base->kind = flags->kind;
    if (set & CNN_SET_LR) base->lr = flags->lr;
    if (set & CNN_SET_MOMENTUM) base->momentum = flags->momentum;
    if (set & CNN_SET_BETA1) base->beta1 = flags->beta1;
    if (set & CNN_SET_BETA2) base->beta2 = flags->beta2;
    if (set & CNN_SET_EPS) base->eps = flags->eps;
    /* torch.optim.SGD(momentum=m) is the momentum rule */
    if (base->kind == CNN_OPT_SGD && (set & CNN_SET_MOMENTUM) && base->momentum > 0) base->kind = CNN_OPT_MOMENTUM;
}

bool cnn_optim_alloc(CnnOptim *o, const CnnOptimConfig *cfg, long n, CnnErr *e)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->m = calloc(n ? (size_t)n : 1, sizeof(float));
    o->v = calloc(n ? (size_t)n : 1, sizeof(float));
    if (!o->m || !o->v) {
        cnn_optim_free(o);
        return cnn_fail(e, "out of memory for the optimizer state (%ld floats)", n);
    }
    return true;
}

void cnn_optim_free(CnnOptim *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

static void cnn_sgd_step(long n, float *restrict p, const float *restrict g, float lr)
{
#pragma omp parallel for simd if (parallel: n > 16384) schedule(static)
    for (long i = 0; i < n; i++) p[i] += -lr * g[i];
}

/* The first step copies g into the buffer (torch clones it), which is the
 * general rule with a zero buffer: 0*mom + g = g exactly. */
static void cnn_momentum_step(long n, float *restrict p, const float *restrict g, float *restrict buf,
                              float lr, float mom)
{
#pragma omp parallel for simd if (parallel: n > 16384) schedule(static)
    for (long i = 0; i < n; i++) {
        buf[i] = buf[i] * mom + g[i];
        p[i] += -lr * buf[i];
    }
}

/* The runtime is built for any x86-64, but Adam's square roots and divisions
 * over every parameter are a visible part of a step at SSE width: gcc builds
 * an AVX-512 and an AVX2 copy too and picks one at load time (ifunc).  Each
 * copy computes every element with the same IEEE operations, so results do
 * not depend on the copy.  `simd` makes the loops vector loops even when
 * they run on one thread: `if (parallel: …)` keeps that test off the simd
 * (a plain `if` turned both off, and lenet5's 62 K parameters took 0.21 ms a
 * step in scalar code; 0.06 ms now).  Past 16 K parameters the threads
 * split them (lenet5 at 2 threads: 0.10 ms on one, 0.055 on two). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CNN_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CNN_VECTOR_CLONES
#endif

CNN_VECTOR_CLONES
static void cnn_adam_step(CnnOptim *o, float *p, const float *g)
{
    const CnnOptimConfig *c = &o->cfg;
    double bc1 = 1.0 - pow(c->beta1, (double)o->step);
    double bc2 = 1.0 - pow(c->beta2, (double)o->step);
    float b1 = (float)c->beta1, one_b1 = (float)(1.0 - c->beta1);
    float b2 = (float)c->beta2, one_b2 = (float)(1.0 - c->beta2);
    float bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps, step_size = (float)(c->lr / bc1);
    float *restrict m = o->m, *restrict v = o->v;
    long n = o->n;
#pragma omp parallel for simd if (parallel: n > 16384) schedule(static)
    for (long i = 0; i < n; i++) {
        m[i] = m[i] * b1 + one_b1 * g[i];
        v[i] = v[i] * b2 + one_b2 * (g[i] * g[i]);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
    }
}

void cnn_optim_step(CnnOptim *o, float *params, const float *grads)
{
    o->step++;
    switch (o->cfg.kind) {
    case CNN_OPT_SGD: cnn_sgd_step(o->n, params, grads, (float)o->cfg.lr); break;
    case CNN_OPT_MOMENTUM:
        if (o->step == 1) memset(o->m, 0, (size_t)o->n * sizeof(float));
        cnn_momentum_step(o->n, params, grads, o->m, (float)o->cfg.lr, (float)o->cfg.momentum);
        break;
    case CNN_OPT_ADAM: cnn_adam_step(o, params, grads); break;
    }
}
