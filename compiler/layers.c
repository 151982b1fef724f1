/* layers.c — the table of layer kinds: shape inference and cost per kind.
 *
 * Each kind's `infer` implements its output-size rule and explains, in the
 * student's terms, why a shape cannot work; `count` gives its parameters (with
 * the formula the course writes), its multiply-accumulates and its name in the
 * course's notation (CONV3-10, POOL-2, FC-10).  Emitters live in emit_*.c. */
#include "layers.h"
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "arena.h"
#include "emit.h"

long conv_out_size(long n, long k, long s, long p, long d)
{
    long span = d * (k - 1) + 1;
    long padded = n + 2 * p;
    if (span > padded) return 0;
    return (padded - span) / s + 1;
}

long deconv_out_size(long n, long k, long s, long p, long d, long outpad)
{
    return (n - 1) * s - 2 * p + d * (k - 1) + outpad + 1;
}

/* Products of hostile sizes saturate instead of wrapping; check.c refuses
 * any layer whose parameters pass 2^31 floats, so the saturated value never
 * reaches the plan. */
static long mul_sat(long a, long b)
{
    long r;
    return __builtin_mul_overflow(a, b, &r) ? LONG_MAX : r;
}

static long add_sat(long a, long b)
{
    long r;
    return __builtin_add_overflow(a, b, &r) ? LONG_MAX : r;
}

/* Where option `name`'s value was written, so that a bad value gets the
 * caret; the layer word when the option was not written. */
static Loc option_loc(const Layer *l, const char *name)
{
    for (const Arg *a = l->stmt ? l->stmt->args : NULL; a; a = a->next)
        if (a->name && !strcmp(a->name, name)) return a->value.loc;
    return l->loc;
}

/* Course notation for kernel sizes: "3" for 3x3, "3x5" otherwise. */
static const char *kernel_text(Arena *a, int kh, int kw)
{
    return kh == kw ? arena_printf(a, "%d", kh) : arena_printf(a, "%dx%d", kh, kw);
}

/* ---- conv ---------------------------------------------------------------- */

/* pad=same: the output keeps ceil(H/S); the padding that needs must split
 * evenly, since the language (like PyTorch's Conv2d) pads symmetrically.
 * With stride 1 an odd total means an even kernel: only an odd kernel keeps
 * the size.  With a larger stride, pad = ceil(total/2) gives the same output,
 * since floor(((out-1)S + 1)/S) + 1 = out. */
static bool conv_same_padding(Layer *l, Diag *d, long n, int k, int s, int dil, int *pad)
{
    long out = (n + s - 1) / s;
    long total = (out - 1) * s + (long)dil * (k - 1) + 1 - n;
    if (total < 0) total = 0;
    if (total % 2 && s == 1) {
        diag_error(d, option_loc(l, "pad"), "pad=same needs %ld pixel%s of padding for a %dx%d kernel, which "
                   "cannot be split evenly between the two sides; use an odd kernel size, or write pad=%ld "
                   "(output %ld) or pad=%ld (output %ld)", total, total == 1 ? "" : "s", l->a.kh, l->a.kw,
                   total / 2, n - 1, total / 2 + 1, n + 1);
        return false;
    }
    if (total % 2) {
        diag_error(d, option_loc(l, "pad"), "pad=same needs %ld pixel%s of padding here, which cannot be split "
                   "evenly between the two sides; write pad=%ld, which gives the same %ld-pixel output",
                   total, total == 1 ? "" : "s", total / 2 + 1, out);
        return false;
    }
    *pad = (int)(total / 2);
    return true;
}

static bool conv_fits(Layer *l, Diag *d)
{
    long span_h = (long)l->a.dh * (l->a.kh - 1) + 1, span_w = (long)l->a.dw * (l->a.kw - 1) + 1;
    long ph = l->in.h + 2L * l->a.ph, pw = l->in.w + 2L * l->a.pw;
    if (span_h <= ph && span_w <= pw) return true;
    long need = (span_h - l->in.h > span_w - l->in.w ? span_h - l->in.h : span_w - l->in.w);
    char spans[96] = "";
    if (l->a.dh > 1 || l->a.dw > 1) {
        if (l->a.dh == l->a.dw)
            snprintf(spans, sizeof spans, " with dilation %d spans %ldx%ld, which", l->a.dh, span_h, span_w);
        else
            snprintf(spans, sizeof spans, " with dilation %dx%d spans %ldx%ld, which", l->a.dh, l->a.dw,
                     span_h, span_w);
    }
    diag_error(d, l->loc, "%s %dx%d%s does not fit its %ldx%ldx%ld input (padded to %ldx%ld); "
               "use a smaller kernel%s or pad=%ld", l->kind->word, l->a.kh, l->a.kw, spans,
               l->in.h, l->in.w, l->in.c, ph, pw, *spans ? " or dilation" : "", (need + 1) / 2);
    return false;
}

static bool conv_infer(Layer *l, Diag *d)
{
    if (l->a.pad_same && (!conv_same_padding(l, d, l->in.h, l->a.kh, l->a.sh, l->a.dh, &l->a.ph) ||
                          !conv_same_padding(l, d, l->in.w, l->a.kw, l->a.sw, l->a.dw, &l->a.pw)))
        return false;
    if (!conv_fits(l, d)) return false;
    l->out.h = conv_out_size(l->in.h, l->a.kh, l->a.sh, l->a.ph, l->a.dh);
    l->out.w = conv_out_size(l->in.w, l->a.kw, l->a.sw, l->a.pw, l->a.dw);
    l->out.c = l->a.n;
    return true;
}

static void conv_count(Layer *l, Arena *a)
{
    long k = mul_sat((long)l->a.kh * l->a.kw, l->in.c);
    l->params = add_sat(mul_sat(k, l->a.n), l->a.bias ? l->a.n : 0);
    l->macs = mul_sat(shape_size(l->out), k);
    l->formula = l->a.bias ? arena_printf(a, "%d×%d×%ld×%d + %d", l->a.kh, l->a.kw, l->in.c, l->a.n, l->a.n)
                           : arena_printf(a, "%d×%d×%ld×%d", l->a.kh, l->a.kw, l->in.c, l->a.n);
    l->title = arena_printf(a, "%s%s-%d", l->kind->tag == LAYER_CONV ? "CONV" : "DECONV",
                            kernel_text(a, l->a.kh, l->a.kw), l->a.n);
}

/* ---- deconv (transposed convolution) ---------------------------------------- */

static bool deconv_infer(Layer *l, Diag *d)
{
    /* PyTorch's rule: output padding only picks among the sizes a stride
     * (or dilation) leaves ambiguous, so it must be smaller than one of them. */
    bool bad_h = l->a.oph >= l->a.sh && l->a.oph >= l->a.dh, bad_w = l->a.opw >= l->a.sw && l->a.opw >= l->a.dw;
    if (bad_h || bad_w) {
        int op = bad_h ? l->a.oph : l->a.opw, s = bad_h ? l->a.sh : l->a.sw, dil = bad_h ? l->a.dh : l->a.dw;
        diag_error(d, option_loc(l, "outpad"), "deconv outpad=%d must be smaller than its stride (%d) or its "
                   "dilation (%d), so at most %d here; outpad only picks among the output sizes a stride "
                   "leaves ambiguous", op, s, dil, (s > dil ? s : dil) - 1);
        return false;
    }
    l->out.h = deconv_out_size(l->in.h, l->a.kh, l->a.sh, l->a.ph, l->a.dh, l->a.oph);
    l->out.w = deconv_out_size(l->in.w, l->a.kw, l->a.sw, l->a.pw, l->a.dw, l->a.opw);
    l->out.c = l->a.n;
    if (l->out.h <= 0 || l->out.w <= 0) {
        /* the largest pad that leaves one row: 2P <= (n-1)S + D(K-1) + outpad */
        long max_h = ((l->in.h - 1) * l->a.sh + (long)l->a.dh * (l->a.kh - 1) + l->a.oph) / 2;
        long max_w = ((l->in.w - 1) * l->a.sw + (long)l->a.dw * (l->a.kw - 1) + l->a.opw) / 2;
        diag_error(d, l->loc, "deconv %dx%d with pad=%d on a %ldx%ldx%ld input leaves no output (its size "
                   "would be %ldx%ld); use pad=%ld or less", l->a.kh, l->a.kw, l->out.h <= 0 ? l->a.ph : l->a.pw,
                   l->in.h, l->in.w, l->in.c, l->out.h, l->out.w, max_h < max_w ? max_h : max_w);
        return false;
    }
    return true;
}

static void deconv_count(Layer *l, Arena *a)
{
    conv_count(l, a);
    /* every input pixel is scattered through the whole kernel into every output channel */
    l->macs = mul_sat(shape_size(l->in), (long)l->a.kh * l->a.kw * l->a.n);
}

/* ---- pooling ------------------------------------------------------------- */

static bool pool_infer(Layer *l, Diag *d)
{
    if (l->a.ph * 2 > l->a.kh || l->a.pw * 2 > l->a.kw) {
        bool h = l->a.ph * 2 > l->a.kh;
        diag_error(d, option_loc(l, "pad"), "%s pad=%d is more than half its %dx%d window, so a window could "
                   "see only padding; use pad=%d or less", l->kind->word, h ? l->a.ph : l->a.pw, l->a.kh, l->a.kw,
                   h ? l->a.kh / 2 : l->a.kw / 2);
        return false;
    }
    if (l->a.kh > l->in.h + 2L * l->a.ph || l->a.kw > l->in.w + 2L * l->a.pw) {
        diag_error(d, l->loc, "%s %dx%d does not fit its %ldx%ldx%ld input; use a window of at most %ldx%ld",
                   l->kind->word, l->a.kh, l->a.kw, l->in.h, l->in.w, l->in.c,
                   l->in.h + 2L * l->a.ph, l->in.w + 2L * l->a.pw);
        return false;
    }
    l->out.h = conv_out_size(l->in.h, l->a.kh, l->a.sh, l->a.ph, 1);
    l->out.w = conv_out_size(l->in.w, l->a.kw, l->a.sw, l->a.pw, 1);
    l->out.c = l->in.c;
    return true;
}

static void pool_count(Layer *l, Arena *a)
{
    const char *k = kernel_text(a, l->a.kh, l->a.kw);
    l->title = arena_printf(a, "%s-%s", l->kind->tag == LAYER_MAXPOOL ? "POOL" : "AVGPOOL", k);
}

static bool globalavgpool_infer(Layer *l, Diag *d)
{
    (void)d;
    l->out = (Shape){1, 1, l->in.c};
    return true;
}

/* unpool: the shape its pool had before pooling (pairing is done in check.c). */
static bool unpool_infer(Layer *l, Diag *d)
{
    Layer *p = l->pair;
    if (l->in.h != p->out.h || l->in.w != p->out.w || l->in.c != p->out.c) {
        diag_error(d, l->loc, "unpool gets a %ldx%ldx%ld input but its pool produced %ldx%ldx%ld; "
                   "the layers between them must keep the shape", l->in.h, l->in.w, l->in.c,
                   p->out.h, p->out.w, p->out.c);
        diag_note(d, p->loc, "the matching pool is here");
        return false;
    }
    l->out = p->in;
    return true;
}

/* ---- fully connected and reshapes ------------------------------------------ */

static bool fc_infer(Layer *l, Diag *d)
{
    (void)d;
    l->out = (Shape){1, 1, l->a.n};
    return true;
}

static void fc_count(Layer *l, Arena *a)
{
    long in = shape_size(l->in);
    l->params = in * l->a.n + (l->a.bias ? l->a.n : 0);
    l->macs = in * l->a.n;
    l->formula = l->a.bias ? arena_printf(a, "%ld×%d + %d", in, l->a.n, l->a.n)
                           : arena_printf(a, "%ld×%d", in, l->a.n);
    l->title = arena_printf(a, "FC-%d", l->a.n);
}

static bool flatten_infer(Layer *l, Diag *d)
{
    (void)d;
    l->out = (Shape){1, 1, shape_size(l->in)};
    return true;
}

/* Shape-keeping layers: activations, dropout, batchnorm. */
static bool same_shape_infer(Layer *l, Diag *d)
{
    (void)d;
    l->out = l->in;
    return true;
}

/* Title is the kind in capitals: RELU, SOFTMAX, FLATTEN, GAP, UNPOOL. */
static void plain_count(Layer *l, Arena *a)
{
    char buf[32];
    const char *w = l->kind->tag == LAYER_GLOBALAVGPOOL ? "gap" : l->kind->word;
    size_t n = strlen(w);
    if (n >= sizeof buf) n = sizeof buf - 1;
    for (size_t i = 0; i < n; i++) buf[i] = (char)(w[i] >= 'a' && w[i] <= 'z' ? w[i] - 32 : w[i]);
    buf[n] = '\0';
    if (l->kind->tag == LAYER_DROPOUT)
        l->title = arena_printf(a, "DROPOUT-%g", l->a.p);
    else if (l->kind->tag == LAYER_LEAKYRELU)
        l->title = arena_printf(a, "LEAKYRELU-%g", l->a.alpha);
    else
        l->title = arena_strndup(a, buf, n);
}

static void batchnorm_count(Layer *l, Arena *a)
{
    l->params = 2 * l->in.c;
    l->stats = 2 * l->in.c;
    l->formula = arena_printf(a, "2×%ld (+ 2×%ld running)", l->in.c, l->in.c);
    l->title = "BN";
}

/* ---- the table ----------------------------------------------------------- */

const LayerKind layer_kinds[LAYER_COUNT] = {
    [LAYER_CONV] = {"conv", NULL, LAYER_CONV, "conv", POS_KERNEL_FILTERS, "stride pad dilation bias flip",
                    conv_infer, conv_count, emit_conv_forward, emit_conv_backward},
    [LAYER_DECONV] = {"deconv", NULL, LAYER_DECONV, "deconv", POS_KERNEL_FILTERS, "stride pad outpad dilation bias",
                      deconv_infer, deconv_count, emit_deconv_forward, emit_deconv_backward},
    [LAYER_MAXPOOL] = {"pool", "maxpool", LAYER_MAXPOOL, "pool", POS_WINDOW, "stride pad",
                       pool_infer, pool_count, emit_maxpool_forward, emit_maxpool_backward},
    [LAYER_AVGPOOL] = {"avgpool", NULL, LAYER_AVGPOOL, "avgpool", POS_WINDOW, "stride pad count_include_pad",
                       pool_infer, pool_count, emit_avgpool_forward, emit_avgpool_backward},
    [LAYER_GLOBALAVGPOOL] = {"globalavgpool", NULL, LAYER_GLOBALAVGPOOL, "gap", POS_NONE, "",
                             globalavgpool_infer, plain_count, emit_gap_forward, emit_gap_backward},
    [LAYER_UNPOOL] = {"unpool", NULL, LAYER_UNPOOL, "unpool", POS_NONE, "",
                      unpool_infer, plain_count, emit_unpool_forward, emit_unpool_backward},
    [LAYER_FC] = {"fc", "dense", LAYER_FC, "fc", POS_COUNT, "bias",
                  fc_infer, fc_count, emit_fc_forward, emit_fc_backward},
    [LAYER_FLATTEN] = {"flatten", NULL, LAYER_FLATTEN, "flatten", POS_NONE, "",
                       flatten_infer, plain_count, emit_flatten_forward, emit_flatten_backward},
    [LAYER_RELU] = {"relu", NULL, LAYER_RELU, "relu", POS_NONE, "",
                    same_shape_infer, plain_count, emit_activation_forward, emit_activation_backward},
    [LAYER_SIGMOID] = {"sigmoid", NULL, LAYER_SIGMOID, "sigmoid", POS_NONE, "",
                       same_shape_infer, plain_count, emit_activation_forward, emit_activation_backward},
    [LAYER_TANH] = {"tanh", NULL, LAYER_TANH, "tanh", POS_NONE, "",
                    same_shape_infer, plain_count, emit_activation_forward, emit_activation_backward},
    [LAYER_LEAKYRELU] = {"leakyrelu", NULL, LAYER_LEAKYRELU, "leakyrelu", POS_OPT_REAL, "",
                         same_shape_infer, plain_count, emit_activation_forward, emit_activation_backward},
    [LAYER_SOFTMAX] = {"softmax", NULL, LAYER_SOFTMAX, "softmax", POS_NONE, "",
                       same_shape_infer, plain_count, emit_softmax_forward, emit_softmax_backward},
    [LAYER_DROPOUT] = {"dropout", NULL, LAYER_DROPOUT, "dropout", POS_REAL, "",
                       same_shape_infer, plain_count, emit_dropout_forward, emit_dropout_backward},
    [LAYER_BATCHNORM] = {"batchnorm", NULL, LAYER_BATCHNORM, "bn", POS_NONE, "momentum eps",
                         same_shape_infer, batchnorm_count, emit_batchnorm_forward, emit_batchnorm_backward},
};

const LayerKind *layer_kind_find(const char *word)
{
    for (int i = 0; i < LAYER_COUNT; i++) {
        const LayerKind *k = &layer_kinds[i];
        if (strcmp(word, k->word) == 0 || (k->alias && strcmp(word, k->alias) == 0)) return k;
    }
    return NULL;
}
