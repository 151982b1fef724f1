/* test_shapes.c — the output-size rules, table-driven, with every expected
 * value worked by hand from the formula
 *     conv:   floor((n + 2p − d(k−1) − 1)/s) + 1
 *     deconv: (n − 1)s − 2p + d(k−1) + outpad + 1
 * and from the course's worked examples. */
#include <stdlib.h>
#include "unit.h"

typedef struct { long n, k, s, p, d, want; const char *why; } ConvCase;

static const ConvCase conv_cases[] = {
    {32, 3, 1, 1, 1, 32, "assignment conv1: (32+2-3)/1+1"},
    {16, 3, 3, 2, 1, 6, "assignment conv2: floor((16+4-3)/3)+1 = floor(17/3)+1"},
    {205, 10, 3, 0, 1, 66, "assignment 205: (205-10)/3+1"},
    {7, 3, 2, 0, 1, 3, "notes2: floor((7-3)/2)+1 = 3, not the notes' 2"},
    {6, 3, 1, 0, 1, 4, "notes2 edge example: 6-3+1"},
    {28, 5, 1, 0, 1, 24, "notes4: 28x28 with 5x5 -> 24"},
    {16, 5, 1, 0, 1, 12, "slides: 16x16 with 5x5 -> 12"},
    {28, 3, 1, 0, 2, 24, "dilation 2 spans 5: 28-5+1"},
    {24, 3, 1, 2, 2, 24, "dilation 2 with pad 2 keeps 24"},
    {5, 2, 2, 1, 1, 3, "lab5 s=2 p=1: floor((5+2-2)/2)+1"},
    {4, 2, 2, 0, 1, 2, "2x2 pool stride 2 on 4"},
    {3, 5, 1, 0, 1, 0, "kernel larger than input: no output"},
};

static const ConvCase deconv_cases[] = {   /* k, s, p, d; want uses outpad 0 unless noted */
    {4, 3, 2, 1, 1, 7, "(4-1)*2 - 2 + 2 + 1"},
    {2, 3, 2, 0, 1, 5, "slides' transposed conv: 2x2 -> 5x5 with a 3x3 kernel, stride 2"},
    {3, 3, 1, 0, 1, 5, "stride 1 no pad: n + k - 1 (full convolution size)"},
    {3, 3, 2, 0, 2, 9, "dilation 2: (3-1)*2 + 2*2 + 1"},
};

START_TEST(conv_output_sizes)
{
    const ConvCase *c = &conv_cases[_i];
    ck_assert_msg(conv_out_size(c->n, c->k, c->s, c->p, c->d) == c->want, "%s: got %ld", c->why,
                  conv_out_size(c->n, c->k, c->s, c->p, c->d));
}
END_TEST

START_TEST(deconv_output_sizes)
{
    const ConvCase *c = &deconv_cases[_i];
    ck_assert_msg(deconv_out_size(c->n, c->k, c->s, c->p, c->d, 0) == c->want, "%s", c->why);
}
END_TEST

START_TEST(deconv_outpad_adds_one_row)
{
    ck_assert_int_eq(deconv_out_size(4, 3, 2, 1, 1, 1), 8);   /* (4-1)*2 - 2 + 2 + 1 + 1 */
}
END_TEST

/* The assignment's table: every layer's shape and parameter count. */
START_TEST(assignment_table)
{
    Compilation cc;
    char *err = NULL;
    bool ok = unit_compile(&cc, "input 32x32x3; conv 3x3x10 pad=1; relu; pool 2; conv 3x3x20 stride=3 pad=2; relu;"
                                " pool 2; flatten; fc 10", &err);
    ck_assert_msg(ok, "%s", err);
    const Model *m = cc.model;
    static const long want[][4] = {{32, 32, 10, 280}, {32, 32, 10, 0}, {16, 16, 10, 0}, {6, 6, 20, 1820},
                                   {6, 6, 20, 0}, {3, 3, 20, 0}, {1, 1, 180, 0}, {1, 1, 10, 1810}};
    ck_assert_int_eq(m->nlayers, 8);
    for (int i = 0; i < 8; i++) {
        const Layer *l = &m->layers[i];
        ck_assert_msg(l->out.h == want[i][0] && l->out.w == want[i][1] && l->out.c == want[i][2] &&
                      l->params == want[i][3], "layer %d: %ldx%ldx%ld, %ld params", i, l->out.h, l->out.w,
                      l->out.c, l->params);
    }
    ck_assert_int_eq(m->layers[0].macs + m->layers[3].macs + m->layers[7].macs, 276480 + 64800 + 1800);
    compilation_free(&cc);
    free(err);
}
END_TEST

Suite *shapes_suite(void)
{
    Suite *s = suite_create("shapes");
    TCase *tc = tcase_create("formulas");
    tcase_add_loop_test(tc, conv_output_sizes, 0, (int)(sizeof conv_cases / sizeof *conv_cases));
    tcase_add_loop_test(tc, deconv_output_sizes, 0, (int)(sizeof deconv_cases / sizeof *deconv_cases));
    tcase_add_test(tc, deconv_outpad_adds_one_row);
    tcase_add_test(tc, assignment_table);
    suite_add_tcase(s, tc);
    return s;
}
