/* check.h — statements to a checked Model (see check.c). */
#ifndef CNNC_CHECK_H
#define CNNC_CHECK_H
#include "arena.h"
#include "ast.h"
#include "diag.h"
#include "layers.h"

/* Returns the model; it is usable only if d->errors is still 0. */
Model *check_model(Arena *a, Diag *d, const Ast *ast);
#endif
