/* cnnrt.h — the contract between code that cnnc generates and libcnnrt.
 *
 * A generated model file (`<model>.c`) defines exactly one symbol the runtime
 * needs: `const CnnModel cnn_model`.  The runtime (libcnnrt.a) provides main(),
 * the `train|eval|predict|gradcheck` commands, optimizers, data loaders, the
 * .npz weights format and the RNG.  Nothing in the runtime knows a layer kind:
 * it only sees tensors (for weights files and optimizers) and three entry
 * points (forward, backward, and the sizes of the buffers they need).
 *
 * Layouts.  Activations are NHWC: image b, row y, column x, channel c is
 * `buf[((b*H + y)*W + x)*C + c]`.  Parameter tensors are stored in whatever
 * layout the generator chose for speed; each CnnTensor says how to convert it
 * to and from PyTorch's layout (the one .npz files hold), see `perm` below.
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stddef.h>
#include <stdint.h>

enum { CNN_MAX_DIMS = 4 };

typedef enum CnnLoss {
    CNN_LOSS_CROSSENTROPY, /* softmax + cross-entropy on logits: d = softmax(z) - onehot */
    CNN_LOSS_MSE,          /* mean over batch and outputs of (y - t)^2, as torch.nn.MSELoss */
    CNN_LOSS_BCE           /* binary cross-entropy on probabilities, as torch.nn.BCELoss */
} CnnLoss;

typedef enum CnnOptimizer { CNN_OPT_SGD, CNN_OPT_MOMENTUM, CNN_OPT_ADAM } CnnOptimizer;

/* Which buffer a tensor lives in. */
typedef enum CnnTensorRole {
    CNN_TENSOR_PARAM, /* trainable: in CnnCtx.params, with a gradient at the same offset in grads */
    CNN_TENSOR_STAT   /* not trainable (batchnorm running statistics): in CnnCtx.stats */
} CnnTensorRole;

/* One named tensor of the model, as PyTorch's state_dict names it.
 *
 * Conversion to/from PyTorch layout: view the PyTorch tensor as the 4-D array
 * `view` (row-major; e.g. an fc weight [out, C*H*W] is viewed as [out, C, H, W]
 * because torch.flatten orders its input C,H,W).  The internal array is the
 * same data transposed so that internal dimension d is view dimension perm[d]:
 *     internal[i0][i1][i2][i3] = view[j] with j[perm[d]] = i[d].
 * perm = {0,1,2,3} means the internal layout is PyTorch's. */
typedef struct CnnTensor {
    const char *name;          /* "conv1.weight", "bn1.running_var" */
    CnnTensorRole role;
    int ndim;                  /* PyTorch rank: 1 for bias, 2 for fc, 4 for conv */
    int shape[CNN_MAX_DIMS];   /* PyTorch shape (first ndim entries used) */
    int view[CNN_MAX_DIMS];    /* the same tensor seen as 4-D (leading 1s pad rank < 4) */
    int perm[CNN_MAX_DIMS];    /* internal dim d = view dim perm[d] */
    long offset;               /* in floats, into params (role PARAM) or stats (role STAT) */
    long size;                 /* number of floats */
    float init_lo, init_hi;    /* fresh weights: uniform in [lo, hi]; lo == hi means constant */
} CnnTensor;

/* What one forward/backward call works on.  The runtime allocates every
 * buffer once, with the sizes CnnModel states, and reuses it for every step. */
typedef struct CnnCtx {
    float *params;     /* [param_floats] trainable parameters, internal layouts */
    float *grads;      /* [param_floats] backward() overwrites it with dLoss/dparams */
    float *stats;      /* [stat_floats] batchnorm running mean/var */
    float *acts;       /* [act_floats_per_image * max_batch + act_floats_fixed] */
    float *dacts;      /* [dact_floats_per_image * max_batch] activation gradients */
    int32_t *index;    /* [index_per_image * max_batch] max-pool argmax positions */
    int batch;         /* images in this call, 1..max_batch */
    int max_batch;     /* what acts/dacts/index were sized for */
    int training;      /* 1: dropout active, batchnorm uses and updates batch stats */
    uint64_t seed;     /* dropout masks: a function of (seed, layer, image, element) */
    float *dinput;     /* NULL, or [batch][in_h][in_w][in_c]: backward() also writes dLoss/dx
                          there (the course's dL/dX; tests use it, training leaves it NULL) */
    double *profile;   /* NULL, or [1 + 2 * nlayers]: cnn_lap's clock, then the seconds spent in
                          each layer's forward, then in each layer's backward (`bench --layers`) */
} CnnCtx;

/* One layer as `bench --layers` reports it. */
typedef struct CnnLayerInfo {
    const char *name;             /* "conv1" */
    const char *kind;             /* the .cnn word: "conv", "relu" */
    long macs;                    /* multiply-accumulates per image, forward */
    int backward_macs_factor;     /* backward MACs = factor * macs: 2 (dweight and dinput), 1, 0 */
} CnnLayerInfo;

typedef struct CnnModel {
    const char *name;             /* "lenet5" */
    const char *source;           /* the .cnn file it came from, for messages */
    int in_h, in_w, in_c;         /* input HxWxC */
    int outputs;                  /* floats per image out of the last layer (classes) */
    CnnLoss loss;
    const CnnTensor *tensors;
    int ntensors;
    long param_floats, stat_floats;
    long act_floats_per_image;    /* activations kept for backward, masks */
    long act_floats_fixed;        /* per-batch scratch (batchnorm mean/var per channel) */
    long dact_floats_per_image;
    long index_per_image;
    /* Training settings from the .cnn file (flags override them). */
    CnnOptimizer optimizer;
    float lr, beta1, beta2, eps, momentum;
    int batch, epochs;
    /* x: [batch][in_h][in_w][in_c].  Fills the activations; returns the
     * output buffer: [batch][outputs] (logits for cross-entropy). */
    const float *(*forward)(const CnnCtx *c, const float *x);
    /* After forward() on the same x: dout = dLoss/doutput [batch][outputs]
     * (already divided by the batch size).  Overwrites c->grads; in training
     * mode nothing else is changed. */
    void (*backward)(const CnnCtx *c, const float *x, const float *dout);
    const CnnLayerInfo *layers;   /* [nlayers], in order; forward/backward time them through cnn_lap */
    int nlayers;
} CnnModel;

/* Called by forward() and backward() after each layer: with c->profile set,
 * adds the time since the previous call to c->profile[1 + slot] (slot < 0
 * only starts the clock); without it, returns at once. */
void cnn_lap(const CnnCtx *c, int slot);

/* Defined by the generated model file. */
extern const CnnModel cnn_model;

/* The runtime's entry point; libcnnrt's main() calls it with cnn_model. */
int cnn_main(const CnnModel *m, int argc, char **argv);

/* Deterministic uniform [0,1) for dropout: a hash of (seed, a, b), so that
 * the mask does not depend on thread count or call order. */
static inline float cnn_hash_uniform(uint64_t seed, uint64_t a, uint64_t b)
{
    uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xD1B54A32D192ED03ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

#endif
