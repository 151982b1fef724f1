/* main.c — the cnnc command line: `cnnc COMMAND FILE.cnn [options]`.
 * Parses the command and flags, runs the front end (driver.c), then the one
 * back end the command asks for.  Exit status: 0 success, 1 errors in the
 * model, 2 a usage mistake, 3 the build failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "dot.h"
#include "driver.h"
#include "summary.h"

static const char usage[] =
    "usage: cnnc COMMAND FILE.cnn [options]\n"
    "\n"
    "commands:\n"
    "  summary FILE.cnn          the layer table: shapes, parameters, MACs, memory\n"
    "  check FILE.cnn            report errors only; exit 0 when the model is valid\n"
    "  dot FILE.cnn [-o F.dot]   the network as a Graphviz graph\n"
    "  emit FILE.cnn -o DIR      write DIR/<model>.c and DIR/<model>.h\n"
    "  build FILE.cnn -o EXE     emit, compile and link a standalone training executable\n"
    "\n"
    "options:\n"
    "  -o PATH          output file or directory\n"
    "  -v, --verbose    print the C compiler command (build)\n"
    "  --cc CC          C compiler for build (default: gcc, or $CC)\n"
    "  --save-temps DIR keep the generated C files of build in DIR\n"
    "  --winograd N     3x3 stride-1 convs by Winograd F(NxN,3x3): 2 (default), 4 (1.3-1.5x\n"
    "                   faster to train, about 6x the float32 rounding error of 2), 0 (never);\n"
    "                   also $CNNC_WINOGRAD\n"
    "  -h, --help       this text\n"
    "  --version        cnnc's version\n"
    "\n"
    "The built executable has its own --help: EXE train|eval|predict|gradcheck --help.\n";

typedef struct Args {
    const char *command, *file, *output, *cc, *keep;
    bool verbose;
    PlanOptions plan;
} Args;

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "cnnc: error: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
    fputs("run 'cnnc --help' for the commands and options\n", stderr);
    return 2;
}

static int parse_args(int argc, char **argv, Args *a)
{
    memset(a, 0, sizeof *a);
    a->cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "gcc";
    a->plan = plan_default_options();
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        bool has_next = i + 1 < argc;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) { fputs(usage, stdout); exit(0); }
        if (!strcmp(s, "--version")) { puts("cnnc 0.1"); exit(0); }
        if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) a->verbose = true;
        else if (!strcmp(s, "-o") && has_next) a->output = argv[++i];
        else if (!strcmp(s, "--cc") && has_next) a->cc = argv[++i];
        else if (!strcmp(s, "--save-temps") && has_next) a->keep = argv[++i];
        else if (!strncmp(s, "--winograd=", 11) || (!strcmp(s, "--winograd") && has_next)) {
            const char *v = s[10] == '=' ? s + 11 : argv[++i];
            if (strcmp(v, "0") && strcmp(v, "2") && strcmp(v, "4"))
                return usage_error("--winograd takes 0, 2 or 4, not", v);
            a->plan.winograd = atoi(v);
        } else if (!strcmp(s, "-o") || !strcmp(s, "--cc") || !strcmp(s, "--save-temps") || !strcmp(s, "--winograd"))
            return usage_error("missing value after", s);
        else if (s[0] == '-' && s[1]) return usage_error("unknown option", s);
        else if (!a->command) a->command = s;
        else if (!a->file) a->file = s;
        else return usage_error("unexpected argument", s);
    }
    if (!a->command) { fputs(usage, stderr); return 2; }
    static const char *commands[] = {"summary", "check", "dot", "emit", "build"};
    bool known = false;
    for (int i = 0; i < 5; i++) known |= !strcmp(a->command, commands[i]);
    if (!known) return usage_error("unknown command", a->command);
    if (!a->file) return usage_error("missing the .cnn file after", a->command);
    return 0;
}

static int run_command(const Args *a, Compilation *cc)
{
    if (!strcmp(a->command, "summary")) { summary_print(cc->plan, stdout); return 0; }
    if (!strcmp(a->command, "check")) {
        printf("%s: ok\n", a->file);
        return 0;
    }
    if (!strcmp(a->command, "dot")) {
        FILE *f = a->output ? fopen(a->output, "w") : stdout;
        if (!f) { perror(a->output); return 3; }
        dot_print(cc->model, f);
        return (f == stdout ? fflush(f) : fclose(f)) == 0 ? 0 : 3;
    }
    if (!strcmp(a->command, "emit")) return build_emit(&cc->arena, cc->plan, a->output ? a->output : ".") ? 0 : 3;
    BuildOptions o = {.output = a->output ? a->output : cc->model->name, .cc = a->cc, .keep_dir = a->keep,
                      .verbose = a->verbose};
    return build_executable(&cc->arena, cc->plan, &o) ? 0 : 3;
}

int main(int argc, char **argv)
{
    Args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    Compilation cc;
    rc = compile_file(&cc, a.file, &a.plan, stderr) ? run_command(&a, &cc) : 1;
    compilation_free(&cc);
    return rc;
}
