/* summary.c — `cnnc summary`: the layer table of SPEC §2.
 *
 * One row per layer: its name, the course's notation (CONV3-10, POOL-2,
 * FC-10), output H×W×C, parameters with their formula, multiply-accumulates
 * and the options that shape it; then totals.  Memory figures come from the
 * plan, so they are what the generated executable allocates. */
#include "summary.h"
#include <stdio.h>
#include <string.h>

enum { COLS = 8, CELL = 96 };

typedef struct Table {
    char (*cell)[COLS][CELL];
    int rows, cap;
    bool right[COLS];
} Table;

/* Display width of UTF-8 text (× is one column, two bytes). */
static int text_width(const char *s)
{
    int n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* 1234567 -> "1,234,567" */
const char *summary_count(char *buf, size_t n, long v)
{
    char digits[32];
    /* the magnitude as unsigned, so that LONG_MIN has one too */
    snprintf(digits, sizeof digits, "%lu", v < 0 ? 0UL - (unsigned long)v : (unsigned long)v);
    size_t len = strlen(digits), o = 0;
    if (v < 0 && o + 1 < n) buf[o++] = '-';
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* 15.3 KiB, 2.4 MiB */
static const char *bytes_text(char *buf, size_t n, double b)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
    return buf;
}

static char *table_row(Table *t)
{
    if (t->rows == t->cap) return NULL;
    memset(t->cell[t->rows], 0, sizeof t->cell[t->rows]);
    return t->cell[t->rows++][0];
}

static void table_print(const Table *t, FILE *out)
{
    int w[COLS] = {0};
    for (int r = 0; r < t->rows; r++)
        for (int c = 0; c < COLS; c++)
            if (text_width(t->cell[r][c]) > w[c]) w[c] = text_width(t->cell[r][c]);
    for (int r = 0; r < t->rows; r++) {
        int last = COLS - 1;
        while (last > 0 && !t->cell[r][last][0]) last--;
        for (int c = 0; c <= last; c++) {
            int pad = w[c] - text_width(t->cell[r][c]);
            if (t->right[c]) fprintf(out, "%*s%s", pad, "", t->cell[r][c]);
            else fprintf(out, "%s%*s", t->cell[r][c], c == last ? 0 : pad, "");
            if (c < last) fputs("  ", out);
        }
        fputc('\n', out);
    }
}

/* Fully connected data (after fc or flatten) is shown as its length: 180. */
static void shape_text(char *buf, size_t n, Shape s, bool flat)
{
    if (flat) snprintf(buf, n, "%ld", shape_size(s));
    else snprintf(buf, n, "%ld×%ld×%ld", s.h, s.w, s.c);
}

/* stride 3, pad 2, dilation 2, no bias, flipped */
static void details_text(char *buf, size_t n, const Layer *l)
{
    const LayerArgs *a = &l->a;
    buf[0] = '\0';
    size_t o = 0;
#define ADD(...) do { if (o < n) o += (size_t)snprintf(buf + o, n - o, __VA_ARGS__); } while (0)
    LayerTag t = l->kind->tag;
    bool windowed = t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_MAXPOOL || t == LAYER_AVGPOOL;
    bool pool = t == LAYER_MAXPOOL || t == LAYER_AVGPOOL;
    if (windowed && (pool ? a->sh != a->kh || a->sw != a->kw : a->sh != 1 || a->sw != 1)) {
        if (a->sh == a->sw) ADD("stride %d", a->sh); else ADD("stride %dx%d", a->sh, a->sw);
    }
    if (windowed && (a->ph || a->pw || a->pad_same)) {
        ADD("%spad %d", o ? ", " : "", a->ph);
        if (a->pw != a->ph) ADD("x%d", a->pw);
        if (a->pad_same) ADD(" (same)");
    }
    if (windowed && (a->dh > 1 || a->dw > 1)) {
        ADD("%sdilation %d", o ? ", " : "", a->dh);
        if (a->dw != a->dh) ADD("x%d", a->dw);
    }
    if (t == LAYER_DECONV && (a->oph || a->opw)) ADD("%soutpad %d", o ? ", " : "", a->oph);
    if ((t == LAYER_CONV || t == LAYER_DECONV || t == LAYER_FC) && !a->bias) ADD("%sno bias", o ? ", " : "");
    if (t == LAYER_AVGPOOL && !a->count_pad && (a->ph || a->pw)) ADD("%spadding not counted", o ? ", " : "");
    if (a->flip) ADD("%sflipped kernel (true convolution)", o ? ", " : "");
    if (l->kind->tag == LAYER_UNPOOL) ADD("undoes %s", l->pair->name);
    if (l->folded) ADD("folded into the cross-entropy loss");
#undef ADD
}

static void summary_rows(Table *t, const Model *m)
{
    char *r = table_row(t);
    const char *head[COLS] = {"#", "layer", "type", "output", "params", "formula", "MACs", ""};
    for (int c = 0; c < COLS; c++) strcpy(r + c * CELL, head[c]);
    r = table_row(t);
    strcpy(r + 1 * CELL, "input");
    shape_text(r + 3 * CELL, CELL, m->input, false);
    bool flat = false;
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = &m->layers[i];
        LayerTag tag = l->kind->tag;
        if (tag == LAYER_FC || tag == LAYER_FLATTEN) flat = true;
        else if (tag != LAYER_RELU && tag != LAYER_SIGMOID && tag != LAYER_TANH && tag != LAYER_LEAKYRELU &&
                 tag != LAYER_SOFTMAX && tag != LAYER_DROPOUT && tag != LAYER_BATCHNORM) flat = false;
        r = table_row(t);
        snprintf(r, CELL, "%d", i + 1);
        snprintf(r + 1 * CELL, CELL, "%s", l->name);
        snprintf(r + 2 * CELL, CELL, "%s", l->title);
        shape_text(r + 3 * CELL, CELL, l->out, flat);
        summary_count(r + 4 * CELL, CELL, l->params + l->stats);
        snprintf(r + 5 * CELL, CELL, "%s", l->formula ? l->formula : "");
        summary_count(r + 6 * CELL, CELL, l->macs);
        details_text(r + 7 * CELL, CELL, l);
    }
}

static void summary_totals(const Plan *p, FILE *out)
{
    const Model *m = p->m;
    long trainable = 0, fixed = 0, macs = 0;
    for (int i = 0; i < m->nlayers; i++) {
        trainable += m->layers[i].params;
        fixed += m->layers[i].stats;
        macs += m->layers[i].macs;
    }
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    fprintf(out, "\nParameters: %s trainable + %s non-trainable = %s (%s as float32)\n",
            summary_count(a, 32, trainable), summary_count(b, 32, fixed), summary_count(c, 32, trainable + fixed),
            bytes_text(d, 32, 4.0 * (double)(trainable + fixed)));
    fprintf(out, "Forward pass per image: %s MACs = %s FLOPs (FLOPs = 2 × MACs; biases and activations not counted)\n",
            summary_count(a, 32, macs), summary_count(b, 32, 2 * macs));
    PlanMemory inf = plan_memory_inference(p);
    fprintf(out, "Memory, inference: %s per image (parameters %s, activations %s, argmax indices %s)\n",
            bytes_text(a, 32, inf.total), bytes_text(b, 32, inf.params + inf.stats), bytes_text(c, 32, inf.acts),
            bytes_text(d, 32, inf.index));
    static const char *opt[] = {[OPT_SGD] = "sgd", [OPT_MOMENTUM] = "momentum", [OPT_ADAM] = "adam"};
    PlanMemory tr = plan_memory_training(p, m->settings.batch);
    fprintf(out, "Memory, training at batch %d with %s: %s (parameters %s, gradients %s, optimizer state %s, "
            "activations and their gradients %s (%s if no two shared floats), argmax indices %s)\n",
            m->settings.batch, opt[m->settings.optimizer], bytes_text(a, 32, tr.total),
            bytes_text(b, 32, tr.params + tr.stats), bytes_text(c, 32, tr.grads), bytes_text(d, 32, tr.optimizer),
            bytes_text(e, 32, tr.acts),
            bytes_text(f, 32, 4.0 * ((double)p->act_unshared * m->settings.batch + p->act_fixed)),
            bytes_text(g, 32, tr.index));
}

void summary_print(const Plan *p, FILE *out)
{
    const Model *m = p->m;
    Table t = {.cap = m->nlayers + 2};
    t.cell = calloc((size_t)t.cap, sizeof *t.cell);
    if (!t.cell) return;
    t.right[0] = t.right[4] = t.right[6] = true;
    summary_rows(&t, m);
    fprintf(out, "%s (%s)\n\n", m->name, m->src->path);
    table_print(&t, out);
    free(t.cell);
    summary_totals(p, out);
}
