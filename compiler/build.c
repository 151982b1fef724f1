/* build.c — `cnnc emit` and `cnnc build`: files out, C compiler in.
 *
 * build runs the system C compiler (gcc by default: it keeps the kernels'
 * accumulators in vector registers, see DESIGN.md) on the emitted file and
 * links libcnnrt.a statically, so the executable keeps working after build/
 * is deleted.  The runtime library is looked up beside the cnnc executable,
 * or where CNNC_RUNTIME points; CNNC_CFLAGS adds words to the command line. */
#include "build.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "emit.h"

static bool write_file_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "cnnc: error: cannot write '%s': %s\n", path, strerror(errno));
        return false;
    }
    size_t n = strlen(text);
    bool ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "cnnc: error: cannot write '%s': %s\n", path, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

bool build_emit(Arena *a, const Plan *p, const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cnnc: error: cannot create directory '%s': %s\n", dir, strerror(errno));
        return false;
    }
    const char *c_text, *h_text;
    emit_model(a, p, &c_text, &h_text);
    const char *name = p->m->name;
    return write_file_atomic(arena_printf(a, "%s/%s.h", dir, name), h_text) &&
           write_file_atomic(arena_printf(a, "%s/%s.c", dir, name), c_text);
}

/* libcnnrt.a: $CNNC_RUNTIME, else beside this executable. */
static const char *runtime_library(Arena *a)
{
    const char *env = getenv("CNNC_RUNTIME");
    if (env && *env) return env;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return "libcnnrt.a";
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    return arena_printf(a, "%s/libcnnrt.a", self);
}

static int run_command(char *const argv[], bool verbose)
{
    if (verbose) {
        for (int i = 0; argv[i]; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
        fputc('\n', stderr);
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "cnnc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* fixed[] then the words of $CNNC_CFLAGS (e.g. "-fsanitize=address -g", which
 * `make asan` sets so that executables link the sanitized runtime), NULL-ended. */
static char **compiler_argv(Arena *a, char **fixed, size_t n)
{
    const char *env = getenv("CNNC_CFLAGS");
    size_t extra = 0;
    for (const char *p = env ? env : ""; *p; p++) extra += *p != ' ' && (p[1] == ' ' || p[1] == '\0');
    char **argv = arena_alloc(a, (n + extra + 1) * sizeof *argv);
    memcpy(argv, fixed, n * sizeof *argv);
    for (const char *p = env ? env : ""; *p;) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, " ");
        if (len) argv[n++] = arena_strndup(a, p, len);
        p += len;
    }
    argv[n] = NULL;
    return argv;
}

static void remove_dir(Arena *a, const char *dir, const char *name)
{
    unlink(arena_printf(a, "%s/%s.c", dir, name));
    unlink(arena_printf(a, "%s/%s.h", dir, name));
    rmdir(dir);
}

/* Whether cc is GCC (not clang, which also defines __GNUC__): it asks the
 * compiler for its predefined macros. */
static bool compiler_is_gcc(Arena *a, const char *cc)
{
    if (strchr(cc, '\'')) return false;   /* it is quoted for the shell below */
    const char *cmd = arena_printf(a, "'%s' -dM -E -x c /dev/null 2>/dev/null", cc);
    FILE *f = popen(cmd, "r");
    if (!f) return false;
    bool gnuc = false, clang = false;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        gnuc |= !strncmp(line, "#define __GNUC__ ", 17);
        clang |= !strncmp(line, "#define __clang__ ", 18);
    }
    return pclose(f) == 0 && gnuc && !clang;
}

bool build_executable(Arena *a, const Plan *p, const BuildOptions *o)
{
    const char *lib = runtime_library(a);
    if (access(lib, R_OK) != 0) {
        fprintf(stderr, "cnnc: error: cannot find the runtime library '%s'; run make, or set CNNC_RUNTIME\n", lib);
        return false;
    }
    char tmpl[] = "/tmp/cnnc-XXXXXX";
    const char *dir = o->keep_dir;
    if (!dir && !(dir = mkdtemp(tmpl))) {
        fprintf(stderr, "cnnc: error: cannot create a temporary directory: %s\n", strerror(errno));
        return false;
    }
    bool ok = build_emit(a, p, dir);
    if (ok) {
        const char *src = arena_printf(a, "%s/%s.c", dir, p->m->name);
        const char *inc = arena_printf(a, "-I%s", dir);
        /* With GCC, link-time optimization in parallel partitions: the back end,
         * most of the compile time, then runs on every core (vgg-small: 4.3 s
         * -> 3 s on 2 cores) and the code is the same; small partitions, since
         * the default minimum keeps a model in one.  The last two words. */
        bool lto = compiler_is_gcc(a, o->cc);
        /* -ffp-contract=fast: GCC's ISO C modes default to no fused multiply-add,
         * which halves the kernels' arithmetic rate (clang contracts by default). */
        char *fixed[] = {(char *)o->cc, "-std=c11", "-O3", "-march=native", "-ffp-contract=fast", "-fopenmp",
                         "-Wall", "-Wextra", (char *)inc, (char *)src, (char *)lib, "-lz", "-lm", "-o",
                         (char *)o->output, "-flto=auto", "--param=lto-min-partition=2000"};
        size_t n = sizeof fixed / sizeof fixed[0] - (lto ? 0 : 2);
        int rc = run_command(compiler_argv(a, fixed, n), o->verbose);
        if (rc != 0) {
            fprintf(stderr, "cnnc: error: %s failed (exit %d) on the generated code for '%s'; this is a bug in "
                    "cnnc: please report it with the .cnn file\n", o->cc, rc, p->m->src->path);
            ok = false;
        }
    }
    if (!o->keep_dir) remove_dir(a, dir, p->m->name);
    return ok;
}
