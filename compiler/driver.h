/* driver.h — running the stages on one file: load → parse → check → plan. */
#ifndef CNNC_DRIVER_H
#define CNNC_DRIVER_H
#include <stdio.h>
#include "plan.h"

typedef struct Compilation {
    Arena arena;
    Diag diag;
    const Source *src;
    Model *model;
    Plan *plan;
} Compilation;

/* Runs the front end on path with options o (NULL: plan_default_options()),
 * reporting to `errors`.  Returns true when the model is valid; either way cc
 * must be released with compilation_free. */
bool compile_file(Compilation *cc, const char *path, const PlanOptions *o, FILE *errors);
/* The same on text in memory (tests). */
bool compile_text(Compilation *cc, const char *path, const char *text, FILE *errors);
void compilation_free(Compilation *cc);
#endif
