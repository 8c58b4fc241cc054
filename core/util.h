/* util.h: the core's small helpers: checked allocation, a growable string
 * buffer, a string vector, time. Internal (kiln__ prefix). */
#ifndef KILN_CORE_UTIL_H
#define KILN_CORE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <kiln/kiln.h>

/* Allocation that never returns NULL: on failure prints and aborts. */
void *kiln__xmalloc(size_t size);
void *kiln__xcalloc(size_t n, size_t size);
void *kiln__xrealloc(void *ptr, size_t size);
char *kiln__xstrdup(const char *s);
char *kiln__xasprintf(const char *fmt, ...) KILN_PRINTF(1, 2);

/* Growable NUL-terminated byte buffer. Zero-initialise, or KILN_SB_INIT. */
struct kiln_sb {
	char *buf;
	size_t len;
	size_t cap;
};
#define KILN_SB_INIT { NULL, 0, 0 }
void kiln__sb_add(struct kiln_sb *sb, const void *data, size_t len);
void kiln__sb_adds(struct kiln_sb *sb, const char *s);
void kiln__sb_addf(struct kiln_sb *sb, const char *fmt, ...) KILN_PRINTF(2, 3);
void kiln__sb_vaddf(struct kiln_sb *sb, const char *fmt, va_list ap);
/* Returns the contents ("" when empty; never NULL) without freeing. */
const char *kiln__sb_str(const struct kiln_sb *sb);
/* Hand the buffer to the caller (free() it); sb becomes empty. */
char *kiln__sb_detach(struct kiln_sb *sb);
void kiln__sb_release(struct kiln_sb *sb);

/* A NULL-terminated vector of owned strings. Zero-initialise. */
struct kiln_strv {
	char **v;
	size_t n;
	size_t cap;
};
void kiln__strv_push(struct kiln_strv *sv, const char *s);
void kiln__strv_push_owned(struct kiln_strv *sv, char *s);
void kiln__strv_release(struct kiln_strv *sv);

/* Wall clock, ns since the Unix epoch. */
int64_t kiln__now_ns(void);
/* Monotonic clock, ns. */
int64_t kiln__mono_ns(void);

/* SHA-256 of len bytes (nettle: no provider set-up, unlike OpenSSL 3's
 * EVP, whose first digest maps ~2 MB more of libcrypto). */
void kiln__sha256(const void *data, size_t len, uint8_t md[32]);
/* The same as a digest string: "sha256:" + 64 lowercase hex + NUL. */
void kiln__sha256_digest(const void *data, size_t len, char out[72]);

/* Error reports (core side of kiln_host.error / error_at). */
int kiln__err(struct kiln_err *err, int code, const char *fmt, ...)
	KILN_PRINTF(3, 4);
int kiln__err_at(struct kiln_err *err, int code, const char *file, int line,
		 int column, const char *fmt, ...) KILN_PRINTF(6, 7);
int kiln__verr_at(struct kiln_err *err, int code, const char *file, int line,
		  int column, const char *fmt, va_list ap);
const char *kiln__strerror(int code);
/* Print "kiln: [file:line:col: ]msg" to stderr. */
void kiln__err_print(const struct kiln_err *err);

/* Diagnostics to stderr with "kiln: " prefix; level from KILN_LOG_LEVEL or
 * -v/--debug. */
extern enum kiln_log_level kiln__log_level;
void kiln__log(enum kiln_log_level level, const char *fmt, ...) KILN_PRINTF(2, 3);

#endif
