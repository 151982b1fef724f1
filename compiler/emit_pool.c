/* emit_pool.c — max pool (with argmax), average pool, global average pool and
 * max unpool, forward and backward.  They share one window walk, so they share
 * this file.
 *
 * Max pool keeps, per output element, the position iy·IW + ix of its maximum
 * (the first one in row-major window order on a tie, as PyTorch does):
 * backward routes dL/dout there, and `unpool` scatters its input there.
 * Average pool divides by KH·KW even where the window overlaps padding
 * (PyTorch's count_include_pad=True). */
#include "emit.h"

/* for ky / for kx over the window of output (y,x), skipping padding. */
static void emit_window_open(Emitter *e, const Layer *l)
{
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit(e, "const int iy = y * @SH - @PH + ky;");
    if (l->a.ph) emit(e, "if (iy < 0 || iy >= @IH) continue;");
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    emit(e, "const int ix = x * @SW - @PW + kx;");
    if (l->a.pw) emit(e, "if (ix < 0 || ix >= @IW) continue;");
}

static void emit_window_close(Emitter *e)
{
    emit_close(e, "kx");
    emit_close(e, "ky");
}

static void emit_pixels_open(Emitter *e, const char *h, const char *w)
{
    emit_open(e, "for (int y = 0; y < %s; y++) {", h);
    emit_open(e, "for (int x = 0; x < %s; x++) {", w);
}

static void emit_pixels_close(Emitter *e)
{
    emit_close(e, "x");
    emit_close(e, "y");
}

/* ---- max pool ---------------------------------------------------------------- */

/* A pixel's channels in CNN_VLEN-float vectors: NV of them, LAST channels
 * in the last (a pool's 6 or 10 channels are one vector, read and written by
 * their lanes only: cnn_load_channels). */
static void emit_channel_vectors(Emitter *e, long channels)
{
    long nv = (channels + e->vlen - 1) / e->vlen, last = channels - (nv - 1) * e->vlen;
    emit(e, "enum { NV = %ld, LAST = %ld };   /* @IC channels: %ld vector%s of CNN_VLEN floats, %ld in the last */",
         nv, last, nv, nv == 1 ? "" : "s", last);
}

/* One vector of channels at a time, each lane as the scalar rule has it:
 * take a tap where it is greater than the best so far, or where it is the
 * window's first (where < 0), so that ties keep the first maximum. */
void emit_maxpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    emit(e, "/* out[b,y,x,c] = max over the window of in[b,iy,ix,c]; argmax keeps iy·IW + ix of the first maximum */");
    if (pl->pooled_by) {
        bool bn = pl->pooled_by->l->kind->tag == LAYER_BATCHNORM;
        emit(e, "/* done by %s_forward, whose %s takes each window's maximum and argmax as it stores */",
             pl->pooled_by->l->name, bn ? "normalizing pass" : "Winograd output transform");
        emit_forward_empty(e, pl);
        return;
    }
    emit_forward_open(e, pl, true);
    emit(e, "int32_t *restrict argmax = c->index + (size_t)c->batch * @ARGMAX;");
    emit_channel_vectors(e, pl->l->in.c);
    emit_batch_loop(e);
    emit_pixels_open(e, "@OH", "@OW");
    emit(e, "cnn_vf best[NV];");
    emit(e, "cnn_vi where[NV];");
    emit(e, "for (int v = 0; v < NV; v++) best[v] = (cnn_vf){0} - INFINITY, where[v] = (cnn_vi){0} - 1;");
    emit_window_open(e, pl->l);
    emit(e, "const float *restrict px = in + (((size_t)b * @IH + iy) * @IW + ix) * @IC;");
    emit(e, "const int32_t pos = iy * @IW + ix;");
    emit_open(e, "for (int v = 0; v < NV; v++) {");
    emit(e, "cnn_vf tap;");
    emit(e, "cnn_load_channels(&tap, px, v, NV, LAST);");
    emit(e, "const cnn_vi take = (tap > best[v]) | (where[v] < 0);");
    emit(e, "best[v] = (cnn_vf)(((cnn_vi)tap & take) | ((cnn_vi)best[v] & ~take));");
    emit(e, "where[v] = (pos & take) | (where[v] & ~take);");
    emit_close(e, "v");
    emit_window_close(e);
    emit(e, "const size_t o = (((size_t)b * @OH + y) * @OW + x) * @OC;");
    emit_open(e, "for (int v = 0; v < NV; v++) {");
    if (pl->relu_mask) {
        emit(e, "/* argmax −1 where the maximum is not > 0: %s's input is not > 0 there and gets no gradient */",
             p->layers[pl->producer].l->name);
        emit(e, "where[v] |= ~(best[v] > 0.0f);");
    }
    emit(e, "cnn_store_channels(out + o, &best[v], v, NV, LAST);");
    emit(e, "cnn_store_channels(argmax + o, (const cnn_vf *)&where[v], v, NV, LAST);");
    emit_close(e, "v");
    emit_pixels_close(e);
    emit_close(e, "b");
    emit_close(e, NULL);
}

/* Moves values between the pooled grid (`small`) and the unpooled one (`big`)
 * of each image through stored argmax positions: a scatter into big with
 * `op` ("+=" where overlapping windows must add, "=" to place as unpool does),
 * or a gather from big.  skip_negative: argmax −1 marks a value not routed
 * (a max pool applying the relu before it, plan.c: plan_relu_masks). */
static void emit_argmax_route(Emitter *e, const char *argmax_prefix, bool scatter_to_big, bool skip_negative, const char *op,
                              const char *small, const char *big, const char *small_h, const char *small_w,
                              const char *big_hw)
{
    emit(e, "const int32_t *restrict argmax = c->index + (size_t)c->batch * %sARGMAX;", argmax_prefix);
    emit_batch_loop(e);
    if (scatter_to_big) {
        emit(e, "float *restrict img = %s + (size_t)b * %s * @IC;", big, big_hw);
        emit(e, "memset(img, 0, sizeof(float) * %s * @IC);", big_hw);
    }
    emit_open(e, "for (size_t q = 0; q < (size_t)%s * %s; q++) {", small_h, small_w);
    emit(e, "const size_t o = (size_t)b * %s * %s * @IC + q * @IC;", small_h, small_w);
    emit_open(e, "for (int ch = 0; ch < @IC; ch++) {");
    if (scatter_to_big && skip_negative)
        emit(e, "if (argmax[o + ch] >= 0) img[(size_t)argmax[o + ch] * @IC + ch] %s %s[o + ch];", op, small);
    else if (scatter_to_big)
        emit(e, "img[(size_t)argmax[o + ch] * @IC + ch] %s %s[o + ch];", op, small);
    else
        emit(e, "%s[o + ch] = %s[((size_t)b * %s + (size_t)argmax[o + ch]) * @IC + ch];", small, big, big_hw);
    emit_close(e, "ch");
    emit_close(e, "q");
    emit_close(e, "b");
}

/* Windows that tile the input (stride = window, no padding): every input
 * pixel is in at most one window, so dL/din can be written once per pixel,
 * all channels together — no zeroing pass and no scatter. */
static bool windows_tile(const Layer *l)
{
    return l->a.sh == l->a.kh && l->a.sw == l->a.kw && !l->a.ph && !l->a.pw;
}

static void emit_maxpool_din_gather(Emitter *e, const Layer *l)
{
    emit(e, "/* dL/din[b,iy,ix,c] = dL/dout of the one window holding (iy,ix) where its argmax is (iy,ix), else 0 */");
    emit(e, "const int32_t *restrict argmax = c->index + (size_t)c->batch * @ARGMAX;");
    emit_channel_vectors(e, l->in.c);
    emit_batch_loop(e);
    emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
    emit_open(e, "for (int ix = 0; ix < @IW; ix++) {");
    emit(e, "float *restrict d = din + (((size_t)b * @IH + iy) * @IW + ix) * @IC;");
    emit(e, "const int y = iy / @KH, x = ix / @KW;");
    emit_open(e, "if (y >= @OH || x >= @OW) {   /* past the last whole window: no output read it */");
    emit(e, "memset(d, 0, sizeof(float) * @IC);");
    emit(e, "continue;");
    emit_close(e, NULL);
    emit(e, "const size_t o = (((size_t)b * @OH + y) * @OW + x) * @OC;");
    emit(e, "const int32_t pos = iy * @IW + ix;");
    emit_open(e, "for (int v = 0; v < NV; v++) {");
    emit(e, "cnn_vf g, at;");
    emit(e, "cnn_load_channels(&g, dout + o, v, NV, LAST);");
    emit(e, "cnn_load_channels(&at, argmax + o, v, NV, LAST);");
    emit(e, "const cnn_vf routed = (cnn_vf)((cnn_vi)g & ((cnn_vi)at == pos));");
    emit(e, "cnn_store_channels(d, &routed, v, NV, LAST);");
    emit_close(e, "v");
    emit_close(e, "ix");
    emit_close(e, "iy");
    emit_close(e, "b");
}

void emit_maxpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    if (pl->pooled_by) {
        bool bn = pl->pooled_by->l->kind->tag == LAYER_BATCHNORM;
        emit(e, "/* done by %s_backward, whose %s dout through argmax as they load it: din is dout */",
             pl->pooled_by->l->name, bn ? "passes read" : "Winograd kernels read");
        emit_backward_empty(e, pl);
        return;
    }
    emit_backward_open(e, pl, false, false);
    {
        emit_din_open(e, pl);
        if (windows_tile(pl->l)) {
            emit_maxpool_din_gather(e, pl->l);
        } else {
            emit(e, "/* dL/din is dL/dout at each window's argmax and 0 elsewhere (overlapping windows add) */");
            emit_argmax_route(e, "@", true, pl->relu_mask, "+=", "dout", "din", "@OH", "@OW", "@IH * @IW");
        }
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

/* ---- max unpool ---------------------------------------------------------------- */

void emit_unpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    const PlanLayer *pool = &p->layers[pl->l->pair->id];
    emit(e, "/* out = zeros of %s's input shape, with in[b,y,x,c] put back at %s's argmax */",
         pool->l->name, pool->l->name);
    emit_forward_open(e, pl, true);
    emit_argmax_route(e, pool->prefix, true, false, "=", "in", "out", "@IH", "@IW", "@OH * @OW");
    emit_close(e, NULL);
}

void emit_unpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    const PlanLayer *pool = &p->layers[pl->l->pair->id];
    emit_backward_open(e, pl, false, false);
    {
        emit_din_open(e, pl);
        emit(e, "/* dL/din[b,y,x,c] = dL/dout at the place the value was put */");
        emit_argmax_route(e, pool->prefix, false, false, NULL, "din", "dout", "@IH", "@IW", "@OH * @OW");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

/* ---- average pools ---------------------------------------------------------------- */

/* The divisor of window (y, x): KH·KW when padding counts (PyTorch's default
 * count_include_pad), else the number of input pixels the window covers. */
static void emit_avg_scale(Emitter *e, const Layer *l)
{
    if (l->a.count_pad || (!l->a.ph && !l->a.pw)) {
        emit(e, "const float scale = 1.0f / (@KH * @KW);");
        return;
    }
    emit(e, "const int y0 = y * @SH - @PH, x0 = x * @SW - @PW;   /* the window's corner, in padded coordinates */");
    emit(e, "const int rows = (y0 + @KH < @IH ? y0 + @KH : @IH) - (y0 > 0 ? y0 : 0);");
    emit(e, "const int cols = (x0 + @KW < @IW ? x0 + @KW : @IW) - (x0 > 0 ? x0 : 0);");
    emit(e, "const float scale = 1.0f / (float)(rows * cols);   /* padding not counted */");
}

void emit_avgpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit(e, "/* out[b,y,x,c] = (Σ over the window of in[b,iy,ix,c]) / %s */",
         pl->l->a.count_pad ? "(KH·KW), padding counted as zeros" : "(the number of input pixels in the window)");
    emit_forward_open(e, pl, true);
    emit_batch_loop(e);
    emit_pixels_open(e, "@OH", "@OW");
    emit(e, "float acc[@OC] = {0};");
    emit_avg_scale(e, pl->l);
    emit_window_open(e, pl->l);
    emit(e, "const float *restrict px = in + (((size_t)b * @IH + iy) * @IW + ix) * @IC;");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < @OC; ch++) acc[ch] += px[ch];");
    emit_window_close(e);
    emit(e, "float *restrict po = out + (((size_t)b * @OH + y) * @OW + x) * @OC;");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < @OC; ch++) po[ch] = acc[ch] * scale;");
    emit_pixels_close(e);
    emit_close(e, "b");
    emit_close(e, NULL);
}

void emit_avgpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, false, false);
    {
        emit_din_open(e, pl);
        emit(e, "/* every input in a window gets the window's share (its divisor) of that window's dL/dout */");
        emit_batch_loop(e);
        emit(e, "float *restrict dimg = din + (size_t)b * @IH * @IW * @IC;");
        emit(e, "memset(dimg, 0, sizeof(float) * @IH * @IW * @IC);");
        emit_pixels_open(e, "@OH", "@OW");
        emit(e, "const float *restrict g = dout + (((size_t)b * @OH + y) * @OW + x) * @OC;");
        emit_avg_scale(e, pl->l);
        emit_window_open(e, pl->l);
        emit(e, "float *restrict pd = dimg + ((size_t)iy * @IW + ix) * @IC;");
        emit(e, "#pragma omp simd");
        emit(e, "for (int ch = 0; ch < @OC; ch++) pd[ch] += g[ch] * scale;");
        emit_window_close(e);
        emit_pixels_close(e);
        emit_close(e, "b");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}

void emit_gap_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit(e, "/* out[b,0,0,c] = mean over y,x of in[b,y,x,c] */");
    emit_forward_open(e, pl, true);
    emit_batch_loop(e);
    emit(e, "float acc[@IC] = {0};");
    emit_open(e, "for (size_t q = 0; q < (size_t)@IH * @IW; q++) {");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < @IC; ch++) acc[ch] += in[((size_t)b * @IH * @IW + q) * @IC + ch];");
    emit_close(e, "q");
    emit(e, "#pragma omp simd");
    emit(e, "for (int ch = 0; ch < @IC; ch++) out[(size_t)b * @IC + ch] = acc[ch] * (1.0f / (@IH * @IW));");
    emit_close(e, "b");
    emit_close(e, NULL);
}

void emit_gap_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_backward_open(e, pl, false, false);
    {
        emit_din_open(e, pl);
        emit(e, "/* every pixel gets 1/(IH·IW) of its channel's dL/dout */");
        emit_batch_loop(e);
        emit_open(e, "for (size_t q = 0; q < (size_t)@IH * @IW; q++) {");
        emit(e, "for (int ch = 0; ch < @IC; ch++) din[((size_t)b * @IH * @IW + q) * @IC + ch] = "
                "dout[(size_t)b * @IC + ch] * (1.0f / (@IH * @IW));");
        emit_close(e, "q");
        emit_close(e, "b");
        emit_din_close(e, pl);
    }
    emit_close(e, NULL);
}
