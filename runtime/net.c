/* net.c — one model's buffers, allocated once.
 *
 * Every step of training, evaluation and gradient checking reuses these; no
 * step allocates.  The sizes come from the descriptor (cnnrt.h): parameters,
 * gradients and statistics once, activations per image times max_batch plus
 * the fixed per-batch scratch. */
#include "rt.h"
#include <stdlib.h>
#include <string.h>

/* Zeroed memory with an overflow check: n * size must fit, and zero asks for
 * one element so that a model without, say, statistics still gets a pointer.
 * It starts on a cache line: the generated kernels' 16-float loads of a
 * buffer whose offsets are multiples of 16 floats (every layer's batch of 64,
 * 16-channel pixels) then never straddle two lines, as they all did from
 * calloc, whose large blocks start 16 bytes past a line (a split load costs
 * two; vgg-small's training at 1 thread: best of 5, 1,005 → 1,029 img/s). */
static void *cnn_zalloc(long n, size_t size)
{
    if (n < 0 || (size_t)n > SIZE_MAX / size / 2) return NULL;
    size_t bytes = ((n ? (size_t)n : 1) * size + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

bool cnn_net_alloc(CnnNet *n, const CnnModel *m, int max_batch, CnnErr *e)
{
    memset(n, 0, sizeof *n);
    if (!cnn_model_validate(m, e)) return false;
    if (max_batch < 1) return cnn_fail(e, "the batch size must be at least 1");
    n->m = m;
    CnnCtx *c = &n->ctx;
    c->max_batch = max_batch;
    c->batch = max_batch;
    c->params = cnn_zalloc(m->param_floats, sizeof(float));
    c->grads = cnn_zalloc(m->param_floats, sizeof(float));
    c->stats = cnn_zalloc(m->stat_floats, sizeof(float));
    c->acts = cnn_zalloc(m->act_floats_per_image * max_batch + m->act_floats_fixed, sizeof(float));
    c->dacts = cnn_zalloc(m->dact_floats_per_image * max_batch, sizeof(float));
    c->index = cnn_zalloc(m->index_per_image * max_batch, sizeof(int32_t));
    n->x = cnn_zalloc(cnn_model_in_floats(m) * max_batch, sizeof(float));
    n->label = cnn_zalloc(max_batch, sizeof(int32_t));
    n->dout = cnn_zalloc((long)m->outputs * max_batch, sizeof(float));
    /* staging for weights files and traces only: calloc's pages stay untouched (and out of the
       resident set: vgg-small's is 8 MiB) until a file is read or written */
    n->scratch = calloc((size_t)(2 * cnn_model_max_tensor(m)) + 1, sizeof(float));
    if (!c->params || !c->grads || !c->stats || !c->acts || !c->dacts || !c->index || !n->x
        || !n->label || !n->dout || !n->scratch) {
        cnn_net_free(n);
        return cnn_fail(e, "out of memory for model %s at batch %d", m->name, max_batch);
    }
    return true;
}

void cnn_net_free(CnnNet *n)
{
    free(n->ctx.params);
    free(n->ctx.grads);
    free(n->ctx.stats);
    free(n->ctx.acts);
    free(n->ctx.dacts);
    free(n->ctx.index);
    free(n->x);
    free(n->label);
    free(n->dout);
    free(n->scratch);
    memset(n, 0, sizeof *n);
}

void cnn_net_init(CnnNet *n, CnnRng *r)
{
    for (int i = 0; i < n->m->ntensors; i++) {
        const CnnTensor *t = &n->m->tensors[i];
        float *torch = n->scratch;
        for (long k = 0; k < t->size; k++)
            torch[k] = t->init_lo == t->init_hi
                           ? t->init_lo
                           : (float)(t->init_lo + (t->init_hi - (double)t->init_lo) * cnn_rng_uniform(r));
        cnn_tensor_from_torch(t, torch, cnn_tensor_data(t, &n->ctx));
    }
}
