/* build.h — writing the emitted files and running the C compiler on them. */
#ifndef CNNC_BUILD_H
#define CNNC_BUILD_H
#include <stdbool.h>
#include "plan.h"

typedef struct BuildOptions {
    const char *output;     /* executable path */
    const char *cc;         /* C compiler: gcc by default (it vectorizes the kernels best) */
    const char *keep_dir;   /* keep the generated C here (--save-temps), or NULL */
    bool verbose;           /* print the compiler command */
} BuildOptions;

/* Writes DIR/<model>.c and DIR/<model>.h; creates DIR if needed.  Both files
 * are written to temporaries and renamed, so a failure leaves nothing half done. */
bool build_emit(Arena *a, const Plan *p, const char *dir);
/* Emits into a temporary directory and compiles and links a standalone executable. */
bool build_executable(Arena *a, const Plan *p, const BuildOptions *o);
#endif
