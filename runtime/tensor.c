/* tensor.c — the model descriptor's tensors: sanity checks and layouts.
 *
 * A weights file holds every tensor in PyTorch's layout; the generated code
 * keeps it in whatever layout its kernels like.  cnnrt.h describes the link
 * with `view` (the PyTorch tensor seen as 4-D) and `perm` (internal dim d is
 * view dim perm[d]).  Everything that crosses that boundary — loading,
 * saving, init, gradient-check reports — goes through this file. */
#include "rt.h"
#include <stdarg.h>
#include <string.h>

bool cnn_fail(CnnErr *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return false;
}

long cnn_model_in_floats(const CnnModel *m) { return (long)m->in_h * m->in_w * m->in_c; }

int cnn_model_classes(const CnnModel *m) { return m->outputs == 1 ? 2 : m->outputs; }

float *cnn_tensor_data(const CnnTensor *t, const CnnCtx *c)
{
    return (t->role == CNN_TENSOR_PARAM ? c->params : c->stats) + t->offset;
}

long cnn_model_max_tensor(const CnnModel *m)
{
    long max = 1;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].size > max) max = m->tensors[i].size;
    return max;
}

static long cnn_product(const int *d, int n)
{
    long p = 1;
    for (int i = 0; i < n; i++) p *= d[i];
    return p;
}

static bool cnn_tensor_validate(const CnnModel *m, const CnnTensor *t, CnnErr *e)
{
    if (!t->name || !*t->name) return cnn_fail(e, "model %s: a tensor has no name", m->name);
    if (t->ndim < 1 || t->ndim > CNN_MAX_DIMS)
        return cnn_fail(e, "model %s: tensor %s has rank %d", m->name, t->name, t->ndim);
    bool seen[CNN_MAX_DIMS] = {false};
    for (int d = 0; d < CNN_MAX_DIMS; d++) {
        int p = t->perm[d];
        if (p < 0 || p >= CNN_MAX_DIMS || seen[p])
            return cnn_fail(e, "model %s: tensor %s: perm is not a permutation", m->name, t->name);
        seen[p] = true;
        if (t->view[d] < 1 || (d < t->ndim && t->shape[d] < 1))
            return cnn_fail(e, "model %s: tensor %s has an empty dimension", m->name, t->name);
    }
    if (cnn_product(t->shape, t->ndim) != t->size || cnn_product(t->view, CNN_MAX_DIMS) != t->size)
        return cnn_fail(e, "model %s: tensor %s: shape, view and size disagree", m->name, t->name);
    long limit = t->role == CNN_TENSOR_PARAM ? m->param_floats : m->stat_floats;
    if (t->offset < 0 || t->offset + t->size > limit)
        return cnn_fail(e, "model %s: tensor %s lies outside its buffer", m->name, t->name);
    return true;
}

static bool cnn_tensors_overlap(const CnnTensor *a, const CnnTensor *b)
{
    return a->role == b->role && a->offset < b->offset + b->size && b->offset < a->offset + a->size;
}

bool cnn_model_validate(const CnnModel *m, CnnErr *e)
{
    if (m->in_h < 1 || m->in_w < 1 || m->in_c < 1 || m->outputs < 1 || !m->forward || !m->backward
        || m->ntensors < 0 || (m->ntensors > 0 && !m->tensors))
        return cnn_fail(e, "model %s: the descriptor is incomplete", m->name ? m->name : "?");
    for (int i = 0; i < m->ntensors; i++) {
        if (!cnn_tensor_validate(m, &m->tensors[i], e)) return false;
        for (int j = 0; j < i; j++) {
            if (strcmp(m->tensors[i].name, m->tensors[j].name) == 0)
                return cnn_fail(e, "model %s: two tensors are named %s", m->name, m->tensors[i].name);
            if (cnn_tensors_overlap(&m->tensors[i], &m->tensors[j]))
                return cnn_fail(e, "model %s: tensors %s and %s overlap", m->name,
                                m->tensors[j].name, m->tensors[i].name);
        }
    }
    return true;
}

/* Internal flat index k -> the matching flat index of the PyTorch view:
 * unravel k over the internal dims (view[perm[d]]), put index d at view
 * position perm[d], ravel over view. */
long cnn_tensor_torch_offset(const CnnTensor *t, long k)
{
    long j[CNN_MAX_DIMS];
    for (int d = CNN_MAX_DIMS - 1; d >= 0; d--) {
        long n = t->view[t->perm[d]];
        j[t->perm[d]] = k % n;
        k /= n;
    }
    long off = 0;
    for (int d = 0; d < CNN_MAX_DIMS; d++) off = off * t->view[d] + j[d];
    return off;
}

/* Strides of the view, indexed by internal dim: walking the internal array
 * in order, the view offset moves by vstride[perm[d]] along dim d. */
static void cnn_tensor_walk(const CnnTensor *t, long *n, long *stride)
{
    long vstride[CNN_MAX_DIMS];
    vstride[CNN_MAX_DIMS - 1] = 1;
    for (int d = CNN_MAX_DIMS - 2; d >= 0; d--) vstride[d] = vstride[d + 1] * t->view[d + 1];
    for (int d = 0; d < CNN_MAX_DIMS; d++) {
        n[d] = t->view[t->perm[d]];
        stride[d] = vstride[t->perm[d]];
    }
}

void cnn_tensor_to_torch(const CnnTensor *t, const float *internal, float *torch)
{
    long n[4], s[4], k = 0;
    cnn_tensor_walk(t, n, s);
    for (long a = 0; a < n[0]; a++)
        for (long b = 0; b < n[1]; b++)
            for (long c = 0; c < n[2]; c++)
                for (long d = 0; d < n[3]; d++)
                    torch[a * s[0] + b * s[1] + c * s[2] + d * s[3]] = internal[k++];
}

void cnn_tensor_from_torch(const CnnTensor *t, const float *torch, float *internal)
{
    long n[4], s[4], k = 0;
    cnn_tensor_walk(t, n, s);
    for (long a = 0; a < n[0]; a++)
        for (long b = 0; b < n[1]; b++)
            for (long c = 0; c < n[2]; c++)
                for (long d = 0; d < n[3]; d++)
                    internal[k++] = torch[a * s[0] + b * s[1] + c * s[2] + d * s[3]];
}

void cnn_tensor_format_index(const CnnTensor *t, long off, char *buf, size_t n)
{
    long idx[CNN_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = off % t->shape[d];
        off /= t->shape[d];
    }
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? ",%ld" : "%ld", idx[d]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

void cnn_tensor_format_shape(const CnnTensor *t, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < t->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? "x%d" : "%d", t->shape[d]);
}
