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

/* ---- register-tiled fc: when the outputs are whole vectors -------------------------
 * The same scheme as emit_conv_tiled.c: a tile of accumulators in vector
 * registers, TB images × NV output vectors (OT = NV·VL outputs) forward, CT
 * inputs × NV output vectors for dL/dw.  Threads take (output tile, image
 * block) pairs, output tile outermost, so one thread's weight columns stay in
 * cache across its image blocks. */
typedef struct FcTile { int vl, nv, tb, ct; } FcTile;

/* vl = 0: no tiling (outputs not a whole number of 8-float vectors). */
static FcTile fc_tile(const Emitter *e, const Layer *l)
{
    FcTile f = {0, 0, 0, 0};
    long oc = l->out.c, in = l->in.h * l->in.w * l->in.c;
    f.vl = oc % e->vlen == 0 ? e->vlen : oc % 8 == 0 ? 8 : 0;
    if (!f.vl) return f;
    f.nv = emit_vector_group(e, oc / f.vl, 4, FC_BLOCK);   /* up to 4 output vectors */
    f.tb = emit_tile_size(e, f.nv, FC_BLOCK);
    f.ct = emit_tile_size(e, f.nv, in);
    return f;
}

/* dL/din with more outputs than PLAN_FC_DIN_TRANSPOSED: vectors over the
 * images instead (dL/dout transposed to [o][b] for a group of 4 vectors of
 * images, on the stack), a tile of input rows broadcasting their weights.
 * Each weight row is read once, contiguously, and no dot product ends in a
 * horizontal sum; the sums come out as [i][b] and are gathered per image,
 * then stored together. */
static bool din_over_images(const Emitter *e, const PlanLayer *pl)
{
    return pl->wt_off < 0 && (long)pl->l->out.c * 4 * e->vlen * 4 <= PLAN_STACK_BUFFER_MAX_BYTES;
}

void emit_fc_tile_constants(Emitter *e, const PlanLayer *pl)
{
    if (pl->wt_off >= 0) emit(e, "@WT = %ld,   /* weights transposed to [o][i], at acts + B*ACT_PER_IMAGE */", pl->wt_off);
    if (din_over_images(e, pl))
        emit(e, "@GB = %d, @GV = 4, @TI = %d,   /* dL/din: groups of @GB images in 4 vectors, tiles of @TI input rows */",
             4 * e->vlen, emit_tile_size(e, 4, pl->l->in.h * pl->l->in.w * pl->l->in.c));
    FcTile f = fc_tile(e, pl->l);
    if (!f.vl) return;
    emit(e, "@VL = %d, @NV = %d, @OT = %d, @TB = %d, @CT = %d,   /* tiles: @OT outputs × @TB images, × @CT inputs */",
         f.vl, f.nv, f.nv * f.vl, f.tb, f.ct);
}

static void emit_fc_tiled_forward(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const char *n = l->name;
    emit(e, "typedef float %s_vf __attribute__((vector_size(@VL * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: outputs [o0, o0 + @OT) of tb images over inputs [i0, i0 + ni): the chunk's sums in", n);
    emit(e, "   registers, then added to po (to the bias, or 0, on the first chunk); with ahead set, each input row");
    emit(e, "   also prefetches the row %d further on, the next chunk's */", FC_CHUNK);
    emit(e, "static inline __attribute__((always_inline)) void %s_forward_tile(const float *restrict in,", n);
    emit(e, "    const float *restrict weight, const float *restrict bias, float *restrict po, const int i0,");
    emit(e, "    const int ni, const int tb, const int ahead)");
    emit_open(e, "{");
    if (!l->a.bias) emit(e, "(void)bias;");
    emit(e, "enum { IN = @IH * @IW * @IC };");
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    emit_tile_begin(e, vt, "@TB", "tb", "@NV");
    emit_open(e, "for (int i = i0; i < i0 + ni; i++) {");
    emit(e, "if (ahead)   /* one prefetch per cache line of the row */");
    emit(e, "    for (int v = 0; v < @NV; v++)");
    emit(e, "        if (v * @VL %% 16 == 0) __builtin_prefetch(weight + (size_t)(i + %d) * @OC + v * @VL, 0, 2);", FC_CHUNK);
    snprintf(vec, sizeof vec, "*(const %s *)(weight + (size_t)i * @OC + v * @VL)", vt);
    emit_tile_update(e, vt, "@NV", vec, "tb", "in[(size_t)t * IN + i]");
    emit_close(e, "i");
    emit_open(e, "for (int t = 0; t < tb; t++) {");
    emit_open(e, "for (int v = 0; v < @NV; v++) {");
    emit(e, "%s_vf *restrict o = (%s_vf *)(po + (size_t)t * @OC + v * @VL);", n, n);
    if (l->a.bias) emit(e, "*o = (i0 > 0 ? *o : *(const %s_vf *)(bias + v * @VL)) + acc[t][v];", n);
    else emit(e, "*o = i0 > 0 ? *o + acc[t][v] : acc[t][v];");
    emit_close(e, "v");
    emit_close(e, "t");
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_fc_forward_tiled(Emitter *e, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    emit_fc_tiled_forward(e, pl);
    emit(e, "/* out[b,o] = bias[o] + Σ_i in[b,i] · w[i,o]: register tiles of @TB images × @OT outputs,");
    emit(e, "   summed over the inputs in chunks of %d (see emit_fc.c on rounding) */", FC_CHUNK);
    emit_forward_open(e, pl, true);
    emit(e, "enum { IN = @IH * @IW * @IC, CHUNK = %d };", FC_CHUNK);
    emit(e, "const float *restrict weight = c->params + @WEIGHT;   /* [IN][@OC] */");
    emit(e, "const float *restrict bias = %s;", l->a.bias ? "c->params + @BIAS" : "NULL");
    emit(e, "/* a task: one output tile for up to GROUP images; its weight chunk (CHUNK rows of @OT) is read");
    emit(e, "   once from memory and then from cache for every block of @TB images of the group, and the");
    emit(e, "   group's first block prefetches the next chunk's as it goes: rows @OC floats apart, which the");
    emit(e, "   hardware's prefetcher brings too late */");
    emit(e, "enum { GROUP = @TB * ((32 + @TB - 1) / @TB) };");
    emit(e, "const int groups = (c->batch + GROUP - 1) / GROUP;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int r = 0; r < @OC / @OT * groups; r++) {");
    emit(e, "const int o0 = r / groups * @OT, g0 = r %% groups * GROUP;");
    emit(e, "const int gend = c->batch - g0 < GROUP ? c->batch : g0 + GROUP;");
    emit(e, "const float *restrict bo = bias ? bias + o0 : NULL;");
    emit_open(e, "for (int i0 = 0; i0 < IN; i0 += CHUNK) {");
    emit(e, "const int ni = IN - i0 < CHUNK ? IN - i0 : CHUNK;");
    emit_open(e, "for (int b0 = g0; b0 < gend; b0 += @TB) {");
    emit(e, "const int nb = gend - b0 < @TB ? gend - b0 : @TB, ahead = b0 == g0 && i0 + CHUNK < IN;");
    emit(e, "if (nb == @TB)");
    emit(e, "    %s_forward_tile(in + (size_t)b0 * IN, weight + o0, bo, out + (size_t)b0 * @OC + o0, i0, ni, @TB, ahead);", l->name);
    /* A group's last nb < TB images take one tile of nb images, nb a constant in each case so that
       the accumulators stay in registers.  One image at a time had been load-bound (NV FMAs for NV
       loads and a broadcast): vgg-small's fc1 forward, 4 such images of 64, 1.87 → 1.42 ms. */
    FcTile f = fc_tile(e, l);
    if (f.tb > 1) {
        emit_open(e, "else switch (nb) {   /* the group's last images: one tile, its size a constant */");
        for (int nb = 1; nb < f.tb; nb++)
            emit(e, "case %d: %s_forward_tile(in + (size_t)b0 * IN, weight + o0, bo, out + (size_t)b0 * @OC + o0, i0, ni, %d, ahead); break;",
                 nb, l->name, nb);
        emit_close(e, NULL);
    }
    emit_close(e, "b0");
    emit_close(e, "i0");
    emit_close(e, "r");
    emit_close(e, NULL);
}

void emit_fc_forward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    if (fc_tile(e, pl->l).vl) {
        emit_fc_forward_tiled(e, pl);
        return;
    }
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

/* In dL/dw's task loop: the next task's rows, fetched for writing while
 * this task sums over the batch.  Each tile stores its rows once, to lines
 * no cache holds where the weights are larger than the cache: vgg-small's
 * fc1 (4 MiB) had spent a fifth of its dL/dw samples on those stores; with
 * the prefetch its backward went 3.36 / 3.56 → 3.12 / 3.45 ms (min / median
 * of 10 alternated runs, 1 thread, Zen 4).  Under the static schedule task
 * r + 1 is mostly the same thread's next. */
static void emit_fc_next_rows_prefetch(Emitter *e)
{
    emit_open(e, "{   /* the next task's rows of dL/dw, for writing, while this one sums */");
    emit(e, "const int i1 = (r + 1) / (@OC / @OT) * @CT, o1 = (r + 1) %% (@OC / @OT) * @OT;");
    emit(e, "for (int t = 0; t < @CT && i1 + t < IN; t++)");
    emit(e, "    for (int v = 0; v < @NV; v++)");
    emit(e, "        if (v * @VL %% 16 == 0) __builtin_prefetch(dweight + (size_t)(i1 + t) * @OC + o1 + v * @VL, 1, 2);");
    emit_close(e, NULL);
}

/* The dL/dw tile function, emitted before the backward function that calls it. */
static void emit_fc_weight_grad_tile(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* %s: dL/dw for inputs [i0, i0 + ct) and outputs [o0, o0 + @OT): Σ over the batch in registers */", n);
    emit(e, "static inline __attribute__((always_inline)) void %s_weight_grad_tile(const float *restrict in,", n);
    emit(e, "    const float *restrict dout, float *restrict dw, const int batch, const int ct)");
    emit_open(e, "{");
    emit(e, "enum { IN = @IH * @IW * @IC };");
    char vt[64], vec[128];
    snprintf(vt, sizeof vt, "%s_vf", n);
    emit_tile_begin(e, vt, "@CT", "ct", "@NV");
    emit_open(e, "for (int b = 0; b < batch; b++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(dout + (size_t)b * @OC + v * @VL)", vt);
    emit_tile_update(e, vt, "@NV", vec, "ct", "in[(size_t)b * IN + t]");
    emit_close(e, "b");
    emit(e, "for (int t = 0; t < ct; t++)");
    emit(e, "    for (int v = 0; v < @NV; v++) *(%s_vf *)(dw + (size_t)t * @OC + v * @VL) = acc[t][v];", n);
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_fc_weight_grad_tiled(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* dL/dw[i,o] = Σ_b in[b,i] · dout[b,o]: one thread per tile of @CT inputs × @OT outputs */");
    emit(e, "float *restrict dweight = c->grads + @WEIGHT;");
    emit(e, "enum { IBLOCKS = (IN + @CT - 1) / @CT };");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int r = 0; r < IBLOCKS * (@OC / @OT); r++) {");
    emit(e, "const int i0 = r / (@OC / @OT) * @CT, o0 = r %% (@OC / @OT) * @OT;");
    emit(e, "float *restrict dw = dweight + (size_t)i0 * @OC + o0;");
    emit_fc_next_rows_prefetch(e);
    emit(e, "if (i0 + @CT <= IN) %s_weight_grad_tile(in + i0, dout + o0, dw, c->batch, @CT);", n);
    emit(e, "else %s_weight_grad_tile(in + i0, dout + o0, dw, c->batch, IN - i0);", n);
    emit_close(e, "r");
}

/* Input vectors per dL/din tile: with AVX-512's 32 registers two (16
 * accumulators for FC_BLOCK images), with 16 registers one. */
static int fc_din_vectors(const Emitter *e)
{
    return e->vlen == 16 ? 2 : 1;
}

/* The dL/din tile function for few outputs: images × input vectors, over o. */
static void emit_fc_input_grad_tile(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    int ni = fc_din_vectors(e);
    char vt[64], vec[160], nis[16];
    snprintf(vt, sizeof vt, "%s_ivf", n);
    snprintf(nis, sizeof nis, "%d", ni);
    emit(e, "typedef float %s_ivf __attribute__((vector_size(CNN_VLEN * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: dL/din for nb images and inputs [i0, i0 + %d·CNN_VLEN): Σ_o dout[b,o] · wt[o,i], in registers */",
         n, ni);
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_tile(const float *restrict dout,", n);
    emit(e, "    const float *restrict wt, float *restrict din, const int i0, const int nb)");
    emit_open(e, "{");
    emit(e, "enum { IN = @IH * @IW * @IC };");
    char cap[16];
    snprintf(cap, sizeof cap, "%d", FC_BLOCK);
    emit_tile_begin(e, vt, cap, "nb", nis);
    emit_open(e, "for (int o = 0; o < @OC; o++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(wt + (size_t)o * IN + i0 + v * CNN_VLEN)", vt);
    emit_tile_update(e, vt, nis, vec, "nb", "dout[(size_t)t * @OC + o]");
    emit_close(e, "o");
    emit(e, "for (int t = 0; t < nb; t++)");
    emit(e, "    for (int v = 0; v < %d; v++) *(%s *)(din + (size_t)t * IN + i0 + v * CNN_VLEN) = acc[t][v];", ni, vt);
    emit_close(e, NULL);
    emit_blank(e);
}

/* The dL/din tile for many outputs: ti input rows × @GV vectors of images, over o. */
static void emit_fc_input_grad_rows(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    char vt[64], vec[160];
    snprintf(vt, sizeof vt, "%s_gvf", n);
    emit(e, "typedef float %s_gvf __attribute__((vector_size(CNN_VLEN * sizeof(float)), aligned(4)));", n);
    emit_blank(e);
    emit(e, "/* %s: dL/din[b, i0 + t] for ti input rows t and nb images: Σ_o w[i0 + t, o] · gt[o, b], with gt", n);
    emit(e, "   dL/dout transposed ([o][@GB], zeros past nb); d points at the group's first image */");
    emit(e, "static inline __attribute__((always_inline)) void %s_input_grad_rows(const float *restrict weight,", n);
    emit(e, "    const float *restrict gt, float *restrict d, const int i0, const int ti, const int nb)");
    emit_open(e, "{");
    emit(e, "enum { IN = @IH * @IW * @IC };");
    emit_tile_begin(e, vt, "@TI", "ti", "@GV");
    emit_open(e, "for (int o = 0; o < @OC; o++) {");
    snprintf(vec, sizeof vec, "*(const %s *)(gt + (size_t)o * @GB + v * CNN_VLEN)", vt);
    emit_tile_update(e, vt, "@GV", vec, "ti", "weight[(size_t)(i0 + t) * @OC + o]");
    emit_close(e, "o");
    emit(e, "float sums[@GB][@TI];   /* [b][t]: each image's ti sums, then stored together */");
    emit(e, "for (int t = 0; t < ti; t++)");
    emit(e, "    for (int v = 0; v < @GV; v++)");
    emit(e, "        for (int k = 0; k < CNN_VLEN; k++) sums[v * CNN_VLEN + k][t] = acc[t][v][k];");
    emit(e, "for (int b = 0; b < nb; b++)");
    emit(e, "    for (int t = 0; t < ti; t++) d[(size_t)b * IN + i0 + t] = sums[b][t];");
    emit_close(e, NULL);
    emit_blank(e);
}

static void emit_fc_din_over_images(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    emit(e, "/* dL/din[b,i] = Σ_o w[i,o] · dout[b,o]: @GB images at a time in vectors (dL/dout transposed on the");
    emit(e, "   stack), threads taking tiles of @TI input rows, each weight row read once */");
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit_open(e, "for (int b0 = 0; b0 < c->batch; b0 += @GB) {");
    emit(e, "const int nb = c->batch - b0 < @GB ? c->batch - b0 : @GB;");
    emit(e, "float gt[@OC * @GB] __attribute__((aligned(64)));   /* shared by the threads below */");
    emit(e, "for (int o = 0; o < @OC; o++)");
    emit(e, "    for (int t = 0; t < @GB; t++) gt[o * @GB + t] = t < nb ? dout[(size_t)(b0 + t) * @OC + o] : 0.0f;");
    emit(e, "float *restrict d = din + (size_t)b0 * IN;");
    emit(e, "#pragma omp parallel for");
    emit_open(e, "for (int i0 = 0; i0 < IN; i0 += @TI) {");
    emit(e, "if (i0 + @TI <= IN) %s_input_grad_rows(weight, gt, d, i0, @TI, nb);", n);
    emit(e, "else %s_input_grad_rows(weight, gt, d, i0, IN %% @TI, nb);", n);
    emit_close(e, "i0");
    emit_close(e, "b0");
}

/* dL/din with few outputs: vectors over the inputs, from the weights
 * transposed to [o][i] (plan.c reserves them), tiles of FC_BLOCK images. */
static void emit_fc_din_transposed(Emitter *e, const PlanLayer *pl)
{
    const char *n = pl->l->name;
    int ni = fc_din_vectors(e);
    emit(e, "/* dL/din[b,i] = Σ_o dout[b,o] · w[i,o]: @OC outputs are too few for a vector, so vectors run over");
    emit(e, "   the inputs, from the weights transposed to [o][i] */");
    emit(e, "const float *restrict weight = c->params + @WEIGHT;");
    emit(e, "float *restrict wt = c->acts + (size_t)c->batch * ACT_PER_IMAGE + @WT;");
    emit(e, "for (int o = 0; o < @OC; o++)");
    emit(e, "    for (int i = 0; i < IN; i++) wt[(size_t)o * IN + i] = weight[(size_t)i * @OC + o];");
    emit(e, "enum { ISPAN = %d * CNN_VLEN };", ni);
    emit_image_blocks_open(e);
    emit(e, "const float *restrict g = dout + (size_t)b0 * @OC;");
    emit(e, "float *restrict d = din + (size_t)b0 * IN;");
    emit(e, "int i0 = 0;");
    emit_open(e, "for (; i0 + ISPAN <= IN; i0 += ISPAN) {");
    emit(e, "if (nb == %d) %s_input_grad_tile(g, wt, d, i0, %d);", FC_BLOCK, n, FC_BLOCK);
    emit(e, "else %s_input_grad_tile(g, wt, d, i0, nb);", n);
    emit_close(e, "i0");
    emit(e, "for (; i0 < IN; i0++)   /* the inputs past the last whole span */");
    emit_open(e, "    for (int t = 0; t < nb; t++) {");
    emit(e, "float s = 0.0f;");
    emit(e, "for (int o = 0; o < @OC; o++) s += g[(size_t)t * @OC + o] * wt[(size_t)o * IN + i0];");
    emit(e, "d[(size_t)t * IN + i0] = s;");
    emit_close(e, "t");
    emit_close(e, "b0");
}

void emit_fc_backward(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    (void)p;
    const Layer *l = pl->l;
    if (fc_tile(e, l).vl) emit_fc_weight_grad_tile(e, pl);
    if (pl->wt_off >= 0) emit_fc_input_grad_tile(e, pl);
    else if (din_over_images(e, pl)) emit_fc_input_grad_rows(e, pl);
    emit_backward_open(e, pl, true, false);
    emit(e, "enum { IN = @IH * @IW * @IC };");
    if (l->a.bias) {
        emit(e, "/* dL/dbias[o] = Σ_b dout[b,o] */");
        emit(e, "float *restrict dbias = c->grads + @BIAS;");
        emit(e, "for (int o = 0; o < @OC; o++) dbias[o] = 0.0f;");
        emit(e, "for (int b = 0; b < c->batch; b++)");
        emit(e, "    for (int o = 0; o < @OC; o++) dbias[o] += dout[(size_t)b * @OC + o];");
    }
    if (fc_tile(e, l).vl) {
        emit_fc_weight_grad_tiled(e, pl);
    } else {
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
    }
    emit_din_open(e, pl);
    if (pl->wt_off >= 0) {
        emit_fc_din_transposed(e, pl);
    } else if (din_over_images(e, pl)) {
        emit_fc_din_over_images(e, pl);
    } else {
        emit(e, "/* dL/din[b,i] = Σ_o dout[b,o] · w[i,o]: threads take %d weight rows at a time, read from", FC_CHUNK);
        emit(e, "   memory once and from cache for every image */");
        emit(e, "const float *restrict weight = c->params + @WEIGHT;");
        emit(e, "#pragma omp parallel for");
        emit_open(e, "for (int i0 = 0; i0 < IN; i0 += %d) {", FC_CHUNK);
        emit(e, "const int iend = IN - i0 < %d ? IN : i0 + %d;", FC_CHUNK, FC_CHUNK);
        emit_open(e, "for (int b = 0; b < c->batch; b++) {");
        emit(e, "const float *restrict g = dout + (size_t)b * @OC;");
        emit_open(e, "for (int i = i0; i < iend; i++) {");
        emit(e, "const float *restrict row = weight + (size_t)i * @OC;");
        emit(e, "float s = 0.0f;");
        emit(e, "#pragma omp simd reduction(+:s)");
        emit(e, "for (int o = 0; o < @OC; o++) s += g[o] * row[o];");
        emit(e, "din[(size_t)b * IN + i] = s;");
        emit_close(e, "i");
        emit_close(e, "b");
        emit_close(e, "i0");
    }
    emit_din_close(e, pl);
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
