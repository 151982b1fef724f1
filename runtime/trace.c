/* trace.c — `trace`: one batch through the model, every number dumped, for
 * the PyTorch differential tests (tests/ref/).  This is a contract:
 *
 *   EXE trace --init W.npz --batch B.npz --steps N --out T.npz
 *             [--optimizer sgd|momentum|adam] [--lr X] [--momentum X]
 *             [--beta1 X] [--beta2 X] [--eps X]
 *
 * B.npz: `x` float32 [B,H,W,C]; `y` int64/int32 [B] class labels
 * (cross-entropy, or one-hot targets for MSE/BCE) or float32 [B,outputs]
 * targets.  Training mode, dropout seed 0.  T.npz receives
 *   output        float32 [B,outputs]   the first forward's output
 *   loss          float32 [1]           its loss
 *   grad.<name>   every trainable tensor's gradient, PyTorch layout
 *   grad.input    dLoss/dx of the first backward, [B,H,W,C] like x
 * With --eval: inference mode (running statistics, no dropout), forward
 * only: output, loss and the unchanged tensors as after.*; no gradients.
 *   after.<name>  every tensor (trainable and statistics) after N steps
 *   losses        float32 [N]           the loss each step computed
 * The N steps are what a PyTorch loop of N x (zero_grad, forward, loss,
 * backward, step) does from the loaded weights; step 1 reuses the first
 * forward and backward, so batchnorm statistics see exactly N forwards
 * (one when N = 0). */
#include "rt.h"
#include <stdlib.h>
#include <string.h>

typedef struct CnnTrace {
    CnnNet net;
    CnnOptim opt;
    CnnNpz batch;
    int b;
    float *target;     /* [b][outputs] when y holds targets */
    float *output;     /* [b][outputs] the first forward's output */
    float *grads;      /* [param_floats] the first backward's gradient */
    float *dinput;     /* [b][in_h][in_w][in_c] the first backward's dLoss/dx */
    float *losses;     /* [max(steps, 1)] */
    bool eval;         /* inference mode: forward only */
} CnnTrace;

static bool cnn_trace_x(CnnTrace *t, const CnnModel *m, CnnErr *e)
{
    char got[64];
    const CnnArray *x = cnn_npz_get(&t->batch, "x");
    if (!x) return cnn_fail(e, "%s: no array x", t->batch.path);
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] != m->in_h || x->shape[2] != m->in_w || x->shape[3] != m->in_c)
        return cnn_fail(e, "%s: x has shape %s but model %s takes (B, %d, %d, %d)", t->batch.path,
                        cnn_array_shape_str(x, got, sizeof got), m->name, m->in_h, m->in_w, m->in_c);
    if (x->dtype != CNN_F4 && x->dtype != CNN_F8) return cnn_fail(e, "%s: x must be float32", t->batch.path);
    t->b = (int)x->shape[0];
    return true;
}

/* y: labels [B] (any integer dtype) or targets [B, outputs] (float). */
static bool cnn_trace_y(CnnTrace *t, const CnnModel *m, CnnErr *e)
{
    char got[64];
    const CnnArray *y = cnn_npz_get(&t->batch, "y");
    if (!y) return cnn_fail(e, "%s: no array y", t->batch.path);
    if (y->ndim == 2 && y->shape[0] == t->b && y->shape[1] == m->outputs && m->loss != CNN_LOSS_CROSSENTROPY
        && (y->dtype == CNN_F4 || y->dtype == CNN_F8)) {
        t->target = malloc((size_t)y->count * sizeof(float));
        return t->target ? cnn_array_floats(y, t->target) : cnn_fail(e, "out of memory");
    }
    int64_t *labels = malloc((size_t)t->b * sizeof *labels);
    bool ok = labels && y->ndim == 1 && y->shape[0] == t->b && cnn_array_ints(y, labels);
    for (int i = 0; ok && i < t->b; i++) {
        ok = labels[i] >= 0 && labels[i] < cnn_model_classes(m);
        t->net.label[i] = (int32_t)labels[i];
    }
    free(labels);
    if (!ok)
        return cnn_fail(e, "%s: y (shape %s, %s) must be integer labels 0..%d of shape (%d,)%s", t->batch.path,
                        cnn_array_shape_str(y, got, sizeof got), y->descr, cnn_model_classes(m) - 1, t->b,
                        m->loss == CNN_LOSS_CROSSENTROPY ? "" : " or float targets (B, outputs)");
    return true;
}

static bool cnn_trace_setup(CnnTrace *t, const CnnModel *m, const char *init, const char *batch, int steps,
                            const CnnOptimConfig *opt, unsigned set, CnnErr *e)
{
    if (!cnn_npz_load(&t->batch, batch, e) || !cnn_trace_x(t, m, e) || !cnn_net_alloc(&t->net, m, t->b, e)
        || !cnn_trace_y(t, m, e) || !cnn_weights_load(&t->net, init, e))
        return false;
    cnn_array_floats(cnn_npz_get(&t->batch, "x"), t->net.x);
    CnnOptimConfig cfg = cnn_optim_defaults(m);
    cnn_optim_override(&cfg, opt, set);
    t->output = malloc((size_t)t->b * m->outputs * sizeof(float));
    t->grads = malloc((size_t)(m->param_floats + 1) * sizeof(float));
    t->losses = malloc((size_t)(steps > 0 ? steps : 1) * sizeof(float));
    t->dinput = malloc((size_t)t->b * cnn_model_in_floats(m) * sizeof(float));
    if (!t->output || !t->grads || !t->losses || !t->dinput) return cnn_fail(e, "out of memory");
    return cnn_optim_alloc(&t->opt, &cfg, m->param_floats, e);
}

static float cnn_trace_pass(CnnTrace *t, bool first)
{
    CnnNet *n = &t->net;
    const float *out = n->m->forward(&n->ctx, n->x);
    double loss = cnn_loss(n->m, out, n->label, t->target, t->b, n->dout, NULL);
    if (!t->eval) n->m->backward(&n->ctx, n->x, n->dout);
    if (first) memcpy(t->output, out, (size_t)t->b * n->m->outputs * sizeof(float));
    return (float)loss;
}

static void cnn_trace_run(CnnTrace *t, int steps)
{
    CnnCtx *c = &t->net.ctx;
    c->batch = t->b;
    c->training = !t->eval;
    c->seed = 0;
    c->dinput = t->dinput;     /* only the first backward: the course's dL/dX */
    t->losses[0] = cnn_trace_pass(t, true);
    c->dinput = NULL;
    memcpy(t->grads, c->grads, (size_t)t->net.m->param_floats * sizeof(float));
    for (int s = 0; s < steps; s++) {
        if (s > 0) t->losses[s] = cnn_trace_pass(t, false);
        cnn_optim_step(&t->opt, c->params, c->grads);
    }
}

static bool cnn_trace_write(CnnTrace *t, const char *path, int steps, CnnErr *e)
{
    const CnnModel *m = t->net.m;
    CnnNpzWriter w;
    long oshape[2] = {t->b, m->outputs}, one = 1, nsteps = steps;
    long xshape[4] = {t->b, m->in_h, m->in_w, m->in_c};
    if (!cnn_npz_begin(&w, path, e)) return false;
    bool ok = cnn_npz_add(&w, "output", CNN_F4, 2, oshape, t->output, e)
              && (t->eval || cnn_npz_add(&w, "grad.input", CNN_F4, 4, xshape, t->dinput, e))
              && cnn_npz_add(&w, "loss", CNN_F4, 1, &one, t->losses, e)
              && cnn_npz_add(&w, "losses", CNN_F4, 1, &nsteps, t->losses, e);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; ok && i < m->ntensors; i++) {
            const CnnTensor *tn = &m->tensors[i];
            char name[CNN_NPY_NAME];
            long shape[CNN_MAX_DIMS];
            for (int d = 0; d < tn->ndim; d++) shape[d] = tn->shape[d];
            if (pass == 0 && (tn->role != CNN_TENSOR_PARAM || t->eval)) continue;
            snprintf(name, sizeof name, "%s.%s", pass ? "after" : "grad", tn->name);
            cnn_tensor_to_torch(tn, pass ? cnn_tensor_data(tn, &t->net.ctx) : t->grads + tn->offset, t->net.scratch);
            ok = cnn_npz_add(&w, name, CNN_F4, tn->ndim, shape, t->net.scratch, e);
        }
    if (!ok) {
        cnn_npz_abort(&w);
        return false;
    }
    return cnn_npz_commit(&w, e);
}

int cnn_trace(const CnnModel *m, const char *init, const char *batch_file, int steps, const char *out,
              const CnnOptimConfig *opt, unsigned opt_set, bool eval)
{
    CnnTrace t = {.eval = eval};
    CnnErr e;
    bool ok = cnn_trace_setup(&t, m, init, batch_file, steps, opt, opt_set, &e);
    if (ok) {
        cnn_trace_run(&t, steps);
        ok = cnn_trace_write(&t, out, steps, &e);
    }
    if (!ok) cnn_print_error(&e);
    cnn_npz_free(&t.batch);
    cnn_net_free(&t.net);
    cnn_optim_free(&t.opt);
    free(t.target);
    free(t.output);
    free(t.grads);
    free(t.dinput);
    free(t.losses);
    return ok ? 0 : 1;
}
