/* util.c: the melange frontend's pool, strings, errors and warnings. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melange.h"

/* A pool is a list of blocks; big requests get a block of their own. */
struct mel_block {
	struct mel_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

struct mel_pool {
	struct mel_block *head;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		abort(); /* as kiln's host alloc: out of memory is fatal */
	return p;
}

struct mel_pool *mel_pool_new(void)
{
	struct mel_pool *p = xmalloc(sizeof(*p));
	p->head = NULL;
	return p;
}

void mel_pool_free(struct mel_pool *p)
{
	if (!p)
		return;
	for (struct mel_block *b = p->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p);
}

void *mel_alloc(struct mel_pool *p, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct mel_block *b = p->head;
	if (!b || b->size - b->used < n) {
		size_t size = n > 16384 ? n : 65536;
		b = xmalloc(sizeof(*b) + size);
		b->used = 0;
		b->size = size;
		if (n > 16384 && p->head) { /* keep filling the current block */
			b->next = p->head->next;
			p->head->next = b;
		} else {
			b->next = p->head;
			p->head = b;
		}
	}
	void *r = b->data + b->used;
	b->used += n;
	memset(r, 0, n);
	return r;
}

char *mel_strndup(struct mel_pool *p, const char *s, size_t n)
{
	char *r = mel_alloc(p, n + 1);
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

char *mel_strdup(struct mel_pool *p, const char *s)
{
	return s ? mel_strndup(p, s, strlen(s)) : NULL;
}

char *mel_printf(struct mel_pool *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *r = mel_alloc(p, (size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(r, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	return r;
}

void mel_buf_add(struct mel_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns)
			abort();
		b->s = ns;
		b->cap = cap;
	}
	if (n)
		memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void mel_buf_adds(struct mel_buf *b, const char *s)
{
	mel_buf_add(b, s, strlen(s));
}

void mel_buf_free(struct mel_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

int mel_fail(struct mel_err *err, const char *file, int line, int column, const char *fmt, ...)
{
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = line;
	err->column = column;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

void mel_warn(struct mel_pool *p, struct mel_diags *d, const char *file, int line, int column,
	      const char *fmt, ...)
{
	if (!d)
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct mel_diag *v = mel_alloc(p, cap * sizeof(*v));
		if (d->n)
			memcpy(v, d->v, d->n * sizeof(*v));
		d->v = v;
		d->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *msg = mel_alloc(p, (size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	d->v[d->n++] = (struct mel_diag){ .file = file, .line = line, .column = column, .msg = msg };
}
