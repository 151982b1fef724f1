/* arena.h — one bump allocator per compilation.
 * Everything a compilation makes (source text, AST, checked model, plan,
 * emitted text) lives in one Arena and is freed at once by arena_free, so the
 * stages never track ownership and ASan stays clean. */
#ifndef CNNC_ARENA_H
#define CNNC_ARENA_H
#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena { ArenaBlock *head; } Arena;

void *arena_alloc(Arena *a, size_t size);          /* zeroed; aborts only on out-of-memory */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))
#endif
