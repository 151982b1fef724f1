/* data_image.c — single pictures for `predict`: PGM (P2 text, P5 binary)
 * for one-channel models and PPM (P3, P6) for three-channel ones, 8-bit.
 *
 * Header: magic, width, height, maxval, separated by whitespace, with
 * `#` comments to the end of a line; binary data starts after exactly one
 * whitespace byte.  Samples are scaled by 1/maxval to [0, 1], like the
 * ubyte IDX images the model was trained on (maxval 255: exactly /255). */
#include "rt.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct CnnPnm {
    const unsigned char *p, *end;
} CnnPnm;

static void cnn_pnm_space(CnnPnm *s)
{
    while (s->p < s->end && (isspace(*s->p) || *s->p == '#')) {
        if (*s->p == '#')
            while (s->p < s->end && *s->p != '\n') s->p++;
        else
            s->p++;
    }
}

/* A decimal number in the header or a text body; -1 when there is none. */
static long cnn_pnm_number(CnnPnm *s)
{
    cnn_pnm_space(s);
    long v = 0;
    if (s->p >= s->end || !isdigit(*s->p)) return -1;
    while (s->p < s->end && isdigit(*s->p) && v < 1000000) v = v * 10 + (*s->p++ - '0');
    return v;
}

static bool cnn_pnm_pixels(CnnPnm *s, bool binary, long n, long maxval, float *x)
{
    if (binary) {
        if (s->p >= s->end || !isspace(*s->p)) return false;
        s->p++;
        if (s->end - s->p < n) return false;
        for (long i = 0; i < n; i++) x[i] = (float)s->p[i] / (float)maxval;
        return true;
    }
    for (long i = 0; i < n; i++) {
        long v = cnn_pnm_number(s);
        if (v < 0 || v > maxval) return false;
        x[i] = (float)v / (float)maxval;
    }
    return true;
}

static bool cnn_pnm_parse(const char *path, const unsigned char *buf, size_t size, const CnnModel *m, float *x,
                          CnnErr *e)
{
    CnnPnm s = {buf, buf + size};
    char kind = size >= 2 && buf[0] == 'P' ? (char)buf[1] : 0;
    if (kind != '2' && kind != '5' && kind != '3' && kind != '6')
        return cnn_fail(e, "%s: not a PGM (P2/P5), PPM (P3/P6) or IDX file", path);
    s.p += 2;
    int c = kind == '3' || kind == '6' ? 3 : 1;
    long w = cnn_pnm_number(&s), h = cnn_pnm_number(&s), maxval = cnn_pnm_number(&s);
    if (w < 1 || h < 1 || maxval < 1) return cnn_fail(e, "%s: bad P%c header", path, kind);
    if (maxval > 255) return cnn_fail(e, "%s: %ld-level samples; only 8-bit pictures (maxval <= 255) are supported", path, maxval);
    if (h != m->in_h || w != m->in_w || c != m->in_c)
        return cnn_fail(e, "%s: picture is %ldx%ldx%d (HxWxC) but model %s takes %dx%dx%d", path, h, w, c, m->name,
                        m->in_h, m->in_w, m->in_c);
    if (!cnn_pnm_pixels(&s, kind == '5' || kind == '6', h * w * c, maxval, x))
        return cnn_fail(e, "%s: truncated or malformed pixel data", path);
    return true;
}

bool cnn_image_load(const char *path, const CnnModel *m, float *x, CnnErr *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cnn_fail(e, "%s: cannot open: %s", path, strerror(errno));
    /* The largest 8-bit picture a model could take, plus a generous header. */
    size_t cap = (size_t)cnn_model_in_floats(m) * 4 + 65536;
    unsigned char *buf = malloc(cap);
    size_t size = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (!buf) return cnn_fail(e, "%s: out of memory", path);
    bool ok = cnn_pnm_parse(path, buf, size, m, x, e);
    free(buf);
    return ok;
}
