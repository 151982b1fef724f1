/* plan.h — where every number lives: parameter tensors, activation buffers,
 * argmax indices, scratch.  The summary's memory figures and the generated
 * code's allocations both come from here, so they cannot disagree.
 *
 * Activations are NHWC and per image: layer L's output for image b of a batch
 * of B starts at acts + B*L.out_off + b*size(L.out).  Every per-image buffer
 * (outputs, padded conv inputs, activation gradients) lives in that one
 * arena, and buffers whose lifetimes over a training step do not overlap
 * share floats (plan.c: pack_lifetimes).  Parameter tensors use the
 * layout the kernels want (conv: [kh][kw][ci][co]); each PlanTensor records the
 * permutation to PyTorch's layout for the weights files. */
#ifndef CNNC_PLAN_H
#define CNNC_PLAN_H
#include "layers.h"

/* The most a generated kernel keeps in one per-thread stack buffer (a conv's
 * zero-margined or channel-padded copy of an image's dL/dout): safe on any
 * OpenMP thread's stack. */
enum { PLAN_STACK_BUFFER_MAX_BYTES = 256 * 1024 };

/* A conv with at most PLAN_PIXELS_MAX_IN input and PLAN_PIXELS_MAX_OUT output
 * channels (a first layer) may run forward in vectors of PLAN_PIXEL_VECTOR
 * output pixels (emit_conv_tiled.c: forward_by_pixels). */
enum { PLAN_PIXELS_MAX_IN = 4, PLAN_PIXELS_MAX_OUT = 12, PLAN_PIXEL_VECTOR = 8 };

/* An fc with this many outputs or fewer computes dL/din over vectors of
 * inputs, from its weights transposed (too few outputs for a vector). */
enum { PLAN_FC_DIN_TRANSPOSED = 32 };

/* A conv's dL/dweight is summed over the batch in this many chunks of
 * consecutive images (chunk g: images [⌈g·B/G⌉, ⌈(g+1)·B/G⌉), the split
 * OpenMP's static schedule gives 2 threads in every per-image loop), each
 * chunk into its own copy, then the copies added in chunk order.  With 2
 * threads each sums only the images it ran forward and backward, so no
 * activation crosses between cores: on a 2-vCPU cloud machine whose vCPUs
 * sit on different core complexes a cache line takes 330 ns there and back
 * (70 ns on one complex), and kaggle-digits' dL/dweight reading the other
 * thread's half of the batch made its pools and convs 2-5x slower.  The
 * chunks do not depend on the thread count, so neither do the sums. */
enum { PLAN_GRAD_CHUNKS = 2 };

/* dL/dweight by window rows (emit_conv_tiled.c): a window row's KW·IC floats in
 * vectors of up to PLAN_ROW_VECTOR, at most PLAN_ROW_VECTORS of them. */
enum { PLAN_ROW_VECTOR = 16, PLAN_ROW_VECTORS = 4 };

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
    int producer;              /* index of the layer whose output it reads; -1: the input x */
    long out_off;              /* per-image floats into acts */
    long din_off;              /* its dLoss/d(in): per-image floats into acts; -1: the first layer's
                                  goes to c->dinput, or (mask_by) it is its dLoss/d(out) */
    long index_off;            /* per-image int32s into index (max pool argmax), else -1 */
    long fixed_off;            /* batch-independent floats into acts (batchnorm mean, 1/std), else -1 */
    long weight_off, bias_off; /* into params, else -1 */
    long stat_off;             /* batchnorm running mean; running var follows at +C */
    long pad_off;              /* conv with padding: per-image floats for the zero-padded input
                                  (kept for the weight gradient; backward reuses it for dL/d(padded in));
                                  -1 without padding or when margin_free */
    long wt_off;               /* conv: batch-independent floats for the weights transposed to
                                  [ky][kx][co][ci], so dL/din vectorizes over input channels;
                                  fc with at most PLAN_FC_DIN_TRANSPOSED outputs: [out][in] */
    long wpad_off;             /* conv whose output channels are not whole 16-float vectors:
                                  batch-independent floats for weights and bias zero-padded to
                                  whole vectors (emit_conv_tiled.c), else -1 */
    int wino_m;                /* conv that Winograd F(m×m, 3×3) fits (plan_conv_winograd): the
                                  largest output block m it fits, 4 or 2, else 0 */
    long wino_off;             /* conv with wino_m: batch-independent floats for its transformed
                                  weights [(m+2)²][IC][OC],
                                  or dL/dweight's sums M in backward (emit_conv_winograd.c), else -1;
                                  the same floats as wt_off (a layer's kernels use one or the other) */
    long wpart_off;            /* conv: batch-independent floats for dL/dweight's (or Winograd's M's)
                                  and dL/dbias's sums over image chunks 1 … PLAN_GRAD_CHUNKS − 1
                                  (chunk 0 sums into grads or M); see PLAN_GRAD_CHUNKS */
    bool in_place;             /* relu writing over its input's buffer (see plan.c) */
    bool fused_relu;           /* conv or batchnorm whose in-place relu its forward applies as it stores */
    const char *done_by;       /* relu: the conv or batchnorm that applies it (fused_relu), else NULL */
    const struct PlanLayer *pool_after;  /* Winograd conv or batchnorm with fused_relu: the 2×2 max pool
                                  right after that relu, which its forward applies as it stores each
                                  tile's (or pixel's) outputs, its backward then reading the pool's
                                  dL/dout through the pool's argmax (plan_fused_pools: for a conv where
                                  Winograd fits at any vector width, so the emitter always takes it),
                                  else NULL */
    const struct PlanLayer *pooled_by;   /* that max pool: the conv or batchnorm, else NULL; its din is its
                                  dout */
    bool out_unstored;         /* that conv or batchnorm and its relu: nothing stores or reads their
                                  output, which has no floats (its offset is any other buffer's) */
    const char *mask_by;       /* relu: the layer after it whose backward applies its mask, else NULL */
    bool relu_mask;            /* max pool / conv that applies the relu before it in backward */
    bool din_gather;           /* conv: dL/din gathered per input pixel (stride 1, emit_conv_tiled.c) */
    bool din_phases;           /* strided conv: dL/din gathered per phase of input pixels, unless the
                                  emitter's rows or few-channel paths take it (all apply relu_mask) */
    bool pixels_fit;           /* conv whose forward may run in vectors over output pixels */
    bool margin_free;          /* conv with padding whose kernels test the edges: no padded copy */
    bool rows_fit;             /* margin_free conv whose dL/dweight may run in vectors over window rows
                                  (plan_conv_scratch): wpart_off then has room for every chunk's sums */
    bool bwd_reads_in, bwd_reads_out;  /* what its backward pass reads besides dL/dout */
    bool need_din;             /* false for the first layer: no one wants dLoss/dx */
} PlanLayer;

/* Code-generation choices that change what the plan allocates. */
typedef struct PlanOptions {
    int winograd;   /* the largest Winograd output block: 2 (F(2×2,3×3), the default), 4 or 0 (none) */
} PlanOptions;
typedef struct Plan {
    const Model *m;
    PlanLayer *layers;
    int nlayers;
    PlanTensor *tensors;
    int ntensors;
    long param_floats, stat_floats;
    long act_per_image, act_fixed, index_per_image;
    long act_unshared;         /* what act_per_image would be if no two buffers shared floats */
    const char *output_buf;    /* buffer the loss reads */
    PlanOptions options;
} Plan;

/* Bytes the generated executable allocates. */
typedef struct PlanMemory {
    double params, grads, optimizer, stats, acts, index, total;
} PlanMemory;

/* The phase gather's dL/dout buffer (plan.c: conv_din_phases): zero columns
 * left of output column 0, and its width in pixels. */
long plan_phase_dpad_left(const Layer *l);
long plan_phase_dpad_width(const Layer *l);

/* The defaults, with $CNNC_WINOGRAD (0, 2 or 4) for winograd. */
PlanOptions plan_default_options(void);

/* o NULL: plan_default_options(). */
Plan *plan_model(Arena *a, Diag *d, const Model *m, const PlanOptions *o);
PlanMemory plan_memory_inference(const Plan *p);
PlanMemory plan_memory_training(const Plan *p, int batch);
#endif
