/* emit_fc.c — fully connected layers and flatten, forward and backward.
 *
 * fc weights are stored [in][out], so for each input value the update of all
 * outputs is one contiguous, vectorizable row.  An fc reads its input in the
 * order it is stored: NHWC when it follows an image (the weights file's
 * C,H,W order is converted on load, see plan.c), or C,H,W after an explicit
 * `flatten`, which reorders NHWC into PyTorch's torch.flatten order so that
 * everything after it sees the same vector PyTorch would. */
#include "emit.h"

/* Images are taken FC_BLOCK at a time so each weight row, read once, serves
 * all of them: an fc layer's weights are often larger than the cache, and one
 * image's matrix-vector product would stream them from memory every time.
 *
 * The forward sum over the inputs is blocked: FC_CHUNK products go into a
 * fresh partial sum, which is then added to the output.  One float
 * accumulator over all of a 1,440-input layer's products drifted 5-14x
 * further from the float64 reference than PyTorch's own blocked float32 sum
 * (tests/ref/regressions/rs1000_0567.cnn); two levels of FC_CHUNK-term sums
 * keep the rounding error near PyTorch's at no measurable cost.  Outputs are
 * taken FC_OTILE at a time so the partial sums stay a few KiB on the stack. */
enum { FC_BLOCK = 8, FC_CHUNK = 64, FC_OTILE = 256 };

static void emit_image_blocks_open(Emitter *e)
{
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int b0 = 0; b0 < c->batch; b0 += %d) {", FC_BLOCK);
    emit(e, "const int nb = c->batch - b0 < %d ? c->batch - b0 : %d;", FC_BLOCK, FC_BLOCK);
}

void emit_fc_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    int otile = l->out.c < FC_OTILE ? l->out.c : FC_OTILE;
    emit(e, "/* out[b,o] = bias[o] + Σ_i in[b,i] · w[i,o], %d images at a time,", FC_BLOCK);
    emit(e, "   summed over the inputs in chunks of %d (see emit_fc.c on rounding) */", FC_CHUNK);
    emit_forward_open(e, pl, true);
    emit(e, "enum { IN = @IH * @IW * @IC, CHUNK = %d, OTILE = %d };", FC_CHUNK, otile);
    emit(e, "const float *restrict weight = c->params + @WEIGHT;   /* [IN][@OC] */");
    if (l->a.bias) emit(e, "const float *restrict bias = c->params + @BIAS;       /* [@OC] */");
    emit_image_blocks_open(e);
    emit_open(e, "for (int o0 = 0; o0 < @OC; o0 += OTILE) {");
    emit(e, "const int no = @OC - o0 < OTILE ? @OC - o0 : OTILE;");
    emit(e, "float sum[%d][OTILE], part[%d][OTILE];", FC_BLOCK, FC_BLOCK);
    emit(e, "for (int t = 0; t < nb; t++)");
    emit(e, "    for (int o = 0; o < no; o++) sum[t][o] = %s;", l->a.bias ? "bias[o0 + o]" : "0.0f");
    emit_open(e, "for (int i0 = 0; i0 < IN; i0 += CHUNK) {");
    emit(e, "const int ni = IN - i0 < CHUNK ? IN - i0 : CHUNK;");
    emit(e, "for (int t = 0; t < nb; t++)");
    emit(e, "    for (int o = 0; o < no; o++) part[t][o] = 0.0f;");
    emit_open(e, "for (int i = i0; i < i0 + ni; i++) {");
    emit(e, "const float *restrict row = weight + (size_t)i * @OC + o0;");
    emit_open(e, "for (int t = 0; t < nb; t++) {");
    emit(e, "const float v = in[(size_t)(b0 + t) * IN + i];");
    emit(e, "#pragma omp simd");
    emit(e, "for (int o = 0; o < no; o++) part[t][o] += v * row[o];");
    emit_close(e, "t");
    emit_close(e, "i");
    emit(e, "for (int t = 0; t < nb; t++)");
    emit(e, "    for (int o = 0; o < no; o++) sum[t][o] += part[t][o];");
    emit_close(e, "i0");
    emit(e, "for (int t = 0; t < nb; t++)");
    emit(e, "    for (int o = 0; o < no; o++) out[(size_t)(b0 + t) * @OC + o0 + o] = sum[t][o];");
    emit_close(e, "o0");
    emit_close(e, "b0");
    emit_close(e, NULL);
}

void emit_fc_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    emit_backward_open(e, pl, true, false);
    emit(e, "enum { IN = @IH * @IW * @IC };");
    if (l->a.bias) {
        emit(e, "/* dL/dbias[o] = Σ_b dout[b,o] */");
        emit(e, "float *restrict dbias = c->grads + @BIAS;");
        emit(e, "for (int o = 0; o < @OC; o++) dbias[o] = 0.0f;");
        emit(e, "for (int b = 0; b < c->batch; b++)");
        emit(e, "    for (int o = 0; o < @OC; o++) dbias[o] += dout[(size_t)b * @OC + o];");
    }
    emit(e, "/* dL/dw[i,o] = Σ_b in[b,i] · dout[b,o]; one thread per input row i */");
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int i = 0; i < IN; i++) {");
    emit(e, "float *restrict row = dweight + (size_t)i * @OC;");
    emit(e, "#pragma omp simd");
    emit(e, "for (int o = 0; o < @OC; o++) row[o] = 0.0f;");
    emit_open(e, "for (int b = 0; b < c->batch; b++) {");
    emit(e, "const float v = in[(size_t)b * IN + i];");
    emit(e, "#pragma omp simd");
    emit(e, "for (int o = 0; o < @OC; o++) row[o] += v * dout[(size_t)b * @OC + o];");
    emit_close(e, "b");
    emit_close(e, "i");
    {
        emit_din_open(e, pl);
        emit(e, "/* dL/din[b,i] = Σ_o dout[b,o] · w[i,o], %d images per pass over the weights */", FC_BLOCK);
        emit(e, "const float *restrict weight = c->params + @WEIGHT;");
        emit_image_blocks_open(e);
        emit_open(e, "for (int i = 0; i < IN; i++) {");
        emit(e, "const float *restrict row = weight + (size_t)i * @OC;");
        emit_open(e, "for (int t = 0; t < nb; t++) {");
        emit(e, "const float *restrict g = dout + (size_t)(b0 + t) * @OC;");
        emit(e, "float s = 0.0f;");
        emit(e, "#pragma omp simd reduction(+:s)");
        emit(e, "for (int o = 0; o < @OC; o++) s += g[o] * row[o];");
        emit(e, "din[(size_t)(b0 + t) * IN + i] = s;");
        emit_close(e, "t");
        emit_close(e, "i");
        emit_close(e, "b0");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

/* True when NHWC and C,H,W orders differ for this shape. */
static bool flatten_reorders(const Layer *l)
{
    return (l->in.h > 1 || l->in.w > 1) && l->in.c > 1;
}

void emit_flatten_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    if (flatten_reorders(pl->l))
        emit(e, "/* out[b, c·IH·IW + y·IW + x] = in[b,y,x,c]: NHWC to torch.flatten's C,H,W order */");
    else
        emit(e, "/* one channel or one pixel: NHWC already is C,H,W order, so flatten is a copy */");
    emit_forward_open(e, pl, true);
    if (flatten_reorders(pl->l)) {
        emit_batch_loop(e);
        emit(e, "for (int q = 0; q < @IH * @IW; q++)");
        emit(e, "    for (int ch = 0; ch < @IC; ch++)");
        emit(e, "        out[((size_t)b * @IC + ch) * @IH * @IW + q] = in[((size_t)b * @IH * @IW + q) * @IC + ch];");
        emit_close(e, "b");
    } else {
        emit(e, "memcpy(out, in, sizeof(float) * (size_t)c->batch * @IH * @IW * @IC);");
    }
    emit_close(e, NULL);
}

void emit_flatten_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, false, false);
    emit_din_open(e, pl);
    if (flatten_reorders(pl->l)) {
        emit(e, "/* the inverse reordering: C,H,W back to NHWC */");
        emit_batch_loop(e);
        emit(e, "for (int q = 0; q < @IH * @IW; q++)");
        emit(e, "    for (int ch = 0; ch < @IC; ch++)");
        emit(e, "        din[((size_t)b * @IH * @IW + q) * @IC + ch] = dout[((size_t)b * @IC + ch) * @IH * @IW + q];");
        emit_close(e, "b");
    } else {
        emit(e, "memcpy(din, dout, sizeof(float) * (size_t)c->batch * @IH * @IW * @IC);");
    }
    emit_din_close(e, pl);
    emit_close(e, NULL);
}
