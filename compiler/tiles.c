/* tiles.c — register tile and Winograd chunk sizes (tiles.h).  The numbers
 * behind them are the emitters' measurements; emit_conv_tiled.c and
 * emit_conv_winograd.c say where they come from. */
#include "tiles.h"

int tile_rows(int vlen, long nv, long limit)
{
    int regs = vlen == 16 ? 32 : 16;
    long t = (regs - nv - 2) / (nv ? nv : 1);
    if (t > 8) t = 8;
    if (t > limit) t = limit;
    return t < 1 ? 1 : (int)t;
}

/* All nv vectors (or `most`) while that leaves room for a tile of WIDE_TILE
 * or more rows, else the largest divisor of nv that does, the kernel looping
 * over the groups.  With 16 registers (AVX2) 32 or 64 channels (4 or 8
 * vectors) run as groups of 2 × 6 rows: 8 loads feed 12 FMAs, where one tile
 * over all 8 vectors had room for one row (9 loads for 8 FMAs) and
 * Winograd's products did not fit at all; vgg-small's conv2 forward there
 * 40 → 22 ms a batch by Winograd. */
enum { WIDE_TILE = 4 };

int tile_vector_group(int vlen, long nv, long most, long limit)
{
    for (long g = nv < most ? nv : most; g > 1; g--)
        if (nv % g == 0 && tile_rows(vlen, g, limit) >= (limit < WIDE_TILE ? limit : WIDE_TILE)) return (int)g;
    return 1;
}

long wino_blocks(int m, const Layer *l) { return (l->out.h / m) * (l->out.w / m); }

static long wino_points(int m) { return (long)(m + 2) * (m + 2); }

/* The register tile: blocks × a group of output-channel vectors (all of them
 * where the registers hold enough blocks beside them). */
int wino_vector_group(int vlen, long co, long blocks)
{
    return tile_vector_group(vlen, co / vlen, co / vlen, blocks);
}

int wino_tile_rows(int vlen, long co, long blocks)
{
    return tile_rows(vlen, wino_vector_group(vlen, co, blocks), blocks);
}

/* Blocks per chunk: V and M in about WINO_CHUNK_BYTES, a whole number of register tiles. */
long wino_chunk_blocks(int vlen, int m, long ci, long co, long blocks)
{
    long tx = wino_tile_rows(vlen, co, blocks);
    long ch = WINO_CHUNK_BYTES / (wino_points(m) * 4 * (ci + co));
    ch = (ch + tx - 1) / tx * tx;
    if (ch < 2 * tx) ch = 2 * tx;
    if (ch > blocks) ch = blocks;
    return ch;
}

bool wino_direction_fits(int vlen, int m, long ci, long co, long blocks)
{
    long stack = wino_points(m) * 4 * (wino_chunk_blocks(vlen, m, ci, co, blocks) * (ci + co) + 32);
    return wino_tile_rows(vlen, co, blocks) >= WINO_MIN_TILE && stack <= WINO_STACK_MAX_BYTES;
}

bool wino_fits(int vlen, int m, const Layer *l, bool need_din)
{
    long blocks = wino_blocks(m, l);
    return wino_direction_fits(vlen, m, l->in.c, l->a.n, blocks) &&
           (!need_din || wino_direction_fits(vlen, m, l->a.n, l->in.c, blocks));
}
