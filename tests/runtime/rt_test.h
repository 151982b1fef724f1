/* rt_test.h — helpers the runtime's Check suites share: a scratch
 * directory per test binary, writing IDX files and small files, and running
 * the fake model executables with their output captured. */
#ifndef RT_TEST_H
#define RT_TEST_H

#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include "rt.h"

/* A fresh directory under /tmp for this process, removed by rt_cleanup(). */
static inline const char *rt_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/cnnrt-test-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

static inline void rt_cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", rt_dir());
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", rt_dir());
}

/* rt_dir()/name, in one of eight rotating buffers. */
static inline const char *rt_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", rt_dir(), name);
    return p;
}

static inline void rt_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static inline void rt_write_text(const char *path, const char *text) { rt_write(path, text, strlen(text)); }

/* An IDX file: header for `type` and dims, then `bytes` of raw (already
 * big-endian) element data; gzip-compressed when gz. */
static inline void rt_write_idx(const char *path, int type, int ndim, const unsigned *dims, const void *data,
                                size_t bytes, bool gz)
{
    unsigned char h[4 + 16] = {0, 0, (unsigned char)type, (unsigned char)ndim};
    for (int i = 0; i < ndim; i++) {
        h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dims[i];
    }
    size_t hn = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        gzwrite(f, h, (unsigned)hn);
        if (bytes) gzwrite(f, data, (unsigned)bytes);
        gzclose(f);
        return;
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(h, 1, hn, f);
    if (bytes) fwrite(data, 1, bytes, f);
    fclose(f);
}

/* Runs a shell command in rt_dir() with stdout and stderr captured into a
 * malloc'ed string (*out); returns the exit status (128+n for signal n). */
/* n examples of the fake model's task in the test directory: 2x2 ubyte
 * images, labelled by which of the first three pixels is largest (ties to the
 * first); images gzipped when gz. */
static inline void rt_make_fake_set(const char *images, const char *labels, unsigned n, uint64_t seed, bool gz)
{
    unsigned char *x = malloc(4 * n), *y = malloc(n);
    CnnRng r;
    cnn_rng_seed(&r, seed);
    for (unsigned i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++) x[4 * i + k] = (unsigned char)cnn_rng_below(&r, 256);
        y[i] = x[4 * i] >= x[4 * i + 1] && x[4 * i] >= x[4 * i + 2] ? 0 : x[4 * i + 1] >= x[4 * i + 2] ? 1 : 2;
    }
    unsigned dims[3] = {n, 2, 2};
    rt_write_idx(rt_path(images), 0x08, 3, dims, x, 4 * n, gz);
    rt_write_idx(rt_path(labels), 0x08, 1, &n, y, n, false);
    free(x);
    free(y);
}

static inline int rt_run(char **out, const char *fmt, ...)
{
    char cmd[4096], full[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "cd '%s' && { %s ; } 2>&1", rt_dir(), cmd);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Counts lines of s containing needle. */
static inline int rt_count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static inline int rt_main(Suite *s)
{
    rt_dir();   /* made here, so the forked tests share it */
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (!failed) rt_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
