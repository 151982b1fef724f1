/* test_e2e.c — the fake model built into real executables (fake_model.c
 * linked with libcnnrt.a), driven through the command line as a user would:
 * train, resume, eval, predict, gradcheck, trace, and the error paths.
 * The data: 2x2 images whose class is the brightest of the first three
 * pixels, which a linear model learns. */
#include "rt_test.h"
#include <math.h>

#define FAKE FAKE_DIR "/fake"
#define DATA "--train-images tr-img.gz --train-labels tr-lab --test-images te-img --test-labels te-lab"

static void make_set(const char *images, const char *labels, unsigned n, uint64_t seed, bool gz)
{
    rt_make_fake_set(images, labels, n, seed, gz);
}

static void setup(void)
{
    static bool done;
    if (done) return;
    done = true;
    make_set("tr-img.gz", "tr-lab", 400, 1, true);
    make_set("te-img", "te-lab", 100, 2, false);
    make_set("big-img", "big-lab", 20000, 3, false);
}

/* Runs a command, expects exit status `want`, returns its output. */
static char *run_ok(int want, const char *cmd)
{
    char *out;
    int st = rt_run(&out, "%s", cmd);
    ck_assert_msg(st == want, "'%s' exited %d, not %d:\n%s", cmd, st, want, out);
    return out;
}

static double last_value(const char *out, const char *key)
{
    const char *p = NULL;
    for (const char *q = out; (q = strstr(q, key)); q++) p = q;
    ck_assert_msg(p != NULL, "no '%s' in:\n%s", key, out);
    return atof(p + strlen(key));
}

START_TEST(train_quick_then_eval)
{
    setup();
    char *out = run_ok(0, FAKE " train " DATA " --limit 200 --epochs 1 --save w1.npz");
    ck_assert_msg(strstr(out, "200 training, 100 test images"), "%s", out);
    ck_assert_msg(strstr(out, "epoch 1: train loss"), "%s", out);
    ck_assert_msg(strstr(out, "epoch 1/1 200/200 loss"), "no progress line: %s", out);
    free(out);
    out = run_ok(0, FAKE " eval --weights w1.npz " DATA);
    ck_assert_msg(strstr(out, "test loss") && strstr(out, "(100 images)"), "%s", out);
    free(out);
    free(run_ok(2, FAKE " eval " DATA));   /* --weights is required */
}
END_TEST

START_TEST(training_learns)
{
    setup();
    char *out = run_ok(0, FAKE " train " DATA " --epochs 8 --save w8.npz --log log.csv");
    double acc = last_value(out, "test loss");
    acc = last_value(out, " acc ");
    ck_assert_msg(acc >= 0.85, "test accuracy %.3f after 8 epochs:\n%s", acc, out);
    free(out);
    out = run_ok(0, "cat log.csv");
    ck_assert_msg(strncmp(out, "epoch,train_loss,train_acc,test_loss,test_acc,seconds\n1,", 56) == 0, "%s", out);
    ck_assert_int_eq(rt_count(out, "\n"), 9);
    free(out);
    out = run_ok(0, FAKE " train " DATA " --epochs 2 --quiet");
    ck_assert_msg(rt_count(out, "\n") == 1 && strstr(out, "epoch 2:"), "--quiet printed:\n%s", out);
    free(out);
}
END_TEST

START_TEST(same_seed_same_weights)
{
    setup();
    free(run_ok(0, FAKE " train " DATA " --epochs 2 --seed 5 --save s1.npz --quiet"));
    free(run_ok(0, FAKE " train " DATA " --epochs 2 --seed 5 --save s2.npz --quiet --threads 1"));
    free(run_ok(0, FAKE " train " DATA " --epochs 2 --seed 6 --save s3.npz --quiet"));
    free(run_ok(0, "cmp s1.npz s2.npz"));
    free(run_ok(1, "cmp -s s1.npz s3.npz"));
    /* --no-shuffle from --init: no randomness left, any seed gives the same */
    free(run_ok(0, FAKE " train " DATA " --epochs 1 --seed 7 --init s1.npz --no-shuffle --save n1.npz --quiet"));
    free(run_ok(0, FAKE " train " DATA " --epochs 1 --seed 8 --init s1.npz --no-shuffle --save n2.npz --quiet"));
    free(run_ok(0, "/usr/bin/python3 -c \"import numpy as np; a, b = np.load('n1.npz'), np.load('n2.npz'); "
                    "assert all((a[k] == b[k]).all() for k in ('fc1.weight', 'fc1.bias', 'bn1.running_mean'))\""));
}
END_TEST

/* 3 epochs straight, and 1 + resume to 3, give the same file byte for byte. */
START_TEST(resume_is_exact)
{
    setup();
    const char *opts[] = {"--optimizer sgd", "--optimizer momentum --lr 0.1", "--optimizer adam --lr 0.01"};
    for (int i = 0; i < 3; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, FAKE " train " DATA " %s --epochs 3 --save a.npz --quiet", opts[i]);
        free(run_ok(0, cmd));
        snprintf(cmd, sizeof cmd, FAKE " train " DATA " %s --epochs 1 --save b.npz --quiet", opts[i]);
        free(run_ok(0, cmd));
        free(run_ok(0, FAKE " train " DATA " --resume b.npz --epochs 3 --save c.npz --quiet"));
        free(run_ok(0, "cmp a.npz c.npz"));
    }
}
END_TEST

/* Ctrl-C in the middle of an epoch saves; resuming gives what the
 * uninterrupted run gives.  The signal is sent once the first epoch's save
 * exists, so it lands while training is under way (usually mid-epoch). */
START_TEST(interrupt_and_resume)
{
    setup();
    const char *d = "--train-images big-img --train-labels big-lab --batch 1 --epochs 30 --optimizer adam --lr 0.001";
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, FAKE " train %s --save straight.npz --quiet", d);
    free(run_ok(0, cmd));
    snprintf(cmd, sizeof cmd, FAKE " train %s --save int.npz > int.log 2>&1 & pid=$!; "
                              "while ! test -e int.npz; do sleep 0.005; done; kill -INT $pid; wait $pid; "
                              "echo status=$?; tail -n 1 int.log", d);
    out = run_ok(0, cmd);
    ck_assert_msg(strstr(out, "status=130") && strstr(out, "--resume int.npz"), "no interruption seen:\n%s", out);
    free(out);
    out = run_ok(0, "/usr/bin/python3 -c \"import numpy as np; z = np.load('int.npz'); "
                    "print('epoch', z['train.epoch'][0], 'batch_index', z['train.batch_index'][0])\"");
    ck_assert_msg(!strstr(out, "epoch 30 "), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, FAKE " train %s --resume int.npz --save int.npz --quiet", d);
    free(run_ok(0, cmd));
    free(run_ok(0, "cmp straight.npz int.npz"));
}
END_TEST

START_TEST(predict_pictures_and_idx)
{
    setup();
    free(run_ok(0, FAKE " train " DATA " --epochs 8 --save wp.npz --quiet"));
    rt_write(rt_path("zero.pgm"), "P5\n2 2\n255\n\xff\x10\x20\x30", 15);
    rt_write_text(rt_path("two.pgm"), "P2\n2 2\n255\n10 20\n250 0\n");
    char *out = run_ok(0, FAKE " predict --weights wp.npz zero.pgm two.pgm");
    ck_assert_msg(strstr(out, "zero.pgm[0]: class 0 (p=0.") && strstr(out, "two.pgm[0]: class 2 (p=0."), "%s", out);
    free(out);
    out = run_ok(0, FAKE " predict --weights wp.npz te-img");
    ck_assert_int_eq(rt_count(out, ": class "), 100);
    ck_assert_msg(strstr(out, "te-img[99]: class "), "%s", out);
    free(out);
    out = run_ok(1, FAKE " predict --weights wp.npz tr-lab");
    ck_assert_msg(strstr(out, "error: tr-lab:"), "%s", out);
    free(out);
    free(run_ok(2, FAKE " predict --weights wp.npz"));
}
END_TEST

START_TEST(gradcheck_passes_and_catches_a_bug)
{
    const char *good[] = {FAKE, FAKE_DIR "/fake_dropout", FAKE_DIR "/fake_mse"};
    char cmd[600], *out;
    for (int i = 0; i < 3; i++)
        for (int seed = 1; seed <= 3; seed++) {
            snprintf(cmd, sizeof cmd, "%s gradcheck --seed %d", good[i], seed);
            out = run_ok(0, cmd);
            ck_assert_msg(rt_count(out, "PASS") == 2 && strstr(out, "fc1.weight") && strstr(out, "fc1.bias"), "%s", out);
            free(out);
        }
    out = run_ok(1, FAKE_DIR "/fake_bug gradcheck");
    ck_assert_msg(strstr(out, "FAIL") && strstr(out, "fc1.weight[2,1]"), "%s", out);
    free(out);
}
END_TEST

/* trace against PyTorch (trace_check.py), for each optimizer and both losses. */
START_TEST(trace_matches_torch)
{
    char cmd[1024], *out;
    out = run_ok(0, "/usr/bin/python3 -c \"import numpy as np\n"
                    "r = np.random.default_rng(1)\n"
                    "np.savez('tw.npz', **{'fc1.weight': r.uniform(-1, 1, (3, 4)).astype(np.float32),\n"
                    "  'fc1.bias': r.uniform(-1, 1, 3).astype(np.float32), 'bn1.running_mean': np.zeros(3, np.float32)})\n"
                    "x = r.uniform(0, 1, (5, 2, 2, 1)).astype(np.float32)\n"
                    "np.savez('tb.npz', x=x, y=np.array([0, 2, 1, 2, 0], np.int64))\n"
                    "np.savez('tb32.npz', x=x, y=np.array([0, 2, 1, 2, 0], np.int32))\n"
                    "np.savez('tbf.npz', x=x, y=r.uniform(0, 1, (5, 3)).astype(np.float32))\"");
    free(out);
    const char *opt[] = {"sgd", "momentum", "adam"};
    const double lr[] = {0.5, 0.1, 0.05};
    for (int i = 0; i < 3; i++)
        for (int steps = 0; steps <= 3; steps += 3) {
            snprintf(cmd, sizeof cmd, FAKE " trace --init tw.npz --batch tb.npz --steps %d --out t.npz --optimizer %s "
                     "--lr %g%s && " TEST_SRC_DIR "/trace_check.py tw.npz tb.npz t.npz %s %g %d ce", steps, opt[i],
                     lr[i], i == 1 ? " --momentum 0.9" : "", opt[i], lr[i], steps);
            out = run_ok(0, cmd);
            ck_assert_msg(strstr(out, "torch agrees"), "%s", out);
            free(out);
        }
    out = run_ok(0, FAKE " trace --init tw.npz --batch tb32.npz --steps 2 --out t.npz --optimizer adam --lr 0.05 && "
                    TEST_SRC_DIR "/trace_check.py tw.npz tb32.npz t.npz adam 0.05 2 ce");
    free(out);
    out = run_ok(0, FAKE_DIR "/fake_mse trace --init tw.npz --batch tbf.npz --steps 2 --out t.npz --optimizer sgd "
                    "--lr 0.5 && " TEST_SRC_DIR "/trace_check.py tw.npz tbf.npz t.npz sgd 0.5 2 mse");
    free(out);
    out = run_ok(0, FAKE_DIR "/fake_mse trace --init tw.npz --batch tb.npz --steps 2 --out t.npz --optimizer adam "
                    "--lr 0.05 && " TEST_SRC_DIR "/trace_check.py tw.npz tb.npz t.npz adam 0.05 2 mse");
    free(out);
    out = run_ok(1, FAKE " trace --init tw.npz --batch tbf.npz --out t.npz");
    ck_assert_msg(strstr(out, "tbf.npz: y"), "%s", out);
    free(out);
}
END_TEST

START_TEST(command_line_errors)
{
    char *out = run_ok(2, FAKE " train --epoch 3");
    ck_assert_msg(strstr(out, "unknown option --epoch; did you mean --epochs?") && rt_count(out, "\n") == 1, "%s", out);
    free(out);
    out = run_ok(2, FAKE " eval --weights w.npz --save x.npz");
    ck_assert_msg(strstr(out, "--save"), "%s", out);
    free(out);
    out = run_ok(2, FAKE " train --lr -1");
    ck_assert_msg(strstr(out, "--lr") && strstr(out, "'-1'"), "%s", out);
    free(out);
    free(run_ok(2, FAKE " train --epochs"));
    free(run_ok(2, FAKE " frobnicate"));
    free(run_ok(2, FAKE));
    const char *cmds[] = {"", "train", "eval", "predict", "gradcheck", "trace"};
    for (int i = 0; i < 6; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, FAKE " %s --help", cmds[i]);
        out = run_ok(0, cmd);
        ck_assert_msg(strstr(out, "usage: fake"), "%s", out);
        free(out);
        snprintf(cmd, sizeof cmd, FAKE " %s -h", cmds[i]);
        free(run_ok(0, cmd));
    }
}
END_TEST

START_TEST(data_and_weights_errors)
{
    setup();
    char *out = run_ok(1, FAKE " train --train-images te-img --train-labels tr-lab");
    ck_assert_msg(strstr(out, "error: tr-lab: 400 labels, but the images file holds 100 images"), "%s", out);
    free(out);
    out = run_ok(1, FAKE " train");   /* Fashion-MNIST does not fit a 2x2 model */
    ck_assert_msg(strstr(out, "2x2x1") && strstr(out, "28x28x1"), "%s", out);
    free(out);
    out = run_ok(1, FAKE " train --train-images tr-img.gz");
    ck_assert_msg(strstr(out, "--train-labels"), "%s", out);
    free(out);
    rt_write_text(rt_path("notnpz.npz"), "not a zip file at all");
    out = run_ok(1, FAKE " eval --weights notnpz.npz " DATA);
    ck_assert_msg(strstr(out, "notnpz.npz") && rt_count(out, "\n") == 1, "%s", out);
    free(out);
    free(run_ok(0, "/usr/bin/python3 -c \"import numpy as np; np.savez('nanw.npz', **{'fc1.weight': np.ones((3, 4), "
                   "np.float32), 'fc1.bias': np.array([0, np.nan, 0], np.float32), 'bn1.running_mean': np.zeros(3, "
                   "np.float32)})\""));
    out = run_ok(1, FAKE " train " DATA " --init nanw.npz --epochs 1 --save nan.npz");
    ck_assert_msg(strstr(out, "epoch 1, step") && (strstr(out, "NaN") || strstr(out, "infinite")), "%s", out);
    free(out);
    free(run_ok(1, "test -e nan.npz"));   /* nothing saved */
}
END_TEST

START_TEST(csv_training)
{
    FILE *f = fopen(rt_path("d.csv"), "w");
    CnnRng r;
    cnn_rng_seed(&r, 9);
    fprintf(f, "label,pixel0,pixel1,pixel2,pixel3\n");
    for (int i = 0; i < 300; i++) {
        int p[4];
        for (int k = 0; k < 4; k++) p[k] = (int)cnn_rng_below(&r, 256);
        fprintf(f, "%d,%d,%d,%d,%d\n", p[0] >= p[1] && p[0] >= p[2] ? 0 : p[1] >= p[2] ? 1 : 2, p[0], p[1], p[2], p[3]);
    }
    fclose(f);
    char *out = run_ok(0, FAKE " train --csv d.csv --epochs 8 --save wc.npz");
    ck_assert_msg(strstr(out, "the last 30 of its 300 rows") && strstr(out, "270 training, 30 test"), "%s", out);
    ck_assert_msg(last_value(out, " acc ") > 0.8, "%s", out);
    free(out);
    out = run_ok(0, FAKE " eval --weights wc.npz --csv d.csv");
    ck_assert_msg(strstr(out, "(30 images)"), "%s", out);
    free(out);
    out = run_ok(0, FAKE " eval --weights wc.npz --test-csv d.csv");
    ck_assert_msg(strstr(out, "(300 images)"), "%s", out);
    free(out);
}
END_TEST

/* bench: three positive rates; --layers: a row per layer (the fake model has none), then the loss
   and the update, each with a time */
START_TEST(bench_reports_rates_and_layers)
{
    char *out = run_ok(0, FAKE " bench --batch 8 --csv-out");
    double train, infer, latency;
    const char *row = strstr(out, "train_img_s,infer_img_s,latency_ms\n");
    ck_assert_msg(row && sscanf(strchr(row, '\n') + 1, "%lf,%lf,%lf", &train, &infer, &latency) == 3, "%s", out);
    ck_assert_msg(train > 0 && infer > 0 && latency > 0, "%s", out);
    free(out);
    out = run_ok(0, FAKE " bench --layers --batch 8 --csv-out");
    double loss_ms, update_ms;
    ck_assert_msg(strncmp(out, "layer,kind,forward_ms,backward_ms,forward_gflops,backward_gflops\n", 64) == 0, "%s", out);
    ck_assert_msg(strstr(out, "\nloss,step,") && sscanf(strstr(out, "\nloss,step,") + 11, "%lf", &loss_ms) == 1, "%s", out);
    ck_assert_msg(strstr(out, "\nsgd,step,") && sscanf(strstr(out, "\nsgd,step,") + 10, "%lf", &update_ms) == 1, "%s", out);
    ck_assert_msg(loss_ms >= 0 && update_ms >= 0, "%s", out);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e");
    TCase *t = tcase_create("e2e");
    tcase_set_timeout(t, 120);
    tcase_add_unchecked_fixture(t, setup, NULL);
    tcase_add_test(t, train_quick_then_eval);
    tcase_add_test(t, training_learns);
    tcase_add_test(t, same_seed_same_weights);
    tcase_add_test(t, resume_is_exact);
    tcase_add_test(t, interrupt_and_resume);
    tcase_add_test(t, predict_pictures_and_idx);
    tcase_add_test(t, gradcheck_passes_and_catches_a_bug);
    tcase_add_test(t, trace_matches_torch);
    tcase_add_test(t, command_line_errors);
    tcase_add_test(t, data_and_weights_errors);
    tcase_add_test(t, csv_training);
    tcase_add_test(t, bench_reports_rates_and_layers);
    suite_add_tcase(s, t);
    return rt_main(s);
}
