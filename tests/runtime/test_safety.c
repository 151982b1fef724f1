/* test_safety.c — a user's weights survive whatever happens to training.
 *
 *   kill -9 during saves   --save writes W.npz.tmp.<pid>, fsyncs it and renames
 *                          it over W.npz; so W.npz, checked after every kill,
 *                          is always a whole checkpoint (weights and training
 *                          state load), and resuming from it after a chain of
 *                          kills gives the bytes an uninterrupted run gives.
 *   NaN / Inf loss         training stops with a message naming the step and
 *                          the last good checkpoint, and nothing is saved over it.
 * (Ctrl-C saving mid-epoch and resuming bit for bit are test_e2e.c's
 * interrupt_and_resume and resume_is_exact.)
 * The fake model (fake_model.c) is linked in, so checkpoints are checked
 * with the same loader train --resume uses. */
#include "rt_test.h"
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#define FAKE FAKE_DIR "/fake"
enum { KILLS = 40, EPOCHS = 1000 };

static void make_set(const char *images, const char *labels, unsigned n, uint64_t seed)
{
    rt_make_fake_set(images, labels, n, seed, false);
}

/* The epoch a checkpoint holds, after loading it exactly as --resume does;
 * fails the test when any part of it is missing or damaged. */
static long checkpoint_epoch(const char *path)
{
    CnnErr e;
    CnnNpz z = {0};
    CnnNet n;
    CnnOptim o;
    CnnTrainState ts;
    ck_assert_msg(cnn_npz_load(&z, path, &e), "%s", e.msg);
    ck_assert_msg(cnn_net_alloc(&n, &cnn_model, 8, &e), "%s", e.msg);
    CnnOptimConfig cfg = cnn_optim_defaults(&cnn_model);
    ck_assert(cnn_optim_alloc(&o, &cfg, cnn_model.param_floats, &e));
    ck_assert_msg(cnn_weights_from_npz(&n, &z, &e), "%s", e.msg);
    ck_assert_msg(cnn_state_from_npz(&n, &z, &o, &ts, &e), "%s", e.msg);
    cnn_optim_free(&o);
    cnn_net_free(&n);
    cnn_npz_free(&z);
    return (long)ts.epoch;
}

/* Removes rt_dir()'s leftovers "<name>.tmp.*" (a kill landed inside a save)
 * and returns how many there were. */
static int remove_temporaries(const char *name)
{
    DIR *d = opendir(rt_dir());
    ck_assert_ptr_nonnull(d);
    int n = 0;
    size_t len = strlen(name);
    for (struct dirent *de; (de = readdir(d));)
        if (strncmp(de->d_name, name, len) == 0 && strncmp(de->d_name + len, ".tmp.", 5) == 0) {
            unlink(rt_path(de->d_name));
            n++;
        }
    closedir(d);
    return n;
}

static pid_t start_training(const char *resume)
{
    char epochs[16];
    snprintf(epochs, sizeof epochs, "%d", EPOCHS);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (chdir(rt_dir()) != 0 || !freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(99);
        if (resume)
            execl(FAKE, FAKE, "train", "--train-images", "img", "--train-labels", "lab", "--batch", "8", "--epochs",
                  epochs, "--optimizer", "adam", "--lr", "0.01", "--resume", resume, "--save", "w.npz", "--quiet",
                  (char *)NULL);
        else
            execl(FAKE, FAKE, "train", "--train-images", "img", "--train-labels", "lab", "--batch", "8", "--epochs",
                  epochs, "--optimizer", "adam", "--lr", "0.01", "--save", "w.npz", "--quiet", (char *)NULL);
        _exit(98);
    }
    return pid;
}

static void sleep_ms(double ms)
{
    struct timespec t = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)((ms - 1000 * (long)(ms / 1000)) * 1e6)};
    nanosleep(&t, NULL);
}

/* 40 runs, each killed with SIGKILL a random few milliseconds after its
 * first save and the next resuming from what the last one left.  Each epoch is 8 steps on 64
 * images and a save, so most of the time goes to saving and many kills land
 * inside one (a W.npz.tmp.<pid> is left behind: counted, must be > 0). */
START_TEST(kill_during_saves_keeps_the_checkpoint)
{
    make_set("img", "lab", 64, 7);
    char *out;
    int st = rt_run(&out, FAKE " train --train-images img --train-labels lab --batch 8 --epochs %d --optimizer adam "
                              "--lr 0.01 --save straight.npz --quiet", EPOCHS);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    CnnRng r;
    cnn_rng_seed(&r, 12345);
    long epoch = -1;
    int mid_save = 0, finished = 0;
    for (int i = 0; i < KILLS; i++) {
        /* Each save renames a new file over w.npz: wait for the run's first
         * one (a new inode), so that the kill lands among saves, not in start-up. */
        struct stat sb;
        bool have = stat(rt_path("w.npz"), &sb) == 0;
        ino_t old = have ? sb.st_ino : 0;
        pid_t pid = start_training(have ? "w.npz" : NULL);
        for (int t = 0; t < 20000 && (stat(rt_path("w.npz"), &sb) != 0 || sb.st_ino == old); t++) sleep_ms(0.5);
        sleep_ms((double)cnn_rng_below(&r, 20));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status)) {   /* it got to the end first */
            ck_assert_msg(WEXITSTATUS(status) == 0, "run %d exited %d", i, WEXITSTATUS(status));
            finished++;
        }
        mid_save += remove_temporaries("w.npz") > 0;
        long now = checkpoint_epoch(rt_path("w.npz"));
        ck_assert_msg(now >= epoch, "run %d: the checkpoint went back from epoch %ld to %ld", i, epoch, now);
        epoch = now;
    }
    fprintf(stderr, "kill_during_saves: %d kills, %d inside a save, %d runs finished first, checkpoint at epoch %ld\n",
            KILLS - finished, mid_save, finished, epoch);
    ck_assert_msg(mid_save > 0, "no kill landed inside a save; the test proved nothing");
    st = rt_run(&out, FAKE " train --train-images img --train-labels lab --batch 8 --epochs %d --resume w.npz "
                          "--save w.npz --quiet && cmp straight.npz w.npz", EPOCHS);
    ck_assert_msg(st == 0, "resuming after the kills did not give the uninterrupted run's weights:\n%s", out);
    free(out);
}
END_TEST

/* A W.npz.tmp.<pid> left by a killed save is removed by the next save; one
 * whose process is alive (another save in progress) is left alone. */
START_TEST(next_save_removes_a_killed_saves_temporary)
{
    make_set("img", "lab", 16, 3);
    pid_t dead = fork();
    ck_assert_int_ge(dead, 0);
    if (dead == 0) _exit(0);
    ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
    char stale[64], live[64];
    snprintf(stale, sizeof stale, "w.npz.tmp.%ld", (long)dead);
    snprintf(live, sizeof live, "w.npz.tmp.%ld", (long)getpid());   /* this test process: alive */
    for (const char *name = stale;; name = live) {
        FILE *f = fopen(rt_path(name), "w");
        ck_assert_ptr_nonnull(f);
        fputs("half a checkpoint", f);
        fclose(f);
        if (name == live) break;
    }
    char *out;
    int st = rt_run(&out, FAKE " train --train-images img --train-labels lab --batch 8 --epochs 1 --save w.npz --quiet");
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    struct stat sb;
    ck_assert_msg(stat(rt_path(stale), &sb) != 0, "%s (its process is gone) was not removed", stale);
    ck_assert_msg(stat(rt_path(live), &sb) == 0, "%s (its process is alive) was removed", live);
    ck_assert_int_eq(checkpoint_epoch(rt_path("w.npz")), 1);
    unlink(rt_path(live));
}
END_TEST

/* An absurd learning rate overflows the weights to infinity within a few
 * steps.  A fresh run has no checkpoint to point to and saves nothing; a
 * run resumed from a good file names it and leaves it alone; a run that
 * saved epochs of its own names the last of them. */
START_TEST(nan_loss_names_step_and_checkpoint)
{
    make_set("img", "lab", 32, 3);
    char *out;
    const char *data = "--train-images img --train-labels lab --no-shuffle --optimizer sgd";
    int st = rt_run(&out, FAKE " train %s --batch 4 --lr 3e38 --epochs 3 --save fresh.npz", data);
    ck_assert_msg(st == 1, "exit %d:\n%s", st, out);
    ck_assert_msg(strstr(out, "in epoch 1, step ") && strstr(out, "; no checkpoint saved yet;"), "%s", out);
    free(out);
    ck_assert_int_ne(access(rt_path("fresh.npz"), F_OK), 0);
    st = rt_run(&out, FAKE " train %s --batch 4 --lr 0.01 --epochs 2 --save good.npz --quiet && cp good.npz keep.npz",
                data);
    ck_assert_msg(st == 0, "%s", out);
    free(out);
    st = rt_run(&out, FAKE " train %s --batch 4 --lr 3e38 --epochs 4 --resume good.npz --save good.npz", data);
    ck_assert_msg(st == 1, "exit %d:\n%s", st, out);
    ck_assert_msg(strstr(out, "in epoch 3, step ") &&
                  strstr(out, "last good checkpoint: good.npz, the file this run resumed from"), "%s", out);
    free(out);
    ck_assert_int_eq(rt_run(NULL, "cmp good.npz keep.npz"), 0);
    /* One step per epoch: the weights grow for a few epochs before they overflow. */
    st = rt_run(&out, FAKE " train %s --batch 32 --lr 3e38 --epochs 100 --save blow.npz --quiet", data);
    ck_assert_msg(st == 1 && strstr(out, "last good checkpoint: blow.npz, saved after epoch "), "exit %d:\n%s", st, out);
    long saved = atol(strstr(out, "saved after epoch ") + 18);
    ck_assert_msg(saved >= 1 && strstr(out, "step 1 (images 0..31)"), "%s", out);
    free(out);
    ck_assert_int_eq(checkpoint_epoch(rt_path("blow.npz")), saved);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safety");
    TCase *t = tcase_create("safety");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, kill_during_saves_keeps_the_checkpoint);
    tcase_add_test(t, next_save_removes_a_killed_saves_temporary);
    tcase_add_test(t, nan_loss_names_step_and_checkpoint);
    suite_add_tcase(s, t);
    return rt_main(s);
}
