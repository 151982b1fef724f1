/* train.c — the training loop and the evaluation it runs after each epoch.
 *
 * An epoch: put the training examples in order (a Fisher–Yates shuffle with
 * the run's generator unless --no-shuffle), cut them into batches of --batch
 * (the last one may be smaller), and for each batch: gather the images,
 * forward, loss and dLoss/doutput, backward, optimizer step.  Each step's
 * dropout seed is the generator's next draw.  Then the test set is
 * evaluated with training = 0, one line is printed, a CSV row logged, and
 * the weights saved (atomically) with everything --resume needs.
 *
 * Exactness of --resume: the generator's state as the epoch began is what
 * is saved; an interrupted epoch is replayed from that state (the same
 * shuffle, the same per-step seed draws) and skips the batches already done,
 * so a resumed run computes what an uninterrupted one would. */
#include "rt.h"
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Set by SIGINT when --save is given: finish the step, save, exit 130. */
static volatile sig_atomic_t cnn_interrupted;

static void cnn_on_sigint(int sig)
{
    (void)sig;
    cnn_interrupted = 1;
}

typedef struct CnnRun {
    const CnnModel *m;
    const CnnTrainOptions *o;
    CnnNet net;
    CnnOptim opt;
    CnnTrainState ts;    /* ts.rng: the generator as the current epoch began */
    CnnRng rng;          /* the generator now */
    CnnData train, test;
    long *order;         /* [train.n] example order of the epoch */
    int batch, epochs;
    long saved_epoch;    /* the last epoch this run saved to --save, or -1 */
    FILE *log;
} CnnRun;

typedef struct CnnEpochStats {
    double loss_sum;     /* sum over images of the batch-mean loss times batch size */
    long correct, seen;
    int status;          /* 0 fine, 1 NaN/Inf, 130 interrupted */
} CnnEpochStats;

void cnn_print_error(const CnnErr *e) { fprintf(stderr, "error: %s\n", e->msg); }

/* ---- one step --------------------------------------------------------- */

static void cnn_gather(CnnRun *r, long first, int b)
{
    long in = cnn_model_in_floats(r->m);
    for (int i = 0; i < b; i++) {
        long k = r->order[first + i];
        memcpy(r->net.x + i * in, r->train.x + k * in, (size_t)in * sizeof(float));
        r->net.label[i] = r->train.y[k];
    }
}

/* Forward, loss, backward, update on images order[first .. first+b). */
static double cnn_train_step(CnnRun *r, long first, int b, uint64_t seed, long *correct)
{
    CnnCtx *c = &r->net.ctx;
    cnn_gather(r, first, b);
    c->batch = b;
    c->training = 1;
    c->seed = seed;
    const float *out = r->m->forward(c, r->net.x);
    double loss = cnn_loss(r->m, out, r->net.label, NULL, b, r->net.dout, correct);
    if (!isfinite(loss)) return loss;
    r->m->backward(c, r->net.x, r->net.dout);
    cnn_optim_step(&r->opt, c->params, c->grads);
    return loss;
}

void cnn_evaluate(CnnNet *n, const CnnData *d, double *loss, double *acc)
{
    long in = cnn_model_in_floats(n->m), correct = 0, total = 0;
    double sum = 0;
    n->ctx.training = 0;
    for (long i = 0; i < d->n; i += n->ctx.max_batch) {
        int b = (int)(d->n - i < n->ctx.max_batch ? d->n - i : n->ctx.max_batch);
        long right = 0;
        n->ctx.batch = b;
        const float *out = n->m->forward(&n->ctx, d->x + i * in);
        sum += cnn_loss(n->m, out, d->y + i, NULL, b, NULL, &right) * b;
        correct += right;
        total += b;
    }
    *loss = total ? sum / total : NAN;
    *acc = total ? (double)correct / total : NAN;
}

/* ---- saving ------------------------------------------------------------ */

static bool cnn_run_save(CnnRun *r)
{
    CnnErr e;
    if (!r->o->save) return true;
    if (cnn_weights_save(&r->net, &r->opt, &r->ts, r->o->save, &e)) {
        r->saved_epoch = (long)r->ts.epoch;
        return true;
    }
    cnn_print_error(&e);
    return false;
}

static int cnn_run_interrupted(CnnRun *r, int epoch, long batch_index)
{
    r->ts.batch_index = batch_index;
    if (!cnn_run_save(r)) return 1;
    fprintf(stderr, "\ninterrupted in epoch %d after %ld batches; saved %s (continue with --resume %s)\n", epoch,
            batch_index, r->o->save, r->o->save);
    return 130;
}

/* What a user can go back to after a NaN: the newest good weights file. */
static void cnn_last_good(const CnnRun *r, char *buf, size_t n)
{
    if (r->saved_epoch >= 0)
        snprintf(buf, n, "last good checkpoint: %s, saved after epoch %ld", r->o->save, r->saved_epoch);
    else if (r->o->resume)
        snprintf(buf, n, "last good checkpoint: %s, the file this run resumed from", r->o->resume);
    else
        snprintf(buf, n, "no checkpoint saved yet%s", r->o->save ? "" : " (--save FILE keeps one per epoch)");
}

/* ---- one epoch ---------------------------------------------------------- */

static void cnn_epoch_order(CnnRun *r)
{
    for (long i = 0; i < r->train.n; i++) r->order[i] = i;
    if (r->o->shuffle) cnn_rng_shuffle(&r->rng, r->order, r->train.n);
}

/* Batches from `skip` on (earlier ones were done before an interruption;
 * their seeds are still drawn so the sequence stays the same). */
static CnnEpochStats cnn_train_epoch(CnnRun *r, int epoch, long skip)
{
    CnnEpochStats s = {0};
    CnnProgress p;
    long nbatches = (r->train.n + r->batch - 1) / r->batch;
    cnn_epoch_order(r);
    long done_before = skip * r->batch < r->train.n ? skip * r->batch : r->train.n;
    cnn_progress_start(&p, epoch, r->epochs, r->train.n, done_before, r->o->quiet);
    for (long bi = 0; bi < nbatches; bi++) {
        uint64_t seed = cnn_rng_next(&r->rng);
        if (bi < skip) continue;
        long first = bi * r->batch, right = 0;
        int b = (int)(r->train.n - first < r->batch ? r->train.n - first : r->batch);
        double loss = cnn_train_step(r, first, b, seed, &right);
        if (!isfinite(loss)) {
            char good[1200];
            cnn_last_good(r, good, sizeof good);
            fprintf(stderr, "\nerror: the loss became %s in epoch %d, step %ld (images %ld..%ld); training stopped; "
                            "%s; a smaller --lr often helps\n", isnan(loss) ? "NaN" : "infinite", epoch, bi + 1,
                    first, first + b - 1, good);
            s.status = 1;
            return s;
        }
        s.loss_sum += loss * b;
        s.correct += right;
        s.seen += b;
        cnn_progress_update(&p, done_before + s.seen, s.loss_sum / s.seen, (double)s.correct / s.seen, false);
        if (cnn_interrupted && bi + 1 < nbatches) {
            s.status = cnn_run_interrupted(r, epoch, bi + 1);
            return s;
        }
    }
    cnn_progress_update(&p, done_before + s.seen, s.seen ? s.loss_sum / s.seen : 0,
                        s.seen ? (double)s.correct / s.seen : 0, true);
    return s;
}

static void cnn_report_epoch(CnnRun *r, int epoch, const CnnEpochStats *s, double seconds)
{
    double tl = s->seen ? s->loss_sum / s->seen : NAN, ta = s->seen ? (double)s->correct / s->seen : NAN;
    double vl = NAN, va = NAN;
    char test[96] = "no test set";
    if (r->test.n > 0) {
        cnn_evaluate(&r->net, &r->test, &vl, &va);
        snprintf(test, sizeof test, "test loss %.4f acc %.4f", vl, va);
    }
    seconds = cnn_now() - seconds;
    if (!r->o->quiet || epoch == r->epochs) {
        printf("epoch %d: train loss %.4f acc %.4f | %s | %.1f s\n", epoch, tl, ta, test, seconds);
        fflush(stdout);
    }
    if (r->log) {
        fprintf(r->log, "%d,%.6f,%.6f,%.6f,%.6f,%.3f\n", epoch, tl, ta, vl, va, seconds);
        fflush(r->log);
    }
}

static int cnn_run_epochs(CnnRun *r)
{
    if (r->ts.epoch >= r->epochs && !r->o->quiet)
        fprintf(stderr, "%s: already trained for %ld epochs; nothing to do (raise --epochs)\n",
                r->o->resume ? r->o->resume : r->m->name, (long)r->ts.epoch);
    for (int epoch = (int)r->ts.epoch + 1; epoch <= r->epochs; epoch++) {
        double t0 = cnn_now();
        long skip = r->ts.batch_index;
        r->rng = r->ts.rng;
        r->ts.batch = r->batch;
        r->ts.shuffle = r->o->shuffle;
        CnnEpochStats s = cnn_train_epoch(r, epoch, skip);
        if (s.status) return s.status;
        r->ts = (CnnTrainState){.epoch = epoch, .batch = r->batch, .shuffle = r->o->shuffle, .rng = r->rng};
        cnn_report_epoch(r, epoch, &s, t0);
        if (!cnn_run_save(r)) return 1;
        if (cnn_interrupted) {
            fprintf(stderr, "interrupted after epoch %d; saved %s (continue with --resume %s)\n", epoch,
                    r->o->save, r->o->save);
            return 130;
        }
    }
    return 0;
}

/* ---- setting up ----------------------------------------------------------- */

/* Weights: --resume (with optimizer and training state), --init, or fresh. */
static bool cnn_run_weights(CnnRun *r, const CnnNpz *resume, CnnErr *e)
{
    if (resume) {
        CnnOptimConfig cfg = r->opt.cfg;
        if (!cnn_weights_from_npz(&r->net, resume, e) || !cnn_state_from_npz(&r->net, resume, &r->opt, &r->ts, e))
            return false;
        if (r->opt.cfg.kind != cfg.kind) {
            fprintf(stderr, "note: %s was trained with %s; starting %s with fresh state\n", r->o->resume,
                    cnn_optim_name(r->opt.cfg.kind), cnn_optim_name(cfg.kind));
            r->opt.step = 0;
            memset(r->opt.m, 0, (size_t)r->opt.n * sizeof(float));
            memset(r->opt.v, 0, (size_t)r->opt.n * sizeof(float));
        }
        r->opt.cfg = cfg;
        if (r->ts.batch_index > 0 && r->ts.batch != r->batch)
            return cnn_fail(e, "%s was interrupted mid-epoch with --batch %ld; resume it with the same batch size",
                            r->o->resume, (long)r->ts.batch);
        if (r->ts.batch_index >= (r->train.n + r->batch - 1) / r->batch)
            return cnn_fail(e, "%s was interrupted after batch %ld of an epoch, but %ld training images make %ld "
                            "batches; resume with the data it was trained on", r->o->resume, (long)r->ts.batch_index,
                            r->train.n, (r->train.n + r->batch - 1) / r->batch);
        return true;
    }
    cnn_rng_seed(&r->ts.rng, r->o->seed);
    if (r->o->init) return cnn_weights_load(&r->net, r->o->init, e);
    cnn_net_init(&r->net, &r->ts.rng);
    return true;
}

/* The optimizer settings: the model's, then the resumed file's, then flags. */
static CnnOptimConfig cnn_run_config(const CnnRun *r, const CnnNpz *resume, int64_t *saved_batch)
{
    CnnOptimConfig cfg = cnn_optim_defaults(r->m);
    *saved_batch = 0;
    if (resume) cnn_state_config(resume, &cfg, saved_batch);
    cnn_optim_override(&cfg, &r->o->opt, r->o->opt_set);
    return cfg;
}

static bool cnn_run_open_log(CnnRun *r, CnnErr *e)
{
    if (!r->o->log) return true;
    bool append = r->o->resume && r->ts.epoch > 0;
    FILE *old = append ? fopen(r->o->log, "r") : NULL;
    if (old) fclose(old);
    r->log = fopen(r->o->log, old ? "a" : "w");
    if (!r->log) return cnn_fail(e, "%s: cannot write the log", r->o->log);
    if (!old) fprintf(r->log, "epoch,train_loss,train_acc,test_loss,test_acc,seconds\n");
    return true;
}

static bool cnn_run_setup(CnnRun *r, CnnNpz *resume, CnnErr *e)
{
    int64_t saved_batch;
    if (r->o->resume && !cnn_npz_load(resume, r->o->resume, e)) return false;
    CnnNpz *rz = r->o->resume ? resume : NULL;
    CnnOptimConfig cfg = cnn_run_config(r, rz, &saved_batch);
    r->batch = r->o->batch ? r->o->batch : saved_batch ? (int)saved_batch : r->m->batch > 0 ? r->m->batch : 32;
    r->epochs = r->o->epochs ? r->o->epochs : r->m->epochs > 0 ? r->m->epochs : 10;
    if (!cnn_data_load(r->m, &r->o->data, true, &r->train, &r->test, e)) return false;
    if (r->o->data.limit > 0 && r->o->data.limit < r->train.n) r->train.n = r->o->data.limit;
    if (r->train.n < 1) return cnn_fail(e, "no training examples");
    r->order = malloc((size_t)r->train.n * sizeof *r->order);
    if (!r->order) return cnn_fail(e, "out of memory");
    return cnn_net_alloc(&r->net, r->m, r->batch, e) && cnn_optim_alloc(&r->opt, &cfg, r->m->param_floats, e)
           && cnn_run_weights(r, rz, e) && cnn_run_open_log(r, e);
}

static void cnn_run_free(CnnRun *r)
{
    if (r->log) fclose(r->log);
    free(r->order);
    cnn_net_free(&r->net);
    cnn_optim_free(&r->opt);
    cnn_data_free(&r->test);
    cnn_data_free(&r->train);
}

static void cnn_run_banner(const CnnRun *r)
{
    if (r->o->quiet) return;
    const CnnOptimConfig *c = &r->opt.cfg;
    fprintf(stderr, "%s: %ld training, %ld test images; %d epochs, batch %d, %s lr %g", r->m->name, r->train.n,
            r->test.n, r->epochs, r->batch, cnn_optim_name(c->kind), c->lr);
    if (c->kind == CNN_OPT_MOMENTUM) fprintf(stderr, " momentum %g", c->momentum);
    if (c->kind == CNN_OPT_ADAM) fprintf(stderr, " betas %g,%g eps %g", c->beta1, c->beta2, c->eps);
    fprintf(stderr, ", %d threads%s\n", omp_get_max_threads(), r->ts.epoch ? " (resumed)" : "");
}

int cnn_train(const CnnModel *m, const CnnTrainOptions *o)
{
    CnnRun r = {.m = m, .o = o, .saved_epoch = -1};
    CnnNpz resume = {0};
    CnnErr e;
    int status = 1;
    if (cnn_run_setup(&r, &resume, &e)) {
        cnn_run_banner(&r);
        if (o->save) signal(SIGINT, cnn_on_sigint);
        status = cnn_run_epochs(&r);
        signal(SIGINT, SIG_DFL);
    } else {
        cnn_print_error(&e);
    }
    cnn_npz_free(&resume);
    cnn_run_free(&r);
    return status;
}
