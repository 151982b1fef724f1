/* emit_bn.c — batch normalization per channel (nn.BatchNorm2d semantics).
 *
 * Training: normalize with the batch's mean and biased variance over
 * (b, y, x); update the running estimates with the unbiased variance,
 *     running = (1 − momentum)·running + momentum·batch_statistic.
 * Otherwise normalize with the running estimates.  Sums are in double: over a
 * batch of 64 28×28 images a channel sums 50,176 values.  The batch mean and
 * 1/std are kept for backward, which implements, with x̂ = (x − μ)/σ,
 *     dγ = Σ dy·x̂,  dβ = Σ dy,  dx = γ/(σN) · (N·dy − dβ − x̂·dγ). */
#include "emit.h"

static void emit_bn_pointers(Emitter *e)
{
    emit(e, "enum { C = @OC };");
    emit(e, "const size_t n = (size_t)c->batch * @OH * @OW;   /* values per channel */");
    emit(e, "float *restrict mean = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @BATCH_STATS;");
    emit(e, "float *restrict invstd = mean + C;");
    emit(e, "const float *restrict gamma = c->params + @WEIGHT, *restrict beta = c->params + @BIAS;");
}

void emit_batchnorm_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    emit(e, "/* out = γ·(in − μ)/√(σ² + %g) + β per channel; μ, σ² from the batch in training */", l->a.eps);
    emit_forward_open(e, pl, true);
    emit_bn_pointers(e);
    emit(e, "float *restrict running_mean = c->stats + @RUNNING, *restrict running_var = running_mean + C;");
    emit_open(e, "if (c->training) {");
    emit(e, "double sum[C] = {0}, sq[C] = {0};");
    emit(e, "for (size_t q = 0; q < n; q++)");
    emit(e, "    for (int ch = 0; ch < C; ch++) sum[ch] += in[q * C + ch];");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < C; ch++) sum[ch] /= (double)n;");
    emit(e, "for (size_t q = 0; q < n; q++)");
    emit(e, "    for (int ch = 0; ch < C; ch++) sq[ch] += (in[q * C + ch] - sum[ch]) * (in[q * C + ch] - sum[ch]);");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "const double var = sq[ch] / (double)n, unbiased = n > 1 ? sq[ch] / (double)(n - 1) : var;");
    emit(e, "mean[ch] = (float)sum[ch];");
    emit(e, "invstd[ch] = (float)(1.0 / sqrt(var + %.9g));", l->a.eps);
    emit(e, "running_mean[ch] = (float)((1.0 - %.9g) * running_mean[ch] + %.9g * sum[ch]);", l->a.momentum,
         l->a.momentum);
    emit(e, "running_var[ch] = (float)((1.0 - %.9g) * running_var[ch] + %.9g * unbiased);", l->a.momentum,
         l->a.momentum);
    emit_close(e, "ch");
    emit_close(e, NULL);
    emit_open(e, "else {");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "mean[ch] = running_mean[ch];");
    emit(e, "invstd[ch] = (float)(1.0 / sqrt((double)running_var[ch] + %.9g));", l->a.eps);
    emit_close(e, "ch");
    emit_close(e, NULL);
    emit(e, "#pragma omp parallel for");
    emit(e, "for (size_t q = 0; q < n; q++)");
    emit(e, "    for (int ch = 0; ch < C; ch++)");
    emit(e, "        out[q * C + ch] = (in[q * C + ch] - mean[ch]) * invstd[ch] * gamma[ch] + beta[ch];");
    emit_close(e, NULL);
}

void emit_batchnorm_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, true, false);
    emit_bn_pointers(e);
    emit(e, "(void)beta;");
    emit(e, "float *restrict dgamma = c->grads + @WEIGHT, *restrict dbeta = c->grads + @BIAS;");
    emit(e, "double sg[C] = {0}, sgx[C] = {0};   /* Σ dy and Σ dy·x̂ per channel */");
    emit_open(e, "for (size_t q = 0; q < n; q++) {");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "const float xhat = (in[q * C + ch] - mean[ch]) * invstd[ch];");
    emit(e, "sg[ch] += dout[q * C + ch];");
    emit(e, "sgx[ch] += dout[q * C + ch] * xhat;");
    emit_close(e, "ch");
    emit_close(e, "q");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < C; ch++) dgamma[ch] = (float)sgx[ch], dbeta[ch] = (float)sg[ch];");
    {
        emit_din_open(e, pl);
        emit(e, "/* in training, μ and σ depend on every input, hence the two correction terms */");
        emit(e, "#pragma omp parallel for");
        emit_open(e, "for (size_t q = 0; q < n; q++) {");
        emit_open(e, "for (int ch = 0; ch < C; ch++) {");
        emit(e, "const float xhat = (in[q * C + ch] - mean[ch]) * invstd[ch];");
        emit(e, "din[q * C + ch] = (float)((double)gamma[ch] * invstd[ch] / (double)n *");
        emit(e, "                          ((double)n * dout[q * C + ch] - sg[ch] - xhat * sgx[ch]));");
        emit_close(e, "ch");
        emit_close(e, "q");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}
