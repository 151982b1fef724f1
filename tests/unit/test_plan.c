/* test_plan.c — the plan's choice of which padded convs run margin-free
 * (plan.c: conv_margin_free): no zero-padded copy of the input, so no
 * per-image buffer for it, and backward reads the layer's input instead.
 *
 * The rule, as each case below works it by hand: a conv with padding is
 * margin-free unless something else needs the padded copy —
 *   the pixel forward (at most 4 input and 12 output channels, stride 1
 *     along rows, at least 8 output columns) reads channel planes of it;
 *   the direct gathered dL/din (stride 1, pad ≤ (k−1)·dilation, dL/din
 *     needed: not for the first layer) takes the relu mask from it, unless
 *     the conv is Winograd's (3×3, stride 1, pad 1, channels in whole
 *     16-float vectors), whose kernels read the input in place and take the
 *     mask from it —
 * or dL/dweight's per-image copy, (H+2P)·(W+2P)·C floats, would pass the
 * 256 KiB a generated kernel keeps on a thread's stack.
 *
 * Last, the max pools a Winograd conv's forward may apply as it stores
 * (plan.c: plan_fused_pools). */
#include <stdlib.h>
#include <string.h>
#include "tiles.h"
#include "unit.h"

/* The layer named name of the model cc planned. */
static const PlanLayer *layer_named(const Compilation *cc, const char *name)
{
    for (int i = 0; i < cc->plan->nlayers; i++)
        if (!strcmp(cc->plan->layers[i].l->name, name)) return &cc->plan->layers[i];
    ck_abort_msg("no layer %s", name);
    return NULL;
}

/* The plan's layer named name in the model text (the model must be valid). */
static const PlanLayer *planned(Compilation *cc, const char *text, const char *name)
{
    char *err = NULL;
    bool ok = unit_compile(cc, text, &err);
    ck_assert_msg(ok, "%s", err);
    free(err);
    return layer_named(cc, name);
}

static void expect_margin_free(const char *text, const char *name, bool margin_free)
{
    Compilation cc;
    const PlanLayer *q = planned(&cc, text, name);
    ck_assert_msg(q->margin_free == margin_free, "%s: margin_free %d, expected %d", name, q->margin_free,
                  margin_free);
    if (margin_free) {
        ck_assert_int_eq(q->pad_off, -1);   /* no padded copy in the activations */
        ck_assert(q->bwd_reads_in);         /* dL/dweight pads its own copy from the input */
    }
    compilation_free(&cc);
}

static const char assignment[] = "input 32x32x3\n"
                                 "conv 3x3x10 pad=1; relu; pool 2\n"
                                 "conv 3x3x20 stride=3 pad=2; relu; pool 2\n"
                                 "fc 10\n";

/* conv2: stride 3 (no gather, no Winograd), 20 outputs (no pixel forward),
 * its copy 20·20·10·4 = 16,000 bytes. */
START_TEST(assignment_conv2_is_margin_free) { expect_margin_free(assignment, "conv2", true); }
END_TEST

/* conv1: 3 inputs, 10 outputs, stride 1, 32 columns: the pixel forward may take it. */
START_TEST(assignment_conv1_keeps_its_copy) { expect_margin_free(assignment, "conv1", false); }
END_TEST

static const char vgg[] = "input 32x32x3\n"
                          "conv 3x3x32 pad=1; relu\n"
                          "conv 3x3x32 pad=1; relu; pool 2\n"
                          "fc 10\n";

/* conv1: 32 outputs (no pixel forward), 3 inputs (no Winograd), the first
 * layer (no dL/din, so no gather): margin-free, its copy 34·34·3·4 bytes. */
START_TEST(vgg_conv1_is_margin_free) { expect_margin_free(vgg, "conv1", true); }
END_TEST

/* conv2: 32 → 32, 3×3, stride 1, pad 1, dL/din gathered: Winograd's, which
 * reads the input in place and applies the mask of relu1 (its input > 0). */
START_TEST(vgg_conv2_is_margin_free)
{
    expect_margin_free(vgg, "conv2", true);
    Compilation cc;
    ck_assert(planned(&cc, vgg, "conv2")->relu_mask);
    compilation_free(&cc);
}
END_TEST

/* The same with 20 outputs (not whole 16-float vectors, so no Winograd): the
 * direct gathered dL/din takes relu1's mask from the padded copy. */
START_TEST(gathering_conv_keeps_its_copy)
{
    expect_margin_free("input 32x32x3\nconv 3x3x32 pad=1; relu\nconv 3x3x20 pad=1\nfc 10\n", "conv2", false);
}
END_TEST

/* 200·200·4 input, pad 1, stride 2, 16 outputs: otherwise margin-free, but
 * the copy would be 202·202·4·4 = 652,864 bytes > 262,144. */
START_TEST(large_image_keeps_its_copy)
{
    expect_margin_free("input 200x200x4\nconv 3x3x16 stride=2 pad=1\nfc 10\n", "conv1", false);
}
END_TEST

/* No padding: nothing to pad, and no copy either way. */
START_TEST(unpadded_conv_has_no_copy)
{
    Compilation cc;
    const PlanLayer *q = planned(&cc, "input 12x12x3\nconv 3x3x16 stride=2\nfc 10\n", "conv1");
    ck_assert(!q->margin_free);
    ck_assert_int_eq(q->pad_off, -1);
    compilation_free(&cc);
}
END_TEST

/* ---- the 2×2 max pool a Winograd conv applies (plan.c: plan_fused_pools) ----
 * vgg's conv2 (Winograd-shaped, its relu fused) is followed by pool 2: 2×2,
 * stride 2, over a 32×32 output that 2×2 blocks tile. */
static bool overlaps(const PlanLayer *a, const PlanLayer *b)
{
    long as = shape_size(a->l->out), bs = shape_size(b->l->out);
    return a->out_off < b->out_off + bs && b->out_off < a->out_off + as;
}

START_TEST(vgg_conv2_may_apply_pool1)
{
    Compilation cc;
    const PlanLayer *conv = planned(&cc, vgg, "conv2"), *pool = layer_named(&cc, "pool1");
    ck_assert_ptr_eq(conv->pool_after, pool);
    ck_assert_ptr_eq(pool->pooled_by, conv);
    /* the pool's output is written while conv2 reads relu1's output (conv1's buffer, in place) */
    ck_assert(!overlaps(pool, layer_named(&cc, "relu1")));
    compilation_free(&cc);
}
END_TEST

/* Backward, conv2 reads pool1's dL/dout (conv3's din) through pool1's
 * argmax while it writes its own din: the two may not share floats.  In
 * vgg-small (examples/), where pool1's backward had been conv3's din's last
 * reader, the plan had put conv3's din (an image's floats 77824 … 86015)
 * inside conv2's (65536 … 98303). */
static const char vgg_small[] = "input 32x32x3\n"
                                "conv 3x3x32 pad=1; relu\n"
                                "conv 3x3x32 pad=1; relu; pool 2\n"
                                "conv 3x3x64 pad=1; relu\n"
                                "conv 3x3x64 pad=1; relu; pool 2\n"
                                "fc 256; relu\n"
                                "fc 10\n";

START_TEST(vgg_small_pool1_dout_lives_to_conv2_backward)
{
    Compilation cc;
    const PlanLayer *conv2 = planned(&cc, vgg_small, "conv2"), *conv3 = layer_named(&cc, "conv3");
    ck_assert_ptr_eq(conv2->pool_after, layer_named(&cc, "pool1"));
    long s2 = shape_size(conv2->l->in), s3 = shape_size(conv3->l->in);
    ck_assert_msg(!(conv2->din_off < conv3->din_off + s3 && conv3->din_off < conv2->din_off + s2),
                  "conv2's din [%ld, +%ld) overlaps conv3's [%ld, +%ld)", conv2->din_off, s2, conv3->din_off, s3);
    compilation_free(&cc);
}
END_TEST

static void expect_no_pool_fusion(const char *text, const char *pool_name)
{
    Compilation cc;
    const PlanLayer *pool = planned(&cc, text, pool_name);
    ck_assert_ptr_null(pool->pooled_by);
    for (int i = 0; i < cc.plan->nlayers; i++) ck_assert_ptr_null(cc.plan->layers[i].pool_after);
    compilation_free(&cc);
}

/* A 3×3 window over a 30×30 output: not the 2×2 blocks Winograd's tiles are. */
START_TEST(pool3_is_not_fused)
{
    expect_no_pool_fusion("input 30x30x16\nconv 3x3x32 pad=1; relu; pool 3\nfc 10\n", "pool1");
}
END_TEST

/* 20 outputs: not whole 16-float vectors, so no Winograd (plan_conv_winograd). */
START_TEST(pool_after_direct_conv_is_not_fused)
{
    expect_no_pool_fusion("input 16x16x16\nconv 3x3x20 pad=1; relu; pool 2\nfc 10\n", "pool1");
}
END_TEST

/* A sigmoid is not fused into the conv, so the pool reads a buffer of its own. */
START_TEST(pool_after_sigmoid_is_not_fused)
{
    expect_no_pool_fusion("input 16x16x16\nconv 3x3x32 pad=1; sigmoid; pool 2\nfc 10\n", "pool1");
}
END_TEST

/* Winograd's forward of 384 → 16 channels on 4×4 = 16 blocks of 2×2 fits
 * 8-float vectors but not 16-float ones (tiles.c), worked by hand: with 8
 * floats, 16 registers, the 2 output vectors take tiles of (16 − 2 − 2)/2 = 6
 * blocks, so chunks of 12 blocks (twice the tile; 64 KiB / (16·4·400 bytes)
 * rounds up to less), V and M 16·4·(12·400 + 32) = 309,248 bytes ≤ 320 KiB;
 * with 16 floats, 1 vector, tiles of 8, chunks of 16: 411,648 bytes.  So the
 * emitter's choice depends on the host, and the plan, which may not, leaves
 * the pool alone. */
START_TEST(pool_after_conv_winograd_fits_at_one_width_is_not_fused)
{
    expect_no_pool_fusion("input 8x8x384\nconv 3x3x16 pad=1; relu; pool 2\nfc 10\n", "pool1");
    Layer l = {.in = {8, 8, 384}, .out = {8, 8, 16}};
    l.a.n = 16;
    ck_assert(wino_fits(8, 2, &l, false));
    ck_assert(!wino_fits(16, 2, &l, false));
}
END_TEST

/* Fused, nothing stores conv2's output (nor relu2's, the same buffer): it has
 * no floats; pool1's dL/din is its dL/dout, conv3's din. */
START_TEST(vgg_small_fused_buffers)
{
    Compilation cc;
    const PlanLayer *conv2 = planned(&cc, vgg_small, "conv2");
    ck_assert(conv2->out_unstored && layer_named(&cc, "relu2")->out_unstored);
    ck_assert(!layer_named(&cc, "conv3")->out_unstored);
    ck_assert_int_eq(layer_named(&cc, "pool1")->din_off, layer_named(&cc, "conv3")->din_off);
    ck_assert_int_eq(layer_named(&cc, "pool2")->din_off, layer_named(&cc, "fc1")->din_off);
    compilation_free(&cc);
}
END_TEST

/* A batchnorm's relu works in place over its output and is applied by it;
 * a 2×2 max pool after it is applied by the batchnorm too when its windows
 * tile the output (28×28 → 14×14), not over 7×7 (pool3's 3×3 would leave a
 * row and a column out). */
START_TEST(batchnorm_applies_relu_and_pool)
{
    Compilation cc;
    const char *text = "input 28x28x1\n"
                       "conv 3x3x32 pad=1 bias=no; batchnorm; relu; pool 2\n"
                       "conv 3x3x64 pad=1 bias=no; batchnorm; relu; pool 2\n"
                       "conv 3x3x16 pad=1 bias=no; batchnorm; relu; pool 2\n"
                       "fc 10\n";
    const PlanLayer *bn1 = planned(&cc, text, "bn1"), *relu1 = layer_named(&cc, "relu1");
    ck_assert(bn1->fused_relu && relu1->in_place);
    ck_assert_str_eq(relu1->done_by, "bn1");
    ck_assert(bn1->pool_after == layer_named(&cc, "pool1") && layer_named(&cc, "pool1")->pooled_by == bn1);
    ck_assert(bn1->out_unstored && relu1->out_unstored);
    ck_assert(layer_named(&cc, "bn2")->pool_after == layer_named(&cc, "pool2"));   /* 14×14 → 7×7 */
    const PlanLayer *bn3 = layer_named(&cc, "bn3");   /* 7×7 → 3×3 */
    ck_assert(bn3->fused_relu && !bn3->pool_after && !bn3->out_unstored);
    ck_assert(!layer_named(&cc, "pool3")->pooled_by);
    compilation_free(&cc);
}
END_TEST

/* ---- a strided conv's dL/din by phases (plan.c: conv_din_phases) ----
 * Input column ix reads output column (ix + PW − kx·DW)/SW at the taps where
 * SW divides ix + PW − kx·DW.  all-conv's conv2: 28 columns, 3×3, stride 2,
 * pad 1, 14 output columns.  ix + 1 − kx runs from −1 (ix = 0, kx = 2: odd,
 * no tap) up, so no column left of 0 is read: no zero column there; ix = 27,
 * kx = 0 reads column 28/2 = 14, one past the outputs: 15 columns. */
static const char all_conv[] = "input 28x28x1\n"
                               "conv 3x3x16 pad=1; relu\n"
                               "conv 3x3x16 stride=2 pad=1; relu\n"
                               "conv 1x1x10\n"
                               "globalavgpool\n";

START_TEST(strided_conv_gathers_by_phases)
{
    Compilation cc;
    const PlanLayer *conv2 = planned(&cc, all_conv, "conv2");
    ck_assert(conv2->din_phases && !conv2->din_gather);
    ck_assert_int_eq(plan_phase_dpad_left(conv2->l), 0);
    ck_assert_int_eq(plan_phase_dpad_width(conv2->l), 15);
    /* and so applies relu1's mask: relu1's dL/din is its dL/dout */
    ck_assert(conv2->relu_mask);
    ck_assert_str_eq(layer_named(&cc, "relu1")->mask_by, "conv2");
    compilation_free(&cc);
}
END_TEST

/* conv1: stride 3, 5×5, pad 2 over 16 columns, 6 outputs: ix + 2 − kx runs
 * from −2 (not a multiple of 3) up, so from column 0; ix = 15 reads
 * 17/3 = 5, inside: 6 columns.  conv2: stride 2, 3×3, no padding, over
 * conv1's 6 columns, 2 outputs: ix = 0, kx = 2 reads −2/2 = −1, one zero
 * column; ix = 5 reads 5/2 = 2, one past: 1 + 3 = 4 columns. */
START_TEST(phase_buffer_columns)
{
    Compilation cc;
    const PlanLayer *q = planned(&cc, "input 14x16x40\nconv 5x5x32 stride=3 pad=2\nconv 3x3x8 stride=2\nfc 3\n",
                                 "conv1");
    ck_assert_int_eq(plan_phase_dpad_left(q->l), 0);
    ck_assert_int_eq(plan_phase_dpad_width(q->l), 6);
    const PlanLayer *r = layer_named(&cc, "conv2");
    ck_assert_int_eq(plan_phase_dpad_left(r->l), 1);
    ck_assert_int_eq(plan_phase_dpad_width(r->l), 4);
    compilation_free(&cc);
}
END_TEST

/* Windows that do not overlap (stride 3 = kernel, the assignment's conv2)
 * have one tap a phase: the windows path takes them, and no relu mask. */
START_TEST(non_overlapping_windows_take_no_phases)
{
    Compilation cc;
    const PlanLayer *q = planned(&cc, "input 32x32x3\nconv 3x3x16 pad=1; relu\nconv 3x3x20 stride=3 pad=2\nfc 10\n",
                                 "conv2");
    ck_assert(!q->din_phases && !q->relu_mask);
    compilation_free(&cc);
}
END_TEST

Suite *plan_suite(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("margin_free");
    tcase_add_test(tc, assignment_conv2_is_margin_free);
    tcase_add_test(tc, assignment_conv1_keeps_its_copy);
    tcase_add_test(tc, vgg_conv1_is_margin_free);
    tcase_add_test(tc, vgg_conv2_is_margin_free);
    tcase_add_test(tc, gathering_conv_keeps_its_copy);
    tcase_add_test(tc, large_image_keeps_its_copy);
    tcase_add_test(tc, unpadded_conv_has_no_copy);
    suite_add_tcase(s, tc);
    TCase *pools = tcase_create("winograd_pools");
    tcase_add_test(pools, vgg_conv2_may_apply_pool1);
    tcase_add_test(pools, vgg_small_pool1_dout_lives_to_conv2_backward);
    tcase_add_test(pools, pool3_is_not_fused);
    tcase_add_test(pools, pool_after_direct_conv_is_not_fused);
    tcase_add_test(pools, pool_after_sigmoid_is_not_fused);
    tcase_add_test(pools, pool_after_conv_winograd_fits_at_one_width_is_not_fused);
    tcase_add_test(pools, vgg_small_fused_buffers);
    tcase_add_test(pools, batchnorm_applies_relu_and_pool);
    suite_add_tcase(s, pools);
    TCase *phases = tcase_create("din_phases");
    tcase_add_test(phases, strided_conv_gathers_by_phases);
    tcase_add_test(phases, phase_buffer_columns);
    tcase_add_test(phases, non_overlapping_windows_take_no_phases);
    suite_add_tcase(s, phases);
    return s;
}
