/* arena.h: per-job bump allocator (struct kiln_arena of build.h). All
 * memory is zeroed and freed at once by kiln__arena_free(). Not
 * thread-safe: one arena per job. */
#ifndef KILN_CORE_ARENA_H
#define KILN_CORE_ARENA_H

#include <stddef.h>

struct kiln_arena;

struct kiln_arena *kiln__arena_new(void);
void *kiln__arena_alloc(struct kiln_arena *a, size_t size);
char *kiln__arena_strdup(struct kiln_arena *a, const char *s);
/* Frees the arena and everything allocated from it; NULL is a no-op. */
void kiln__arena_free(struct kiln_arena *a);

#endif
