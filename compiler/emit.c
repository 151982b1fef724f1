/* emit.c — the Emitter object and the assembly of one model's C file.
 *
 * <model>.c reads top to bottom: a header with the summary table, one enum of
 * every size and offset, then per layer its `<name>_forward` and
 * `<name>_backward` (written by the layer kind's emitter), then the model's
 * forward and backward drivers that call the layers in order, and last the
 * tensor table and the `cnn_model` descriptor the runtime reads.
 * <model>.h is the runtime contract (cnnrt.h, embedded in cnnc) so that the
 * emitted pair compiles with nothing else beside it. */
#include "emit.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "summary.h"

extern const char cnnrt_h_text[];   /* runtime/cnnrt.h, embedded by the Makefile */

/* ---- the Emitter ----------------------------------------------------------- */

static void emit_reserve(Emitter *e, size_t more)
{
    if (e->len + more + 1 <= e->cap) return;
    size_t cap = e->cap ? e->cap : 1 << 16;
    while (cap < e->len + more + 1) cap *= 2;
    char *p = realloc(e->buf, cap);
    if (!p) { fputs("cnnc: out of memory\n", stderr); exit(3); }
    e->buf = p;
    e->cap = cap;
}

static void emit_append(Emitter *e, const char *s, size_t n)
{
    emit_reserve(e, n);
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    e->buf[e->len] = '\0';
}

/* Appends one indented line, expanding '@' to the layer's prefix. */
static void emit_vline(Emitter *e, const char *fmt, va_list ap)
{
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    for (int i = 0; i < e->indent; i++) emit_append(e, "    ", 4);
    for (const char *p = tmp; *p; p++) {
        if (*p == '@' && e->prefix) emit_append(e, e->prefix, strlen(e->prefix));
        else emit_append(e, p, 1);
    }
    emit_append(e, "\n", 1);
}

void emit(Emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_vline(e, fmt, ap);
    va_end(ap);
}

void emit_open(Emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_vline(e, fmt, ap);
    va_end(ap);
    e->indent++;
}

void emit_close(Emitter *e, const char *what)
{
    e->indent--;
    if (what) emit(e, "}  /* %s */", what);
    else emit(e, "}");
}

void emit_else(Emitter *e, const char *why)
{
    e->indent--;
    if (why) emit(e, "} else {   /* %s */", why);
    else emit(e, "} else {");
    e->indent++;
}

void emit_blank(Emitter *e) { emit_append(e, "\n", 1); }

void emit_text(Emitter *e, const char *text) { emit_append(e, text, strlen(text)); }

/* schedule(static): every per-image loop deals thread t the same images, the
 * ones dL/dweight's chunk t sums (plan.h PLAN_GRAD_CHUNKS). */
void emit_batch_loop(Emitter *e)
{
    emit(e, "#pragma omp parallel for schedule(static)");
    emit_open(e, "for (int b = 0; b < c->batch; b++) {");
}

static const char *shape_comment(char *buf, size_t n, Shape s)
{
    snprintf(buf, n, "(B,%ld,%ld,%ld)", s.h, s.w, s.c);
    return buf;
}

void emit_forward_open(Emitter *e, const PlanLayer *pl, bool uses_in)
{
    char si[64], so[64];
    const Layer *l = pl->l;
    emit(e, "static void %s_forward(const CnnCtx *c, const float *restrict in /* %s */,", l->name,
         shape_comment(si, sizeof si, l->in));
    emit_open(e, "%*sfloat *restrict out /* %s */)", (int)strlen(l->name) + 21, "",
              shape_comment(so, sizeof so, l->out));
    e->buf[e->len - 1] = '\0', e->len--;                 /* keep the brace on its own line */
    emit_append(e, "\n", 1);
    e->indent--;
    emit_open(e, "{");
    if (!uses_in) emit(e, "(void)in;");
}

void emit_forward_empty(Emitter *e, const PlanLayer *pl)
{
    emit_forward_open(e, pl, false);
    emit(e, "(void)c;");
    emit(e, "(void)out;");
    emit_close(e, NULL);
}

void emit_backward_open(Emitter *e, const PlanLayer *pl, bool uses_in, bool uses_out)
{
    const Layer *l = pl->l;
    int w = (int)strlen(l->name) + 22;
    emit(e, "static void %s_backward(const CnnCtx *c, const float *restrict in, const float *restrict out,",
         l->name);
    emit(e, "%*sconst float *restrict dout, float *restrict din)", w, "");
    emit_open(e, "{");
    if (!uses_in) emit(e, "(void)in;");
    if (!uses_out) emit(e, "(void)out;");
    /* plan.c let buffers no backward reads die early, from pl->bwd_reads_*:
     * an emitter reading more would read another buffer's floats */
    if ((uses_in && !pl->bwd_reads_in) || (uses_out && !pl->bwd_reads_out)) {
        fprintf(stderr, "cnnc: internal error: %s_backward reads a buffer plan.c let die\n", l->name);
        abort();
    }
}

/* A backward that another layer's does (its din is its dout, the same buffer). */
void emit_backward_empty(Emitter *e, const PlanLayer *pl)
{
    emit_backward_open(e, pl, false, false);
    emit(e, "(void)c;");
    emit(e, "(void)dout;");
    emit(e, "(void)din;");
    emit_close(e, NULL);
}

void emit_din_open(Emitter *e, const PlanLayer *pl)
{
    if (!pl->need_din) emit_open(e, "if (din != NULL) {   /* the first layer: dLoss/dx only when asked for */");
}

void emit_din_close(Emitter *e, const PlanLayer *pl)
{
    if (!pl->need_din) emit_close(e, NULL);
}

FloatText c_float(double v)
{
    FloatText t;
    snprintf(t.s, sizeof t.s - 3, "%.9g", v);
    if (!strpbrk(t.s, ".en")) strcat(t.s, ".0");
    strcat(t.s, "f");
    return t;
}

/* ---- the model file ------------------------------------------------------- */

static void emit_header_comment(Emitter *e, const Plan *p)
{
    const Model *m = p->m;
    emit(e, "/* %s.c — generated by cnnc from %s; edit the .cnn file, not this one.", m->name, m->src->path);
    emit(e, " *");
    char *table = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&table, &n);
    if (f) {
        summary_print(p, f);
        fclose(f);
        for (char *line = table, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = '\0';
            emit(e, " * %s", line);
        }
        free(table);
    }
    emit(e, " *");
    emit(e, " * Layout: activations are NHWC, in[((b*H + y)*W + x)*C + c]; conv weights are stored");
    emit(e, " * [ky][kx][ci][co] and fc weights [in][out], so the innermost loops run over output");
    emit(e, " * channels, contiguous in memory.  The weights files hold PyTorch's layouts; the");
    emit(e, " * tensor table at the end tells the runtime how to convert.");
    emit(e, " */");
}

static void emit_layer_constants(Emitter *e, const Plan *p, const PlanLayer *pl)
{
    const Layer *l = pl->l;
    const LayerArgs *a = &l->a;
    e->prefix = pl->prefix;
    emit(e, "/* %s: %s, %ldx%ldx%ld -> %ldx%ldx%ld */", l->name, l->title, l->in.h, l->in.w, l->in.c,
         l->out.h, l->out.w, l->out.c);
    emit(e, "@IH = %ld, @IW = %ld, @IC = %ld, @OH = %ld, @OW = %ld, @OC = %ld,", l->in.h, l->in.w, l->in.c,
         l->out.h, l->out.w, l->out.c);
    LayerTag t = l->kind->tag;
    if (t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_MAXPOOL || t == LAYER_AVGPOOL)
        emit(e, "@KH = %d, @KW = %d, @SH = %d, @SW = %d, @PH = %d, @PW = %d, @DH = %d, @DW = %d,",
             a->kh, a->kw, a->sh, a->sw, a->ph, a->pw, a->dh, a->dw);
    if (pl->out_off >= 0 && pl->out_unstored)
        emit(e, "@OUT = %ld,   /* its output: never stored, so no floats of its own (%s_forward applies the pool "
             "after) */", pl->out_off, pl->done_by ? pl->done_by : l->name);
    else if (pl->out_off >= 0)
        emit(e, "@OUT = %ld,   /* its output: acts + B*%ld */", pl->out_off, pl->out_off);
    if (pl->din_off >= 0) emit(e, "@DIN = %ld,   /* dLoss/d(its input): acts + B*%ld */", pl->din_off, pl->din_off);
    if (pl->weight_off >= 0) emit(e, "@WEIGHT = %ld,", pl->weight_off);
    if (pl->bias_off >= 0) emit(e, "@BIAS = %ld,", pl->bias_off);
    if (pl->stat_off >= 0) emit(e, "@RUNNING = %ld,   /* running mean; running var follows */", pl->stat_off);
    if (pl->fixed_off >= 0) emit(e, "@BATCH_STATS = %ld,   /* batch mean and 1/std, at acts + B*ACT_PER_IMAGE */",
                                 pl->fixed_off);
    if (pl->index_off >= 0) emit(e, "@ARGMAX = %ld,   /* its argmax: index + B*%ld */", pl->index_off, pl->index_off);
    if (t == LAYER_CONV) emit_conv_tile_constants(e, pl);
    if (t == LAYER_FC) emit_fc_tile_constants(e, pl);
    (void)p;
    e->prefix = NULL;
}

static void emit_constants(Emitter *e, const Plan *p)
{
    emit_open(e, "enum {");
    emit(e, "IN_H = %ld, IN_W = %ld, IN_C = %ld, OUTPUTS = %ld,", p->m->input.h, p->m->input.w, p->m->input.c,
         p->m->outputs);
    emit(e, "/* acts: per image, every layer's output, padded conv inputs and dLoss/d(input)s, sharing");
    emit(e, "   floats where their lifetimes in a step do not overlap (%ld without sharing) */", p->act_unshared);
    emit(e, "ACT_PER_IMAGE = %ld, ACT_FIXED = %ld, INDEX_PER_IMAGE = %ld,", p->act_per_image, p->act_fixed,
         p->index_per_image);
    emit(e, "PARAM_FLOATS = %ld, STAT_FLOATS = %ld,", p->param_floats, p->stat_floats);
    for (int i = 0; i < p->nlayers; i++) {
        emit_blank(e);
        emit_layer_constants(e, p, &p->layers[i]);
    }
    emit_close(e, NULL);
    e->buf[e->len - 1] = '\0', e->len--;
    emit_text(e, ";\n");
}

static void emit_layers(Emitter *e, const Plan *p)
{
    for (int i = 0; i < p->nlayers; i++) {
        const PlanLayer *pl = &p->layers[i];
        const Layer *l = pl->l;
        if (l->folded) continue;
        int line, col;
        source_line_col(p->m->src, l->loc.off, &line, &col);
        emit_blank(e);
        emit(e, "/* ---- %s: %s (%s:%d), %ld×%ld×%ld → %ld×%ld×%ld ---- */", l->name, l->title,
             p->m->src->path, line, l->in.h, l->in.w, l->in.c, l->out.h, l->out.w, l->out.c);
        e->prefix = pl->prefix;
        l->kind->emit_forward(e, p, pl);
        emit_blank(e);
        l->kind->emit_backward(e, p, pl);
        e->prefix = NULL;
    }
}

/* Declares every activation buffer the drivers pass between layers, and
 * backward's activation gradients. */
static void emit_buffers(Emitter *e, const Plan *p, bool gradients)
{
    emit(e, "const size_t B = (size_t)c->batch;");
    for (int i = 0; i < p->nlayers; i++) {
        const PlanLayer *pl = &p->layers[i];
        if (!pl->out_buf) continue;
        char s[64];
        emit(e, "float *%s = c->acts + B * %sOUT;   /* %s */", pl->out_buf, pl->prefix,
             shape_comment(s, sizeof s, pl->l->out));
    }
    if (!gradients) return;
    char dout[128] = "(float *)dout";   /* each layer's dL/dout: the din of the layer after it */
    for (int i = p->nlayers - 1; i >= 0; i--) {
        const PlanLayer *pl = &p->layers[i];
        if (!pl->out_buf || !pl->need_din) continue;
        if (pl->mask_by)
            emit(e, "float *%s_din = %s_din;   /* %s_backward applied %s's mask */", pl->l->name, pl->mask_by,
                 pl->mask_by, pl->l->name);
        else if (pl->pooled_by)
            emit(e, "float *%s_din = %s;   /* %s_backward reads it through %s's argmax */", pl->l->name, dout,
                 pl->pooled_by->l->name, pl->l->name);
        else
            emit(e, "float *%s_din = c->acts + B * %sDIN;   /* dLoss/d(%s) */", pl->l->name, pl->prefix, pl->in_buf);
        snprintf(dout, sizeof dout, "%s_din", pl->l->name);
    }
}

static void emit_drivers(Emitter *e, const Plan *p)
{
    const char *name = p->m->name;
    emit_blank(e);
    emit(e, "/* ---- the whole model ---- */");
    emit(e, "static const float *%s_forward(const CnnCtx *c, const float *x)", name);
    emit_open(e, "{");
    emit_buffers(e, p, false);
    emit(e, "cnn_lap(c, -1);   /* cnn_lap(c, i): layer i's time, for `bench --layers` (nothing otherwise) */");
    for (int i = 0; i < p->nlayers; i++) {
        const PlanLayer *pl = &p->layers[i];
        if (!pl->out_buf) continue;
        emit(e, "%s_forward(c, %s, %s);", pl->l->name, pl->in_buf, pl->out_buf);
        emit(e, "cnn_lap(c, %d);", i);
    }
    emit(e, "return %s;", p->output_buf);
    emit_close(e, NULL);
    emit_blank(e);
    emit(e, "/* Layer by layer in reverse: each layer's dLoss/d(input) is the dLoss/d(output) of the one before. */");
    emit(e, "static void %s_backward(const CnnCtx *c, const float *x, const float *dout)", name);
    emit_open(e, "{");
    emit_buffers(e, p, true);
    emit(e, "cnn_lap(c, -1);");
    char d[128] = "dout", din[128];
    for (int i = p->nlayers - 1; i >= 0; i--) {
        const PlanLayer *pl = &p->layers[i];
        if (!pl->out_buf) continue;
        if (pl->need_din) snprintf(din, sizeof din, "%s_din", pl->l->name);
        else snprintf(din, sizeof din, "c->dinput");
        emit(e, "%s_backward(c, %s, %s, %s, %s);", pl->l->name, pl->in_buf, pl->out_buf, d, din);
        emit(e, "cnn_lap(c, %d + %d);", p->nlayers, i);
        memcpy(d, din, sizeof d);
    }
    emit_close(e, NULL);
}

static void emit_float_list(char *buf, size_t n, const long *v, int count)
{
    size_t o = (size_t)snprintf(buf, n, "{");
    for (int i = 0; i < count && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "%s%ld", i ? ", " : "", v[i]);
    if (o < n) snprintf(buf + o, n - o, "}");
}

static void emit_descriptor(Emitter *e, const Plan *p)
{
    const Model *m = p->m;
    const Settings *s = &m->settings;
    emit_blank(e);
    emit(e, "/* ---- what the runtime sees: tensors in PyTorch's names and layouts, the layers, the entry points ---- */");
    emit_open(e, "static const CnnTensor %s_tensors[] = {", m->name);
    for (int i = 0; i < p->ntensors; i++) {
        const PlanTensor *t = &p->tensors[i];
        char shape[96], view[96];
        emit_float_list(shape, sizeof shape, t->shape, t->ndim);
        emit_float_list(view, sizeof view, t->view, 4);
        emit(e, "{\"%s\", %s, %d, %s, %s, {%d, %d, %d, %d}, %ld, %ld, %s, %s},", t->name,
             t->trainable ? "CNN_TENSOR_PARAM" : "CNN_TENSOR_STAT", t->ndim, shape, view,
             t->perm[0], t->perm[1], t->perm[2], t->perm[3], t->offset, t->size, c_float(t->init_lo).s,
             c_float(t->init_hi).s);
    }
    if (p->ntensors == 0) emit(e, "{0}");
    emit_close(e, NULL);
    e->buf[e->len - 1] = '\0', e->len--;
    emit_text(e, ";\n\n");
    emit_open(e, "static const CnnLayerInfo %s_layers[] = {", m->name);
    for (int i = 0; i < p->nlayers; i++) {
        const PlanLayer *pl = &p->layers[i];
        LayerTag t = pl->l->kind->tag;
        bool weighted = t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_FC;
        emit(e, "{\"%s\", \"%s\", %ld, %d},", pl->l->name, pl->l->kind->word, pl->l->macs,
             !weighted ? 0 : pl->need_din ? 2 : 1);
    }
    if (p->nlayers == 0) emit(e, "{0}");
    emit_close(e, NULL);
    e->buf[e->len - 1] = '\0', e->len--;
    emit_text(e, ";\n\n");
    static const char *loss[] = {"CNN_LOSS_CROSSENTROPY", "CNN_LOSS_MSE", "CNN_LOSS_BCE"};
    static const char *opt[] = {"CNN_OPT_SGD", "CNN_OPT_MOMENTUM", "CNN_OPT_ADAM"};
    emit_open(e, "const CnnModel cnn_model = {");
    emit(e, ".name = \"%s\", .source = \"%s\",", m->name, m->src->path);
    emit(e, ".in_h = IN_H, .in_w = IN_W, .in_c = IN_C, .outputs = OUTPUTS, .loss = %s,", loss[s->loss]);
    emit(e, ".tensors = %s_tensors, .ntensors = %d,", m->name, p->ntensors);
    emit(e, ".param_floats = PARAM_FLOATS, .stat_floats = STAT_FLOATS,");
    emit(e, ".act_floats_per_image = ACT_PER_IMAGE, .act_floats_fixed = ACT_FIXED,");
    emit(e, ".dact_floats_per_image = 0, .index_per_image = INDEX_PER_IMAGE,   /* gradients are in acts */");
    emit(e, ".optimizer = %s, .lr = %s, .beta1 = %s, .beta2 = %s, .eps = %s, .momentum = %s,",
         opt[s->optimizer], c_float(s->lr).s, c_float(s->beta1).s, c_float(s->beta2).s, c_float(s->eps).s,
         c_float(s->momentum).s);
    emit(e, ".batch = %d, .epochs = %d,", s->batch, s->epochs);
    emit(e, ".forward = %s_forward, .backward = %s_backward,", m->name, m->name);
    emit(e, ".layers = %s_layers, .nlayers = %d,", m->name, p->nlayers);
    emit_close(e, NULL);
    e->buf[e->len - 1] = '\0', e->len--;
    emit_text(e, ";\n");
}

static const char *emit_header_file(Arena *a, const Plan *p)
{
    const char *n = p->m->name;
    return arena_printf(a, "/* %s.h — generated by cnnc from %s: the runtime contract (cnnrt.h) that\n"
                        " * %s.c is written against, so the pair compiles with nothing beside it. */\n%s",
                        n, p->m->src->path, n, cnnrt_h_text);
}

/* The vector width of the machine cnnc runs on, which is where `cnnc build`
 * compiles with -march=native: 16 floats with AVX-512, else 8 (AVX2). */
static int host_vector_floats(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 16;
#endif
    return 8;
}

/* Whether the host's 512-bit FMAs run as two 256-bit halves, as on AMD's
 * Zen 4 (family 19h with AVX-512; Zen 5 has whole 512-bit units): two 8-float
 * FMAs then take the time of one 16-float FMA, and a layer with 20 channels
 * runs faster as 3 × 8 than as 2 × 16 (the assignment's conv2 forward
 * 0.14 → 0.11 ms per batch of 64).  On Intel's AVX-512 cores an 8-float FMA
 * takes a 16-float one's slot. */
static bool host_halves_16_float_fmas(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_is("amd")) return false;
    unsigned eax, ebx, ecx, edx;
    __asm__("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
    unsigned family = (eax >> 8) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    return family == 0x19;
#else
    return false;
#endif
}

static void emit_partial_vectors(Emitter *e);
static void emit_grad_chunks(Emitter *e);
static void emit_prefetch_part(Emitter *e);

static void emit_vector_type(Emitter *e)
{
    emit(e, "/* One vector of CNN_VLEN floats (a GCC vector extension that clang also understands): the");
    emit(e, "   tiled kernels keep their accumulators in these, which both compilers hold in registers. */");
    emit(e, "#define CNN_VLEN %d", e->vlen);
    emit(e, "typedef float cnn_vf __attribute__((vector_size(CNN_VLEN * sizeof(float)), aligned(4)));");
    emit(e, "typedef int32_t cnn_vi __attribute__((vector_size(CNN_VLEN * sizeof(int32_t)), aligned(4)));");
    emit(e, "/* cnn_in_register(x): x, a vector just loaded, stays in a register (an empty asm that takes it");
    emit(e, "   there): gcc otherwise folds the load into each FMA that uses x, and a tile's loads, not its FMAs,");
    emit(e, "   then set its pace.  Only where the vectors fit the machine's registers (tests build 16-float");
    emit(e, "   code for AVX2, which keeps them in memory) */");
    emit(e, "#if (CNN_VLEN == 16 && defined(__AVX512F__)) || (CNN_VLEN == 8 && defined(__AVX__))");
    emit(e, "#define cnn_in_register(x) __asm__(\"\" : \"+v\"(x))");
    emit(e, "#else");
    emit(e, "#define cnn_in_register(x) ((void)(x))");
    emit(e, "#endif");
    emit_blank(e);
    emit_partial_vectors(e);
    emit_blank(e);
    emit_grad_chunks(e);
    emit_blank(e);
    emit_prefetch_part(e);
}

/* Part k of parts of a memory range, prefetched: a kernel spreads a range over
 * its loop's iterations so the fetches overlap its arithmetic. */
static void emit_prefetch_part(Emitter *e)
{
    emit(e, "/* Prefetches part k of `parts` of the bytes [p, p + n) (for writing when write is 1): a kernel spreads a");
    emit(e, "   range it will need over the iterations of a loop, so that the fetches overlap its arithmetic. Into L2, not L1:");
    emit(e, "   what comes a chunk or an image ahead would push the working set out of L1 before its turn. */");
    emit(e, "static inline __attribute__((always_inline, unused)) void cnn_prefetch_part(const void *p, const long n, const int k,");
    emit(e, "    const int parts, const int write)");
    emit_open(e, "{");
    emit_open(e, "for (long q = n * k / parts / 64 * 64; q < n * (k + 1) / parts; q += 64) {");
    emit(e, "if (write) __builtin_prefetch((const char *)p + q, 1, 2);");
    emit(e, "else __builtin_prefetch((const char *)p + q, 0, 2);");
    emit_close(e, NULL);
    emit_close(e, NULL);
}

static void emit_grad_chunks(Emitter *e)
{
    emit(e, "/* A conv's dL/dweight is summed in CNN_GRAD_CHUNKS chunks of consecutive images, each into its");
    emit(e, "   own copy, then the copies are added in chunk order: chunk g starts at image ⌈g·batch/CHUNKS⌉,");
    emit(e, "   the images schedule(static) gives thread g of 2 in every per-image loop, so each thread sums");
    emit(e, "   the images it ran and no image's data crosses to the other core; the sums do not depend on");
    emit(e, "   the thread count. */");
    emit(e, "enum { CNN_GRAD_CHUNKS = %d };", PLAN_GRAD_CHUNKS);
    emit(e, "static inline __attribute__((always_inline, unused)) int cnn_chunk_first(const int batch, const int g)");
    emit_open(e, "{");
    emit(e, "return (g * batch + CNN_GRAD_CHUNKS - 1) / CNN_GRAD_CHUNKS;");
    emit_close(e, NULL);
}

/* Inside a parallel region whose threads are done with their chunks: dst[0, n)
 * += chunk g's copy at part + (g − 1)·stride, for g = 1, 2, … in order; a
 * chunk with no images (a batch smaller than the chunks) has none. */
void emit_grad_chunks_add(Emitter *e, const char *dst, const char *part, const char *n, const char *stride)
{
    emit_open(e, "for (int g = 1; g < CNN_GRAD_CHUNKS && cnn_chunk_first(c->batch, g) < c->batch; g++) {");
    emit(e, "#pragma omp for schedule(static)");
    emit(e, "for (long i = 0; i < %s; i++) %s[i] += %s[(size_t)(g - 1) * %s + i];", n, dst, part, stride);
    emit_close(e, "g");
}

/* The first n lanes of a vector from or to memory, for a pixel's channels
 * that do not fill its last vector (a pool's 6 or 10): nothing past p + n is
 * read or written, so the next pixel and the next thread's image are not
 * touched.  One masked load or store with AVX-512; with AVX2 loads and
 * stores of 4, 2 and 1 lanes; elsewhere copies (the lanes past n read as 0).
 * Vectors go by pointer, as in the conv kernels: by value the ABI changes
 * between -march settings. */
static void emit_partial_vectors(Emitter *e)
{
    emit_text(e,
        "#if defined(__AVX512F__) || defined(__AVX2__)\n"
        "#include <immintrin.h>\n"
        "#endif\n"
        "\n"
        "/* Lanes [0, n) of the vl-float vector *x from p, the other lanes 0.  x points to a vector\n"
        "   variable (8 or 16 floats); once inlined it stays in its register. */\n"
        "static inline __attribute__((always_inline, unused)) void cnn_load_lanes(void *x, const void *p, const int vl, const int n)\n"
        "{\n"
        "#if defined(__AVX512F__)\n"
        "    if (vl == 16) {\n"
        "        const __m512 r = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);\n"
        "        memcpy(x, &r, sizeof r);\n"
        "        return;\n"
        "    }\n"
        "#endif\n"
        "#if defined(__AVX512VL__)\n"
        "    if (vl == 8) {\n"
        "        const __m256 r = _mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1), p);\n"
        "        memcpy(x, &r, sizeof r);\n"
        "        return;\n"
        "    }\n"
        "#elif defined(__AVX2__)\n"
        "    /* as 4, 2 and 1 lanes (n is a constant once inlined): AVX2's masked load held up each use of\n"
        "       its result on Zen 1 (lenet5's pool1, 6 lanes: forward 0.28 -> 0.11 ms a batch, backward 0.47 -> 0.16) */\n"
        "    if (vl == 8 && n < 8) {\n"
        "        const float *f = (const float *)p;\n"
        "        __m128 half[2] = {_mm_setzero_ps(), _mm_setzero_ps()}, rest = _mm_setzero_ps();\n"
        "        int h = 0, left = n;\n"
        "        if (left >= 4) half[0] = _mm_loadu_ps(f), f += 4, left -= 4, h = 1;\n"
        "        if (left >= 2) rest = _mm_loadl_pi(rest, (const __m64 *)f), f += 2, left -= 2;\n"
        "        if (left >= 1) rest = n % 4 >= 2 ? _mm_movelh_ps(rest, _mm_load_ss(f)) : _mm_load_ss(f);\n"
        "        half[h] = rest;\n"
        "        const __m256 r = _mm256_set_m128(half[1], half[0]);\n"
        "        memcpy(x, &r, sizeof r);\n"
        "        return;\n"
        "    }\n"
        "#endif\n"
        "    memset(x, 0, sizeof(float) * (size_t)vl);\n"
        "    memcpy(x, p, sizeof(float) * (size_t)n);\n"
        "}\n"
        "\n");
    emit_text(e,
        "/* Lanes [0, n) of the vl-float vector *x to p, nothing further */\n"
        "static inline __attribute__((always_inline, unused)) void cnn_store_lanes(void *p, const void *x, const int vl, const int n)\n"
        "{\n"
        "#if defined(__AVX512F__)\n"
        "    if (vl == 16) {\n"
        "        __m512 r;\n"
        "        memcpy(&r, x, sizeof r);\n"
        "        _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), r);\n"
        "        return;\n"
        "    }\n"
        "#endif\n"
        "#if defined(__AVX512VL__)\n"
        "    if (vl == 8) {\n"
        "        __m256 r;\n"
        "        memcpy(&r, x, sizeof r);\n"
        "        _mm256_mask_storeu_ps(p, (__mmask8)((1u << n) - 1), r);\n"
        "        return;\n"
        "    }\n"
        "#endif\n"
        "    /* AVX2's vmaskmovps store is microcoded on AMD before Zen 4 (the assignment's pool1 on\n"
        "       Zen 1: 1.24 -> 0.66 ms a batch as a copy); its masked load is not, and stays.  The lanes\n"
        "       go as 4, 2 and 1 from the register (n is a constant once inlined): as a memcpy, gcc put\n"
        "       the vector on the stack and copied it from there (lenet5's pool1 backward, 6 lanes) */\n"
        "#if defined(__AVX2__)\n"
        "    if (vl == 8) {\n"
        "        __m256 r;\n"
        "        memcpy(&r, x, sizeof r);\n"
        "        if (n >= 8) {\n"
        "            _mm256_storeu_ps((float *)p, r);\n"
        "            return;\n"
        "        }\n"
        "        __m128 part = _mm256_castps256_ps128(r);\n"
        "        float *f = (float *)p;\n"
        "        int left = n;\n"
        "        if (left >= 4) _mm_storeu_ps(f, part), f += 4, left -= 4, part = _mm256_extractf128_ps(r, 1);\n"
        "        if (left >= 2) _mm_storel_pi((__m64 *)f, part), f += 2, left -= 2, part = _mm_movehl_ps(part, part);\n"
        "        if (left >= 1) _mm_store_ss(f, part);\n"
        "        return;\n"
        "    }\n"
        "#endif\n"
        "    (void)vl;\n"
        "    memcpy(p, x, sizeof(float) * (size_t)n);\n"
        "}\n"
        "\n"
        "/* Vector v of a pixel's channels (float or int32) in cnn_vf vectors, of nv whose last holds\n"
        "   `last`: whole vectors as they are; a partly used last one, after others, as the whole vector\n"
        "   ending at the pixel's last channel (lane-wise work on the channels it shares with the vector\n"
        "   before gives the same values again); a pixel's only vector by its lanes only */\n"
        "static inline __attribute__((always_inline, unused)) size_t cnn_channels_at(const int v, const int nv, const int last)\n"
        "{\n"
        "    if (v == nv - 1 && last < CNN_VLEN && nv > 1) return sizeof(float) * ((size_t)v * CNN_VLEN + last - CNN_VLEN);\n"
        "    return sizeof(cnn_vf) * (size_t)v;\n"
        "}\n"
        "\n"
        "/* The same vector, for any data (float or int32, argmax): a whole-vector access as a memcpy went\n"
        "   through the stack in halves under gcc's Zen 1 tuning, a store-forwarding stall at every tap */\n"
        "typedef float cnn_vf_any __attribute__((vector_size(CNN_VLEN * sizeof(float)), aligned(4), may_alias));\n"
        "\n"
        "static inline __attribute__((always_inline, unused)) void cnn_load_channels(cnn_vf *x, const void *p, const int v,\n"
        "                                                                            const int nv, const int last)\n"
        "{\n"
        "    const char *q = (const char *)p + cnn_channels_at(v, nv, last);\n"
        "    if (nv == 1 && last < CNN_VLEN) cnn_load_lanes(x, q, CNN_VLEN, last);\n"
        "    else *x = *(const cnn_vf_any *)q;\n"
        "}\n"
        "\n"
        "static inline __attribute__((always_inline, unused)) void cnn_store_channels(void *p, const cnn_vf *x, const int v,\n"
        "                                                                             const int nv, const int last)\n"
        "{\n"
        "    char *q = (char *)p + cnn_channels_at(v, nv, last);\n"
        "    if (nv == 1 && last < CNN_VLEN) cnn_store_lanes(q, x, CNN_VLEN, last);\n"
        "    else *(cnn_vf_any *)q = *x;\n"
        "}\n"
        "\n"
        "/* n floats from src to dst, in vectors (n a constant once inlined: the moves unroll): as a\n"
        "   memcpy, a library call per row of a conv's image copy */\n"
        "static inline __attribute__((always_inline, unused)) void cnn_copy_floats(float *restrict dst,\n"
        "                                                                          const float *restrict src, const int n)\n"
        "{\n"
        "    int i = 0;\n"
        "    for (; i + CNN_VLEN <= n; i += CNN_VLEN) {\n"
        "        cnn_vf v = *(const cnn_vf *)(src + i);\n"
        "        cnn_in_register(v);   /* moved as a vector, not turned back into a memcpy */\n"
        "        *(cnn_vf *)(dst + i) = v;\n"
        "    }\n"
        "    if (i < n) {\n"
        "        cnn_vf v;\n"
        "        cnn_load_lanes(&v, src + i, CNN_VLEN, n - i);\n"
        "        cnn_store_lanes(dst + i, &v, CNN_VLEN, n - i);\n"
        "    }\n"
        "}\n");
}

void emit_model(Arena *a, const Plan *p, const char **c_text, const char **h_text)
{
    Emitter e = {0};
    const char *vlen = getenv("CNNC_VLEN");   /* tests force 8 or 16 to cover both */
    e.vlen = vlen && (atoi(vlen) == 8 || atoi(vlen) == 16) ? atoi(vlen) : host_vector_floats();
    const char *halved = getenv("CNNC_HALVED16");   /* 0 or 1: as if the host did (tests, comparisons) */
    e.halved16 = e.vlen == 16 && (halved && *halved ? strcmp(halved, "0") != 0 : host_halves_16_float_fmas());
    emit_header_comment(&e, p);
    emit(&e, "#include <math.h>");
    emit(&e, "#include <stdint.h>");
    emit(&e, "#include <string.h>");
    emit(&e, "#include \"%s.h\"", p->m->name);
    emit_blank(&e);
    emit_vector_type(&e);
    emit_blank(&e);
    emit_constants(&e, p);
    emit_layers(&e, p);
    emit_drivers(&e, p);
    emit_descriptor(&e, p);
    *c_text = arena_strndup(a, e.buf, e.len);
    *h_text = emit_header_file(a, p);
    free(e.buf);
}
