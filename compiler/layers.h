/* layers.h — the checked model: layers with their shapes, and the one table
 * of layer kinds that says, per kind, which arguments it takes, how its
 * output shape follows from its input, what it costs and how it is emitted.
 *
 * Adding a layer kind is one LayerKind entry in layers.c plus one
 * emit_<kind>.c; docs/adding-a-layer.md walks through it. */
#ifndef CNNC_LAYERS_H
#define CNNC_LAYERS_H
#include <stdbool.h>
#include "ast.h"
#include "diag.h"

typedef enum LayerTag {
    LAYER_CONV, LAYER_DECONV, LAYER_MAXPOOL, LAYER_AVGPOOL, LAYER_GLOBALAVGPOOL,
    LAYER_UNPOOL, LAYER_FC, LAYER_FLATTEN, LAYER_RELU, LAYER_SIGMOID, LAYER_TANH,
    LAYER_LEAKYRELU, LAYER_SOFTMAX, LAYER_DROPOUT, LAYER_BATCHNORM, LAYER_COUNT
} LayerTag;

/* H x W x C.  long so that products of hostile sizes are checked, not wrapped. */
typedef struct Shape { long h, w, c; } Shape;

static inline long shape_size(Shape s) { return s.h * s.w * s.c; }

typedef struct LayerKind LayerKind;
typedef struct Layer Layer;

/* The options a layer was written with, after typing and defaults. */
typedef struct LayerArgs {
    int kh, kw, n;          /* kernel and filter/unit count (conv, deconv, fc, pools) */
    int sh, sw;             /* stride */
    int ph, pw;             /* symmetric padding */
    int dh, dw;             /* dilation */
    int oph, opw;           /* deconv output padding */
    bool bias, flip;
    bool pad_same;          /* written as pad=same (for the table's details) */
    bool count_pad;         /* avgpool: padding counts in the divisor (PyTorch's count_include_pad) */
    double alpha;           /* leakyrelu slope */
    double p;               /* dropout probability */
    double momentum, eps;   /* batchnorm */
} LayerArgs;

struct Layer {
    const LayerKind *kind;
    const Stmt *stmt;
    Loc loc;
    int id;                 /* position in the model, 0-based */
    int index;              /* 1-based among layers with the same name prefix */
    const char *name;       /* conv1, fc2, bn1, relu3 — the PyTorch state_dict prefix */
    const char *title;      /* course notation: CONV3-10, POOL-2, FC-10 */
    Shape in, out;
    LayerArgs a;
    Layer *pair;            /* unpool <-> its max pool */
    bool folded;            /* trailing softmax folded into the cross-entropy loss */
    bool flat_in_chw;       /* fc: its input vector is already in C,H,W order (after flatten) */
    long params;            /* trainable floats */
    long stats;             /* non-trainable floats (batchnorm running mean/var) */
    long macs;              /* multiply-accumulates per image, forward */
    const char *formula;    /* "3×3×3×10 + 10" */
};

/* Floats of a conv's input with its zero padding: (H + 2·PH) · (W + 2·PW) · C,
 * the size of a padded copy (plan.c's buffer, dL/dweight's per-thread copy). */
static inline long padded_in_floats(const Layer *l)
{
    return (l->in.h + 2L * l->a.ph) * (l->in.w + 2L * l->a.pw) * l->in.c;
}

/* A conv whose taps along a row read consecutive floats (no column dilation,
 * no flip: its taps would go backwards in the weights): a window row at an
 * output pixel, taps kx = 0 … KW−1 over every input channel, is the KW·IC
 * floats from its first column, in (kx, ci) order, as dL/dweight's rows (kx,
 * ci) of one ky are in [ky][kx][ci][co].  dL/dweight's tiles then run over
 * kx·IC + ci together (a first layer's 5 taps × 1 channel make one tile of 5,
 * not five of 1), or in vectors over them (emit_conv_tiled.c). */
static inline bool conv_merges_taps(const Layer *l)
{
    return l->a.dw == 1 && !l->a.flip;
}

/* How a layer kind reads its positional argument. */
typedef enum PosArg {
    POS_NONE,               /* relu */
    POS_KERNEL_FILTERS,     /* conv 3x3x10 */
    POS_WINDOW,             /* pool 2 or pool 2x2 */
    POS_COUNT,              /* fc 10 */
    POS_OPT_REAL,           /* leakyrelu [0.01] */
    POS_REAL                /* dropout 0.5 */
} PosArg;

struct Emitter;
struct Plan;
struct PlanLayer;
typedef void (*EmitFn)(struct Emitter *e, const struct Plan *p, const struct PlanLayer *pl);

struct LayerKind {
    const char *word;        /* "conv" */
    const char *alias;       /* "dense" for fc, "maxpool" for pool */
    LayerTag tag;
    const char *prefix;      /* name prefix: conv, deconv, fc, bn, pool, relu ... */
    PosArg pos;
    const char *options;     /* allowed options, space separated: "stride pad dilation bias flip" */
    bool (*infer)(Layer *l, Diag *d);   /* sets l->out from l->in, or reports at l->loc */
    void (*count)(Layer *l, struct Arena *a);  /* params, stats, macs, formula, title */
    EmitFn emit_forward, emit_backward;
};

extern const LayerKind layer_kinds[LAYER_COUNT];
const LayerKind *layer_kind_find(const char *word);

/* Training settings from the file (the executable's flags override them). */
typedef enum LossKind { LOSS_CROSSENTROPY, LOSS_MSE, LOSS_BCE } LossKind;
typedef enum OptKind { OPT_SGD, OPT_MOMENTUM, OPT_ADAM } OptKind;

typedef struct Settings {
    OptKind optimizer;
    double lr, beta1, beta2, eps, momentum;
    int batch, epochs;
    LossKind loss;
} Settings;

typedef struct Model {
    const char *name;
    const Source *src;
    Shape input;
    Loc input_loc;
    Layer *layers;
    int nlayers;
    Settings settings;
    long outputs;            /* floats per image the loss sees */
    int last;                /* index of the layer whose output the loss reads */
} Model;

/* Output size along one axis: floor((n + 2p - d(k-1) - 1) / s) + 1. */
long conv_out_size(long n, long k, long s, long p, long d);
/* Transposed conv: (n-1)s - 2p + d(k-1) + outpad + 1. */
long deconv_out_size(long n, long k, long s, long p, long d, long outpad);
#endif
