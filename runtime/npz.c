/* npz.c — .npz files: a zip archive of .npy arrays, as numpy.savez writes.
 *
 * Writing: stored (uncompressed) entries, each a .npy v1.0 file whose header
 * is padded so the data starts on a 64-byte boundary, as numpy writes it;
 * then the central directory and the end record.  Dates are fixed at
 * 1980-01-01 so that equal weights make equal files.  The archive goes to
 * PATH.tmp.<pid>, is fsync'ed, then renamed over PATH, and the directory is
 * fsync'ed so the rename itself survives a power cut: a crash or a full disk
 * never leaves a half-written weights file.  A PATH.tmp.<pid> whose process
 * is gone (it was killed inside a save) is removed by the next save.
 *
 * Reading: the whole file in memory, the central directory parsed from the
 * end record, every size and offset checked against the file before it is
 * used (a hostile file must produce an error, never a crash), stored or
 * deflated entries (numpy.savez_compressed), CRCs checked.  Zip64 is not
 * needed below 4 GiB and is refused.  A fuzzing build
 * (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the macro OSS-Fuzz and
 * libpng use) skips the CRC comparison: almost every mutation breaks the CRC,
 * and the fuzzer would never get past it to the .npy parser. */
#include "rt.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum {
    ZIP_LOCAL_SIG = 0x04034b50, ZIP_CENTRAL_SIG = 0x02014b50, ZIP_END_SIG = 0x06054b50,
    ZIP_LOCAL_SIZE = 30, ZIP_CENTRAL_SIZE = 46, ZIP_END_SIZE = 22,
    ZIP_VERSION = 20, ZIP_DATE_1980_01_01 = (0 << 9) | (1 << 5) | 1,
    NPY_ALIGN = 64,
};

static const struct {
    const char *code;  /* descr without the byte-order character */
    CnnDtype dtype;
    int size;
} cnn_dtypes[] = {
    {"f4", CNN_F4, 4}, {"f8", CNN_F8, 8}, {"i4", CNN_I4, 4},
    {"i8", CNN_I8, 8}, {"u1", CNN_U1, 1}, {"u8", CNN_U8, 8},
};

static int cnn_dtype_size(CnnDtype t)
{
    for (size_t i = 0; i < sizeof cnn_dtypes / sizeof cnn_dtypes[0]; i++)
        if (cnn_dtypes[i].dtype == t) return cnn_dtypes[i].size;
    return 0;
}

/* ---- little-endian fields -------------------------------------------- */

static void cnn_put16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void cnn_put32(unsigned char *p, uint32_t v)
{
    cnn_put16(p, v & 0xffff);
    cnn_put16(p + 2, v >> 16);
}
static uint32_t cnn_get16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t cnn_get32(const unsigned char *p) { return cnn_get16(p) | cnn_get16(p + 2) << 16; }

/* zlib's crc32 takes a uInt length; feed it in pieces. */
static uint32_t cnn_crc(uint32_t crc, const unsigned char *p, uint64_t n)
{
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
}

/* ---- writing ---------------------------------------------------------- */

/* "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" padded with
 * spaces and a newline so that 10 + its length is a multiple of 64. */
static int cnn_npy_header(char *h, size_t cap, CnnDtype t, int ndim, const long *shape)
{
    const char *descr = t == CNN_U1 ? "|u1" : NULL;
    char code[8];
    for (size_t i = 0; !descr && i < sizeof cnn_dtypes / sizeof cnn_dtypes[0]; i++)
        if (cnn_dtypes[i].dtype == t) descr = (snprintf(code, sizeof code, "<%s", cnn_dtypes[i].code), code);
    int n = snprintf(h, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++)
        n += snprintf(h + n, cap - (size_t)n, ndim == 1 ? "%ld," : d ? ", %ld" : "%ld", shape[d]);
    n += snprintf(h + n, cap - (size_t)n, "), }");
    int total = 10 + n + 1;
    int pad = (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
    memset(h + n, ' ', (size_t)pad);
    h[n + pad] = '\n';
    return n + pad + 1;
}

static bool cnn_npz_write(CnnNpzWriter *w, const void *p, size_t n)
{
    if (!w->failed && fwrite(p, 1, n, w->f) != n) w->failed = true;
    w->pos += n;
    return !w->failed;
}

/* Splits path into its directory ("." when it has none) and its file name. */
static void cnn_split_path(const char *path, char *dir, size_t cap, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == path) snprintf(dir, cap, "/");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* Removes BASE.tmp.<pid> files in path's directory whose process no longer
 * exists: what a SIGKILL inside an earlier save left.  A live pid's file is
 * another process's save in progress and stays. */
static void cnn_remove_stale_tmps(const char *path)
{
    char dir[512];
    const char *base;
    cnn_split_path(path, dir, sizeof dir, &base);
    size_t len = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        const char *name = de->d_name;
        if (strncmp(name, base, len) != 0 || strncmp(name + len, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(name + len + 5, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char stale[1100];
        snprintf(stale, sizeof stale, "%s/%s", dir, name);
        remove(stale);
    }
    closedir(d);
}

/* fsync of the directory: makes the rename durable, not only the data. */
static void cnn_sync_dir(const char *path)
{
    char dir[512];
    const char *base;
    cnn_split_path(path, dir, sizeof dir, &base);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

bool cnn_npz_begin(CnnNpzWriter *w, const char *path, CnnErr *e)
{
    cnn_remove_stale_tmps(path);
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid());
    w->f = fopen(w->tmp, "wb");
    if (!w->f) return cnn_fail(e, "%s: cannot write: %s", w->tmp, strerror(errno));
    return true;
}

static void cnn_local_header(unsigned char *h, uint32_t crc, uint32_t size, size_t name_len)
{
    memset(h, 0, ZIP_LOCAL_SIZE);
    cnn_put32(h, ZIP_LOCAL_SIG);
    cnn_put16(h + 4, ZIP_VERSION);
    cnn_put16(h + 12, ZIP_DATE_1980_01_01);
    cnn_put32(h + 14, crc);
    cnn_put32(h + 18, size);
    cnn_put32(h + 22, size);
    cnn_put16(h + 26, (uint32_t)name_len);
}

bool cnn_npz_add(CnnNpzWriter *w, const char *name, CnnDtype t, int ndim, const long *shape,
                 const void *data, CnnErr *e)
{
    char header[512 + 24 * CNN_NPY_MAX_DIMS];
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) count *= (uint64_t)shape[d];
    uint64_t bytes = count * (uint64_t)cnn_dtype_size(t);
    int hlen = cnn_npy_header(header, sizeof header, t, ndim, shape);
    uint64_t size = sizeof magic + (uint64_t)hlen + bytes;
    if (strlen(name) >= CNN_NPY_NAME) return cnn_fail(e, "%s: array name %s is too long", w->path, name);
    if (w->pos + size + 4096 > UINT32_MAX)
        return cnn_fail(e, "%s: the weights would exceed 4 GiB, which .npz without zip64 cannot hold", w->path);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        CnnNpzEntry *ent = realloc(w->ent, (size_t)cap * sizeof *ent);
        if (!ent) return cnn_fail(e, "%s: out of memory", w->path);
        w->ent = ent;
        w->cap = cap;
    }
    cnn_put16(magic + 8, (uint32_t)hlen);
    CnnNpzEntry *en = &w->ent[w->n++];
    snprintf(en->name, sizeof en->name, "%s.npy", name);
    en->crc = cnn_crc(cnn_crc(cnn_crc(0, magic, sizeof magic), (const unsigned char *)header, (uint64_t)hlen),
                      data, bytes);
    en->size = (uint32_t)size;
    en->offset = (uint32_t)w->pos;
    unsigned char lh[ZIP_LOCAL_SIZE];
    size_t name_len = strlen(en->name);
    cnn_local_header(lh, en->crc, en->size, name_len);
    cnn_npz_write(w, lh, sizeof lh);
    cnn_npz_write(w, en->name, name_len);
    cnn_npz_write(w, magic, sizeof magic);
    cnn_npz_write(w, header, (size_t)hlen);
    if (!cnn_npz_write(w, data, (size_t)bytes)) return cnn_fail(e, "%s: write failed: %s", w->tmp, strerror(errno));
    return true;
}

static void cnn_central_header(unsigned char *h, const CnnNpzEntry *en)
{
    memset(h, 0, ZIP_CENTRAL_SIZE);
    cnn_put32(h, ZIP_CENTRAL_SIG);
    cnn_put16(h + 4, ZIP_VERSION | 3u << 8);    /* made by: Unix */
    cnn_put16(h + 6, ZIP_VERSION);
    cnn_put16(h + 14, ZIP_DATE_1980_01_01);
    cnn_put32(h + 16, en->crc);
    cnn_put32(h + 20, en->size);
    cnn_put32(h + 24, en->size);
    cnn_put16(h + 28, (uint32_t)strlen(en->name));
    cnn_put32(h + 38, 0644u << 16);             /* external attributes: rw-r--r-- */
    cnn_put32(h + 42, en->offset);
}

static void cnn_npz_finish(CnnNpzWriter *w)
{
    uint64_t cd_start = w->pos;
    for (int i = 0; i < w->n; i++) {
        unsigned char ch[ZIP_CENTRAL_SIZE];
        cnn_central_header(ch, &w->ent[i]);
        cnn_npz_write(w, ch, sizeof ch);
        cnn_npz_write(w, w->ent[i].name, strlen(w->ent[i].name));
    }
    unsigned char end[ZIP_END_SIZE] = {0};
    cnn_put32(end, ZIP_END_SIG);
    cnn_put16(end + 8, (uint32_t)w->n);
    cnn_put16(end + 10, (uint32_t)w->n);
    cnn_put32(end + 12, (uint32_t)(w->pos - cd_start));
    cnn_put32(end + 16, (uint32_t)cd_start);
    cnn_npz_write(w, end, sizeof end);
}

bool cnn_npz_commit(CnnNpzWriter *w, CnnErr *e)
{
    if (w->n > 0xffff) {
        cnn_npz_abort(w);
        return cnn_fail(e, "%s: too many arrays for a zip without zip64", w->path);
    }
    cnn_npz_finish(w);
    bool ok = !w->failed && fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
    int err = errno;
    ok = fclose(w->f) == 0 && ok;
    w->f = NULL;
    if (ok && rename(w->tmp, w->path) != 0) {
        err = errno;
        ok = false;
    }
    /* best effort: the new file is in place whatever this returns; only its
     * survival of a power cut in the next seconds depends on it */
    if (ok) cnn_sync_dir(w->path);
    if (!ok) {
        cnn_npz_abort(w);
        return cnn_fail(e, "%s: could not save: %s", w->path, strerror(err));
    }
    free(w->ent);
    w->ent = NULL;
    return true;
}

void cnn_npz_abort(CnnNpzWriter *w)
{
    if (w->f) fclose(w->f);
    w->f = NULL;
    remove(w->tmp);
    free(w->ent);
    w->ent = NULL;
}

/* ---- reading: the .npy header ------------------------------------------ */

/* Finds 'key' in the header dict and returns what follows its colon. */
static const char *cnn_npy_key(const char *h, const char *key)
{
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *p = strstr(h, quoted);
    if (!p) return NULL;
    p += strlen(quoted);
    while (*p == ' ') p++;
    if (*p++ != ':') return NULL;
    while (*p == ' ') p++;
    return p;
}

static bool cnn_npy_descr(const char *h, CnnArray *a)
{
    const char *p = cnn_npy_key(h, "descr");
    if (!p || (*p != '\'' && *p != '"')) return false;
    const char *end = strchr(p + 1, *p);
    if (!end || end - p - 1 >= (long)sizeof a->descr) return false;
    memcpy(a->descr, p + 1, (size_t)(end - p - 1));
    a->descr[end - p - 1] = 0;
    a->dtype = CNN_DTYPE_OTHER;
    char order = a->descr[0];
    bool little = order == '<' || order == '|' || order == '=';
    for (size_t i = 0; little && i < sizeof cnn_dtypes / sizeof cnn_dtypes[0]; i++)
        if (strcmp(a->descr + 1, cnn_dtypes[i].code) == 0) a->dtype = cnn_dtypes[i].dtype;
    if (strcmp(a->descr + 1, "i1") == 0 && little) a->dtype = CNN_DTYPE_OTHER;
    return true;
}

static bool cnn_npy_shape(const char *h, CnnArray *a)
{
    const char *p = cnn_npy_key(h, "shape");
    if (!p || *p++ != '(') return false;
    a->ndim = 0;
    a->count = 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') return true;
        if (*p < '0' || *p > '9' || a->ndim == CNN_NPY_MAX_DIMS) return false;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || v < 0 || (v > 0 && a->count > LONG_MAX / v)) return false;
        a->shape[a->ndim++] = v;
        a->count *= v;
        p = end;
    }
}

/* Parses one .npy held in bytes [p, p+n). */
static bool cnn_npy_parse(const unsigned char *p, uint64_t n, CnnArray *a)
{
    if (n < 12 || memcmp(p, "\x93NUMPY", 6) != 0) return false;
    uint64_t hlen = p[6] == 1 ? cnn_get16(p + 8) : cnn_get32(p + 8);
    uint64_t start = p[6] == 1 ? 10 : 12;
    if (p[6] < 1 || p[6] > 3 || start + hlen > n || hlen > 65536) return false;
    char h[65537];
    memcpy(h, p + start, (size_t)hlen);
    h[hlen] = 0;
    const char *fo = cnn_npy_key(h, "fortran_order");
    if (!fo || !cnn_npy_descr(h, a) || !cnn_npy_shape(h, a)) return false;
    int size = cnn_dtype_size(a->dtype);
    if (strncmp(fo, "True", 4) == 0 && a->ndim > 1) {
        a->dtype = CNN_DTYPE_OTHER;   /* column-major data would load transposed */
        snprintf(a->descr, sizeof a->descr, "fortran-order");
    }
    if (size && (uint64_t)a->count > (n - start - hlen) / (uint64_t)size) return false;
    a->data = p + start + hlen;
    return true;
}

/* ---- reading: the zip ---------------------------------------------------- */

static bool cnn_read_file(CnnNpz *z, CnnErr *e)
{
    FILE *f = fopen(z->path, "rb");
    if (!f) return cnn_fail(e, "%s: cannot open: %s", z->path, strerror(errno));
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (size < 0 || (unsigned long long)size > CNN_MAX_FILE_BYTES) {
        fclose(f);
        return cnn_fail(e, "%s: not a readable file under 4 GiB", z->path);
    }
    rewind(f);
    z->size = (size_t)size;
    z->file = malloc(z->size + 1);
    bool ok = z->file && fread(z->file, 1, z->size, f) == z->size;
    fclose(f);
    if (!ok) return cnn_fail(e, "%s: cannot read %zu bytes", z->path, z->size);
    return true;
}

/* The end-of-central-directory record: the last 22 bytes, unless the zip has
 * a comment, so search back over at most 64 KiB of comment. */
static long cnn_find_end(const CnnNpz *z)
{
    if (z->size < ZIP_END_SIZE) return -1;
    long stop = (long)z->size - ZIP_END_SIZE - 0xffff;
    for (long i = (long)z->size - ZIP_END_SIZE; i >= 0 && i >= stop; i--)
        if (cnn_get32(z->file + i) == ZIP_END_SIG && i + ZIP_END_SIZE + cnn_get16(z->file + i + 20) <= (long)z->size)
            return i;
    return -1;
}

/* Inflates a raw deflate stream of exactly `out_size` bytes. */
static unsigned char *cnn_inflate(const unsigned char *in, uint32_t in_size, uint32_t out_size)
{
    unsigned char *out = malloc(out_size ? out_size : 1);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (!out || inflateInit2(&s, -MAX_WBITS) != Z_OK) {
        free(out);
        return NULL;
    }
    s.next_in = (unsigned char *)in;
    s.avail_in = in_size;
    s.next_out = out;
    s.avail_out = out_size;
    int rc = inflate(&s, Z_FINISH);
    bool ok = rc == Z_STREAM_END && s.total_out == out_size;
    inflateEnd(&s);
    if (!ok) free(out);
    return ok ? out : NULL;
}

/* The bytes of entry i: checks its local header and sizes, inflates if it
 * must; *bytes and *n describe the uncompressed .npy. */
static bool cnn_npz_entry(CnnNpz *z, int i, const unsigned char *ch, const char *name,
                          const unsigned char **bytes, uint32_t *n, CnnErr *e)
{
    uint32_t flags = cnn_get16(ch + 8), method = cnn_get16(ch + 10), crc = cnn_get32(ch + 16);
    uint32_t csize = cnn_get32(ch + 20), usize = cnn_get32(ch + 24), off = cnn_get32(ch + 42);
    if (csize == UINT32_MAX || usize == UINT32_MAX || off == UINT32_MAX)
        return cnn_fail(e, "%s: entry %s uses zip64, which is not supported", z->path, name);
    if (flags & 1) return cnn_fail(e, "%s: entry %s is encrypted", z->path, name);
    if ((uint64_t)off + ZIP_LOCAL_SIZE > z->size || cnn_get32(z->file + off) != ZIP_LOCAL_SIG)
        return cnn_fail(e, "%s: entry %s: bad local header offset", z->path, name);
    uint64_t data = (uint64_t)off + ZIP_LOCAL_SIZE + cnn_get16(z->file + off + 26) + cnn_get16(z->file + off + 28);
    if (data + csize > z->size) return cnn_fail(e, "%s: entry %s runs past the end of the file", z->path, name);
    if (method == 0 && csize == usize) {
        *bytes = z->file + data;
    } else if (method == 8) {
        /* deflate expands at most 1032:1; a larger claim is a corrupt header, refused before allocating it */
        if (usize > (uint64_t)csize * 1032 + 64)
            return cnn_fail(e, "%s: entry %s claims %u bytes from %u compressed, more than deflate can give "
                            "(corrupt file)", z->path, name, usize, csize);
        z->inflated[i] = cnn_inflate(z->file + data, csize, usize);
        if (!z->inflated[i]) return cnn_fail(e, "%s: entry %s: corrupt deflate data", z->path, name);
        *bytes = z->inflated[i];
    } else if (method == 0) {
        return cnn_fail(e, "%s: entry %s: stored sizes disagree (%u vs %u)", z->path, name, csize, usize);
    } else {
        return cnn_fail(e, "%s: entry %s: unsupported compression method %u", z->path, name, method);
    }
    *n = usize;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    if (cnn_crc(0, *bytes, usize) != crc) return cnn_fail(e, "%s: entry %s: CRC mismatch (corrupt file)", z->path, name);
#else
    (void)crc;
#endif
    return true;
}

/* Parses central directory record *pos, adding its array; advances *pos. */
static bool cnn_npz_central(CnnNpz *z, int i, uint64_t *pos, uint64_t cd_end, uint64_t *total, CnnErr *e)
{
    if (*pos + ZIP_CENTRAL_SIZE > cd_end || cnn_get32(z->file + *pos) != ZIP_CENTRAL_SIG)
        return cnn_fail(e, "%s: corrupt central directory (record %d)", z->path, i);
    const unsigned char *ch = z->file + *pos;
    uint32_t nlen = cnn_get16(ch + 28), xlen = cnn_get16(ch + 30), clen = cnn_get16(ch + 32);
    if (*pos + ZIP_CENTRAL_SIZE + nlen + xlen + clen > cd_end)
        return cnn_fail(e, "%s: corrupt central directory (record %d)", z->path, i);
    char name[CNN_NPY_NAME + 8];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < CNN_NPY_NAME + 4 ? nlen : CNN_NPY_NAME + 4), (const char *)ch + ZIP_CENTRAL_SIZE);
    *pos += ZIP_CENTRAL_SIZE + nlen + xlen + clen;
    size_t len = strlen(name);
    if (len < 4 || len != nlen || strcmp(name + len - 4, ".npy") != 0) return true;   /* not an array: ignore */
    *total += cnn_get32(ch + 24);
    if (*total > CNN_MAX_FILE_BYTES) return cnn_fail(e, "%s: arrays add up to more than 4 GiB", z->path);
    const unsigned char *bytes = NULL;
    uint32_t n = 0;
    if (!cnn_npz_entry(z, i, ch, name, &bytes, &n, e)) return false;
    CnnArray *a = &z->arr[z->n];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%.*s", (int)(len - 4), name);
    if (!cnn_npy_parse(bytes, n, a)) return cnn_fail(e, "%s: entry %s is not a valid .npy array", z->path, name);
    z->n++;
    return true;
}

bool cnn_npz_load(CnnNpz *z, const char *path, CnnErr *e)
{
    memset(z, 0, sizeof *z);
    snprintf(z->path, sizeof z->path, "%s", path);
    if (!cnn_read_file(z, e)) goto fail;
    long end = cnn_find_end(z);
    if (end < 0) {
        cnn_fail(e, "%s: not an .npz file (no zip end record)", path);
        goto fail;
    }
    int count = (int)cnn_get16(z->file + end + 10);
    uint64_t cd_size = cnn_get32(z->file + end + 12), cd_off = cnn_get32(z->file + end + 16);
    if (cd_off + cd_size > (uint64_t)end) {
        cnn_fail(e, "%s: corrupt zip directory (offset past the end)", path);
        goto fail;
    }
    z->arr = calloc((size_t)count + 1, sizeof *z->arr);
    z->inflated = calloc((size_t)count + 1, sizeof *z->inflated);
    z->ninflated = count;
    if (!z->arr || !z->inflated) {
        cnn_fail(e, "%s: out of memory", path);
        goto fail;
    }
    uint64_t pos = cd_off, total = 0;
    for (int i = 0; i < count; i++)
        if (!cnn_npz_central(z, i, &pos, cd_off + cd_size, &total, e)) goto fail;
    return true;
fail:
    cnn_npz_free(z);
    return false;
}

const CnnArray *cnn_npz_get(const CnnNpz *z, const char *name)
{
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->arr[i].name, name) == 0) return &z->arr[i];
    return NULL;
}

void cnn_npz_free(CnnNpz *z)
{
    if (z->inflated)
        for (int i = 0; i < z->ninflated; i++) free(z->inflated[i]);
    free(z->inflated);
    free(z->arr);
    free(z->file);
    z->inflated = NULL;
    z->arr = NULL;
    z->file = NULL;
    z->n = z->ninflated = 0;
}

bool cnn_array_floats(const CnnArray *a, float *out)
{
    if (a->dtype == CNN_F4) {
        memcpy(out, a->data, (size_t)a->count * sizeof(float));
        return true;
    }
    if (a->dtype != CNN_F8) return false;
    for (long i = 0; i < a->count; i++) {
        double d;
        memcpy(&d, a->data + 8 * i, 8);
        out[i] = (float)d;
    }
    return true;
}

bool cnn_array_ints(const CnnArray *a, int64_t *out)
{
    int size = cnn_dtype_size(a->dtype);
    if (a->dtype == CNN_F4 || a->dtype == CNN_F8 || size == 0) return false;
    for (long i = 0; i < a->count; i++) {
        const unsigned char *p = a->data + (size_t)size * (size_t)i;
        int32_t i4;
        uint64_t u8;
        switch (a->dtype) {
        case CNN_U1: out[i] = p[0]; break;
        case CNN_I4: memcpy(&i4, p, 4); out[i] = i4; break;
        case CNN_I8: memcpy(&out[i], p, 8); break;
        default: memcpy(&u8, p, 8); out[i] = u8 > INT64_MAX ? -1 : (int64_t)u8; break;
        }
    }
    return true;
}

const char *cnn_array_shape_str(const CnnArray *a, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < a->ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? ", %ld" : "%ld", a->shape[d]);
    if (used < n) snprintf(buf + used, n - used, a->ndim == 1 ? ",)" : ")");
    return buf;
}
