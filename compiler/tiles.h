/* tiles.h — the sizes of the kernels' register tiles and Winograd's chunks,
 * for vectors of vlen floats (8 with AVX2, 16 with AVX-512).
 *
 * The emitters size every kernel with these.  The plan asks them too where
 * what it allocates depends on the kernel the emitter will take: a max pool
 * that a Winograd conv applies (plan.c: plan_fused_pools) leaves the conv's
 * output and the pool's dL/din without a buffer, so the plan fuses only where
 * Winograd fits at both widths, and the emitter, whatever the host's width,
 * then takes it. */
#ifndef CNNC_TILES_H
#define CNNC_TILES_H
#include <stdbool.h>
#include "layers.h"

/* A register tile's rows beside nv vectors of weights (or gradients) and one
 * broadcast: 32 vector registers with AVX-512, 16 without; at most 8, at most limit. */
int tile_rows(int vlen, long nv, long limit);
/* How many of nv channel vectors one register tile covers (see tiles.c). */
int tile_vector_group(int vlen, long nv, long most, long limit);

/* Winograd F(m×m, 3×3): V and M of a chunk of tiles in about WINO_CHUNK_BYTES,
 * at most WINO_STACK_MAX_BYTES on a thread's stack, and register tiles of at
 * least WINO_MIN_TILE output blocks (fewer ran slower than the direct kernels). */
enum { WINO_CHUNK_BYTES = 64 * 1024, WINO_STACK_MAX_BYTES = 320 * 1024, WINO_MIN_TILE = 4 };

long wino_blocks(int m, const Layer *l);   /* m×m output blocks per image */
/* One direction of a conv's Winograd kernels, ci channels in and co out over
 * `blocks` blocks: its register tile's vector group and rows, its chunk of
 * blocks, and whether it fits (rows and stack). */
int wino_vector_group(int vlen, long co, long blocks);
int wino_tile_rows(int vlen, long co, long blocks);
long wino_chunk_blocks(int vlen, int m, long ci, long co, long blocks);
bool wino_direction_fits(int vlen, int m, long ci, long co, long blocks);
/* Whether F(m×m) fits conv l at this width: its forward, and its dL/din (the
 * channels swapped) where need_din. */
bool wino_fits(int vlen, int m, const Layer *l, bool need_din);
#endif
