/* weights.c — weights files: the model's tensors, and for --resume the
 * optimizer and training state, in one .npz.
 *
 * Tensors are stored under their state_dict names in PyTorch layout, so
 * `torch.load`-style code can use them directly.  The extra arrays of a file
 * saved by `train --save` (SPEC §3 "Weights files"):
 *     optim.kind                      int64 [1]  0 sgd, 1 momentum, 2 adam
 *     optim.step                      int64 [1]  optimizer steps taken
 *     optim.lr, .momentum, .beta1, .beta2, .eps   float64 [1]
 *     optim.<tensor>.momentum_buffer  (momentum) PyTorch layout, like the tensor
 *     optim.<tensor>.exp_avg, optim.<tensor>.exp_avg_sq   (adam)
 *     train.epoch                     int64 [1]  epochs completed
 *     train.batch_index               int64 [1]  batches done in an interrupted epoch
 *     train.batch, train.shuffle      int64 [1]
 *     train.rng                       uint64 [4] generator state as that epoch began
 * Loading checks every tensor (present, float32 or float64, right shape)
 * before it changes anything. */
#include "rt.h"
#include <stdlib.h>
#include <limits.h>
#include <string.h>

static bool cnn_save_tensor(CnnNpzWriter *w, const CnnTensor *t, const char *name, const float *internal,
                            float *scratch, CnnErr *e)
{
    long shape[CNN_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    cnn_tensor_to_torch(t, internal, scratch);
    return cnn_npz_add(w, name, CNN_F4, t->ndim, shape, scratch, e);
}

static bool cnn_save_i64(CnnNpzWriter *w, const char *name, int64_t v, CnnErr *e)
{
    long one = 1;
    return cnn_npz_add(w, name, CNN_I8, 1, &one, &v, e);
}

static bool cnn_save_f64(CnnNpzWriter *w, const char *name, double v, CnnErr *e)
{
    long one = 1;
    return cnn_npz_add(w, name, CNN_F8, 1, &one, &v, e);
}

static bool cnn_save_optim(CnnNpzWriter *w, const CnnNet *n, const CnnOptim *o, CnnErr *e)
{
    const CnnOptimConfig *c = &o->cfg;
    bool ok = cnn_save_i64(w, "optim.kind", c->kind, e) && cnn_save_i64(w, "optim.step", o->step, e)
              && cnn_save_f64(w, "optim.lr", c->lr, e) && cnn_save_f64(w, "optim.momentum", c->momentum, e)
              && cnn_save_f64(w, "optim.beta1", c->beta1, e) && cnn_save_f64(w, "optim.beta2", c->beta2, e)
              && cnn_save_f64(w, "optim.eps", c->eps, e);
    for (int i = 0; ok && i < n->m->ntensors && o->step > 0 && c->kind != CNN_OPT_SGD; i++) {
        const CnnTensor *t = &n->m->tensors[i];
        char name[CNN_NPY_NAME];
        if (t->role != CNN_TENSOR_PARAM) continue;
        snprintf(name, sizeof name, "optim.%s.%s", t->name, c->kind == CNN_OPT_ADAM ? "exp_avg" : "momentum_buffer");
        ok = cnn_save_tensor(w, t, name, o->m + t->offset, n->scratch, e);
        snprintf(name, sizeof name, "optim.%s.exp_avg_sq", t->name);
        if (ok && c->kind == CNN_OPT_ADAM) ok = cnn_save_tensor(w, t, name, o->v + t->offset, n->scratch, e);
    }
    return ok;
}

static bool cnn_save_train(CnnNpzWriter *w, const CnnTrainState *ts, CnnErr *e)
{
    long four = 4;
    return cnn_save_i64(w, "train.epoch", ts->epoch, e) && cnn_save_i64(w, "train.batch_index", ts->batch_index, e)
           && cnn_save_i64(w, "train.batch", ts->batch, e) && cnn_save_i64(w, "train.shuffle", ts->shuffle, e)
           && cnn_npz_add(w, "train.rng", CNN_U8, 1, &four, ts->rng.s, e);
}

bool cnn_weights_save(const CnnNet *n, const CnnOptim *o, const CnnTrainState *ts, const char *path, CnnErr *e)
{
    CnnNpzWriter w;
    if (!cnn_npz_begin(&w, path, e)) return false;
    bool ok = true;
    for (int i = 0; ok && i < n->m->ntensors; i++) {
        const CnnTensor *t = &n->m->tensors[i];
        ok = cnn_save_tensor(&w, t, t->name, cnn_tensor_data(t, &n->ctx), n->scratch, e);
    }
    if (ok && o) ok = cnn_save_optim(&w, n, o, e);
    if (ok && ts) ok = cnn_save_train(&w, ts, e);
    if (!ok) {
        cnn_npz_abort(&w);
        return false;
    }
    return cnn_npz_commit(&w, e);
}

/* A tensor-shaped array `name` of z, checked. */
static bool cnn_check_array(const CnnNpz *z, const CnnTensor *t, const char *name, const CnnArray **out, CnnErr *e)
{
    char want[64], got[64];
    cnn_tensor_format_shape(t, want, sizeof want);
    const CnnArray *a = cnn_npz_get(z, name);
    if (!a) return cnn_fail(e, "%s: no array %s (the model needs one of shape %s)", z->path, name, want);
    if (a->dtype != CNN_F4 && a->dtype != CNN_F8)
        return cnn_fail(e, "%s: %s has dtype %s; expected float32 ('<f4') or float64", z->path, name, a->descr);
    bool same = a->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = a->shape[d] == t->shape[d];
    if (!same) {
        size_t used = (size_t)snprintf(want, sizeof want, "(");
        for (int d = 0; d < t->ndim; d++)
            used += (size_t)snprintf(want + used, sizeof want - used, d ? ", %d" : "%d", t->shape[d]);
        snprintf(want + used, sizeof want - used, t->ndim == 1 ? ",)" : ")");
        return cnn_fail(e, "%s: %s has shape %s but the model expects %s", z->path, name,
                        cnn_array_shape_str(a, got, sizeof got), want);
    }
    *out = a;
    return true;
}

static void cnn_load_array(const CnnTensor *t, const CnnArray *a, float *internal, float *scratch)
{
    cnn_array_floats(a, scratch);
    cnn_tensor_from_torch(t, scratch, internal);
}

bool cnn_weights_from_npz(CnnNet *n, const CnnNpz *z, CnnErr *e)
{
    const CnnModel *m = n->m;
    const CnnArray *a;
    for (int i = 0; i < m->ntensors; i++)
        if (!cnn_check_array(z, &m->tensors[i], m->tensors[i].name, &a, e)) return false;
    for (int i = 0; i < m->ntensors; i++) {
        const CnnTensor *t = &m->tensors[i];
        cnn_check_array(z, t, t->name, &a, NULL);
        cnn_load_array(t, a, cnn_tensor_data(t, &n->ctx), n->scratch);
    }
    return true;
}

bool cnn_weights_load(CnnNet *n, const char *path, CnnErr *e)
{
    CnnNpz z;
    if (!cnn_npz_load(&z, path, e)) return false;
    bool ok = cnn_weights_from_npz(n, &z, e);
    cnn_npz_free(&z);
    return ok;
}

static bool cnn_get_int(const CnnNpz *z, const char *name, int64_t *v)
{
    const CnnArray *a = cnn_npz_get(z, name);
    return a && a->count == 1 && cnn_array_ints(a, v);
}

static bool cnn_get_double(const CnnNpz *z, const char *name, double *v)
{
    const CnnArray *a = cnn_npz_get(z, name);
    if (!a || a->count != 1) return false;
    if (a->dtype == CNN_F8) memcpy(v, a->data, 8);
    else if (a->dtype == CNN_F4) {
        float f;
        memcpy(&f, a->data, 4);
        *v = f;
    } else return false;
    return true;
}

bool cnn_state_config(const CnnNpz *z, CnnOptimConfig *cfg, int64_t *batch)
{
    int64_t kind, b;
    if (!cnn_get_int(z, "optim.kind", &kind) || kind < 0 || kind > CNN_OPT_ADAM) return false;
    CnnOptimConfig c = {.kind = (CnnOptimizer)kind};
    if (!cnn_get_double(z, "optim.lr", &c.lr) || !cnn_get_double(z, "optim.momentum", &c.momentum)
        || !cnn_get_double(z, "optim.beta1", &c.beta1) || !cnn_get_double(z, "optim.beta2", &c.beta2)
        || !cnn_get_double(z, "optim.eps", &c.eps) || !cnn_get_int(z, "train.batch", &b) || b < 1 || b > INT_MAX)
        return false;
    *cfg = c;
    *batch = b;
    return true;
}

/* The optimizer buffers of every parameter tensor, when the step count says
 * there are any. */
static bool cnn_state_buffers(const CnnNet *n, const CnnNpz *z, CnnOptim *o, CnnErr *e)
{
    const CnnModel *m = n->m;
    for (int pass = 0; pass < 2; pass++)        /* check all, then load all */
        for (int i = 0; i < m->ntensors && o->step > 0 && o->cfg.kind != CNN_OPT_SGD; i++) {
            const CnnTensor *t = &m->tensors[i];
            const CnnArray *a;
            char name[CNN_NPY_NAME];
            if (t->role != CNN_TENSOR_PARAM) continue;
            for (int k = 0; k < (o->cfg.kind == CNN_OPT_ADAM ? 2 : 1); k++) {
                snprintf(name, sizeof name, "optim.%s.%s", t->name,
                         o->cfg.kind == CNN_OPT_MOMENTUM ? "momentum_buffer" : k ? "exp_avg_sq" : "exp_avg");
                if (!cnn_check_array(z, t, name, &a, e)) return false;
                if (pass == 1) cnn_load_array(t, a, (k ? o->v : o->m) + t->offset, n->scratch);
            }
        }
    return true;
}

bool cnn_state_from_npz(const CnnNet *n, const CnnNpz *z, CnnOptim *o, CnnTrainState *ts, CnnErr *e)
{
    const CnnArray *rng = cnn_npz_get(z, "train.rng");
    int64_t step, batch;
    CnnOptimConfig cfg;
    if (!cnn_state_config(z, &cfg, &batch) || !cnn_get_int(z, "optim.step", &step) || step < 0
        || !cnn_get_int(z, "train.epoch", &ts->epoch) || !cnn_get_int(z, "train.batch_index", &ts->batch_index)
        || !cnn_get_int(z, "train.shuffle", &ts->shuffle) || !rng || rng->count != 4
        || (rng->dtype != CNN_U8 && rng->dtype != CNN_I8)
        || ts->epoch < 0 || ts->epoch >= INT_MAX || ts->batch_index < 0)   /* epochs are ints */
        return cnn_fail(e, "%s: no usable training state (optim.*, train.*); was it saved by train --save?", z->path);
    ts->batch = batch;
    memcpy(ts->rng.s, rng->data, sizeof ts->rng.s);   /* uint64 words, bit for bit */
    o->cfg = cfg;
    o->step = step;
    return cnn_state_buffers(n, z, o, e);
}
