/* loss.c — the loss of a batch and its gradient with respect to the output.
 *
 * The model's last layer gives raw outputs; the runtime turns them into a
 * loss exactly as the matching torch.nn module does, so that the
 * differential tests compare like with like:
 *   cross-entropy  L = mean_b( logsumexp(z_b) - z_b[y_b] ),  dz = (softmax(z) - onehot(y)) / B
 *   MSE            L = mean_{b,j} (y - t)^2,                  dy = 2 (y - t) / (B*outputs)
 *   BCE            L = -mean_{b,j} t log y + (1-t) log(1-y),  logs clamped at -100 as torch does,
 *                  dy = (y - t) / max(y (1-y), 1e-12) / (B*outputs)
 * Sums are in double; the log-softmax subtracts the row maximum first. */
#include "rt.h"
#include <math.h>

static int cnn_argmax(const float *row, int n)
{
    int best = 0;
    for (int j = 1; j < n; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

int cnn_predict_class(const CnnModel *m, const float *row, double *p)
{
    if (m->outputs == 1) {   /* one probability: class 1 when above one half */
        int k = row[0] > 0.5f;
        if (p) *p = k ? row[0] : 1.0 - row[0];
        return k;
    }
    int k = cnn_argmax(row, m->outputs);
    if (p && m->loss == CNN_LOSS_CROSSENTROPY) {
        double sum = 0;
        for (int j = 0; j < m->outputs; j++) sum += exp((double)row[j] - row[k]);
        *p = 1.0 / sum;
    } else if (p) {
        *p = row[k];
    }
    return k;
}

static double cnn_crossentropy_row(const float *z, int n, int label, float *dz, double scale)
{
    double max = z[cnn_argmax(z, n)], sum = 0;
    for (int j = 0; j < n; j++) sum += exp(z[j] - max);
    double lse = max + log(sum);
    if (dz)
        for (int j = 0; j < n; j++) dz[j] = (float)((exp(z[j] - lse) - (j == label)) * scale);
    return lse - z[label];
}

/* The target of output j of image b. */
static float cnn_target(const CnnModel *m, const int32_t *label, const float *target, int b, int j)
{
    if (target) return target[(long)b * m->outputs + j];
    if (m->outputs == 1) return (float)label[b];
    return label[b] == j ? 1.0f : 0.0f;
}

static double cnn_elementwise_loss(CnnLoss kind, float y, float t, float *dy, double inv_n)
{
    if (kind == CNN_LOSS_MSE) {
        if (dy) *dy = (y - t) * (float)(2.0 * inv_n);
        return ((double)y - t) * ((double)y - t);
    }
    double ly = log(y), l1y = log(1.0 - (double)y);
    if (!(ly >= -100)) ly = -100;     /* also catches log(0) = -inf and NaN from y<0 */
    if (!(l1y >= -100)) l1y = -100;
    if (dy) {
        double denom = fmax((1.0 - (double)y) * y, 1e-12);
        *dy = (float)(((double)y - t) / denom * inv_n);
    }
    return -(t * ly + (1.0 - t) * l1y);
}

double cnn_loss(const CnnModel *m, const float *out, const int32_t *label, const float *target,
                int batch, float *dout, long *correct)
{
    int n = m->outputs;
    double sum = 0;
    if (m->loss == CNN_LOSS_CROSSENTROPY) {
        for (int b = 0; b < batch; b++)
            sum += cnn_crossentropy_row(out + (long)b * n, n, label[b], dout ? dout + (long)b * n : NULL,
                                        1.0 / batch);
        sum /= batch;
    } else {
        double inv_n = 1.0 / ((double)batch * n);
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < n; j++) {
                long k = (long)b * n + j;
                sum += cnn_elementwise_loss(m->loss, out[k], cnn_target(m, label, target, b, j),
                                            dout ? dout + k : NULL, inv_n);
            }
        sum *= inv_n;
    }
    if (correct && label) {
        *correct = 0;
        for (int b = 0; b < batch; b++) *correct += cnn_predict_class(m, out + (long)b * n, NULL) == label[b];
    }
    return sum;
}
