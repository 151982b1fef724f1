/* rt.h — what the runtime's files share, and what its unit tests call.
 *
 * cnnrt.h is the contract with generated code; this header is private to
 * libcnnrt.  The pieces, each in its own file:
 *     rng.c       one seeded generator (xoshiro256**) for init and shuffling
 *     tensor.c    the model descriptor: checks, PyTorch <-> internal layout, init
 *     net.c       the buffers one model needs, allocated once
 *     loss.c      cross-entropy / MSE / BCE and dLoss/doutput, as torch computes them
 *     optim.c     SGD, momentum, Adam, as torch.optim computes them
 *     npz.c       .npz (zip of .npy) reading and atomic writing
 *     weights.c   weights files: tensors plus optimizer and training state
 *     data_idx.c, data_csv.c, data_image.c   the loaders
 *     train.c, eval.c, predict.c, gradcheck.c, trace.c   the subcommands
 *     progress.c  the progress bar;  cli.c  flags and cnn_main()
 * Library functions report failure through CnnErr and return false; only
 * cli.c prints it and chooses the exit status. */
#ifndef CNN_RT_H
#define CNN_RT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "cnnrt.h"

#if defined(__GNUC__)
#define CNN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CNN_PRINTF(a, b)
#endif

/* ---- errors ---------------------------------------------------------- */

/* One line for the user: "FILE: what is wrong". */
typedef struct CnnErr {
    char msg[1024];
} CnnErr;

/* Formats into e (when e is not NULL) and returns false, so that callers
 * can write `return cnn_fail(e, "...")`. */
bool cnn_fail(CnnErr *e, const char *fmt, ...) CNN_PRINTF(2, 3);

/* Refuse anything larger than this from a file: 4 GiB. */
#define CNN_MAX_FILE_BYTES (4ull << 30)

/* ---- rng.c ----------------------------------------------------------- */

typedef struct CnnRng {
    uint64_t s[4];
} CnnRng;

void cnn_rng_seed(CnnRng *r, uint64_t seed);
uint64_t cnn_rng_next(CnnRng *r);
double cnn_rng_uniform(CnnRng *r);              /* [0, 1), 53 bits */
uint64_t cnn_rng_below(CnnRng *r, uint64_t n);  /* [0, n), unbiased */
void cnn_rng_shuffle(CnnRng *r, long *idx, long n);

/* ---- tensor.c -------------------------------------------------------- */

long cnn_model_in_floats(const CnnModel *m);     /* in_h * in_w * in_c */
int cnn_model_classes(const CnnModel *m);        /* 2 when a single output is a probability */
/* Refuses a descriptor whose tensors overlap, run outside their buffer or
 * whose view/perm do not describe the same number of floats. */
bool cnn_model_validate(const CnnModel *m, CnnErr *e);
long cnn_model_max_tensor(const CnnModel *m);    /* floats in the largest tensor */
/* PyTorch layout <-> internal layout, as the perm comment of cnnrt.h says. */
void cnn_tensor_to_torch(const CnnTensor *t, const float *internal, float *torch);
void cnn_tensor_from_torch(const CnnTensor *t, const float *torch, float *internal);
/* Where internal element k lives in the PyTorch tensor (flat, row-major). */
long cnn_tensor_torch_offset(const CnnTensor *t, long k);
/* "[o,i,kh,kw]" coordinates of PyTorch flat offset off, into buf. */
void cnn_tensor_format_index(const CnnTensor *t, long off, char *buf, size_t n);
/* "3x4" */
void cnn_tensor_format_shape(const CnnTensor *t, char *buf, size_t n);
float *cnn_tensor_data(const CnnTensor *t, const CnnCtx *c);

/* ---- net.c ----------------------------------------------------------- */

/* A model with every buffer it will ever need, for batches up to max_batch. */
typedef struct CnnNet {
    const CnnModel *m;
    CnnCtx ctx;
    float *x;          /* [max_batch][in_h][in_w][in_c] the batch being worked on */
    int32_t *label;    /* [max_batch] class labels of that batch */
    float *dout;       /* [max_batch][outputs] dLoss/doutput */
    float *scratch;    /* [2 * largest tensor] layout conversions */
} CnnNet;

bool cnn_net_alloc(CnnNet *n, const CnnModel *m, int max_batch, CnnErr *e);
void cnn_net_free(CnnNet *n);
/* Fresh weights: uniform [init_lo, init_hi] drawn in PyTorch element order,
 * tensor after tensor, so a seed means the same PyTorch weights whatever the
 * internal layout.  Constant tensors (lo == hi) draw nothing. */
void cnn_net_init(CnnNet *n, CnnRng *r);

/* ---- loss.c ---------------------------------------------------------- */

/* Loss averaged as torch does (cross-entropy over the batch; MSE and BCE
 * over batch*outputs) from out [batch][outputs].  Targets come from label
 * [batch] (one-hot for MSE/BCE, or the label itself when outputs == 1) or,
 * when target is not NULL, from target [batch][outputs].  dout (may be NULL)
 * receives dLoss/doutput; *correct (may be NULL) counts right answers. */
double cnn_loss(const CnnModel *m, const float *out, const int32_t *label,
                const float *target, int batch, float *dout, long *correct);
/* The predicted class of one output row, and its probability. */
int cnn_predict_class(const CnnModel *m, const float *row, double *p);

/* ---- optim.c --------------------------------------------------------- */

/* Hyperparameters in double, as torch keeps them (Python floats). */
typedef struct CnnOptimConfig {
    CnnOptimizer kind;
    double lr, momentum, beta1, beta2, eps;
} CnnOptimConfig;

typedef struct CnnOptim {
    CnnOptimConfig cfg;
    long n;            /* floats in params */
    float *m;          /* [n] Adam exp_avg, or the momentum buffer */
    float *v;          /* [n] Adam exp_avg_sq */
    int64_t step;      /* steps taken; 0 means the buffers are not yet set */
} CnnOptim;

/* Which fields of a CnnOptimConfig the command line set. */
enum { CNN_SET_KIND = 1, CNN_SET_LR = 2, CNN_SET_MOMENTUM = 4, CNN_SET_BETA1 = 8, CNN_SET_BETA2 = 16, CNN_SET_EPS = 32 };
/* base with the fields named in `set` taken from flags. */
void cnn_optim_override(CnnOptimConfig *base, const CnnOptimConfig *flags, unsigned set);

const char *cnn_optim_name(CnnOptimizer k);
bool cnn_optim_parse(const char *s, CnnOptimizer *k);
/* The model's training settings, its float constants turned back into the
 * decimal numbers the .cnn file held (0.9f -> 0.9, not 0.899999976). */
CnnOptimConfig cnn_optim_defaults(const CnnModel *m);
double cnn_float_to_decimal(float f);
bool cnn_optim_alloc(CnnOptim *o, const CnnOptimConfig *cfg, long n, CnnErr *e);
void cnn_optim_free(CnnOptim *o);
void cnn_optim_step(CnnOptim *o, float *params, const float *grads);

/* ---- npz.c ----------------------------------------------------------- */

typedef enum CnnDtype { CNN_F4, CNN_F8, CNN_I4, CNN_I8, CNN_U1, CNN_U8, CNN_DTYPE_OTHER } CnnDtype;
enum { CNN_NPY_MAX_DIMS = 8, CNN_NPY_NAME = 256 };

/* One array of a .npz, its data still in the file's bytes (little-endian,
 * possibly unaligned: read it with the cnn_array_* helpers). */
typedef struct CnnArray {
    char name[CNN_NPY_NAME];    /* entry name without ".npy" */
    char descr[16];             /* "<f4" */
    CnnDtype dtype;
    int ndim;
    long shape[CNN_NPY_MAX_DIMS];
    long count;
    const unsigned char *data;
} CnnArray;

typedef struct CnnNpz {
    char path[512];
    unsigned char *file;        /* the whole file */
    size_t size;
    CnnArray *arr;
    int n;
    unsigned char **inflated;   /* [ninflated] buffers of deflated entries, or NULL */
    int ninflated;              /* entries in the zip directory */
} CnnNpz;

bool cnn_npz_load(CnnNpz *z, const char *path, CnnErr *e);
const CnnArray *cnn_npz_get(const CnnNpz *z, const char *name);
void cnn_npz_free(CnnNpz *z);
/* Float or double arrays, converted to float. */
bool cnn_array_floats(const CnnArray *a, float *out);
/* Integer arrays (any of int8..int64, uint8, uint64), as int64. */
bool cnn_array_ints(const CnnArray *a, int64_t *out);
const char *cnn_array_shape_str(const CnnArray *a, char *buf, size_t n);

typedef struct CnnNpzEntry {
    char name[CNN_NPY_NAME + 4];
    uint32_t crc, size, offset;
} CnnNpzEntry;

/* Writes to PATH.tmp.<pid>, then fsync and rename: a crash leaves the old
 * file whole. */
typedef struct CnnNpzWriter {
    FILE *f;
    char path[512], tmp[560];
    CnnNpzEntry *ent;
    int n, cap;
    uint64_t pos;
    bool failed;
} CnnNpzWriter;

bool cnn_npz_begin(CnnNpzWriter *w, const char *path, CnnErr *e);
bool cnn_npz_add(CnnNpzWriter *w, const char *name, CnnDtype t, int ndim,
                 const long *shape, const void *data, CnnErr *e);
bool cnn_npz_commit(CnnNpzWriter *w, CnnErr *e);
void cnn_npz_abort(CnnNpzWriter *w);

/* ---- weights.c ------------------------------------------------------- */

/* Where a training run stands, saved with the weights so that --resume
 * continues bit for bit. */
typedef struct CnnTrainState {
    int64_t epoch;        /* epochs completed */
    int64_t batch_index;  /* batches done in the epoch under way (after Ctrl-C) */
    int64_t batch;        /* the batch size those batches had */
    int64_t shuffle;      /* 1 unless --no-shuffle */
    CnnRng rng;           /* the generator as the epoch under way began */
} CnnTrainState;

/* Saves params and stats in PyTorch layout; o and ts may be NULL. */
bool cnn_weights_save(const CnnNet *n, const CnnOptim *o, const CnnTrainState *ts,
                      const char *path, CnnErr *e);
/* Loads every tensor of the model from an open npz; checks them all before
 * changing anything. */
bool cnn_weights_from_npz(CnnNet *n, const CnnNpz *z, CnnErr *e);
bool cnn_weights_load(CnnNet *n, const char *path, CnnErr *e);
/* The optimizer and training state of a file saved by train --save. */
bool cnn_state_from_npz(const CnnNet *n, const CnnNpz *z, CnnOptim *o,
                        CnnTrainState *ts, CnnErr *e);
/* Same as cnn_state_from_npz's config part only: fills cfg when the file has one. */
bool cnn_state_config(const CnnNpz *z, CnnOptimConfig *cfg, int64_t *batch);

/* ---- data ------------------------------------------------------------ */

/* Images (float, NHWC, [0,1] for ubyte sources) and their labels. */
typedef struct CnnData {
    float *x;          /* [n][h][w][c] */
    int32_t *y;        /* [n], or NULL for unlabeled images */
    long n;
    int h, w, c;
    bool owned;        /* false for a view into another CnnData */
} CnnData;

void cnn_data_free(CnnData *d);
/* The first part and the rest, as views: train = [0, n - ntest), test = the rest. */
void cnn_data_split(const CnnData *all, long ntest, CnnData *train, CnnData *test);

/* A raw IDX file: dims and elements converted to float (ubyte divided by
 * 255 when `scale`: images, not labels). */
typedef struct CnnIdx {
    int ndim;
    long dims[4];
    long count;
    int type;          /* 0x08 ubyte, 0x0D float32 */
    float *data;
} CnnIdx;

bool cnn_idx_read(const char *path, bool scale, CnnIdx *idx, CnnErr *e);
bool cnn_idx_images(const char *path, const CnnModel *m, CnnData *d, CnnErr *e);
bool cnn_idx_labels(const char *path, const CnnModel *m, CnnData *d, CnnErr *e);
/* label,p0,...  (optional header line); pixels 0..255 scaled by 1/255. */
bool cnn_csv_load(const char *path, const CnnModel *m, CnnData *d, CnnErr *e);
/* One PGM (P2/P5) or PPM (P3/P6) picture matching the model's input. */
bool cnn_image_load(const char *path, const CnnModel *m, float *x, CnnErr *e);

/* ---- progress.c ------------------------------------------------------ */

double cnn_now(void);   /* seconds, monotonic */

typedef struct CnnProgress {
    bool tty, quiet;
    int epoch, epochs;
    long total;
    long start;        /* images done before this run (a resumed epoch) */
    double t0, last_draw;
    int next_tenth;    /* plain lines: the next tenth of the epoch to report */
    long printed;      /* plain lines: images done at the last line */
} CnnProgress;

void cnn_progress_start(CnnProgress *p, int epoch, int epochs, long total, long start, bool quiet);
void cnn_progress_update(CnnProgress *p, long done, double loss, double acc, bool final);

/* ---- the subcommands (cli.c parses, these run) ----------------------- */

typedef struct CnnDataOptions {
    const char *train_images, *train_labels, *test_images, *test_labels;
    const char *csv, *test_csv;
    long limit;        /* 0: all training images */
} CnnDataOptions;

typedef struct CnnTrainOptions {
    CnnDataOptions data;
    CnnOptimConfig opt;    /* flag values; opt_set says which were given */
    unsigned opt_set;
    int epochs, batch;     /* 0: not given */
    uint64_t seed;
    const char *init, *save, *resume, *log;
    bool shuffle, quiet;
} CnnTrainOptions;

/* Loads what the options name; with none, Fashion-MNIST.  need_train false
 * loads only the test set (eval).  Messages about held-out splits go to stderr. */
bool cnn_data_load(const CnnModel *m, const CnnDataOptions *o, bool need_train,
                   CnnData *train, CnnData *test, CnnErr *e);

/* Each returns the process exit status and prints its own error lines. */
int cnn_train(const CnnModel *m, const CnnTrainOptions *o);
int cnn_eval(const CnnModel *m, const CnnDataOptions *d, const char *weights, int batch);
int cnn_predict(const CnnModel *m, const char *weights, char **files, int nfiles);
int cnn_gradcheck(const CnnModel *m, uint64_t seed);
int cnn_trace(const CnnModel *m, const char *init, const char *batch_file, int steps,
              const char *out, const CnnOptimConfig *opt, unsigned opt_set, bool eval);
int cnn_bench(const CnnModel *m, int batch, const CnnOptimConfig *opt, unsigned opt_set, bool csv, bool layers);
/* Loss and accuracy of d with training = 0, in batches of n->ctx.max_batch. */
void cnn_evaluate(CnnNet *n, const CnnData *d, double *loss, double *acc);

void cnn_print_error(const CnnErr *e);

#endif
