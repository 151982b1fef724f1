/* fuzz_cnn.c — a .cnn file through the whole front end: load, parse, check,
 * plan (compile_file), and for a valid model the C emitter too, since any
 * model the checker accepts must emit. */
#include <stdio.h>
#include "driver.h"
#include "emit.h"
#include "fuzz.h"

static void fuzz_one(const char *path)
{
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    Compilation cc;
    if (compile_file(&cc, path, NULL, sink)) {
        const char *c_text, *h_text;
        emit_model(&cc.arena, cc.plan, &c_text, &h_text);
    }
    compilation_free(&cc);
}
