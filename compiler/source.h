/* source.h — a .cnn file's text and where its lines start.
 * Locations everywhere are byte offsets (Loc); line and column are computed
 * from the line table only when a diagnostic is printed. */
#ifndef CNNC_SOURCE_H
#define CNNC_SOURCE_H
#include <stddef.h>
#include "arena.h"

typedef struct Loc { int off, len; } Loc;

typedef struct Source {
    const char *path;     /* as the user named it */
    const char *text;     /* NUL-terminated copy; embedded NULs are kept in len */
    int len;
    int *line_start;      /* offsets of each line's first byte */
    int nlines;
} Source;

/* Reads path into the arena.  On failure returns NULL and sets *why to a
 * sentence ("No such file or directory", "is a directory", "is larger than 16 MiB"). */
Source *source_load(Arena *a, const char *path, const char **why);
Source *source_from_string(Arena *a, const char *path, const char *text, int len);
void source_line_col(const Source *s, int off, int *line, int *col);
/* The text of the line holding off, without its newline. */
const char *source_line_text(const Source *s, int off, int *len);
#endif
