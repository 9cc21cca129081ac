/* A snapshot allocator for fuzz_engine (fuzz/arena.c).
 *
 * fuzz_engine links a copy of the library (ustcp_fzarena, fuzz/CMakeLists.txt)
 * compiled with malloc/calloc/realloc/free renamed to the fz_* functions below.
 * While the arena is on, every allocation of the stack comes from one fixed
 * region, so the whole stack (control blocks, buffers, tables) is the prefix
 * [base, top) of that region and holds no pointer outside it but to static data
 * and functions. Saving that prefix after the prologue and copying it back
 * restores the stack exactly, at the same addresses, for the price of a memcpy:
 * the connections in every state are built once, not once an input.
 *
 * Memory is never reused within one run (free poisons the block, so a use after
 * free is an AddressSanitizer report); each block has a poisoned header and
 * redzone (overflows are reported too). With the arena off, or full, the
 * functions pass through to the C library. */
#ifndef USTCP_FUZZ_ARENA_H
#define USTCP_FUZZ_ARENA_H
#include <stdbool.h>
#include <stddef.h>

void *fz_malloc(size_t n);
void *fz_calloc(size_t n, size_t m);
void *fz_realloc(void *p, size_t n);
void fz_free(void *p);

struct fz_snap;
/* Turns the arena on and empties it (the blocks in it are forgotten: only call
 * when nothing in it is alive, or will be used again). */
void fz_arena_reset(void);
/* A copy of the arena as it is now (NULL if out of memory). */
struct fz_snap *fz_arena_save(void);
/* The arena exactly as it was saved; every block allocated since is gone. */
void fz_arena_restore(const struct fz_snap *s);
/* Bytes in use, and whether any allocation fell outside the arena since the
 * last reset or restore. */
size_t fz_arena_used(void);
bool fz_arena_spilled(void);
#endif
