/* emit_conv.c — the plain-loop convolution kernels: deconv (transposed
 * convolution) forward and backward, and for conv the pieces that
 * emit_conv_tiled.c falls back on: dL/din by scatter for any channel count
 * (strided layers whose input channels are not whole vectors) and dL/dbias.
 *
 * Both kinds pair an "anchor" pixel with the pixels its kernel touches:
 *   conv:   input  row iy = y·S − P + ky·D for output row y   (gather into the output)
 *   deconv: output row oy = iy·S − P + ky·D for input row iy  (scatter from the input)
 * Weights are [ky][kx][ci][co]: for one kernel tap and one input channel, a
 * contiguous row over output channels, which is what the innermost loops
 * walk.  With `flip` (true convolution) the tap (ky,kx) reads the kernel
 * turned 180°, (KH−1−ky, KW−1−kx), in every pass.
 *
 * Backward, per the course's derivation:
 *   dL/dbias[co]       = Σ over batch and pixels of dL/dout[co]
 *   dL/dK[ky,kx,ci,co] = Σ in[anchor-paired pixel, ci] · dL/dout[pixel, co]   (X ⋆ dL/dZ)
 *   dL/dX              = dL/dZ spread back through the same pairs (the full
 *                        convolution with the rotated kernel, written as a loop)
 * Each weight-gradient row (or, where its sums fit, each tap) is owned by one
 * thread and summed in a fixed order, so results do not depend on the thread
 * count. */
#include "emit.h"

/* The weight row for tap (ky, kx): the kernel turned 180° when flipped. */
static const char *tap(const Layer *l)
{
    return l->a.flip ? "(@KH - 1 - ky) * @KW + (@KW - 1 - kx)" : "ky * @KW + kx";
}

/* `const int iy = ...; if (iy out of range) continue;` — the test only when
 * padding can take the index outside (without padding the size formula keeps
 * every tap inside). */
static void emit_paired_row(Emitter *e, const char *var, const char *from, const char *k, const char *axis,
                            const char *limit, int pad)
{
    emit(e, "const int %s = %s * @S%s - @P%s + %s * @D%s;", var, from, axis, axis, k, axis);
    if (pad) emit(e, "if (%s < 0 || %s >= %s) continue;", var, var, limit);
}

/* Opens `for ky` and `for kx` over the kernel taps with the paired row and
 * column (`rv`, `cv` = anchor·S − P + k·D), skipped outside `h` × `w`. */
static void emit_taps_open(Emitter *e, const Layer *l, const char *rv, const char *ry, const char *cv,
                           const char *cx, const char *h, const char *w)
{
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit_paired_row(e, rv, ry, "ky", "H", h, l->a.ph);
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    emit_paired_row(e, cv, cx, "kx", "W", w, l->a.pw);
}

static void emit_taps_close(Emitter *e)
{
    emit_close(e, "kx");
    emit_close(e, "ky");
}

void emit_bias_grad_shared(Emitter *e, const Layer *l)
{
    if (!l->a.bias) return;
    emit(e, "/* dL/dbias[co] = Σ over images and pixels of dout */");
    emit_open(e, "{");
    emit(e, "float *restrict dbias = c->grads + @BIAS;");
    emit(e, "float acc[@OC] = {0};");
    emit_open(e, "for (int b = 0; b < c->batch; b++) {");
    emit(e, "float part[@OC] = {0};   /* per image: two shorter float sums round less than one */");
    emit_open(e, "for (size_t p = (size_t)b * @OH * @OW; p < (size_t)(b + 1) * @OH * @OW; p++) {");
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) part[co] += dout[p * @OC + co];");
    emit_close(e, NULL);
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) acc[co] += part[co];");
    emit_close(e, "b");
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) dbias[co] = acc[co];");
    emit_close(e, NULL);
}

/* ---- conv ---------------------------------------------------------------- */

/* dL/din[b,iy,ix,ci] by scatter, for any channel count (emit_conv_tiled.c has
 * the vector version). */
void emit_conv_din_generic(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    emit(e, "/* dL/din[b,iy,ix,ci] = Σ over the outputs that read it of dout[b,y,x,co] · w[tap,ci,co]:");
    emit(e, "   the full convolution of dL/dZ with the rotated kernel, as a scatter per image */");
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit_batch_loop(e);
    emit(e, "float *restrict dimg = din + (size_t)b * @IH * @IW * @IC;");
    emit(e, "memset(dimg, 0, sizeof(float) * @IH * @IW * @IC);");
    emit_open(e, "for (int y = 0; y < @OH; y++) {");
    emit_open(e, "for (int x = 0; x < @OW; x++) {");
    emit(e, "const float *restrict g = dout + (((size_t)b * @OH + y) * @OW + x) * @OC;");
    emit_taps_open(e, l, "iy", "y", "ix", "x", "@IH", "@IW");
    emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OC;", tap(l));
    emit(e, "float *restrict pd = dimg + ((size_t)iy * @IW + ix) * @IC;");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "float s = 0.0f;");
    emit(e, "#pragma omp simd reduction(+:s)");
    emit(e, "for (int co = 0; co < @OC; co++) s += g[co] * wk[ci * @OC + co];");
    emit(e, "pd[ci] += s;");
    emit_close(e, "ci");
    emit_taps_close(e);
    emit_close(e, "x");
    emit_close(e, "y");
    emit_close(e, "b");
}

/* ---- deconv ----------------------------------------------------------------- */

/* A deconv's dL/dweight: `for y`, `for x` over image b's input pixels and
 * their output pixel (py, px) at tap (ky, kx), those outside skipped. */
static void emit_deconv_pairs_open(Emitter *e, const Layer *l)
{
    emit_open(e, "for (int y = 0; y < @IH; y++) {");
    emit_paired_row(e, "py", "y", "ky", "H", "@OH", l->a.ph);
    emit_open(e, "for (int x = 0; x < @IW; x++) {");
    emit_paired_row(e, "px", "x", "kx", "W", "@OW", l->a.pw);
}

/* A deconv's dL/dweight[ky,kx,ci,co] = Σ_{b,y,x} in[b,y,x,ci] · dout[b,oy,ox,co]:
 * one thread per (ky,kx,ci) row, the sum over co in the vector lanes.  For
 * any size; emit_deconv_weight_grad_taps below where its sums fit. */
static void emit_deconv_weight_grad_rows(Emitter *e, const Layer *l)
{
    emit(e, "/* dL/dweight[ky,kx,ci,co] = Σ_{b,y,x} in[b,y,x,ci] · dout[b,oy,ox,co]; one thread per (ky,kx,ci) row */");
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int r = 0; r < @KH * @KW * @IC; r++) {");
    emit(e, "const int ky = r / (@KW * @IC), kx = r / @IC %% @KW, ci = r %% @IC;");
    emit(e, "float acc[@OC] = {0};");
    emit_open(e, "for (int b = 0; b < c->batch; b++) {");
    emit(e, "float part[@OC] = {0};   /* per image: two shorter float sums round less than one */");
    emit_deconv_pairs_open(e, l);
    emit(e, "const float v = in[(((size_t)b * @IH + y) * @IW + x) * @IC + ci];");
    emit(e, "const float *restrict g = dout + (((size_t)b * @OH + py) * @OW + px) * @OC;");
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) part[co] += v * g[co];");
    emit_close(e, "x");
    emit_close(e, "y");
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) acc[co] += part[co];");
    emit_close(e, "b");
    emit(e, "float *restrict row = dweight + ((size_t)(%s) * @IC + ci) * @OC;", tap(l));
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) row[co] = acc[co];");
    emit_close(e, "r");
}

/* The same, one thread per tap (ky,kx), its IC × OC sums kept with the larger
 * of ci and co in the vector lanes: with few output channels the rows' lanes
 * were mostly empty (the transposed-conv example's deconv2, 1 channel: a
 * scalar chain of dependent adds).  Each sum keeps the rows' order (images,
 * then pixels), so the results are the same. */
enum { DECONV_TAP_SUMS_MAX = 8192 };   /* IC·OC floats, twice on a thread's stack */

static bool deconv_weight_grad_by_taps(const Layer *l)
{
    return (long)l->in.c * l->a.n <= DECONV_TAP_SUMS_MAX;
}

static void emit_deconv_weight_grad_taps(Emitter *e, const Layer *l)
{
    bool co_lanes = l->a.n >= l->in.c;   /* [ci][co], co in the lanes; else [co][ci] */
    emit(e, "/* dL/dweight[ky,kx,ci,co] = Σ_{b,y,x} in[b,y,x,ci] · dout[b,oy,ox,co]; one thread per tap (ky,kx), its");
    emit(e, "   sums as [%s][%s], %s in the vector lanes */", co_lanes ? "ci" : "co", co_lanes ? "co" : "ci",
         co_lanes ? "co" : "ci");
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int k = 0; k < @KH * @KW; k++) {");
    emit(e, "const int ky = k / @KW, kx = k %% @KW;");
    emit(e, "float acc[@IC * @OC] = {0};");
    emit_open(e, "for (int b = 0; b < c->batch; b++) {");
    emit(e, "float part[@IC * @OC] = {0};   /* per image: two shorter float sums round less than one */");
    emit_deconv_pairs_open(e, l);
    emit(e, "const float *restrict v = in + (((size_t)b * @IH + y) * @IW + x) * @IC;");
    emit(e, "const float *restrict g = dout + (((size_t)b * @OH + py) * @OW + px) * @OC;");
    if (co_lanes) {
        emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
        emit(e, "const float vv = v[ci];");
        emit(e, "#pragma omp simd");
        emit(e, "for (int co = 0; co < @OC; co++) part[ci * @OC + co] += vv * g[co];");
        emit_close(e, "ci");
    } else {
        emit_open(e, "for (int co = 0; co < @OC; co++) {");
        emit(e, "const float gv = g[co];");
        emit(e, "#pragma omp simd");
        emit(e, "for (int ci = 0; ci < @IC; ci++) part[co * @IC + ci] += v[ci] * gv;");
        emit_close(e, "co");
    }
    emit_close(e, "x");
    emit_close(e, "y");
    emit(e, "#pragma omp simd");
    emit(e, "for (int i = 0; i < @IC * @OC; i++) acc[i] += part[i];");
    emit_close(e, "b");
    emit(e, "float *restrict rows = dweight + (size_t)(%s) * @IC * @OC;", tap(l));
    emit(e, "for (int ci = 0; ci < @IC; ci++)");
    if (co_lanes)
        emit(e, "    for (int co = 0; co < @OC; co++) rows[ci * @OC + co] = acc[ci * @OC + co];");
    else
        emit(e, "    for (int co = 0; co < @OC; co++) rows[ci * @OC + co] = acc[co * @IC + ci];");
    emit_close(e, "k");
}

/* dL/din sums over co with ci in the vector lanes from wt, the weights as
 * [tap][co][ci] on the calling thread's stack, where they fit the bound every
 * generated stack buffer keeps (a sum over co in the lanes, then across
 * them, left a deconv with 1 output channel scalar). */
static bool deconv_din_transposes(const Layer *l)
{
    return 4L * l->a.kh * l->a.kw * l->in.c * l->a.n <= PLAN_STACK_BUFFER_MAX_BYTES;
}

static void emit_deconv_transposed_weights(Emitter *e)
{
    emit(e, "float wt[@KH * @KW * @OC * @IC];   /* the weights as [tap][co][ci] */");
    emit(e, "for (int k = 0; k < @KH * @KW; k++)");
    emit(e, "    for (int ci = 0; ci < @IC; ci++)");
    emit(e, "        for (int co = 0; co < @OC; co++) wt[((size_t)k * @OC + co) * @IC + ci] = "
            "weight[((size_t)k * @IC + ci) * @OC + co];");
}

void emit_deconv_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    emit(e, "/* out[b, iy·SH−PH+ky·DH, ix·SW−PW+kx·DW, co] += in[b,iy,ix,ci] · w[ky,kx,ci,co], then + bias[co]:");
    emit(e, "   each input pixel scatters its kernel-weighted copy (the backward of conv) */");
    emit_forward_open(e, pl, true);
    emit(e, "const float *restrict weight = c->params + @WEIGHT;   /* [@KH][@KW][@IC][@OC] */");
    if (l->a.bias) emit(e, "const float *restrict bias = c->params + @BIAS;       /* [@OC] */");
    emit_batch_loop(e);
    emit(e, "float *restrict oimg = out + (size_t)b * @OH * @OW * @OC;");
    emit_open(e, "for (size_t q = 0; q < (size_t)@OH * @OW; q++) {");
    emit(e, "for (int co = 0; co < @OC; co++) oimg[q * @OC + co] = %s;", l->a.bias ? "bias[co]" : "0.0f");
    emit_close(e, NULL);
    emit_open(e, "for (int y = 0; y < @IH; y++) {");
    emit_open(e, "for (int x = 0; x < @IW; x++) {");
    emit(e, "const float *restrict px = in + (((size_t)b * @IH + y) * @IW + x) * @IC;");
    emit_taps_open(e, l, "oy", "y", "ox", "x", "@OH", "@OW");
    emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OC;", tap(l));
    emit(e, "float *restrict po = oimg + ((size_t)oy * @OW + ox) * @OC;");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "#pragma omp simd");
    emit(e, "for (int co = 0; co < @OC; co++) po[co] += px[ci] * wk[ci * @OC + co];");
    emit_close(e, "ci");
    emit_taps_close(e);
    emit_close(e, "x");
    emit_close(e, "y");
    emit_close(e, "b");
    emit_close(e, NULL);
}

void emit_deconv_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    emit_backward_open(e, pl, true, false);
    emit_bias_grad_shared(e, l);
    if (deconv_weight_grad_by_taps(l)) emit_deconv_weight_grad_taps(e, l);
    else emit_deconv_weight_grad_rows(e, l);
    {
        emit_din_open(e, pl);
        emit(e, "/* dL/din[b,y,x,ci] = Σ_{ky,kx,co} dout[b, y·SH−PH+ky·DH, x·SW−PW+kx·DW, co] · w[ky,kx,ci,co]:");
        emit(e, "   an ordinary convolution of dout, gathered per input pixel */");
        emit(e, "const float *restrict weight = c->params + @WEIGHT;");
        bool ci_lanes = deconv_din_transposes(l);
        if (ci_lanes) {
            emit(e, "/* the sum over co with ci in the vector lanes (a sum over co in the lanes, then across them,");
            emit(e, "   left a deconv with 1 output channel scalar) */");
            emit_deconv_transposed_weights(e);
        }
        emit_batch_loop(e);
        emit_open(e, "for (int y = 0; y < @IH; y++) {");
        emit_open(e, "for (int x = 0; x < @IW; x++) {");
        emit(e, "float acc[@IC] = {0};");
        emit_taps_open(e, l, "oy", "y", "ox", "x", "@OH", "@OW");
        emit(e, "const float *restrict g = dout + (((size_t)b * @OH + oy) * @OW + ox) * @OC;");
        if (ci_lanes) {
            emit(e, "const float *restrict wk = wt + (size_t)(%s) * @OC * @IC;", tap(l));
            emit_open(e, "for (int co = 0; co < @OC; co++) {");
            emit(e, "const float gv = g[co];");
            emit(e, "#pragma omp simd");
            emit(e, "for (int ci = 0; ci < @IC; ci++) acc[ci] += gv * wk[co * @IC + ci];");
            emit_close(e, "co");
        } else {
            emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OC;", tap(l));
            emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
            emit(e, "float s = 0.0f;");
            emit(e, "#pragma omp simd reduction(+:s)");
            emit(e, "for (int co = 0; co < @OC; co++) s += g[co] * wk[ci * @OC + co];");
            emit(e, "acc[ci] += s;");
            emit_close(e, "ci");
        }
        emit_taps_close(e);
        emit(e, "float *restrict pd = din + (((size_t)b * @IH + y) * @IW + x) * @IC;");
        emit(e, "for (int ci = 0; ci < @IC; ci++) pd[ci] = acc[ci];");
        emit_close(e, "x");
        emit_close(e, "y");
        emit_close(e, "b");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}
