/* emit_conv_tiled.c — the fast path for conv: register-tiled vector kernels.
 *
 * Following DESIGN.md (and Georganas et al., SC'18), each kernel keeps a tile
 * of accumulators in vector registers — GCC vector extensions (cnn_vf, also
 * understood by clang), because both compilers keep those in registers where
 * they would spill a plain float array:
 *   forward        TX output pixels × all output channels, over (ky, kx, ci)
 *   dL/dweight     CT input channels × all output channels, over (b, y, x)
 *   dL/din         one path per layer (din_kind): all input channels of one
 *                  padded input pixel over co, from weights transposed to
 *                  [ky][kx][co][ci] (gather); with few input channels, TY rows
 *                  × all input channels, each vector over 16 pixels of a row
 *                  (rows, per stride phase); with windows that do not overlap,
 *                  tiles of output pixels × a window row's kx·IC floats
 *                  (windows)
 * The input is first copied into a zero-padded buffer (kept for dL/dweight),
 * so no inner loop tests bounds.  Every conv takes the forward and dL/dweight
 * kernels: each layer picks its vector width (conv_vec), and output channels
 * that are not a whole number of vectors (a first layer's 6 or 10) run in
 * padded vectors — weights and bias copied zero-extended, the last vector of
 * each pixel stored in part.  A dL/din that none of the vector paths fits
 * takes emit_conv.c's plain loops.  This file only decides and emits; the
 * arithmetic is emit_conv.c's, in another order. */
#include "emit.h"
#include <string.h>

/* Tile sizes from the register budget at the emitter's vector width (tiles.c). */
int emit_tile_size(const Emitter *e, long nv, long limit) { return tile_rows(e->vlen, nv, limit); }

int emit_vector_group(const Emitter *e, long nv, long most, long limit)
{
    return tile_vector_group(e->vlen, nv, most, limit);
}

/* A conv's tile of output (or input) pixels along a row: as many as the
 * registers hold beside the nv weight vectors and one broadcast, split
 * evenly over the row, so that a row of 10 runs as one tile of 10 rather
 * than 8 and 2: a tile keeps tile·nv sums in flight, and the FMA units need
 * about 8 to hide their latency, which a tile of 2 × 1 vector cannot.  Up to
 * 16 pixels with one vector of channels, 8 with more (measured: vgg-small's
 * conv1, 2 vectors, ran 10% slower in tiles of 11 than of 8). */
static int conv_pixel_tile(const Emitter *e, long nv, long width)
{
    long most = ((e->vlen == 16 ? 32 : 16) - nv - 2) / (nv ? nv : 1);
    if (most > (nv == 1 ? 16 : 8)) most = nv == 1 ? 16 : 8;
    if (most < 1) most = 1;
    long tiles = (width + most - 1) / most;
    return (int)((width + tiles - 1) / tiles);
}

/* Every register-tiled kernel's two steps, emitted the same way:
 *   emit_tile_zero:   for t < rows: for v < nv: acc[t][v] = 0
 *   emit_tile_begin:  vtype acc[capacity][nv], then emit_tile_zero
 *   emit_tile_update: vtype w[nv] = the nv vectors `vector` (an expression in v);
 *                     for t < rows: { const float s = `scalar` (in t); acc[t][v] += s · w[v] }
 * one rank-1 update of the tile: nv vector loads and `rows` broadcasts feed
 * rows·nv FMAs (the loads kept in registers by cnn_in_register: gcc folded
 * them into every FMA, so that vgg-small's conv1 tile of 2 pixels × 4 vectors
 * loaded each weight twice, 8 loads for 8 FMAs; forward 3.15 → 2.94 ms a
 * batch, backward 4.10 → 3.71 on Zen 1). */
void emit_tile_begin(Emitter *e, const char *vtype, const char *capacity, const char *rows, const char *nv)
{
    emit(e, "%s acc[%s][%s];", vtype, capacity, nv);
    emit_tile_zero(e, vtype, rows, nv);
}

void emit_tile_zero(Emitter *e, const char *vtype, const char *rows, const char *nv)
{
    emit(e, "for (int t = 0; t < %s; t++)", rows);
    emit(e, "    for (int v = 0; v < %s; v++) acc[t][v] = (%s){0};", nv, vtype);
}

void emit_tile_update(Emitter *e, const char *vtype, const char *nv, const char *vector, const char *rows,
                      const char *scalar)
{
    emit_tile_update_into(e, "acc", vtype, nv, vector, rows, scalar);
}

void emit_tile_update_into(Emitter *e, const char *acc, const char *vtype, const char *nv, const char *vector,
                           const char *rows, const char *scalar)
{
    emit(e, "%s w[%s];", vtype, nv);
    emit(e, "for (int v = 0; v < %s; v++) {", nv);
    emit(e, "    w[v] = %s;", vector);
    emit(e, "    cnn_in_register(w[v]);   /* loaded once, not again by each FMA that uses it */");
    emit(e, "}");
    emit_open(e, "for (int t = 0; t < %s; t++) {", rows);
    emit(e, "const float s = %s;", scalar);
    emit(e, "for (int v = 0; v < %s; v++) %s[t][v] += s * w[v];", nv, acc);
    emit_close(e, "t");
}

/* One layer's vector width and how its output channels fill the vectors:
 * vl floats per vector, nv vectors per pixel, `last` channels in the last. */
typedef struct ConvVec { int vl, nv, last; } ConvVec;

static ConvVec vectors_of(int vl, long channels)
{
    int nv = (int)((channels + vl - 1) / vl);
    return (ConvVec){vl, nv, (int)(channels - (nv - 1) * vl)};
}

/* The width that pads a count least (20 channels: 3 × 8, not 2 × 16), for
 * din_reduce, whose cost is its per-lane horizontal sums more than its FMAs,
 * and where 16-float FMAs run as two halves (Emitter.halved16). */
static ConvVec fewest_lanes_vec(const Emitter *e, long channels)
{
    bool eight = e->vlen == 16 && channels % 16 != 0 && (channels + 7) / 8 * 8 < (channels + 15) / 16 * 16;
    return vectors_of(eight ? 8 : e->vlen, channels);
}

/* The machine's width (16 with AVX-512), but 8 for at most 8 channels: either
 * is one vector, and 8 floats pad less (6 channels fill one 8-float vector
 * to 75%, a 16-float one to 37%).  Past 8, the fewest vectors: on Intel's
 * AVX-512 cores an 8-float FMA takes a 16-float one's slot, so 20 channels
 * run as 2 × 16, not 3 × 8 (the assignment's conv2 forward 0.109 → 0.081 ms,
 * dL/dweight 0.125 → 0.097).  Where 16-float FMAs run as two halves (AMD
 * Zen 4), the width that pads least: 3 × 8 (0.14 → 0.11 ms there). */
static ConvVec channel_vec(const Emitter *e, long channels)
{
    if (e->halved16) return fewest_lanes_vec(e, channels);
    return vectors_of(e->vlen == 16 && channels <= 8 ? 8 : e->vlen, channels);
}

/* Output channels: the forward and dL/dweight tiles' vectors. */
static ConvVec conv_vec(const Emitter *e, const Layer *l)
{
    return channel_vec(e, l->a.n);
}

/* With stride 1, dL/din is gathered per input pixel, like the forward pass
 * (register tiles over input-channel vectors, padded like the output
 * channels are forward; no zeroing of din, no scatter).  Each image's dL/dout
 * is first copied into a zero-margined stack buffer, so no tap tests bounds;
 * plan.c decides when that fits (pl->din_gather). */
static bool din_is_gather(const PlanLayer *pl)
{
    return pl->din_gather;
}

/* With a larger stride the taps of neighbouring input pixels come from
 * different output pixels: gathered per phase (plan.c: conv_din_phases)
 * where its copy of dL/dout fits the stack, else a vector scatter when the
 * input channels are whole vectors, else emit_conv.c's plain loops. */
static bool din_is_tiled(const Emitter *e, const PlanLayer *pl)
{
    return pl->wt_off >= 0 && pl->l->in.c % e->vlen == 0;
}

/* Few input channels (under 8, or with a larger stride any count that is
 * not whole vectors): a vector over input channels would be mostly padding,
 * so the sum over output channels runs in the vector lanes instead, one
 * register per input channel, added up at the end (din_reduce).  Each image's
 * dL/dout is copied to a stack buffer with its channels padded to @OCP. */
enum { DIN_REDUCE_MAX_IC = 24 };

static bool din_is_reduce(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    ConvVec cv = conv_vec(e, l);
    bool few = l->in.c < 8 || (!pl->din_gather && l->in.c % e->vlen != 0);
    return pl->wt_off >= 0 && few && l->in.c <= DIN_REDUCE_MAX_IC &&
           l->out.h * l->out.w * cv.nv * cv.vl * 4 <= PLAN_STACK_BUFFER_MAX_BYTES;
}

/* Few input channels (lenet5's 6, kaggle-digits' 8): vectors over input
 * channels would fill 6 or 8 of a machine vector's 16 lanes, so dL/din runs
 * in vectors over the input pixels of a row instead, @PVL at a time, from
 * dL/dout copied per image into channel planes with zero margins (so a tap's
 * pixels are one unaligned load), each weight broadcast.  With a stride the
 * input pixels of one phase (iy mod SH, ix mod SW) take the same taps, from
 * consecutive output pixels: pixels ix = px + SW·j, tap kx reads output
 * column j + (px + PW − kx·DW)/SW when SW divides that, so each phase is a
 * stride-1 gather of its own.  Taken when a phase's row fills the lanes
 * better than the channels do, and when the registers hold @IC sums for at
 * least 2 rows. */
typedef struct RowsPlanes { long top, left, h, w; } RowsPlanes;

static long ceil_div(long a, long b)
{
    return a <= 0 ? 0 : (a + b - 1) / b;
}

/* The planes: output row oy at plane row oy + top, column ox at ox + left;
 * room for the most negative tap (top, left) and the last vector's. */
static RowsPlanes din_rows_planes(const Emitter *e, const Layer *l)
{
    RowsPlanes g;
    g.top = ceil_div((long)(l->a.kh - 1) * l->a.dh - l->a.ph, l->a.sh);
    g.left = ceil_div((long)(l->a.kw - 1) * l->a.dw - l->a.pw, l->a.sw);
    long oy_last = (l->in.h - 1 + l->a.ph) / l->a.sh, ox_reach = (l->a.sw - 1 + l->a.pw) / l->a.sw;
    long vectors = ceil_div(ceil_div(l->in.w, l->a.sw), e->vlen);
    g.h = g.top + (l->out.h > oy_last + 1 ? l->out.h : oy_last + 1);
    g.w = g.left + (l->out.w > vectors * e->vlen + ox_reach ? l->out.w : vectors * e->vlen + ox_reach);
    return g;
}

/* Rows of dL/dout that tile ty rows from iy reads for some row: taps that read
 * only the zero margin are skipped, so a valid conv's edge tiles do less. */
static long din_rows_taps(const Layer *l, long iy, long ty)
{
    long taps = 0;
    for (long ky = 0; ky < l->a.kh; ky++) {
        long oy = iy + l->a.ph - ky * l->a.dh;
        if (oy + ty - 1 >= 0 && oy < l->out.h) taps++;
    }
    return taps;
}

/* @TY: at most what the registers hold (@TY × @IC sums, @TY loaded vectors,
 * one broadcast); with stride 1, of those the height that reads the fewest
 * margin rows (lenet5's conv2, 5×5 without padding: 54 row-taps in tiles of
 * 2, 60 in tiles of 4, 50 needed), the larger on a tie; 0 when not even 2 fit. */
static int din_rows_tile(const Emitter *e, const Layer *l)
{
    int regs = e->vlen == 16 ? 32 : 16, most = (regs - 1) / ((int)l->in.c + 1), best = 0;
    long phase_rows = ceil_div(l->in.h, l->a.sh);
    if (l->a.sh > 1) return most < 2 ? 0 : (int)(most < phase_rows ? most : phase_rows);
    long best_work = 0;
    for (int ty = 2; ty <= most && ty <= l->in.h; ty++) {
        long work = 0;
        for (long iy = 0; iy < l->in.h; iy += ty) {
            long rows = l->in.h - iy < ty ? l->in.h - iy : ty;
            work += rows * din_rows_taps(l, iy, rows);
        }
        if (!best || work <= best_work) best = ty, best_work = work;
    }
    return best;
}

static bool din_is_windows(const Emitter *e, const PlanLayer *pl);

/* With stride 1 only for what plan.c gathers (its relu masks assume it);
 * with a larger stride, where the windows overlap. */
static bool din_is_rows(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    bool strided = l->a.sh > 1 || l->a.sw > 1;
    if (!pl->need_din || (strided ? din_is_windows(e, pl) : !pl->din_gather) || emit_conv_winograd(e, pl) ||
        din_rows_tile(e, l) < 2 || ceil_div(l->in.h, l->a.sh) < 2)
        return false;
    long vl = e->vlen, jw = ceil_div(l->in.w, l->a.sw), xv = ceil_div(jw, vl), cv = ceil_div(l->in.c, vl);
    double row_fill = (double)jw / (double)(xv * vl), channel_fill = (double)l->in.c / (double)(cv * vl);
    RowsPlanes g = din_rows_planes(e, l);
    return row_fill > channel_fill && row_fill >= 0.5 && l->a.n * g.h * g.w * 4 <= PLAN_STACK_BUFFER_MAX_BYTES;
}

/* A stride at least the kernel's size (the assignment's 3×3 conv with
 * stride 3, patch embeddings): the windows do not overlap, so each input
 * float gets the taps of one output pixel, and a window's row (kx, ci) is
 * @KW·@IC consecutive floats of din.  dL/din then runs in vectors over those
 * floats, Σ_co dout · w[ky][co][kx·IC + ci] from weights transposed to that
 * order, each dout value one broadcast, each window row stored once. */
static int din_windows_vectors(const Emitter *e, const Layer *l)
{
    return (int)(((long)l->a.kw * l->in.c + e->vlen - 1) / e->vlen);
}

static bool din_is_windows(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    return pl->wt_off >= 0 && !pl->din_gather && l->a.sh >= l->a.kh && l->a.sw >= l->a.kw && l->a.dh == 1 &&
           l->a.dw == 1 && din_windows_vectors(e, l) <= 8;
}

/* Overlapping windows with stride 1 (lenet5's 5×5 conv2 without padding):
 * the gather paths compute every input pixel from all KH·KW taps, and a
 * valid conv's edge pixels reach few of them (lenet5's conv2: 50 of the 70
 * row-taps, 10 of the 16 lanes of a 14-pixel row), while the windows' own
 * sums are exactly the work.  So, like the windows path, vectors over a
 * window row's @KW·@IC floats; a tile takes all @KH rows of the windows of
 * output pixels @KW apart (whose windows do not overlap: the adds of one
 * tile touch different floats), and adds them into the image's dL/din.
 * Taken when its lanes are fewer than the gather's: both are counted as
 * FMA lanes per image. */
static int din_overlap_tile_of(const Emitter *e, const Layer *l, int kyg)
{
    int nv = din_windows_vectors(e, l), regs = e->vlen == 16 ? 32 : 16;
    int most = (regs - nv - 2) / (kyg * nv);
    long per_class = ceil_div(l->out.w, l->a.kw);   /* pixels of the fuller column class */
    return most < 1 ? 0 : (int)(most < per_class ? most : per_class);
}

/* @KYG, the window rows a tile keeps: all @KH while that leaves room for 2
 * windows (or a class's fewer), else the largest divisor of @KH that does,
 * each group of rows then a pass of its own over dL/dout.  With AVX2's 16
 * registers lenet5's conv2 (5 rows of 4 vectors) fits only as rows one at a
 * time, 2 windows × 4 vectors: 4 weight loads and 2 broadcasts feed 8 FMAs. */
static int din_overlap_rows(const Emitter *e, const Layer *l)
{
    long per_class = ceil_div(l->out.w, l->a.kw), want = per_class < 2 ? per_class : 2;
    for (int g = l->a.kh; g > 1; g--)
        if (l->a.kh % g == 0 && din_overlap_tile_of(e, l, g) >= want) return g;
    return 1;
}

static int din_overlap_tile(const Emitter *e, const Layer *l)
{
    return din_overlap_tile_of(e, l, din_overlap_rows(e, l));
}

static long din_rows_lanes(const Emitter *e, const Layer *l)
{
    int ty = din_rows_tile(e, l);
    long row_taps = 0;
    for (long iy = 0; iy < l->in.h; iy += ty) {
        long rows = l->in.h - iy < ty ? l->in.h - iy : ty;
        row_taps += rows * din_rows_taps(l, iy, rows);
    }
    return row_taps * ceil_div(l->in.w, e->vlen) * e->vlen * l->in.c * l->a.kw * l->a.n;
}

static bool din_is_overlap(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    if (!pl->need_din || pl->wt_off < 0 || !pl->din_gather || emit_conv_winograd(e, pl) || l->a.sh != 1 ||
        l->a.sw != 1 || l->a.dh != 1 || l->a.dw != 1 || l->a.kw < 2 || din_overlap_tile(e, l) < 1)
        return false;
    ConvVec iv = channel_vec(e, l->in.c);   /* the gather's input-channel vectors */
    long overlap = l->out.h * l->out.w * (long)l->a.kh * din_windows_vectors(e, l) * e->vlen * l->a.n;
    long other = din_is_rows(e, pl) ? din_rows_lanes(e, l)
                                    : l->in.h * l->in.w * (long)l->a.kh * l->a.kw * iv.nv * iv.vl * l->a.n;
    return overlap * 5 < other * 4;   /* a fifth to spare for its adds into dL/din */
}

/* How a conv's dL/din runs: the first of these that fits.  The last is
 * emit_conv.c's plain loops (and a first layer's dL/dx, when asked for). */
typedef enum DinKind {
    DIN_WINOGRAD, DIN_OVERLAP, DIN_ROWS, DIN_WINDOWS, DIN_REDUCE, DIN_GATHER, DIN_PHASES, DIN_SCATTER, DIN_PLAIN
} DinKind;

static DinKind din_kind(const Emitter *e, const PlanLayer *pl)
{
    if (pl->need_din && emit_conv_winograd(e, pl)) return DIN_WINOGRAD;
    if (din_is_overlap(e, pl)) return DIN_OVERLAP;
    if (din_is_rows(e, pl)) return DIN_ROWS;
    if (din_is_windows(e, pl)) return DIN_WINDOWS;
    if (din_is_reduce(e, pl)) return DIN_REDUCE;
    if (din_is_gather(pl)) return DIN_GATHER;
    if (pl->din_phases && pl->wt_off >= 0) return DIN_PHASES;
    if (din_is_tiled(e, pl)) return DIN_SCATTER;
    return DIN_PLAIN;
}

/* dL/dweight's tile rows: as many as the registers hold beside the nv
 * gradient vectors (up to 12: rows share each dL/dout load, so more rows
 * per pass means fewer loads), split evenly, so that 9 rows run as one
 * tile of 9 rather than 8 and a tile of 1 that costs a whole pass. */
int emit_weight_grad_rows(const Emitter *e, long nv, long rows)
{
    long most = ((e->vlen == 16 ? 32 : 16) - nv - 2) / nv;
    if (most > 12) most = 12;
    if (most < 1) most = 1;
    long tiles = (rows + most - 1) / most;
    return (int)((rows + tiles - 1) / tiles);
}

/* dL/dweight's rows: (kx, ci) pairs of one ky (merged) or the input channels of one tap. */
static long weight_grad_row_count(const Layer *l)
{
    return conv_merges_taps(l) ? (long)l->a.kw * l->in.c : l->in.c;
}

/* @WG: the output channel vectors one dL/dweight tile keeps, in groups as
 * the Winograd tiles are (emit_vector_group) where all of them would leave
 * room for under WIDE_TILE rows: with AVX2 vgg-small's conv1 (4 vectors, 9
 * (kx, ci) rows) ran as tiles of 2 rows, 15 passes over each image's dL/dout
 * of 4 vectors a pixel, and as 2 groups × 5 rows makes 12 passes of 2.  Where
 * no divisor fits, all of them (the assignment's conv2, 3 vectors). */
static int weight_grad_group(const Emitter *e, const PlanLayer *pl)
{
    long nv = conv_vec(e, pl->l).nv;
    int g = emit_vector_group(e, nv, nv, weight_grad_row_count(pl->l));
    return g > 1 ? g : (int)nv;
}

static int weight_grad_rows(const Emitter *e, const PlanLayer *pl)
{
    return emit_weight_grad_rows(e, weight_grad_group(e, pl), weight_grad_row_count(pl->l));
}

/* A dL/dweight tile of fewer than PAIR_BELOW sums (a first conv of 1 input
 * channel: 5 (kx) rows × 1 vector) sums the output columns in pairs, even
 * and odd columns into two sets, added at the end: one set's FMAs each wait
 * for the one before on the same sum (4 cycles, with 2 FMA units), so 5
 * chains kept the units 60% busy.  Per batch of 64 at 1 thread (Zen 4):
 * lenet5's conv1 backward (6 channels in 8-float vectors, 5 rows) 0.294 →
 * 0.21 ms, kaggle-digits' (8 channels) 0.30 → 0.21 ms. */
enum { PAIR_BELOW = 8 };

static bool weight_grad_pairs(const Emitter *e, const PlanLayer *pl)
{
    return weight_grad_rows(e, pl) * weight_grad_group(e, pl) < PAIR_BELOW;
}

/* The weights are read from the zero-padded copy when channels do not fill
 * whole vectors (plan.c reserves it for any width). */
static bool weights_padded(const Emitter *e, const PlanLayer *pl)
{
    return conv_vec(e, pl->l).last != conv_vec(e, pl->l).vl;
}

/* The gathering dL/din's buffer: dL/dout with zero margins. */
static void emit_dpad_constants(Emitter *e, const Layer *l)
{
    emit(e, "@DPAD_H = %ld, @DPAD_W = %ld,   /* dL/dout with margins: (@KH−1)·@DH − @PH rows, (@KW−1)·@DW − @PW "
         "columns */", l->in.h + (long)(l->a.kh - 1) * l->a.dh, l->in.w + (long)(l->a.kw - 1) * l->a.dw);
}

/* A first layer's few input channels (grayscale, RGB) and few output
 * channels leave the channel-vector tile load-bound: one broadcast per FMA
 * (a single input channel) with 6 of 8 lanes used (lenet5's conv1: 41% of
 * the FMA peak).  Such a layer runs in vectors over output pixels instead:
 * the @FPV inputs one tap multiplies, from a channel plane of the padded
 * image, are one load, and each weight is one broadcast for @FPR rows of
 * pixels, so the FMAs fill every lane; the sums are stored transposed into
 * the [pixel][channel] output.  Stride 1 along rows, so a tap's inputs are
 * consecutive; the last vector of a row starts @FPV before its end, and
 * the pixels it shares with the one before get the same sums again. */
enum { PIXEL_VECTOR = PLAN_PIXEL_VECTOR /* the transposed store goes by 8×8 blocks */ };

static bool forward_by_pixels(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    long plane_bytes = 4L * padded_in_floats(l);
    /* 8-float FMAs: at full rate with AVX2 or where 16-float ones run as halves, not on Intel's AVX-512 */
    bool eight_full_rate = e->vlen == 8 || e->halved16;
    return eight_full_rate && !emit_conv_winograd(e, pl) && pl->pixels_fit &&
           (l->in.c == 1 || plane_bytes <= PLAN_STACK_BUFFER_MAX_BYTES);
}

/* Whether the forward writes the weights padded to @OCP channels to @WPAD:
 * its channel-vector tiles read them so, the pixel forward as they are.
 * din_reduce reads that copy where it exists and pads its own otherwise. */
static bool forward_pads_weights(const Emitter *e, const PlanLayer *pl)
{
    return weights_padded(e, pl) && !forward_by_pixels(e, pl);
}

/* A tile of the pixel path: `rows` rows of pixel vectors × `group` output
 * channels, a vector of inputs per row and one broadcast in the registers, at
 * most 4 rows.  Three registers are kept spare: with AVX2's 16, lenet5's conv1
 * as 2 rows × 6 channels (15 registers) had gcc keep the sums on the stack,
 * 1.52 ms a batch on Zen 1, against 0.83 as 1 row.  All channels at once
 * while that leaves room for 2 rows; else, where it pays, the channels in
 * groups (a divisor of @OC), each group a pass over the taps: with 1 row
 * each broadcast weight feeds 1 FMA, and 10 channels as 2 rows × 5 take 7
 * loads for 10 FMAs instead of 11.  Of the shapes that fit, the one with the
 * most FMAs per load (rows·group / (rows + group)), the larger group on a tie. */
typedef struct PixelTile { int rows, group; } PixelTile;

static int pixel_tile_rows(const Emitter *e, const Layer *l, long group)
{
    int regs = e->vlen == 16 ? 32 : 16;
    long r = (regs - 4) / (group + 1);
    if (r > 4) r = 4;
    if (r > l->out.h) r = l->out.h;
    return r < 1 ? 1 : (int)r;
}

static PixelTile pixel_tile(const Emitter *e, const Layer *l)
{
    PixelTile best = {pixel_tile_rows(e, l, l->a.n), l->a.n};
    if (best.rows >= 2) return best;
    for (int g = l->a.n - 1; g >= 1; g--) {
        int r = pixel_tile_rows(e, l, g);
        if (l->a.n % g != 0 || r < 2) continue;
        if ((long)r * g * (best.rows + best.group) > (long)best.rows * best.group * (r + g)) best = (PixelTile){r, g};
    }
    return best;
}

/* A margin-free conv's dL/dweight with merged taps reads a window row's
 * @KW·@IC floats at once, so it needs them contiguous, zeros included: the
 * output columns [@XL, @XR) have whole window rows in the image and read it
 * in place; the @NE others (cut by the left or right edge) read copies, made
 * once per image per thread with zeros outside.  The image is read where
 * it is instead of copied whole into a padded buffer: the assignment's conv2
 * (a copy of 4,000 floats an image for 64,800 MACs) copied 10 KiB an image
 * for 1 cut window per row, and its backward took 0.179 → 0.174 ms.  Only
 * where the copy is at least 1/32 of the MACs: vgg-small's conv1 (3,468
 * floats for 884,736 MACs) read 4-7% slower this way, its x loop choosing the
 * row at each of 32 columns. */
enum { EDGE_COPY_SHARE = 32 };

typedef struct EdgeColumns { long xl, xr, ne; } EdgeColumns;

static EdgeColumns edge_columns(const Layer *l)
{
    const LayerArgs *a = &l->a;
    long xl = (a->pw + a->sw - 1) / a->sw, inner = l->in.w - a->kw + a->pw;   /* x·SW ≤ inner: the row ends inside */
    long xr = inner < 0 ? 0 : inner / a->sw + 1;
    if (xl > l->out.w) xl = l->out.w;
    if (xr > l->out.w) xr = l->out.w;
    if (xr < xl) xr = xl;
    return (EdgeColumns){xl, xr, xl + l->out.w - xr};
}

/* dL/dweight by window rows.  The tile of rows × output-channel vectors
 * fills its lanes with output channels; where a window row's @KW·@IC floats
 * fill 16-float vectors better (the assignment's conv2: 30 floats in 2 × 16,
 * against 20 channels in 3 × 8 where 16-float FMAs issue as halves, or 2 × 16
 * elsewhere), the lanes run over the window row instead, as dL/din's windows
 * do: acc[co][kx·@IC + ci], each dL/dout value one broadcast and each window
 * row @NVW loads (the last masked), from the image in place or, for the
 * columns whose window rows it cuts, a copy (weight_grad_edges; a margin-free
 * conv's: plan.c reserves the sums' room, PlanLayer.rows_fit).  The sums are
 * [ky][co][kx·@IC + ci] per chunk, turned into [ky][kx][ci][co] as the chunks
 * are added.  Half the instructions of 8-float FMAs for the same work: on
 * the shared host, where another tenant's thread takes part of the core's
 * issue slots, the assignment's conv2 dL/dweight read 0.091–0.099 ms a batch
 * against 0.105–0.118 (AMD Zen 4, hand-written, alternated runs). */
static bool edge_copy_fits(const Layer *l)
{
    return 4L * l->in.h * edge_columns(l).ne * l->a.kw * l->in.c <= PLAN_STACK_BUFFER_MAX_BYTES;
}

static bool weight_grad_by_rows(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    if (!pl->rows_fit || e->vlen != PLAN_ROW_VECTOR || !edge_copy_fits(l)) return false;
    ConvVec cv = conv_vec(e, l);
    long row = (long)l->a.kw * l->in.c;   /* lanes used: row of nw·16, against OC of nv·vl */
    return row * cv.nv * cv.vl > (long)l->a.n * din_windows_vectors(e, l) * e->vlen;
}

static bool weight_grad_edges(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    long copy = padded_in_floats(l);
    long macs = l->out.h * l->out.w * (long)l->a.kh * l->a.kw * l->in.c * l->a.n;
    return weight_grad_by_rows(e, pl) ||
           (pl->margin_free && conv_merges_taps(l) && copy * EDGE_COPY_SHARE >= macs && edge_copy_fits(l));
}

/* By window rows, the output channels per tile: as many as the registers hold
 * beside the window row's vectors (emit_weight_grad_rows). */
static int weight_grad_row_channels(const Emitter *e, const Layer *l)
{
    return emit_weight_grad_rows(e, din_windows_vectors(e, l), l->a.n);
}

/* The constants the tiled kernels use, emitted into the model's enum. */
void emit_conv_tile_constants(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    ConvVec cv = conv_vec(e, l);
    emit(e, "@VL = %d, @NV = %d, @LAST = %d, @OCP = %d,   /* %d channels in %d vector%s of %d floats, %d in the last */",
         cv.vl, cv.nv, cv.last, cv.vl * cv.nv, l->a.n, cv.nv, cv.nv > 1 ? "s" : "", cv.vl, cv.last);
    emit(e, "@SRC_H = %ld, @SRC_W = %ld,   /* the input with its padding */", l->in.h + 2L * l->a.ph,
         l->in.w + 2L * l->a.pw);
    bool wino = emit_conv_winograd(e, pl);   /* then the direct kernels' tiles and transposed weights are not used */
    if (!wino)
        emit(e, "@TX = %d, @CT = %d, @WG = %d,   /* register tiles: output pixels; dL/dweight's input channels × "
             "@WG vectors */", conv_pixel_tile(e, cv.nv, l->out.w), weight_grad_rows(e, pl), weight_grad_group(e, pl));
    if (forward_by_pixels(e, pl))
        emit(e, "@FPV = %d, @FPR = %d, @FPG = %d,   /* forward: vectors of @FPV output pixels, tiles of @FPR rows of "
             "them × @FPG channels */", PIXEL_VECTOR, pixel_tile(e, l).rows, pixel_tile(e, l).group);
    if (pl->pad_off >= 0) emit(e, "@PADDED = %ld,   /* the zero-padded input: acts + B*%ld */", pl->pad_off, pl->pad_off);
    DinKind din = din_kind(e, pl);
    if (din == DIN_OVERLAP || din == DIN_WINDOWS || weight_grad_by_rows(e, pl)) {
        int nv = din_windows_vectors(e, l), last = (int)((long)l->a.kw * l->in.c - (nv - 1) * e->vlen);
        emit(e, "@WVL = %d, @NVW = %d, @WRP = %d, @LASTW = %d,   /* a window row's @KW·@IC floats in @NVW vectors of "
             "@WVL, @LASTW in the last */", e->vlen, nv, nv * e->vlen, last);
    }
    if (weight_grad_by_rows(e, pl))
        emit(e, "@WCB = %d,   /* dL/dweight by window rows: a tile's output channels */", weight_grad_row_channels(e, l));
    if (weight_grad_edges(e, pl)) {
        EdgeColumns c = edge_columns(l);
        emit(e, "@XL = %ld, @XR = %ld, @NE = %ld,   /* dL/dweight: columns [@XL, @XR) read whole window rows of the "
             "image, the @NE others copies */", c.xl, c.xr, c.ne);
    }
    if (pl->wt_off >= 0 && !wino)
        emit(e, "@WT = %ld,   /* transposed weights, at acts + B*ACT_PER_IMAGE */", pl->wt_off);
    switch (din) {
    case DIN_ROWS: {
        int ty = din_rows_tile(e, l);
        RowsPlanes g = din_rows_planes(e, l);
        long most = ceil_div(l->in.h, l->a.sh), fewest = l->in.h / l->a.sh;   /* rows of a phase */
        emit(e, "@PVL = %d, @TY = %d, @TY_REM = %ld, @TY_REM2 = %ld,   /* dL/din: vectors of @PVL input pixels, tiles of "
             "@TY rows, a phase's last tile @TY_REM or @TY_REM2 rows */", e->vlen, ty, most % ty, fewest % ty);
        emit(e, "@DPAD_TOP = %ld, @DPAD_LEFT = %ld, @DPAD_H = %ld, @DPAD_W = %ld,   /* dL/dout's channel planes: "
             "output pixel (oy, ox) at (oy + @DPAD_TOP, ox + @DPAD_LEFT), zeros around */", g.top, g.left, g.h, g.w);
        break;
    }
    case DIN_OVERLAP: {
        emit(e, "@TXO = %d, @KYG = %d,   /* dL/din: tiles of @TXO windows @KW apart, @KYG of their rows */",
             din_overlap_tile(e, l), din_overlap_rows(e, l));
        emit(e, "@OCLS = %ld, @OCLS_FULL = %ld,   /* windows per column class: @OCLS + 1 for the first @OCLS_FULL "
             "classes */", l->out.w / l->a.kw, l->out.w % l->a.kw);
        break;
    }
    case DIN_WINDOWS:
        emit(e, "@TXW = %d,   /* dL/din: tiles of @TXW windows */", conv_pixel_tile(e, din_windows_vectors(e, l), l->out.w));
        break;
    case DIN_REDUCE: {
        ConvVec rv = fewest_lanes_vec(e, l->a.n);
        emit(e, "@RVL = %d, @RNV = %d,   /* dL/din: output channels in @RNV vectors of @RVL */", rv.vl, rv.nv);
        break;
    }
    case DIN_GATHER:
    case DIN_PHASES: {
        ConvVec iv = channel_vec(e, l->in.c);
        long row = din == DIN_PHASES ? ceil_div(l->in.w, l->a.sw) : l->in.w;   /* a phase's pixels */
        emit(e, "@IVL = %d, @NIV = %d, @ILAST = %d, @ICP = %d, @TXI = %d,   /* dL/din: input channels in vectors, "
             "a tile of @TXI pixels */", iv.vl, iv.nv, iv.last, iv.vl * iv.nv, conv_pixel_tile(e, iv.nv, row));
        if (din == DIN_GATHER) emit_dpad_constants(e, l);
        else
            emit(e, "@DPAD_LEFT = %ld, @DPAD_W = %ld,   /* dL/dout's rows with zero columns: @DPAD_LEFT before, "
                 "to the last any tap reads after */", plan_phase_dpad_left(l), plan_phase_dpad_width(l));
        break;
    }
    case DIN_WINOGRAD: break;   /* reads dL/dout in place */
    default: break;
    }
    emit(e, "@WPART = %ld,   /* dL/dweight's sums over image chunks 1 …, at acts + B*ACT_PER_IMAGE */", pl->wpart_off);
    if (weights_padded(e, pl))
        emit(e, "@WPAD = %ld,   /* weights and bias padded to @OCP channels, at acts + B*ACT_PER_IMAGE */",
             pl->wpad_off);
    if (wino) {
        emit_conv_winograd_constants(e, pl);
        emit_conv_winograd_weight_grad_constants(e, pl);
    }
}

/* The layer's vector type and its store and load of vector v of a pixel's
 * channels: only @LAST floats of a partly used last vector, by a masked
 * store or load (cnn_store_lanes; the branch folds away: v is a constant once
 * the tile loops unroll).  Masked, the relu-fused store of lenet5's conv1
 * (6 of 8 lanes) took 0.30 → 0.25 ms per batch of 64 than as a memcpy.  Vectors go by pointer:
 * passing them by value changes the ABI between -march settings, and gcc
 * warns. */
static void emit_vector_helpers(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    bool partial = weights_padded(e, pl);
    emit(e, "typedef float %s_vf __attribute__((vector_size(@VL * sizeof(float)), aligned(4)));", n);
    if (pl->fused_relu || (pl->relu_mask && emit_conv_winograd(e, pl)))   /* the relus' lane masks */
        emit(e, "typedef int32_t %s_vi __attribute__((vector_size(@VL * sizeof(int32_t))));", n);
    emit_blank(e);
    if (emit_conv_winograd(e, pl)) return;   /* its kernels store whole vectors themselves */
    emit(e, "static inline __attribute__((always_inline)) void %s_store(float *restrict p, const int v, const %s_vf *x)",
         n, n);
    emit_open(e, "{");
    if (partial) {
        emit(e, "if (v == @NV - 1) cnn_store_lanes(p + v * @VL, x, @VL, @LAST);   /* @LAST channels */");
        emit(e, "else *(%s_vf *)(p + v * @VL) = *x;", n);
    } else {
        emit(e, "*(%s_vf *)(p + v * @VL) = *x;", n);
    }
    emit_close(e, NULL);
    emit_blank(e);
    if (weight_grad_by_rows(e, pl)) return;   /* the load is dL/dweight's tile's, for its earlier sums */
    emit(e, "static inline __attribute__((always_inline)) void %s_load(%s_vf *x, const float *restrict p, const int v)",
         n, n);
    emit_open(e, "{");
    if (partial) {
        emit(e, "if (v == @NV - 1) cnn_load_lanes(x, p + v * @VL, @VL, @LAST);   /* @LAST channels, the other lanes 0 */");
        emit(e, "else *x = *(const %s_vf *)(p + v * @VL);", n);
    } else {
        emit(e, "*x = *(const %s_vf *)(p + v * @VL);", n);
    }
    emit_close(e, NULL);
    emit_blank(e);
}

static const char *tap(const Layer *l)
{
    return l->a.flip ? "(@KH - 1 - ky) * @KW + (@KW - 1 - kx)" : "ky * @KW + kx";
}

/* for t < n: for v < @NV: body — the tile loops, fully unrolled by the compiler. */
static void emit_tile_loops(Emitter *e, const char *n, const char *body)
{
    emit(e, "for (int t = 0; t < %s; t++)", n);
    emit(e, "    for (int v = 0; v < @NV; v++) %s", body);
}

/* ---- forward ----------------------------------------------------------------------- */

static void emit_forward_pixels(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "typedef float %s_pf __attribute__((vector_size(@FPV * sizeof(float)), aligned(4)));", n);
    if (pl->fused_relu) emit(e, "typedef int32_t %s_pi __attribute__((vector_size(@FPV * sizeof(int32_t))));", n);
    emit_blank(e);
    emit(e, "/* %s: t[k] = lane k of t[0 … 7] (an 8×8 transpose in three rounds of pairwise shuffles) */", n);
    emit(e, "static inline __attribute__((always_inline)) void %s_transpose8(%s_pf t[8])", n, n);
    emit_open(e, "{");
    emit(e, "%s_pf a[8], b[8];", n);
    emit_open(e, "for (int i = 0; i < 8; i += 2) {   /* a[i], a[i+1]: lanes 0,1,4,5 and 2,3,6,7 of rows i, i+1 interleaved */");
    emit(e, "a[i] = __builtin_shufflevector(t[i], t[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);");
    emit(e, "a[i + 1] = __builtin_shufflevector(t[i], t[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);");
    emit_close(e, NULL);
    emit(e, "for (int i = 0; i < 8; i += 4)   /* b[i + c]: lanes c and c + 4 of rows i … i+3 */");
    emit_open(e, "    for (int j = 0; j < 2; j++) {");
    emit(e, "b[i + 2 * j] = __builtin_shufflevector(a[i + j], a[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);");
    emit(e, "b[i + 2 * j + 1] = __builtin_shufflevector(a[i + j], a[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);");
    emit_close(e, NULL);
    emit_open(e, "for (int c = 0; c < 4; c++) {");
    emit(e, "t[c] = __builtin_shufflevector(b[c], b[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);");
    emit(e, "t[c + 4] = __builtin_shufflevector(b[c], b[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);");
    emit_close(e, NULL);
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* %s: `rows` rows from y0 of @FPV output pixels from x0, every channel, in vectors over the", n);
    emit(e, "   pixels; plane is the image's padded input a channel at a time, [@IC][@SRC_H][@SRC_W], weight");
    emit(e, "   [@KH][@KW][@IC][@OC]; po the image's output */");
    emit(e, "static inline __attribute__((always_inline)) void %s_forward_pixels(const float *restrict plane,", n);
    emit(e, "    const float *restrict weight, const float *restrict bias, float *restrict po, const int y0, const int x0,");
    emit(e, "    const int rows)");
    emit_open(e, "{");
    if (!l->a.bias) emit(e, "(void)bias;");
    bool grouped = pixel_tile(e, l).group < l->a.n;
    const char *sums = grouped ? "sums" : "acc";
    if (grouped) {
        emit(e, "%s_pf sums[@FPR][@OC];   /* each group's, for the transposed stores */", n);
        emit_open(e, "for (int c0 = 0; c0 < @OC; c0 += @FPG) {   /* channels c0 … c0 + @FPG − 1 */");
    } else {
        emit(e, "const int c0 = 0;   /* all @OC channels at once: @FPG = @OC */");
    }
    emit(e, "%s_pf acc[@FPR][@FPG];", n);
    emit(e, "for (int r = 0; r < rows; r++)");
    emit(e, "    for (int co = 0; co < @FPG; co++) acc[r][co] = (%s_pf){0}%s;", n, l->a.bias ? " + bias[c0 + co]" : "");
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "%s_pf in[@FPR];   /* the tap's @FPV inputs for each row: one load (unaligned: %s_pf is aligned(4)) */", n, n);
    emit(e, "for (int r = 0; r < rows; r++)   /* as a memcpy, gcc's Zen 1 tuning went through the stack in halves */");
    emit(e, "    in[r] = *(const %s_pf *)(plane + ((size_t)ci * @SRC_H + (size_t)(y0 + r) * @SH + (size_t)ky * @DH) * @SRC_W + x0 + kx);", n);
    emit(e, "const float *restrict wk = weight + ((size_t)(%s) * @IC + ci) * @OC + c0;", tap(l));
    emit(e, "for (int co = 0; co < @FPG; co++)");
    emit(e, "    for (int r = 0; r < rows; r++) acc[r][co] += in[r] * wk[co];");
    emit_close(e, "ci");
    emit_close(e, "kx");
    emit_close(e, "ky");
    if (pl->fused_relu) {
        emit(e, "/* the relu after this conv, fused: lanes not > 0 become +0 (x > 0 ? x : 0, as relu) */");
        emit(e, "for (int r = 0; r < rows; r++)");
        emit(e, "    for (int co = 0; co < @FPG; co++) acc[r][co] = (%s_pf)((%s_pi)acc[r][co] & (acc[r][co] > 0.0f));", n, n);
    }
    if (grouped) {
        emit(e, "for (int r = 0; r < rows; r++)");
        emit(e, "    for (int co = 0; co < @FPG; co++) sums[r][c0 + co] = acc[r][co];");
        emit_close(e, "c0");
    }
    emit_open(e, "for (int r = 0; r < rows; r++) {   /* transposed: lane k of channel co's vector is pixel x0 + k */");
    emit(e, "float *restrict pr = po + ((size_t)(y0 + r) * @OW + x0) * @OC;");
    emit_open(e, "for (int g = 0; g < @OC; g += 8) {   /* channels g … g+7 of the 8 pixels */");
    emit(e, "%s_pf t[8];", n);
    emit(e, "for (int i = 0; i < 8; i++) t[i] = g + i < @OC ? %s[r][g + i] : (%s_pf){0};", sums, n);
    emit(e, "%s_transpose8(t);", n);
    emit(e, "for (int k = 0; k < 8; k++)   /* pixel k's channels; of a partial group only those there are */");
    emit(e, "    if (@OC - g >= 8) *(%s_pf *)(pr + k * @OC + g) = t[k];", n);
    emit(e, "    else cnn_store_lanes(pr + k * @OC + g, &t[k], 8, @OC - g);");
    emit_close(e, "g");
    emit_close(e, "r");
    emit_close(e, NULL);
    emit_blank(e);
}

/* One row tile of `rows` across the image: vectors of @FPV pixels, the last ending at the row's end. */
static void emit_pixel_row_tile(Emitter *e, const char *n, const char *rows)
{
    emit(e, "for (int x0 = 0; x0 < @OW; x0 += @FPV)");
    emit(e, "    %s_forward_pixels(plane, weight, bias, po, y0, x0 + @FPV <= @OW ? x0 : @OW - @FPV, %s);", n, rows);
}

static void emit_forward_pixels_loop(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit_conv_forward_batch_loop(e, pl);
    if (pl->l->in.c == 1) {
        emit(e, "const float *restrict plane = src + (size_t)b * @SRC_H * @SRC_W;   /* one channel: already a plane */");
    } else {
        emit(e, "float plane[@IC * @SRC_H * @SRC_W] __attribute__((aligned(64)));   /* this thread's, on its stack */");
        emit(e, "const float *restrict img = src + (size_t)b * @SRC_H * @SRC_W * @IC;");
        emit(e, "for (int p = 0; p < @SRC_H * @SRC_W; p++)");
        emit(e, "    for (int ci = 0; ci < @IC; ci++) plane[(size_t)ci * @SRC_H * @SRC_W + p] = img[(size_t)p * @IC + ci];");
    }
    emit(e, "float *restrict po = out + (size_t)b * @OH * @OW * @OC;");
    emit(e, "int y0 = 0;");
    emit_open(e, "for (; y0 + @FPR <= @OH; y0 += @FPR) {");
    emit_pixel_row_tile(e, n, "@FPR");
    emit_close(e, "y0");
    emit_open(e, "if (y0 < @OH) {   /* the last rows */");
    emit_pixel_row_tile(e, n, "@OH % @FPR");
    emit_close(e, NULL);
    emit_close(e, "b");
}

/* The zeros a margin-free kernel reads in the padding: a pixel's @IC, or a window row's. */
static void emit_padding_zeros(Emitter *e, const char *count, const char *what)
{
    emit(e, "static const float zeros[%s] __attribute__((aligned(64)));   /* %s of the padding */", count, what);
}

/* A margin-free tile's taps: per (ky, kx) a pointer to each pixel's input
 * channels in the image, or to zeros in the padding; a row of padding is
 * skipped (no terms).  Otherwise the tile reads the padded copy: one pointer
 * and a stride. */
static void emit_forward_tile_taps(Emitter *e, const PlanLayer *pl)
{
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    if (pl->margin_free) {
        emit(e, "const int iy = y * @SH - @PH + ky * @DH;");
        emit(e, "if (iy < 0 || iy >= @IH) continue;   /* a row of padding: no terms */");
        emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
        emit(e, "const float *px[@TX];   /* each pixel's @IC inputs at this tap */");
        emit_open(e, "for (int t = 0; t < tx; t++) {");
        emit(e, "const int ix = (x0 + t) * @SW - @PW + kx * @DW;");
        emit(e, "px[t] = ix >= 0 && ix < @IW ? img + ((size_t)iy * @IW + ix) * @IC : zeros;");
        emit_close(e, "t");
    } else {
        emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
        emit(e, "const float *restrict px = src + ((size_t)ky * @DH * @SRC_W + (size_t)kx * @DW) * @IC;");
    }
}

static void emit_forward_tile(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    if (pl->margin_free) {
        emit(e, "/* %s: TX output pixels from (y, x0), all channels, from img, the image (no padded copy).", n);
        emit(e, "   weight is [@KH][@KW][@IC][@OCP], bias [@OCP]: whole vectors */");
        emit(e, "static inline __attribute__((always_inline)) void %s_forward_tile(const float *restrict img, const int y,", n);
        emit(e, "    const int x0, const float *restrict weight, const float *restrict bias, float *restrict po, const int tx)");
        emit_open(e, "{");
        emit_padding_zeros(e, "@IC", "a pixel");
    } else {
        emit(e, "/* %s: TX output pixels of one row, all channels; src is the first pixel's receptive field.", n);
        emit(e, "   weight is [@KH][@KW][@IC][@OCP], bias [@OCP]: whole vectors */");
        emit(e, "static inline __attribute__((always_inline)) void %s_forward_tile(const float *restrict src,", n);
        emit(e, "    const float *restrict weight, const float *restrict bias, float *restrict po, const int tx)");
        emit_open(e, "{");
    }
    if (!l->a.bias) emit(e, "(void)bias;");
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    emit(e, "%s acc[@TX][@NV];", vt);
    if (l->a.bias) {
        char body[128];
        snprintf(body, sizeof body, "acc[t][v] = *(const %s_vf *)(bias + v * @VL);", n);
        emit_tile_loops(e, "tx", body);
    } else {
        emit_tile_zero(e, vt, "tx", "@NV");
    }
    emit_forward_tile_taps(e, pl);
    emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OCP;", tap(l));
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(wk + ci * @OCP + v * @VL)", vt);
    emit_tile_update(e, vt, "@NV", vec, "tx", pl->margin_free ? "px[t][ci]" : "px[(size_t)t * @SW * @IC + ci]");
    emit_close(e, "ci");
    emit_close(e, "kx");
    emit_close(e, "ky");
    char body[128];
    if (pl->fused_relu) {
        emit(e, "/* the relu after this conv, fused: lanes not > 0 become +0 (x > 0 ? x : 0, as relu) */");
        snprintf(body, sizeof body, "acc[t][v] = (%s_vf)((%s_vi)acc[t][v] & (acc[t][v] > 0.0f));", n, n);
        emit_tile_loops(e, "tx", body);
    }
    snprintf(body, sizeof body, "%s_store(po + t * @OC, v, &acc[t][v]);", n);
    emit_tile_loops(e, "tx", body);
    emit_close(e, NULL);
    emit_blank(e);
}

/* Copies the weights and bias into [..][@OCP] rows, zeros in the lanes past @OC. */
static void emit_padded_weights(Emitter *e, const Layer *l)
{
    emit(e, "/* @OC channels do not fill whole vectors: read a copy with zeros in the lanes past them */");
    emit(e, "float *restrict wpad = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPAD;");
    emit(e, "for (int k = 0; k < @KH * @KW * @IC; k++)");
    emit(e, "    for (int co = 0; co < @OCP; co++)");
    emit(e, "        wpad[(size_t)k * @OCP + co] = co < @OC ? c->params[@WEIGHT + (size_t)k * @OC + co] : 0.0f;");
    emit(e, "float *restrict bpad = wpad + (size_t)@KH * @KW * @IC * @OCP;");
    emit(e, "for (int co = 0; co < @OCP; co++) bpad[co] = co < @OC ? %s : 0.0f;",
         l->a.bias ? "c->params[@BIAS + co]" : "0.0f");
    emit(e, "const float *restrict weight = wpad, *restrict bias = bpad;");
}

/* Copies an h×w image of ch channels from src into dst, a bh×bw one, at
 * row `top` and column `left`, and zeroes the margins around it (only them:
 * the middle is written once). */
void emit_conv_copy_into_margins(Emitter *e, const char *dst, const char *src, const char *h, const char *w,
                                   const char *ch, const char *bh, const char *bw, const char *top, const char *left)
{
    if (strcmp(top, "0"))   /* the phase gather's buffer has no rows above or below */
        emit(e, "memset(%s, 0, sizeof(float) * (size_t)(%s) * %s * %s);   /* the rows above */", dst, top, bw, ch);
    emit_open(e, "for (int y = 0; y < %s; y++) {", h);
    emit(e, "float *restrict r = %s + (size_t)(y + (%s)) * %s * %s;", dst, top, bw, ch);
    emit(e, "memset(r, 0, sizeof(float) * (size_t)(%s) * %s);", left, ch);
    emit(e, "memcpy(r + (size_t)(%s) * %s, %s + (size_t)y * %s * %s, sizeof(float) * %s * %s);", left, ch, src, w, ch,
         w, ch);
    emit(e, "memset(r + (size_t)((%s) + %s) * %s, 0, sizeof(float) * (size_t)(%s - (%s) - %s) * %s);", left, w, ch, bw,
         left, w, ch);
    emit_close(e, "y");
    if (strcmp(bh, h))
        emit(e, "memset(%s + (size_t)((%s) + %s) * %s * %s, 0, sizeof(float) * (size_t)(%s - (%s) - %s) * %s * %s);   "
             "/* the rows below */", dst, top, h, bw, ch, bh, top, h, bw, ch);
}

/* The forward's source: the input, or a (IH+2PH)×(IW+2PW) copy with zero
 * margins (kept for backward), which each image gets in the forward's own
 * batch loop (emit_conv_forward_batch_loop). */
static void emit_forward_source(Emitter *e, const PlanLayer *pl)
{
    if (pl->pad_off < 0) {
        emit(e, "const float *restrict src = in;");
        return;
    }
    emit(e, "float *restrict padded = c->acts + (size_t)c->batch * @PADDED;");
    emit(e, "const float *src = padded;   /* each image padded in the loop that reads it */");
}

/* The forward's loop over the batch, each image first copied into the
 * middle of its padded buffer: a loop of its own before had padded the whole
 * batch (9 MiB for vgg-small's conv2) and the kernels then read it back from
 * memory instead of from the cache it was written to. */
void emit_conv_forward_batch_loop(Emitter *e, const PlanLayer *pl)
{
    emit_batch_loop(e);
    if (pl->pad_off < 0) return;
    emit_open(e, "{   /* image b into the middle of its padded buffer */");
    emit(e, "float *restrict dst = padded + (size_t)b * @SRC_H * @SRC_W * @IC;");
    emit(e, "const float *restrict img = in + (size_t)b * @IH * @IW * @IC;");
    emit_conv_copy_into_margins(e, "dst", "img", "@IH", "@IW", "@IC", "@SRC_H", "@SRC_W", "@PH", "@PW");
    emit_close(e, NULL);
}

static void emit_conv_forward_tiled(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    bool winograd = emit_conv_winograd(e, pl);
    bool pixels = forward_by_pixels(e, pl);
    emit_vector_helpers(e, pl);
    if (winograd) emit_conv_winograd_forward_kernels(e, pl);
    else if (pixels) emit_forward_pixels(e, pl);
    else emit_forward_tile(e, pl);
    emit(e, "/* out[b,y,x,co] = bias[co] + Σ_{ky,kx,ci} in[b, y·SH−PH+ky·DH, x·SW−PW+kx·DW, ci] · w[%s, ci, co] */",
         l->a.flip ? "KH−1−ky, KW−1−kx" : "ky, kx");
    emit_forward_open(e, pl, true);
    if (forward_pads_weights(e, pl)) {
        emit_padded_weights(e, l);
    } else {
        emit(e, "const float *restrict weight = c->params + @WEIGHT;   /* [@KH][@KW][@IC][@OC] */");
        emit(e, "const float *restrict bias = %s;", l->a.bias ? "c->params + @BIAS" : "NULL");
    }
    emit_forward_source(e, pl);
    if (winograd || pixels) {
        if (winograd) emit_conv_winograd_forward(e, pl);
        else emit_forward_pixels_loop(e, pl);
        emit_close(e, NULL);
        return;
    }
    emit_conv_forward_batch_loop(e, pl);
    const char *from = "row + (size_t)x * @SW * @IC";
    if (pl->margin_free) {
        emit(e, "const float *restrict img = src + (size_t)b * @IH * @IW * @IC;");
        from = "img, y, x";
    }
    emit_open(e, "for (int y = 0; y < @OH; y++) {");
    if (!pl->margin_free)
        emit(e, "const float *restrict row = src + ((size_t)b * @SRC_H + (size_t)y * @SH) * @SRC_W * @IC;");
    emit(e, "float *restrict po = out + ((size_t)b * @OH + y) * @OW * @OC;");
    emit(e, "int x = 0;");
    emit(e, "for (; x + @TX <= @OW; x += @TX)");
    emit(e, "    %s_forward_tile(%s, weight, bias, po + (size_t)x * @OC, @TX);", l->name, from);
    emit(e, "if (x < @OW)   /* what remains of the row, as one tile: tiles of 1 would leave too few sums in flight */");
    emit(e, "    %s_forward_tile(%s, weight, bias, po + (size_t)x * @OC, @OW %% @TX);", l->name, from);
    emit_close(e, "y");
    emit_close(e, "b");
    emit_close(e, NULL);
}

/* ---- backward ---------------------------------------------------------------------- */

/* dL/dout is read in whole vectors even when @OC does not fill the last:
 * its lanes past @OC read the next pixel's channels, which only ever reach
 * lanes that are never stored.  Past the last pixel of the batch that read
 * stays inside acts when dL/dout is one of its buffers (the batch-independent
 * floats, which hold this layer's padded weights, follow them); only the
 * model's last layer gets dL/dout from the loss, and reads its last pixels
 * from a zero-padded copy (dout_tail). */
/* dL/dweight streams each image's dL/dout once per task; an image's dL/dout
 * past the second-level cache's easy reach (vgg-small's conv1: 128 KiB an
 * image, 8 MiB a batch) arrives from memory slower than the first task uses
 * it, so the tiles prefetch the next image's as they go: into L2 (locality
 * 2, prefetcht1), as the Winograd kernels do.  Into L1, a whole image ahead
 * (128 KiB) had pushed out the thread's padded copy and this image's lines:
 * vgg-small's conv1 backward 1.371 / 1.440 → 1.277 / 1.341 ms (min / median
 * of 12 alternated runs, 1 thread, Zen 4), where the tile alone, its data in
 * cache, runs at the FMA peak. */
enum { PREFETCH_DOUT_MIN_BYTES = 64 * 1024 };

static bool prefetch_next_dout(const Layer *l)
{
    return l->out.h * l->out.w * l->out.c * 4 >= PREFETCH_DOUT_MIN_BYTES;
}

/* In dL/dweight's output row y at kernel row ky: a row of padding adds
 * nothing but to dL/dbias. */
static void emit_padding_row_skip(Emitter *e)
{
    emit(e, "const int iy = y * @SH - @PH + ky * @DH, inside = iy >= 0 && iy < @IH;");
    emit(e, "if (!inside && !db) continue;   /* a row of padding: it adds to dL/dbias only */");
}

/* A margin-free dL/dweight tile (weight_grad_edges) reads row iy's window
 * rows in the image (irow) or, for the columns they cut, in the copies
 * (erow); from = "" or " + ci0", the tile's first float in a window row. */
static void emit_window_row_sources(Emitter *e, const char *from)
{
    emit(e, "const float *restrict erow = edge + (size_t)(inside ? iy : 0) * @NE * @KW * @IC%s;", from);
    emit(e, "const float *restrict irow = img + ((size_t)(inside ? iy : 0) * @IW) * @IC%s;", from);
}

/* ... and at output column x, sp: the window row in the image, a copy, or zeros (a row of padding). */
static void emit_window_row_at(Emitter *e, const char *from)
{
    emit(e, "const float *restrict sp = !inside ? zeros%s   /* the window row at x: in the image, or a copy */", from);
    emit(e, "                         : x < @XL ? erow + (size_t)x * @KW * @IC");
    emit(e, "                         : x >= @XR ? erow + (size_t)(@XL + x - @XR) * @KW * @IC");
    emit(e, "                         : irow + (size_t)(x * @SW - @PW) * @IC;");
}

static void emit_weight_grad_tile(Emitter *e, const PlanLayer *pl, bool dout_tail)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "/* %s: image b's part of dL/dweight for tap (ky,kx) and ct input channels from ci0 (or, with", n);
    emit(e, "   the taps merged, ct (kx, ci) rows from kx·IC + ci = ci0), all output channels: Σ over its");
    bool edges = weight_grad_edges(e, pl);
    if (edges) {
        emit(e, "   output pixels of in[b, y·SH−PH+ky·DH, x·SW−PW+kx, ci] · dout[b,y,x,co] (img: image b's input, edge:");
        emit(e, "   the window rows of its columns x < @XL and ≥ @XR, [@IH][@NE][@KW·@IC], zeros outside the image),");
    } else {
        emit(e, "   output pixels of img[y·SH+ky·DH, x·SW+kx·DW, ci] · dout[b,y,x,co] (img: image b's padded input),");
    }
    emit(e, "   stored for the first image of its chunk (first) and added for the others; batch: the images in dout;");
    emit(e, "   db: NULL, or dL/dbias, summed the same way from the dL/dout vectors the tile loads anyway */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_tile(const float *restrict img,", n);
    if (edges) emit(e, "    const float *restrict edge,");
    emit(e, "    const float *restrict dout, float *restrict dw, const int b, const int batch, const int first, const int ky,");
    emit(e, "    const int kx, const int ci0, const int ct, float *restrict db)");
    emit_open(e, "{");
    if (edges) {
        emit(e, "(void)kx;   /* 0: the rows count kx·@IC + ci from the window row's start */");
        emit_padding_zeros(e, "@KW * @IC", "a window row");
    }
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    dout_tail = dout_tail && weights_padded(e, pl);
    if (dout_tail) {
        emit(e, "/* dL/dout is read in whole vectors: the lanes past @OC read the next pixel's channels and are");
        emit(e, "   never stored; the pixels whose vectors would reach past dout's end (the last");
        emit(e, "   (@OCP − 1) / @OC of the batch) are read from a zero-padded copy instead */");
        emit(e, "float tail[@OCP] = {0};");
        emit(e, "const long tail_from = (long)batch * @OH * @OW - (@OCP - 1) / @OC;");
    } else {
        if (weights_padded(e, pl)) {
            emit(e, "/* dL/dout is read in whole vectors: the lanes past @OC read the next pixel's channels (past the");
            emit(e, "   batch's last pixel, the floats after dout in acts) and are never stored */");
        }
        emit(e, "(void)batch;");
    }
    if (l->a.pw) {
        emit(e, "/* the output columns whose windows reach into the image at the taps of these rows (the others");
        emit(e, "   read padding only): all of them for dL/dbias */");
        if (conv_merges_taps(l))
            emit(e, "const int kx_lo = ci0 / @IC, kx_hi = (ci0 + ct - 1) / @IC;");
        else
            emit(e, "const int kx_lo = kx, kx_hi = kx;");
        emit(e, "const int left = @PW - kx_hi * @DW, right = @IW - 1 + @PW - kx_lo * @DW;");
        emit(e, "const int x_lo = db || left <= 0 ? 0 : (left + @SW - 1) / @SW;");
        emit(e, "const int x_hi = db || right / @SW + 1 > @OW ? @OW : right < 0 ? 0 : right / @SW + 1;");
    } else {
        emit(e, "const int x_lo = 0, x_hi = @OW;");
    }
    bool pairs = weight_grad_pairs(e, pl);
    emit_open(e, "for (int g = 0; g < @NV; g += @WG) {   /* output channel vectors g … g + @WG − 1 */");
    if (pairs) {
        emit(e, "/* even and odd output columns sum into pair[0] and pair[1] (and bias_pair): under %d sums, one", PAIR_BELOW);
        emit(e, "   set would keep the FMA units waiting on their own latency */");
        emit(e, "%s pair[2][@CT][@WG], bias_pair[2][@WG];", vt);
        emit_open(e, "for (int h = 0; h < 2; h++) {");
        emit_open(e, "for (int v = 0; v < @WG; v++) {");
        emit(e, "for (int t = 0; t < ct; t++) pair[h][t][v] = (%s){0};", vt);
        emit(e, "bias_pair[h][v] = (%s){0};", vt);
        emit_close(e, "v");
        emit_close(e, "h");
    } else {
        emit_tile_begin(e, vt, "@CT", "ct", "@WG");
        emit(e, "%s bias_acc[@WG];", vt);
        emit(e, "for (int v = 0; v < @WG; v++) bias_acc[v] = (%s){0};", vt);
    }
    emit_open(e, "for (int y = 0; y < @OH; y++) {");
    if (edges) {
        emit(e, "/* the next image's input, a part a row, from the first task alone, into L2: the first task of each");
        emit(e, "   image had waited on memory for the copies of its cut window rows (all-conv's strided conv2:");
        emit(e, "   backward min / median 1.33 / 1.65 → 1.17 / 1.34 ms, 12 alternated runs) */");
        emit(e, "if (ky == 0 && ci0 == 0 && b + 1 < batch)");
        emit(e, "    cnn_prefetch_part(img + (size_t)@IH * @IW * @IC, 4L * @IH * @IW * @IC, y, @OH, 0);");
    }
    if (edges || l->a.ph) emit_padding_row_skip(e);
    if (edges)
        emit_window_row_sources(e, " + ci0");
    else
        emit(e, "const float *restrict srow = img + (((size_t)y * @SH + (size_t)ky * @DH) * @SRC_W + (size_t)kx * @DW) * @IC + ci0;");
    emit(e, "const float *restrict grow = dout + ((size_t)b * @OH + y) * @OW * @OC;");
    if (pairs) {
        emit_open(e, "for (int x0 = x_lo; x0 < x_hi; x0 += 2) {");
        emit_open(e, "for (int h = 0; h < 2 && x0 + h < x_hi; h++) {   /* a constant in each unrolled copy */");
        emit(e, "const int x = x0 + h;");
    } else {
        emit_open(e, "for (int x = x_lo; x < x_hi; x++) {");
    }
    if (dout_tail) {
        emit(e, "const float *gp = grow + (size_t)x * @OC;");
        emit(e, "if (((long)b * @OH + y) * @OW + x >= tail_from) {");
        emit(e, "    memcpy(tail, gp, sizeof(float) * @OC);");
        emit(e, "    gp = tail;");
        emit(e, "}");
    } else {
        emit(e, "const float *restrict gp = grow + (size_t)x * @OC;");
    }
    if (prefetch_next_dout(l)) {
        emit(e, "/* the next image's dL/dout, a cache line at a time, into L2: it comes from memory while this");
        emit(e, "   image's sums keep the FMA units busy, instead of stalling the first task of the next image */");
        emit(e, "for (int v = g; v < g + @WG; v++)");
        emit(e, "    if (v * @VL %% 16 == 0) __builtin_prefetch(grow + (size_t)@OH * @OW * @OC + (size_t)x * @OC + v * @VL, 0, 2);");
    }
    if (edges) emit_window_row_at(e, " + ci0");
    snprintf(vec, sizeof vec, "*(const %s *)(gp + (g + v) * @VL)", vt);
    emit_tile_update_into(e, pairs ? "pair[h]" : "acc", vt, "@WG", vec, "ct",
                          edges ? "sp[t]" : "srow[(size_t)x * @SW * @IC + t]");
    emit(e, "if (db)");
    emit(e, "    for (int v = 0; v < @WG; v++) %s[v] += w[v];", pairs ? "bias_pair[h]" : "bias_acc");
    if (pairs) emit_close(e, "h");
    emit_close(e, pairs ? "x0" : "x");
    emit_close(e, "y");
    if (pairs) {
        emit(e, "%s acc[@CT][@WG], bias_acc[@WG];", vt);
        emit_open(e, "for (int v = 0; v < @WG; v++) {");
        emit(e, "for (int t = 0; t < ct; t++) acc[t][v] = pair[0][t][v] + pair[1][t][v];");
        emit(e, "bias_acc[v] = bias_pair[0][v] + bias_pair[1][v];");
        emit_close(e, "v");
    }
    emit_open(e, "for (int v = 0; db && v < @WG; v++) {");
    emit(e, "%s_vf sum = bias_acc[v];", n);
    emit_open(e, "if (!first) {");
    emit(e, "%s_vf before;", n);
    emit(e, "%s_load(&before, db, g + v);", n);
    emit(e, "sum += before;");
    emit_close(e, NULL);
    emit(e, "%s_store(db, g + v, &sum);", n);
    emit_close(e, "v");
    emit(e, "/* all the loads before the first store: a row's masked last vector spans the next row's first");
    emit(e, "   floats, and a load of them waited for the store (the assignment's conv2: a sixth of its time) */");
    emit_open(e, "if (!first) {");
    emit_open(e, "for (int t = 0; t < ct; t++) {");
    emit_open(e, "for (int v = 0; v < @WG; v++) {");
    emit(e, "%s_vf before;", n);
    emit(e, "%s_load(&before, dw + (size_t)t * @OC, g + v);", n);
    emit(e, "acc[t][v] += before;");
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit(e, "for (int t = 0; t < ct; t++)");
    emit(e, "    for (int v = 0; v < @WG; v++) %s_store(dw + (size_t)t * @OC, g + v, &acc[t][v]);", n);
    emit_close(e, "g");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Whether every output row reads an image row at tap row ky: no row that a
 * dL/dweight tile skips as padding only (emit_padding_row_skip). */
static bool weight_grad_rows_inside(const Layer *l, long ky)
{
    const LayerArgs *a = &l->a;
    long top = -a->ph + ky * a->dh, bottom = (l->out.h - 1) * a->sh - a->ph + ky * a->dh;
    return top >= 0 && bottom < l->in.h;
}

/* Whether a dL/dweight tile at tap row ky, its rows' taps at columns kx_lo …
 * kx_hi, reads the image at every output pixel: no output row or column
 * that it skips as padding only (emit_weight_grad_tile's y and x ranges). */
static bool weight_grad_tile_whole(const Layer *l, long ky, long kx_lo, long kx_hi)
{
    const LayerArgs *a = &l->a;
    long right = l->in.w - 1 + a->pw - kx_lo * a->dw;
    return weight_grad_rows_inside(l, ky) && a->pw <= kx_hi * a->dw && right >= 0 && right / a->sw + 1 >= l->out.w;
}

/* The task that also sums dL/dbias (from the dL/dout vectors it loads
 * anyway, every output pixel's): the first whole tile of @CT rows that skips
 * nothing, so that no other task's skips are undone; 0 where there is none.
 * The assignment's conv2 (pad 2) had its dL/dbias in the tile at ky = 0, which
 * then could not skip the padding row. */
static long weight_grad_bias_task(const Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    long ct = weight_grad_rows(e, pl), rows = weight_grad_row_count(l), blocks = (rows + ct - 1) / ct;
    long taps = conv_merges_taps(l) ? 1 : l->a.kw;
    for (long r = 0; r < l->a.kh * taps * blocks; r++) {
        long ky = r / (taps * blocks), r0 = r % blocks * ct;
        long kx_lo = conv_merges_taps(l) ? r0 / l->in.c : r / blocks % taps, kx_hi = conv_merges_taps(l) ? (r0 + ct - 1) / l->in.c : kx_lo;
        if (r0 + ct <= rows && weight_grad_tile_whole(l, ky, kx_lo, kx_hi)) return r;
    }
    return 0;
}

/* A margin-free conv's per-thread buffer for dL/dweight: the cut window
 * rows of an image (weight_grad_edges), or its zero-padded copy. */
static void emit_weight_grad_thread_buffer(Emitter *e, const PlanLayer *pl)
{
    if (weight_grad_edges(e, pl) && edge_columns(pl->l).ne == 0) {
        /* ISO C has no arrays of length 0 (conv-rows-padding.cnn: pad in rows only) */
        emit(e, "const float edge[1] = {0};   /* no window row is cut (@NE = 0): every column reads the image */");
    } else if (weight_grad_edges(e, pl)) {
        emit(e, "float edge[@IH * @NE * @KW * @IC];   /* this thread's cut window rows of image `have` */");
        emit(e, "int have = -1;");
    } else if (pl->margin_free) {
        emit_conv_thread_copy_buffer(e);
    }
}

void emit_conv_thread_copy_buffer(Emitter *e)
{
    emit(e, "float img[@SRC_H * @SRC_W * @IC] __attribute__((aligned(64)));   /* this thread's padded copy of image `have` */");
    emit(e, "int have = -1;");
}

/* In a dL/dweight task, image b's source img: its padded copy in acts; or,
 * margin-free, the image itself, whose cut window rows the thread's first
 * task of it copies; or the thread's padded copy, made by that task. */
static void emit_weight_grad_image(Emitter *e, const PlanLayer *pl)
{
    if (weight_grad_edges(e, pl)) {
        emit(e, "const float *restrict img = src + (size_t)b * @IH * @IW * @IC;");
        if (edge_columns(pl->l).ne == 0) return;   /* no window row is cut: nothing to copy */
        emit_open(e, "if (b != have) {   /* the thread's first task of image b: its cut window rows, zeros outside */");
        emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
        emit_open(e, "for (int j = 0; j < @NE; j++) {");
        emit(e, "const int ix0 = (j < @XL ? j : @XR + j - @XL) * @SW - @PW;");
        emit(e, "float *restrict d = edge + ((size_t)iy * @NE + j) * @KW * @IC;");
        emit(e, "for (int kx = 0; kx < @KW; kx++)");
        emit(e, "    if (ix0 + kx >= 0 && ix0 + kx < @IW) memcpy(d + kx * @IC, img + ((size_t)iy * @IW + ix0 + kx) * @IC, sizeof(float) * @IC);");
        emit(e, "    else memset(d + kx * @IC, 0, sizeof(float) * @IC);");
        emit_close(e, "j");
        emit_close(e, "iy");
        emit(e, "have = b;");
        emit_close(e, NULL);
    } else if (pl->margin_free) {
        emit_conv_thread_copy(e);
    } else {
        emit(e, "const float *restrict img = src + (size_t)b * @SRC_H * @SRC_W * @IC;");
    }
}

void emit_conv_thread_copy(Emitter *e)
{
    emit_open(e, "if (b != have) {   /* the thread's first task of image b: its copy with zero margins, in cache */");
    emit(e, "const float *restrict from = src + (size_t)b * @IH * @IW * @IC;");
    emit(e, "if (have < 0) memset(img, 0, sizeof img);   /* the margins, once: the copies write only the middle */");
    emit(e, "for (int y = 0; y < @IH; y++)");
    emit(e, "    cnn_copy_floats(img + ((size_t)(y + @PH) * @SRC_W + @PW) * @IC, from + (size_t)y * @IW * @IC, @IW * @IC);");
    emit(e, "have = b;");
    emit_close(e, NULL);
}

/* dL/dweight's task loop, opened (emit_weight_grad_tiled): in a parallel
 * region, for the k-th image of every chunk, tasks (g, r) of TASKS per chunk,
 * with image b's source img (and its copies) ready. */
static void emit_weight_grad_tasks_open(Emitter *e, const PlanLayer *pl)
{
    emit(e, "const int per_chunk = cnn_chunk_first(c->batch, 1);   /* chunk 0 is the largest */");
    emit(e, "#pragma omp parallel");
    emit_open(e, "{");
    emit_weight_grad_thread_buffer(e, pl);
    emit_open(e, "for (int k = 0; k < per_chunk; k++) {");
    emit(e, "#pragma omp for schedule(static) nowait");
    emit_open(e, "for (int task = 0; task < CNN_GRAD_CHUNKS * TASKS; task++) {");
    emit(e, "const int g = task / TASKS, r = task %% TASKS, b = cnn_chunk_first(c->batch, g) + k;");
    emit(e, "if (b >= cnn_chunk_first(c->batch, g + 1)) continue;   /* this chunk has fewer images */");
    emit_weight_grad_image(e, pl);
}

/* ... closed, up to the barrier after which the chunks' sums are added (the region stays open). */
static void emit_weight_grad_tasks_close(Emitter *e)
{
    emit_close(e, "task");
    emit_close(e, "k");
    emit(e, "#pragma omp barrier");
}

/* Images outermost, so each image's input and dL/dout are read from cache by
 * every task instead of streaming the whole batch from memory once per task.
 * A task is (chunk of the batch, row block): the k-th image of every chunk,
 * then the next, and schedule(static) over the same task count gives each
 * thread the same tasks for every k, so each chunk's copy of a dweight slice
 * has one owner (no race, nowait) and is summed in image order; with 2
 * threads, thread g takes chunk g's tasks, its own images (PLAN_GRAD_CHUNKS).
 * Chunk 0 sums into grads, the others into @WPART; then they are added. */
static void emit_weight_grad_tiled(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    bool merged = conv_merges_taps(l);
    long rows = weight_grad_row_count(l);
    int ct = weight_grad_rows(e, pl);
    if (merged) {
        emit(e, "/* dL/dweight: tasks of (chunk of the batch, ky, block of CT (kx, ci) rows), image by image;");
        emit(e, "   a thread keeps its tasks for every image, so each is summed in a fixed order */");
        emit(e, "enum { ROWS = @KW * @IC, BLOCKS = (ROWS + @CT - 1) / @CT, TASKS = @KH * BLOCKS };");
    } else {
        emit(e, "/* dL/dweight: tasks of (chunk of the batch, ky, kx, block of CT input channels), image by image;");
        emit(e, "   a thread keeps its tasks for every image, so each is summed in a fixed order */");
        emit(e, "enum { ROWS = @IC, BLOCKS = (ROWS + @CT - 1) / @CT, TASKS = @KH * @KW * BLOCKS };");
    }
    emit(e, "enum { WFLOATS = @KH * @KW * @IC * @OC, BIAS = %d };   /* a chunk's copy: weights, then bias */",
         l->a.bias ? l->a.n : 0);
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    long bias_task = weight_grad_bias_task(e, pl);
    if (l->a.bias) emit(e, "float *restrict dbias = c->grads + @BIAS;   /* summed by each chunk's task r = %ld */", bias_task);
    emit(e, "float *restrict part = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPART;   /* chunks 1 … */");
    emit_weight_grad_tasks_open(e, pl);
    emit(e, "float *restrict wg = g == 0 ? dweight : part + (size_t)(g - 1) * (WFLOATS + BIAS);");
    if (merged) {
        emit(e, "const int ky = r / BLOCKS, r0 = r %% BLOCKS * @CT;");
        emit(e, "float *restrict dw = wg + ((size_t)ky * ROWS + r0) * @OC;");
        emit(e, "const int kx = 0;   /* r0 counts kx·IC + ci: the input row at kx = 0 has them all in order */");
    } else {
        emit(e, "const int ky = r / (@KW * BLOCKS), kx = r / BLOCKS %% @KW, r0 = r %% BLOCKS * @CT;");
        emit(e, "float *restrict dw = wg + ((size_t)(%s) * ROWS + r0) * @OC;", tap(l));
    }
    /* the bias task is a tile of @CT rows; each call site inlines its own copy */
    const char *otherwise = "", *with = weight_grad_edges(e, pl) ? "edge, " : "";
    if (l->a.bias) {
        emit(e, "float *restrict db = g == 0 ? dbias : wg + WFLOATS;");
        emit(e, "if (r == %ld) %s_weight_grad_tile(img, %sdout, dw, b, c->batch, k == 0, ky, kx, r0, @CT, db);", bias_task, n, with);
        otherwise = "else ";
    }
    if (rows % ct == 0) {
        emit(e, "%s%s_weight_grad_tile(img, %sdout, dw, b, c->batch, k == 0, ky, kx, r0, @CT, NULL);", otherwise, n, with);
    } else {
        emit(e, "%sif (r0 + @CT <= ROWS) %s_weight_grad_tile(img, %sdout, dw, b, c->batch, k == 0, ky, kx, r0, @CT, NULL);",
             otherwise, n, with);
        emit(e, "else %s_weight_grad_tile(img, %sdout, dw, b, c->batch, k == 0, ky, kx, r0, ROWS %% @CT, NULL);", n, with);
    }
    emit_weight_grad_tasks_close(e);
    emit_grad_chunks_add(e, "dweight", "part", "WFLOATS", "(WFLOATS + BIAS)");
    if (l->a.bias) emit_grad_chunks_add(e, "dbias", "(part + WFLOATS)", "BIAS", "(WFLOATS + BIAS)");
    emit_close(e, NULL);
}

/* By window rows (weight_grad_by_rows): image b's part of dL/dweight at one ky
 * for a block of output channels; the lanes past the window row (@WRP −
 * @KW·@IC) load zeros and are never stored. */
static void emit_weight_grad_row_tile(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "/* %s: image b's part of dL/dweight at kernel row ky for the cb output channels from co0, in vectors", n);
    emit(e, "   over a window row's @KW·@IC floats (lanes kx·@IC + ci): Σ over output pixels of the window row at");
    emit(e, "   (y·SH − PH + ky·DH, x·SW − PW) · dout[b,y,x,co] (img: image b's input; edge: the window rows of its");
    emit(e, "   columns x < @XL and ≥ @XR, [@IH][@NE][@KW·@IC], zeros outside the image), into sums[co − co0][@WRP],");
    emit(e, "   stored for the first image of its chunk (first) and added for the others; db: NULL, or dL/dbias");
    emit(e, "   from co0, summed the same way */");
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_row_tile(const float *restrict img,", n);
    emit(e, "    const float *restrict edge, const float *restrict dout, float *restrict sums, const int b, const int first,");
    emit(e, "    const int ky, const int co0, const int cb, float *restrict db)");
    emit_open(e, "{");
    emit_padding_zeros(e, "@KW * @IC", "a window row");
    emit_tile_begin(e, "cnn_vf", "@WCB", "cb", "@NVW");
    emit(e, "cnn_vf bias_acc = {0};");
    emit_open(e, "for (int y = 0; y < @OH; y++) {");
    emit_padding_row_skip(e);
    emit_window_row_sources(e, "");
    emit(e, "const float *restrict grow = dout + ((size_t)b * @OH + y) * @OW * @OC + co0;");
    emit_open(e, "for (int x = 0; x < @OW; x++) {");
    emit_window_row_at(e, "");
    emit(e, "const float *restrict gp = grow + (size_t)x * @OC;");
    emit(e, "cnn_vf w[@NVW];");
    emit(e, "for (int v = 0; v < @NVW - 1; v++) w[v] = *(const cnn_vf *)(sp + v * @WVL);");
    emit(e, "cnn_load_lanes(&w[@NVW - 1], sp + (@NVW - 1) * @WVL, @WVL, @LASTW);   /* the row's last @LASTW floats */");
    emit(e, "for (int v = 0; v < @NVW; v++) cnn_in_register(w[v]);   /* loaded once, not again by each FMA */");
    emit_open(e, "for (int t = 0; t < cb; t++) {");
    emit(e, "const float s = gp[t];");
    emit(e, "for (int v = 0; v < @NVW; v++) acc[t][v] += s * w[v];");
    emit_close(e, "t");
    emit_open(e, "if (db) {");
    emit(e, "cnn_vf d;");
    emit(e, "cnn_load_lanes(&d, gp, @WVL, cb);");
    emit(e, "bias_acc += d;");
    emit_close(e, NULL);
    emit_close(e, "x");
    emit_close(e, "y");
    emit_open(e, "if (db) {");
    emit_open(e, "if (!first) {");
    emit(e, "cnn_vf before;");
    emit(e, "cnn_load_lanes(&before, db, @WVL, cb);");
    emit(e, "bias_acc += before;");
    emit_close(e, NULL);
    emit(e, "cnn_store_lanes(db, &bias_acc, @WVL, cb);");
    emit_close(e, NULL);
    emit(e, "if (!first)");
    emit(e, "    for (int t = 0; t < cb; t++)");
    emit(e, "        for (int v = 0; v < @NVW; v++) acc[t][v] += *(const cnn_vf *)(sums + (size_t)t * @WRP + v * @WVL);");
    emit(e, "for (int t = 0; t < cb; t++)");
    emit(e, "    for (int v = 0; v < @NVW; v++) *(cnn_vf *)(sums + (size_t)t * @WRP + v * @WVL) = acc[t][v];");
    emit_close(e, NULL);
    emit_blank(e);
}

/* The kernel row whose output rows all read the image (no padding row), so
 * that its tasks, which also sum dL/dbias, skip nothing; 0 where none does. */
static long weight_grad_row_bias_ky(const Layer *l)
{
    for (long ky = 0; ky < l->a.kh; ky++)
        if (weight_grad_rows_inside(l, ky)) return ky;
    return 0;
}

/* By window rows: the tasks as emit_weight_grad_tiled's, of (chunk, ky, block
 * of @WCB output channels); every chunk's sums at @WPART, then added in chunk
 * order as they are turned into [ky][kx][ci][co]. */
static void emit_weight_grad_by_rows(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    long bias_ky = weight_grad_row_bias_ky(l);
    emit(e, "/* dL/dweight by window rows: tasks of (chunk of the batch, ky, block of @WCB output channels), image by");
    emit(e, "   image; a thread keeps its tasks for every image, so each is summed in a fixed order.  Chunk g's sums");
    emit(e, "   [@KH][@OC][@WRP] at part + g·SUMS, chunks 1 …'s dL/dbias after them */");
    emit(e, "enum { BLOCKS = (@OC + @WCB - 1) / @WCB, TASKS = @KH * BLOCKS, SUMS = @KH * @OC * @WRP, BIAS = @OC };");
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    if (l->a.bias) emit(e, "float *restrict dbias = c->grads + @BIAS;   /* summed by each chunk's tasks at ky = %ld */", bias_ky);
    emit(e, "float *restrict part = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPART;");
    emit_weight_grad_tasks_open(e, pl);
    emit(e, "const int ky = r / BLOCKS, co0 = r %% BLOCKS * @WCB;");
    emit(e, "float *restrict sums = part + (size_t)g * SUMS + ((size_t)ky * @OC + co0) * @WRP;");
    if (l->a.bias)
        emit(e, "float *restrict db = ky != %ld ? NULL : (g == 0 ? dbias : part + CNN_GRAD_CHUNKS * SUMS + (size_t)(g - 1) * "
             "BIAS) + co0;", bias_ky);
    else
        emit(e, "float *restrict db = NULL;");
    if (l->a.n % weight_grad_row_channels(e, l) == 0) {
        emit(e, "%s_weight_grad_row_tile(img, edge, dout, sums, b, k == 0, ky, co0, @WCB, db);", n);
    } else {
        emit(e, "if (co0 + @WCB <= @OC) %s_weight_grad_row_tile(img, edge, dout, sums, b, k == 0, ky, co0, @WCB, db);", n);
        emit(e, "else %s_weight_grad_row_tile(img, edge, dout, sums, b, k == 0, ky, co0, @OC %% @WCB, db);", n);
    }
    emit_weight_grad_tasks_close(e);
    emit(e, "#pragma omp for schedule(static)");
    emit_open(e, "for (int i = 0; i < @KH * @KW * @IC; i++) {   /* dL/dweight's row (ky, kx, ci): the chunks' sums in order */");
    emit(e, "const int ky = i / (@KW * @IC), j = i %% (@KW * @IC);");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "const size_t at = ((size_t)ky * @OC + co) * @WRP + j;");
    emit(e, "float s = part[at];");
    emit(e, "for (int g = 1; g < CNN_GRAD_CHUNKS && cnn_chunk_first(c->batch, g) < c->batch; g++) s += part[(size_t)g * SUMS + at];");
    emit(e, "dweight[(size_t)i * @OC + co] = s;");
    emit_close(e, "co");
    emit_close(e, "i");
    if (l->a.bias) emit_grad_chunks_add(e, "dbias", "(part + CNN_GRAD_CHUNKS * SUMS)", "BIAS", "BIAS");
    emit_close(e, NULL);
}

/* dL/d(padded in) += dout[b,y,x,co] · wT[tap,co,ci] for every tap; then the
 * padding is cropped off.  Per image, so images go to threads. */
static void emit_din_tiled(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    bool padded = pl->pad_off >= 0;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, written as a scatter:");
    emit(e, "   every output pixel adds dout[co] · w[tap, ci, co] to each input pixel it read */");
    emit(e, "enum { NIV = @IC / CNN_VLEN };");
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit(e, "float *restrict wt = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WT;   /* [@KH·@KW][@OC][@IC] */");
    emit(e, "for (int k = 0; k < @KH * @KW; k++)");
    emit(e, "    for (int ci = 0; ci < @IC; ci++)");
    emit(e, "        for (int co = 0; co < @OC; co++)");
    emit(e, "            wt[((size_t)k * @OC + co) * @IC + ci] = weight[((size_t)k * @IC + ci) * @OC + co];");
    emit_batch_loop(e);
    if (padded) {
        emit(e, "/* the padded input is no longer needed: it becomes dL/d(padded input) */");
        emit(e, "float *restrict dimg = padded + (size_t)b * @SRC_H * @SRC_W * @IC;");
        emit(e, "memset(dimg, 0, sizeof(float) * @SRC_H * @SRC_W * @IC);");
    } else {
        emit(e, "float *restrict dimg = din + (size_t)b * @IH * @IW * @IC;");
        emit(e, "memset(dimg, 0, sizeof(float) * @IH * @IW * @IC);");
    }
    emit_open(e, "for (int y = 0; y < @OH; y++) {");
    emit_open(e, "for (int x = 0; x < @OW; x++) {");
    emit(e, "const float *restrict g = dout + (((size_t)b * @OH + y) * @OW + x) * @OC;");
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    if (padded || !(l->a.ph || l->a.pw)) {
        emit(e, "float *restrict d = dimg + (((size_t)y * @SH + (size_t)ky * @DH) * @SRC_W + (size_t)x * @SW + (size_t)kx * @DW) * @IC;");
    } else {   /* margin-free (plan.c): the taps in the padding are skipped */
        emit(e, "const int iy = y * @SH - @PH + ky * @DH, ix = x * @SW - @PW + kx * @DW;");
        emit(e, "if (iy < 0 || iy >= @IH || ix < 0 || ix >= @IW) continue;   /* a tap in the padding */");
        emit(e, "float *restrict d = dimg + ((size_t)iy * @IW + ix) * @IC;");
    }
    emit(e, "const float *restrict wk = wt + (size_t)(%s) * @OC * @IC;", tap(l));
    emit(e, "cnn_vf acc[NIV];");
    emit(e, "for (int v = 0; v < NIV; v++) acc[v] = *(const cnn_vf *)(d + v * CNN_VLEN);");
    emit(e, "for (int co = 0; co < @OC; co++)");
    emit(e, "    for (int v = 0; v < NIV; v++) acc[v] += g[co] * *(const cnn_vf *)(wk + (size_t)co * @IC + v * CNN_VLEN);");
    emit(e, "for (int v = 0; v < NIV; v++) *(cnn_vf *)(d + v * CNN_VLEN) = acc[v];");
    emit_close(e, "kx");
    emit_close(e, "ky");
    emit_close(e, "x");
    emit_close(e, "y");
    if (padded) {
        emit(e, "for (int y = 0; y < @IH; y++)");
        emit(e, "    memcpy(din + ((size_t)b * @IH + y) * @IW * @IC, dimg + ((size_t)(y + @PH) * @SRC_W + @PW) * @IC,");
        emit(e, "           sizeof(float) * @IW * @IC);");
    }
    emit_close(e, "b");
}

/* dL/din[b,iy,ix,ci] = Σ_{ky,kx,co} dout[b, iy+PH−ky·DH, ix+PW−kx·DW, co] · w[tap,ci,co]: the
 * full convolution of dL/dZ with the rotated kernel, as a gather (stride 1).
 * With a stride (phases), the tile's pixels are ix, ix + SW, …: one phase,
 * whose taps are those where SW divides ix+PW−kx·DW (and SH iy+PH−ky·DH),
 * each reading tx consecutive output pixels. */
static void emit_input_grad_tile(Emitter *e, const PlanLayer *pl, bool phases)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    bool partial = channel_vec(e, l->in.c).last != channel_vec(e, l->in.c).vl;
    bool mask = phases && pl->relu_mask;
    emit(e, "typedef float %s_ivf __attribute__((vector_size(@IVL * sizeof(float)), aligned(4)));", n);
    if (mask) emit(e, "typedef int32_t %s_ivi __attribute__((vector_size(@IVL * sizeof(int32_t))));", n);
    emit_blank(e);
    if (phases) {
        emit(e, "/* %s: dL/din for tx input pixels of row iy, ix + @SW·t, all channels, gathered from the output", n);
        emit(e, "   pixels ((iy+PH−ky·DH)/@SH, (ix+PW−kx·DW)/@SW + t) that read them, at the taps where those");
        emit(e, "   divide, in dpad (dL/dout, output column ox at ox + @DPAD_LEFT, zero columns around, so every");
        emit(e, "   such tap is inside); wt rows are @ICP wide (zeros past @IC)%s", mask ? "" : " */");
        if (mask) emit(e, "   The relu before, applied as they are stored: 0 where its output, from mk, is not > 0 */");
    } else {
        emit(e, "/* %s: dL/din for tx input pixels of row iy from ix, all channels, gathered from the output", n);
        emit(e, "   pixels (iy+PH−ky·DH, ix+t+PW−kx·DW) that read them, in dpad (dL/dout with zero margins, so");
        emit(e, "   every tap is inside); wt rows are @ICP wide (zeros past @IC) */");
    }
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_tile(const float *restrict dpad,", n);
    emit(e, "    const float *restrict wt, %sfloat *restrict pd, const int iy, const int ix, const int tx)",
         mask ? "const float *restrict mk, " : "");
    emit_open(e, "{");
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_ivf", n);
    emit_tile_begin(e, vt, "@TXI", "tx", "@NIV");
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    if (phases) {
        emit(e, "const int ry = iy + @PH - ky * @DH;");
        emit(e, "if (ry < 0 || ry %% @SH != 0 || ry / @SH >= @OH) continue;   /* no output row reads row iy at this tap */");
    }
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    if (phases) {
        emit(e, "const int rx = ix + @PW - kx * @DW;");
        emit(e, "if (rx %% @SW != 0) continue;   /* this phase's pixels take other taps */");
        emit(e, "const float *restrict g = dpad + ((size_t)(ry / @SH) * @DPAD_W + rx / @SW + @DPAD_LEFT) * @OC;");
    } else {
        emit(e, "const float *restrict g = dpad + ((size_t)(iy + (@KH - 1 - ky) * @DH) * @DPAD_W + ix + (@KW - 1 - kx) * @DW) * @OC;");
    }
    emit(e, "const float *restrict wk = wt + (size_t)(%s) * @OC * @ICP;", tap(l));
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(wk + (size_t)co * @ICP + v * @IVL)", vt);
    emit_tile_update(e, vt, "@NIV", vec, "tx", "g[(size_t)t * @OC + co]");
    emit_close(e, "co");
    emit_close(e, "kx");
    emit_close(e, "ky");
    emit_open(e, "for (int t = 0; t < tx; t++) {");
    emit_open(e, "for (int v = 0; v < @NIV; v++) {");
    const char *off = phases ? "(size_t)t * @SW * @IC + v * @IVL" : "(size_t)t * @IC + v * @IVL";   /* pixel t's */
    char at[96];
    snprintf(at, sizeof at, "pd + %s", off);
    if (mask) {
        /* here, not by a pass over the row after its tiles: that pass's loads waited for the
           tiles' strided stores (all-conv's conv2: a quarter of its dL/din) */
        emit(e, "%s m;", vt);
        if (partial) {
            emit(e, "if (v == @NIV - 1) cnn_load_lanes(&m, mk + %s, @IVL, @ILAST);", off);
            emit(e, "else m = *(const %s *)(mk + %s);", vt, off);
        } else {
            emit(e, "m = *(const %s *)(mk + %s);", vt, off);
        }
        emit(e, "acc[t][v] = (%s)((%s_ivi)acc[t][v] & (m > 0.0f));", vt, n);
    }
    if (partial) {
        emit(e, "if (v == @NIV - 1) cnn_store_lanes(%s, &acc[t][v], @IVL, @ILAST);", at);
        emit(e, "else *(%s_ivf *)(%s) = acc[t][v];", n, at);
    } else {
        emit(e, "*(%s_ivf *)(%s) = acc[t][v];", n, at);
    }
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

/* `mask`, the relu's output at input pixel (iy, ix) of image b: our input, or
 * (not margin-free) our padded copy of it. */
static void emit_conv_mask_row(Emitter *e, const PlanLayer *pl, const char *ix)
{
    if (pl->pad_off < 0) {   /* margin-free: the input itself */
        emit(e, "/* the relu before: dL/d(its input) is 0 where its output, our input, is not > 0 */");
        emit(e, "const float *restrict mask = in + (((size_t)b * @IH + iy) * @IW + %s) * @IC;", ix);
    } else {
        emit(e, "/* the relu before: dL/d(its input) is 0 where its output, our padded input, is not > 0 */");
        emit(e, "const float *restrict mask = padded + (((size_t)b * @SRC_H + iy + @PH) * @SRC_W + %s + @PW) * @IC;", ix);
    }
}

/* plan.c's relu_mask: the relu before this conv does not keep its output for
 * backward, since our padded input copy holds it; dL/din of `count` floats
 * at dst, input pixels from (iy, ix) of image b, is zeroed where it is not > 0. */
void emit_conv_relu_mask(Emitter *e, const PlanLayer *pl, const char *dst, const char *ix, const char *count)
{
    emit_conv_mask_row(e, pl, ix);
    emit(e, "#pragma omp simd");
    emit(e, "for (int i = 0; i < %s; i++) %s[i] = mask[i] > 0.0f ? %s[i] : 0.0f;", count, dst, dst);
}

/* The same over image b's whole dL/din, row by row (the paths that write an
 * image's dL/din before they can mask it). */
void emit_conv_relu_mask_image(Emitter *e, const PlanLayer *pl)
{
    emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
    emit(e, "float *restrict prow = din + ((size_t)b * @IH + iy) * @IW * @IC;");
    emit_conv_relu_mask(e, pl, "prow", "0", "@IW * @IC");
    emit_close(e, "iy");
}

/* dL/din[b,iy,ix,ci] = Σ over the taps (ky,kx) that reach an output pixel of Σ_co dout·w[tap,ci,co],
 * the sum over co kept in the lanes of one register per input channel. */
static void emit_input_grad_pixel(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "typedef float %s_rvf __attribute__((vector_size(@RVL * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: dL/din at input pixel (iy,ix), all @IC channels: over the taps that reach an output pixel", n);
    emit(e, "   (oy,ox) = ((iy+PH−ky·DH)/SH, (ix+PW−kx·DW)/SW), Σ_co g[oy,ox,co]·w[tap,ci,co], the sum over co");
    emit(e, "   in the vector lanes of acc[ci] and added up at the end; g: dL/dout with @OCP channels per pixel,");
    emit(e, "   read in @RNV vectors of @RVL (@RNV·@RVL ≤ @OCP, zeros past @OC) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_pixel(const float *restrict g,", n);
    emit(e, "    const float *restrict weight, float *restrict pd, const int iy, const int ix)");
    emit_open(e, "{");
    emit(e, "%s_rvf acc[@IC];", n);
    emit(e, "for (int ci = 0; ci < @IC; ci++) acc[ci] = (%s_rvf){0};", n);
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit(e, "const int ry = iy + @PH - ky * @DH;");
    emit(e, "if (ry < 0 || ry %% @SH != 0 || ry / @SH >= @OH) continue;");
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    emit(e, "const int rx = ix + @PW - kx * @DW;");
    emit(e, "if (rx < 0 || rx %% @SW != 0 || rx / @SW >= @OW) continue;");
    emit(e, "const float *restrict gp = g + ((size_t)(ry / @SH) * @OW + rx / @SW) * @OCP;");
    emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OCP;", tap(l));
    emit_open(e, "for (int v = 0; v < @RNV; v++) {");
    emit(e, "const %s_rvf gv = *(const %s_rvf *)(gp + v * @RVL);", n, n);
    emit(e, "for (int ci = 0; ci < @IC; ci++) acc[ci] += gv * *(const %s_rvf *)(wk + (size_t)ci * @OCP + v * @RVL);", n);
    emit_close(e, "v");
    emit_close(e, "kx");
    emit_close(e, "ky");
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "float sum = 0.0f;");
    emit(e, "for (int k = 0; k < @RVL; k++) sum += acc[ci][k];");
    emit(e, "pd[ci] = sum;");
    emit_close(e, "ci");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Per image: dL/dout with channels padded to @OCP on the thread's stack, then
 * one input pixel at a time. */
static void emit_din_reduce(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, summed over output channels in lanes */");
    if (forward_pads_weights(e, pl)) {
        emit(e, "const float *restrict weight = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WPAD;   /* forward's copy */");
    } else if (weights_padded(e, pl)) {
        /* no copy yet: reading it unwritten had given a conv with 2 outputs after a pool dL/din 0 */
        emit_padded_weights(e, pl->l);
        emit(e, "(void)bias;");
    } else {
        emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    }
    emit_batch_loop(e);
    emit(e, "float g[@OH * @OW * @OCP] __attribute__((aligned(64)));   /* this thread's, on its stack */");
    emit(e, "for (int q = 0; q < @OH * @OW; q++)");
    emit(e, "    for (int co = 0; co < @OCP; co++) g[q * @OCP + co] = co < @OC ? dout[((size_t)b * @OH * @OW + q) * @OC + co] : 0.0f;");
    emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
    emit_open(e, "for (int ix = 0; ix < @IW; ix++) {");
    emit(e, "float *restrict pd = din + (((size_t)b * @IH + iy) * @IW + ix) * @IC;");
    emit(e, "%s_input_grad_pixel(g, weight, pd, iy, ix);", n);
    if (pl->relu_mask) emit_conv_relu_mask(e, pl, "pd", "ix", "@IC");
    emit_close(e, "ix");
    emit_close(e, "iy");
    emit_close(e, "b");
}

/* The gathers' weights, transposed to [tap][co][ci] rows of @ICP. */
static void emit_gather_weights(Emitter *e)
{
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit(e, "float *restrict wt = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WT;   /* [@KH·@KW][@OC][@ICP] */");
    emit(e, "for (int k = 0; k < @KH * @KW; k++)");
    emit(e, "    for (int co = 0; co < @OC; co++)");
    emit(e, "        for (int ci = 0; ci < @ICP; ci++)");
    emit(e, "            wt[((size_t)k * @OC + co) * @ICP + ci] = ci < @IC ? weight[((size_t)k * @IC + ci) * @OC + co] : 0.0f;");
}

/* The gathers' copy of image b's dL/dout, dpad: `rows` rows of @DPAD_W
 * pixels, the output's from row `top` and column `left`, zeros around. */
static void emit_dpad_copy(Emitter *e, const char *rows, const char *top, const char *left)
{
    /* dpad is a pointer to the array: where the array's length equals the
     * rows above's byte count (winograd-fallback.cnn: 4 × 4 × 16 floats, one
     * row of 4 × 16), gcc's -Wmemset-elt-size took that memset's count for a
     * forgotten sizeof */
    emit(e, "float pad[%s * @DPAD_W * @OC] __attribute__((aligned(64)));   /* this thread's, on its stack */", rows);
    emit(e, "float *restrict dpad = pad;");
    emit(e, "const float *restrict g = dout + (size_t)b * @OH * @OW * @OC;");
    emit_conv_copy_into_margins(e, "dpad", "g", "@OH", "@OW", "@OC", rows, "@DPAD_W", top, left);
}

/* Per image: dL/dout into the zero-margined dpad, then tiles of @TXI input
 * pixels and one tile of what remains of the row. */
static void emit_din_gather(Emitter *e, const PlanLayer *pl)
{
    const char *name = pl->l->name;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, gathered per input pixel */");
    emit_gather_weights(e);
    emit_batch_loop(e);
    emit_dpad_copy(e, "@DPAD_H", "(@KH - 1) * @DH - @PH", "(@KW - 1) * @DW - @PW");
    emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
    emit(e, "float *restrict prow = din + ((size_t)b * @IH + iy) * @IW * @IC;");
    emit(e, "int ix = 0;");
    emit(e, "for (; ix + @TXI <= @IW; ix += @TXI) %s_input_grad_tile(dpad, wt, prow + (size_t)ix * @IC, iy, ix, @TXI);",
         name);
    emit(e, "if (ix < @IW) %s_input_grad_tile(dpad, wt, prow + (size_t)ix * @IC, iy, ix, @IW %% @TXI);", name);
    if (pl->relu_mask) emit_conv_relu_mask(e, pl, "prow", "0", "@IW * @IC");
    emit_close(e, "iy");
    emit_close(e, "b");
}

/* Per image: dL/dout into dpad with zero columns around (plan.c:
 * conv_din_phases), then each row's phases ix mod @SW = px, in tiles of
 * @TXI pixels @SW apart and one tile of what remains of the phase.  All-conv's
 * stride-2 convs (16 and 32 channels) had scattered: each output pixel's taps
 * a chain of @OC dependent FMAs into one vector of dL/din, which it loaded and
 * stored again, after a memset of the image's dL/din. */
static void emit_din_phases(Emitter *e, const PlanLayer *pl)
{
    const char *name = pl->l->name;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, gathered per phase of input pixels */");
    emit_gather_weights(e);
    emit_batch_loop(e);
    emit_dpad_copy(e, "@OH", "0", "@DPAD_LEFT");
    emit_open(e, "for (int iy = 0; iy < @IH; iy++) {");
    emit(e, "float *restrict prow = din + ((size_t)b * @IH + iy) * @IW * @IC;");
    const char *mk = "";
    if (pl->relu_mask) {
        emit_conv_mask_row(e, pl, "0");
        mk = "mask + (size_t)(px + @SW * j) * @IC, ";
    }
    emit_open(e, "for (int px = 0; px < @SW && px < @IW; px++) {");
    emit(e, "const int count = (@IW - px + @SW - 1) / @SW;   /* the phase's pixels px, px + @SW, … */");
    emit(e, "int j = 0;");
    emit(e, "for (; j + @TXI <= count; j += @TXI)");
    emit(e, "    %s_input_grad_tile(dpad, wt, %sprow + (size_t)(px + @SW * j) * @IC, iy, px + @SW * j, @TXI);", name, mk);
    emit(e, "if (j < count) %s_input_grad_tile(dpad, wt, %sprow + (size_t)(px + @SW * j) * @IC, iy, px + @SW * j, count - j);",
         name, mk);
    emit_close(e, "px");
    emit_close(e, "iy");
    emit_close(e, "b");
}

/* dL/din[b,iy,ix,ci] = Σ_{ky,kx,co} dout[b, iy+PH−ky·DH, ix+PW−kx·DW, co] · w[tap,ci,co], as
 * emit_input_grad_tile's gather, but with the lanes over ix: acc[ci][r] holds
 * @PVL pixels of row iy+r, and each weight is one broadcast. */
static void emit_input_grad_rows(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "typedef float %s_pvf __attribute__((vector_size(@PVL * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: dL/din for ty rows iy, iy+@SH, … and in each the @PVL input pixels px+@SW·(j0+j) (nx of", n);
    emit(e, "   them inside the image), all @IC channels, at pd = din at (iy, px+@SW·j0); gp holds dL/dout as");
    emit(e, "   [@OC][@DPAD_H][@DPAD_W], so tap (ky, kx) of the pixels is one vector (rows: one per r) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_rows(const float *restrict gp,", n);
    emit(e, "    const float *restrict weight, float *restrict pd, const int iy, const int px, const int j0, const int ty,");
    emit(e, "    const int nx)");
    emit_open(e, "{");
    emit(e, "%s_pvf acc[@IC][@TY];", n);
    emit(e, "for (int ci = 0; ci < @IC; ci++)");
    emit(e, "    for (int r = 0; r < ty; r++) acc[ci][r] = (%s_pvf){0};", n);
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit(e, "const int ry = iy + @PH - ky * @DH;   /* @SH × the dL/dout row tap ky reads for row iy, if it divides */");
    emit(e, "if (ry %% @SH != 0) continue;");
    emit(e, "const int oy = ry / @SH;");
    emit(e, "if (oy + ty - 1 < 0 || oy >= @OH) continue;   /* every row's tap is in the zero margin */");
    emit_open(e, "for (int kx = 0; kx < @KW; kx++) {");
    emit(e, "const int rx = px + @PW - kx * @DW;");
    emit(e, "if (rx %% @SW != 0) continue;");
    emit(e, "const int ox = j0 + rx / @SW;");
    emit(e, "if (ox + nx - 1 < 0 || ox >= @OW) continue;");
    emit(e, "const float *restrict g = gp + (size_t)(oy + @DPAD_TOP) * @DPAD_W + ox + @DPAD_LEFT;");
    emit(e, "const float *restrict wk = weight + (size_t)(%s) * @IC * @OC;", tap(l));
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "%s_pvf row[@TY];", n);
    emit(e, "for (int r = 0; r < ty; r++) row[r] = *(const %s_pvf *)(g + ((size_t)co * @DPAD_H + r) * @DPAD_W);", n);
    emit_open(e, "for (int ci = 0; ci < @IC; ci++) {");
    emit(e, "const float s = wk[ci * @OC + co];");
    emit(e, "for (int r = 0; r < ty; r++) acc[ci][r] += s * row[r];");
    emit_close(e, "ci");
    emit_close(e, "co");
    emit_close(e, "kx");
    emit_close(e, "ky");
    emit(e, "/* lanes are pixels here, channels in din: turn each row's @IC vectors into nx pixels */");
    emit_open(e, "for (int r = 0; r < ty; r++) {");
    emit(e, "float lanes[@IC][@PVL] __attribute__((aligned(64)));");
    emit(e, "for (int ci = 0; ci < @IC; ci++) *(%s_pvf *)lanes[ci] = acc[ci][r];", n);
    emit(e, "for (int j = 0; j < nx; j++)");
    emit(e, "    for (int ci = 0; ci < @IC; ci++) pd[((size_t)r * @SH * @IW + (size_t)j * @SW) * @IC + ci] = lanes[ci][j];");
    emit_close(e, "r");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Per image: dL/dout into channel planes with zero margins on the thread's
 * stack; then per phase (one with stride 1) tiles of @TY rows × @PVL pixels;
 * then the relu mask. */
static void emit_din_rows(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    int ty = din_rows_tile(e, l);
    long rem = ceil_div(l->in.h, l->a.sh) % ty, rem2 = l->in.h / l->a.sh % ty;
    emit(e, "/* dL/din: the full convolution of dL/dZ with the rotated kernel, gathered in vectors over pixels */");
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit_batch_loop(e);
    emit(e, "float gp[@OC * @DPAD_H * @DPAD_W] __attribute__((aligned(64)));   /* this thread's, on its stack */");
    emit(e, "const float *restrict g = dout + (size_t)b * @OH * @OW * @OC;");
    emit(e, "memset(gp, 0, sizeof gp);");
    emit(e, "for (int y = 0; y < @OH; y++)");
    emit(e, "    for (int x = 0; x < @OW; x++)");
    emit(e, "        for (int co = 0; co < @OC; co++)");
    emit(e, "            gp[((size_t)co * @DPAD_H + y + @DPAD_TOP) * @DPAD_W + x + @DPAD_LEFT] = g[((size_t)y * @OW + x) * @OC + co];");
    bool strided = l->a.sh > 1 || l->a.sw > 1;
    if (strided) {
        emit_open(e, "for (int py = 0; py < @SH && py < @IH; py++) {");
        emit_open(e, "for (int px = 0; px < @SW && px < @IW; px++) {");
    } else {
        emit_open(e, "{   /* stride 1: one phase */");
        emit(e, "const int py = 0, px = 0;");
    }
    emit(e, "const int width = (@IW - 1 - px) / @SW + 1;   /* the phase's pixels in a row */");
    emit_open(e, "for (int iy0 = py; iy0 < @IH; iy0 += @SH * @TY) {");
    emit_open(e, "for (int j0 = 0; j0 < width; j0 += @PVL) {");
    emit(e, "float *restrict pd = din + (((size_t)b * @IH + iy0) * @IW + px + (size_t)j0 * @SW) * @IC;");
    emit(e, "const int nx = width - j0 < @PVL ? width - j0 : @PVL;");
    emit(e, "if (iy0 + (@TY - 1) * @SH < @IH) %s_input_grad_rows(gp, weight, pd, iy0, px, j0, @TY, nx);", n);
    if (rem && rem2 && rem != rem2) {
        emit(e, "else if ((@IH - 1 - iy0) / @SH + 1 == @TY_REM) %s_input_grad_rows(gp, weight, pd, iy0, px, j0, @TY_REM, nx);",
             n);
        emit(e, "else %s_input_grad_rows(gp, weight, pd, iy0, px, j0, @TY_REM2, nx);", n);
    } else if (rem || rem2) {
        emit(e, "else %s_input_grad_rows(gp, weight, pd, iy0, px, j0, %s, nx);", n, rem ? "@TY_REM" : "@TY_REM2");
    }
    emit_close(e, "j0");
    emit_close(e, "iy0");
    if (strided) {
        emit_close(e, "px");
        emit_close(e, "py");
    } else {
        emit_close(e, NULL);
    }
    if (pl->relu_mask) emit_conv_relu_mask_image(e, pl);
    emit_close(e, "b");
}

/* dL/din[b, oy·SH−PH+ky, ox·SW−PW+kx, ci] = Σ_co dout[b,oy,ox,co] · w[tap,ci,co]: with
 * windows that do not overlap, a tile of output pixels' window rows. */
static void emit_input_grad_windows(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_wvf", n);
    emit(e, "typedef float %s __attribute__((vector_size(@WVL * sizeof(float)), aligned(4)));", vt);
    emit_blank(e);
    emit(e, "/* %s: dL/din for row ky of the windows of tx output pixels from (oy, ox0), whose dL/dout is g:", n);
    emit(e, "   lanes kx·@IC + ci, summed over co from wt = [@KH][@OC][@WRP]; each window's columns inside the");
    emit(e, "   image are stored in dimg, the image's dL/din (nothing else writes them: windows do not overlap) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_windows(const float *restrict g,", n);
    emit(e, "    const float *restrict wt, float *restrict dimg, const int oy, const int ox0, const int ky, const int tx)");
    emit_open(e, "{");
    emit(e, "const int iy = oy * @SH - @PH + ky;");
    emit(e, "if (iy < 0 || iy >= @IH) return;   /* a row of padding */");
    emit_tile_begin(e, vt, "@TXW", "tx", "@NVW");
    emit(e, "const float *restrict wk = wt + (size_t)ky * @OC * @WRP;");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(wk + (size_t)co * @WRP + v * @WVL)", vt);
    emit_tile_update(e, vt, "@NVW", vec, "tx", "g[(size_t)t * @OC + co]");
    emit_close(e, "co");
    emit_open(e, "for (int t = 0; t < tx; t++) {");
    emit(e, "const int ix0 = (ox0 + t) * @SW - @PW;");
    emit_open(e, "if (ix0 >= 0 && ix0 + @KW <= @IW) {   /* the whole window row inside the image: its vectors */");
    emit(e, "float *restrict pd = dimg + ((size_t)iy * @IW + ix0) * @IC;");
    emit(e, "for (int v = 0; v < @NVW - 1; v++) *(%s *)(pd + v * @WVL) = acc[t][v];", vt);
    emit(e, "cnn_store_lanes(pd + (@NVW - 1) * @WVL, &acc[t][@NVW - 1], @WVL, @LASTW);");
    emit(e, "continue;");
    emit_close(e, NULL);
    emit(e, "float row[@WRP] __attribute__((aligned(64)));   /* at the edge: its columns inside the image */");
    emit(e, "for (int v = 0; v < @NVW; v++) *(%s *)(row + v * @WVL) = acc[t][v];", vt);
    emit(e, "const int lo = ix0 < 0 ? -ix0 : 0, hi = ix0 + @KW > @IW ? @IW - ix0 : @KW;");
    emit(e, "if (lo < hi) memcpy(dimg + ((size_t)iy * @IW + ix0 + lo) * @IC, row + lo * @IC, sizeof(float) * (size_t)(hi - lo) * @IC);");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

/* The weights as window rows, [ky][co][kx·IC + ci] in rows of @WRP (zeros
 * past @KW·@IC), for the windows and overlap paths, starting on a cache line
 * where the region has room (it is sized for the gather's layout): unaligned,
 * each 16-float load of them is split in two, and lenet5's conv2 backward
 * took 0.88 ms per batch of 64 instead of 0.71 (AMD Zen 4). */
static void emit_window_row_weights(Emitter *e, const Layer *l)
{
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    long room = (long)l->a.kh * l->a.kw * ((l->in.c + 15) / 16 * 16) * l->a.n;   /* plan.c: plan_conv_scratch */
    long rows = (long)l->a.kh * l->a.n * din_windows_vectors(e, l) * e->vlen;
    if (rows + 15 <= room)
        emit(e, "float *restrict wt = (float *)(((uintptr_t)(c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WT) + 63) & "
                "~(uintptr_t)63);   /* [@KH][@OC][@WRP] */");
    else
        emit(e, "float *restrict wt = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WT;   /* [@KH][@OC][@WRP] */");
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {   /* (kx, ci) loops, not j / @IC and j %% @IC: a division a float */");
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit(e, "float *restrict row = wt + ((size_t)ky * @OC + co) * @WRP;");
    emit(e, "for (int kx = 0; kx < @KW; kx++)");
    emit(e, "    for (int ci = 0; ci < @IC; ci++) row[kx * @IC + ci] = weight[((size_t)(%s) * @IC + ci) * @OC + co];", tap(l));
    emit(e, "for (int j = @KW * @IC; j < @WRP; j++) row[j] = 0.0f;");
    emit_close(e, "co");
    emit_close(e, "ky");
}

/* Whether the windows tile the input: every input float is in one window
 * (stride = kernel, and the last window reaches the last row and column), so
 * the windows' stores write all of dL/din and it needs no zeroing first. */
static bool windows_cover_input(const Layer *l)
{
    return l->a.sh == l->a.kh && l->a.sw == l->a.kw && (l->out.h - 1) * l->a.sh - l->a.ph + l->a.kh >= l->in.h &&
           (l->out.w - 1) * l->a.sw - l->a.pw + l->a.kw >= l->in.w;
}

/* Weights into [ky][co][kx·IC + ci] rows of @WRP, then per image: zeros (for
 * floats no window reaches, if any) and tiles of windows along each output
 * row.  The assignment's conv2 (stride 3 = kernel) stores every window row as
 * vectors, and its dL/din took 0.152 → 0.079 ms per batch of 64 (AMD Zen 4)
 * without the memset and a memcpy per window row. */
static void emit_din_windows(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "/* dL/din: windows do not overlap (stride ≥ kernel): each output pixel's window gets Σ_co dout · w */");
    emit_window_row_weights(e, l);
    emit_batch_loop(e);
    emit(e, "float *restrict dimg = din + (size_t)b * @IH * @IW * @IC;");
    if (windows_cover_input(l))
        emit(e, "/* no memset: the windows tile the image, and their stores write each float of it */");
    else
        emit(e, "memset(dimg, 0, sizeof(float) * @IH * @IW * @IC);");
    emit_open(e, "for (int oy = 0; oy < @OH; oy++) {");
    emit(e, "const float *restrict grow = dout + ((size_t)b * @OH + oy) * @OW * @OC;");
    emit_open(e, "for (int ky = 0; ky < @KH; ky++) {");
    emit(e, "int ox = 0;");
    emit(e, "for (; ox + @TXW <= @OW; ox += @TXW) %s_input_grad_windows(grow + (size_t)ox * @OC, wt, dimg, oy, ox, ky, @TXW);",
         n);
    emit(e, "if (ox < @OW) %s_input_grad_windows(grow + (size_t)ox * @OC, wt, dimg, oy, ox, ky, @OW %% @TXW);", n);
    emit_close(e, "ky");
    emit_close(e, "oy");
    emit_close(e, "b");   /* no relu mask: plan.c gives those to gathering convs only */
}

/* dL/din[b, oy−PH+ky, ox−PW+kx, ci] += Σ_co dout[b,oy,ox,co] · w[ky,kx,ci,co], for the windows of
 * tx output pixels @KW apart: all @KH window rows of each in registers, then added into dimg. */
static void emit_input_grad_overlap(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "typedef float %s_wvf __attribute__((vector_size(@WVL * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: window rows ky0 … ky0 + @KYG − 1 of tx output pixels ox0, ox0 + @KW, … of output row oy,", n);
    emit(e, "   whose dL/dout row is g: lanes kx·@IC + ci, summed over co from wt = [@KH][@OC][@WRP], then added");
    emit(e, "   into dimg, the image's dL/din (the tile's windows do not overlap; other tiles add the floats between) */");
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_overlap(const float *restrict g,", n);
    emit(e, "    const float *restrict wt, float *restrict dimg, const int oy, const int ox0, const int ky0, const int tx)");
    emit_open(e, "{");
    emit(e, "%s_wvf acc[@KYG][@TXO][@NVW];", n);
    emit(e, "for (int ky = 0; ky < @KYG; ky++)");
    emit(e, "    for (int t = 0; t < tx; t++)");
    emit(e, "        for (int v = 0; v < @NVW; v++) acc[ky][t][v] = (%s_wvf){0};", n);
    emit_open(e, "for (int co = 0; co < @OC; co++) {");
    emit_open(e, "for (int ky = 0; ky < @KYG; ky++) {");
    emit(e, "%s_wvf w[@NVW];", n);
    emit(e, "for (int v = 0; v < @NVW; v++) {");
    emit(e, "    w[v] = *(const %s_wvf *)(wt + ((size_t)(ky0 + ky) * @OC + co) * @WRP + v * @WVL);", n);
    emit(e, "    cnn_in_register(w[v]);");
    emit(e, "}");
    emit_open(e, "for (int t = 0; t < tx; t++) {");
    emit(e, "const float s = g[(size_t)(ox0 + t * @KW) * @OC + co];");
    emit(e, "for (int v = 0; v < @NVW; v++) acc[ky][t][v] += s * w[v];");
    emit_close(e, "t");
    emit_close(e, "ky");
    emit_close(e, "co");
    emit(e, "/* each row's loads before its stores: a masked store's vector reaches into the next window's");
    emit(e, "   floats, and a load there would wait for it (measured: 4-5%% of the time on each such load) */");
    emit_open(e, "for (int ky = 0; ky < @KYG; ky++) {");
    emit(e, "const int iy = oy - @PH + ky0 + ky;");
    emit(e, "if (iy < 0 || iy >= @IH) continue;   /* a row of padding */");
    emit(e, "%s_wvf d[@TXO][@NVW];", n);
    emit_open(e, "for (int t = 0; t < tx; t++) {");
    emit(e, "const int ix0 = ox0 + t * @KW - @PW;");
    emit(e, "if (ix0 < 0 || ix0 + @KW > @IW) continue;   /* a window at the edge: below */");
    emit(e, "const float *restrict pd = dimg + ((size_t)iy * @IW + ix0) * @IC;");
    emit(e, "for (int v = 0; v < @NVW - 1; v++) d[t][v] = *(const %s_wvf *)(pd + v * @WVL) + acc[ky][t][v];", n);
    emit(e, "cnn_load_lanes(&d[t][@NVW - 1], pd + (@NVW - 1) * @WVL, @WVL, @LASTW);");
    emit(e, "d[t][@NVW - 1] += acc[ky][t][@NVW - 1];");
    emit_close(e, "t");
    emit_open(e, "for (int t = 0; t < tx; t++) {");
    emit(e, "const int ix0 = ox0 + t * @KW - @PW;");
    emit(e, "float *restrict pd = dimg + ((size_t)iy * @IW + ix0) * @IC;");
    emit_open(e, "if (ix0 >= 0 && ix0 + @KW <= @IW) {   /* the whole window row inside the image */");
    emit(e, "for (int v = 0; v < @NVW - 1; v++) *(%s_wvf *)(pd + v * @WVL) = d[t][v];", n);
    emit(e, "cnn_store_lanes(pd + (@NVW - 1) * @WVL, &d[t][@NVW - 1], @WVL, @LASTW);");
    emit(e, "continue;");
    emit_close(e, NULL);
    emit(e, "float row[@WRP] __attribute__((aligned(64)));   /* its columns inside the image */");
    emit(e, "for (int v = 0; v < @NVW; v++) *(%s_wvf *)(row + v * @WVL) = acc[ky][t][v];", n);
    emit(e, "const int lo = ix0 < 0 ? -ix0 : 0, hi = ix0 + @KW > @IW ? @IW - ix0 : @KW;");
    emit(e, "for (int j = lo * @IC; j < hi * @IC; j++) pd[j] += row[j];");
    emit_close(e, "t");
    emit_close(e, "ky");
    emit_close(e, NULL);
    emit_blank(e);
}

/* Windows of one column class (ox ≡ r mod @KW), count of them, in tiles of
 * @TXO and one of the rest: every call's tx a constant, so its loops unroll. */
static void emit_overlap_class(Emitter *e, const char *n, const char *count)
{
    emit(e, "int k = 0;");
    emit(e, "for (; k + @TXO <= %s; k += @TXO) %s_input_grad_overlap(grow, wt, dimg, oy, r + k * @KW, ky0, @TXO);", count, n);
    emit(e, "if (%s %% @TXO) %s_input_grad_overlap(grow, wt, dimg, oy, r + k * @KW, ky0, %s %% @TXO);", count, n, count);
}

/* Weights into [ky][co][kx·IC + ci] rows of @WRP (as the windows path), then
 * per image: zeros, the column classes of each output row, the relu mask. */
static void emit_din_overlap(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "/* dL/din: each output pixel's window gets Σ_co dout · w, added in (windows @KW apart at a time) */");
    emit_window_row_weights(e, l);
    emit_batch_loop(e);
    emit(e, "float *restrict dimg = din + (size_t)b * @IH * @IW * @IC;");
    emit(e, "memset(dimg, 0, sizeof(float) * @IH * @IW * @IC);");
    emit_open(e, "for (int oy = 0; oy < @OH; oy++) {");
    emit(e, "const float *restrict grow = dout + ((size_t)b * @OH + oy) * @OW * @OC;");
    emit_open(e, "for (int ky0 = 0; ky0 < @KH; ky0 += @KYG) {   /* groups of window rows */");
    emit_open(e, "for (int r = 0; r < @OCLS_FULL; r++) {");
    emit_overlap_class(e, n, "(@OCLS + 1)");
    emit_close(e, "r");
    emit_open(e, "for (int r = @OCLS_FULL; r < @KW && @OCLS > 0; r++) {");
    emit_overlap_class(e, n, "@OCLS");
    emit_close(e, "r");
    emit_close(e, "ky0");
    emit_close(e, "oy");
    if (pl->relu_mask) emit_conv_relu_mask_image(e, pl);
    emit_close(e, "b");
}

static void emit_conv_backward_tiled(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    bool wino = emit_conv_winograd(e, pl);
    if (wino) emit_conv_winograd_weight_grad_kernels(e, pl);
    else if (weight_grad_by_rows(e, pl)) emit_weight_grad_row_tile(e, pl);
    else emit_weight_grad_tile(e, pl, !strcmp(pl->out_buf, p->output_buf));
    switch (din_kind(e, pl)) {
    case DIN_WINOGRAD: emit_conv_winograd_din_kernels(e, pl); break;
    case DIN_ROWS: emit_input_grad_rows(e, pl); break;
    case DIN_OVERLAP: emit_input_grad_overlap(e, pl); break;
    case DIN_WINDOWS: emit_input_grad_windows(e, pl); break;
    case DIN_REDUCE: emit_input_grad_pixel(e, pl); break;
    case DIN_GATHER: emit_input_grad_tile(e, pl, false); break;
    case DIN_PHASES: emit_input_grad_tile(e, pl, true); break;
    default: break;
    }
    emit_backward_open(e, pl, pl->pad_off < 0, false);
    if (pl->pad_off >= 0) {
        emit(e, "float *restrict padded = c->acts + (size_t)c->batch * @PADDED;   /* kept by forward */");
        emit(e, "const float *restrict src = padded;");
    } else {
        emit(e, "const float *restrict src = in;");
    }
    if (wino) emit_conv_winograd_backward_open(e, pl);
    if (wino) emit_conv_winograd_weight_grad(e, pl);   /* and dL/dbias */
    else if (weight_grad_by_rows(e, pl)) emit_weight_grad_by_rows(e, pl);
    else emit_weight_grad_tiled(e, pl);
    switch (din_kind(e, pl)) {
    case DIN_WINOGRAD: emit_conv_winograd_din(e, pl); break;
    case DIN_ROWS: emit_din_rows(e, pl); break;
    case DIN_OVERLAP: emit_din_overlap(e, pl); break;
    case DIN_WINDOWS: emit_din_windows(e, pl); break;
    case DIN_REDUCE: emit_din_reduce(e, pl); break;
    case DIN_GATHER: emit_din_gather(e, pl); break;
    case DIN_PHASES: emit_din_phases(e, pl); break;
    case DIN_SCATTER: emit_din_tiled(e, pl); break;
    case DIN_PLAIN:
        emit_din_open(e, pl);
        emit_conv_din_generic(e, pl);
        emit_din_close(e, pl);
        break;
    }
    emit_close(e, NULL);
}

void emit_conv_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    emit_conv_forward_tiled(e, pl);
}

void emit_conv_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    emit_conv_backward_tiled(e, p, pl);
}
