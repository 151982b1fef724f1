/* plan.h — where every number lives: parameter tensors, activation buffers,
 * argmax indices, scratch.  The summary's memory figures and the generated
 * code's allocations both come from here, so they cannot disagree.
 *
 * Activations are NHWC and per image: layer L's output for image b of a batch
 * of B starts at acts + B*L.out_off + b*size(L.out).  Parameter tensors use the
 * layout the kernels want (conv: [kh][kw][ci][co]); each PlanTensor records the
 * permutation to PyTorch's layout for the weights files. */
#ifndef CNNC_PLAN_H
#define CNNC_PLAN_H
#include "layers.h"

typedef struct PlanTensor {
    const char *name;          /* conv1.weight */
    bool trainable;            /* false: batchnorm running statistics */
    int ndim;
    long shape[4];             /* PyTorch shape */
    long view[4];              /* PyTorch tensor seen as 4-D */
    int perm[4];               /* internal dim d = view dim perm[d] */
    long offset, size;         /* floats into params (trainable) or stats */
    double init_lo, init_hi;
} PlanTensor;

typedef struct PlanLayer {
    const Layer *l;
    const char *prefix;        /* "CONV1_": prefix of its constants in generated C */
    const char *in_buf;        /* C name of its input buffer in the model driver: "x", "conv1_out" */
    const char *out_buf;       /* "conv1_out"; NULL for a folded softmax */
    long out_off;              /* per-image floats into acts */
    long index_off;            /* per-image int32s into index (max pool argmax), else -1 */
    long fixed_off;            /* batch-independent floats into acts (batchnorm mean, 1/std), else -1 */
    long weight_off, bias_off; /* into params, else -1 */
    long stat_off;             /* batchnorm running mean; running var follows at +C */
    long pad_off;              /* conv with padding: per-image floats for the zero-padded input
                                  (kept for the weight gradient; backward reuses it for dL/d(padded in)) */
    long wt_off;               /* conv: batch-independent floats for the weights transposed to
                                  [ky][kx][co][ci], so dL/din vectorizes over input channels */
    long wpad_off;             /* conv whose output channels are not whole 16-float vectors:
                                  batch-independent floats for weights and bias zero-padded to
                                  whole vectors (emit_conv_tiled.c), else -1 */
    bool in_place;             /* relu writing over its input's buffer (see plan.c) */
    bool fused_relu;           /* conv whose in-place relu its forward applies as it stores */
    const char *done_by;       /* relu: the conv that applies it (fused_relu), else NULL */
    bool need_din;             /* false for the first layer: no one wants dLoss/dx */
} PlanLayer;

typedef struct Plan {
    const Model *m;
    PlanLayer *layers;
    int nlayers;
    PlanTensor *tensors;
    int ntensors;
    long param_floats, stat_floats;
    long act_per_image, act_fixed, dact_per_image, index_per_image;
    const char *output_buf;    /* buffer the loss reads */
} Plan;

/* Bytes the generated executable allocates. */
typedef struct PlanMemory {
    double params, grads, optimizer, stats, acts, dacts, index, total;
} PlanMemory;

Plan *plan_model(Arena *a, Diag *d, const Model *m);
PlanMemory plan_memory_inference(const Plan *p);
PlanMemory plan_memory_training(const Plan *p, int batch);
#endif
