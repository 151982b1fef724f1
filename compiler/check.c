/* check.c — from statements to a checked model.
 *
 * Resolves aliases (dense → fc, maxpool → pool), types every argument and
 * option against the layer kind's table entry, applies defaults, infers every
 * shape layer by layer (layers.c), pairs each unpool with its pool like
 * brackets, reads the training settings and folds a trailing softmax into the
 * cross-entropy loss.  Every mistake is reported once, at its token, with a
 * fix; after a shape error, later shapes are not inferred (they would only
 * repeat the first error), but later statements are still checked. */
#include "check.h"
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include "summary.h"

/* Bounds that keep every product of sizes inside a long (and the model sane).
 * MAX_FLOATS is the plan's limit per buffer (2^31 - 1 floats): an input, a
 * layer's output or a layer's parameters beyond it are refused here, before
 * any sum or product of them could wrap. */
enum { MAX_DIM = 65536, MAX_KERNEL = 4096 };
#define MAX_FLOATS 2147483647L

typedef struct Checker {
    Arena *arena;
    Diag *diag;
    Model *model;
    bool have_input;
    bool shapes_ok;        /* false after a shape error: later shapes are unknown */
    Layer **pool_stack;    /* open max pools, innermost last; one slot per statement */
    int npool;
    int counts[LAYER_COUNT];
    Settings *set;
    bool seen_setting[8];
} Checker;

/* ---- suggestions ----------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 30 || lb > 30) return 99;
    int d[32][32];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The closest of a space-separated list of words, or NULL if none is close. */
static const char *closest_word(Arena *a, const char *word, const char *list)
{
    const char *best = NULL;
    int best_d = strlen(word) <= 3 ? 1 : 2;
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (q > p) {
            char *w = arena_strndup(a, p, (size_t)(q - p));
            int dd = edit_distance(word, w);
            if (dd <= best_d) { best_d = dd; best = w; }
        }
        p = q;
    }
    return best;
}

static const char *setting_words = "model input optimizer batch epochs loss";

static const char *all_layer_words(Arena *a)
{
    const char *s = "";
    for (int i = 0; i < LAYER_COUNT; i++) {
        s = arena_printf(a, "%s%s%s", s, *s ? " " : "", layer_kinds[i].word);
        if (layer_kinds[i].alias) s = arena_printf(a, "%s %s", s, layer_kinds[i].alias);
    }
    return s;
}

/* ---- typed values ------------------------------------------------------------ */

/* User text as a message quotes it: a 10 MB token is cut to its first 40 bytes. */
static const char *shown(Checker *c, const char *text)
{
    if (!text) return "?";
    return strlen(text) <= 40 ? text : arena_printf(c->arena, "%.37s...", text);
}

static const char *value_text(Checker *c, const Value *v) { return shown(c, v->text); }

/* A whole number in [lo, hi], for option `what`. */
static bool value_int(Checker *c, const Value *v, const char *what, long lo, long hi, int *out)
{
    if (v->kind == VAL_REAL) {
        diag_error(c->diag, v->loc, "%s must be a whole number, not %s", what, value_text(c, v));
        return false;
    }
    if (v->kind != VAL_INT) {
        diag_error(c->diag, v->loc, "%s must be a whole number, not '%s'", what, value_text(c, v));
        return false;
    }
    if (v->too_big || v->num < (double)lo || v->num > (double)hi) {
        diag_error(c->diag, v->loc, "%s must be between %ld and %ld, not %s", what, lo, hi, value_text(c, v));
        return false;
    }
    *out = (int)v->num;
    return true;
}

/* S or SxS: one number for both axes, or height x width. */
static bool value_pair(Checker *c, const Value *v, const char *what, long lo, long hi, int *h, int *w)
{
    if (v->kind == VAL_DIMS) {
        if (v->ndims != 2) {
            diag_error(c->diag, v->loc, "%s takes one number or HxW, not %s", what, value_text(c, v));
            return false;
        }
        for (int i = 0; i < 2; i++)
            if (v->too_big || v->dims[i] < lo || v->dims[i] > hi) {
                diag_error(c->diag, v->loc, "each side of %s must be between %ld and %ld, not %s",
                           what, lo, hi, value_text(c, v));
                return false;
            }
        *h = (int)v->dims[0];
        *w = (int)v->dims[1];
        return true;
    }
    if (!value_int(c, v, what, lo, hi, h)) return false;
    *w = *h;
    return true;
}

static bool value_real(Checker *c, const Value *v, const char *what, double lo, double hi,
                       bool lo_open, double *out)
{
    if (v->kind != VAL_INT && v->kind != VAL_REAL) {
        diag_error(c->diag, v->loc, "%s must be a number, not '%s'", what, value_text(c, v));
        return false;
    }
    double x = v->num;
    if (!isfinite(x) || x > hi || x < lo || (lo_open && x == lo)) {
        diag_error(c->diag, v->loc, "%s must be %s %g and at most %g, not %s", what,
                   lo_open ? "greater than" : "at least", lo, hi, value_text(c, v));
        return false;
    }
    *out = x;
    return true;
}

static bool value_yes_no(Checker *c, const Value *v, const char *what, bool *out)
{
    if (v->kind == VAL_WORD) {
        if (!strcmp(v->text, "yes") || !strcmp(v->text, "true")) { *out = true; return true; }
        if (!strcmp(v->text, "no") || !strcmp(v->text, "false")) { *out = false; return true; }
    }
    if (v->kind == VAL_INT && (v->num == 0 || v->num == 1)) { *out = v->num == 1; return true; }
    diag_error(c->diag, v->loc, "%s must be yes or no, not '%s'", what, value_text(c, v));
    return false;
}

/* ---- layer arguments --------------------------------------------------------- */

/* conv 3x3x10: kernel height x width x filters. */
static bool read_kernel_filters(Checker *c, Layer *l, const Value *v)
{
    const char *w = l->kind->word;
    if (v->kind != VAL_DIMS || v->ndims != 3) {
        if (v->kind == VAL_DIMS && v->ndims == 2)
            diag_error(c->diag, v->loc, "%s %s gives the kernel but not the number of filters; write %s %sxN",
                       w, value_text(c, v), w, value_text(c, v));
        else
            diag_error(c->diag, v->loc, "%s takes kernel height x width x filters, like %s 3x3x16, not %s",
                       w, w, value_text(c, v));
        return false;
    }
    for (int i = 0; i < 3; i++) {
        long lim = i < 2 ? MAX_KERNEL : MAX_DIM;
        if (v->too_big || v->dims[i] < 1 || v->dims[i] > lim) {
            diag_error(c->diag, v->loc, "%s %s: the kernel sides must be between 1 and %d and the number "
                       "of filters between 1 and %d", w, value_text(c, v), MAX_KERNEL, MAX_DIM);
            return false;
        }
    }
    l->a.kh = (int)v->dims[0];
    l->a.kw = (int)v->dims[1];
    l->a.n = (int)v->dims[2];
    return true;
}

static bool read_positional(Checker *c, Layer *l, const Value *v)
{
    switch (l->kind->pos) {
    case POS_KERNEL_FILTERS:
        return read_kernel_filters(c, l, v);
    case POS_WINDOW:
        if (!value_pair(c, v, "the pool window", 1, MAX_KERNEL, &l->a.kh, &l->a.kw)) return false;
        l->a.n = l->a.kh;
        return true;
    case POS_COUNT:
        return value_int(c, v, arena_printf(c->arena, "the number of units of %s", l->stmt->word), 1,
                         MAX_DIM * 16L, &l->a.n);
    case POS_OPT_REAL:
        return value_real(c, v, "the negative slope", 0, 1, false, &l->a.alpha);
    case POS_REAL:
        return value_real(c, v, "the dropout probability", 0, 0.99, false, &l->a.p);
    case POS_NONE:
        break;
    }
    return false;
}

static bool allows_option(const LayerKind *k, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = k->options; (p = strstr(p, name)); p += n)
        if ((p == k->options || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return true;
    return false;
}

static bool read_pad(Checker *c, Layer *l, const Value *v)
{
    if (v->kind == VAL_WORD && !strcmp(v->text, "valid")) { l->a.ph = l->a.pw = 0; return true; }
    if (v->kind == VAL_WORD && !strcmp(v->text, "same")) {
        if (l->kind->tag != LAYER_CONV) {
            diag_error(c->diag, v->loc, "pad=same is for conv; give %s its padding as a number", l->kind->word);
            return false;
        }
        l->a.pad_same = true;
        return true;
    }
    if (v->kind == VAL_WORD) {
        diag_error(c->diag, v->loc, "pad must be a number, HxW, same or valid, not '%s'", value_text(c, v));
        return false;
    }
    return value_pair(c, v, "pad", 0, MAX_KERNEL, &l->a.ph, &l->a.pw);
}

static bool read_option(Checker *c, Layer *l, const Arg *arg)
{
    const char *n = arg->name;
    const Value *v = &arg->value;
    if (!allows_option(l->kind, n)) {
        const char *near = closest_word(c->arena, n, l->kind->options);
        if (!*l->kind->options)
            diag_error(c->diag, arg->name_loc, "%s takes no options; remove '%s'", l->kind->word, shown(c, n));
        else if (near)
            diag_error(c->diag, arg->name_loc, "%s has no option '%s'; did you mean '%s'? (its options: %s)",
                       l->kind->word, shown(c, n), near, l->kind->options);
        else
            diag_error(c->diag, arg->name_loc, "%s has no option '%s' (its options: %s)",
                       l->kind->word, shown(c, n), l->kind->options);
        return false;
    }
    if (!strcmp(n, "stride")) return value_pair(c, v, "stride", 1, MAX_KERNEL, &l->a.sh, &l->a.sw);
    if (!strcmp(n, "pad")) return read_pad(c, l, v);
    if (!strcmp(n, "dilation")) return value_pair(c, v, "dilation", 1, MAX_KERNEL, &l->a.dh, &l->a.dw);
    if (!strcmp(n, "outpad")) return value_pair(c, v, "outpad", 0, MAX_KERNEL, &l->a.oph, &l->a.opw);
    if (!strcmp(n, "bias")) return value_yes_no(c, v, "bias", &l->a.bias);
    if (!strcmp(n, "flip")) return value_yes_no(c, v, "flip", &l->a.flip);
    if (!strcmp(n, "momentum")) return value_real(c, v, "batchnorm momentum", 0, 1, false, &l->a.momentum);
    if (!strcmp(n, "eps")) return value_real(c, v, "batchnorm eps", 0, 1, true, &l->a.eps);
    if (!strcmp(n, "count_include_pad")) return value_yes_no(c, v, "count_include_pad", &l->a.count_pad);
    return false;
}

static void layer_defaults(Layer *l)
{
    l->a.sh = l->a.sw = l->a.dh = l->a.dw = 1;
    l->a.bias = true;
    l->a.alpha = 0.01;
    l->a.momentum = 0.1;
    l->a.eps = 1e-5;
    l->a.count_pad = true;
}

/* Reads the positional argument and the options; true if all were valid. */
static bool read_layer_args(Checker *c, Layer *l)
{
    bool ok = true, have_pos = false, stride_set = false;
    unsigned seen = 0;
    for (const Arg *arg = l->stmt->args; arg; arg = arg->next) {
        if (arg->name) {
            const char *opts[] = {"stride", "pad", "dilation", "outpad", "bias", "flip", "momentum", "eps",
                                  "count_include_pad"};
            for (unsigned i = 0; i < sizeof opts / sizeof *opts; i++)
                if (!strcmp(arg->name, opts[i])) {
                    if (seen & (1u << i)) {
                        diag_error(c->diag, arg->name_loc, "%s is given twice; keep one", arg->name);
                        ok = false;
                    }
                    seen |= 1u << i;
                }
            if (!strcmp(arg->name, "stride")) stride_set = true;
            ok = read_option(c, l, arg) && ok;
        } else if (l->kind->tag == LAYER_CONV && arg->value.kind == VAL_WORD && !strcmp(arg->value.text, "flip")) {
            l->a.flip = true;
        } else if (!have_pos && l->kind->pos != POS_NONE) {
            have_pos = true;
            ok = read_positional(c, l, &arg->value) && ok;
        } else if (arg->value.kind == VAL_WORD && allows_option(l->kind, arg->value.text) && arg->next &&
                   !arg->next->name) {
            /* `stride 2`: one mistake, so one message, and the 2 is not reported again */
            diag_error(c->diag, arg->value.loc, "write %s=%s; options are written name=value", arg->value.text,
                       value_text(c, &arg->next->value));
            arg = arg->next;
            ok = false;
        } else {
            diag_error(c->diag, arg->value.loc, "unexpected '%s' after %s; %s", value_text(c, &arg->value),
                       l->kind->word, l->kind->pos == POS_NONE ? "this layer takes no size" :
                       "options are written name=value, like stride=2");
            ok = false;
        }
    }
    if (!have_pos && (l->kind->pos == POS_KERNEL_FILTERS || l->kind->pos == POS_WINDOW ||
                      l->kind->pos == POS_COUNT || l->kind->pos == POS_REAL)) {
        static const char *example[] = {[POS_KERNEL_FILTERS] = "3x3x16", [POS_WINDOW] = "2",
                                        [POS_COUNT] = "10", [POS_REAL] = "0.5"};
        static const char *what[] = {[POS_KERNEL_FILTERS] = "its kernel size and number of filters",
                                     [POS_WINDOW] = "its window size", [POS_COUNT] = "its number of units",
                                     [POS_REAL] = "its probability"};
        diag_error(c->diag, l->loc, "%s needs %s: write %s %s", l->stmt->word, what[l->kind->pos],
                   l->stmt->word, example[l->kind->pos]);
        ok = false;
    }
    /* pools step by their window unless told otherwise */
    if ((l->kind->tag == LAYER_MAXPOOL || l->kind->tag == LAYER_AVGPOOL) && !stride_set) {
        l->a.sh = l->a.kh;
        l->a.sw = l->a.kw;
    }
    return ok;
}

/* ---- pooling brackets ----------------------------------------------------- */

static bool pair_unpool(Checker *c, Layer *l)
{
    if (c->npool == 0) {
        diag_error(c->diag, l->loc, "unpool has no pool to undo; every unpool needs an earlier "
                   "max pool (pool K) that it pairs with, like brackets");
        return false;
    }
    l->pair = c->pool_stack[--c->npool];
    l->pair->pair = l;
    return true;
}

/* ---- layers ------------------------------------------------------------------- */

static void name_layer(Checker *c, Layer *l)
{
    int *n = &c->counts[l->kind->tag];
    l->index = ++*n;
    l->name = arena_printf(c->arena, "%s%d", l->kind->prefix, l->index);
}

/* h·w·c without wrapping: deconvs can grow the sides past any bound. */
static long shape_size_sat(Shape s)
{
    long hw, r;
    if (__builtin_mul_overflow(s.h, s.w, &hw) || __builtin_mul_overflow(hw, s.c, &r)) return LONG_MAX;
    return r;
}

static bool layer_fits(Checker *c, const Layer *l)
{
    if (shape_size_sat(l->out) <= MAX_FLOATS) return true;
    char lim[32];
    diag_error(c->diag, l->loc, "%s's output would be %ldx%ldx%ld, more than %s values per image; use a "
               "smaller input, a larger stride or fewer filters", l->name, l->out.h, l->out.w, l->out.c,
               summary_count(lim, sizeof lim, MAX_FLOATS));
    return false;
}

static void check_layer(Checker *c, const Stmt *s, const LayerKind *k)
{
    Model *m = c->model;
    Layer *l = &m->layers[m->nlayers];
    l->kind = k;
    l->stmt = s;
    l->loc = s->loc;
    l->id = m->nlayers;
    layer_defaults(l);
    name_layer(c, l);
    bool args_ok = read_layer_args(c, l);
    if (!c->have_input) {
        if (c->shapes_ok)
            diag_error(c->diag, s->loc, "%s comes before the input line; start the model with its input size, "
                       "like input 28x28x1", shown(c, s->word));
        c->shapes_ok = false;
    }
    if (k->tag == LAYER_MAXPOOL) c->pool_stack[c->npool++] = l;
    bool paired = k->tag != LAYER_UNPOOL || pair_unpool(c, l);
    m->nlayers++;
    if (!args_ok || !paired) c->shapes_ok = false;
    if (!c->shapes_ok) return;
    l->in = l->id ? m->layers[l->id - 1].out : m->input;
    if (k->tag == LAYER_FC && l->id && m->layers[l->id - 1].kind->tag == LAYER_FLATTEN)
        l->flat_in_chw = true;
    if (!k->infer(l, c->diag) || !layer_fits(c, l)) { c->shapes_ok = false; return; }
    k->count(l, c->arena);
    if (l->params + l->stats > MAX_FLOATS) {
        char n[32], lim[32];
        diag_error(c->diag, l->loc, "%s would have %s parameters; cnnc allows at most %s in one layer: "
                   "use fewer filters or units, or pool before it", l->name,
                   summary_count(n, sizeof n, l->params + l->stats), summary_count(lim, sizeof lim, MAX_FLOATS));
        c->shapes_ok = false;
    }
}

/* ---- settings ------------------------------------------------------------------ */

static const Arg *only_positional(Checker *c, const Stmt *s, const char *example)
{
    if (s->nargs != 1 || s->args->name) {
        diag_error(c->diag, s->loc, "%s takes one value: write %s", s->word, example);
        return NULL;
    }
    return s->args;
}

static void check_model_name(Checker *c, const Stmt *s)
{
    const Arg *a = only_positional(c, s, "model NAME");
    if (!a) return;
    const char *n = a->value.text;
    bool ok = a->value.kind == VAL_WORD && strlen(n) < 64;
    for (const char *p = n; ok && *p; p++) ok = isalnum((unsigned char)*p) || *p == '_';
    if (!ok) {
        diag_error(c->diag, a->value.loc, "the model name must be letters, digits and _ (it names C "
                   "functions and files), up to 63 characters; '%s' is not", value_text(c, &a->value));
        return;
    }
    c->model->name = n;
}

static void check_input(Checker *c, const Stmt *s)
{
    if (c->have_input) {
        diag_error(c->diag, s->loc, "the model already has an input; a model has one input line");
        return;
    }
    const Arg *a = only_positional(c, s, "input HxWxC, like input 28x28x1");
    if (!a) { c->shapes_ok = false; return; }
    const Value *v = &a->value;
    bool ok = v->kind == VAL_DIMS && (v->ndims == 2 || v->ndims == 3) && !v->too_big;
    for (int i = 0; ok && i < v->ndims; i++) ok = v->dims[i] >= 1 && v->dims[i] <= MAX_DIM;
    if (!ok) {
        diag_error(c->diag, v->loc, "input must be HxWxC (or HxW for one channel), each from 1 to %d, not %s",
                   MAX_DIM, value_text(c, v));
        c->shapes_ok = false;
        c->have_input = true;
        return;
    }
    c->model->input = (Shape){v->dims[0], v->dims[1], v->ndims == 3 ? v->dims[2] : 1};
    long size = shape_size(c->model->input);
    if (size > MAX_FLOATS) {
        char n[32], lim[32];
        diag_error(c->diag, v->loc, "input %s is %s values per image (%.1f GiB as float32); cnnc allows at "
                   "most %s values (8 GiB) per buffer: use a smaller input", value_text(c, v),
                   summary_count(n, sizeof n, size), 4.0 * (double)size / (1024.0 * 1024 * 1024),
                   summary_count(lim, sizeof lim, MAX_FLOATS));
        c->shapes_ok = false;
    }
    c->model->input_loc = s->loc;
    c->have_input = true;
}

/* Adam's betas are in [0, 1): at 1 its bias correction divides by zero (as
 * PyTorch, which refuses them too). */
static void read_adam_beta(Checker *c, const Value *v, const char *what, double *out)
{
    double x;
    if (!value_real(c, v, what, 0, 1, false, &x)) return;
    if (x >= 1) {
        diag_error(c->diag, v->loc, "%s must be below 1 (Adam divides by 1 - %s^t), not %s; 0.9 and 0.999 are "
                   "the usual values", what, what, value_text(c, v));
        return;
    }
    *out = x;
}

static void check_optimizer(Checker *c, const Stmt *s)
{
    Settings *t = c->set;
    const Arg *a = s->args;
    if (!a || a->name || a->value.kind != VAL_WORD) {
        diag_error(c->diag, s->loc, "optimizer needs a name first: optimizer adam, optimizer sgd or optimizer momentum");
        return;
    }
    const char *n = a->value.text;
    /* Plain sgd has no momentum unless given one (torch.optim.SGD's default
     * is 0); the runtime treats sgd with momentum > 0 as the momentum rule. */
    if (!strcmp(n, "adam")) t->optimizer = OPT_ADAM, t->lr = 0.001;
    else if (!strcmp(n, "sgd")) t->optimizer = OPT_SGD, t->lr = 0.01, t->momentum = 0;
    else if (!strcmp(n, "momentum")) t->optimizer = OPT_MOMENTUM, t->lr = 0.01, t->momentum = 0.9;
    else {
        const char *near = closest_word(c->arena, n, "adam sgd momentum");
        diag_error(c->diag, a->value.loc, "unknown optimizer '%s'%s%s%s cnnc has adam, sgd and momentum",
                   shown(c, n), near ? "; did you mean '" : ";", near ? near : "", near ? "'?" : "");
        return;
    }
    for (a = a->next; a; a = a->next) {
        const Value *v = &a->value;
        const char *o = a->name ? a->name : "";
        if (!strcmp(o, "lr")) value_real(c, v, "lr", 0, 10, true, &t->lr);
        else if ((!strcmp(o, "beta1") || !strcmp(o, "beta2")) && t->optimizer == OPT_ADAM)
            read_adam_beta(c, v, o, o[4] == '1' ? &t->beta1 : &t->beta2);
        else if (!strcmp(o, "eps") && t->optimizer == OPT_ADAM) value_real(c, v, "eps", 0, 1, true, &t->eps);
        else if (!strcmp(o, "momentum") && t->optimizer != OPT_ADAM) {
            if (value_real(c, v, "momentum", 0, 1, false, &t->momentum) && t->momentum > 0)
                t->optimizer = OPT_MOMENTUM;
        } else
            diag_error(c->diag, a->name ? a->name_loc : v->loc, "optimizer %s has no setting '%s' (it takes %s)", n,
                       a->name ? shown(c, a->name) : value_text(c, v),
                       t->optimizer == OPT_ADAM ? "lr, beta1, beta2, eps" : "lr, momentum");
    }
}

static void check_count_setting(Checker *c, const Stmt *s, int hi, int *out)
{
    const char *example = !strcmp(s->word, "batch") ? "batch 64" : "epochs 10";
    const Arg *a = only_positional(c, s, example);
    if (a) value_int(c, &a->value, s->word, 1, hi, out);
}

static void check_loss(Checker *c, const Stmt *s)
{
    const Arg *a = only_positional(c, s, "loss crossentropy, loss mse or loss bce");
    if (!a) return;
    const char *n = a->value.text ? a->value.text : "";
    if (a->value.kind == VAL_WORD && !strcmp(n, "crossentropy")) c->set->loss = LOSS_CROSSENTROPY;
    else if (a->value.kind == VAL_WORD && !strcmp(n, "mse")) c->set->loss = LOSS_MSE;
    else if (a->value.kind == VAL_WORD && !strcmp(n, "bce")) c->set->loss = LOSS_BCE;
    else
        diag_error(c->diag, a->value.loc, "unknown loss '%s'; cnnc has crossentropy (softmax + cross-entropy), "
                   "mse and bce", value_text(c, &a->value));
}

static bool check_setting(Checker *c, const Stmt *s)
{
    static const char *words[] = {"model", "input", "optimizer", "batch", "epochs", "loss"};
    int i = 0;
    while (i < 6 && strcmp(s->word, words[i])) i++;
    if (i == 6) return false;
    if (i != 1 && c->seen_setting[i]) diag_error(c->diag, s->loc, "%s is set twice; keep one", s->word);
    c->seen_setting[i] = true;
    switch (i) {
    case 0: check_model_name(c, s); break;
    case 1: check_input(c, s); break;
    case 2: check_optimizer(c, s); break;
    case 3: check_count_setting(c, s, 65536, &c->set->batch); break;
    case 4: check_count_setting(c, s, 1000000, &c->set->epochs); break;
    case 5: check_loss(c, s); break;
    }
    return true;
}

static void unknown_word(Checker *c, const Stmt *s)
{
    const char *known = arena_printf(c->arena, "%s %s", all_layer_words(c->arena), setting_words);
    const char *near = closest_word(c->arena, s->word, known);
    if (near)
        diag_error(c->diag, s->loc, "unknown layer '%s'; did you mean '%s'?", shown(c, s->word), near);
    else
        diag_error(c->diag, s->loc, "unknown layer '%s'; layers are conv, deconv, pool, avgpool, globalavgpool, "
                   "unpool, fc, flatten, relu, sigmoid, tanh, leakyrelu, softmax, dropout, batchnorm",
                   shown(c, s->word));
}

/* ---- the whole model ------------------------------------------------------------ */

static void default_settings(Settings *t)
{
    *t = (Settings){.optimizer = OPT_ADAM, .lr = 0.001, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                    .momentum = 0.9, .batch = 64, .epochs = 10, .loss = LOSS_CROSSENTROPY};
}

/* The loss reads the last layer; cross-entropy already applies softmax, so a
 * trailing softmax is folded into it (as Keras does with from_logits). */
static bool choose_output(Model *m, Diag *d)
{
    int last = m->nlayers - 1;
    bool trailing_softmax = m->settings.loss == LOSS_CROSSENTROPY && m->layers[last].kind->tag == LAYER_SOFTMAX;
    if (trailing_softmax && last == 0) {
        diag_error(d, m->layers[0].loc, "softmax is the only layer, and the cross-entropy loss already applies "
                   "softmax, so nothing would be left to train; add layers before it, or use loss mse");
        return false;
    }
    if (trailing_softmax) {
        m->layers[last].folded = true;
        last--;
    }
    m->last = last;
    m->outputs = shape_size(m->layers[last].out);
    return true;
}

/* A model name from the file's stem: letters, digits and _. */
static const char *name_from_path(Arena *a, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".cnn")) n -= 4;
    if (n > 63) n = 63;
    char *s = arena_strndup(a, base, n);
    for (char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p)) *p = '_';
    if (!*s || isdigit((unsigned char)*s)) s = arena_printf(a, "m_%s", s);
    return s;
}

Model *check_model(Arena *a, Diag *d, const Ast *ast)
{
    Model *m = ARENA_NEW(a, Model);
    m->src = d->src;
    m->name = name_from_path(a, d->src->path);
    m->layers = ARENA_ARRAY(a, Layer, ast->nstmts + 1);
    default_settings(&m->settings);
    Checker c = {.arena = a, .diag = d, .model = m, .shapes_ok = true, .set = &m->settings,
                 .pool_stack = ARENA_ARRAY(a, Layer *, ast->nstmts + 1)};
    for (const Stmt *s = ast->first; s && !diag_full(d); s = s->next) {
        if (check_setting(&c, s)) continue;
        const LayerKind *k = layer_kind_find(s->word);
        if (k) check_layer(&c, s, k);
        else unknown_word(&c, s);
    }
    if (d->errors) return m;
    if (!c.have_input) {
        diag_error(d, (Loc){0, 0}, "the model has no input line; start it with its input size, like input 28x28x1");
        return m;
    }
    if (m->nlayers == 0) {
        diag_error(d, m->input_loc, "the model has no layers; add some after the input, like conv 3x3x8; relu; fc 10");
        return m;
    }
    choose_output(m, d);
    return m;
}
