/* dot.h — Graphviz output (`cnnc dot`). */
#ifndef CNNC_DOT_H
#define CNNC_DOT_H
#include <stdio.h>
#include "layers.h"
void dot_print(const Model *m, FILE *out);
#endif
