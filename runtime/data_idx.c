/* data_idx.c — IDX files (the MNIST format), plain or gzip-compressed.
 *
 * Layout: two zero bytes, an element type, the number of dimensions, then
 * each dimension as a big-endian uint32, then the elements, big-endian,
 * row-major.  zlib's gzread reads .gz and plain files alike.  Images are
 * (N, H, W) for one channel or (N, H, W, C); labels are (N,).  ubyte images
 * are divided by 255 in float, as torchvision's ToTensor does; float32
 * images are taken as they are.
 * Every problem — a short file, a bad header, sizes that overflow or exceed
 * 4 GiB, gzip garbage, extra bytes, NaN or infinite floats — becomes one line
 * naming the file. */
#include "rt.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IDX_CHUNK = 1 << 20 };

static const struct {
    int type, size;
    const char *name;
} cnn_idx_types[] = {
    {0x08, 1, "ubyte"}, {0x09, 1, "byte"}, {0x0B, 2, "int16"},
    {0x0C, 4, "int32"}, {0x0D, 4, "float32"}, {0x0E, 8, "float64"},
};

static int cnn_idx_type_size(int type)
{
    for (size_t i = 0; i < sizeof cnn_idx_types / sizeof cnn_idx_types[0]; i++)
        if (cnn_idx_types[i].type == type) return cnn_idx_types[i].size;
    return 0;
}

/* Reads exactly n bytes, or says why not (gzip error, or how many came). */
static bool cnn_gz_read(gzFile f, const char *path, void *buf, size_t n, const char *what, CnnErr *e)
{
    int got = gzread(f, buf, (unsigned)n);
    if (got < 0) {
        int code;
        const char *msg = gzerror(f, &code);
        return cnn_fail(e, "%s: corrupt gzip data (%s)", path, msg);
    }
    if ((size_t)got != n) return cnn_fail(e, "%s: truncated: the file ends inside the %s", path, what);
    return true;
}

/* One big-endian element of `size` bytes at p as a double. */
static double cnn_idx_element(const unsigned char *p, int type, int size)
{
    uint64_t u = 0;
    for (int i = 0; i < size; i++) u = u << 8 | p[i];
    switch (type) {
    case 0x08: return (double)u;
    case 0x09: return (double)(int8_t)u;
    case 0x0B: return (double)(int16_t)u;
    case 0x0C: return (double)(int32_t)u;
    case 0x0D: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

static bool cnn_idx_header(gzFile f, const char *path, CnnIdx *idx, int *size, CnnErr *e)
{
    unsigned char h[4], d[16];
    if (!cnn_gz_read(f, path, h, 4, "header", e)) return false;
    if (h[0] || h[1]) return cnn_fail(e, "%s: not an IDX file (it does not start with two zero bytes)", path);
    idx->type = h[2];
    idx->ndim = h[3];
    *size = cnn_idx_type_size(idx->type);
    if (!*size) return cnn_fail(e, "%s: unknown IDX element type 0x%02X", path, idx->type);
    if (idx->ndim < 1 || idx->ndim > 4)
        return cnn_fail(e, "%s: IDX file with %d dimensions; 1 to 4 are supported", path, idx->ndim);
    if (!cnn_gz_read(f, path, d, 4 * (size_t)idx->ndim, "header", e)) return false;
    uint64_t bytes = sizeof(float);   /* what it takes once loaded: every element becomes a float */
    idx->count = 1;
    for (int i = 0; i < idx->ndim; i++) {
        const unsigned char *p = d + 4 * i;
        idx->dims[i] = (long)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
        bytes *= (uint64_t)idx->dims[i];           /* at most 2^32 * 4 GiB: no overflow before the check */
        if (bytes > CNN_MAX_FILE_BYTES)
            return cnn_fail(e, "%s: the header's dimensions add up to more than 4 GiB of data; refusing", path);
        idx->count *= idx->dims[i];
    }
    return true;
}

/* The element array grows as data arrives (doubling, up to the header's
 * count), so a 16-byte file announcing a billion elements costs nothing
 * before it is found truncated. */
static bool cnn_idx_reserve(CnnIdx *idx, long *cap, long need)
{
    if (need <= *cap) return true;
    long c = *cap * 2 > need ? *cap * 2 : need;
    if (c > idx->count) c = idx->count;
    float *d = realloc(idx->data, (size_t)c * sizeof(float));
    if (!d) return false;
    idx->data = d;
    *cap = c;
    return true;
}

static bool cnn_idx_body(gzFile f, const char *path, CnnIdx *idx, int size, bool scale, CnnErr *e)
{
    unsigned char *buf = malloc(IDX_CHUNK);
    long cap = 0;
    idx->data = malloc(1);
    if (!buf || !idx->data) {
        free(buf);
        return cnn_fail(e, "%s: out of memory", path);
    }
    bool ok = true;
    long per_chunk = IDX_CHUNK / size;
    for (long i = 0; ok && i < idx->count; i += per_chunk) {
        long n = idx->count - i < per_chunk ? idx->count - i : per_chunk;
        ok = cnn_gz_read(f, path, buf, (size_t)n * (size_t)size, "data", e);
        if (ok && !cnn_idx_reserve(idx, &cap, i + n))
            ok = cnn_fail(e, "%s: out of memory for %ld elements", path, idx->count);
        if (!ok) break;
        float *out = idx->data + i;
        if (ok && idx->type == 0x08 && scale)   /* the common case, simple enough to vectorize */
            for (long k = 0; k < n; k++) out[k] = (float)buf[k] / 255.0f;
        else
            for (long k = 0; ok && k < n; k++) {
                out[k] = (float)cnn_idx_element(buf + k * size, idx->type, size);
                if (!isfinite(out[k]))   /* float32/64 NaN, Inf, or a float64 beyond float's range */
                    ok = cnn_fail(e, "%s: element %ld is %g; the data must be finite numbers", path, i + k,
                                  cnn_idx_element(buf + k * size, idx->type, size));
            }
    }
    int extra = ok ? gzread(f, buf, 1) : 0;
    free(buf);
    if (extra < 0) return cnn_fail(e, "%s: corrupt gzip data after the last element", path);
    if (extra > 0) return cnn_fail(e, "%s: extra bytes after the %ld elements the header announces", path, idx->count);
    return ok;
}

bool cnn_idx_read(const char *path, bool scale, CnnIdx *idx, CnnErr *e)
{
    memset(idx, 0, sizeof *idx);
    gzFile f = gzopen(path, "rb");
    if (!f) return cnn_fail(e, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    int size = 0;
    bool ok = cnn_idx_header(f, path, idx, &size, e) && cnn_idx_body(f, path, idx, size, scale, e);
    gzclose(f);
    if (!ok) {
        free(idx->data);
        idx->data = NULL;
    }
    return ok;
}

static void cnn_shape_str(char *buf, size_t n, long h, long w, long c)
{
    snprintf(buf, n, "%ldx%ldx%ld", h, w, c);
}

bool cnn_idx_images(const char *path, const CnnModel *m, CnnData *d, CnnErr *e)
{
    CnnIdx idx;
    memset(d, 0, sizeof *d);
    if (!cnn_idx_read(path, true, &idx, e)) return false;
    if (idx.ndim < 3) {
        free(idx.data);
        return cnn_fail(e, "%s: a %d-D IDX array is not images; expected (N, H, W) or (N, H, W, C)", path, idx.ndim);
    }
    long c = idx.ndim == 4 ? idx.dims[3] : 1;
    if (idx.dims[1] != m->in_h || idx.dims[2] != m->in_w || c != m->in_c) {
        char got[64], want[64];
        cnn_shape_str(got, sizeof got, idx.dims[1], idx.dims[2], c);
        cnn_shape_str(want, sizeof want, m->in_h, m->in_w, m->in_c);
        free(idx.data);
        return cnn_fail(e, "%s: images are %s (HxWxC) but model %s (%s) takes %s", path, got, m->name,
                        m->source ? m->source : "?", want);
    }
    *d = (CnnData){.x = idx.data, .n = idx.dims[0], .h = m->in_h, .w = m->in_w, .c = m->in_c, .owned = true};
    return true;
}

static bool cnn_labels_check(const char *path, const CnnModel *m, const CnnIdx *idx, int32_t *y, CnnErr *e)
{
    int classes = cnn_model_classes(m);
    for (long i = 0; i < idx->count; i++) {
        float v = idx->data[i];
        if (!(v >= 0 && v < classes) || v != floorf(v))
            return cnn_fail(e, "%s: label %g at index %ld is outside 0..%d (model %s has %d classes)", path, v, i,
                            classes - 1, m->name, classes);
        y[i] = (int32_t)v;
    }
    return true;
}

bool cnn_idx_labels(const char *path, const CnnModel *m, CnnData *d, CnnErr *e)
{
    CnnIdx idx;
    if (!cnn_idx_read(path, false, &idx, e)) return false;
    bool ok = false;
    if (idx.ndim != 1)
        cnn_fail(e, "%s: labels must be a 1-D IDX array (N,), this one has %d dimensions", path, idx.ndim);
    else if (idx.count != d->n)
        cnn_fail(e, "%s: %ld labels, but the images file holds %ld images", path, idx.count, d->n);
    else if (!(d->y = malloc(idx.count ? (size_t)idx.count * sizeof *d->y : 1)))
        cnn_fail(e, "%s: out of memory", path);
    else
        ok = cnn_labels_check(path, m, &idx, d->y, e);
    free(idx.data);
    return ok;
}

void cnn_data_free(CnnData *d)
{
    if (d->owned) {
        free(d->x);
        free(d->y);
    }
    memset(d, 0, sizeof *d);
}

void cnn_data_split(const CnnData *all, long ntest, CnnData *train, CnnData *test)
{
    long ntrain = all->n - ntest;
    long in = (long)all->h * all->w * all->c;
    *train = *all;
    train->n = ntrain;
    train->owned = false;
    *test = *all;
    test->n = ntest;
    test->x = all->x + ntrain * in;
    test->y = all->y ? all->y + ntrain : NULL;
    test->owned = false;
}
