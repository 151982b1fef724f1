/* emit_conv_winograd.c — 3×3 convolutions by Winograd's minimal filtering,
 * F(m×m, 3×3) with m = 4 or 2 (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016).
 *
 * An m×m block of outputs reads an n×n window d of the (padded) input, n =
 * m + 2.  With the matrices Bᵀ (n×n), G (n×3) and Aᵀ (m×n) below, the block
 * is Aᵀ [ Σ_ci (Bᵀ d_ci B) ⊙ (G g_ci,co Gᵀ) ] A: per channel pair n²
 * multiplications instead of 9m² (16 for 36 at m = 2, 36 for 144 at m = 4),
 * and the sum over input channels is, for each of the n² positions ξ of the
 * transform, a matrix product
 *     M[ξ][tile][co] = Σ_ci V[ξ][tile][ci] · U[ξ][ci][co]
 * which runs in the same register tiles as the direct forward (tiles ×
 * output-channel vectors, one broadcast of V per FMA row).  The transforms
 * are small sums with constant coefficients, over vectors of channels; they
 * are written out from the matrices (wino_sum), so one set of emitters
 * serves both block sizes.  F(4×4) does 1.8× fewer multiplications than
 * F(2×2) and more transform work per output, and about 6× the float32
 * rounding (tests/ref/winograd_error.py); with --winograd 4 it is taken where
 * 4 divides the output and its chunks fit on the stack.
 *
 * dL/din of the same conv is the convolution of dL/dout (zero-margined by 1)
 * with the kernel rotated by 180° and its channels swapped, so it runs the
 * same code with IC and OC exchanged: one "direction" each (WinoDir).
 * dL/dweight has its own form (at the end of this file).
 *
 * Per image, the tiles go in chunks small enough that V and M stay near the
 * core (the thread's stack); each ξ's rows of V and M start one cache line
 * apart from a multiple of the chunk, so that the n² streams of the
 * transforms do not fall into the same cache sets. */
#include "emit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A matrix coefficient num/den. */
typedef struct Coef { int num, den; } Coef;

/* F(m×m, 3×3): the three matrices, rows of at most 6 coefficients. */
typedef struct WinoAlgo {
    int m, n;               /* output block m×m, input window n×n, n = m + 2 */
    Coef bt[6][6];          /* Bᵀ, n×n: V = Bᵀ d B */
    Coef g[6][3];           /* G, n×3: U = G g Gᵀ */
    Coef at[4][6];          /* Aᵀ, m×n: out = Aᵀ M A */
} WinoAlgo;

#define C(x) {x, 1}
static const WinoAlgo F2 = {
    2, 4,
    {{C(1), C(0), C(-1), C(0)}, {C(0), C(1), C(1), C(0)}, {C(0), C(-1), C(1), C(0)}, {C(0), C(1), C(0), C(-1)}},
    {{C(1), C(0), C(0)}, {{1, 2}, {1, 2}, {1, 2}}, {{1, 2}, {-1, 2}, {1, 2}}, {C(0), C(0), C(1)}},
    {{C(1), C(1), C(1), C(0)}, {C(0), C(1), C(-1), C(-1)}},
};
static const WinoAlgo F4 = {
    4, 6,
    {{C(4), C(0), C(-5), C(0), C(1), C(0)},
     {C(0), C(-4), C(-4), C(1), C(1), C(0)},
     {C(0), C(4), C(-4), C(-1), C(1), C(0)},
     {C(0), C(-2), C(-1), C(2), C(1), C(0)},
     {C(0), C(2), C(-1), C(-2), C(1), C(0)},
     {C(0), C(4), C(0), C(-5), C(0), C(1)}},
    {{{1, 4}, C(0), C(0)},
     {{-1, 6}, {-1, 6}, {-1, 6}},
     {{-1, 6}, {1, 6}, {-1, 6}},
     {{1, 24}, {1, 12}, {1, 6}},
     {{1, 24}, {-1, 12}, {1, 6}},
     {C(0), C(0), C(1)}},
    {{C(1), C(1), C(1), C(1), C(1), C(0)},
     {C(0), C(1), C(-1), C(2), C(-2), C(0)},
     {C(0), C(1), C(1), C(4), C(4), C(0)},
     {C(0), C(1), C(-1), C(8), C(-8), C(1)}},
};
#undef C

/* Σ_j c[j]·term(j), as C text: the coefficients over their common
 * denominator, e.g. "(r[0][b] + 2.0f * r[1][b]) * (1.0f / 24)".  term is a
 * printf format taking j. */
typedef struct SumText { char s[512]; } SumText;

static SumText wino_sum(const Coef *c, int len, int stride, const char *term)
{
    SumText t = {{0}};
    size_t o = 0;
    int den = 1;
    for (int j = 0; j < len; j++) {
        int d = c[j * stride].den, a = den, b = d;
        while (b) { int r = a % b; a = b; b = r; }
        if (c[j * stride].num) den = den / a * d;
    }
    int terms = 0;
    for (int j = 0; j < len; j++) terms += c[j * stride].num != 0;
    if (den != 1 && terms > 1) o += (size_t)snprintf(t.s + o, sizeof t.s - o, "(");
    bool first = true;
    for (int j = 0; j < len; j++) {
        int k = c[j * stride].num * (den / c[j * stride].den);
        if (!c[j * stride].num) continue;
        const char *sign = k < 0 ? (first ? "-" : " - ") : (first ? "" : " + ");
        int mag = k < 0 ? -k : k;
        o += (size_t)snprintf(t.s + o, sizeof t.s - o, "%s", sign);
        if (mag != 1) o += (size_t)snprintf(t.s + o, sizeof t.s - o, "%d.0f * ", mag);
        o += (size_t)snprintf(t.s + o, sizeof t.s - o, term, j);
        first = false;
    }
    if (first) o += (size_t)snprintf(t.s + o, sizeof t.s - o, "0.0f");
    if (den != 1) o += (size_t)snprintf(t.s + o, sizeof t.s - o, "%s * (1.0f / %d)", terms > 1 ? ")" : "", den);
    return t;
}

/* One convolution the kernels compute: the forward pass, or dL/din. */
typedef struct WinoDir {
    const char *tag;        /* "WF": the prefix of its constants (@WF_CI) */
    const char *fn;         /* "forward" / "input_grad": its functions' names */
    long ci, co;            /* the channels it reads and writes */
    const WinoAlgo *w;      /* its block size */
    bool margin_free;       /* its source has no zero margin: window floats past the edges read as 0 */
    const PlanLayer *routed;   /* dL/din where the forward applied this pool: src is the pool's dL/dout,
                                  read through its argmax (routed_pool), else NULL */
} WinoDir;

/* The sizes (tiles.c, which the plan shares): tiles are m×m output blocks. */
static long wino_tiles(const WinoAlgo *w, const Layer *l) { return wino_blocks(w->m, l); }
static long wino_points(const WinoAlgo *w) { return (long)w->n * w->n; }

static int wino_group(const Emitter *e, const WinoDir *d, const Layer *l)
{
    return wino_vector_group(e->vlen, d->co, wino_tiles(d->w, l));
}

static int wino_tx(const Emitter *e, const WinoDir *d, const Layer *l)
{
    return wino_tile_rows(e->vlen, d->co, wino_tiles(d->w, l));
}

static long wino_chunk(const Emitter *e, const WinoDir *d, const Layer *l)
{
    return wino_chunk_blocks(e->vlen, d->w->m, d->ci, d->co, wino_tiles(d->w, l));
}

/* The forward reads the image in place where the plan keeps no padded copy (margin_free). */
static WinoDir wino_forward(const PlanLayer *pl, const WinoAlgo *w)
{
    return (WinoDir){"WF", "forward", pl->l->in.c, pl->l->a.n, w, pl->margin_free, NULL};
}

/* dL/din reads dL/dout in place: a copy with zero margins (a thread's stack buffer of 148 KiB for
 * vgg-small's conv2) cost a write and a read of every float, 0.5-1 ms of the layer's 15 ms backward. */
static WinoDir wino_input_grad(const Layer *l, const WinoAlgo *w)
{
    return (WinoDir){"WD", "input_grad", l->a.n, l->in.c, w, true, NULL};
}

static bool algo_fits(const Emitter *e, const PlanLayer *pl, const WinoAlgo *w)
{
    /* plan.c: the options allow it and m divides the output; then the registers and the stack */
    return pl->wino_m >= w->m && wino_fits(e->vlen, w->m, pl->l, pl->need_din);
}

/* The block size for this layer: the largest that plan.c allowed, that
 * CNNC_WINOGRAD allows, and whose register tiles (over groups of output
 * vectors, wino_group) are wide enough to beat the direct kernels; NULL for
 * the direct kernels. */
static const WinoAlgo *wino_algo(const Emitter *e, const PlanLayer *pl)
{
    if (pl->wino_off < 0) return NULL;
    if (algo_fits(e, pl, &F4)) return &F4;
    return algo_fits(e, pl, &F2) ? &F2 : NULL;
}

bool emit_conv_winograd(const Emitter *e, const PlanLayer *pl) { return wino_algo(e, pl) != NULL; }

/* Whether the Winograd kernels apply the 2×2 max pool after the relu, forward
 * and backward: where the plan says so (plan.c: plan_fused_pools), which
 * it does only where Winograd fits at every vector width; each m×m output
 * block is one window (m = 2) or four (m = 4). */
static bool emit_conv_winograd_pools(const Emitter *e, const PlanLayer *pl)
{
    if (!pl->pool_after) return false;
    if (!emit_conv_winograd(e, pl)) {   /* the plan left the conv's output no floats */
        fprintf(stderr, "cnnc: internal error: %s applies %s but Winograd does not fit it\n", pl->l->name,
                pl->pool_after->l->name);
        abort();
    }
    return true;
}

/* The pool the kernels of this direction apply (the forward's only), else NULL. */
static const PlanLayer *dir_pool(const Emitter *e, const PlanLayer *pl, bool forward)
{
    return forward && emit_conv_winograd_pools(e, pl) ? pl->pool_after : NULL;
}

/* What the kernels write, as parameters and as arguments: dst, their output,
 * or where the forward applies the pool only the pool's output and argmax:
 * nothing reads the conv's own output then (the relu's is the pool's input
 * only, and a conv's backward never reads its output), and writing it had
 * cost vgg-small's conv2 and conv4 forward 0.2-0.3 ms each a batch. */
static const char *dst_params(const Emitter *e, const PlanLayer *pl, bool forward)
{
    return dir_pool(e, pl, forward) ? "float *restrict pooled, int32_t *restrict argmax" : "float *restrict dst";
}

static const char *dst_args(const Emitter *e, const PlanLayer *pl, bool forward)
{
    return dir_pool(e, pl, forward) ? "pooled, argmax" : "dst";
}

/* Where the forward applies the pool, the backward reads the pool's dL/dout
 * and routes it through the pool's argmax as it loads each vector (the pool's
 * backward, fused): the pool's own pass had written the conv's whole dL/dout,
 * three quarters zeros (8 MiB a batch for vgg-small's conv2), for dL/dweight
 * and dL/din to read back. */
static const PlanLayer *routed_pool(const Emitter *e, const PlanLayer *pl)
{
    return emit_conv_winograd_pools(e, pl) ? pl->pool_after : NULL;
}

/* dL/dout's floats per image: the conv's output, or the pool's that routes it. */
typedef struct Text { char s[96]; } Text;

static Text dout_floats(const PlanLayer *pool)
{
    Text t;
    if (pool) snprintf(t.s, sizeof t.s, "%sOH * %sOW * %sOC", pool->prefix, pool->prefix, pool->prefix);
    else snprintf(t.s, sizeof t.s, "@OH * @OW * @OC");
    return t;
}

/* conv_routed(r, dpool, argmax, y, x, v): into r, dL/d(the conv's output)
 * at row y, column x, output-channel vector v, as the pool's backward would
 * have stored it: the pool's dL/dout for the window holding (y, x) in the
 * lanes where that window's argmax is (y, x), else 0 (argmax −1 where the
 * relu's output was not > 0, so those get 0 too).  Through a pointer, as the
 * other vector helpers: returning a vector by value warns (-Wpsabi) where
 * the target lacks its width. */
static void emit_routed_load(Emitter *e, const PlanLayer *pl, const PlanLayer *pool)
{
    const char *n = pl->l->name, *q = pool->prefix;
    emit(e, "/* %s: into r, dL/d(its output) at row y, column x, channels v·@VL …: %s's backward, fused — %s's", n,
         pool->l->name, pool->l->name);
    emit(e, "   dL/dout (dpool) of the window holding (y, x), in the lanes where the window's argmax is (y, x), else 0 */");
    emit(e, "static inline __attribute__((always_inline)) void %s_routed(%s_vf *r, const float *restrict dpool,", n, n);
    emit(e, "    const int32_t *restrict argmax, const int y, const int x, const int v)");
    emit_open(e, "{");
    emit(e, "const size_t w = ((size_t)y / 2 * %sOW + (size_t)x / 2) * %sOC + v * @VL;", q, q);
    emit(e, "%s_vi at;", n);
    emit(e, "memcpy(&at, argmax + w, sizeof at);");
    emit(e, "*r = (%s_vf)((%s_vi)*(const %s_vf *)(dpool + w) & (at == y * @OW + x));", n, n, n);
    emit_close(e, NULL);
    emit_blank(e);
}

/* At the top of conv_backward, for dL/dweight and dL/din: where the pool
 * routes dout, its argmax. */
void emit_conv_winograd_backward_open(Emitter *e, const PlanLayer *pl)
{
    const PlanLayer *pool = routed_pool(e, pl);
    if (pool)
        emit(e, "const int32_t *restrict argmax = c->index + (size_t)c->batch * %sARGMAX;   /* dout is %s's dL/dout: "
             "routed through this */", pool->prefix, pool->l->name);
}

/* A direction's source, as parameters and as arguments: with argmax where the pool routes it. */
static const char *src_params(const WinoDir *d)
{
    return d->routed ? "const float *restrict src, const int32_t *restrict argmax" : "const float *restrict src";
}

static const char *src_args(const WinoDir *d) { return d->routed ? "src, argmax" : "src"; }

static void emit_dir_constants(Emitter *e, const WinoDir *d, const Layer *l, long src_h, long src_w)
{
    long ch = wino_chunk(e, d, l);
    emit(e, "@%s_CI = %ld, @%s_CO = %ld, @%s_NIV = %ld, @%s_NV = %ld,", d->tag, d->ci, d->tag, d->co, d->tag,
         d->ci / e->vlen, d->tag, d->co / e->vlen);
    emit(e, "@%s_TX = %d, @%s_NG = %d, @%s_CHUNK = %ld, @%s_SRC_H = %ld, @%s_SRC_W = %ld,   /* register tile: tiles × "
         "vectors; tiles per chunk, source size%s */", d->tag, wino_tx(e, d, l), d->tag, wino_group(e, d, l), d->tag, ch,
         d->tag, src_h, d->tag, src_w, d->margin_free ? " (no margin)" : "");
    emit(e, "@%s_VROW = %ld, @%s_MROW = %ld,   /* floats per ξ in V and M: the chunk and a cache line */", d->tag,
         ch * d->ci + 16, d->tag, ch * d->co + 16);
}

void emit_conv_winograd_constants(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const WinoAlgo *w = wino_algo(e, pl);
    WinoDir f = wino_forward(pl, w), d = wino_input_grad(l, w);
    emit(e, "@WINO = %ld,   /* Winograd F(%d×%d,3×3): transformed weights [%ld][..][..], at acts + B*ACT_PER_IMAGE */",
         pl->wino_off, w->m, w->m, wino_points(w));
    emit(e, "@TILES_W = %ld, @TILES = %ld,   /* %d×%d output blocks per row, per image */", l->out.w / w->m,
         wino_tiles(w, l), w->m, w->m);
    emit_dir_constants(e, &f, l, l->in.h + (f.margin_free ? 0 : 2), l->in.w + (f.margin_free ? 0 : 2));
    if (pl->need_din) emit_dir_constants(e, &d, l, l->out.h, l->out.w);
}

/* ---- the kernels, per direction ------------------------------------------------------ */

/* The body of the weight transform, for one kernel g of type ty (a vector of
 * output channels, or one float): t = G g, then each row a of (G g) Gᵀ into
 * ξ = n·a … n·a+n−1 through store(ξ, value). */
static void emit_weight_transform_body(Emitter *e, const WinoAlgo *w, const char *ty, const char *store)
{
    int wn = w->n;
    emit(e, "%s t[%d][3], r[%d];", ty, wn, wn);
    emit_open(e, "for (int b = 0; b < 3; b++) {   /* G g */");
    for (int i = 0; i < wn; i++) emit(e, "t[%d][b] = %s;", i, wino_sum(w->g[i], 3, 1, "g[%d][b]").s);
    emit_close(e, "b");
    emit_open(e, "for (int a = 0; a < %d; a++) {   /* (G g) Gᵀ */", wn);
    for (int i = 0; i < wn; i++) emit(e, "r[%d] = %s;", i, wino_sum(w->g[i], 3, 1, "t[a][%d]").s);
    emit(e, "for (int b = 0; b < %d; b++) %s = r[b];", wn, store);
    emit_close(e, "a");
}

/* U = G g Gᵀ for each channel pair's 3×3 kernel g: for the forward in
 * vectors of output channels, contiguous in both the weights and U; for
 * dL/din ([ξ][OC][IC], the kernel rotated) one float at a time, in U's order. */
static void emit_weight_transform(Emitter *e, const PlanLayer *pl, const WinoAlgo *w)
{
    const char *n = pl->l->name;
    int points = w->n * w->n;
    emit(e, "/* %s: U[ξ] = (G g Gᵀ)[ξ] for every channel pair's 3×3 kernel g, as [%d][@IC][@OC]; for dL/din", n,
         points);
    emit(e, "   (for_din) the kernel rotated by 180° with its channels swapped, [%d][@OC][@IC] */", points);
    emit(e, "static void %s_winograd_weights(const float *restrict weight, float *restrict u, const int for_din)", n);
    emit_open(e, "{");
    emit_open(e, "if (!for_din) {");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit_open(e, "for (int v = 0; v < @OC / @VL; v++) {");
    emit(e, "%s_vf g[3][3];", n);
    emit(e, "for (int a = 0; a < 3; a++)");
    emit(e, "    for (int b = 0; b < 3; b++) g[a][b] = *(const %s_vf *)(weight + ((size_t)(a * 3 + b) * @IC + ci) * @OC + v * @VL);",
         n);
    char ty[64], store[160];
    snprintf(ty, sizeof ty, "%s_vf", n);
    snprintf(store, sizeof store, "*(%s_vf *)(u + ((size_t)(a * %d + b) * @IC + ci) * @OC + v * @VL)", n, w->n);
    emit_weight_transform_body(e, w, ty, store);
    emit_close(e, "v");
    emit_close(e, "ci");
    emit(e, "return;");
    emit_close(e, NULL);
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "float g[3][3];");
    emit(e, "for (int a = 0; a < 3; a++)");
    emit(e, "    for (int b = 0; b < 3; b++) g[a][b] = weight[((size_t)((2 - a) * 3 + 2 - b) * @IC + ci) * @OC + co];");
    snprintf(store, sizeof store, "u[((size_t)(a * %d + b) * @OC + co) * @IC + ci]", w->n);
    emit_weight_transform_body(e, w, "float", store);
    emit_close(e, "ci");
    emit_close(e, "co");
    emit_close(e, NULL);
    emit_blank(e);
}

/* The window's vectors r[a][b] of input-channel vector v: from x, the
 * window's first float; or, for a source without margins (checked), only
 * where row y0 + a and column x0 + b are inside it, else zeros. */
static void emit_window_loads(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool checked)
{
    const char *n = pl->l->name, *k = d->tag;
    int wn = d->w->n;
    char routed[96];
    snprintf(routed, sizeof routed, "%s_routed(&r[a][b], src, argmax, y0 + a, x0 + b, v)", n);
    emit(e, "for (int a = 0; a < %d; a++)", wn);
    if (!checked && d->routed) {
        emit(e, "    for (int b = 0; b < %d; b++) %s;", wn, routed);
        return;
    }
    if (!checked) {
        emit(e, "    for (int b = 0; b < %d; b++) r[a][b] = *(const %s_vf *)(x + ((size_t)a * @%s_SRC_W + b) * @%s_CI + v * @VL);",
             wn, n, k, k);
        return;
    }
    emit(e, "    for (int b = 0; b < %d; b++)", wn);
    if (d->routed) {
        emit(e, "        if ((unsigned)(y0 + a) < @%s_SRC_H && (unsigned)(x0 + b) < @%s_SRC_W) %s;", k, k, routed);
        emit(e, "        else r[a][b] = (%s_vf){0};", n);
        return;
    }
    emit(e, "        r[a][b] = (unsigned)(y0 + a) < @%s_SRC_H && (unsigned)(x0 + b) < @%s_SRC_W", k, k);
    emit(e, "                  ? *(const %s_vf *)(src + ((size_t)(y0 + a) * @%s_SRC_W + x0 + b) * @%s_CI + v * @VL) : (%s_vf){0};",
         n, k, k, n);
}

/* V[ξ][t][ci] = (Bᵀ d B)[ξ] for one tile's vector v: columns then rows, each output a short sum. */
static void emit_window_transform(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool checked)
{
    const char *n = pl->l->name, *k = d->tag;
    int wn = d->w->n;
    emit_open(e, "for (int v = 0; v < @%s_NIV; v++) {", k);
    emit(e, "%s_vf r[%d][%d], y[%d][%d];", n, wn, wn, wn, wn);
    emit_window_loads(e, pl, d, checked);
    emit_open(e, "for (int b = 0; b < %d; b++) {   /* Bᵀ x */", wn);
    for (int i = 0; i < wn; i++) emit(e, "y[%d][b] = %s;", i, wino_sum(d->w->bt[i], wn, 1, "r[%d][b]").s);
    emit_close(e, "b");
    emit_open(e, "for (int a = 0; a < %d; a++) {   /* (Bᵀ x) B, into ξ = %d·a … %d·a+%d */", wn, wn, wn, wn - 1);
    emit(e, "float *restrict p = V + (size_t)a * %d * @%s_VROW + (size_t)t * @%s_CI + v * @VL;", wn, k, k);
    for (int i = 0; i < wn; i++)
        emit(e, "*(%s_vf *)(p + %d * @%s_VROW) = %s;", n, i, k, wino_sum(d->w->bt[i], wn, 1, "y[a][%d]").s);
    emit_close(e, "a");
    emit_close(e, "v");
}

/* V for a chunk of tiles.  A source without margins takes the window's
 * floats past its edges as zeros: tiles whose window is inside load as the
 * padded source's do, the others test each row and column. */
static void emit_input_transform(Emitter *e, const PlanLayer *pl, const WinoDir *d)
{
    const char *n = pl->l->name, *k = d->tag;
    int wn = d->w->n, m = d->w->m;
    emit(e, "/* %s, %s: V[ξ][t][ci] = (Bᵀ x B)[ξ] for tiles t0 … t0+nt−1 of the image, x the %d×%d window of", n,
         d->fn, wn, wn);
    if (d->margin_free)
        emit(e, "   src at (%d·ty − 1, %d·tx − 1), zeros outside src */", m, m);
    else
        emit(e, "   src at (%d·ty, %d·tx) */", m, m);
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_in(%s,", n, d->fn, src_params(d));
    emit(e, "    float *restrict V, const int t0, const int nt)");
    emit_open(e, "{");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    if (!d->margin_free) {
        emit(e, "const float *restrict x = src + ((size_t)%d * ty * @%s_SRC_W + %d * tx) * @%s_CI;", m, k, m, k);
        emit_window_transform(e, pl, d, false);
    } else {
        emit(e, "const int y0 = %d * ty - 1, x0 = %d * tx - 1;   /* the window's first row and column in src */", m, m);
        emit_open(e, "if (y0 >= 0 && x0 >= 0 && y0 + %d <= @%s_SRC_H && x0 + %d <= @%s_SRC_W) {", wn, k, wn, k);
        if (!d->routed) emit(e, "const float *restrict x = src + ((size_t)y0 * @%s_SRC_W + x0) * @%s_CI;", k, k);
        emit_window_transform(e, pl, d, false);
        emit_else(e, "an edge tile");
        emit_window_transform(e, pl, d, true);
        emit_close(e, NULL);
    }
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
    snprintf(nv, sizeof nv, "@%s_NG", k);
    emit(e, "/* %s, %s: M[ξ][t][co] = Σ_ci V[ξ][t][ci] · U[ξ][ci][co] for tx tiles, all channels, @%s_NG vectors at a time */",
         n, d->fn, k);
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_tile(const float *restrict vx,", n, d->fn);
    emit(e, "    const float *restrict ux, float *restrict mx, const int tx)");
    emit_open(e, "{");
    emit_open(e, "for (int g = 0; g < @%s_NV; g += @%s_NG) {", k, k);
    char cap[32];
    snprintf(cap, sizeof cap, "@%s_TX", k);
    emit_tile_begin(e, vt, cap, "tx", nv);
    emit_open(e, "for (int ci = 0; ci < @%s_CI; ci++) {", k);
    snprintf(vec, sizeof vec, "*(const %s *)(ux + (size_t)ci * @%s_CO + (g + v) * @VL)", vt, k);
    snprintf(scalar, sizeof scalar, "vx[(size_t)t * @%s_CI + ci]", k);
    emit_tile_update(e, vt, nv, vec, "tx", scalar);
    emit_close(e, "ci");
    emit(e, "for (int t = 0; t < tx; t++)");
    emit(e, "    for (int v = 0; v < @%s_NG; v++) *(%s *)(mx + (size_t)t * @%s_CO + (g + v) * @VL) = acc[t][v];", k, vt, k);
    emit_close(e, "g");
    emit_close(e, NULL);
    emit_blank(e);
}

/* The chunk functions' per-direction argument: the bias forward, for dL/din
 * the image's padded input, the relu mask (plan.c relu_mask), else unused. */
static const char *side_name(bool forward) { return forward ? "bias" : "mask"; }

/* In the output transform, after row a of a tile's outputs (y, the relu's):
 * each tap into its window as the pool's forward takes it (emit_pool.c: the
 * first maximum in row-major window order), and after a window's second row
 * its maximum and argmax stored, argmax −1 where the relu's output is not
 * > 0 if the pool applies the relu's mask. */
static void emit_pool_windows(Emitter *e, const PlanLayer *pl, const PlanLayer *pool, int m)
{
    const char *n = pl->l->name, *q = pool->prefix;
    emit_open(e, "for (int j = 0; j < %d; j++) {", m);
    emit(e, "const int32_t pos = (%d * ty + a) * @OW + %d * tx + j;", m, m);
    emit(e, "const %s_vi take = (y[j] > best[j / 2]) | (where[j / 2] < 0);", n);
    emit(e, "best[j / 2] = (%s_vf)(((%s_vi)y[j] & take) | ((%s_vi)best[j / 2] & ~take));", n, n, n);
    emit(e, "where[j / 2] = (pos & take) | (where[j / 2] & ~take);");
    emit_close(e, "j");
    emit(e, "if (a %% 2 == 0) continue;");
    emit_open(e, "for (int w = 0; w < %d; w++) {   /* the row of windows is whole */", m / 2);
    if (m == 2)   /* one window per tile: its pooled pixel is (ty, tx) */
        emit(e, "const size_t at = (((size_t)ty + a / 2) * %sOW + tx + w) * %sOC + v * @VL;", q, q);
    else
        emit(e, "const size_t at = (((size_t)%d * ty + a / 2) * %sOW + %d * tx + w) * %sOC + v * @VL;", m / 2, q, m / 2, q);
    if (pool->relu_mask) emit(e, "where[w] |= ~(best[w] > 0.0f);   /* as %s_forward: no gradient where not > 0 */", pool->l->name);
    emit(e, "*(%s_vf *)(pooled + at) = best[w];", n);
    emit(e, "memcpy(argmax + at, &where[w], sizeof where[w]);");
    emit(e, "best[w] = (%s_vf){0} - INFINITY, where[w] = (%s_vi){0} - 1;", n, n);
    emit_close(e, "w");
}

/* out = Aᵀ M A per tile (plus the bias and the fused relu forward; for dL/din
 * the relu before's mask, applied as the tile is stored: a pass over the
 * image's dL/din after had read and written it all again). */
static void emit_output_transform(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool forward)
{
    const Layer *l = pl->l;
    const char *n = l->name, *k = d->tag;
    int wn = d->w->n, m = d->w->m;
    bool bias = forward && l->a.bias, relu = forward && pl->fused_relu, mask = !forward && pl->relu_mask;
    emit(e, "/* %s, %s: each tile's %d×%d outputs = Aᵀ M A%s%s%s */", n, d->fn, m, m, bias ? " + bias" : "",
         relu ? ", then the fused relu" : "", mask ? ", 0 where the relu before's output (mask) is not > 0" : "");
    const PlanLayer *pool = dir_pool(e, pl, forward);
    if (pool)
        emit(e, "/* and instead of storing them, the %s after the relu, fused: each 2×2 window's maximum into pooled, "
             "and into argmax the position iy·@OW + ix of its first (as %s_forward would) */", pool->l->name,
             pool->l->name);
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_out(const float *restrict M,", n, d->fn);
    emit(e, "    const float *restrict %s, %s, const int t0, const int nt)", side_name(forward),
         dst_params(e, pl, forward));
    emit_open(e, "{");
    if (!bias && !mask) emit(e, "(void)%s;", side_name(forward));
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    if (!pool) emit(e, "float *restrict o = dst + ((size_t)%d * ty * @OW + %d * tx) * @%s_CO;", m, m, k);
    /* the mask: the relu's output, our padded input or (margin-free) the input itself */
    const char *mask_w = pl->margin_free ? "@IW" : "@SRC_W";
    if (mask && pl->margin_free)
        emit(e, "const float *restrict q = mask + ((size_t)%d * ty * @IW + %d * tx) * @%s_CO;", m, m, k);
    else if (mask)
        emit(e, "const float *restrict q = mask + ((size_t)(%d * ty + @PH) * @SRC_W + %d * tx + @PW) * @%s_CO;", m, m, k);
    emit_open(e, "for (int v = 0; v < @%s_NV; v++) {", k);
    emit(e, "%s_vf m[%d][%d], z[%d][%d], y[%d];", n, wn, wn, m, wn, m);
    emit(e, "for (int a = 0; a < %d; a++)", wn);
    emit(e, "    for (int b = 0; b < %d; b++) m[a][b] = *(const %s_vf *)(M + (size_t)(a * %d + b) * @%s_MROW + (size_t)t * @%s_CO + v * @VL);",
         wn, n, wn, k, k);
    emit_open(e, "for (int b = 0; b < %d; b++) {   /* Aᵀ m */", wn);
    for (int i = 0; i < m; i++) emit(e, "z[%d][b] = %s;", i, wino_sum(d->w->at[i], wn, 1, "m[%d][b]").s);
    emit_close(e, "b");
    if (bias) emit(e, "const %s_vf bv = *(const %s_vf *)(bias + v * @VL);", n, n);
    if (pool) {
        emit(e, "%s_vf best[%d];   /* the windows of output rows (a − a %% 2, a − a %% 2 + 1) */", n, m / 2);
        emit(e, "%s_vi where[%d];", n, m / 2);
        emit(e, "for (int w = 0; w < %d; w++) best[w] = (%s_vf){0} - INFINITY, where[w] = (%s_vi){0} - 1;", m / 2, n, n);
    }
    emit_open(e, "for (int a = 0; a < %d; a++) {   /* (Aᵀ m) A: output row %d·ty + a */", m, m);
    for (int i = 0; i < m; i++)
        emit(e, "y[%d] = %s%s;", i, wino_sum(d->w->at[i], wn, 1, "z[a][%d]").s, bias ? " + bv" : "");
    if (relu) {
        emit(e, "/* the relu after this conv, fused: lanes not > 0 become +0 */");
        emit(e, "for (int j = 0; j < %d; j++) y[j] = (%s_vf)((%s_vi)y[j] & (y[j] > 0.0f));", m, n, n);
    }
    if (mask) {
        emit(e, "for (int j = 0; j < %d; j++)", m);
        emit(e, "    y[j] = (%s_vf)((%s_vi)y[j] & (*(const %s_vf *)(q + ((size_t)a * %s + j) * @%s_CO + v * @VL) > 0.0f));",
             n, n, n, mask_w, k);
    }
    if (pool)
        emit_pool_windows(e, pl, pool, m);
    else
        emit(e, "for (int j = 0; j < %d; j++) *(%s_vf *)(o + ((size_t)a * @OW + j) * @%s_CO + v * @VL) = y[j];", m, n, k);
    emit_close(e, "a");
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

/* One chunk: transform its tiles in, multiply per ξ, transform out; nt is
 * a constant at each call, so the tile loops unroll. */
static void emit_chunk(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool forward)
{
    const char *n = pl->l->name, *f = d->fn, *k = d->tag, *side = side_name(forward);
    long points = wino_points(d->w);
    int m = d->w->m;
    int last_row = d->w->n - 1 - (d->margin_free ? 1 : 0);   /* tile row ty's window ends at source row m·ty + this */
    emit(e, "static inline __attribute__((always_inline)) void %s_%s_winograd_chunk(%s,", n, f, src_params(d));
    emit(e, "    const float *restrict u, const float *restrict %s, %s, float *restrict V,", side,
         dst_params(e, pl, forward));
    emit(e, "    float *restrict M, const int t0, const int nt)");
    emit_open(e, "{");
    bool pooled = dir_pool(e, pl, forward);   /* it writes a quarter as many floats, and argmax */
    emit(e, "%s_%s_winograd_in(%s, V, t0, nt);", n, f, src_args(d));
    emit(e, "/* what the hardware prefetcher brings too late (vgg-small's conv2 forward: 111 µs an image streaming");
    if (pooled) {
        emit(e, "   the batch, 90 with one image in cache): the input rows the next chunk adds, a %ldth per ξ */",
             points);
    } else {
        emit(e, "   the batch, 90 with one image in cache): the input rows the next chunk adds, and this chunk's");
        emit(e, "   output rows, for writing; a %ldth of each per ξ */", points);
    }
    emit(e, "const int last_in = %d * ((t0 + nt - 1) / @TILES_W) + %d;   /* this chunk's last source row */", m,
         last_row);
    emit(e, "const int next_end = t0 + 2 * nt < @TILES ? t0 + 2 * nt : @TILES;   /* the next chunk's tiles end */");
    emit(e, "const int in_rows = t0 + nt < @TILES ? %d * ((next_end - 1) / @TILES_W) + %d - last_in : 0;", m,
         last_row);
    if (d->routed) {
        const char *q = d->routed->prefix;
        emit(e, "/* in %s's dL/dout and argmax, which src and argmax are: the pooled rows holding them */",
             d->routed->l->name);
        emit(e, "const int p0 = (last_in + 1) / 2, prows = in_rows > 0 ? (last_in + in_rows) / 2 + 1 - p0 : 0;");
        emit(e, "const float *restrict next_in = src + (size_t)p0 * %sOW * @%s_CI;", q, k);
        emit(e, "const int32_t *restrict next_arg = argmax + (size_t)p0 * %sOW * @%s_CI;", q, k);
        emit(e, "const long in_bytes = 4L * prows * %sOW * @%s_CI;", q, k);
    } else {
        emit(e, "const float *restrict next_in = src + (size_t)(last_in + 1) * @%s_SRC_W * @%s_CI;", k, k);
        emit(e, "const long in_bytes = 4L * in_rows * @%s_SRC_W * @%s_CI;", k, k);
    }
    if (!pooled) {
        emit(e, "float *restrict out_rows = dst + (size_t)%d * (t0 / @TILES_W) * @OW * @%s_CO;", m, k);
        emit(e, "const long out_bytes = 4L * %d * ((t0 + nt - 1) / @TILES_W - t0 / @TILES_W + 1) * @OW * @%s_CO;", m, k);
    }
    emit_open(e, "for (int xi = 0; xi < %ld; xi++) {", points);
    emit(e, "cnn_prefetch_part(next_in, in_bytes, xi, %ld, 0);", points);
    if (d->routed) emit(e, "cnn_prefetch_part(next_arg, in_bytes, xi, %ld, 0);", points);
    if (!pooled) emit(e, "cnn_prefetch_part(out_rows, out_bytes, xi, %ld, 1);", points);
    emit(e, "const float *restrict vx = V + (size_t)xi * @%s_VROW, *restrict ux = u + (size_t)xi * @%s_CI * @%s_CO;",
         k, k, k);
    emit(e, "float *restrict mx = M + (size_t)xi * @%s_MROW;", k);
    emit(e, "int t = 0;");
    emit(e, "for (; t + @%s_TX <= nt; t += @%s_TX)", k, k);
    emit(e, "    %s_%s_winograd_tile(vx + (size_t)t * @%s_CI, ux, mx + (size_t)t * @%s_CO, @%s_TX);", n, f, k, k, k);
    emit(e, "if (t < nt) %s_%s_winograd_tile(vx + (size_t)t * @%s_CI, ux, mx + (size_t)t * @%s_CO, nt %% @%s_TX);", n, f,
         k, k, k);
    emit_close(e, "xi");
    emit(e, "%s_%s_winograd_out(M, %s, %s, t0, nt);", n, f, side, dst_args(e, pl, forward));
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* %s, %s: one image, src %s, in chunks of @%s_CHUNK tiles */", n, f,
         d->margin_free ? "without margins (zeros past its edges)" : "padded by 1 on every side", k);
    emit(e, "static void %s_%s_winograd(%s, const float *restrict u, const float *restrict %s,", n, f,
         src_params(d), side);
    emit(e, "    %s)", dst_params(e, pl, forward));
    emit_open(e, "{");
    emit(e, "float V[%ld * @%s_VROW] __attribute__((aligned(64)));   /* this thread's, on its stack */", points, k);
    emit(e, "float M[%ld * @%s_MROW] __attribute__((aligned(64)));", points, k);
    emit(e, "int t0 = 0;");
    const char *da = dst_args(e, pl, forward);
    emit(e, "for (; t0 + @%s_CHUNK <= @TILES; t0 += @%s_CHUNK) %s_%s_winograd_chunk(%s, u, %s, %s, V, M, t0, @%s_CHUNK);",
         k, k, n, f, src_args(d), side, da, k);
    emit(e, "if (t0 < @TILES) %s_%s_winograd_chunk(%s, u, %s, %s, V, M, t0, @TILES %% @%s_CHUNK);", n, f, src_args(d), side,
         da, k);
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_direction(Emitter *e, const PlanLayer *pl, const WinoDir *d, bool forward)
{
    emit_input_transform(e, pl, d);
    emit_multiply_tile(e, pl, d);
    emit_output_transform(e, pl, d, forward);
    emit_chunk(e, pl, d, forward);
}

/* Before the layer's forward function: the weight transform and the forward kernels. */
void emit_conv_winograd_forward_kernels(Emitter *e, const PlanLayer *pl)
{
    const WinoAlgo *w = wino_algo(e, pl);
    WinoDir f = wino_forward(pl, w);
    emit_weight_transform(e, pl, w);
    emit_direction(e, pl, &f, true);
}

/* Before the layer's backward function: the dL/din kernels. */
void emit_conv_winograd_din_kernels(Emitter *e, const PlanLayer *pl)
{
    WinoDir d = wino_input_grad(pl->l, wino_algo(e, pl));
    d.routed = routed_pool(e, pl);
    emit_direction(e, pl, &d, false);
}

/* Inside conv_forward: every image, from src (its padded copy, or margin-free the input itself). */
void emit_conv_winograd_forward(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    int m = wino_algo(e, pl)->m;
    emit(e, "/* Winograd F(%d×%d,3×3): the weights transformed once per step, then image by image */", m, m);
    emit(e, "float *restrict u = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;");
    emit(e, "%s_winograd_weights(weight, u, 0);", n);
    const PlanLayer *pool = dir_pool(e, pl, true);
    if (pool) {
        const char *q = pool->prefix;
        emit(e, "(void)out;   /* never stored: %s alone would read it, and this conv applies %s */", pool->l->name,
             pool->l->name);
        emit(e, "float *restrict pooled = c->acts + (size_t)c->batch * %sOUT;   /* %s's output and argmax */", q,
             pool->l->name);
        emit(e, "int32_t *restrict argmax = c->index + (size_t)c->batch * %sARGMAX;", q);
    }
    emit_conv_forward_batch_loop(e, pl);
    const char *src = pl->margin_free ? "@IH * @IW" : "@SRC_H * @SRC_W";
    if (pool) {
        const char *q = pool->prefix;
        emit(e, "%s_forward_winograd(src + (size_t)b * %s * @IC, u, bias, pooled + (size_t)b * %sOH * %sOW * %sOC,", n,
             src, q, q, q);
        emit(e, "                   argmax + (size_t)b * %sOH * %sOW * %sOC);", q, q, q);
    }
    else
        emit(e, "%s_forward_winograd(src + (size_t)b * %s * @IC, u, bias, out + (size_t)b * @OH * @OW * @OC);", n, src);
    emit_close(e, "b");
}

/* Inside conv_backward: dL/din as the forward kernel's convolution of
 * dL/dout (zeros past its edges) with the rotated kernel; the relu before's
 * mask, the padded input forward kept, is applied as each tile is stored. */
void emit_conv_winograd_din(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    int m = wino_algo(e, pl)->m;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, by Winograd F(%d×%d,3×3) */", m, m);
    emit(e, "float *restrict u = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;");
    emit(e, "%s_winograd_weights(c->params + @WEIGHT, u, 1);", n);
    const PlanLayer *pool = routed_pool(e, pl);
    emit_batch_loop(e);
    const char *mask = !pl->relu_mask ? "NULL"
                       : pl->margin_free ? "in + (size_t)b * @IH * @IW * @IC"   /* the relu's output: our input */
                       : "padded + (size_t)b * @SRC_H * @SRC_W * @IC";
    Text image = dout_floats(pool);
    if (pool) {
        emit(e, "%s_input_grad_winograd(dout + (size_t)b * %s, argmax + (size_t)b * %s, u, %s,", n, image.s, image.s,
             mask);
        emit(e, "    din + (size_t)b * @IH * @IW * @IC);");
    } else {
        emit(e, "%s_input_grad_winograd(dout + (size_t)b * %s, u, %s, din + (size_t)b * @IH * @IW * @IC);", n, image.s,
             mask);
    }
    emit_close(e, "b");
}

/* ---- dL/dweight ----------------------------------------------------------------------- *
 * The same identity read the other way: a tile's share of dL/dweight is
 *     Gᵀ [ (Bᵀ x B) ⊙ (A g Aᵀ) ] G
 * with x the padded input's n×n window and g dL/dout's m×m block, so
 *     M[ξ][ci][co] = Σ over images and tiles of V[ξ][t][ci] · E[ξ][t][co]
 * is summed in registers (tiles of input-channel rows × output-channel
 * vectors, like the direct dL/dweight), and dL/dweight = Gᵀ M G once per
 * step.  Row a of the transforms (ξ = n·a … n·a+n−1) needs row a of Bᵀ x and
 * of A g, so (chunk of the batch, row a) are the tasks, image by image: a
 * thread computes its rows' transforms and owns their M for its chunk,
 * summed in image and tile order whatever the thread count, and the chunks'
 * M are added before the transform (plan.h PLAN_GRAD_CHUNKS: with 2 threads
 * each sums its own images).  Chunk 0's M lives where U does (@WINO): dL/din
 * transforms its weights only after; the others' at @WPART. */

static long wino_grad_chunk(const WinoAlgo *w, const Layer *l)
{
    long ch = WINO_CHUNK_BYTES / (4 * w->n * (l->in.c + l->a.n));   /* n rows ξ of V and E */
    if (ch > wino_tiles(w, l)) ch = wino_tiles(w, l);
    return ch < 1 ? 1 : ch;
}

void emit_conv_winograd_weight_grad_constants(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    long ch = wino_grad_chunk(wino_algo(e, pl), l);
    int ng = emit_vector_group(e, l->a.n / e->vlen, l->a.n / e->vlen, l->in.c);
    emit(e, "@WW_CT = %d, @WW_NG = %d, @WW_CHUNK = %ld, @WW_VROW = %ld, @WW_EROW = %ld,   /* dL/dweight's register tile: "
         "input-channel rows × output-channel vectors; tiles per chunk, floats per ξ in V and E */",
         emit_weight_grad_rows(e, ng, l->in.c), ng, ch, ch * l->in.c + 16, ch * l->a.n + 16);
}

/* switch (a) { case i: <dst> = Σ_j c_i[j]·term(j); … }, c_i row i (or column i, stride > 1) of a matrix. */
static void emit_row_switch(Emitter *e, const char *dst, const Coef *c0, int rows, int row_step, int len, int stride,
                            const char *term)
{
    emit_open(e, "switch (a) {");
    for (int i = 0; i < rows; i++)
        emit(e, "case %d: %s = %s; break;", i, dst, wino_sum(c0 + i * row_step, len, stride, term).s);
    emit(e, "default: __builtin_unreachable();");
    emit_close(e, NULL);
}

static void emit_weight_grad_input_row(Emitter *e, const PlanLayer *pl, const WinoAlgo *w)
{
    const char *n = pl->l->name;
    int wn = w->n, m = w->m;
    emit(e, "/* %s, dL/dweight: row a of V = Bᵀ x B (ξ = %d·a … %d·a+%d) for tiles t0 … t0+nt−1 of image b */", n, wn,
         wn, wn - 1);
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_in(const float *restrict src,", n);
    emit(e, "    float *restrict V, const int a, const int t0, const int nt)");
    emit_open(e, "{");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    emit(e, "const float *restrict x = src + ((size_t)%d * ty * @SRC_W + %d * tx) * @IC;", m, m);
    emit_open(e, "for (int v = 0; v < @IC / @VL; v++) {");
    emit(e, "%s_vf r[%d], y[%d];", n, wn, wn);
    emit_open(e, "for (int j = 0; j < %d; j++) {   /* column j of row a of Bᵀ x */", wn);
    emit(e, "for (int i = 0; i < %d; i++) r[i] = *(const %s_vf *)(x + ((size_t)i * @SRC_W + j) * @IC + v * @VL);", wn, n);
    emit_row_switch(e, "y[j]", &w->bt[0][0], wn, 6, wn, 1, "r[%d]");
    emit_close(e, "j");
    emit(e, "float *restrict o = V + (size_t)t * @IC + v * @VL;   /* (row of Bᵀ x) B */");
    for (int i = 0; i < wn; i++)
        emit(e, "*(%s_vf *)(o + %d * @WW_VROW) = %s;", n, i, wino_sum(w->bt[i], wn, 1, "y[%d]").s);
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_weight_grad_output_row(Emitter *e, const PlanLayer *pl, const WinoAlgo *w)
{
    const char *n = pl->l->name;
    int wn = w->n, m = w->m;
    const PlanLayer *pool = routed_pool(e, pl);
    emit(e, "/* %s, dL/dweight: row a of E = A g Aᵀ for the same tiles, g dL/dout's %d×%d block%s */", n, m, m,
         pool ? " (routed from dout, the pool's, through argmax)" : "");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_g(const float *restrict dout,%s", n,
         pool ? " const int32_t *restrict argmax," : "");
    emit(e, "    float *restrict E, const int a, const int t0, const int nt)");
    emit_open(e, "{");
    emit_open(e, "for (int t = 0; t < nt; t++) {");
    emit(e, "const int ty = (t0 + t) / @TILES_W, tx = (t0 + t) %% @TILES_W;");
    if (!pool) emit(e, "const float *restrict g = dout + ((size_t)%d * ty * @OW + %d * tx) * @OC;", m, m);
    emit_open(e, "for (int v = 0; v < @NV; v++) {");
    emit(e, "%s_vf r[%d], y[%d];", n, m, m);
    emit_open(e, "for (int j = 0; j < %d; j++) {   /* column j of row a of A g */", m);
    if (pool)
        emit(e, "for (int i = 0; i < %d; i++) %s_routed(&r[i], dout, argmax, %d * ty + i, %d * tx + j, v);", m, n, m, m);
    else
        emit(e, "for (int i = 0; i < %d; i++) r[i] = *(const %s_vf *)(g + ((size_t)i * @OW + j) * @OC + v * @VL);", m, n);
    emit_row_switch(e, "y[j]", &w->at[0][0], wn, 1, m, 6, "r[%d]");   /* A's row a: column a of Aᵀ */
    emit_close(e, "j");
    emit(e, "float *restrict o = E + (size_t)t * @OC + v * @VL;   /* (row of A g) Aᵀ */");
    for (int i = 0; i < wn; i++)
        emit(e, "*(%s_vf *)(o + %d * @WW_EROW) = %s;", n, i, wino_sum(&w->at[0][i], m, 6, "y[%d]").s);
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

void emit_conv_winograd_weight_grad_kernels(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    const WinoAlgo *w = wino_algo(e, pl);
    const PlanLayer *pool = routed_pool(e, pl);
    if (pool) emit_routed_load(e, pl, pool);
    emit_weight_grad_input_row(e, pl, w);
    emit_weight_grad_output_row(e, pl, w);
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    emit(e, "/* %s, dL/dweight: M[ξ][ci][co] for ct rows from ci0 += Σ over nt tiles of V[ξ][t][ci] · E[ξ][t][co],", n);
    emit(e, "   @WW_NG vectors of co at a time (stored, not added, for the first chunk of the batch) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_tile(const float *restrict vx,", n);
    emit(e, "    const float *restrict ex, float *restrict mx, const int ci0, const int ct, const int nt, const int first)");
    emit_open(e, "{");
    emit_open(e, "for (int g = 0; g < @NV; g += @WW_NG) {");
    emit_tile_begin(e, vt, "@WW_CT", "ct", "@WW_NG");
    emit_open(e, "for (int k = 0; k < nt; k++) {   /* tiles; t counts the rows */");
    snprintf(vec, sizeof vec, "*(const %s *)(ex + (size_t)k * @OC + (g + v) * @VL)", vt);
    emit_tile_update(e, vt, "@WW_NG", vec, "ct", "vx[(size_t)k * @IC + ci0 + t]");
    emit_close(e, "k");
    emit(e, "for (int r = 0; r < ct; r++)");
    emit_open(e, "    for (int v = 0; v < @WW_NG; v++) {");
    emit(e, "%s *p = (%s *)(mx + (size_t)(ci0 + r) * @OC + (g + v) * @VL);", vt, vt);
    emit(e, "*p = first ? acc[r][v] : *p + acc[r][v];");
    emit_close(e, "v");
    emit_close(e, "g");
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_winograd_chunk(const float *restrict src,", n);
    emit(e, "    const float *restrict dout,%s float *restrict m, float *restrict dbias, float *restrict V, float *restrict E,",
         pool ? " const int32_t *restrict argmax," : "");
    emit(e, "    const int a, const int t0, const int nt, const int first)");
    emit_open(e, "{");
    /* one case per row, so each inlined copy of the transforms has constant coefficients: with a
       run-time a, gcc kept the row switch inside the per-vector loops and loaded all of a column's
       inputs where a row needs two */
    emit_open(e, "switch (a) {   /* the row's transforms with constant coefficients */");
    for (int a = 0; a < w->n; a++)
        emit(e, "case %d: %s_weight_grad_winograd_in(src, V, %d, t0, nt); %s_weight_grad_winograd_g(%s, E, %d, t0, nt); break;",
             a, n, a, n, pool ? "dout, argmax" : "dout", a);
    emit(e, "default: __builtin_unreachable();");
    emit_close(e, NULL);
    if (pl->l->a.bias) {
        emit_open(e, "if (a == 1) {   /* E at row 1, column 1 is each block's sum (A's row 1 is all ones): dL/dbias */");
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
    emit_open(e, "for (int j = 0; j < %d; j++) {", w->n);
    emit(e, "const float *restrict vx = V + (size_t)j * @WW_VROW, *restrict ex = E + (size_t)j * @WW_EROW;");
    emit(e, "float *restrict mx = m + (size_t)(%d * a + j) * @IC * @OC;", w->n);
    emit(e, "int ci0 = 0;");
    emit(e, "for (; ci0 + @WW_CT <= @IC; ci0 += @WW_CT) %s_weight_grad_winograd_tile(vx, ex, mx, ci0, @WW_CT, nt, first);", n);
    emit(e, "if (ci0 < @IC) %s_weight_grad_winograd_tile(vx, ex, mx, ci0, @IC %% @WW_CT, nt, first);", n);
    emit_close(e, "j");
    emit_close(e, NULL);
    emit_blank(e);
}

/* dL/dweight = Gᵀ M G, per channel pair. */
static void emit_weight_grad_transform(Emitter *e, const WinoAlgo *w)
{
    int wn = w->n;
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;   /* [3][3][@IC][@OC] */");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "float t[3][%d], mi[%d];   /* Gᵀ M */", wn, wn);
    emit_open(e, "for (int j = 0; j < %d; j++) {", wn);
    emit(e, "for (int i = 0; i < %d; i++) mi[i] = m[((size_t)(i * %d + j) * @IC + ci) * @OC + co];", wn, wn);
    for (int k = 0; k < 3; k++) emit(e, "t[%d][j] = %s;", k, wino_sum(&w->g[0][k], wn, 3, "mi[%d]").s);
    emit_close(e, "j");
    emit_open(e, "for (int ky = 0; ky < 3; ky++) {   /* (Gᵀ M) G */");
    emit(e, "float *restrict d = dweight + ((size_t)ky * 3 * @IC + ci) * @OC + co;");
    for (int k = 0; k < 3; k++)
        emit(e, "d[%s] = %s;", k == 0 ? "0" : k == 1 ? "(size_t)@IC * @OC" : "(size_t)2 * @IC * @OC",
             wino_sum(&w->g[0][k], wn, 3, "t[ky][%d]").s);
    emit_close(e, "ky");
    emit_close(e, "co");
    emit_close(e, "ci");
}

/* Inside conv_backward, in place of the direct dL/dweight. */
void emit_conv_winograd_weight_grad(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    const WinoAlgo *w = wino_algo(e, pl);
    const PlanLayer *pool = routed_pool(e, pl);
    Text gimage = dout_floats(pool);
    int wn = w->n;
    emit(e, "/* dL/dweight by Winograd F(%d×%d,3×3): M summed over each chunk of the batch, tasks of (chunk, row a", w->m,
         w->m);
    emit(e, "   of ξ), the chunks' M added, then dL/dweight = Gᵀ M G */");
    emit(e, "enum { MFLOATS = %d * @IC * @OC, BIAS = %d };   /* a chunk's copy: M, then dL/dbias */", wn * wn,
         pl->l->a.bias ? pl->l->a.n : 0);
    emit(e, "enum { WW_CHUNKS = (@TILES + @WW_CHUNK - 1) / @WW_CHUNK };   /* tile chunks per image */");
    emit(e, "float *restrict m = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WINO;   /* M[%d][@IC][@OC], chunk 0 */",
         wn * wn);
    emit(e, "float *restrict part = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPART;   /* chunks 1 … */");
    emit(e, "float *restrict dbias = %s;", pl->l->a.bias ? "c->grads + @BIAS" : "NULL");
    emit(e, "const int per_chunk = cnn_chunk_first(c->batch, 1);   /* chunk 0 is the largest */");
    emit(e, "#pragma omp parallel");
    emit_open(e, "{");
    emit(e, "float V[%d * @WW_VROW] __attribute__((aligned(64)));   /* this thread's, on its stack */", wn);
    emit(e, "float E[%d * @WW_EROW] __attribute__((aligned(64)));", wn);
    if (pl->margin_free) emit_conv_thread_copy_buffer(e);
    emit_open(e, "for (int k = 0; k < per_chunk; k++) {   /* images outermost: each is read from cache by every task */");
    emit(e, "#pragma omp for schedule(static) nowait   /* the same tasks for every k: one owner per row of M */");
    emit_open(e, "for (int task = 0; task < CNN_GRAD_CHUNKS * %d; task++) {", wn);
    emit(e, "const int g = task / %d, a = task %% %d, b = cnn_chunk_first(c->batch, g) + k;", wn, wn);
    emit(e, "if (b >= cnn_chunk_first(c->batch, g + 1)) continue;   /* this chunk has fewer images */");
    emit(e, "float *restrict mg = g == 0 ? m : part + (size_t)(g - 1) * (MFLOATS + BIAS);");
    emit(e, "float *restrict dbg = dbias == NULL || g == 0 ? dbias : mg + MFLOATS;");
    /* image b: its padded copy, kept by forward or (margin-free) made on the thread's stack */
    const char *image = pl->margin_free ? "@IH * @IW" : "@SRC_H * @SRC_W";
    if (pl->margin_free) emit_conv_thread_copy(e);
    else emit(e, "const float *restrict img = src + (size_t)b * @SRC_H * @SRC_W * @IC;");
    emit(e, "const float *restrict gr = dout + (size_t)b * %s;", gimage.s);
    if (pool) emit(e, "const int32_t *restrict arg = argmax + (size_t)b * %s;", gimage.s);
    emit(e, "/* the chunk's next image, a share per (row, tile chunk): the first row's task brings an image in */");
    emit(e, "const int more = b + 1 < cnn_chunk_first(c->batch, g + 1);");
    emit(e, "const long img_bytes = more ? 4L * %s * @IC : 0, gr_bytes = more ? 4L * %s : 0;", image, gimage.s);
    emit_open(e, "for (int t0 = 0; t0 < @TILES; t0 += @WW_CHUNK) {");
    emit(e, "const int share = a * WW_CHUNKS + t0 / @WW_CHUNK;");
    emit(e, "cnn_prefetch_part(src + (size_t)(b + 1) * %s * @IC, img_bytes, share, %d * WW_CHUNKS, 0);", image, wn);
    emit(e, "cnn_prefetch_part(gr + (size_t)%s, gr_bytes, share, %d * WW_CHUNKS, 0);", gimage.s, wn);
    if (pool) emit(e, "cnn_prefetch_part(arg + (size_t)%s, gr_bytes, share, %d * WW_CHUNKS, 0);", gimage.s, wn);
    const char *g = pool ? "gr, arg" : "gr";
    emit(e, "if (t0 + @WW_CHUNK <= @TILES) %s_weight_grad_winograd_chunk(img, %s, mg, dbg, V, E, a, t0, @WW_CHUNK, k == 0 && t0 == 0);",
         n, g);
    emit(e, "else %s_weight_grad_winograd_chunk(img, %s, mg, dbg, V, E, a, t0, @TILES %% @WW_CHUNK, k == 0 && t0 == 0);", n, g);
    emit_close(e, "t0");
    emit_close(e, "task");
    emit_close(e, "k");
    emit(e, "#pragma omp barrier");
    emit_grad_chunks_add(e, "m", "part", "MFLOATS", "(MFLOATS + BIAS)");
    if (pl->l->a.bias) emit_grad_chunks_add(e, "dbias", "(part + MFLOATS)", "BIAS", "(MFLOATS + BIAS)");
    emit_close(e, NULL);
    emit_weight_grad_transform(e, w);
}
