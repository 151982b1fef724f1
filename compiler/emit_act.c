/* emit_act.c — element-wise activations, softmax and dropout.
 *
 * Backward passes use what PyTorch uses, so gradients agree at the kinks:
 * relu passes dL/dout where out > 0, leakyrelu where in > 0, sigmoid and
 * tanh are written through their outputs (σ' = σ(1−σ), tanh' = 1 − tanh²).
 * Dropout draws its mask from a hash of (step seed, layer, element), so the
 * backward pass recomputes the mask instead of storing it, and the mask does
 * not depend on how images are split among threads. */
#include "emit.h"

static void emit_elementwise_open(Emitter *e)
{
    emit(e, "const size_t n = (size_t)c->batch * @OH * @OW * @OC;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (size_t i = 0; i < n; i++) {");
}

void emit_activation_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    switch (l->kind->tag) {
    case LAYER_RELU: emit(e, "/* out = max(in, 0) */"); break;
    case LAYER_SIGMOID: emit(e, "/* out = 1 / (1 + e^-in) */"); break;
    case LAYER_TANH: emit(e, "/* out = tanh(in) */"); break;
    default: emit(e, "/* out = in > 0 ? in : %g·in */", l->a.alpha); break;
    }
    if (pl->done_by) {
        emit(e, "/* done by %s_forward, which stores max(out, 0) (in place: out is its output buffer) */",
             pl->done_by);
        emit_forward_empty(e, pl);
        return;
    }
    if (pl->in_place) {
        /* out is in's buffer (plan.c: relu_in_place), so only out is touched */
        emit(e, "/* in place: the layer before needs its output no more, so out is the same buffer as in */");
        emit_forward_open(e, pl, false);
        emit_elementwise_open(e);
        emit(e, "out[i] = out[i] > 0.0f ? out[i] : 0.0f;");
        emit_close(e, "i");
        emit_close(e, NULL);
        return;
    }
    emit_forward_open(e, pl, true);
    emit_elementwise_open(e);
    switch (l->kind->tag) {
    case LAYER_RELU: emit(e, "out[i] = in[i] > 0.0f ? in[i] : 0.0f;"); break;
    case LAYER_SIGMOID: emit(e, "out[i] = 1.0f / (1.0f + expf(-in[i]));"); break;
    case LAYER_TANH: emit(e, "out[i] = tanhf(in[i]);"); break;
    default: emit(e, "out[i] = in[i] > 0.0f ? in[i] : %s * in[i];", c_float(l->a.alpha).s); break;
    }
    emit_close(e, "i");
    emit_close(e, NULL);
}

void emit_activation_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    bool leaky = l->kind->tag == LAYER_LEAKYRELU;
    if (pl->mask_by) {
        /* plan.c made din the same buffer as dout, which the next layer already masked */
        emit(e, "/* done by %s_backward, which passes dL/d(our output) on only where our output is > 0: din is dout */",
             pl->mask_by);
        emit_backward_empty(e, pl);
        return;
    }
    emit_backward_open(e, pl, leaky, !leaky);
    {
        emit_din_open(e, pl);
        emit_elementwise_open(e);
        switch (l->kind->tag) {
        case LAYER_RELU: emit(e, "din[i] = out[i] > 0.0f ? dout[i] : 0.0f;"); break;
        case LAYER_SIGMOID: emit(e, "din[i] = dout[i] * out[i] * (1.0f - out[i]);"); break;
        case LAYER_TANH: emit(e, "din[i] = dout[i] * (1.0f - out[i] * out[i]);"); break;
        default: emit(e, "din[i] = in[i] > 0.0f ? dout[i] : %s * dout[i];", c_float(l->a.alpha).s); break;
        }
        emit_close(e, "i");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

void emit_softmax_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit(e, "/* out[.., c] = e^(in[.., c] − max) / Σ_c' e^(in[.., c'] − max), over the channels of each pixel */");
    emit_forward_open(e, pl, true);
    emit(e, "const size_t pixels = (size_t)c->batch * @OH * @OW;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (size_t q = 0; q < pixels; q++) {");
    emit(e, "const float *restrict px = in + q * @OC;");
    emit(e, "float *restrict po = out + q * @OC;");
    emit(e, "float m = px[0];");
    emit(e, "for (int ch = 1; ch < @OC; ch++) m = px[ch] > m ? px[ch] : m;");
    emit(e, "float sum = 0.0f;");
    emit(e, "for (int ch = 0; ch < @OC; ch++) sum += po[ch] = expf(px[ch] - m);");
    emit(e, "for (int ch = 0; ch < @OC; ch++) po[ch] /= sum;");
    emit_close(e, "q");
    emit_close(e, NULL);
}

void emit_softmax_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, false, true);
    {
        emit_din_open(e, pl);
        emit(e, "/* din = out · (dout − Σ_c dout·out), the softmax Jacobian p_i(δ_ij − p_j) applied to dout */");
        emit(e, "const size_t pixels = (size_t)c->batch * @OH * @OW;");
        emit(e, "#pragma omp parallel for");
        emit_open(e, "for (size_t q = 0; q < pixels; q++) {");
        emit(e, "const float *restrict y = out + q * @OC, *restrict g = dout + q * @OC;");
        emit(e, "float dot = 0.0f;");
        emit(e, "for (int ch = 0; ch < @OC; ch++) dot += g[ch] * y[ch];");
        emit(e, "for (int ch = 0; ch < @OC; ch++) din[q * @OC + ch] = y[ch] * (g[ch] - dot);");
        emit_close(e, "q");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

/* The kept-scale of element i: 0 with probability p, else 1/(1−p). */
static void emit_dropout_scale(Emitter *e, const PlanLayer *pl)
{
    emit(e, "const float keep = cnn_hash_uniform(c->seed, %d, i) < %s ? 0.0f : %s;", pl->l->id,
         c_float(pl->l->a.p).s, c_float(1.0 / (1.0 - pl->l->a.p)).s);
}

void emit_dropout_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit(e, "/* training: out = in · keep with keep 0 (probability %g) or 1/(1−%g); otherwise out = in */",
         pl->l->a.p, pl->l->a.p);
    emit_forward_open(e, pl, true);
    emit_open(e, "if (!c->training) {");
    emit(e, "memcpy(out, in, sizeof(float) * (size_t)c->batch * @OH * @OW * @OC);");
    emit(e, "return;");
    emit_close(e, NULL);
    emit_elementwise_open(e);
    emit_dropout_scale(e, pl);
    emit(e, "out[i] = in[i] * keep;");
    emit_close(e, "i");
    emit_close(e, NULL);
}

void emit_dropout_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, false, false);
    {
        emit_din_open(e, pl);
        emit(e, "/* the same mask, recomputed from the same seed */");
        emit_open(e, "if (!c->training) {");
        emit(e, "memcpy(din, dout, sizeof(float) * (size_t)c->batch * @OH * @OW * @OC);");
        emit(e, "return;");
        emit_close(e, NULL);
        emit_elementwise_open(e);
        emit_dropout_scale(e, pl);
        emit(e, "din[i] = dout[i] * keep;");
        emit_close(e, "i");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}
