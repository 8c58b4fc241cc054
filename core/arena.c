/* arena.c: bump allocator in 64 KiB chunks; large requests get their own. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "util.h"

#define CHUNK_SIZE (64 * 1024)

struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct kiln_arena {
	struct chunk *head;
};

struct kiln_arena *kiln__arena_new(void)
{
	return kiln__xcalloc(1, sizeof(struct kiln_arena));
}

void *kiln__arena_alloc(struct kiln_arena *a, size_t size)
{
	size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	struct chunk *c = a->head;
	if (!c || c->cap - c->used < size) {
		size_t cap = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
		c = kiln__xmalloc(sizeof(*c) + cap);
		c->used = 0;
		c->cap = cap;
		if (cap == size && a->head) {
			/* A big block: keep the current chunk at the head. */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = c->data + c->used;
	c->used += size;
	return memset(p, 0, size);
}

char *kiln__arena_strdup(struct kiln_arena *a, const char *s)
{
	if (!s)
		return NULL;
	size_t len = strlen(s) + 1;
	return memcpy(kiln__arena_alloc(a, len), s, len);
}

void kiln__arena_free(struct kiln_arena *a)
{
	if (!a)
		return;
	for (struct chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}
