/* summary.h — the layer table (`cnnc summary`) and the number formatting it uses. */
#ifndef CNNC_SUMMARY_H
#define CNNC_SUMMARY_H
#include <stdio.h>
#include <stdlib.h>
#include "plan.h"

void summary_print(const Plan *p, FILE *out);
/* 1234567 -> "1,234,567" into buf; returns buf. */
const char *summary_count(char *buf, size_t n, long v);
#endif
