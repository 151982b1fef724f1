/* test_robust.c — hostile inputs to the built compiler (build/cnnc, or $CNNC).
 *
 * cnnc runs in a child process on each input, written at test time into a
 * fresh temporary directory.  Whatever the input, cnnc must end by exiting
 * (never by a signal), with 1 for a bad model or 2 for a usage mistake (0 only
 * where the model is valid), print a `file:line:col: error:` or
 * `cnnc: error:` line, keep its stderr short, and finish in a few seconds. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "unit.h"

typedef struct Run {
    int status;          /* from waitpid */
    char *err;           /* stderr, NUL-terminated (malloc'd) */
    size_t err_len;
    double seconds;
} Run;

static char tmpdir[64];

static const char *cnnc_path(void)
{
    const char *p = getenv("CNNC");
    return p && *p ? p : "build/cnnc";
}

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/cnnc-robust-XXXXXX");
    if (!mkdtemp(tmpdir)) {   /* an unchecked fixture may not use ck_assert */
        perror("mkdtemp");
        abort();
    }
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* Writes n bytes to tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *data, size_t n)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    *n = fread(s, 1, (size_t)len, f);
    s[*n] = '\0';
    fclose(f);
    return s;
}

/* Runs cnnc with argv (argv[0] "cnnc", NULL-ended); stdout to tmpdir/stdout.txt, stderr captured. */
static Run run_cnnc_argv(char *const argv[])
{
    Run r = {0};
    char errpath[128], outpath[128];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
    snprintf(outpath, sizeof outpath, "%s/stdout.txt", tmpdir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int out = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0) _exit(127);
        dup2(out, 1);
        dup2(err, 2);
        execv(cnnc_path(), argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &r.status, 0), pid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(!(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 127), "could not run %s", cnnc_path());
    r.err = read_all(errpath, &r.err_len);
    return r;
}

/* Runs `cnnc command file`. */
static Run run_cnnc(const char *command, const char *file)
{
    return run_cnnc_argv((char *const[]){"cnnc", (char *)command, (char *)file, NULL});
}

/* A line `<anything>:N:N: error: ` or `cnnc: error: `. */
static bool has_error_line(const char *err)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^([^\n]*:[0-9]+:[0-9]+|cnnc): error: ", REG_EXTENDED | REG_NEWLINE), 0);
    bool found = regexec(&re, err, 0, NULL, 0) == 0;
    regfree(&re);
    return found;
}

/* The contract for a bad input: exit 1 (not a signal), an error line, short stderr. */
static void assert_refused(const Run *r, const char *what)
{
    ck_assert_msg(!WIFSIGNALED(r->status), "%s: killed by signal %d", what, WTERMSIG(r->status));
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1, "%s: exit %d", what,
                  WEXITSTATUS(r->status));
    ck_assert_msg(has_error_line(r->err), "%s: no error line in:\n%.2000s", what, r->err);
    ck_assert_msg(r->err_len < 64 * 1024, "%s: %zu bytes of stderr", what, r->err_len);
    ck_assert_msg(r->seconds < 5, "%s: took %.1f s", what, r->seconds);
}

static void assert_accepted(const Run *r, const char *what)
{
    ck_assert_msg(!WIFSIGNALED(r->status), "%s: killed by signal %d", what, WTERMSIG(r->status));
    ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "%s: exit %d:\n%.2000s", what,
                  WEXITSTATUS(r->status), r->err);
    ck_assert_msg(r->seconds < 5, "%s: took %.1f s", what, r->seconds);
}

static void check_text(const char *name, const char *text, const char *want_in_err)
{
    const char *path = write_file(name, text, strlen(text));
    static const char *commands[] = {"check", "summary", "dot"};
    for (int i = 0; i < 3; i++) {
        Run r = run_cnnc(commands[i], path);
        assert_refused(&r, name);
        ck_assert_msg(strstr(r.err, want_in_err) != NULL, "%s (%s): wanted '%s' in:\n%.2000s", name, commands[i],
                      want_in_err, r.err);
        free(r.err);
    }
}

START_TEST(ten_megabyte_line)
{
    size_t n = 10u << 20;
    char *text = malloc(n + 32);
    strcpy(text, "input 8x8x1\nrelu ");
    size_t head = strlen(text);
    memset(text + head, 'x', n);
    text[head + n] = '\n';
    const char *path = write_file("long.cnn", text, head + n + 1);
    Run r = run_cnnc("check", path);
    assert_refused(&r, "10 MB line");
    ck_assert_ptr_nonnull(strstr(r.err, "long.cnn:2:6: error: "));
    ck_assert_msg(r.err_len < 4096, "the 10 MB token was echoed: %zu bytes", r.err_len);
    free(r.err);
    /* the same with a 10 MB number: too big for any option, and not echoed either */
    memset(text + head, '7', n);
    memcpy(text, "input 8x8x1\nconv ", head);
    path = write_file("long-number.cnn", text, head + n + 1);
    r = run_cnnc("check", path);
    assert_refused(&r, "10 MB number");
    ck_assert_msg(r.err_len < 4096, "the 10 MB number was echoed: %zu bytes", r.err_len);
    free(r.err);
    free(text);
}
END_TEST

START_TEST(nul_byte)
{
    static const char text[] = "input 8x8x1\nconv 3x3x2\0\n";
    const char *path = write_file("nul.cnn", text, sizeof text - 1);
    Run r = run_cnnc("check", path);
    assert_refused(&r, "NUL byte");
    ck_assert_ptr_nonnull(strstr(r.err, "nul.cnn:2:11: error: NUL byte in the model"));
    free(r.err);
}
END_TEST

START_TEST(bad_values)
{
    check_text("zero.cnn", "input 8x8x1\nconv 0x0x0\n", "zero.cnn:2:6: error: conv 0x0x0");
    check_text("overflow.cnn", "input 8x8x1\nconv 3x3x2 stride=99999999999999999999\n",
               "overflow.cnn:2:19: error: stride must be between 1 and 4096");
    check_text("dims-overflow.cnn", "input 99999999999999999999x8x1\nrelu\n", "dims-overflow.cnn:1:7: error: ");
    check_text("neg.cnn", "input 8x8x1\nconv -3x3x2\n", "neg.cnn:2:6: error: ");
}
END_TEST

START_TEST(empty_file)
{
    check_text("empty.cnn", "", "empty.cnn:1:1: error: the model has no input line");
    check_text("blank.cnn", "\n\n  \n# nothing\n", "blank.cnn:1:1: error: the model has no input line");
}
END_TEST

START_TEST(directory_and_missing_file)
{
    Run r = run_cnnc("check", tmpdir);
    assert_refused(&r, "a directory");
    ck_assert_ptr_nonnull(strstr(r.err, "cnnc: error: cannot read"));
    ck_assert_ptr_nonnull(strstr(r.err, "is a directory"));
    free(r.err);
    char path[128];
    snprintf(path, sizeof path, "%s/no-such-file.cnn", tmpdir);
    r = run_cnnc("summary", path);
    assert_refused(&r, "a missing file");
    ck_assert_ptr_nonnull(strstr(r.err, "cnnc: error: cannot read"));
    ck_assert_ptr_nonnull(strstr(r.err, "No such file or directory"));
    free(r.err);
}
END_TEST

START_TEST(usage_mistakes_exit_2)
{
    static const char *commands[] = {"check", "frobnicate"};
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(cnnc_path(), "cnnc", commands[i], (char *)NULL);
            _exit(127);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "cnnc %s: status %d", commands[i], status);
    }
}
END_TEST

/* The line of `cnnc summary` that starts with prefix, from tmpdir/stdout.txt (malloc'd, or NULL). */
static char *summary_line(const char *prefix)
{
    char path[128];
    snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
    size_t n;
    char *all = read_all(path, &n), *line = strstr(all, prefix), *copy = NULL;
    if (line) copy = strndup(line, strcspn(line, "\n"));
    free(all);
    return copy;
}

/* --winograd: 0, 2 and 4 are taken, and the plan sizes its buffers by them (F(4×4)'s
   transformed weights are (4+2)²/(2+2)² = 2.25 times F(2×2)'s); anything else is a usage
   mistake that names the values. */
START_TEST(winograd_option)
{
    const char *model = "input 16x16x16\nconv 3x3x32 pad=1; relu\nconv 3x3x32 pad=1\nfc 10\n";
    char *path = strdup(write_file("w.cnn", model, strlen(model)));
    char *memory[3];
    const char *values[3] = {"0", "2", "4"};
    for (int i = 0; i < 3; i++) {
        Run r = run_cnnc_argv((char *const[]){"cnnc", "summary", path, "--winograd", (char *)values[i], NULL});
        assert_accepted(&r, values[i]);
        free(r.err);
        memory[i] = summary_line("Memory, inference:");
        ck_assert_ptr_nonnull(memory[i]);
    }
    ck_assert_msg(strcmp(memory[0], memory[1]) && strcmp(memory[1], memory[2]), "%s\n%s\n%s", memory[0], memory[1],
                  memory[2]);
    Run r = run_cnnc_argv((char *const[]){"cnnc", "summary", path, "--winograd=4", NULL});
    assert_accepted(&r, "--winograd=4");
    free(r.err);
    char *eq = summary_line("Memory, inference:");
    ck_assert_str_eq(eq, memory[2]);
    free(eq);
    const char *bad[][2] = {{"--winograd", "3"}, {"--winograd=x", NULL}, {"--winograd", NULL}};
    for (int i = 0; i < 3; i++) {
        r = run_cnnc_argv((char *const[]){"cnnc", "summary", path, (char *)bad[i][0], (char *)bad[i][1], NULL});
        ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2, "%s %s: status %d", bad[i][0],
                      bad[i][1] ? bad[i][1] : "", r.status);
        ck_assert_msg(strstr(r.err, "--winograd"), "%s", r.err);
        free(r.err);
    }
    for (int i = 0; i < 3; i++) free(memory[i]);
    free(path);
}
END_TEST

START_TEST(hundred_thousand_layers)
{
    enum { N = 100000 };
    char *text = malloc(N * 5 + 32);
    strcpy(text, "input 8x8x1\n");
    size_t o = strlen(text);
    for (int i = 0; i < N; i++, o += 5) memcpy(text + o, "relu\n", 5);
    const char *path = write_file("deep.cnn", text, o);
    Run r = run_cnnc("check", path);
    assert_accepted(&r, "100,000 relu layers (check)");
    free(r.err);
    r = run_cnnc("summary", path);
    assert_accepted(&r, "100,000 relu layers (summary)");
    free(r.err);
    free(text);
}
END_TEST

/* 10,000 pool/unpool brackets.  On 8192x8192 (2^13) the 14th pool finds a 1x1
 * input: one clear error, and every unpool still pairs (no cascade). */
START_TEST(ten_thousand_nested_pools)
{
    enum { N = 10000 };
    char *text = malloc(N * 14 + 64);
    strcpy(text, "input 8192x8192x1\n");
    size_t o = strlen(text);
    for (int i = 0; i < N; i++, o += 7) memcpy(text + o, "pool 2\n", 7);
    for (int i = 0; i < N; i++, o += 7) memcpy(text + o, "unpool\n", 7);
    const char *path = write_file("nested.cnn", text, o);
    Run r = run_cnnc("check", path);
    assert_refused(&r, "10,000 nested pools");
    ck_assert_ptr_nonnull(strstr(r.err, "nested.cnn:15:1: error: pool 2x2 does not fit its 1x1x1 input"));
    ck_assert_msg(strstr(r.err, "unpool has no pool") == NULL, "unpools were left unpaired:\n%.2000s", r.err);
    free(r.err);
    /* pool 1 keeps 16x16: 20,000 layers, all valid */
    strcpy(text, "input 16x16x1\n");
    o = strlen(text);
    for (int i = 0; i < N; i++, o += 7) memcpy(text + o, "pool 1\n", 7);
    for (int i = 0; i < N; i++, o += 7) memcpy(text + o, "unpool\n", 7);
    path = write_file("nested-ok.cnn", text, o);
    r = run_cnnc("check", path);
    assert_accepted(&r, "10,000 pool 1 / unpool pairs");
    free(r.err);
    free(text);
}
END_TEST

/* Seeded random bytes, and random ASCII made of the language's own pieces. */
START_TEST(random_bytes)
{
    enum { N = 1 << 16 };
    char *text = malloc(N);
    unsigned long seed = 20240601UL + (unsigned long)_i;
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        text[i] = (char)(seed >> 56);
    }
    char name[32];
    snprintf(name, sizeof name, "random%d.cnn", _i);
    const char *path = write_file(name, text, N);
    Run r = run_cnnc("check", path);
    assert_refused(&r, name);
    free(r.err);
    static const char *pieces[] = {"conv", "pool", "unpool", "fc", "input", "relu", "deconv", "3x3x2", "2", "0",
                                   "=", ";", "\n", " ", "stride", "pad", "same", "-1", "1e99", "8x8x1", "#",
                                   "outpad", "dilation", "batchnorm", "flatten", "99999999999999999999", "x"};
    size_t o = 0;
    while (o < N - 32) {
        seed = seed * 6364136223846793005UL + 1442695040888963407UL;
        const char *p = pieces[(seed >> 33) % (sizeof pieces / sizeof *pieces)];
        memcpy(text + o, p, strlen(p));
        o += strlen(p);
    }
    snprintf(name, sizeof name, "words%d.cnn", _i);
    path = write_file(name, text, o);
    r = run_cnnc("check", path);
    ck_assert_msg(!WIFSIGNALED(r.status), "%s: killed by signal %d", name, WTERMSIG(r.status));
    ck_assert_msg(WIFEXITED(r.status) && WEXITSTATUS(r.status) <= 1, "%s: exit %d", name, WEXITSTATUS(r.status));
    if (WEXITSTATUS(r.status) == 1) ck_assert(has_error_line(r.err));
    free(r.err);
    free(text);
}
END_TEST

START_TEST(huge_input_refused_with_its_size)
{
    /* 65536^3 = 2^48 = 281,474,976,710,656 values, 2^50 bytes = 1048576.0 GiB */
    check_text("huge.cnn", "input 65536x65536x65536\nrelu\n", "281,474,976,710,656 values per image (1048576.0 GiB");
    /* within the per-buffer limit per layer, but over 64 GiB in all: the plan refuses it.
     * 4096x4096x64 = 2^30 values per layer output, 16 layers = 2^34 floats = 64 GiB
     * of activations alone, plus the activation gradients: more than 64 GiB. */
    char text[512];
    strcpy(text, "input 4096x4096x64\n");
    for (int i = 0; i < 16; i++) strcat(text, "relu\n");
    check_text("big-plan.cnn", text, "GiB of buffers");
}
END_TEST

/* The 21st error is not printed; a last line says the run stopped. */
START_TEST(error_cap)
{
    char text[1024];
    strcpy(text, "input 8x8x1\n");
    for (int i = 0; i < 25; i++) strcat(text, "relu 1\n");
    const char *path = write_file("many.cnn", text, strlen(text));
    Run r = run_cnnc("check", path);
    assert_refused(&r, "25 errors");
    int n = 0;
    for (const char *p = r.err; (p = strstr(p, ": error: ")); p++) n++;
    ck_assert_int_eq(n, 20);
    ck_assert_ptr_nonnull(strstr(r.err, "many.cnn:21:6: error: "));     /* the 20th: line 2 + 19 */
    ck_assert_ptr_null(strstr(r.err, "many.cnn:22:"));
    ck_assert_ptr_nonnull(strstr(r.err, "many.cnn: too many errors (20); stopping here\n"));
    free(r.err);
}
END_TEST

/* Exactly DIAG_MAX_ERRORS - 1 errors: all printed, no "too many" line. */
START_TEST(below_error_cap)
{
    char text[1024];
    strcpy(text, "input 8x8x1\n");
    for (int i = 0; i < 19; i++) strcat(text, "relu 1\n");
    const char *path = write_file("nineteen.cnn", text, strlen(text));
    Run r = run_cnnc("check", path);
    assert_refused(&r, "19 errors");
    ck_assert_ptr_null(strstr(r.err, "too many errors"));
    free(r.err);
}
END_TEST

Suite *robust_suite(void)
{
    Suite *s = suite_create("robust");
    TCase *tc = tcase_create("hostile inputs");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, ten_megabyte_line);
    tcase_add_test(tc, nul_byte);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, empty_file);
    tcase_add_test(tc, directory_and_missing_file);
    tcase_add_test(tc, usage_mistakes_exit_2);
    tcase_add_test(tc, winograd_option);
    tcase_add_test(tc, hundred_thousand_layers);
    tcase_add_test(tc, ten_thousand_nested_pools);
    tcase_add_loop_test(tc, random_bytes, 0, 4);
    tcase_add_test(tc, huge_input_refused_with_its_size);
    tcase_add_test(tc, error_cap);
    tcase_add_test(tc, below_error_cap);
    suite_add_tcase(s, tc);
    return s;
}
