/* diag.c — printing errors with file:line:col, the quoted line and a caret. */
#include "diag.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A 10 MB line must not be echoed whole: quote a window around the error. */
enum { QUOTE_BEFORE = 60, QUOTE_WIDTH = 120 };

void diag_init(Diag *d, const Source *src, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->src = src;
    d->out = out;
    d->color = out == stderr && isatty(fileno(stderr)) && !getenv("NO_COLOR");
}

bool diag_full(const Diag *d) { return d->errors >= DIAG_MAX_ERRORS; }

/* Prints the line holding loc, then ^~~~ under the loc's bytes. */
static void diag_quote(Diag *d, Loc loc)
{
    int len;
    const char *line = source_line_text(d->src, loc.off, &len);
    int col = (int)(d->src->text + loc.off - line);
    int from = col > QUOTE_BEFORE ? col - QUOTE_BEFORE : 0;
    int to = from + QUOTE_WIDTH < len ? from + QUOTE_WIDTH : len;
    fputs("    ", d->out);
    if (from > 0) fputs("...", d->out);
    for (int i = from; i < to; i++) {
        unsigned char c = (unsigned char)line[i];
        fputc(c == '\t' || (c >= 32 && c < 127) || c >= 128 ? c : '?', d->out);
    }
    if (to < len) fputs("...", d->out);
    fputs("\n    ", d->out);
    if (from > 0) fputs("   ", d->out);
    for (int i = from; i < col && i < to; i++) fputc(line[i] == '\t' ? '\t' : ' ', d->out);
    int width = loc.len;
    if (col + width > len) width = len - col;   /* a token never runs past its line */
    if (col + width > to) width = to - col;
    fputc('^', d->out);
    for (int i = 1; i < width; i++) fputc('~', d->out);
    fputc('\n', d->out);
}

static void diag_vreport(Diag *d, const char *kind, const char *color, Loc loc,
                         const char *fmt, va_list ap)
{
    int line, col;
    if (loc.off > d->src->len) loc.off = d->src->len;
    source_line_col(d->src, loc.off, &line, &col);
    if (d->color) fputs("\033[1m", d->out);
    fprintf(d->out, "%s:%d:%d: ", d->src->path, line, col);
    if (d->color) fprintf(d->out, "%s", color);
    fprintf(d->out, "%s: ", kind);
    if (d->color) fputs("\033[0m\033[1m", d->out);
    vfprintf(d->out, fmt, ap);
    if (d->color) fputs("\033[0m", d->out);
    fputc('\n', d->out);
    diag_quote(d, loc);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
{
    if (d->errors++ >= DIAG_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(d, "error", "\033[31m", loc, fmt, ap);
    va_end(ap);
    if (d->errors == DIAG_MAX_ERRORS)
        fprintf(d->out, "%s: too many errors (%d); stopping here\n", d->src->path, DIAG_MAX_ERRORS);
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...)
{
    if (d->errors > DIAG_MAX_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(d, "note", "\033[36m", loc, fmt, ap);
    va_end(ap);
}
