/* plan.c — laying out parameters, activations and scratch (see plan.h).
 *
 * One pass over the checked layers assigns the parameter tensors with their
 * PyTorch names and layouts, argmax indices for max pools, batch statistics
 * for batchnorm, and asks for the per-image buffers: every layer's output,
 * each padded conv input, each layer's dLoss/d(in).  A second pass finds,
 * for every buffer, the first and last step of a training step (forward
 * layer by layer, the loss, backward in reverse) that touches it, and packs
 * the buffers into one arena so that two whose steps do not overlap share
 * floats: a gradient takes the place of activations backward no longer
 * needs.  Which inputs and outputs a backward pass reads (backward_reads) is
 * what decides how long an activation lives; emit_backward_open checks that
 * the emitters read no more than that. */
#include "plan.h"
#include "summary.h"
#include "tiles.h"
#include <ctype.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

/* A model whose buffers would pass this is refused before any C is written. */
#define PLAN_MAX_BYTES (64.0 * 1024 * 1024 * 1024)

/* One per-image buffer: its floats per image, the first and last step that
 * touch it (forward of layer i: i; the loss: n; backward of layer i: 2n − i),
 * and the offset packing gives it. */
typedef struct Lifetime {
    long size;
    int first, last;
    long off;
} Lifetime;

typedef struct Planner {
    Arena *arena;
    Plan *p;
    PlanLayer *prev;          /* the layer whose output the next layer reads; NULL: the input */
    Lifetime *life;
    int nlife;
    int *out_life, *pad_life, *din_life;   /* per layer: its buffers' lifetimes, -1 for none */
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

static int new_lifetime(Planner *pl, long size)
{
    pl->life[pl->nlife] = (Lifetime){.size = size, .first = -1, .last = -1};
    return pl->nlife++;
}

/* With stride 1, dL/din is gathered per input pixel (emit_conv_tiled.c), from
 * each image's dL/dout copied into a zero-margined stack buffer: that needs
 * padding within the kernel's reach and at most PLAN_STACK_BUFFER_MAX_BYTES. */
static long conv_dpad_floats(const Layer *l)
{
    return (l->in.h + (long)(l->a.kh - 1) * l->a.dh) * (l->in.w + (long)(l->a.kw - 1) * l->a.dw) * l->a.n;
}

static bool conv_din_gathers(const PlanLayer *q)
{
    const Layer *l = q->l;
    return q->need_din && l->a.sh == 1 && l->a.sw == 1 && l->a.ph <= (l->a.kh - 1) * l->a.dh &&
           l->a.pw <= (l->a.kw - 1) * l->a.dw && conv_dpad_floats(l) * 4 <= PLAN_STACK_BUFFER_MAX_BYTES;
}

/* With a stride, the input pixels of one phase (iy mod SH, ix mod SW) take
 * the same taps, from consecutive output pixels (emit_conv_tiled.c: the phase
 * gather): each image's dL/dout is copied into a stack buffer with zero
 * columns on both sides, plan_phase_dpad_left to the left of output column 0
 * and room up to the last column a pixel reaches; rows outside the output are
 * taps that are skipped.  Input column ix reads output column
 * (ix + PW − kx·DW)/SW at the taps where SW divides that, down to
 * −⌊((KW−1)·DW − PW)/SW⌋ (ix = 0, the multiples of SW at or above
 * PW − (KW−1)·DW), up to ⌊(IW−1+PW)/SW⌋ (kx = 0).  Not where the windows do
 * not overlap (stride ≥ kernel, no dilation): each phase then has one tap,
 * which the windows path writes directly. */
long plan_phase_dpad_left(const Layer *l)
{
    long reach = (long)(l->a.kw - 1) * l->a.dw - l->a.pw;
    return reach > 0 ? reach / l->a.sw : 0;
}

long plan_phase_dpad_width(const Layer *l)
{
    long last = (l->in.w - 1 + l->a.pw) / l->a.sw;   /* the last output column any tap reads */
    return plan_phase_dpad_left(l) + (last + 1 > l->out.w ? last + 1 : l->out.w);
}

static bool conv_din_phases(const PlanLayer *q)
{
    const Layer *l = q->l;
    bool strided = l->a.sh > 1 || l->a.sw > 1;
    bool windows = l->a.sh >= l->a.kh && l->a.sw >= l->a.kw && l->a.dh == 1 && l->a.dw == 1;
    return q->need_din && strided && !windows &&
           l->out.h * plan_phase_dpad_width(l) * l->a.n * 4 <= PLAN_STACK_BUFFER_MAX_BYTES;
}

/* Winograd F(m×m, 3×3) (Lavin and Gray, 2016) computes each m×m block of
 * outputs from an (m+2)×(m+2) window of the input with (m+2)² multiplications
 * per channel pair instead of 9m²: 16 instead of 36 for m = 2, 36 instead of
 * 144 for m = 4.  It fits a 3×3 conv with stride 1, padding 1 and no
 * dilation (so the output has the input's size), an output whose sides m
 * divides, and channels in whole 16-float vectors; dL/din is then the same kind of
 * convolution (of dL/dout with the rotated kernel), gathered like
 * conv_din_gathers's, and dL/dweight has a Winograd form too.  The emitter
 * may still choose the direct kernels (emit_conv_winograd.c:
 * emit_conv_winograd). */
static int plan_conv_winograd(const PlanLayer *q, int largest)
{
    const LayerArgs *a = &q->l->a;
    const Layer *l = q->l;
    bool fits = a->kh == 3 && a->kw == 3 && a->sh == 1 && a->sw == 1 && a->ph == 1 && a->pw == 1 && a->dh == 1 &&
                a->dw == 1 && !a->flip && l->in.c % 16 == 0 && l->out.c % 16 == 0 && (!q->need_din || q->din_gather);
    if (!fits || largest < 2) return 0;
    if (largest >= 4 && l->out.h % 4 == 0 && l->out.w % 4 == 0) return 4;
    return l->out.h % 2 == 0 && l->out.w % 2 == 0 ? 2 : 0;
}

/* Few input and output channels, stride 1 along rows: the forward may run
 * in vectors over output pixels (emit_conv_tiled.c: forward_by_pixels, which
 * also asks the machine's vectors), from channel planes of the padded copy. */
static bool conv_pixels_fit(const Layer *l)
{
    return l->a.sw == 1 && l->a.dw == 1 && l->in.c <= PLAN_PIXELS_MAX_IN && l->a.n <= PLAN_PIXELS_MAX_OUT &&
           l->out.w >= PLAN_PIXEL_VECTOR;
}

/* Whether a padded conv's kernels test the image's edges instead of reading
 * a zero-padded copy of the input: where nothing else needs that copy (the
 * pixel forward reads it; the direct gathering dL/din, the mask of the relu
 * before, which then comes from the input itself) and dL/dweight's per-image
 * copy fits a thread's stack.  Writing the copy cost the assignment's conv2 a
 * quarter of its forward: the batch's copies are fresh memory, 1 MiB; and
 * vgg-small's Winograd conv2 and conv4 forward 9% and 7% (their kernels test
 * the edge tiles' windows, as dL/din's did before). */
static bool conv_margin_free(const PlanLayer *q)
{
    const Layer *l = q->l;
    return (l->a.ph || l->a.pw) && (q->wino_m || !q->din_gather) && !q->pixels_fit &&
           4L * padded_in_floats(l) <= PLAN_STACK_BUFFER_MAX_BYTES;   /* dL/dweight's copy */
}

/* The vector kernels (emit_conv_tiled.c) read a zero-padded copy of the
 * input, so no inner loop tests bounds (unless margin_free), and compute
 * dL/din from transposed weights. */
static void plan_conv_scratch(Planner *pl, PlanLayer *q)
{
    const Layer *l = q->l;
    Plan *p = pl->p;
    q->din_gather = conv_din_gathers(q);
    q->din_phases = conv_din_phases(q);
    q->wino_m = plan_conv_winograd(q, p->options.winograd);
    q->pixels_fit = conv_pixels_fit(l);
    q->margin_free = conv_margin_free(q);
    if ((l->a.ph || l->a.pw) && !q->margin_free) {
        q->pad_off = 0;     /* packed later */
        pl->pad_life[l->id] = new_lifetime(pl, padded_in_floats(l));
    }
    /* The direct dL/din reads the weights transposed (rows of input channels
     * padded to whole vectors of any width, 8 or 16); the Winograd kernels
     * keep their transformed weights and dL/dweight's sums.  The emitter
     * takes one or the other for a layer, so the two share floats. */
    long wt = q->need_din ? (long)l->a.kh * l->a.kw * ((l->in.c + 15) / 16 * 16) * l->a.n : 0;
    long wino = q->wino_m ? (q->wino_m + 2L) * (q->wino_m + 2) * l->in.c * l->a.n : 0;
    if (wt) q->wt_off = p->act_fixed;
    if (wino) q->wino_off = p->act_fixed;
    p->act_fixed += wt > wino ? wt : wino;
    /* dL/dweight's chunks past the first (PLAN_GRAD_CHUNKS): direct weights or Winograd's M, and bias */
    long wsum = (long)l->a.kh * l->a.kw * l->in.c * l->a.n;
    if (wino > wsum) wsum = wino;
    long part = (PLAN_GRAD_CHUNKS - 1) * (wsum + l->a.n);
    /* or, by window rows, every chunk's sums [KH][OC][a window row in whole vectors], then dL/dbias's;
       where a window row fills 16-float vectors better than the output channels do (needed for the
       emitter to take it, whatever vectors the channels get) */
    long row = (long)l->a.kw * l->in.c, v = PLAN_ROW_VECTOR;
    long row_lanes = (row + v - 1) / v * v, oc_lanes = (l->a.n + v - 1) / v * v;
    q->rows_fit = q->margin_free && conv_merges_taps(l) && row <= v * PLAN_ROW_VECTORS && row * oc_lanes > l->a.n * row_lanes;
    long rows = PLAN_GRAD_CHUNKS * (long)l->a.kh * l->a.n * row_lanes + (PLAN_GRAD_CHUNKS - 1) * l->a.n;
    if (q->rows_fit && rows > part) part = rows;
    q->wpart_off = p->act_fixed;
    p->act_fixed += part;
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

/* A relu right after a conv, deconv, fc or batchnorm overwrites that layer's
 * output: their backward passes read their input, never their output, and
 * relu's backward needs only where out > 0 — so keeping both buffers would
 * only cost memory (a quarter of vgg-small's activations). */
static bool relu_in_place(const PlanLayer *prev, const Layer *l)
{
    if (!prev || l->kind->tag != LAYER_RELU) return false;
    LayerTag t = prev->l->kind->tag;
    return t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_FC || t == LAYER_BATCHNORM;
}

static void plan_layer(Planner *pl, PlanLayer *q, const char *in_buf)
{
    Plan *p = pl->p;
    const Layer *l = q->l;
    q->prefix = arena_printf(pl->arena, "%s_", upper_name(pl->arena, l->name));
    q->in_buf = in_buf;
    q->weight_off = q->bias_off = q->stat_off = q->index_off = q->fixed_off = q->pad_off = q->wt_off = -1;
    q->wpad_off = q->din_off = q->wino_off = q->wpart_off = -1;
    q->wino_m = 0;
    q->producer = pl->prev ? pl->prev->l->id : -1;
    q->done_by = q->mask_by = NULL;
    q->pool_after = q->pooled_by = NULL;
    q->out_unstored = false;
    q->need_din = l->id > 0;
    if (l->folded) {   /* a folded softmax has no backward: the loss's gradient goes to the layer before it */
        q->out_buf = NULL;
        q->out_off = -1;
        return;
    }
    q->out_buf = arena_printf(pl->arena, "%s_out", l->name);
    if (relu_in_place(pl->prev, l)) {
        q->in_place = true;
        pl->out_life[l->id] = pl->out_life[pl->prev->l->id];
        /* conv's tiles and batchnorm's normalizing pass apply it as they store: one pass over the
           output less */
        LayerTag t = pl->prev->l->kind->tag;
        if (t == LAYER_CONV || t == LAYER_BATCHNORM) {
            pl->prev->fused_relu = true;
            q->done_by = pl->prev->l->name;
        }
    } else {
        pl->out_life[l->id] = new_lifetime(pl, shape_size(l->out));
    }
    switch (l->kind->tag) {
    case LAYER_CONV:
        plan_conv_weights(pl, q);
        plan_conv_scratch(pl, q);
        break;
    case LAYER_DECONV: plan_conv_weights(pl, q); break;
    case LAYER_FC:
        plan_fc_weights(pl, q);
        if (q->need_din && l->a.n <= PLAN_FC_DIN_TRANSPOSED) {   /* emit_fc.c: dL/din over input vectors */
            q->wt_off = p->act_fixed;
            p->act_fixed += shape_size(l->in) * l->a.n;
        }
        break;
    case LAYER_BATCHNORM: plan_batchnorm(pl, q); break;
    case LAYER_MAXPOOL:
        q->index_off = p->index_per_image;
        p->index_per_image += shape_size(l->out);
        break;
    default: break;
    }
}

/* A relu's backward needs where its output is > 0.  When the layer after it
 * can apply that itself, the relu's output need not live through backward:
 *  - a max pool (not one an unpool reads): its maximum is the relu's output at
 *    the argmax, so it passes dL/dout on only where that maximum is > 0;
 *  - a padded conv whose dL/din is gathered (per pixel, or with a stride per
 *    phase): its input, or its padded input copy, kept for dL/dweight anyway,
 *    holds the relu's output.
 * The relu's dL/d(in) is then its dL/d(out), already masked. */
static void plan_relu_masks(Plan *p)
{
    for (int i = 0; i < p->nlayers; i++) {
        PlanLayer *q = &p->layers[i];
        if (!q->out_buf || q->producer < 0) continue;
        PlanLayer *r = &p->layers[q->producer];
        if (r->l->kind->tag != LAYER_RELU || !r->need_din) continue;
        LayerTag t = q->l->kind->tag;
        bool pool = t == LAYER_MAXPOOL && !q->l->pair;
        /* a padded conv: the mask from its padded copy or, margin-free, its input */
        bool conv = t == LAYER_CONV && (q->l->a.ph || q->l->a.pw) && (q->din_gather || q->din_phases);
        if (!pool && !conv) continue;
        q->relu_mask = true;
        r->mask_by = q->l->name;
    }
}

/* Whether the emitter takes Winograd for this conv at either vector width:
 * F(2×2), or F(4×4) where plan_conv_winograd allows it, fits its registers
 * and stack (tiles.c).  The pool fusion below leaves buffers out of the plan,
 * which may not depend on the host the code is emitted on. */
static bool winograd_at_every_width(const PlanLayer *conv)
{
    for (int vlen = 8; vlen <= 16; vlen += 8) {
        bool f2 = wino_fits(vlen, 2, conv->l, conv->need_din);
        bool f4 = conv->wino_m >= 4 && wino_fits(vlen, 4, conv->l, conv->need_din);
        if (!f2 && !f4) return false;
    }
    return true;
}

/* A 2×2 max pool, stride 2, over the fused relu of a conv that Winograd
 * F(m×m, 3×3) takes: the conv's output blocks (m even, and m divides the
 * output) hold whole windows, so its output transform can take each
 * window's maximum and argmax while the outputs are in registers, and the
 * pool's own pass over the conv's output (read back from memory: 8 MiB a
 * batch for vgg-small's pool1) goes; the conv then stores only the pool's
 * output and argmax.  The pool's output is written at the conv's step, and
 * so lives from there (plan_lifetimes).  Backward, the conv reads the pool's
 * dL/dout through argmax as it loads it, and the pool does nothing.  So
 * nothing stores the conv's output (nor its relu's, the same buffer) or the
 * pool's dL/din: the first gets no floats, the second is the pool's dL/dout
 * (vgg-small: 8 MiB of the 33 its activations had packed into).
 *
 * The same over a batchnorm's fused relu: its normalizing pass takes each
 * window's maximum as it goes, and its backward reads dL/dout through the
 * argmax (fashion's bn1: 6.1 MiB a batch its pass had stored, the pool read
 * back, the pool's backward wrote and the batchnorm's read twice). */
static bool pool_fuses(const Plan *p, const PlanLayer *q)
{
    const LayerArgs *a = &q->l->a;
    if (q->l->kind->tag != LAYER_MAXPOOL || q->l->pair || q->producer < 0) return false;
    if (a->kh != 2 || a->kw != 2 || a->sh != 2 || a->sw != 2 || a->ph || a->pw || a->dh != 1 || a->dw != 1) return false;
    const PlanLayer *r = &p->layers[q->producer];
    if (r->l->kind->tag != LAYER_RELU || !r->done_by || r->producer < 0) return false;
    const PlanLayer *f = &p->layers[r->producer];   /* the conv or batchnorm whose relu it is */
    if (!f->fused_relu || q->l->out.h * 2 != f->l->out.h || q->l->out.w * 2 != f->l->out.w) return false;
    return f->l->kind->tag == LAYER_BATCHNORM || (f->wino_m >= 2 && winograd_at_every_width(f));
}

static void plan_fused_pools(Planner *pl)
{
    Plan *p = pl->p;
    for (int i = 0; i < p->nlayers; i++) {
        PlanLayer *q = &p->layers[i];
        if (!pool_fuses(p, q)) continue;
        PlanLayer *relu = &p->layers[q->producer], *f = &p->layers[relu->producer];
        f->pool_after = q;
        q->pooled_by = f;
        f->out_unstored = relu->out_unstored = true;
        pl->life[pl->out_life[f->l->id]].size = 0;   /* the relu works in place: the same buffer */
    }
}

/* What each kind's backward pass reads besides dL/dout (the emitters say the
 * same to emit_backward_open, which checks it). */
static void backward_reads(PlanLayer *q)
{
    switch (q->l->kind->tag) {
    case LAYER_CONV: q->bwd_reads_in = q->pad_off < 0; break;   /* else its padded copy */
    case LAYER_DECONV:
    case LAYER_FC:
    case LAYER_BATCHNORM:
    case LAYER_LEAKYRELU: q->bwd_reads_in = true; break;
    case LAYER_RELU: q->bwd_reads_out = !q->mask_by; break;
    case LAYER_SIGMOID:
    case LAYER_TANH:
    case LAYER_SOFTMAX: q->bwd_reads_out = true; break;
    default: break;
    }
}

static void live_at(Planner *pl, int id, int step)
{
    Lifetime *t = &pl->life[id];
    if (t->first < 0 || step < t->first) t->first = step;
    if (step > t->last) t->last = step;
}

/* Walks one training step and marks, for every buffer, each step that
 * writes or reads it. */
static void plan_lifetimes(Planner *pl)
{
    Plan *p = pl->p;
    int n = p->nlayers, last = -1;
    for (int i = 0; i < n; i++) {
        PlanLayer *q = &p->layers[i];
        if (!q->out_buf) continue;
        backward_reads(q);
        int in = q->producer >= 0 ? pl->out_life[q->producer] : -1;
        if (in >= 0) live_at(pl, in, i);
        if (in >= 0 && q->bwd_reads_in) live_at(pl, in, 2 * n - i);
        live_at(pl, pl->out_life[i], i);
        if (q->pooled_by) live_at(pl, pl->out_life[i], q->pooled_by->l->id);   /* written by the conv */
        if (q->bwd_reads_out) live_at(pl, pl->out_life[i], 2 * n - i);
        if (pl->pad_life[i] >= 0) live_at(pl, pl->pad_life[i], i), live_at(pl, pl->pad_life[i], 2 * n - i);
        last = i;
    }
    /* the loss reads the output, and callers (trace, eval) may still read what forward returned
       after backward: it lives through the whole step */
    if (last >= 0) live_at(pl, pl->out_life[last], 2 * n);
    /* backward: layer i reads its dL/dout (the din of the layer after it) and writes its din */
    int dout = -1;
    for (int i = last; i >= 0; i--) {
        PlanLayer *q = &p->layers[i];
        if (!q->out_buf) continue;
        if (dout >= 0) live_at(pl, dout, 2 * n - i);
        if (!q->need_din) break;
        if (q->mask_by || (q->pooled_by && dout >= 0)) {
            /* its din is its dout: which the next layer masked, or (a pool its conv applies) which
               the conv reads through the pool's argmax, so that lives to the conv's step */
            pl->din_life[i] = dout;
        } else {
            pl->din_life[i] = new_lifetime(pl, shape_size(q->l->in));
            live_at(pl, pl->din_life[i], 2 * n - i);
        }
        dout = pl->din_life[i];
    }
}

static int by_size_descending(const void *a, const void *b)
{
    const Lifetime *x = *(Lifetime *const *)a, *y = *(Lifetime *const *)b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return (x > y) - (x < y);   /* ties: in the order made, so the plan is the same everywhere */
}

/* Where t, placed at off, may not share floats with the placed u: the
 * lowest offset past off that ends the conflict, or off if there is none.
 * Live at the same time, they may not overlap at all.  Otherwise the images
 * decide: image b of a buffer at offset o sits at B·o + b·size, so with the
 * batch halved between 2 threads (PLAN_GRAD_CHUNKS, schedule(static)) its
 * first half of images covers [2o, 2o + size) and its second [2o + size,
 * 2o + 2·size), in units of B/2 floats.  Reused floats are fetched from the
 * other core if a half lands on the other half of u, so t may overlap u only
 * with the two halves' boundaries at one place: t centred on u. */
static long pack_next_offset(const Lifetime *t, long off, const Lifetime *u)
{
    bool overlap = u->off < off + t->size && off < u->off + u->size;
    if (!overlap) return off;
    bool same_time = u->first <= t->last && t->first <= u->last;
    long twice_centred = 2 * u->off + u->size - t->size;
    if (same_time) return u->off + u->size;
    if (twice_centred == 2 * off) return off;
    if (twice_centred > 2 * off && twice_centred % 2 == 0) return twice_centred / 2;
    return u->off + u->size;
}

/* The lowest offset for t among the k placed buffers, moving up past each
 * in the way. */
static long lowest_offset(const Lifetime *t, Lifetime *const *placed, int k)
{
    long off = 0;
    for (bool moved = true; moved;) {
        moved = false;
        for (int j = 0; j < k; j++) {
            long next = pack_next_offset(t, off, placed[j]);
            if (next != off) off = next, moved = true;
        }
    }
    return off;
}

/* Greedy by size (TensorFlow Lite's arena planner does the same): the
 * largest buffer first, each at the lowest offset found, moving up past
 * each placed buffer it may not overlap (pack_next_offset).  Past PACK_MAX
 * buffers (a model of thousands of layers) every buffer gets its own floats
 * instead, since this is quadratic.  Returns the arena's floats per image. */
enum { PACK_MAX = 3000 };

static long pack_lifetimes(Arena *a, Lifetime *life, int n)
{
    long end = 0;
    if (n > PACK_MAX) {
        for (int i = 0; i < n; i++) life[i].off = end, end += life[i].size;
        return end;
    }
    Lifetime **order = ARENA_ARRAY(a, Lifetime *, n + 1);
    for (int i = 0; i < n; i++) order[i] = &life[i];
    qsort(order, (size_t)n, sizeof *order, by_size_descending);
    for (int k = 0; k < n; k++) {
        Lifetime *t = order[k];
        t->off = lowest_offset(t, order, k);
        if (t->off + t->size > end) end = t->off + t->size;
    }
    return end;
}

static void plan_buffers(Planner *pl)
{
    Plan *p = pl->p;
    plan_relu_masks(p);
    plan_fused_pools(pl);
    plan_lifetimes(pl);
    p->act_unshared = 0;
    for (int i = 0; i < pl->nlife; i++) p->act_unshared += pl->life[i].size;
    p->act_per_image = pack_lifetimes(pl->arena, pl->life, pl->nlife);
    for (int i = 0; i < p->nlayers; i++) {
        PlanLayer *q = &p->layers[i];
        if (pl->out_life[i] >= 0) q->out_off = pl->life[pl->out_life[i]].off;
        if (pl->pad_life[i] >= 0) q->pad_off = pl->life[pl->pad_life[i]].off;
        if (pl->din_life[i] >= 0) q->din_off = pl->life[pl->din_life[i]].off;
    }
}

static double plan_bytes_per_image(const Plan *p)
{
    return 4.0 * ((double)p->act_per_image + p->index_per_image);
}

PlanOptions plan_default_options(void)
{
    const char *w = getenv("CNNC_WINOGRAD");
    PlanOptions o = {.winograd = 2};
    if (w && (!strcmp(w, "0") || !strcmp(w, "2") || !strcmp(w, "4"))) o.winograd = atoi(w);
    return o;
}

Plan *plan_model(Arena *a, Diag *d, const Model *m, const PlanOptions *o)
{
    Plan *p = ARENA_NEW(a, Plan);
    p->m = m;
    p->options = o ? *o : plan_default_options();
    p->nlayers = m->nlayers;
    p->layers = ARENA_ARRAY(a, PlanLayer, m->nlayers);
    p->tensors = ARENA_ARRAY(a, PlanTensor, 4 * m->nlayers + 1);
    Planner pl = {.arena = a, .p = p};
    pl.life = ARENA_ARRAY(a, Lifetime, 3 * m->nlayers + 1);
    pl.out_life = ARENA_ARRAY(a, int, m->nlayers + 1);
    pl.pad_life = ARENA_ARRAY(a, int, m->nlayers + 1);
    pl.din_life = ARENA_ARRAY(a, int, m->nlayers + 1);
    for (int i = 0; i < m->nlayers; i++) pl.out_life[i] = pl.pad_life[i] = pl.din_life[i] = -1;
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
    plan_buffers(&pl);
    double bytes = plan_bytes_per_image(p) + 4.0 * ((double)p->param_floats * 4 + p->stat_floats);
    double gib = bytes / (1024.0 * 1024 * 1024);
    if (bytes > PLAN_MAX_BYTES)
        diag_error(d, m->input_loc, "this model needs %.1f GiB of buffers for one image (parameters, "
                   "activations, gradients); cnnc refuses models over 64 GiB: use a smaller input, fewer "
                   "channels or more pooling", gib);
    else if (p->act_per_image > 0x7fffffffL || p->param_floats > 0x7fffffffL) {
        bool params = p->param_floats > 0x7fffffffL;
        char n[32];
        diag_error(d, m->input_loc, "this model's %s need %s floats per image, more than the 2^31 that one "
                   "buffer of the generated code holds (%.1f GiB in all): use a smaller input, fewer channels "
                   "or more pooling", params ? "parameters" : "activations and gradients",
                   summary_count(n, sizeof n, params ? p->param_floats : p->act_per_image), gib);
    }
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
    r.index = 4.0 * (double)p->index_per_image * batch;
    r.total = r.params + r.grads + r.optimizer + r.stats + r.acts + r.index;
    return r;
}
