/* test_npz.c — .npz reading and writing, and weights files on top of them.
 * numpy is the referee: files numpy wrote (fixtures/make_fixtures.py) must
 * read back as the formulas there say, and files we write must pass numpy's
 * own checks in a python assertion.  Hostile files must fail cleanly. */
#include "rt_test.h"
#include <math.h>

static void write_sample(const char *path)
{
    CnnNpzWriter w;
    CnnErr e;
    float a[6] = {0, 0.5f, 1, 1.5f, 2, 2.5f};
    double b = -3.25;
    int64_t c[2] = {-7, 1LL << 40};
    uint64_t d[4] = {1, 2, UINT64_MAX, 4};
    long sa[2] = {2, 3}, sb[1] = {1}, sc[1] = {2}, sd[1] = {4};
    ck_assert(cnn_npz_begin(&w, path, &e));
    ck_assert(cnn_npz_add(&w, "fc1.weight", CNN_F4, 2, sa, a, &e));
    ck_assert(cnn_npz_add(&w, "b", CNN_F8, 1, sb, &b, &e));
    ck_assert(cnn_npz_add(&w, "c", CNN_I8, 1, sc, c, &e));
    ck_assert(cnn_npz_add(&w, "train.rng", CNN_U8, 1, sd, d, &e));
    ck_assert_msg(cnn_npz_commit(&w, &e), "%s", e.msg);
}

START_TEST(round_trip)
{
    const char *path = rt_path("rt.npz");
    CnnNpz z;
    CnnErr e;
    float a[6];
    int64_t c[2];
    write_sample(path);
    ck_assert_msg(cnn_npz_load(&z, path, &e), "%s", e.msg);
    ck_assert_int_eq(z.n, 4);
    const CnnArray *x = cnn_npz_get(&z, "fc1.weight");
    ck_assert_ptr_nonnull(x);
    ck_assert_str_eq(x->descr, "<f4");
    ck_assert_int_eq(x->ndim, 2);
    ck_assert_int_eq(x->shape[0], 2);
    ck_assert_int_eq(x->shape[1], 3);
    ck_assert(cnn_array_floats(x, a));
    for (int i = 0; i < 6; i++) ck_assert_float_eq(a[i], 0.5f * i);
    ck_assert(cnn_array_ints(cnn_npz_get(&z, "c"), c));
    ck_assert_int_eq(c[0], -7);
    ck_assert_int_eq(c[1], 1LL << 40);
    ck_assert(cnn_array_floats(cnn_npz_get(&z, "b"), a));
    ck_assert_float_eq(a[0], -3.25f);
    ck_assert_ptr_null(cnn_npz_get(&z, "missing"));
    cnn_npz_free(&z);
    /* atomic save leaves no temporary behind */
    char *out;
    rt_run(&out, "ls");
    ck_assert_msg(!strstr(out, ".tmp."), "temporary file left: %s", out);
    free(out);
}
END_TEST

/* numpy opens what we write, with the same values, dtypes and shapes. */
START_TEST(numpy_reads_ours)
{
    write_sample(rt_path("ours.npz"));
    char *out;
    int st = rt_run(&out, "/usr/bin/python3 -c \""
                          "import numpy as np\n"
                          "z = np.load('ours.npz')\n"
                          "assert sorted(z.files) == ['b', 'c', 'fc1.weight', 'train.rng'], z.files\n"
                          "w = z['fc1.weight']\n"
                          "assert w.dtype == np.float32 and w.shape == (2, 3)\n"
                          "assert (w == np.arange(6).reshape(2, 3) * 0.5).all()\n"
                          "assert z['b'].dtype == np.float64 and z['b'][0] == -3.25\n"
                          "assert z['c'].tolist() == [-7, 2**40]\n"
                          "assert z['train.rng'].dtype == np.uint64 and z['train.rng'][2] == 2**64 - 1\n"
                          "import zipfile; assert zipfile.ZipFile('ours.npz').testzip() is None\n"
                          "print('numpy ok')\"");
    ck_assert_msg(st == 0 && strstr(out, "numpy ok"), "python said: %s", out);
    free(out);
}
END_TEST

static void check_numpy_fixture(const char *name)
{
    char path[512];
    CnnNpz z;
    CnnErr e;
    float a[12];
    int64_t v[3];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
    ck_assert_msg(cnn_npz_load(&z, path, &e), "%s", e.msg);
    const CnnArray *x = cnn_npz_get(&z, "a");
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->shape[0], 3);
    ck_assert_int_eq(x->shape[1], 4);
    ck_assert(cnn_array_floats(x, a));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) ck_assert_float_eq(a[i * 4 + j], (4 * i + j) / 4.0f);
    ck_assert(cnn_array_floats(cnn_npz_get(&z, "b"), a));
    ck_assert_float_eq(a[0], 1.5f);
    ck_assert_float_eq(a[1], -2.0f);
    ck_assert(cnn_array_ints(cnn_npz_get(&z, "c"), v));
    ck_assert_int_eq(v[0], 7);
    ck_assert_int_eq(v[1], -3);
    ck_assert(cnn_array_ints(cnn_npz_get(&z, "d"), v));
    ck_assert_int_eq(v[2], 3);
    cnn_npz_free(&z);
}

START_TEST(reads_numpy_savez) { check_numpy_fixture("numpy_savez.npz"); }
END_TEST
START_TEST(reads_numpy_compressed) { check_numpy_fixture("numpy_compressed.npz"); }
END_TEST

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Every truncation and many single-byte corruptions of valid files: loading
 * must fail with a message (or, for harmless bytes, succeed), never crash. */
static void torture(const char *src)
{
    size_t n;
    unsigned char *good = slurp(src, &n), *bad = malloc(n);
    const char *path = rt_path("bad.npz");
    CnnNpz z;
    CnnErr e;
    for (size_t len = 0; len < n; len++) {
        rt_write(path, good, len);
        e.msg[0] = 0;
        ck_assert_msg(!cnn_npz_load(&z, path, &e), "truncated to %zu bytes but loaded", len);
        ck_assert_msg(strstr(e.msg, path) != NULL, "message does not name the file: %s", e.msg);
    }
    CnnRng r;
    cnn_rng_seed(&r, 42);
    for (int i = 0; i < 3000; i++) {
        memcpy(bad, good, n);
        for (int k = 0; k < 1 + i % 3; k++) bad[cnn_rng_below(&r, n)] = (unsigned char)cnn_rng_next(&r);
        rt_write(path, bad, n);
        if (cnn_npz_load(&z, path, &e)) {
            float buf[64];
            for (int a = 0; a < z.n; a++)
                if (z.arr[a].count <= 64) cnn_array_floats(&z.arr[a], buf);
            cnn_npz_free(&z);
        }
    }
    free(good);
    free(bad);
}

START_TEST(hostile_ours) { write_sample(rt_path("good.npz")); torture(rt_path("good.npz")); }
END_TEST
START_TEST(hostile_numpy_compressed) { torture(FIXTURE_DIR "/numpy_compressed.npz"); }
END_TEST

/* ---- weights files, with the fake model (fc1.weight internal [in][out]) ---- */

static void fill_net(CnnNet *n)
{
    for (long i = 0; i < cnn_model.param_floats; i++) n->ctx.params[i] = 0.25f * (float)i - 1;
    for (long i = 0; i < cnn_model.stat_floats; i++) n->ctx.stats[i] = 10.0f + (float)i;
}

START_TEST(weights_round_trip_in_torch_layout)
{
    CnnNet n, m;
    CnnErr e;
    const char *path = rt_path("w.npz");
    ck_assert(cnn_net_alloc(&n, &cnn_model, 4, &e));
    ck_assert(cnn_net_alloc(&m, &cnn_model, 4, &e));
    fill_net(&n);
    ck_assert_msg(cnn_weights_save(&n, NULL, NULL, path, &e), "%s", e.msg);
    ck_assert_msg(cnn_weights_load(&m, path, &e), "%s", e.msg);
    ck_assert_mem_eq(m.ctx.params, n.ctx.params, sizeof(float) * (size_t)cnn_model.param_floats);
    ck_assert_mem_eq(m.ctx.stats, n.ctx.stats, sizeof(float) * (size_t)cnn_model.stat_floats);
    /* in the file, torch [o][i] = internal [i][o] = params[i*3 + o] */
    CnnNpz z;
    float w[12];
    ck_assert(cnn_npz_load(&z, path, &e));
    ck_assert(cnn_array_floats(cnn_npz_get(&z, "fc1.weight"), w));
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 4; i++) ck_assert_float_eq(w[o * 4 + i], 0.25f * (float)(i * 3 + o) - 1);
    cnn_npz_free(&z);
    cnn_net_free(&n);
    cnn_net_free(&m);
}
END_TEST

/* A weights file from numpy with one tensor changed by `python_edit`. */
static void numpy_weights(const char *name, const char *python_edit)
{
    char *out;
    int st = rt_run(&out, "/usr/bin/python3 -c \"import numpy as np\n"
                          "d = {'fc1.weight': np.ones((3, 4), np.float32), 'fc1.bias': np.zeros(3, np.float32),\n"
                          "     'bn1.running_mean': np.zeros(3, np.float32), 'extra': np.arange(3)}\n"
                          "%s\nnp.savez('%s', **d)\"", python_edit, name);
    ck_assert_msg(st == 0, "python: %s", out);
    free(out);
}

static void expect_load_error(const char *file, const char *want1, const char *want2)
{
    CnnNet n;
    CnnErr e;
    ck_assert(cnn_net_alloc(&n, &cnn_model, 1, &e));
    fill_net(&n);
    float before = n.ctx.params[0];
    ck_assert(!cnn_weights_load(&n, rt_path(file), &e));
    ck_assert_msg(strstr(e.msg, file) && strstr(e.msg, want1) && (!want2 || strstr(e.msg, want2)), "got: %s", e.msg);
    ck_assert_float_eq(n.ctx.params[0], before);   /* nothing changed */
    cnn_net_free(&n);
}

START_TEST(weights_errors)
{
    numpy_weights("missing.npz", "del d['fc1.bias']");
    expect_load_error("missing.npz", "fc1.bias", NULL);
    numpy_weights("shape.npz", "d['fc1.weight'] = np.ones((3, 5), np.float32)");
    expect_load_error("shape.npz", "(3, 5)", "(3, 4)");
    numpy_weights("dtype.npz", "d['fc1.bias'] = np.zeros(3, np.int64)");
    expect_load_error("dtype.npz", "fc1.bias", "<i8");
    expect_load_error("nonexistent.npz", "cannot open", NULL);
}
END_TEST

START_TEST(weights_from_float64_and_extra_arrays)
{
    CnnNet n;
    CnnErr e;
    numpy_weights("f8.npz", "d['fc1.weight'] = np.arange(12, dtype=np.float64).reshape(3, 4)");
    ck_assert(cnn_net_alloc(&n, &cnn_model, 1, &e));
    ck_assert_msg(cnn_weights_load(&n, rt_path("f8.npz"), &e), "%s", e.msg);
    /* torch [o][i] = 4o + i lands at internal [i][o] */
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 4; i++) ck_assert_float_eq(n.ctx.params[i * 3 + o], (float)(4 * o + i));
    cnn_net_free(&n);
}
END_TEST

START_TEST(save_failure_leaves_old_file)
{
    CnnNet n;
    CnnErr e;
    ck_assert(cnn_net_alloc(&n, &cnn_model, 1, &e));
    ck_assert(!cnn_weights_save(&n, NULL, NULL, "/nonexistent-dir/w.npz", &e));
    ck_assert_msg(strstr(e.msg, "/nonexistent-dir/w.npz"), "%s", e.msg);
    cnn_net_free(&n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("npz");
    TCase *t = tcase_create("npz");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, round_trip);
    tcase_add_test(t, numpy_reads_ours);
    tcase_add_test(t, reads_numpy_savez);
    tcase_add_test(t, reads_numpy_compressed);
    tcase_add_test(t, hostile_ours);
    tcase_add_test(t, hostile_numpy_compressed);
    tcase_add_test(t, weights_round_trip_in_torch_layout);
    tcase_add_test(t, weights_errors);
    tcase_add_test(t, weights_from_float64_and_extra_arrays);
    tcase_add_test(t, save_failure_leaves_old_file);
    suite_add_tcase(s, t);
    return rt_main(s);
}
