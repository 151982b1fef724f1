/* test_optim.c — optimizers and losses against numbers worked out by hand.
 *
 * Adam, the course's example (notes 4, "one Adam step"; EXAMPLES.md
 * notes4-adam row (c)): beta1 0.9, beta2 0.995, lr 0.01, eps 1e-7, first
 * step from m = v = 0:
 *     m = (1 - 0.9) g = 0.1 g           v = (1 - 0.995) g^2 = 0.005 g^2
 *     bc1 = 1 - 0.9 = 0.1               bc2 = 1 - 0.995 = 0.005
 *     denom = sqrt(v)/sqrt(bc2) + eps = |g| + 1e-7
 *     p -= (lr / bc1) * m / denom = 0.01 * g / (|g| + 1e-7)
 * so every parameter moves by 0.01 sign(g), less a hair for eps:
 *     w1 0.5 (g 0.02) -> 0.49 + 0.01*1e-7/0.0200001 = 0.49000005
 *     w2 0.3 (g 0.01) -> 0.29;  b0 0.2 (g 0.01) -> 0.19;  b1 -0.1 (g -0.03) -> -0.09;  conv1 0.8 (g 0.05) -> 0.79
 */
#include "rt_test.h"
#include <math.h>

static CnnOptim make(CnnOptimizer kind, double lr, long n)
{
    CnnOptim o;
    CnnErr e;
    CnnOptimConfig c = {.kind = kind, .lr = lr, .momentum = 0.9, .beta1 = 0.9, .beta2 = 0.995, .eps = 1e-7};
    ck_assert(cnn_optim_alloc(&o, &c, n, &e));
    return o;
}

START_TEST(adam_course_example)
{
    float p[5] = {0.5f, 0.3f, 0.2f, -0.1f, 0.8f};
    const float g[5] = {0.02f, 0.01f, 0.01f, -0.03f, 0.05f};
    const double want[5] = {0.49, 0.29, 0.19, -0.09, 0.79};
    CnnOptim o = make(CNN_OPT_ADAM, 0.01, 5);
    cnn_optim_step(&o, p, g);
    for (int i = 0; i < 5; i++) ck_assert_double_eq_tol(p[i], want[i], 2e-7);
    ck_assert_double_eq_tol(o.m[0], 0.002, 1e-9);       /* m = 0.1 * 0.02 */
    ck_assert_double_eq_tol(o.v[0], 2e-6, 1e-12);       /* v = 0.005 * 0.0004 */
    ck_assert_double_eq_tol(o.v[1], 5e-7, 1e-12);
    /* eps is outside the root: with g = 1e-6, |g| is 10 eps, so the step is
     * 0.01 * 1e-6 / (1e-6 + 1e-7) = 0.0090909..., not 0.01 */
    float q = 1, tiny = 1e-6f;
    CnnOptim o2 = make(CNN_OPT_ADAM, 0.01, 1);
    cnn_optim_step(&o2, &q, &tiny);
    ck_assert_double_eq_tol(1 - q, 0.01 / 1.1, 1e-7);
    cnn_optim_free(&o);
    cnn_optim_free(&o2);
}
END_TEST

/* Second Adam step, g = 0.02 again: m = 0.9*0.002 + 0.1*0.02 = 0.0038,
 * v = 0.995*2e-6 + 0.005*4e-4 = 3.99e-6, bc1 = 1 - 0.81 = 0.19,
 * bc2 = 1 - 0.990025 = 0.009975; denom = sqrt(3.99e-6 / 0.009975) + 1e-7
 * = 0.02 + 1e-7, step = 0.01/0.19 * 0.0038 / denom = 0.01 (less 5e-8). */
START_TEST(adam_second_step)
{
    float p = 0.5f, g = 0.02f;
    CnnOptim o = make(CNN_OPT_ADAM, 0.01, 1);
    cnn_optim_step(&o, &p, &g);
    cnn_optim_step(&o, &p, &g);
    ck_assert_int_eq(o.step, 2);
    ck_assert_double_eq_tol(o.m[0], 0.0038, 1e-9);
    ck_assert_double_eq_tol(o.v[0], 3.99e-6, 1e-11);
    ck_assert_double_eq_tol(p, 0.48, 3e-7);
    cnn_optim_free(&o);
}
END_TEST

START_TEST(sgd_and_momentum)
{
    float p = 1, g = 0.5f;
    CnnOptim s = make(CNN_OPT_SGD, 0.1, 1);
    cnn_optim_step(&s, &p, &g);
    ck_assert_float_eq_tol(p, 0.95f, 1e-7f);            /* 1 - 0.1*0.5 */
    /* torch SGD(momentum=0.9): buf = g on the first step, then 0.9 buf + g */
    float q = 1;
    CnnOptim m = make(CNN_OPT_MOMENTUM, 0.1, 1);
    cnn_optim_step(&m, &q, &g);
    ck_assert_float_eq_tol(q, 0.95f, 1e-7f);            /* buf 0.5 */
    cnn_optim_step(&m, &q, &g);
    ck_assert_float_eq_tol(q, 0.855f, 1e-6f);           /* buf 0.95: 0.95 - 0.095 */
    g = -1;
    cnn_optim_step(&m, &q, &g);
    ck_assert_float_eq_tol(q, 0.855f - 0.1f * (0.9f * 0.95f - 1), 1e-6f);   /* buf -0.145 */
    cnn_optim_free(&s);
    cnn_optim_free(&m);
}
END_TEST

START_TEST(decimal_hyperparameters)
{
    /* the model stores 0.9f; torch computes 1 - beta1 from the double 0.9 */
    ck_assert(cnn_float_to_decimal(0.9f) == 0.9);
    ck_assert(cnn_float_to_decimal(0.001f) == 0.001);
    ck_assert(cnn_float_to_decimal(1e-8f) == 1e-8);
    CnnOptimConfig c = {.kind = CNN_OPT_SGD}, flags = {.momentum = 0.5};
    cnn_optim_override(&c, &flags, CNN_SET_MOMENTUM);
    ck_assert_int_eq(c.kind, CNN_OPT_MOMENTUM);         /* torch SGD(momentum=0.5) */
}
END_TEST

/* ---- losses -------------------------------------------------------------- */

static CnnModel model_with(CnnLoss loss, int outputs)
{
    CnnModel m = cnn_model;
    m.loss = loss;
    m.outputs = outputs;
    return m;
}

/* z = [1, 2, 3], label 2: L = log(e + e^2 + e^3) - 3 = 0.40760596;
 * softmax = [0.09003057, 0.24472847, 0.66524096]. */
START_TEST(crossentropy_values)
{
    CnnModel m = model_with(CNN_LOSS_CROSSENTROPY, 3);
    float z[6] = {1, 2, 3, 1000, 0, -1000}, d[6];
    int32_t y[2] = {2, 1};
    long correct;
    double l = cnn_loss(&m, z, y, NULL, 1, d, &correct);
    ck_assert_double_eq_tol(l, 0.40760596, 1e-7);
    ck_assert_double_eq_tol(d[0], 0.09003057, 1e-7);
    ck_assert_double_eq_tol(d[2], 0.66524096 - 1, 1e-7);
    ck_assert_int_eq(correct, 1);
    /* huge logits stay finite: image 2 has loss 1000 - 0 = 1000; mean over B = 2, dout / 2 */
    l = cnn_loss(&m, z, y, NULL, 2, d, &correct);
    ck_assert_double_eq_tol(l, (0.40760596 + 1000) / 2, 1e-6);
    ck_assert_double_eq_tol(d[3], 0.5, 1e-7);
    ck_assert_double_eq_tol(d[4], -0.5, 1e-7);
    ck_assert_double_eq_tol(d[0], 0.09003057 / 2, 1e-7);
}
END_TEST

/* MSE, y = [0.5, 1], one-hot target of label 1 = [0, 1]:
 * L = (0.25 + 0) / 2 = 0.125, dy = 2 (y - t) / 2 = [0.5, 0]. */
START_TEST(mse_values)
{
    CnnModel m = model_with(CNN_LOSS_MSE, 2);
    float y[2] = {0.5f, 1}, d[2];
    int32_t label = 1;
    ck_assert_double_eq_tol(cnn_loss(&m, y, &label, NULL, 1, d, NULL), 0.125, 1e-9);
    ck_assert_float_eq_tol(d[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(d[1], 0.0f, 1e-7f);
    float t[2] = {1, 1};   /* explicit targets */
    ck_assert_double_eq_tol(cnn_loss(&m, y, NULL, t, 1, d, NULL), 0.125, 1e-9);
    ck_assert_float_eq_tol(d[0], -0.5f, 1e-7f);
}
END_TEST

/* BCE, one output: y 0.8 with label 1: L = -log 0.8 = 0.22314355, dy =
 * (0.8 - 1)/(0.8 * 0.2) = -1.25.  y 0 with label 1: log clamped at -100. */
START_TEST(bce_values)
{
    CnnModel m = model_with(CNN_LOSS_BCE, 1);
    float y[2] = {0.8f, 0}, d[2];
    int32_t label[2] = {1, 1};
    long correct;
    ck_assert_double_eq_tol(cnn_loss(&m, y, label, NULL, 1, d, &correct), 0.22314355, 1e-6);
    ck_assert_double_eq_tol(d[0], -1.25, 1e-5);
    ck_assert_int_eq(correct, 1);
    ck_assert_double_eq_tol(cnn_loss(&m, y + 1, label, NULL, 1, d, &correct), 100, 1e-9);
    ck_assert_int_eq(correct, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optim");
    TCase *t = tcase_create("optim");
    tcase_set_timeout(t, 10);
    tcase_add_test(t, adam_course_example);
    tcase_add_test(t, adam_second_step);
    tcase_add_test(t, sgd_and_momentum);
    tcase_add_test(t, decimal_hyperparameters);
    tcase_add_test(t, crossentropy_values);
    tcase_add_test(t, mse_values);
    tcase_add_test(t, bce_values);
    suite_add_tcase(s, t);
    return rt_main(s);
}
