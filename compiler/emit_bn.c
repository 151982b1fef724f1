/* emit_bn.c — batch normalization per channel (nn.BatchNorm2d semantics).
 *
 * Training: normalize with the batch's mean and biased variance over
 * (b, y, x); update the running estimates with the unbiased variance,
 *     running = (1 − momentum)·running + momentum·batch_statistic.
 * Otherwise normalize with the running estimates.  Sums are in double: over a
 * batch of 64 28×28 images a channel sums 50,176 values.  The batch mean and
 * 1/std are kept for backward, which implements, with x̂ = (x − μ)/σ,
 *     dγ = Σ dy·x̂,  dβ = Σ dy,  dx = γ/(σN) · (N·dy − dβ − x̂·dγ).
 *
 * Each sum over the batch runs in PLAN_GRAD_CHUNKS chunks of images (the
 * halves 2 threads take in every per-image loop), each image summed on its
 * own and added to its chunk's, the chunks then added in order: the sums do
 * not depend on the thread count.  A relu right after runs in place over the
 * output, applied as it is stored (plan.c: relu_in_place, fused_relu), and a
 * 2×2 max pool after that relu is applied by the same pass (plan_fused_pools).
 * Fashion's bn1 (64 × 28 × 28 × 32) had summed on one thread, in two passes
 * (the mean, then the squares), and divided by N for each element of dx:
 * forward 0.48 and backward 1.71 ms a batch, then relu1's 0.49. */
#include "emit.h"

static void emit_bn_pointers(Emitter *e)
{
    emit(e, "enum { C = @OC };");
    emit(e, "const size_t n = (size_t)c->batch * @OH * @OW;   /* values per channel */");
    emit(e, "float *restrict mean = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @BATCH_STATS;");
    emit(e, "float *restrict invstd = mean + C;");
    emit(e, "const float *restrict gamma = c->params + @WEIGHT, *restrict beta = c->params + @BIAS;");
}

/* The pixel loop of image b: q the pixel, at its first float.  Backward,
 * with the pool after fused, also routed[ch], dL/d(our output) at the pixel:
 * the pool's backward and the relu's, the dL/dout of its window (at o in the
 * pool's arrays) where the window's argmax is this pixel (never where the
 * maximum was not > 0), else 0.  A loop of its own: gcc 12 left a loop scalar
 * that selects by an int32 compare and sums in double (fashion's bn1 backward
 * 1.2 → 7.5 ms). */
static void emit_bn_pixels_open(Emitter *e, const PlanLayer *pl, bool backward)
{
    emit_open(e, "for (int q = 0; q < @OH * @OW; q++) {");
    emit(e, "const size_t at = ((size_t)b * @OH * @OW + q) * C;");
    if (!backward || !pl->pool_after) return;
    const char *pp = pl->pool_after->prefix;
    emit(e, "const size_t o = (((size_t)b * %sOH + q / @OW / 2) * %sOW + q %% @OW / 2) * C;   /* its window */", pp, pp);
    emit(e, "float routed[C];");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < C; ch++) routed[ch] = argmax[o + ch] == q ? dout[o + ch] : 0.0f;");
}

/* dy: dL/d(our output) at (at, ch). */
static const char *bn_dy(const PlanLayer *pl)
{
    return pl->pool_after ? "routed[ch]" : "dout[at + ch]";
}

/* Per chunk g of the batch (one task a chunk, on the thread that holds those
 * images), `body` per element (ch, the channel; at, q as emit_bn_pixels_open)
 * summed into the image's own i0[ch] and i1[ch], those into the chunk's
 * part[g][·][ch]; then added up in chunk order into n0 and n1 (double[C]). */
static void emit_chunk_sums(Emitter *e, const PlanLayer *pl, bool backward, const char *decl, const char *body,
                            const char *n0, const char *n1)
{
    emit(e, "double part[CNN_GRAD_CHUNKS][2][C];");
    emit(e, "#pragma omp parallel for schedule(static)");
    emit_open(e, "for (int g = 0; g < CNN_GRAD_CHUNKS; g++) {");
    emit(e, "double s0[C] = {0}, s1[C] = {0};   /* the chunk's */");
    emit_open(e, "for (int b = cnn_chunk_first(c->batch, g); b < cnn_chunk_first(c->batch, g + 1); b++) {");
    emit(e, "double i0[C] = {0}, i1[C] = {0};   /* the image's: two shorter sums round less than one */");
    emit_bn_pixels_open(e, pl, backward);
    emit(e, "#pragma omp simd");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "%s", decl);
    emit(e, "%s", body);
    emit_close(e, "ch");
    emit_close(e, "q");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < C; ch++) s0[ch] += i0[ch], s1[ch] += i1[ch];");
    emit_close(e, "b");
    emit(e, "for (int ch = 0; ch < C; ch++) part[g][0][ch] = s0[ch], part[g][1][ch] = s1[ch];");
    emit_close(e, "g");
    emit(e, "double %s[C] = {0}, %s[C] = {0};", n0, n1);
    emit(e, "for (int g = 0; g < CNN_GRAD_CHUNKS; g++)");
    emit(e, "    for (int ch = 0; ch < C; ch++) %s[ch] += part[g][0][ch], %s[ch] += part[g][1][ch];", n0, n1);
}

/* The normalizing pass, image by image on the threads' halves: y, the
 * output at (at, ch), stored (with the relu after, fused) or, with the pool
 * after fused, taken into each window's maximum. */
static void emit_bn_normalize(Emitter *e, const PlanLayer *pl)
{
    const char *y = "const float y = (in[at + ch] - mean[ch]) * invstd[ch] * gamma[ch] + beta[ch];";
    emit_batch_loop(e);
    if (!pl->pool_after) {
        emit_bn_pixels_open(e, pl, false);
        emit(e, "#pragma omp simd");
        emit_open(e, "for (int ch = 0; ch < C; ch++) {");
        emit(e, "%s", y);
        if (pl->fused_relu)
            emit(e, "out[at + ch] = y > 0.0f ? y : 0.0f;   /* the relu after, fused (in place: its output is ours) */");
        else
            emit(e, "out[at + ch] = y;");
        emit_close(e, "ch");
        emit_close(e, "q");
        emit_close(e, "b");
        return;
    }
    const PlanLayer *pool = pl->pool_after;
    const char *pp = pool->prefix;
    emit_open(e, "for (int w = 0; w < %sOH * %sOW; w++) {   /* the pool's windows */", pp, pp);
    emit(e, "const size_t o = ((size_t)b * %sOH * %sOW + w) * C;", pp, pp);
    emit(e, "float best[C];");
    emit(e, "int32_t where[C];");
    emit(e, "for (int ch = 0; ch < C; ch++) best[ch] = -1.0f, where[ch] = -1;   /* below any relu output */");
    emit_open(e, "for (int k = 0; k < 4; k++) {   /* its pixels, row by row, as %s_forward takes them */", pool->l->name);
    emit(e, "const int q = (w / %sOW * 2 + k / 2) * @OW + w %% %sOW * 2 + k %% 2;", pp, pp);
    emit(e, "const size_t at = ((size_t)b * @OH * @OW + q) * C;");
    emit(e, "#pragma omp simd");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "%s", y);
    emit(e, "const float r = y > 0.0f ? y : 0.0f;   /* the relu after, fused */");
    emit(e, "if (r > best[ch]) best[ch] = r, where[ch] = q;   /* the first maximum */");
    emit_close(e, "ch");
    emit_close(e, "k");
    emit(e, "#pragma omp simd");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "pooled[o + ch] = best[ch];");
    if (pool->relu_mask)   /* always: the relu before it is never the first layer */
        emit(e, "argmax[o + ch] = best[ch] > 0.0f ? where[ch] : -1;   /* as %s_forward: no gradient where not > 0 */",
             pool->l->name);
    else
        emit(e, "argmax[o + ch] = where[ch];");
    emit_close(e, "ch");
    emit_close(e, "w");
    emit_close(e, "b");
}

/* With the pool after fused: its output and argmax. */
static void emit_bn_pool_pointers(Emitter *e, const PlanLayer *pl, bool forward)
{
    const PlanLayer *pool = pl->pool_after;
    if (!pool) return;
    if (forward) {
        emit(e, "(void)out;   /* never stored: %s alone would read it, and this layer applies %s */", pool->l->name,
             pool->l->name);
        emit(e, "float *restrict pooled = c->acts + (size_t)c->batch * %sOUT;   /* %s's output and argmax */",
             pool->prefix, pool->l->name);
        emit(e, "int32_t *restrict argmax = c->index + (size_t)c->batch * %sARGMAX;", pool->prefix);
    } else {
        emit(e, "/* dout is %s's dL/dout, read through its argmax (%s's backward, and the relu's, fused) */",
             pool->l->name, pool->l->name);
        emit(e, "const int32_t *restrict argmax = c->index + (size_t)c->batch * %sARGMAX;", pool->prefix);
    }
}

void emit_batchnorm_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    emit(e, "/* out = γ·(in − μ)/√(σ² + %g) + β per channel; μ, σ² from the batch in training */", l->a.eps);
    emit_forward_open(e, pl, true);
    emit_bn_pointers(e);
    emit_bn_pool_pointers(e, pl, true);
    emit(e, "float *restrict running_mean = c->stats + @RUNNING, *restrict running_var = running_mean + C;");
    emit_open(e, "if (c->training) {");
    emit(e, "/* Σ(x − x₀) and Σ(x − x₀)², x₀ the batch's first pixel: near the mean, so that a mean large");
    emit(e, "   beside the spread does not cancel in Σd² − (Σd)²/n */");
    emit(e, "const float *restrict first = in;");
    emit_chunk_sums(e, pl, false, "const double d = (double)in[at + ch] - first[ch];", "i0[ch] += d, i1[ch] += d * d;",
                    "sum", "sq");
    emit_open(e, "for (int ch = 0; ch < C; ch++) {");
    emit(e, "const double d = sum[ch] / (double)n, var = fmax(sq[ch] / (double)n - d * d, 0.0);");
    emit(e, "const double unbiased = n > 1 ? var * (double)n / (double)(n - 1) : var, mu = first[ch] + d;");
    emit(e, "mean[ch] = (float)mu;");
    emit(e, "invstd[ch] = (float)(1.0 / sqrt(var + %.9g));", l->a.eps);
    emit(e, "running_mean[ch] = (float)((1.0 - %.9g) * running_mean[ch] + %.9g * mu);", l->a.momentum,
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
    emit_bn_normalize(e, pl);
    emit_close(e, NULL);
}

void emit_batchnorm_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, true, false);
    emit_bn_pointers(e);
    emit(e, "(void)beta;");
    emit(e, "float *restrict dgamma = c->grads + @WEIGHT, *restrict dbeta = c->grads + @BIAS;");
    emit_bn_pool_pointers(e, pl, false);
    emit(e, "/* sg = Σ dy and sgx = Σ dy·x̂ per channel */");
    char decl[256];
    snprintf(decl, sizeof decl, "const float xhat = (in[at + ch] - mean[ch]) * invstd[ch], dy = %s;", bn_dy(pl));
    emit_chunk_sums(e, pl, true, decl, "i0[ch] += dy, i1[ch] += (double)dy * xhat;", "sg", "sgx");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < C; ch++) dgamma[ch] = (float)sgx[ch], dbeta[ch] = (float)sg[ch];");
    {
        emit_din_open(e, pl);
        emit(e, "/* in training, μ and σ depend on every input, hence the two correction terms; in double, where");
        emit(e, "   dy and the sums nearly cancel (dy near its mean), as before the division left the loop */");
        emit(e, "double f[C];   /* γ/(σN), once a channel rather than a division an element */");
        emit(e, "for (int ch = 0; ch < C; ch++) f[ch] = (double)gamma[ch] * invstd[ch] / (double)n;");
        emit_batch_loop(e);
        emit_bn_pixels_open(e, pl, true);
        emit(e, "#pragma omp simd");
        emit_open(e, "for (int ch = 0; ch < C; ch++) {");
        emit(e, "%s", decl);
        emit(e, "din[at + ch] = (float)(f[ch] * ((double)n * dy - sg[ch] - xhat * sgx[ch]));");
        emit_close(e, "ch");
        emit_close(e, "q");
        emit_close(e, "b");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}
