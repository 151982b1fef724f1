/* test_data.c — the IDX, CSV and PGM/PPM loaders, and their error messages.
 * The fake model takes 2x2x1 images and has 3 classes. */
#include "rt_test.h"

static const unsigned char pixels[2 * 2 * 2] = {0, 51, 102, 255, 255, 204, 153, 0};

START_TEST(idx_ubyte_plain_and_gz)
{
    unsigned dims[3] = {2, 2, 2};
    for (int gz = 0; gz < 2; gz++) {
        const char *path = rt_path(gz ? "img.gz" : "img");
        CnnData d;
        CnnErr e;
        rt_write_idx(path, 0x08, 3, dims, pixels, sizeof pixels, gz);
        ck_assert_msg(cnn_idx_images(path, &cnn_model, &d, &e), "%s", e.msg);
        ck_assert_int_eq(d.n, 2);
        for (int i = 0; i < 8; i++) ck_assert_float_eq(d.x[i], pixels[i] / 255.0f);
        cnn_data_free(&d);
    }
}
END_TEST

START_TEST(idx_float32_big_endian)
{
    /* 0.5f = 0x3F000000, -2.0f = 0xC0000000, 1.0f = 0x3F800000 */
    const unsigned char be[16] = {0x3F, 0, 0, 0, 0xC0, 0, 0, 0, 0x3F, 0x80, 0, 0, 0, 0, 0, 0};
    unsigned dims[4] = {1, 2, 2, 1};
    CnnData d;
    CnnErr e;
    rt_write_idx(rt_path("f32"), 0x0D, 4, dims, be, sizeof be, false);
    ck_assert_msg(cnn_idx_images(rt_path("f32"), &cnn_model, &d, &e), "%s", e.msg);
    ck_assert_float_eq(d.x[0], 0.5f);
    ck_assert_float_eq(d.x[1], -2.0f);
    ck_assert_float_eq(d.x[2], 1.0f);
    ck_assert_float_eq(d.x[3], 0.0f);
    cnn_data_free(&d);
}
END_TEST

START_TEST(idx_labels)
{
    unsigned dims[3] = {2, 2, 2}, n = 2;
    const unsigned char labels[2] = {2, 0}, bad[2] = {1, 3};
    CnnData d;
    CnnErr e;
    rt_write_idx(rt_path("i"), 0x08, 3, dims, pixels, sizeof pixels, false);
    rt_write_idx(rt_path("l"), 0x08, 1, &n, labels, 2, true);
    ck_assert(cnn_idx_images(rt_path("i"), &cnn_model, &d, &e));
    ck_assert_msg(cnn_idx_labels(rt_path("l"), &cnn_model, &d, &e), "%s", e.msg);
    ck_assert_int_eq(d.y[0], 2);
    ck_assert_int_eq(d.y[1], 0);
    cnn_data_free(&d);
    rt_write_idx(rt_path("lbad"), 0x08, 1, &n, bad, 2, false);
    ck_assert(cnn_idx_images(rt_path("i"), &cnn_model, &d, &e));
    ck_assert(!cnn_idx_labels(rt_path("lbad"), &cnn_model, &d, &e));
    ck_assert_msg(strstr(e.msg, "lbad") && strstr(e.msg, "label 3") && strstr(e.msg, "0..2"), "%s", e.msg);
    cnn_data_free(&d);
    n = 3;
    const unsigned char three[3] = {0, 1, 2};
    rt_write_idx(rt_path("l3"), 0x08, 1, &n, three, 3, false);
    ck_assert(cnn_idx_images(rt_path("i"), &cnn_model, &d, &e));
    ck_assert(!cnn_idx_labels(rt_path("l3"), &cnn_model, &d, &e));
    ck_assert_msg(strstr(e.msg, "3 labels") && strstr(e.msg, "2 images"), "%s", e.msg);
    cnn_data_free(&d);
}
END_TEST

/* Loads `name` as images and expects an error naming the file and `want`. */
static void expect_images_error(const char *name, const char *want)
{
    CnnData d;
    CnnErr e;
    e.msg[0] = 0;
    ck_assert_msg(!cnn_idx_images(rt_path(name), &cnn_model, &d, &e), "%s loaded", name);
    ck_assert_msg(strstr(e.msg, name) && strstr(e.msg, want), "%s: got '%s', want '%s'", name, e.msg, want);
}

START_TEST(idx_errors)
{
    unsigned dims[3] = {2, 2, 2};
    rt_write_idx(rt_path("short"), 0x08, 3, dims, pixels, 5, false);
    expect_images_error("short", "truncated");
    rt_write_idx(rt_path("short.gz"), 0x08, 3, dims, pixels, 5, true);
    expect_images_error("short.gz", "truncated");
    rt_write_idx(rt_path("long"), 0x08, 3, dims, pixels, sizeof pixels, false);
    FILE *f = fopen(rt_path("long"), "ab");
    fputc(7, f);
    fclose(f);
    expect_images_error("long", "extra bytes");
    unsigned big[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    rt_write_idx(rt_path("overflow"), 0x08, 3, big, NULL, 0, false);
    expect_images_error("overflow", "4 GiB");
    unsigned absurd[3] = {0x7FFFFFFF, 2, 2};
    rt_write_idx(rt_path("absurd"), 0x08, 3, absurd, pixels, sizeof pixels, false);
    expect_images_error("absurd", "4 GiB");
    unsigned wrong[3] = {1, 2, 4};
    rt_write_idx(rt_path("wrongdims"), 0x08, 3, wrong, pixels, 8, false);
    expect_images_error("wrongdims", "2x4x1");
    expect_images_error("wrongdims", "2x2x1");
    rt_write_text(rt_path("text"), "hello, world\n");
    expect_images_error("text", "not an IDX file");
    rt_write(rt_path("gzgarbage"), "\x1f\x8b\x08\x00garbage garbage garbage garbage", 36);
    expect_images_error("gzgarbage", "gzip");
    rt_write_idx(rt_path("type"), 0x42, 3, dims, pixels, sizeof pixels, false);
    expect_images_error("type", "element type");
    expect_images_error("no-such-file", "cannot open");
}
END_TEST

/* ---- CSV ------------------------------------------------------------------ */

static void expect_csv_error(const char *name, const char *text, const char *want)
{
    CnnData d;
    CnnErr e;
    rt_write_text(rt_path(name), text);
    ck_assert_msg(!cnn_csv_load(rt_path(name), &cnn_model, &d, &e), "%s loaded", name);
    ck_assert_msg(strstr(e.msg, want), "%s: got '%s', want '%s'", name, e.msg, want);
}

START_TEST(csv_good)
{
    CnnData d;
    CnnErr e;
    rt_write_text(rt_path("ok.csv"), "label,pixel0,pixel1,pixel2,pixel3\r\n2,0,51,102,255\r\n0,255,0,0,0\r\n\r\n");
    ck_assert_msg(cnn_csv_load(rt_path("ok.csv"), &cnn_model, &d, &e), "%s", e.msg);
    ck_assert_int_eq(d.n, 2);
    ck_assert_int_eq(d.y[0], 2);
    ck_assert_int_eq(d.y[1], 0);
    ck_assert_float_eq(d.x[1], 51 / 255.0f);
    ck_assert_float_eq(d.x[4], 1.0f);
    cnn_data_free(&d);
    rt_write_text(rt_path("nohead.csv"), "1,1,2,3,4\n");
    ck_assert_msg(cnn_csv_load(rt_path("nohead.csv"), &cnn_model, &d, &e), "%s", e.msg);
    ck_assert_int_eq(d.n, 1);
    cnn_data_free(&d);
}
END_TEST

START_TEST(csv_errors)
{
    char want[600];
    expect_csv_error("cols.csv", "label,a,b,c,d\n1,0,0,0,0\n1,0,0,0\n", "cols.csv:3: 4 columns, expected 5");
    expect_csv_error("label.csv", "11,0,0,0,0\n", "label.csv:1: label 11 is outside 0..2");
    expect_csv_error("neg.csv", "h\n-1,0,0,0,0\n", "neg.csv:2: label -1");
    expect_csv_error("nan.csv", "1,0,x,0,0\n", "nan.csv:1: column 3 is not a number");
    expect_csv_error("range.csv", "1,0,0,300,0\n", "range.csv:1: column 4: pixel value 300");
    expect_csv_error("empty.csv", "label,a,b,c,d\n", "no data rows");
    snprintf(want, sizeof want, "%s: cannot open", rt_path("none.csv"));
    CnnData d;
    CnnErr e;
    ck_assert(!cnn_csv_load(rt_path("none.csv"), &cnn_model, &d, &e));
    ck_assert_str_eq(e.msg, strcat(want, ": No such file or directory"));
}
END_TEST

/* ---- PGM / PPM ------------------------------------------------------------- */

START_TEST(pgm_p2_p5)
{
    float x[4];
    CnnErr e;
    rt_write_text(rt_path("a.pgm"), "P2\n# a comment\n2 2\n255\n0 51\n102 255\n");
    ck_assert_msg(cnn_image_load(rt_path("a.pgm"), &cnn_model, x, &e), "%s", e.msg);
    ck_assert_float_eq(x[1], 51 / 255.0f);
    ck_assert_float_eq(x[3], 1.0f);
    rt_write(rt_path("b.pgm"), "P5 2 2 255\n\x00\x33\x66\xff", 15);
    ck_assert_msg(cnn_image_load(rt_path("b.pgm"), &cnn_model, x, &e), "%s", e.msg);
    ck_assert_float_eq(x[2], 102 / 255.0f);
    rt_write(rt_path("short.pgm"), "P5 2 2 255\n\x00\x33", 13);
    ck_assert(!cnn_image_load(rt_path("short.pgm"), &cnn_model, x, &e));
    ck_assert_msg(strstr(e.msg, "truncated"), "%s", e.msg);
    rt_write_text(rt_path("big.pgm"), "P2 3 2 255\n0 0 0 0 0 0\n");
    ck_assert(!cnn_image_load(rt_path("big.pgm"), &cnn_model, x, &e));
    ck_assert_msg(strstr(e.msg, "2x3x1") && strstr(e.msg, "2x2x1"), "%s", e.msg);
    rt_write_text(rt_path("color.ppm"), "P3 2 2 255\n0 0 0 0 0 0 0 0 0 0 0 0\n");
    ck_assert(!cnn_image_load(rt_path("color.ppm"), &cnn_model, x, &e));
    ck_assert_msg(strstr(e.msg, "2x2x3"), "%s", e.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("data");
    TCase *t = tcase_create("data");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, idx_ubyte_plain_and_gz);
    tcase_add_test(t, idx_float32_big_endian);
    tcase_add_test(t, idx_labels);
    tcase_add_test(t, idx_errors);
    tcase_add_test(t, csv_good);
    tcase_add_test(t, csv_errors);
    tcase_add_test(t, pgm_p2_p5);
    suite_add_tcase(s, t);
    return rt_main(s);
}
