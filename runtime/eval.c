/* eval.c — `eval --weights W.npz [data]`: loss and accuracy on the test set,
 * with training = 0 (dropout off, batchnorm on its running statistics). */
#include "rt.h"
#include <stdio.h>

enum { CNN_EVAL_BATCH = 256 };

int cnn_eval(const CnnModel *m, const CnnDataOptions *d, const char *weights, int batch)
{
    CnnData train, test;
    CnnNet n;
    CnnErr e;
    if (!cnn_net_alloc(&n, m, batch > 0 ? batch : CNN_EVAL_BATCH, &e)) {
        cnn_print_error(&e);
        return 1;
    }
    bool ok = cnn_weights_load(&n, weights, &e) && cnn_data_load(m, d, false, &train, &test, &e);
    if (ok && test.n == 0) ok = cnn_fail(&e, "the test set is empty");
    if (ok) {
        double loss, acc;
        cnn_evaluate(&n, &test, &loss, &acc);
        printf("test loss %.4f acc %.4f (%ld images)\n", loss, acc, test.n);
        cnn_data_free(&test);
        cnn_data_free(&train);
    } else {
        cnn_print_error(&e);
    }
    cnn_net_free(&n);
    return ok ? 0 : 1;
}
