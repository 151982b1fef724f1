/* data.c — which files a command reads, from its data options.
 *
 *   --train-images/--train-labels/--test-images/--test-labels   IDX files
 *   --csv F [--test-csv G]   CSV; without --test-csv the last 10% of F is
 *                            held out as the test set (train and eval agree)
 *   nothing                  Fashion-MNIST from Debian's dataset-fashion-mnist
 */
#include "rt.h"
#include <string.h>
#include <unistd.h>

#define CNN_FASHION_DIR "/usr/share/datasets/fashion-mnist"

static bool cnn_idx_pair(const CnnModel *m, const char *images, const char *labels, CnnData *d, CnnErr *e)
{
    if (!cnn_idx_images(images, m, d, e)) return false;
    if (cnn_idx_labels(labels, m, d, e)) return true;
    cnn_data_free(d);
    return false;
}

static bool cnn_data_idx(const CnnModel *m, const CnnDataOptions *o, bool need_train, CnnData *train,
                         CnnData *test, CnnErr *e)
{
    if (!o->train_images != !o->train_labels)
        return cnn_fail(e, "--train-images and --train-labels go together; give both");
    if (!o->test_images != !o->test_labels)
        return cnn_fail(e, "--test-images and --test-labels go together; give both");
    if (need_train && !o->train_images)
        return cnn_fail(e, "training needs --train-images and --train-labels");
    if (!need_train && !o->test_images)
        return cnn_fail(e, "eval needs --test-images and --test-labels (it measures the test set)");
    if (need_train && !cnn_idx_pair(m, o->train_images, o->train_labels, train, e)) return false;
    if (o->test_images && !cnn_idx_pair(m, o->test_images, o->test_labels, test, e)) {
        cnn_data_free(train);
        return false;
    }
    return true;
}

/* Without --test-csv, train owns all rows (its x and y start them) and test
 * is a view of the last tenth. */
static bool cnn_data_csv(const CnnModel *m, const CnnDataOptions *o, bool need_train, CnnData *train,
                         CnnData *test, CnnErr *e)
{
    CnnData all;
    if (o->test_csv && !need_train) return cnn_csv_load(o->test_csv, m, test, e);
    if (!cnn_csv_load(o->csv, m, &all, e)) return false;
    if (o->test_csv) {
        *train = all;
        if (cnn_csv_load(o->test_csv, m, test, e)) return true;
        cnn_data_free(train);
        return false;
    }
    long ntest = all.n / 10;
    cnn_data_split(&all, ntest, train, test);
    train->owned = true;
    fprintf(stderr, "note: %s: the last %ld of its %ld rows (10%%) are the test set; --test-csv F gives another\n",
            o->csv, ntest, all.n);
    return true;
}

static bool cnn_data_fashion(const CnnModel *m, bool need_train, CnnData *train, CnnData *test, CnnErr *e)
{
    if (m->in_h != 28 || m->in_w != 28 || m->in_c != 1)
        return cnn_fail(e, "model %s takes %dx%dx%d inputs but the default data set, Fashion-MNIST, is 28x28x1; "
                        "give --train-images/--train-labels/--test-images/--test-labels or --csv",
                        m->name, m->in_h, m->in_w, m->in_c);
    if (access(CNN_FASHION_DIR "/t10k-images-idx3-ubyte.gz", R_OK) != 0)
        return cnn_fail(e, "no data option given and Fashion-MNIST is not in " CNN_FASHION_DIR
                        " (apt install dataset-fashion-mnist, or give --train-images ... or --csv)");
    CnnDataOptions o = {
        .train_images = need_train ? CNN_FASHION_DIR "/train-images-idx3-ubyte.gz" : NULL,
        .train_labels = need_train ? CNN_FASHION_DIR "/train-labels-idx1-ubyte.gz" : NULL,
        .test_images = CNN_FASHION_DIR "/t10k-images-idx3-ubyte.gz",
        .test_labels = CNN_FASHION_DIR "/t10k-labels-idx1-ubyte.gz",
    };
    return cnn_data_idx(m, &o, need_train, train, test, e);
}

bool cnn_data_load(const CnnModel *m, const CnnDataOptions *o, bool need_train, CnnData *train, CnnData *test,
                   CnnErr *e)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (o->test_csv && !o->csv && need_train) return cnn_fail(e, "--test-csv needs --csv for the training rows");
    if (o->csv && (o->train_images || o->test_images))
        return cnn_fail(e, "--csv and the IDX options (--train-images, ...) exclude each other");
    if (o->csv) return cnn_data_csv(m, o, need_train, train, test, e);
    if (o->test_csv) return cnn_csv_load(o->test_csv, m, test, e);
    if (o->train_images || o->train_labels || o->test_images || o->test_labels)
        return cnn_data_idx(m, o, need_train, train, test, e);
    return cnn_data_fashion(m, need_train, train, test, e);
}
