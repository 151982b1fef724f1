/* emit_conv_winograd.c — 3×3 convolutions by Winograd's minimal filtering,
 * F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016).
 *
 * A 2×2 block of outputs reads a 4×4 window d of the (padded) input.  With
 *     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
 *     G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
 *     Aᵀ = [1 1 1 0; 0 1 −1 −1]
 * the block is Aᵀ [ Σ_ci (Bᵀ d_ci B) ⊙ (G g_ci,co Gᵀ) ] A: per channel pair 16
 * multiplications instead of 36, and the sum over input channels is, for each
 * of the 16 positions ξ of the 4×4 transform, a matrix product
 *     M[ξ][tile][co] = Σ_ci V[ξ][tile][ci] · U[ξ][ci][co]
 * which runs in the same register tiles as the direct forward (tiles ×
 * output-channel vectors, one broadcast of V per FMA row).  The transforms
 * are only additions, over vectors of channels.
 *
 * dL/din of the same conv is the convolution of dL/dout (zero-margined by 1)
 * with the kernel rotated by 180° and its channels swapped, so it runs the
 * same code with IC and OC exchanged: one "direction" each (WinoDir).
 * dL/dweight has its own form (at the end of this file).
 *
 * Per image, the tiles go in chunks small enough that V and M stay in the
 * first-level cache (the thread's stack); each ξ's rows of V and M start one
 * cache line apart from a multiple of the chunk, so that the 16 streams of
 * the transforms do not fall into the same cache sets. */
#include "emit.h"
#include <stdlib.h>
#include <string.h>

/* One convolution the kernels compute: the forward pass, or dL/din. */
typedef struct WinoDir {
    const char *tag;        /* "WF": the prefix of its constants (@WF_CI) */
    const char *fn;         /* "forward" / "input_grad": its functions' names */
    long ci, co;            /* the channels it reads and writes */
} WinoDir;

enum { WINO_CHUNK_BYTES = 64 * 1024, WINO_STACK_MAX_BYTES = 128 * 1024, WINO_MIN_TILE = 4 };

static WinoDir wino_forward(const Layer *l) { return (WinoDir){"WF", "forward", l->in.c, l->a.n}; }
static WinoDir wino_input_grad(const Layer *l) { return (WinoDir){"WD", "input_grad", l->a.n, l->in.c}; }

static long wino_tiles(const Layer *l) { return (l->out.h / 2) * (l->out.w / 2); }

/* The register tile: tiles × all output-channel vectors. */
static int wino_tx(const Emitter *e, const WinoDir *d, const Layer *l)
{
    return emit_tile_size(e, d->co / e->vlen, wino_tiles(l));
}

/* Tiles per chunk: V and M in about WINO_CHUNK_BYTES, a whole number of register tiles. */
static long wino_chunk(const Emitter *e, const WinoDir *d, const Layer *l)
{
    long tx = wino_tx(e, d, l);
    long ch = WINO_CHUNK_BYTES / (16 * 4 * (d->ci + d->co));
    ch = (ch + tx - 1) / tx * tx;
    if (ch < 2 * tx) ch = 2 * tx;
    if (ch > wino_tiles(l)) ch = wino_tiles(l);
    return ch;
}

static long wino_stack_bytes(const Emitter *e, const WinoDir *d, const Layer *l)
{
    long ch = wino_chunk(e, d, l);
    return 16 * 4 * (ch * (d->ci + d->co) + 32);
}

static bool dir_fits(const Emitter *e, const WinoDir *d, const Layer *l)
{
    return wino_tx(e, d, l) >= WINO_MIN_TILE && wino_stack_bytes(e, d, l) <= WINO_STACK_MAX_BYTES;
}

/* plan.c decided that the shape fits; here, that the register tiles are
 * wide enough to beat the direct kernels (with 8-float vectors and 32 or
 * more channels they are not), and CNNC_WINOGRAD=0 turns it off. */
bool emit_conv_winograd(const Emitter *e, const PlanLayer *pl)
{
    if (pl->wino_off < 0 || !e->winograd) return false;
    WinoDir f = wino_forward(pl->l), d = wino_input_grad(pl->l);
    return dir_fits(e, &f, pl->l) && (!pl->need_din || dir_fits(e, &d, pl->l));
}

static void emit_dir_constants(Emitter *e, const WinoDir *d, const Layer *l, long src_w)
{
    long ch = wino_chunk(e, d, l);
    emit(e, "@%s_CI = %ld, @%s_CO = %ld, @%s_NIV = %ld, @%s_NV = %ld,", d->tag, d->ci, d->tag, d->co, d->tag,
         d->ci / e->vlen, d->tag, d->co / e->vlen);
    emit(e, "@%s_TX = %d, @%s_CHUNK = %ld, @%s_SRC_W = %ld,   /* register tile, tiles per chunk, source width */",
         d->tag, wino_tx(e, d, l), d->tag, ch, d->tag, src_w);
    emit(e, "@%s_VROW = %ld, @%s_MROW = %ld,   /* floats per ξ in V and M: the chunk and a cache line */", d->tag,
         ch * d->ci + 16, d->tag, ch * d->co + 16);
}

void emit_conv_winograd_constants(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    WinoDir f = wino_forward(l), d = wino_input_grad(l);
    emit(e, "@WINO = %ld,   /* Winograd F(2×2,3×3): transformed weights [16][..][..], at acts + B*ACT_PER_IMAGE */",
         pl->wino_off);
    emit(e, "@TILES_W = %ld, @TILES = %ld,   /* 2×2 output blocks per row, per image */", l->out.w / 2,
         wino_tiles(l));
    emit_dir_constants(e, &f, l, l->in.w + 2);
    if (pl->need_din) emit_dir_constants(e, &d, l, l->out.w + 2);
}

/* ---- the kernels, per direction ------------------------------------------------------ */

/* U = G g Gᵀ for each channel pair's 3×3 kernel g. */
static void emit_weight_transform(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* %s: U[ξ] = (G g Gᵀ)[ξ] for every channel pair's 3×3 kernel g, as [16][@IC][@OC]; for dL/din", n);
    emit(e, "   (for_din) the kernel rotated by 180° with its channels swapped, [16][@OC][@IC] */");
    emit(e, "static void %s_winograd_weights(const float *restrict weight, float *restrict u, const int for_din)", n);
    emit_open(e, "{");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "float g[3][3], t[4][3];");
    emit(e, "for (int a = 0; a < 3; a++)");
    emit(e, "    for (int b = 0; b < 3; b++)");
    emit(e, "        g[a][b] = weight[((size_t)(for_din ? (2 - a) * 3 + 2 - b : a * 3 + b) * @IC + ci) * @OC + co];");
    emit_open(e, "for (int b = 0; b < 3; b++) {   /* G g */");
    emit(e, "t[0][b] = g[0][b];");
    emit(e, "t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);");
    emit(e, "t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);");
    emit(e, "t[3][b] = g[2][b];");
    emit_close(e, "b");
    emit_open(e, "for (int a = 0; a < 4; a++) {   /* (G g) Gᵀ */");
    emit(e, "const float r[4] = {t[a][0], 0.5f * (t[a][0] + t[a][1] + t[a][2]), 0.5f * (t[a][0] - t[a][1] + t[a][2]),");
    emit(e, "                    t[a][2]};");
    emit(e, "for (int b = 0; b < 4; b++)");
    emit(e, "    u[for_din ? ((size_t)(a * 4 + b) * @OC + co) * @IC + ci : ((size_t)(a * 4 + b) * @IC + ci) * @OC + co] = r[b];");
    emit_close(e, "a");
    emit_close(e, "co");
    emit_close(e, "ci");
    emit_close(e, NULL);
    emit_blank(e);
}

/* V[ξ][t][ci] = (Bᵀ d B)[ξ]: rows then columns, each output a sum or difference of two. */
static void emit_input_transform(Emitter *e, const PlanLayer *pl, const WinoDir *d)
{
    const char *n = pl->l->name, *k = d->tag;
    emit(e, "/* %s, %s: V[ξ][t][ci] = (Bᵀ x B)[ξ] for tiles t0 … t0+nt−1 of the image, x the 4×4 window of", n, d->fn);
    emit(e, "   src at (2·ty, 2·tx) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_in(const float *restrict src,", n, d->fn);
    emit(e, "    float *restrict V, const int t0, const int nt)");
    emit_open(e, "{");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    emit(e, "const float *restrict x = src + ((size_t)2 * ty * @%s_SRC_W + 2 * tx) * @%s_CI;", k, k);
    emit_open(e, "for (int v = 0; v < @%s_NIV; v++) {", k);
    emit(e, "%s_vf r[4][4], y[4][4];", n);
    emit(e, "for (int a = 0; a < 4; a++)");
    emit(e, "    for (int b = 0; b < 4; b++) r[a][b] = *(const %s_vf *)(x + ((size_t)a * @%s_SRC_W + b) * @%s_CI + v * @VL);",
         n, k, k);
    emit_open(e, "for (int b = 0; b < 4; b++) {   /* Bᵀ x */");
    emit(e, "y[0][b] = r[0][b] - r[2][b];");
    emit(e, "y[1][b] = r[1][b] + r[2][b];");
    emit(e, "y[2][b] = r[2][b] - r[1][b];");
    emit(e, "y[3][b] = r[1][b] - r[3][b];");
    emit_close(e, "b");
    emit_open(e, "for (int a = 0; a < 4; a++) {   /* (Bᵀ x) B, into ξ = 4a … 4a+3 */");
    emit(e, "float *restrict p = V + (size_t)a * 4 * @%s_VROW + (size_t)t * @%s_CI + v * @VL;", k, k);
    emit(e, "*(%s_vf *)p = y[a][0] - y[a][2];", n);
    emit(e, "*(%s_vf *)(p + @%s_VROW) = y[a][1] + y[a][2];", n, k);
    emit(e, "*(%s_vf *)(p + 2 * @%s_VROW) = y[a][2] - y[a][1];", n, k);
    emit(e, "*(%s_vf *)(p + 3 * @%s_VROW) = y[a][1] - y[a][3];", n, k);
    emit_close(e, "a");
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

/* M[ξ][t][co] for tx tiles: the direct forward's register tile over ci. */
static void emit_multiply_tile(Emitter *e, const PlanLayer *pl, const WinoDir *d)
{
    const char *n = pl->l->name, *k = d->tag;
    char vt[64], nv[32], vec[128], scalar[64];
    snprintf(vt, sizeof vt, "%s_vf", n);
    snprintf(nv, sizeof nv, "@%s_NV", k);
    emit(e, "/* %s, %s: M[ξ][t][co] = Σ_ci V[ξ][t][ci] · U[ξ][ci][co] for tx tiles, all channels */", n, d->fn);
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_tile(const float *restrict vx,", n, d->fn);
    emit(e, "    const float *restrict ux, float *restrict mx, const int tx)");
    emit_open(e, "{");
    char cap[32];
    snprintf(cap, sizeof cap, "@%s_TX", k);
    emit_tile_begin(e, vt, cap, "tx", nv);
    emit_open(e, "for (int ci = 0; ci < @%s_CI; ci++) {", k);
    snprintf(vec, sizeof vec, "*(const %s *)(ux + (size_t)ci * @%s_CO + v * @VL)", vt, k);
    snprintf(scalar, sizeof scalar, "vx[(size_t)t * @%s_CI + ci]", k);
    emit_tile_update(e, vt, nv, vec, "tx", scalar);
    emit_close(e, "ci");
    emit(e, "for (int t = 0; t < tx; t++)");
    emit(e, "    for (int v = 0; v < @%s_NV; v++) *(%s *)(mx + (size_t)t * @%s_CO + v * @VL) = acc[t][v];", k, vt, k);
    emit_close(e, NULL);
    emit_blank(e);
}

/* out = Aᵀ M A per tile (plus the bias and the fused relu forward). */
static void emit_output_transform(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool forward)
{
    const Layer *l = pl->l;
    const char *n = l->name, *k = d->tag;
    bool bias = forward && l->a.bias, relu = forward && pl->fused_relu;
    emit(e, "/* %s, %s: each tile's 2×2 outputs = Aᵀ M A%s%s */", n, d->fn, bias ? " + bias" : "",
         relu ? ", then the fused relu" : "");
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_out(const float *restrict M,", n, d->fn);
    emit(e, "    const float *restrict bias, float *restrict dst, const int t0, const int nt)");
    emit_open(e, "{");
    if (!bias) emit(e, "(void)bias;");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    emit(e, "float *restrict o = dst + ((size_t)2 * ty * @OW + 2 * tx) * @%s_CO;", k);
    emit_open(e, "for (int v = 0; v < @%s_NV; v++) {", k);
    emit(e, "%s_vf m[4][4], z[2][4];", n);
    emit(e, "for (int a = 0; a < 4; a++)");
    emit(e, "    for (int b = 0; b < 4; b++) m[a][b] = *(const %s_vf *)(M + (size_t)(a * 4 + b) * @%s_MROW + (size_t)t * @%s_CO + v * @VL);",
         n, k, k);
    emit_open(e, "for (int b = 0; b < 4; b++) {   /* Aᵀ m */");
    emit(e, "z[0][b] = m[0][b] + m[1][b] + m[2][b];");
    emit(e, "z[1][b] = m[1][b] - m[2][b] - m[3][b];");
    emit_close(e, "b");
    if (bias) emit(e, "const %s_vf bv = *(const %s_vf *)(bias + v * @VL);", n, n);
    emit_open(e, "for (int a = 0; a < 2; a++) {   /* (Aᵀ m) A: output row 2·ty + a */");
    emit(e, "%s_vf y[2] = {z[a][0] + z[a][1] + z[a][2], z[a][1] - z[a][2] - z[a][3]};", n);
    if (bias) emit(e, "y[0] += bv, y[1] += bv;");
    if (relu) {
        emit(e, "/* the relu after this conv, fused: lanes not > 0 become +0 */");
        emit(e, "for (int j = 0; j < 2; j++) y[j] = (%s_vf)((%s_vi)y[j] & (y[j] > 0.0f));", n, n);
    }
    emit(e, "for (int j = 0; j < 2; j++) *(%s_vf *)(o + ((size_t)a * @OW + j) * @%s_CO + v * @VL) = y[j];", n, k);
    emit_close(e, "a");
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

/* One chunk: transform its tiles in, multiply per ξ, transform out; nt is
 * a constant at each call, so the tile loops unroll. */
static void emit_chunk(Emitter *e, const PlanLayer *pl, const WinoDir *d)
{
    const char *n = pl->l->name, *f = d->fn, *k = d->tag;
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_chunk(const float *restrict src,", n, f);
    emit(e, "    const float *restrict u, const float *restrict bias, float *restrict dst, float *restrict V,");
    emit(e, "    float *restrict M, const int t0, const int nt)");
    emit_open(e, "{");
    emit(e, "%s_%s_winograd_in(src, V, t0, nt);", n, f);
    emit_open(e, "for (int xi = 0; xi < 16; xi++) {");
    emit(e, "const float *restrict vx = V + (size_t)xi * @%s_VROW, *restrict ux = u + (size_t)xi * @%s_CI * @%s_CO;",
         k, k, k);
    emit(e, "float *restrict mx = M + (size_t)xi * @%s_MROW;", k);
    emit(e, "int t = 0;");
    emit(e, "for (; t + @%s_TX <= nt; t += @%s_TX)", k, k);
    emit(e, "    %s_%s_winograd_tile(vx + (size_t)t * @%s_CI, ux, mx + (size_t)t * @%s_CO, @%s_TX);", n, f, k, k, k);
    emit(e, "if (t < nt) %s_%s_winograd_tile(vx + (size_t)t * @%s_CI, ux, mx + (size_t)t * @%s_CO, nt %% @%s_TX);", n, f,
         k, k, k);
    emit_close(e, "xi");
    emit(e, "%s_%s_winograd_out(M, bias, dst, t0, nt);", n, f);
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* %s, %s: one image, src padded by 1 on every side, in chunks of @%s_CHUNK tiles */", n, f, k);
    emit(e, "static void %s_%s_winograd(const float *restrict src, const float *restrict u, const float *restrict bias,", n, f);
    emit(e, "    float *restrict dst)");
    emit_open(e, "{");
    emit(e, "float V[16 * @%s_VROW] __attribute__((aligned(64)));   /* this thread's, on its stack */", k);
    emit(e, "float M[16 * @%s_MROW] __attribute__((aligned(64)));", k);
    emit(e, "int t0 = 0;");
    emit(e, "for (; t0 + @%s_CHUNK <= @TILES; t0 += @%s_CHUNK) %s_%s_winograd_chunk(src, u, bias, dst, V, M, t0, @%s_CHUNK);",
         k, k, n, f, k);
    emit(e, "if (t0 < @TILES) %s_%s_winograd_chunk(src, u, bias, dst, V, M, t0, @TILES %% @%s_CHUNK);", n, f, k);
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_direction(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool forward)
{
    emit_input_transform(e, pl, d);
    emit_multiply_tile(e, pl, d);
    emit_output_transform(e, pl, d, forward);
    emit_chunk(e, pl, d);
}

/* Before the layer's forward function: the weight transform and the forward kernels. */
void emit_conv_winograd_forward_kernels(Emitter *e, const PlanLayer *pl)
{
    WinoDir f = wino_forward(pl->l);
    emit_weight_transform(e, pl);
    emit_direction(e, pl, &f, true);
}

/* Before the layer's backward function: the dL/din kernels. */
void emit_conv_winograd_din_kernels(Emitter *e, const PlanLayer *pl)
{
    WinoDir d = wino_input_grad(pl->l);
    emit_direction(e, pl, &d, false);
}

/* Inside conv_forward, after the padded copy (src): every image. */
void emit_conv_winograd_forward(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* Winograd F(2×2,3×3): the weights transformed once per step, then image by image */");
    emit(e, "float *restrict u = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;");
    emit(e, "%s_winograd_weights(weight, u, 0);", n);
    emit_batch_loop(e);
    emit(e, "%s_forward_winograd(src + (size_t)b * @SRC_H * @SRC_W * @IC, u, bias, out + (size_t)b * @OH * @OW * @OC);",
         n);
    emit_close(e, "b");
}

/* Inside conv_backward: dL/din as the forward kernel's convolution of the
 * zero-margined dL/dout with the rotated kernel; the relu before (mask) is
 * applied after, row by row. */
void emit_conv_winograd_din(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, by Winograd F(2×2,3×3) */");
    emit(e, "float *restrict u = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;");
    emit(e, "%s_winograd_weights(c->params + @WEIGHT, u, 1);", n);
    emit_batch_loop(e);
    emit(e, "float dpad[@DPAD_H * @DPAD_W * @OC] __attribute__((aligned(64)));   /* this thread's, on its stack */");
    emit(e, "const float *restrict g = dout + (size_t)b * @OH * @OW * @OC;");
    emit_conv_copy_into_margins(e, "dpad", "g", "@OH", "@OW", "@OC", "@DPAD_H", "@DPAD_W", "1", "1");
    emit(e, "%s_input_grad_winograd(dpad, u, NULL, din + (size_t)b * @IH * @IW * @IC);", n);
    if (pl->relu_mask) emit_conv_relu_mask_image(e);
    emit_close(e, "b");
}

/* ---- dL/dweight ----------------------------------------------------------------------- *
 * The same identity read the other way: a tile's share of dL/dweight is
 *     Gᵀ [ (Bᵀ x B) ⊙ (A g Aᵀ) ] G
 * with x the padded input's 4×4 window and g dL/dout's 2×2 block, so
 *     M[ξ][ci][co] = Σ over images and tiles of V[ξ][t][ci] · E[ξ][t][co]
 * is summed in registers (tiles of input-channel rows × output-channel
 * vectors, like the direct dL/dweight), and dL/dweight = Gᵀ M G once per
 * step.  Row a of the transforms (ξ = 4a … 4a+3) needs two rows of x and
 * of g, so (chunk of the batch, row a) are the tasks, image by image: a
 * thread computes its rows' transforms and owns their M for its chunk,
 * summed in image and tile order whatever the thread count, and the chunks'
 * M are added before the transform (plan.h PLAN_GRAD_CHUNKS: with 2 threads
 * each sums its own images).  Chunk 0's M lives where U does (@WINO): dL/din
 * transforms its weights only after; the others' at @WPART. */

static long wino_grad_chunk(const Layer *l)
{
    long ch = WINO_CHUNK_BYTES / (4 * 4 * (l->in.c + l->a.n));   /* 4 rows ξ of V and E */
    if (ch > wino_tiles(l)) ch = wino_tiles(l);
    return ch < 1 ? 1 : ch;
}

void emit_conv_winograd_weight_grad_constants(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    long ch = wino_grad_chunk(l);
    emit(e, "@WW_CT = %d, @WW_CHUNK = %ld, @WW_VROW = %ld, @WW_EROW = %ld,   /* dL/dweight: input-channel rows, tiles "
         "per chunk, floats per ξ in V and E */", emit_weight_grad_rows(e, l->a.n / e->vlen, l->in.c), ch, ch * l->in.c + 16, ch * l->a.n + 16);
}

void emit_conv_winograd_weight_grad_kernels(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* %s, dL/dweight: row a of V = Bᵀ x B (ξ = 4a … 4a+3) for tiles t0 … t0+nt−1 of image b:", n);
    emit(e, "   row a of Bᵀ x is x[p] + s·x[q] */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_in(const float *restrict src,", n);
    emit(e, "    float *restrict V, const int a, const int t0, const int nt)");
    emit_open(e, "{");
    emit(e, "static const int p[4] = {0, 1, 2, 1}, q[4] = {2, 2, 1, 3};");
    emit(e, "static const float s[4] = {-1.0f, 1.0f, -1.0f, -1.0f};");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    emit(e, "const float *restrict xp = src + ((size_t)(2 * ty + p[a]) * @SRC_W + 2 * tx) * @IC;");
    emit(e, "const float *restrict xq = src + ((size_t)(2 * ty + q[a]) * @SRC_W + 2 * tx) * @IC;");
    emit_open(e, "for (int v = 0; v < @IC / @VL; v++) {");
    emit(e, "%s_vf y[4];", n);
    emit(e, "for (int j = 0; j < 4; j++)");
    emit(e, "    y[j] = *(const %s_vf *)(xp + (size_t)j * @IC + v * @VL) + s[a] * *(const %s_vf *)(xq + (size_t)j * @IC + v * @VL);",
         n, n);
    emit(e, "float *restrict o = V + (size_t)t * @IC + v * @VL;");
    emit(e, "*(%s_vf *)o = y[0] - y[2];   /* (row of Bᵀ x) B */", n);
    emit(e, "*(%s_vf *)(o + @WW_VROW) = y[1] + y[2];", n);
    emit(e, "*(%s_vf *)(o + 2 * @WW_VROW) = y[2] - y[1];", n);
    emit(e, "*(%s_vf *)(o + 3 * @WW_VROW) = y[1] - y[3];", n);
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* %s, dL/dweight: row a of E = A g Aᵀ for the same tiles, g dL/dout's 2×2 block; A's rows are", n);
    emit(e, "   (1,0), (1,1), (1,−1), (0,−1) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_g(const float *restrict dout,", n);
    emit(e, "    float *restrict E, const int a, const int t0, const int nt)");
    emit_open(e, "{");
    emit(e, "static const float c0[4] = {1.0f, 1.0f, 1.0f, 0.0f}, c1[4] = {0.0f, 1.0f, -1.0f, -1.0f};");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    emit(e, "const float *restrict g0 = dout + ((size_t)2 * ty * @OW + 2 * tx) * @OC, *restrict g1 = g0 + (size_t)@OW * @OC;");
    emit_open(e, "for (int v = 0; v < @NV; v++) {");
    emit(e, "%s_vf r[2];   /* row a of A g */", n);
    emit(e, "for (int j = 0; j < 2; j++)");
    emit(e, "    r[j] = c0[a] * *(const %s_vf *)(g0 + (size_t)j * @OC + v * @VL) + c1[a] * *(const %s_vf *)(g1 + (size_t)j * @OC + v * @VL);",
         n, n);
    emit(e, "float *restrict o = E + (size_t)t * @OC + v * @VL;");
    emit(e, "*(%s_vf *)o = r[0];   /* (row of A g) Aᵀ */", n);
    emit(e, "*(%s_vf *)(o + @WW_EROW) = r[0] + r[1];", n);
    emit(e, "*(%s_vf *)(o + 2 * @WW_EROW) = r[0] - r[1];", n);
    emit(e, "*(%s_vf *)(o + 3 * @WW_EROW) = -r[1];", n);
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    emit(e, "/* %s, dL/dweight: M[ξ][ci][co] for ct rows from ci0 += Σ over nt tiles of V[ξ][t][ci] · E[ξ][t][co]", n);
    emit(e, "   (stored, not added, for the first chunk of the batch) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_tile(const float *restrict vx,", n);
    emit(e, "    const float *restrict ex, float *restrict mx, const int ci0, const int ct, const int nt, const int first)");
    emit_open(e, "{");
    emit_tile_begin(e, vt, "@WW_CT", "ct", "@NV");
    emit_open(e, "for (int k = 0; k < nt; k++) {   /* tiles; t counts the rows */");
    snprintf(vec, sizeof vec, "*(const %s *)(ex + (size_t)k * @OC + v * @VL)", vt);
    emit_tile_update(e, vt, "@NV", vec, "ct", "vx[(size_t)k * @IC + ci0 + t]");
    emit_close(e, "k");
    emit(e, "for (int r = 0; r < ct; r++)");
    emit_open(e, "    for (int v = 0; v < @NV; v++) {");
    emit(e, "%s *p = (%s *)(mx + (size_t)(ci0 + r) * @OC + v * @VL);", vt, vt);
    emit(e, "*p = first ? acc[r][v] : *p + acc[r][v];");
    emit_close(e, "v");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_chunk(const float *restrict src,", n);
    emit(e, "    const float *restrict dout, float *restrict m, float *restrict dbias, float *restrict V, float *restrict E,");
    emit(e, "    const int a, const int t0, const int nt, const int first)");
    emit_open(e, "{");
    emit(e, "%s_weight_grad_winograd_in(src, V, a, t0, nt);", n);
    emit(e, "%s_weight_grad_winograd_g(dout, E, a, t0, nt);", n);
    if (pl->l->a.bias) {
        emit_open(e, "if (a == 1) {   /* E[5] (row 1, column 1) is each 2×2 block's sum: dL/dbias, from this task */");
        emit_open(e, "for (int v = 0; v < @NV; v++) {");
        emit(e, "%s_vf sum = {0};", n);
        emit(e, "for (int t = 0; t < nt; t++) sum += *(const %s_vf *)(E + @WW_EROW + (size_t)t * @OC + v * @VL);", n);
        emit(e, "%s_vf *p = (%s_vf *)(dbias + v * @VL);", n, n);
        emit(e, "*p = first ? sum : *p + sum;");
        emit_close(e, "v");
        emit_close(e, NULL);
    } else {
        emit(e, "(void)dbias;");
    }
    emit_open(e, "for (int j = 0; j < 4; j++) {");
    emit(e, "const float *restrict vx = V + (size_t)j * @WW_VROW, *restrict ex = E + (size_t)j * @WW_EROW;");
    emit(e, "float *restrict mx = m + (size_t)(4 * a + j) * @IC * @OC;");
    emit(e, "int ci0 = 0;");
    emit(e, "for (; ci0 + @WW_CT <= @IC; ci0 += @WW_CT) %s_weight_grad_winograd_tile(vx, ex, mx, ci0, @WW_CT, nt, first);", n);
    emit(e, "if (ci0 < @IC) %s_weight_grad_winograd_tile(vx, ex, mx, ci0, @IC %% @WW_CT, nt, first);", n);
    emit_close(e, "j");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Inside conv_backward, in place of the direct dL/dweight. */
void emit_conv_winograd_weight_grad(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* dL/dweight by Winograd F(2×2,3×3): M summed over each chunk of the batch, tasks of (chunk, row a");
    emit(e, "   of ξ), the chunks' M added, then dL/dweight = Gᵀ M G */");
    emit(e, "enum { MFLOATS = 16 * @IC * @OC, BIAS = %d };   /* a chunk's copy: M, then dL/dbias */",
         pl->l->a.bias ? pl->l->a.n : 0);
    emit(e, "float *restrict m = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;   /* M[16][@IC][@OC], chunk 0 */");
    emit(e, "float *restrict part = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPART;   /* chunks 1 … */");
    emit(e, "float *restrict dbias = %s;", pl->l->a.bias ? "c->grads + @BIAS" : "NULL");
    emit(e, "const int per_chunk = cnn_chunk_first(c->batch, 1);   /* chunk 0 is the largest */");
    emit(e, "#pragma omp parallel");
    emit_open(e, "{");
    emit(e, "float V[4 * @WW_VROW] __attribute__((aligned(64)));   /* this thread's, on its stack */");
    emit(e, "float E[4 * @WW_EROW] __attribute__((aligned(64)));");
    emit_open(e, "for (int k = 0; k < per_chunk; k++) {   /* images outermost: each is read from cache by every task */");
    emit(e, "#pragma omp for schedule(static) nowait   /* the same tasks for every k: one owner per row of M */");
    emit_open(e, "for (int task = 0; task < CNN_GRAD_CHUNKS * 4; task++) {");
    emit(e, "const int g = task / 4, a = task %% 4, b = cnn_chunk_first(c->batch, g) + k;");
    emit(e, "if (b >= cnn_chunk_first(c->batch, g + 1)) continue;   /* this chunk has fewer images */");
    emit(e, "float *restrict mg = g == 0 ? m : part + (size_t)(g - 1) * (MFLOATS + BIAS);");
    emit(e, "float *restrict dbg = dbias == NULL || g == 0 ? dbias : mg + MFLOATS;");
    emit(e, "const float *restrict img = src + (size_t)b * @SRC_H * @SRC_W * @IC;");
    emit(e, "const float *restrict gr = dout + (size_t)b * @OH * @OW * @OC;");
    emit(e, "int t0 = 0;");
    emit(e, "for (; t0 + @WW_CHUNK <= @TILES; t0 += @WW_CHUNK)");
    emit(e, "    %s_weight_grad_winograd_chunk(img, gr, mg, dbg, V, E, a, t0, @WW_CHUNK, k == 0 && t0 == 0);", n);
    emit(e, "if (t0 < @TILES)");
    emit(e, "    %s_weight_grad_winograd_chunk(img, gr, mg, dbg, V, E, a, t0, @TILES %% @WW_CHUNK, k == 0 && t0 == 0);", n);
    emit_close(e, "task");
    emit_close(e, "k");
    emit(e, "#pragma omp barrier");
    emit_grad_chunks_add(e, "m", "part", "MFLOATS", "(MFLOATS + BIAS)");
    if (pl->l->a.bias) emit_grad_chunks_add(e, "dbias", "(part + MFLOATS)", "BIAS", "(MFLOATS + BIAS)");
    emit_close(e, NULL);
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;   /* [3][3][@IC][@OC] */");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "float t[3][4];   /* Gᵀ M: rows ½(m1 ± m2) around m0 and m3 */");
    emit_open(e, "for (int j = 0; j < 4; j++) {");
    emit(e, "const float m0 = m[((size_t)(0 + j) * @IC + ci) * @OC + co], m1 = m[((size_t)(4 + j) * @IC + ci) * @OC + co];");
    emit(e, "const float m2 = m[((size_t)(8 + j) * @IC + ci) * @OC + co], m3 = m[((size_t)(12 + j) * @IC + ci) * @OC + co];");
    emit(e, "t[0][j] = m0 + 0.5f * (m1 + m2);");
    emit(e, "t[1][j] = 0.5f * (m1 - m2);");
    emit(e, "t[2][j] = 0.5f * (m1 + m2) + m3;");
    emit_close(e, "j");
    emit_open(e, "for (int ky = 0; ky < 3; ky++) {   /* (Gᵀ M) G */");
    emit(e, "float *restrict d = dweight + ((size_t)ky * 3 * @IC + ci) * @OC + co;");
    emit(e, "d[0] = t[ky][0] + 0.5f * (t[ky][1] + t[ky][2]);");
    emit(e, "d[(size_t)@IC * @OC] = 0.5f * (t[ky][1] - t[ky][2]);");
    emit(e, "d[(size_t)2 * @IC * @OC] = 0.5f * (t[ky][1] + t[ky][2]) + t[ky][3];");
    emit_close(e, "ky");
    emit_close(e, "co");
    emit_close(e, "ci");
}
