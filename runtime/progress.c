/* progress.c — what a training run shows while an epoch is under way.
 *
 * On a terminal, one bar redrawn in place at most ten times a second:
 *     epoch 1/10 [=====>        ] 1234/60000 loss 0.512 acc 0.812 3,412 img/s ETA 0:14
 * Elsewhere (a log file, CI), the same text as a plain line at every tenth
 * of the epoch, so logs stay short.  Everything goes to stderr; the epoch
 * results themselves go to stdout (train.c). */
#include "rt.h"
#include <time.h>
#include <unistd.h>

enum { BAR_WIDTH = 20 };

double cnn_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void cnn_progress_start(CnnProgress *p, int epoch, int epochs, long total, long start, bool quiet)
{
    *p = (CnnProgress){.tty = isatty(fileno(stderr)), .quiet = quiet, .epoch = epoch, .epochs = epochs,
                       .total = total, .start = start, .t0 = cnn_now(), .last_draw = 0, .next_tenth = 1, .printed = -1};
}

/* 12345 -> "12,345" */
static void cnn_thousands(char *buf, size_t n, long v)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%ld", v), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
        if (i > 0 && (len - i) % 3 == 0 && digits[i - 1] != '-') buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = 0;
}

static void cnn_progress_text(const CnnProgress *p, long done, double loss, double acc, char *out, size_t n)
{
    double elapsed = cnn_now() - p->t0;
    double rate = elapsed > 0 ? (done - p->start) / elapsed : 0;
    long eta = rate > 0 ? (long)((p->total - done) / rate + 0.5) : 0;
    char speed[32];
    cnn_thousands(speed, sizeof speed, (long)(rate + 0.5));
    snprintf(out, n, "%ld/%ld loss %.3f acc %.3f %s img/s ETA %ld:%02ld", done, p->total, loss, acc, speed,
             eta / 60, eta % 60);
}

void cnn_progress_update(CnnProgress *p, long done, double loss, double acc, bool final)
{
    if (p->quiet) return;
    double now = cnn_now();
    char text[160];
    if (p->tty) {
        if (!final && now - p->last_draw < 0.1) return;
        p->last_draw = now;
        char bar[BAR_WIDTH + 1];
        int fill = p->total ? (int)(BAR_WIDTH * done / p->total) : BAR_WIDTH;
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
        bar[BAR_WIDTH] = 0;
        cnn_progress_text(p, done, loss, acc, text, sizeof text);
        fprintf(stderr, "\repoch %d/%d [%s] %s\033[K%s", p->epoch, p->epochs, bar, text, final ? "\n" : "");
        fflush(stderr);
        return;
    }
    bool tenth = done * 10 >= p->next_tenth * p->total;
    if (!(tenth || (final && done != p->printed))) return;
    p->printed = done;
    while (p->next_tenth * p->total <= done * 10) p->next_tenth++;
    cnn_progress_text(p, done, loss, acc, text, sizeof text);
    fprintf(stderr, "epoch %d/%d %s\n", p->epoch, p->epochs, text);
}
