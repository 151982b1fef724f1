/* data_csv.c — labeled images in CSV, the Kaggle digit-recognizer layout.
 *
 *     label,pixel0,pixel1,...,pixel783      <- optional header line
 *     1,0,0,...,0
 * Each row is a label then H*W*C pixel values 0..255 in NHWC order, scaled
 * by 1/255.  A header is recognized by its first field not being a number.
 * Errors name FILE:LINE and what is wrong in that row.  gzip-compressed
 * files work too (zlib reads both). */
#include "rt.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct CnnLineReader {
    gzFile f;
    char *buf;
    size_t cap;
} CnnLineReader;

/* The next line without its "\n" or "\r\n"; NULL at the end (*err set on a
 * read error).  Lines grow the buffer as needed. */
static char *cnn_read_line(CnnLineReader *r, bool *err)
{
    size_t len = 0;
    *err = false;
    for (;;) {
        if (r->cap - len < 2) {
            size_t cap = r->cap ? 2 * r->cap : 65536;
            char *buf = realloc(r->buf, cap);
            if (!buf) return *err = true, NULL;
            r->buf = buf;
            r->cap = cap;
        }
        if (!gzgets(r->f, r->buf + len, (int)(r->cap - len > (1u << 30) ? (1u << 30) : r->cap - len))) {
            int code;
            gzerror(r->f, &code);
            if (code != Z_OK && code != Z_BUF_ERROR) *err = true;
            if (len == 0) return NULL;
            break;
        }
        len += strlen(r->buf + len);
        if (len > 0 && r->buf[len - 1] == '\n') break;
    }
    while (len > 0 && (r->buf[len - 1] == '\n' || r->buf[len - 1] == '\r')) r->buf[--len] = 0;
    return r->buf;
}

typedef struct CnnCsv {
    const char *path;
    const CnnModel *m;
    CnnData *d;
    long cap;          /* rows d->x and d->y have room for */
    long line;
} CnnCsv;

static bool cnn_csv_grow(CnnCsv *c, CnnErr *e)
{
    long in = cnn_model_in_floats(c->m);
    long cap = c->cap ? 2 * c->cap : 1024;
    if ((double)cap * in * sizeof(float) > (double)CNN_MAX_FILE_BYTES)
        return cnn_fail(e, "%s:%ld: more than 4 GiB of images; refusing", c->path, c->line);
    float *x = realloc(c->d->x, (size_t)cap * (size_t)in * sizeof(float));
    if (x) c->d->x = x;
    int32_t *y = realloc(c->d->y, (size_t)cap * sizeof(int32_t));
    if (y) c->d->y = y;
    if (!x || !y) return cnn_fail(e, "%s:%ld: out of memory", c->path, c->line);
    c->cap = cap;
    return true;
}

/* One number field starting at *p; advances past it and its comma. */
static bool cnn_csv_field(char **p, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(*p, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == *p || errno || (*end != ',' && *end != 0)) return false;
    *p = end + (*end == ',');
    return true;
}

static long cnn_csv_columns(const char *s)
{
    long n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

static bool cnn_csv_row(CnnCsv *c, char *s, CnnErr *e)
{
    long in = cnn_model_in_floats(c->m);
    long cols = cnn_csv_columns(s);
    int classes = cnn_model_classes(c->m);
    double v;
    if (cols != in + 1)
        return cnn_fail(e, "%s:%ld: %ld columns, expected %ld (a label, then %ldx%ldx%ld = %ld pixels)", c->path,
                        c->line, cols, in + 1, (long)c->m->in_h, (long)c->m->in_w, (long)c->m->in_c, in);
    if (c->d->n == c->cap && !cnn_csv_grow(c, e)) return false;
    if (!cnn_csv_field(&s, &v)) return cnn_fail(e, "%s:%ld: the label is not a number", c->path, c->line);
    if (!(v >= 0 && v < classes) || v != floor(v))
        return cnn_fail(e, "%s:%ld: label %g is outside 0..%d (model %s has %d classes)", c->path, c->line, v,
                        classes - 1, c->m->name, classes);
    c->d->y[c->d->n] = (int32_t)v;
    float *x = c->d->x + c->d->n * in;
    for (long k = 0; k < in; k++) {
        if (!cnn_csv_field(&s, &v))
            return cnn_fail(e, "%s:%ld: column %ld is not a number", c->path, c->line, k + 2);
        if (!(v >= 0 && v <= 255))
            return cnn_fail(e, "%s:%ld: column %ld: pixel value %g is outside 0..255", c->path, c->line, k + 2, v);
        x[k] = (float)v / 255.0f;
    }
    c->d->n++;
    return true;
}

static bool cnn_is_header(const char *s)
{
    char *end;
    strtod(s, &end);
    return end == s;
}

static bool cnn_csv_lines(CnnCsv *c, CnnLineReader *r, CnnErr *e)
{
    bool err;
    char *s;
    while ((s = cnn_read_line(r, &err))) {
        c->line++;
        if (*s == 0 || (c->line == 1 && cnn_is_header(s))) continue;
        if (!cnn_csv_row(c, s, e)) return false;
    }
    if (err) return cnn_fail(e, "%s:%ld: read error or corrupt gzip data", c->path, c->line + 1);
    if (c->d->n == 0) return cnn_fail(e, "%s: no data rows", c->path);
    return true;
}

bool cnn_csv_load(const char *path, const CnnModel *m, CnnData *d, CnnErr *e)
{
    memset(d, 0, sizeof *d);
    *d = (CnnData){.h = m->in_h, .w = m->in_w, .c = m->in_c, .owned = true};
    CnnLineReader r = {.f = gzopen(path, "rb")};
    if (!r.f) return cnn_fail(e, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    CnnCsv c = {.path = path, .m = m, .d = d};
    bool ok = cnn_csv_lines(&c, &r, e);
    gzclose(r.f);
    free(r.buf);
    if (!ok) cnn_data_free(d);
    return ok;
}
