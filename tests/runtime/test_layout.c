/* test_layout.c — PyTorch <-> internal layouts (the perm rule of cnnrt.h),
 * index reporting, and the seeded init.  Expected positions are computed
 * here from the layouts' definitions, not by the code under test. */
#include "rt_test.h"

/* conv weight, PyTorch [O=2][I=3][KH=4][KW=5], kept as [kh][kw][i][o]:
 * internal dim 0 = view dim 2, 1 = 3, 2 = 1, 3 = 0. */
static const CnnTensor conv = {.name = "conv1.weight", .role = CNN_TENSOR_PARAM, .ndim = 4, .shape = {2, 3, 4, 5},
                               .view = {2, 3, 4, 5}, .perm = {2, 3, 1, 0}, .size = 120};
/* fc weight, PyTorch [10][C*H*W = 2*3*3] seen as [10][2][3][3] and kept as
 * [h][w][c][out] (what an NHWC input wants). */
static const CnnTensor fc = {.name = "fc1.weight", .role = CNN_TENSOR_PARAM, .ndim = 2, .shape = {10, 18},
                             .view = {10, 2, 3, 3}, .perm = {2, 3, 1, 0}, .size = 180};

START_TEST(conv_to_internal)
{
    float torch[120], internal[120], back[120];
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < 3; i++)
            for (int kh = 0; kh < 4; kh++)
                for (int kw = 0; kw < 5; kw++) torch[((o * 3 + i) * 4 + kh) * 5 + kw] = 1000 * o + 100 * i + 10 * kh + kw;
    cnn_tensor_from_torch(&conv, torch, internal);
    for (int kh = 0; kh < 4; kh++)
        for (int kw = 0; kw < 5; kw++)
            for (int i = 0; i < 3; i++)
                for (int o = 0; o < 2; o++)
                    ck_assert_float_eq(internal[((kh * 5 + kw) * 3 + i) * 2 + o], 1000 * o + 100 * i + 10 * kh + kw);
    cnn_tensor_to_torch(&conv, internal, back);
    ck_assert_mem_eq(back, torch, sizeof torch);
    /* internal element [kh=3][kw=1][i=2][o=1] is torch [1,2,3,1] */
    long k = ((3 * 5 + 1) * 3 + 2) * 2 + 1;
    char where[64];
    cnn_tensor_format_index(&conv, cnn_tensor_torch_offset(&conv, k), where, sizeof where);
    ck_assert_str_eq(where, "[1,2,3,1]");
}
END_TEST

START_TEST(fc_flatten_order)
{
    float torch[180], internal[180];
    for (int k = 0; k < 180; k++) torch[k] = (float)k;
    cnn_tensor_from_torch(&fc, torch, internal);
    /* torch fc input index = c*9 + h*3 + w (torch.flatten of C,H,W) */
    for (int h = 0; h < 3; h++)
        for (int w = 0; w < 3; w++)
            for (int c = 0; c < 2; c++)
                for (int o = 0; o < 10; o++)
                    ck_assert_float_eq(internal[((h * 3 + w) * 2 + c) * 10 + o], o * 18 + c * 9 + h * 3 + w);
    char where[64];
    long k = ((2 * 3 + 1) * 2 + 1) * 10 + 7;   /* h=2 w=1 c=1 o=7 -> torch [7, 9+6+1] */
    cnn_tensor_format_index(&fc, cnn_tensor_torch_offset(&fc, k), where, sizeof where);
    ck_assert_str_eq(where, "[7,16]");
}
END_TEST

/* The same seed gives the same PyTorch-layout weights whatever the internal
 * layout: a model with fc1.weight kept transposed and one kept as is. */
START_TEST(init_is_layout_independent)
{
    CnnTensor t[2] = {
        {.name = "a", .role = CNN_TENSOR_PARAM, .ndim = 2, .shape = {3, 4}, .view = {1, 1, 3, 4}, .perm = {0, 1, 3, 2},
         .offset = 0, .size = 12, .init_lo = -1, .init_hi = 1},
        {.name = "b", .role = CNN_TENSOR_PARAM, .ndim = 1, .shape = {3}, .view = {1, 1, 1, 3}, .perm = {0, 1, 2, 3},
         .offset = 12, .size = 3, .init_lo = 0.5f, .init_hi = 0.5f},
    };
    CnnModel m1 = cnn_model, m2 = cnn_model;
    m1.tensors = t;
    m1.ntensors = 2;
    m1.stat_floats = 0;
    CnnTensor u[2] = {t[0], t[1]};
    u[0].perm[2] = 2, u[0].perm[3] = 3;
    m2.tensors = u;
    m2.ntensors = 2;
    m2.stat_floats = 0;
    CnnNet n1, n2;
    CnnErr e;
    CnnRng r1, r2;
    ck_assert_msg(cnn_net_alloc(&n1, &m1, 1, &e), "%s", e.msg);
    ck_assert_msg(cnn_net_alloc(&n2, &m2, 1, &e), "%s", e.msg);
    cnn_rng_seed(&r1, 7);
    cnn_rng_seed(&r2, 7);
    cnn_net_init(&n1, &r1);
    cnn_net_init(&n2, &r2);
    float a1[12], a2[12];
    cnn_tensor_to_torch(&t[0], n1.ctx.params, a1);
    cnn_tensor_to_torch(&u[0], n2.ctx.params, a2);
    ck_assert_mem_eq(a1, a2, sizeof a1);
    ck_assert_float_ne(n1.ctx.params[1], n2.ctx.params[1]);   /* stored differently */
    for (int i = 0; i < 12; i++) ck_assert(a1[i] >= -1 && a1[i] <= 1);
    ck_assert_float_eq(n1.ctx.params[13], 0.5f);
    cnn_net_free(&n1);
    cnn_net_free(&n2);
}
END_TEST

START_TEST(descriptor_checks)
{
    CnnTensor bad = conv;
    CnnModel m = cnn_model;
    CnnErr e;
    m.tensors = &bad;
    m.ntensors = 1;
    m.param_floats = 120;
    bad.perm[0] = 3;   /* {3,3,1,0}: not a permutation */
    ck_assert(!cnn_model_validate(&m, &e));
    ck_assert_msg(strstr(e.msg, "perm"), "%s", e.msg);
    bad = conv;
    bad.offset = 1;    /* runs past param_floats */
    ck_assert(!cnn_model_validate(&m, &e));
    bad = conv;
    ck_assert_msg(cnn_model_validate(&m, &e), "%s", e.msg);
}
END_TEST

START_TEST(rng_shuffle_is_a_permutation)
{
    CnnRng r;
    long idx[1000];
    int seen[1000] = {0};
    cnn_rng_seed(&r, 3);
    for (long i = 0; i < 1000; i++) idx[i] = i;
    cnn_rng_shuffle(&r, idx, 1000);
    int moved = 0;
    for (long i = 0; i < 1000; i++) seen[idx[i]]++, moved += idx[i] != i;
    for (long i = 0; i < 1000; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 900);
    /* xoshiro256** reference: seed state {1,2,3,4} gives 11520, 0, 1509978240 */
    CnnRng x = {{1, 2, 3, 4}};
    ck_assert_uint_eq(cnn_rng_next(&x), 11520);
    ck_assert_uint_eq(cnn_rng_next(&x), 0);
    ck_assert_uint_eq(cnn_rng_next(&x), 1509978240);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("layout");
    TCase *t = tcase_create("layout");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, conv_to_internal);
    tcase_add_test(t, fc_flatten_order);
    tcase_add_test(t, init_is_layout_independent);
    tcase_add_test(t, descriptor_checks);
    tcase_add_test(t, rng_shuffle_is_a_permutation);
    suite_add_tcase(s, t);
    return rt_main(s);
}
