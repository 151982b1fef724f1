/* diag.h — every message cnnc gives about a .cnn file.
 * Format (SPEC §1 "Errors"):
 *     net.cnn:4:1: error: conv 7x7 does not fit its 3x3x20 input ...; use ...
 *         conv 7x7x40
 *         ^~~~
 * Stages report here and never print on their own or exit; the driver looks
 * at the error count and decides. After DIAG_MAX_ERRORS the rest are dropped. */
#ifndef CNNC_DIAG_H
#define CNNC_DIAG_H
#include <stdbool.h>
#include <stdio.h>
#include "source.h"

enum { DIAG_MAX_ERRORS = 20 };

typedef struct Diag {
    const Source *src;
    FILE *out;          /* stderr, or a memory stream in tests */
    int errors;
    bool color;
} Diag;

void diag_init(Diag *d, const Source *src, FILE *out);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note belongs to the error just reported ("the matching pool is here"). */
void diag_note(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* True once the cap is reached: callers may stop early. */
bool diag_full(const Diag *d);
#endif
