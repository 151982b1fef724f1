/* rng.c — the one random number generator of a training run.
 *
 * xoshiro256** (Blackman & Vigna), seeded through splitmix64 so that any
 * 64-bit seed, 0 included, gives a well-mixed state.  Init and shuffling draw
 * from it in a fixed order, which is what makes `--seed` reproducible; its
 * four words are saved in weights files so that `--resume` continues the
 * same sequence. */
#include "rt.h"

static uint64_t cnn_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t cnn_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void cnn_rng_seed(CnnRng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = cnn_splitmix64(&seed);
}

uint64_t cnn_rng_next(CnnRng *r)
{
    uint64_t *s = r->s;
    uint64_t result = cnn_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = cnn_rotl(s[3], 45);
    return result;
}

double cnn_rng_uniform(CnnRng *r) { return (double)(cnn_rng_next(r) >> 11) * 0x1.0p-53; }

/* Lemire's rejection method would be faster; plain rejection on the top
 * multiple of n is simpler and unbiased, and shuffling is not hot. */
uint64_t cnn_rng_below(CnnRng *r, uint64_t n)
{
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = cnn_rng_next(r);
    while (x >= limit);
    return x % n;
}

/* Fisher–Yates: idx[i] swaps with a uniform idx[j], j in [0, i]. */
void cnn_rng_shuffle(CnnRng *r, long *idx, long n)
{
    for (long i = n - 1; i > 0; i--) {
        long j = (long)cnn_rng_below(r, (uint64_t)i + 1);
        long t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
