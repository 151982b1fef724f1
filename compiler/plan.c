/* plan.c — laying out parameters, activations and scratch (see plan.h).
 *
 * One pass over the checked layers assigns, in order: the output buffer of
 * every layer, argmax indices for max pools, batch statistics for batchnorm,
 * and the parameter tensors with their PyTorch names and layouts.  The
 * activation-gradient buffers are two ping-pong halves, each as large as the
 * largest layer input, since backward needs only dLoss/d(out) and d(in) of
 * one layer at a time. */
#include "plan.h"
#include <ctype.h>
#include <math.h>
#include <string.h>

/* A model whose buffers would pass this is refused before any C is written. */
#define PLAN_MAX_BYTES (64.0 * 1024 * 1024 * 1024)

typedef struct Planner {
    Arena *arena;
    Plan *p;
    int cap;
    PlanLayer *prev;          /* the layer whose output the next layer reads; NULL: the input */
} Planner;

static const char *upper_name(Arena *a, const char *name)
{
    char *s = arena_strndup(a, name, strlen(name));
    for (char *q = s; *q; q++) *q = (char)toupper((unsigned char)*q);
    return s;
}

static PlanTensor *add_tensor(Planner *pl, const char *layer, const char *what, bool trainable, long size)
{
    Plan *p = pl->p;
    PlanTensor *t = &p->tensors[p->ntensors++];
    t->name = arena_printf(pl->arena, "%s.%s", layer, what);
    t->trainable = trainable;
    t->size = size;
    long *total = trainable ? &p->param_floats : &p->stat_floats;
    t->offset = *total;
    *total += size;
    for (int i = 0; i < 4; i++) t->perm[i] = i;
    return t;
}

/* A 1-D tensor [n]: bias, batchnorm vectors. */
static PlanTensor *add_vector(Planner *pl, const char *layer, const char *what, bool trainable, long n,
                              double lo, double hi)
{
    PlanTensor *t = add_tensor(pl, layer, what, trainable, n);
    t->ndim = 1;
    t->shape[0] = n;
    t->view[0] = t->view[1] = t->view[2] = 1;
    t->view[3] = n;
    t->init_lo = lo;
    t->init_hi = hi;
    return t;
}

static void set_perm(PlanTensor *t, int a, int b, int c, int d)
{
    t->perm[0] = a, t->perm[1] = b, t->perm[2] = c, t->perm[3] = d;
}

/* conv: PyTorch [co][ci][kh][kw] -> internal [kh][kw][ci][co], so the
 * innermost loop runs over output channels, contiguous for both weights and
 * NHWC outputs.  deconv: PyTorch [ci][co][kh][kw] -> the same internal order. */
static void plan_conv_weights(Planner *pl, PlanLayer *q)
{
    const Layer *l = q->l;
    bool de = l->kind->tag == LAYER_DECONV;
    long ci = l->in.c, co = l->a.n;
    PlanTensor *w = add_tensor(pl, l->name, "weight", true, ci * co * l->a.kh * l->a.kw);
    w->ndim = 4;
    w->shape[0] = w->view[0] = de ? ci : co;
    w->shape[1] = w->view[1] = de ? co : ci;
    w->shape[2] = w->view[2] = l->a.kh;
    w->shape[3] = w->view[3] = l->a.kw;
    if (de) set_perm(w, 2, 3, 0, 1); else set_perm(w, 2, 3, 1, 0);
    /* PyTorch's default: kaiming_uniform(a=√5) gives U(±1/√fan_in), with
     * fan_in taken from weight.size(1), which is co for ConvTranspose2d. */
    double fan_in = (double)(de ? co : ci) * l->a.kh * l->a.kw;
    w->init_lo = -1 / sqrt(fan_in);
    w->init_hi = 1 / sqrt(fan_in);
    q->weight_off = w->offset;
    if (l->a.bias) q->bias_off = add_vector(pl, l->name, "bias", true, co, w->init_lo, w->init_hi)->offset;
}

/* fc: PyTorch [out][in] -> internal [in][out].  When the input is an image
 * (implicit flatten of NHWC data), PyTorch's `in` index runs C,H,W, so the
 * weight is viewed as [out][C][H][W] and stored [H][W][C][out]. */
static void plan_fc_weights(Planner *pl, PlanLayer *q)
{
    const Layer *l = q->l;
    long in = shape_size(l->in), out = l->a.n;
    PlanTensor *w = add_tensor(pl, l->name, "weight", true, in * out);
    w->ndim = 2;
    w->shape[0] = out;
    w->shape[1] = in;
    bool image = !l->flat_in_chw && (l->in.h > 1 || l->in.w > 1);
    if (image) {
        w->view[0] = out, w->view[1] = l->in.c, w->view[2] = l->in.h, w->view[3] = l->in.w;
        set_perm(w, 2, 3, 1, 0);
    } else {
        w->view[0] = 1, w->view[1] = 1, w->view[2] = out, w->view[3] = in;
        set_perm(w, 0, 1, 3, 2);
    }
    w->init_lo = -1 / sqrt((double)in);
    w->init_hi = 1 / sqrt((double)in);
    q->weight_off = w->offset;
    if (l->a.bias) q->bias_off = add_vector(pl, l->name, "bias", true, out, w->init_lo, w->init_hi)->offset;
}

/* The vector kernels (emit_conv.c) read a zero-padded copy of the input, so
 * no inner loop tests bounds, and compute dL/din from transposed weights. */
static void plan_conv_scratch(Planner *pl, PlanLayer *q)
{
    const Layer *l = q->l;
    Plan *p = pl->p;
    if (l->a.ph || l->a.pw) {
        q->pad_off = p->act_per_image;
        p->act_per_image += (l->in.h + 2L * l->a.ph) * (l->in.w + 2L * l->a.pw) * l->in.c;
    }
    if (q->need_din) {   /* rows of input channels padded to whole vectors of any width (8 or 16) */
        q->wt_off = p->act_fixed;
        p->act_fixed += (long)l->a.kh * l->a.kw * ((l->in.c + 15) / 16 * 16) * l->a.n;
    }
    if (l->a.n % 16 != 0) {   /* room for any vector width the emitter picks: 8 or 16 */
        long ocp = (l->a.n + 15) / 16 * 16;
        q->wpad_off = p->act_fixed;
        p->act_fixed += ((long)l->a.kh * l->a.kw * l->in.c + 1) * ocp;
    }
}

static void plan_batchnorm(Planner *pl, PlanLayer *q)
{
    const Layer *l = q->l;
    long c = l->in.c;
    q->weight_off = add_vector(pl, l->name, "weight", true, c, 1, 1)->offset;
    q->bias_off = add_vector(pl, l->name, "bias", true, c, 0, 0)->offset;
    q->stat_off = add_vector(pl, l->name, "running_mean", false, c, 0, 0)->offset;
    add_vector(pl, l->name, "running_var", false, c, 1, 1);
    q->fixed_off = pl->p->act_fixed;      /* batch mean and 1/std per channel */
    pl->p->act_fixed += 2 * c;
}

/* A relu right after a conv, deconv or fc overwrites that layer's output:
 * their backward passes read their input, never their output, and relu's
 * backward needs only where out > 0 — so keeping both buffers would only
 * cost memory (a quarter of vgg-small's activations). */
static bool relu_in_place(const PlanLayer *prev, const Layer *l)
{
    if (!prev || l->kind->tag != LAYER_RELU) return false;
    LayerTag t = prev->l->kind->tag;
    return t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_FC;
}

static void plan_layer(Planner *pl, PlanLayer *q, const char *in_buf)
{
    Plan *p = pl->p;
    const Layer *l = q->l;
    q->prefix = arena_printf(pl->arena, "%s_", upper_name(pl->arena, l->name));
    q->in_buf = in_buf;
    q->weight_off = q->bias_off = q->stat_off = q->index_off = q->fixed_off = q->pad_off = q->wt_off = -1;
    q->wpad_off = -1;
    q->done_by = NULL;
    q->need_din = l->id > 0;
    /* a folded softmax has no backward: the loss's gradient goes to the layer before it */
    if (q->need_din && !l->folded && shape_size(l->in) > p->dact_per_image) p->dact_per_image = shape_size(l->in);
    if (l->folded) {
        q->out_buf = NULL;
        q->out_off = -1;
        return;
    }
    q->out_buf = arena_printf(pl->arena, "%s_out", l->name);
    if (relu_in_place(pl->prev, l)) {
        q->in_place = true;
        q->out_off = pl->prev->out_off;
        /* conv's tiles apply it as they store: one pass over the output less */
        if (pl->prev->l->kind->tag == LAYER_CONV) {
            pl->prev->fused_relu = true;
            q->done_by = pl->prev->l->name;
        }
    } else {
        q->out_off = p->act_per_image;
        p->act_per_image += shape_size(l->out);
    }
    switch (l->kind->tag) {
    case LAYER_CONV:
        plan_conv_weights(pl, q);
        plan_conv_scratch(pl, q);
        break;
    case LAYER_DECONV: plan_conv_weights(pl, q); break;
    case LAYER_FC: plan_fc_weights(pl, q); break;
    case LAYER_BATCHNORM: plan_batchnorm(pl, q); break;
    case LAYER_MAXPOOL:
        q->index_off = p->index_per_image;
        p->index_per_image += shape_size(l->out);
        break;
    default: break;
    }
}

static double plan_bytes_per_image(const Plan *p)
{
    return 4.0 * ((double)p->act_per_image + 2.0 * p->dact_per_image + p->index_per_image);
}

Plan *plan_model(Arena *a, Diag *d, const Model *m)
{
    Plan *p = ARENA_NEW(a, Plan);
    p->m = m;
    p->nlayers = m->nlayers;
    p->layers = ARENA_ARRAY(a, PlanLayer, m->nlayers);
    p->tensors = ARENA_ARRAY(a, PlanTensor, 4 * m->nlayers + 1);
    Planner pl = {.arena = a, .p = p};
    const char *in = "x";
    for (int i = 0; i < m->nlayers; i++) {
        p->layers[i].l = &m->layers[i];
        plan_layer(&pl, &p->layers[i], in);
        if (p->layers[i].out_buf) {
            in = p->layers[i].out_buf;
            pl.prev = &p->layers[i];
        }
    }
    p->output_buf = in;
    p->dact_per_image *= 2;
    double bytes = plan_bytes_per_image(p) + 4.0 * ((double)p->param_floats * 4 + p->stat_floats);
    if (bytes > PLAN_MAX_BYTES || p->act_per_image > 0x7fffffffL || p->param_floats > 0x7fffffffL)
        diag_error(d, m->input_loc, "this model needs %.1f GiB of buffers for one image (parameters, "
                   "activations, gradients); cnnc refuses models over 64 GiB or 2^31 floats per buffer: "
                   "use a smaller input, fewer channels or more pooling", bytes / (1024.0 * 1024 * 1024));
    return p;
}

PlanMemory plan_memory_inference(const Plan *p)
{
    PlanMemory r = {0};
    r.params = 4.0 * p->param_floats;
    r.stats = 4.0 * p->stat_floats;
    r.acts = 4.0 * ((double)p->act_per_image + p->act_fixed);
    r.index = 4.0 * p->index_per_image;
    r.total = r.params + r.stats + r.acts + r.index;
    return r;
}

PlanMemory plan_memory_training(const Plan *p, int batch)
{
    static const int state_per_param[] = {[OPT_SGD] = 0, [OPT_MOMENTUM] = 1, [OPT_ADAM] = 2};
    PlanMemory r = {0};
    r.params = 4.0 * p->param_floats;
    r.grads = r.params;
    r.optimizer = r.params * state_per_param[p->m->settings.optimizer];
    r.stats = 4.0 * p->stat_floats;
    r.acts = 4.0 * ((double)p->act_per_image * batch + p->act_fixed);
    r.dacts = 4.0 * (double)p->dact_per_image * batch;
    r.index = 4.0 * (double)p->index_per_image * batch;
    r.total = r.params + r.grads + r.optimizer + r.stats + r.acts + r.dacts + r.index;
    return r;
}
