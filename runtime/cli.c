/* cli.c — cnn_main(): the subcommands and their flags (SPEC §3).
 *
 * One table lists every flag: its name, the commands that take it, what kind
 * of value it wants and where that value goes.  Parsing, --help text and the
 * "did you mean" hint all read that table.  Usage errors are one line on
 * stderr and exit status 2; the commands themselves return 0 or 1 (130 when
 * interrupted). */
#include "rt.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_PREDICT = 4, CMD_GRADCHECK = 8, CMD_TRACE = 16, CMD_BENCH = 32, CMD_ALL = 63 };

typedef struct CnnArgs {
    CnnTrainOptions train;        /* data, optimizer, epochs, batch, seed, files */
    const char *weights, *batch_file, *out;
    int threads, steps;
    bool no_shuffle, help, csv, eval, layers;
    char **files;
    int nfiles;
} CnnArgs;

typedef enum { ARG_FLAG, ARG_INT, ARG_COUNT, ARG_U64, ARG_POSITIVE, ARG_FRACTION, ARG_STRING, ARG_OPTIMIZER } CnnArgKind;

typedef struct CnnFlag {
    const char *name;
    unsigned commands;
    CnnArgKind kind;
    size_t offset;       /* of the value in CnnArgs */
    unsigned set;        /* CNN_SET_* for optimizer settings */
    const char *metavar, *help;
} CnnFlag;

#define AT(field) offsetof(CnnArgs, field)
#define DATA (CMD_TRAIN | CMD_EVAL)
#define OPT (CMD_TRAIN | CMD_TRACE | CMD_BENCH)
static const CnnFlag cnn_flags[] = {
    {"--train-images", DATA, ARG_STRING, AT(train.data.train_images), 0, "F", "IDX training images (N,H,W[,C]), plain or .gz (eval: ignored)"},
    {"--train-labels", DATA, ARG_STRING, AT(train.data.train_labels), 0, "F", "IDX training labels (N,)"},
    {"--test-images", DATA, ARG_STRING, AT(train.data.test_images), 0, "F", "IDX test images"},
    {"--test-labels", DATA, ARG_STRING, AT(train.data.test_labels), 0, "F", "IDX test labels"},
    {"--csv", DATA, ARG_STRING, AT(train.data.csv), 0, "F", "CSV: label,pixel0,... (last 10% held out for testing)"},
    {"--test-csv", DATA, ARG_STRING, AT(train.data.test_csv), 0, "F", "CSV test set (instead of the held-out 10%)"},
    {"--limit", CMD_TRAIN, ARG_COUNT, AT(train.data.limit), 0, "N", "use only the first N training images"},
    {"--epochs", CMD_TRAIN, ARG_COUNT, AT(train.epochs), 0, "N", "train up to N epochs in total (default: the model's)"},
    {"--batch", CMD_TRAIN | CMD_EVAL | CMD_BENCH, ARG_COUNT, AT(train.batch), 0, "N", "images per batch (default: the model's)"},
    {"--batch", CMD_TRACE, ARG_STRING, AT(batch_file), 0, "B.npz", "the batch: x [B,H,W,C] float32, y labels [B] or targets [B,outputs]"},
    {"--steps", CMD_TRACE, ARG_INT, AT(steps), 0, "N", "optimizer steps on the batch (default 1)"},
    {"--eval", CMD_TRACE, ARG_FLAG, AT(eval), 0, NULL, "inference mode: forward only, running statistics, no dropout"},
    {"--out", CMD_TRACE, ARG_STRING, AT(out), 0, "T.npz", "where to write output, loss, grad.* and after.*"},
    {"--optimizer", OPT, ARG_OPTIMIZER, AT(train.opt.kind), CNN_SET_KIND, "sgd|momentum|adam", "optimizer (default: the model's)"},
    {"--lr", OPT, ARG_POSITIVE, AT(train.opt.lr), CNN_SET_LR, "X", "learning rate"},
    {"--momentum", OPT, ARG_FRACTION, AT(train.opt.momentum), CNN_SET_MOMENTUM, "X", "momentum (makes sgd the momentum optimizer)"},
    {"--beta1", OPT, ARG_FRACTION, AT(train.opt.beta1), CNN_SET_BETA1, "X", "Adam beta1"},
    {"--beta2", OPT, ARG_FRACTION, AT(train.opt.beta2), CNN_SET_BETA2, "X", "Adam beta2"},
    {"--eps", OPT, ARG_POSITIVE, AT(train.opt.eps), CNN_SET_EPS, "X", "Adam epsilon (added outside the square root)"},
    {"--seed", CMD_TRAIN | CMD_GRADCHECK, ARG_U64, AT(train.seed), 0, "N", "random seed for init, shuffling, dropout (default 1)"},
    {"--init", OPT, ARG_STRING, AT(train.init), 0, "W.npz", "start from these weights"},
    {"--save", CMD_TRAIN, ARG_STRING, AT(train.save), 0, "W.npz", "save weights and optimizer state after every epoch"},
    {"--resume", CMD_TRAIN, ARG_STRING, AT(train.resume), 0, "W.npz", "continue a run saved with --save"},
    {"--no-shuffle", CMD_TRAIN, ARG_FLAG, AT(no_shuffle), 0, NULL, "take training examples in file order"},
    {"--log", CMD_TRAIN, ARG_STRING, AT(train.log), 0, "FILE.csv", "append one CSV row per epoch"},
    {"--quiet", CMD_TRAIN, ARG_FLAG, AT(train.quiet), 0, NULL, "print only the last epoch's line"},
    {"--weights", CMD_EVAL | CMD_PREDICT, ARG_STRING, AT(weights), 0, "W.npz", "the weights to use (required)"},
    {"--threads", CMD_ALL, ARG_COUNT, AT(threads), 0, "N", "OpenMP threads (default: all cores)"},
    {"--csv-out", CMD_BENCH, ARG_FLAG, AT(csv), 0, NULL, "print the figures as CSV (for bench/)"},
    {"--layers", CMD_BENCH, ARG_FLAG, AT(layers), 0, NULL, "time each layer's forward and backward in training"},
    {"--help", CMD_ALL, ARG_FLAG, AT(help), 0, NULL, "this text"},
};

static const struct {
    const char *name;
    unsigned bit;
    const char *args, *about;
} cnn_commands[] = {
    {"train", CMD_TRAIN, "[data] [options]", "train the model (data: IDX files, --csv, or Fashion-MNIST by default)"},
    {"eval", CMD_EVAL, "--weights W.npz [data]", "loss and accuracy of saved weights on the test set"},
    {"predict", CMD_PREDICT, "--weights W.npz FILE...", "classify IDX, PGM (P2/P5) or PPM (P3/P6) pictures"},
    {"gradcheck", CMD_GRADCHECK, "[--seed N]", "compare backward() with finite differences, every parameter tensor"},
    {"trace", CMD_TRACE, "--init W.npz --batch B.npz --steps N --out T.npz [optimizer options]",
     "dump one batch's output, loss, gradients and updated weights (PyTorch tests)"},
    {"bench", CMD_BENCH, "[--batch N] [--threads N] [--layers] [optimizer options]",
     "training and inference images/s and single-image latency on synthetic data"},
};
enum { NCOMMANDS = sizeof cnn_commands / sizeof cnn_commands[0], NFLAGS = sizeof cnn_flags / sizeof cnn_flags[0] };

static const char *cnn_prog = "model";

/* ---- help ----------------------------------------------------------------- */

static void cnn_usage_main(FILE *f, const CnnModel *m)
{
    fprintf(f, "usage: %s COMMAND [options]\n", cnn_prog);
    fprintf(f, "%s: a CNN compiled by cnnc from %s; input %dx%dx%d, %d outputs, %ld parameters\n\ncommands:\n", m->name,
            m->source ? m->source : "?", m->in_h, m->in_w, m->in_c, m->outputs, m->param_floats);
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", cnn_commands[i].name, cnn_commands[i].about);
    fprintf(f, "\n'%s COMMAND --help' lists the options of a command.\n", cnn_prog);
}

static void cnn_usage_command(FILE *f, int c)
{
    fprintf(f, "usage: %s %s %s\n%s\n\noptions:\n", cnn_prog, cnn_commands[c].name, cnn_commands[c].args,
            cnn_commands[c].about);
    for (int i = 0; i < NFLAGS; i++) {
        const CnnFlag *fl = &cnn_flags[i];
        if (!(fl->commands & cnn_commands[c].bit)) continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", fl->name, fl->metavar ? " " : "", fl->metavar ? fl->metavar : "");
        fprintf(f, "  %-30s %s\n", left, fl->help);
    }
    if (cnn_commands[c].bit & DATA)
        fprintf(f, "\nWithout a data option: Fashion-MNIST from /usr/share/datasets/fashion-mnist.\n");
}

/* ---- errors and hints ------------------------------------------------------- */

static int cnn_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b), d[64];
    if (la > 62 || lb > 62) return 99;
    for (int j = 0; j <= lb; j++) d[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = d[0];
        d[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = d[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (d[j - 1] + 1 < best) best = d[j - 1] + 1;
            diag = up;
            d[j] = best;
        }
    }
    return d[lb];
}

static int cnn_usage_error(int c, const char *fmt, const char *arg, const char *hint)
{
    fprintf(stderr, "error: %s: ", cnn_commands[c].name);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "%s (see '%s %s --help')\n", hint ? hint : "", cnn_prog, cnn_commands[c].name);
    return 2;
}

static int cnn_unknown_flag(int c, const char *arg)
{
    char hint[160] = "";
    int best = 3;
    for (int i = 0; i < NFLAGS; i++) {
        int d = cnn_distance(arg, cnn_flags[i].name);
        if (strcmp(arg, cnn_flags[i].name) == 0) {
            snprintf(hint, sizeof hint, "; it belongs to another command");
            best = -1;
        } else if (d < best && (cnn_flags[i].commands & cnn_commands[c].bit)) {
            best = d;
            snprintf(hint, sizeof hint, "; did you mean %s?", cnn_flags[i].name);
        }
    }
    return cnn_usage_error(c, "unknown option %s", arg, hint);
}

/* ---- values ------------------------------------------------------------------- */

static bool cnn_parse_value(const CnnFlag *fl, const char *s, CnnArgs *a)
{
    void *dst = (char *)a + fl->offset;
    char *end;
    errno = 0;
    if (fl->kind == ARG_STRING) return *(const char **)dst = s, *s != 0;
    if (fl->kind == ARG_OPTIMIZER) return cnn_optim_parse(s, (CnnOptimizer *)dst);
    if (fl->kind == ARG_U64) {
        unsigned long long v = strtoull(s, &end, 0);
        return *(uint64_t *)dst = v, !errno && *s != '-' && end != s && !*end;
    }
    if (fl->kind == ARG_POSITIVE || fl->kind == ARG_FRACTION) {
        double v = strtod(s, &end);
        *(double *)dst = v;
        bool ok = !errno && end != s && !*end && isfinite(v);
        return ok && (fl->kind == ARG_POSITIVE ? v > 0 : v >= 0 && v < 1);
    }
    long v = strtol(s, &end, 10);
    bool ok = !errno && end != s && !*end && v >= (fl->kind == ARG_COUNT) && v <= INT_MAX;
    if (fl->offset == AT(train.data.limit)) *(long *)dst = v;
    else *(int *)dst = (int)v;
    return ok;
}

static const char *cnn_value_wanted(CnnArgKind k)
{
    switch (k) {
    case ARG_COUNT: return "a whole number >= 1";
    case ARG_INT: return "a whole number >= 0";
    case ARG_U64: return "a non-negative whole number";
    case ARG_POSITIVE: return "a number > 0";
    case ARG_FRACTION: return "a number in [0, 1)";
    case ARG_OPTIMIZER: return "sgd, momentum or adam";
    default: return "a non-empty value";
    }
}

/* One option at argv[*i] (and its value); returns 0 or the exit status. */
static int cnn_parse_flag(int c, int argc, char **argv, int *i, CnnArgs *a)
{
    char name[64];
    const char *arg = argv[*i], *eq = strchr(arg, '=');
    snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    if (strcmp(name, "-h") == 0) snprintf(name, sizeof name, "--help");
    for (int k = 0; k < NFLAGS; k++) {
        const CnnFlag *fl = &cnn_flags[k];
        if (strcmp(fl->name, name) != 0 || !(fl->commands & cnn_commands[c].bit)) continue;
        if (fl->kind == ARG_FLAG) {
            if (eq) return cnn_usage_error(c, "%s takes no value", name, NULL);
            *(bool *)((char *)a + fl->offset) = true;
            return 0;
        }
        const char *value = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
        if (!value) return cnn_usage_error(c, "%s needs a value", name, NULL);
        if (!cnn_parse_value(fl, value, a)) {
            char hint[128];
            snprintf(hint, sizeof hint, " ('%.40s'; expected %s)", value, cnn_value_wanted(fl->kind));
            return cnn_usage_error(c, "bad value for %s", name, hint);
        }
        a->train.opt_set |= fl->set;
        return 0;
    }
    return cnn_unknown_flag(c, name);
}

static int cnn_parse_args(int c, int argc, char **argv, CnnArgs *a)
{
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1]) {
            int status = cnn_parse_flag(c, argc, argv, &i, a);
            if (status) return status;
        } else if (cnn_commands[c].bit == CMD_PREDICT) {
            a->files[a->nfiles++] = argv[i];
        } else {
            return cnn_usage_error(c, "unexpected argument '%s'", argv[i], NULL);
        }
    }
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

static int cnn_require(int c, const char *value, const char *flag)
{
    return value ? 0 : cnn_usage_error(c, "%s is required", flag, NULL);
}

static int cnn_run(const CnnModel *m, int c, CnnArgs *a)
{
    int status = 0;
    a->train.shuffle = !a->no_shuffle;
    if (a->threads > 0) omp_set_num_threads(a->threads);
    switch (cnn_commands[c].bit) {
    case CMD_TRAIN: return cnn_train(m, &a->train);
    case CMD_EVAL:
        return (status = cnn_require(c, a->weights, "--weights")) ? status
                                                                 : cnn_eval(m, &a->train.data, a->weights, a->train.batch);
    case CMD_PREDICT:
        if ((status = cnn_require(c, a->weights, "--weights"))) return status;
        if (a->nfiles == 0) return cnn_usage_error(c, "%s", "no FILE to classify", NULL);
        return cnn_predict(m, a->weights, a->files, a->nfiles);
    case CMD_GRADCHECK: return cnn_gradcheck(m, a->train.seed);
    case CMD_BENCH: return cnn_bench(m, a->train.batch, &a->train.opt, a->train.opt_set, a->csv, a->layers);
    default:
        if ((status = cnn_require(c, a->train.init, "--init")) || (status = cnn_require(c, a->batch_file, "--batch"))
            || (status = cnn_require(c, a->out, "--out")))
            return status;
        return cnn_trace(m, a->train.init, a->batch_file, a->eval ? 0 : a->steps, a->out, &a->train.opt,
                         a->train.opt_set, a->eval);
    }
}

int cnn_main(const CnnModel *m, int argc, char **argv)
{
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    cnn_prog = argc > 0 ? (slash ? slash + 1 : argv[0]) : m->name;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cnn_usage_main(argc < 2 ? stderr : stdout, m);
        return argc < 2 ? 2 : 0;
    }
    int c = 0;
    while (c < NCOMMANDS && strcmp(argv[1], cnn_commands[c].name) != 0) c++;
    if (c == NCOMMANDS) {
        fprintf(stderr, "error: unknown command '%s'; the commands are train, eval, predict, gradcheck, trace, bench "
                        "(see '%s --help')\n", argv[1], cnn_prog);
        return 2;
    }
    CnnArgs a = {.train = {.seed = 1}, .steps = 1, .files = calloc((size_t)argc, sizeof(char *))};
    int status = a.files ? cnn_parse_args(c, argc, argv, &a) : 1;
    if (!status && a.help) cnn_usage_command(stdout, c);
    else if (!status) status = cnn_run(m, c, &a);
    free(a.files);
    return status;
}
