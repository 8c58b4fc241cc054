/* util.c: allocation, string buffers, clocks, error reports, logging. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nettle/sha2.h>

#include "util.h"

static void oom(size_t size)
{
	fprintf(stderr, "kiln: out of memory allocating %zu bytes\n", size);
	abort();
}

void *kiln__xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		oom(size);
	return p;
}

void *kiln__xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *kiln__xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		oom(size);
	return p;
}

char *kiln__xstrdup(const char *s)
{
	size_t len = strlen(s) + 1;
	return memcpy(kiln__xmalloc(len), s, len);
}

char *kiln__xasprintf(const char *fmt, ...)
{
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	return kiln__sb_detach(&sb);
}

static void sb_grow(struct kiln_sb *sb, size_t extra)
{
	if (sb->len + extra + 1 <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	sb->buf = kiln__xrealloc(sb->buf, cap);
	sb->cap = cap;
}

void kiln__sb_add(struct kiln_sb *sb, const void *data, size_t len)
{
	sb_grow(sb, len);
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void kiln__sb_adds(struct kiln_sb *sb, const char *s)
{
	kiln__sb_add(sb, s, strlen(s));
}

void kiln__sb_vaddf(struct kiln_sb *sb, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void kiln__sb_addf(struct kiln_sb *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

const char *kiln__sb_str(const struct kiln_sb *sb)
{
	return sb->buf ? sb->buf : "";
}

char *kiln__sb_detach(struct kiln_sb *sb)
{
	char *s = sb->buf ? sb->buf : kiln__xstrdup("");
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	return s;
}

void kiln__sb_release(struct kiln_sb *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

void kiln__strv_push_owned(struct kiln_strv *sv, char *s)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = kiln__xrealloc(sv->v, sv->cap * sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void kiln__strv_push(struct kiln_strv *sv, const char *s)
{
	kiln__strv_push_owned(sv, kiln__xstrdup(s));
}

void kiln__strv_release(struct kiln_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t kiln__now_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t kiln__mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

void kiln__sha256(const void *data, size_t len, uint8_t md[32])
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, len, data);
	sha256_digest(&c, SHA256_DIGEST_SIZE, md);
}

void kiln__sha256_digest(const void *data, size_t len, char out[72])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[32];
	kiln__sha256(data, len, md);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[71] = '\0';
}

/* Copy src into a fixed buffer, truncating; never overflows. */
static void copy_trunc(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int kiln__verr_at(struct kiln_err *err, int code, const char *file, int line,
		  int column, const char *fmt, va_list ap)
{
	if (!err)
		return code;
	err->code = code;
	err->line = line;
	err->column = column;
	copy_trunc(err->file, sizeof(err->file), file);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	/* One line: fold embedded newlines so reports stay greppable. */
	for (char *p = err->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return code;
}

int kiln__err_at(struct kiln_err *err, int code, const char *file, int line,
		 int column, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__verr_at(err, code, file, line, column, fmt, ap);
	va_end(ap);
	return code;
}

int kiln__err(struct kiln_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln__verr_at(err, code, NULL, 0, 0, fmt, ap);
	va_end(ap);
	return code;
}

const char *kiln__strerror(int code)
{
	switch (code) {
	case KILN_OK: return "success";
	case KILN_E_NOMEM: return "out of memory";
	case KILN_E_INVALID: return "invalid argument";
	case KILN_E_IO: return "input/output error";
	case KILN_E_NOTFOUND: return "not found";
	case KILN_E_UNSUPPORTED: return "not supported";
	case KILN_E_ABI: return "plugin ABI mismatch";
	case KILN_E_PLUGIN: return "plugin error";
	case KILN_E_SYNTAX: return "syntax error";
	case KILN_E_CONNECT: return "cannot connect";
	case KILN_E_PROTOCOL: return "protocol error";
	case KILN_E_BUILD: return "build failed";
	case KILN_E_CANCELLED: return "cancelled";
	case KILN_E_EXISTS: return "already exists";
	case KILN_E_DENIED: return "permission denied";
	case KILN_E_ENGINE_LOST: return "engine lost during the solve";
	}
	return "unknown error";
}

void kiln__err_print(const struct kiln_err *err)
{
	const char *msg = err->msg[0] ? err->msg : kiln__strerror(err->code);
	if (err->file[0] && err->line > 0 && err->column > 0)
		fprintf(stderr, "kiln: %s:%d:%d: %s\n", err->file, err->line,
			err->column, msg);
	else if (err->file[0] && err->line > 0)
		fprintf(stderr, "kiln: %s:%d: %s\n", err->file, err->line, msg);
	else if (err->file[0])
		fprintf(stderr, "kiln: %s: %s\n", err->file, msg);
	else
		fprintf(stderr, "kiln: %s\n", msg);
}

enum kiln_log_level kiln__log_level = KILN_LOG_WARN;

void kiln__log(enum kiln_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	if (level > kiln__log_level)
		return;
	struct kiln_sb sb = KILN_SB_INIT;
	va_list ap;
	va_start(ap, fmt);
	kiln__sb_adds(&sb, "kiln: ");
	kiln__sb_adds(&sb, prefix[level]);
	kiln__sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	kiln__sb_adds(&sb, "\n");
	/* One write, so lines from parallel jobs never interleave. */
	fwrite(sb.buf, 1, sb.len, stderr);
	kiln__sb_release(&sb);
}
