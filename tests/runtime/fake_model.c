/* fake_model.c — a hand-written model behind the cnnrt.h interface, so the
 * runtime can be tested end to end before the code generator exists.
 *
 *     input 2x2x1; [dropout 0.25]; fc 3        (cross-entropy, or MSE)
 *
 * fc1.weight is kept internally as [in][out] — the transpose of PyTorch's
 * [out][in] — so that every load, save, init and trace goes through a real
 * layout conversion (view {1,1,3,4}, perm {0,1,3,2}).  bn1.running_mean is
 * a statistics tensor updated like batchnorm's (momentum 0.1, from the batch
 * mean of the outputs) in training mode, and not used otherwise, so that
 * STAT tensors are saved, loaded and traced.
 * Builds: -DFAKE_DROPOUT adds inverted dropout on the input; -DFAKE_MSE uses
 * the MSE loss; -DFAKE_BUG makes backward wrong for gradcheck to catch. */
#include "cnnrt.h"

enum { IN = 4, OUT = 3, W_OFF = 0, B_OFF = IN * OUT, PARAMS = IN * OUT + OUT };
#define FAKE_DROP_P 0.25f

static const CnnTensor fake_tensors[] = {
    {.name = "fc1.weight", .role = CNN_TENSOR_PARAM, .ndim = 2, .shape = {OUT, IN}, .view = {1, 1, OUT, IN},
     .perm = {0, 1, 3, 2}, .offset = W_OFF, .size = IN * OUT, .init_lo = -0.5f, .init_hi = 0.5f},
    {.name = "fc1.bias", .role = CNN_TENSOR_PARAM, .ndim = 1, .shape = {OUT}, .view = {1, 1, 1, OUT},
     .perm = {0, 1, 2, 3}, .offset = B_OFF, .size = OUT, .init_lo = -0.5f, .init_hi = 0.5f},
    {.name = "bn1.running_mean", .role = CNN_TENSOR_STAT, .ndim = 1, .shape = {OUT}, .view = {1, 1, 1, OUT},
     .perm = {0, 1, 2, 3}, .offset = 0, .size = OUT, .init_lo = 0, .init_hi = 0},
};

/* acts: [max_batch][IN] the input after dropout, then [max_batch][OUT] outputs. */
static float *fake_input(const CnnCtx *c) { return c->acts; }
static float *fake_output(const CnnCtx *c) { return c->acts + (long)c->max_batch * IN; }

static float fake_drop(const CnnCtx *c, int b, int i)
{
#ifdef FAKE_DROPOUT
    if (c->training) return cnn_hash_uniform(c->seed, 1, (uint64_t)b * IN + i) < FAKE_DROP_P ? 0.0f : 1.0f / (1 - FAKE_DROP_P);
#else
    (void)c, (void)b, (void)i;
#endif
    return 1.0f;
}

static const float *fake_forward(const CnnCtx *c, const float *x)
{
    const float *w = c->params + W_OFF, *bias = c->params + B_OFF;   /* w: [IN][OUT] */
    float *in = fake_input(c), *out = fake_output(c);
    for (int b = 0; b < c->batch; b++) {
        for (int i = 0; i < IN; i++) in[b * IN + i] = x[b * IN + i] * fake_drop(c, b, i);
        for (int o = 0; o < OUT; o++) {
            float acc = bias[o];
            for (int i = 0; i < IN; i++) acc += w[i * OUT + o] * in[b * IN + i];
            out[b * OUT + o] = acc;
        }
    }
    for (int o = 0; c->training && o < OUT; o++) {
        double mean = 0;
        for (int b = 0; b < c->batch; b++) mean += out[b * OUT + o];
        c->stats[o] = 0.9f * c->stats[o] + 0.1f * (float)(mean / c->batch);
    }
    return out;
}

static void fake_backward(const CnnCtx *c, const float *x, const float *dout)
{
    (void)x;
    const float *in = fake_input(c);
    float *dw = c->grads + W_OFF, *db = c->grads + B_OFF;
    for (int k = 0; k < PARAMS; k++) c->grads[k] = 0;
    for (int b = 0; b < c->batch; b++)
        for (int o = 0; o < OUT; o++) {
            db[o] += dout[b * OUT + o];
            for (int i = 0; i < IN; i++) dw[i * OUT + o] += in[b * IN + i] * dout[b * OUT + o];
        }
#ifdef FAKE_BUG
    dw[1 * OUT + 2] *= 1.5f; /* torch element [2][1] */
#endif
}

const CnnModel cnn_model = {
    .name = "fake",
    .source = "tests/runtime/fake_model.c",
    .in_h = 2, .in_w = 2, .in_c = 1,
    .outputs = OUT,
#ifdef FAKE_MSE
    .loss = CNN_LOSS_MSE,
#else
    .loss = CNN_LOSS_CROSSENTROPY,
#endif
    .tensors = fake_tensors,
    .ntensors = 3,
    .param_floats = PARAMS,
    .stat_floats = OUT,
    .act_floats_per_image = IN + OUT,
    .act_floats_fixed = 0,
    .dact_floats_per_image = 0,
    .index_per_image = 0,
    .optimizer = CNN_OPT_SGD,
    .lr = 0.5f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .momentum = 0,
    .batch = 16, .epochs = 2,
    .forward = fake_forward,
    .backward = fake_backward,
};
