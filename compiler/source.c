/* source.c — loading a .cnn file and mapping byte offsets to line:column. */
#include "source.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* A model is a few lines; 16 MiB leaves room for generated files while keeping
 * a hostile input from exhausting memory. */
enum { SOURCE_MAX = 16 << 20 };

static void source_index_lines(Arena *a, Source *s)
{
    int n = 1;
    for (int i = 0; i < s->len; i++)
        if (s->text[i] == '\n') n++;
    s->line_start = ARENA_ARRAY(a, int, n);
    s->nlines = 0;
    s->line_start[s->nlines++] = 0;
    for (int i = 0; i < s->len; i++)
        if (s->text[i] == '\n') s->line_start[s->nlines++] = i + 1;
}

Source *source_from_string(Arena *a, const char *path, const char *text, int len)
{
    Source *s = ARENA_NEW(a, Source);
    s->path = arena_strndup(a, path, strlen(path));
    s->text = arena_strndup(a, text, (size_t)len);
    s->len = len;
    source_index_lines(a, s);
    return s;
}

Source *source_load(Arena *a, const char *path, const char **why)
{
    struct stat st;
    if (stat(path, &st) != 0) { *why = strerror(errno); return NULL; }
    if (S_ISDIR(st.st_mode)) { *why = "is a directory, not a .cnn file"; return NULL; }
    FILE *f = fopen(path, "rb");
    if (!f) { *why = strerror(errno); return NULL; }
    /* Room for one byte more than allowed, so a too-large file shows; a regular
     * file needs only its size (not 16 MiB per compilation). */
    size_t cap = SOURCE_MAX + 1;
    if (S_ISREG(st.st_mode) && st.st_size < SOURCE_MAX) cap = (size_t)st.st_size + 1;
    char *buf = arena_alloc(a, cap + 1);
    size_t n = fread(buf, 1, cap, f);
    int err = ferror(f);
    fclose(f);
    if (err) { *why = "could not be read"; return NULL; }
    if (n > SOURCE_MAX) { *why = "is larger than 16 MiB; a model file is a few lines"; return NULL; }
    Source *s = ARENA_NEW(a, Source);
    s->path = arena_strndup(a, path, strlen(path));
    s->text = buf;
    s->len = (int)n;
    buf[n] = '\0';
    source_index_lines(a, s);
    return s;
}

void source_line_col(const Source *s, int off, int *line, int *col)
{
    int lo = 0, hi = s->nlines - 1;
    while (lo < hi) {   /* last line start <= off */
        int mid = (lo + hi + 1) / 2;
        if (s->line_start[mid] <= off) lo = mid; else hi = mid - 1;
    }
    *line = lo + 1;
    *col = off - s->line_start[lo] + 1;
}

const char *source_line_text(const Source *s, int off, int *len)
{
    int line, col;
    source_line_col(s, off, &line, &col);
    int start = s->line_start[line - 1], end = start;
    while (end < s->len && s->text[end] != '\n') end++;
    if (end > start && s->text[end - 1] == '\r') end--;
    *len = end - start;
    return s->text + start;
}
