/* unit.h — the Check suites of tests/unit/, collected by main.c. */
#ifndef CNNC_UNIT_H
#define CNNC_UNIT_H
#include <check.h>
#include <stdio.h>
#include "driver.h"

Suite *shapes_suite(void);
Suite *lexer_suite(void);
Suite *parser_suite(void);
Suite *summary_suite(void);
Suite *robust_suite(void);
Suite *plan_suite(void);

/* Compiles text as a .cnn file; the diagnostics land in *errors (malloc'd). */
static inline bool unit_compile(Compilation *cc, const char *text, char **errors)
{
    size_t n = 0;
    FILE *f = open_memstream(errors, &n);
    bool ok = compile_text(cc, "t.cnn", text, f);
    fclose(f);
    return ok;
}
#endif
