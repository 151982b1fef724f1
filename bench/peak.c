/* peak.c — this core's single-precision FMA peak, measured.
 * Twelve independent accumulator chains of the widest vector the compiler
 * targets (-march=native), so neither latency nor dependencies limit it:
 * GFLOP/s = chains · lanes · 2 · iterations / seconds.  bench.py divides the
 * kernels' achieved rate by this to report a fraction of peak. */
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
enum { LANES = 16 };
#elif defined(__AVX__)
enum { LANES = 8 };
#else
enum { LANES = 4 };
#endif
typedef float vf __attribute__((vector_size(LANES * sizeof(float))));
enum { CHAINS = 12 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void)
{
    vf acc[CHAINS], a, b;
    for (int i = 0; i < LANES; i++) a[i] = 0.999999f, b[i] = 1e-7f;
    for (int c = 0; c < CHAINS; c++) acc[c] = b * (float)c;
    const long iters = 200000000 / LANES;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (long i = 0; i < iters; i++)
            for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
        double t = now() - t0, gflops = (double)iters * CHAINS * LANES * 2 / t / 1e9;
        if (gflops > best) best = gflops;
    }
    float sink = 0;
    for (int c = 0; c < CHAINS; c++) sink += acc[c][0];
    printf("%.1f %d %g\n", best, LANES, sink);   /* GFLOP/s per core, lanes, (keeps the loop alive) */
    return 0;
}
