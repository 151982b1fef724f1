/* test_summary.c — `cnnc summary`'s table and the counts behind it.
 *
 * Every expected number is worked by hand from the rules of SPEC §2:
 *   conv   params = Kh·Kw·Cin·N (+ N bias), MACs = Hout·Wout·N·Kh·Kw·Cin
 *   deconv params as conv,                 MACs = Hin·Win·Cin·Kh·Kw·N
 *   fc     params = in·out (+ out),        MACs = in·out
 *   batchnorm 2·C trainable (gamma, beta) + 2·C non-trainable (running mean, var)
 * The table is compared with runs of two or more spaces read as a column
 * break (" | "), so the test pins the cells, not the padding.  The memory
 * lines come from the plan, whose scratch buffers (padded copies, transposed
 * weights) change as the kernels do: their activation figures are matched by
 * '*', while parameters, gradients, optimizer state and argmax indices are pinned. */
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "unit.h"
#include "summary.h"

/* Compiles text as path and returns summary_print's output (malloc'd). */
static char *summary_of(const char *path, const char *text)
{
    Compilation cc;
    char *err = NULL, *out = NULL;
    size_t n = 0, en = 0;
    FILE *ef = open_memstream(&err, &en);
    bool ok = compile_text(&cc, path, text, ef);
    fclose(ef);
    ck_assert_msg(ok, "%s", err);
    FILE *f = open_memstream(&out, &n);
    summary_print(cc.plan, f);
    fclose(f);
    compilation_free(&cc);
    free(err);
    return out;
}

/* Leading spaces dropped, every run of 2+ spaces made " | ", trailing spaces dropped. */
static char *cells(const char *s)
{
    char *r = malloc(strlen(s) * 2 + 1), *o = r;
    bool line_start = true;
    while (*s) {
        if (*s == ' ') {
            const char *e = s;
            while (*e == ' ') e++;
            if (!line_start && *e != '\n' && *e) {
                if (e - s >= 2) { memcpy(o, " | ", 3); o += 3; }
                else *o++ = ' ';
            }
            s = e;
            continue;
        }
        line_start = *s == '\n';
        *o++ = *s++;
    }
    *o = '\0';
    return r;
}

/* Line by line: each wanted line is an fnmatch pattern ('*' for any text). */
static bool lines_match(const char *got, const char *want)
{
    for (;;) {
        const char *ge = strchr(got, '\n'), *we = strchr(want, '\n');
        if (!ge || !we) return !ge && !we && fnmatch(want, got, 0) == 0;
        char g[1024], w[1024];
        snprintf(g, sizeof g, "%.*s", (int)(ge - got), got);
        snprintf(w, sizeof w, "%.*s", (int)(we - want), want);
        if (fnmatch(w, g, 0) != 0) return false;
        got = ge + 1;
        want = we + 1;
    }
}

static void assert_summary(const char *path, const char *text, const char *want)
{
    char *out = summary_of(path, text), *got = cells(out);
    ck_assert_msg(lines_match(got, want), "summary of %s:\n%s\nwanted:\n%s", path, got, want);
    free(got);
    free(out);
}

/* examples/assignment.cnn: the assignment's table, SPEC §2's numbers. */
START_TEST(assignment_table)
{
    static const char text[] =
        "# Assignment 3's architecture table\n"
        "input 32x32x3\n"
        "conv 3x3x10 pad=1; relu; pool 2\n"
        "conv 3x3x20 stride=3 pad=2; relu; pool 2\n"
        "flatten\n"
        "fc 10\n";
    /* conv1: (32+2-3)/1+1 = 32 -> 32x32x10; 3·3·3·10 + 10 = 280; 32·32·10·27 = 276,480
     * pool1: 16x16x10.  conv2: floor((16+4-3)/3)+1 = 6 -> 6x6x20; 3·3·10·20 + 20 = 1,820;
     * 6·6·20·90 = 64,800.  pool2: 3x3x20; flatten 180; fc1 180·10 + 10 = 1,810, MACs 1,800.
     * Totals 3,910 params (15,640 B = 15.3 KiB), 343,080 MACs, 686,160 FLOPs.
     * Memory: argmax of pool1 and pool2, 2560+180 floats = 10,960 B = 10.7 KiB per image,
     * 64·10,960 = 701,440 B = 685.0 KiB at batch 64; adam keeps 2 floats per parameter:
     * 2·15,640 = 31,280 B = 30.5 KiB.  Activations and their gradients share one arena with
     * the plan's scratch: left open here (tests/summary/fc-no-bias-sgd.cnn derives one). */
    assert_summary("assignment.cnn", text,
        "assignment (assignment.cnn)\n"
        "\n"
        "# | layer | type | output | params | formula | MACs\n"
        "input | 32×32×3\n"
        "1 | conv1 | CONV3-10 | 32×32×10 | 280 | 3×3×3×10 + 10 | 276,480 | pad 1\n"
        "2 | relu1 | RELU | 32×32×10 | 0 | 0\n"
        "3 | pool1 | POOL-2 | 16×16×10 | 0 | 0\n"
        "4 | conv2 | CONV3-20 | 6×6×20 | 1,820 | 3×3×10×20 + 20 | 64,800 | stride 3, pad 2\n"
        "5 | relu2 | RELU | 6×6×20 | 0 | 0\n"
        "6 | pool2 | POOL-2 | 3×3×20 | 0 | 0\n"
        "7 | flatten1 | FLATTEN | 180 | 0 | 0\n"
        "8 | fc1 | FC-10 | 10 | 1,810 | 180×10 + 10 | 1,800\n"
        "\n"
        "Parameters: 3,910 trainable + 0 non-trainable = 3,910 (15.3 KiB as float32)\n"
        "Forward pass per image: 343,080 MACs = 686,160 FLOPs (FLOPs = 2 × MACs; biases and activations not counted)\n"
        "Memory, inference: * per image (parameters 15.3 KiB, activations *, argmax indices 10.7 KiB)\n"
        "Memory, training at batch 64 with adam: * (parameters 15.3 KiB, gradients 15.3 KiB, optimizer state "
        "30.5 KiB, activations and their gradients * (* if no two shared floats), argmax indices 685.0 KiB)\n");
}
END_TEST

/* Assignment 3, question 2. */
START_TEST(assignment_205)
{
    /* (205-10)/3+1 = 66 -> 66x66x96; 96·(10·10·10) + 96 = 96,096; 66·66·96·1,000 = 418,176,000.
     * 96,096·4 = 384,384 B = 375.4 KiB; adam state 768,768 B = 750.8 KiB; no activation
     * gradient (the only layer's input is the image) and no argmax.  The output alone is
     * 418,176 floats = 1.6 MiB per image. */
    assert_summary("a205.cnn", "input 205x205x10\nconv 10x10x96 stride=3\n",
        "a205 (a205.cnn)\n"
        "\n"
        "# | layer | type | output | params | formula | MACs\n"
        "input | 205×205×10\n"
        "1 | conv1 | CONV10-96 | 66×66×96 | 96,096 | 10×10×10×96 + 96 | 418,176,000 | stride 3\n"
        "\n"
        "Parameters: 96,096 trainable + 0 non-trainable = 96,096 (375.4 KiB as float32)\n"
        "Forward pass per image: 418,176,000 MACs = 836,352,000 FLOPs (FLOPs = 2 × MACs; biases and activations not counted)\n"
        "Memory, inference: * per image (parameters 375.4 KiB, activations *, argmax indices 0 B)\n"
        "Memory, training at batch 64 with adam: * (parameters 375.4 KiB, gradients 375.4 KiB, optimizer state "
        "750.8 KiB, activations and their gradients * (* if no two shared floats), argmax indices 0 B)\n");
}
END_TEST

typedef struct { const char *text; long params, stats, macs; const char *formula; long h, w, c; } CountCase;

/* The last layer of each model is the one measured. */
static const CountCase count_cases[] = {
    /* conv with and without bias: 3·3·2·4 (+4) */
    {"input 6x6x2; conv 3x3x4", 76, 0, 4 * 4 * 4 * 18, "3×3×2×4 + 4", 4, 4, 4},
    {"input 6x6x2; conv 3x3x4 bias=no", 72, 0, 4 * 4 * 4 * 18, "3×3×2×4", 4, 4, 4},
    /* non-square kernel, stride 2x1: h (7-3)/2+1 = 3, w (7-5)/1+1 = 3; MACs 3·3·2·(3·5·1) */
    {"input 7x7x1; conv 3x5x2 stride=2x1", 3 * 5 * 2 + 2, 0, 3 * 3 * 2 * 15, "3×5×1×2 + 2", 3, 3, 2},
    /* dilation 2 spans 5: 9-5+1 = 5; MACs count the 9 taps, not the span: 5·5·2·9 = 450 */
    {"input 9x9x1; conv 3x3x2 dilation=2", 20, 0, 450, "3×3×1×2 + 2", 5, 5, 2},
    /* fc after an image flattens implicitly: in = 2·2·3 = 12 */
    {"input 2x2x3; fc 5", 65, 0, 60, "12×5 + 5", 1, 1, 5},
    {"input 2x2x3; dense 5 bias=no", 60, 0, 60, "12×5", 1, 1, 5},
    /* batchnorm: 2·6 trainable, 2·6 running statistics, no MACs counted */
    {"input 4x4x6; batchnorm", 12, 12, 0, "2×6 (+ 2×6 running)", 4, 4, 6},
    /* deconv: h (5-1)·2 + 3 = 11, w (7-1)·2 + 2 = 14; params 3·2·3·4 + 4 = 76;
     * MACs Hin·Win·Cin·Kh·Kw·N = 5·7·3·3·2·4 = 2,520 */
    {"input 5x7x3; deconv 3x2x4 stride=2", 76, 0, 2520, "3×2×3×4 + 4", 11, 14, 4},
    /* deconv with pad and outpad: (4-1)·2 - 2·1 + (3-1) + 1 + 1 = 8; MACs 4·4·2·3·3·1 = 288 */
    {"input 4x4x2; deconv 3x3x1 stride=2 pad=1 outpad=1 bias=no", 18, 0, 288, "3×3×2×1", 8, 8, 1},
    /* pools and activations have neither parameters nor counted MACs */
    {"input 4x4x2; pool 2", 0, 0, 0, NULL, 2, 2, 2},
    {"input 4x4x2; avgpool 3 stride=1 pad=1", 0, 0, 0, NULL, 4, 4, 2},
    {"input 4x4x2; globalavgpool", 0, 0, 0, NULL, 1, 1, 2},
    {"input 4x4x2; leakyrelu 0.2", 0, 0, 0, NULL, 4, 4, 2},
};

START_TEST(layer_counts)
{
    const CountCase *k = &count_cases[_i];
    Compilation cc;
    char *err = NULL;
    bool ok = unit_compile(&cc, k->text, &err);
    ck_assert_msg(ok, "%s: %s", k->text, err);
    const Layer *l = &cc.model->layers[cc.model->nlayers - 1];
    ck_assert_msg(l->params == k->params && l->stats == k->stats && l->macs == k->macs,
                  "%s: params %ld stats %ld macs %ld", k->text, l->params, l->stats, l->macs);
    ck_assert_msg(l->out.h == k->h && l->out.w == k->w && l->out.c == k->c, "%s: %ldx%ldx%ld", k->text,
                  l->out.h, l->out.w, l->out.c);
    if (k->formula) ck_assert_str_eq(l->formula, k->formula);
    else ck_assert_ptr_null(l->formula);
    compilation_free(&cc);
    free(err);
}
END_TEST

/* Batchnorm's running statistics are counted apart from the trainable parameters. */
START_TEST(totals_split_trainable)
{
    /* conv 3·3·3·4 = 108 (no bias); bn 8 + 8; deconv 2·2·4·2 + 2 = 34.
     * trainable 108 + 8 + 34 = 150, non-trainable 8, total 158 = 632 B.
     * MACs: conv 8·8·4·27 = 6,912; deconv 4·4·4·2·2·2 = 512; 7,424 and 14,848 FLOPs. */
    char *out = summary_of("bn.cnn", "input 8x8x3; conv 3x3x4 pad=1 bias=no; batchnorm; relu; pool 2;"
                                     " deconv 2x2x2 stride=2; sigmoid; loss mse");
    ck_assert_ptr_nonnull(strstr(out, "Parameters: 150 trainable + 8 non-trainable = 158 (632 B as float32)\n"));
    ck_assert_ptr_nonnull(strstr(out, "Forward pass per image: 7,424 MACs = 14,848 FLOPs"));
    free(out);
}
END_TEST

START_TEST(thousands_separators)
{
    char buf[64];
    ck_assert_str_eq(summary_count(buf, sizeof buf, 0), "0");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 7), "7");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 999), "999");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 1000), "1,000");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 96096), "96,096");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 343080), "343,080");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 418176000), "418,176,000");
    ck_assert_str_eq(summary_count(buf, sizeof buf, 1234567), "1,234,567");
    ck_assert_str_eq(summary_count(buf, sizeof buf, -1234), "-1,234");
    ck_assert_str_eq(summary_count(buf, sizeof buf, -999), "-999");
    ck_assert_str_eq(summary_count(buf, sizeof buf, LONG_MAX), "9,223,372,036,854,775,807");
    ck_assert_str_eq(summary_count(buf, sizeof buf, LONG_MIN), "-9,223,372,036,854,775,808");
}
END_TEST

START_TEST(thousands_separators_small_buffer)
{
    char buf[8];
    memset(buf, 'z', sizeof buf);
    summary_count(buf, 5, 1234567);     /* truncated, but terminated inside its 5 bytes */
    ck_assert(memchr(buf, '\0', 5) != NULL);
    ck_assert_int_eq(buf[5], 'z');
}
END_TEST

Suite *summary_suite(void)
{
    Suite *s = suite_create("summary");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, assignment_table);
    tcase_add_test(tc, assignment_205);
    tcase_add_loop_test(tc, layer_counts, 0, (int)(sizeof count_cases / sizeof *count_cases));
    tcase_add_test(tc, totals_split_trainable);
    tcase_add_test(tc, thousands_separators);
    tcase_add_test(tc, thousands_separators_small_buffer);
    suite_add_tcase(s, tc);
    return s;
}
