/* fuzz.h — the loop every harness shares.
 *
 * Under afl-clang-fast a harness runs in persistent mode: afl rewrites the
 * input file (@@) and the loop takes it again, a few thousand times per
 * process.  Built with a plain compiler (the regression replay, `make asan`)
 * the same main takes each file named on the command line once, so a crash
 * afl found is reproduced by `harness FILE`.  A harness only has to survive:
 * the return value of what it calls is not checked, just exercised. */
#ifndef CNN_FUZZ_H
#define CNN_FUZZ_H
#include <stdio.h>

static void fuzz_one(const char *path);

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
#ifdef __AFL_HAVE_MANUAL_CONTROL
    __AFL_INIT();
    while (__AFL_LOOP(2000)) fuzz_one(argv[1]);
#else
    for (int i = 1; i < argc; i++) fuzz_one(argv[i]);
#endif
    return 0;
}
#endif
