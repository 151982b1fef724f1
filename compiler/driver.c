/* driver.c — the pass list.  Reading it top to bottom is reading the
 * architecture: source → parse (flex + bison) → check (shapes, counts) → plan
 * (buffers and tensors).  summary, dot and emit all start from its result. */
#include "driver.h"
#include <string.h>
#include "check.h"

static bool compile_source(Compilation *cc, const Source *src, const PlanOptions *o, FILE *errors)
{
    cc->src = src;
    diag_init(&cc->diag, src, errors);
    Ast *ast = parse_source(&cc->arena, &cc->diag, src);
    cc->model = check_model(&cc->arena, &cc->diag, ast);
    if (cc->diag.errors) return false;
    cc->plan = plan_model(&cc->arena, &cc->diag, cc->model, o);
    return cc->diag.errors == 0;
}

bool compile_file(Compilation *cc, const char *path, const PlanOptions *o, FILE *errors)
{
    memset(cc, 0, sizeof *cc);
    const char *why = NULL;
    const Source *src = source_load(&cc->arena, path, &why);
    if (!src) {
        fprintf(errors, "cnnc: error: cannot read '%s': %s\n", path, why);
        return false;
    }
    return compile_source(cc, src, o, errors);
}

bool compile_text(Compilation *cc, const char *path, const char *text, FILE *errors)
{
    memset(cc, 0, sizeof *cc);
    return compile_source(cc, source_from_string(&cc->arena, path, text, (int)strlen(text)), NULL, errors);
}

void compilation_free(Compilation *cc)
{
    arena_free(&cc->arena);
}
