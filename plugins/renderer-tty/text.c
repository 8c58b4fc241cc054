/*
 * text.c: output lines for the terminal. Everything the build sends is
 * untrusted text: it is decoded as UTF-8 (invalid bytes become U+FFFD),
 * stripped of control characters and escape sequences (a RUN step's
 * colours or cursor moves must not move ours), and measured in display
 * columns with wcwidth(3) in a UTF-8 locale, so that a line can be cut to
 * the terminal's width and never wraps. Symbols are padded to two
 * columns as wcwidth() counts them ("⚙️" is one column and U+FE0F), so
 * that names line up in terminals that follow wcwidth(); the line limit
 * (draw.c) leaves room for terminals that draw such symbols wide.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tty.h"

const struct kiln_host *tty_host;

void *tty_alloc(size_t n)
{
	void *p = tty_host->alloc(n ? n : 1);
	memset(p, 0, n ? n : 1);
	return p;
}

void *tty_realloc(void *p, size_t n)
{
	return tty_host->realloc(p, n ? n : 1);
}

void tty_free(void *p)
{
	tty_host->free(p);
}

/* ---- buffers ---------------------------------------------------------------- */

static void buf_reserve(struct tty_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->p = tty_realloc(b->p, cap);
	b->cap = cap;
}

void tty_buf_add(struct tty_buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

void tty_buf_adds(struct tty_buf *b, const char *s)
{
	tty_buf_add(b, s, strlen(s));
}

void tty_buf_addf(struct tty_buf *b, const char *fmt, ...)
{
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n > 0) {
		buf_reserve(b, (size_t)n);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	va_end(ap);
}

void tty_buf_release(struct tty_buf *b)
{
	tty_free(b->p);
	*b = (struct tty_buf){ 0 };
}

char *tty_strndup(const char *s, size_t n)
{
	char *d = tty_alloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *tty_strdup(const char *s)
{
	return tty_strndup(s ? s : "", s ? strlen(s) : 0);
}

/* ---- symbols ------------------------------------------------------------------ */

struct symdef {
	const char *glyph; /* UTF-8 */
	const char *ascii; /* "" = none in ASCII mode */
};

static const struct symdef syms[SYM__COUNT] = {
	[SYM_NONE] = { "", "" },
	[SYM_DONE] = { "\xe2\x9c\x85", "+" },                      /* ✅ */
	[SYM_CACHED] = { "\xe2\x99\xbb\xef\xb8\x8f", "=" },        /* ♻️ */
	[SYM_FAILED] = { "\xe2\x9d\x8c", "x" },                    /* ❌ */
	[SYM_CANCELLED] = { "\xe2\x9b\x94", "-" },                 /* ⛔ */
	[SYM_WARN] = { "\xe2\x9a\xa0\xef\xb8\x8f", "!" },          /* ⚠️ */
	[SYM_BASE] = { "\xf0\x9f\x8f\x97\xef\xb8\x8f", "" },       /* 🏗️ */
	[SYM_PULL] = { "\xf0\x9f\x93\xa6", "" },                   /* 📦 */
	[SYM_DOWNLOAD] = { "\xf0\x9f\x93\xa5", "" },               /* 📥 */
	[SYM_COPY] = { "\xf0\x9f\x93\x84", "" },                   /* 📄 */
	[SYM_RUN] = { "\xe2\x9a\x99\xef\xb8\x8f", "" },            /* ⚙️ */
	[SYM_WORKDIR] = { "\xf0\x9f\x93\x81", "" },                /* 📁 */
	[SYM_PORT] = { "\xf0\x9f\x94\x8c", "" },                   /* 🔌 */
	[SYM_ENTRY] = { "\xf0\x9f\x9a\x80", "" },                  /* 🚀 */
	[SYM_META] = { "\xf0\x9f\x93\x9d", "" },                   /* 📝 */
	[SYM_COMMIT] = { "\xf0\x9f\x92\xbe", "" },                 /* 💾 */
	[SYM_TAG] = { "\xf0\x9f\x8f\xb7\xef\xb8\x8f", "" },        /* 🏷️ */
	[SYM_EXPORT] = { "\xf0\x9f\x93\xa4", "" },                 /* 📤 */
	[SYM_JOB] = { "\xf0\x9f\x94\xa8", ">" },                   /* 🔨 */
	[SYM_SUCCESS] = { "\xf0\x9f\x8e\x89", "*" },               /* 🎉 */
};

/* ---- UTF-8 and widths ------------------------------------------------------------ */

/* Decode one code point at s[0..n); returns its length (>= 1). Invalid
 * input (overlong, surrogate, > U+10FFFF, truncated) is one byte of
 * U+FFFD. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	if (n < len) {
		*cp = 0xfffd;
		return 1;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return 1;
		}
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		*cp = 0xfffd;
		return 1;
	}
	*cp = v;
	return len;
}

/* Columns of code point cp (>= 0x80); -1: not to be shown. Without a
 * UTF-8 locale to ask, every printable code point is one column. */
static int cp_width(const struct tty *st, uint32_t cp)
{
	if (cp < 0xa0)
		return -1; /* C1 controls */
	int w = st->utf8 ? wcwidth((wchar_t)cp) : 1;
	if (w < 0)
		return cp >= 0xe000 ? 1 : -1; /* private use: one column */
	return w;
}

/* Length of the escape sequence at s[0] == ESC (CSI, OSC, or ESC + one). */
static size_t escape_len(const unsigned char *s, size_t n)
{
	if (n < 2)
		return n;
	size_t i = 2;
	if (s[1] == '[') {
		while (i < n && !(s[i] >= 0x40 && s[i] <= 0x7e))
			i++;
		return i < n ? i + 1 : n;
	}
	if (s[1] == ']' || s[1] == 'P' || s[1] == '_' || s[1] == '^') {
		while (i < n && s[i] != 0x07 && !(s[i] == 0x1b && i + 1 < n && s[i + 1] == '\\'))
			i++;
		if (i >= n)
			return n;
		return s[i] == 0x07 ? i + 1 : i + 2;
	}
	return 2;
}

/* Walk the cleaned-up text: calls emit(ctx, bytes, len, width) for each
 * glyph to show. Stops when emit returns false. */
typedef bool (*glyph_fn)(void *ctx, const char *p, size_t len, int width);

static void walk(struct tty *st, const char *s, size_t n, int col, glyph_fn emit, void *ctx)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned char c = *p;
		if (c >= 0x20 && c < 0x7f) {
			if (!emit(ctx, (const char *)p, 1, 1))
				return;
			col++;
			p++;
			continue;
		}
		if (c == 0x1b) {
			p += escape_len(p, (size_t)(end - p));
			continue;
		}
		if (c == '\t') {
			int spaces = 8 - col % 8;
			for (int i = 0; i < spaces; i++)
				if (!emit(ctx, " ", 1, 1))
					return;
			col += spaces;
			p++;
			continue;
		}
		if (c < 0x80) { /* other control characters */
			p++;
			continue;
		}
		uint32_t cp;
		size_t len = utf8_decode(p, (size_t)(end - p), &cp);
		if (cp == 0xfffd && len == 1) { /* an invalid byte */
			if (!emit(ctx, st->ascii ? "?" : "\xef\xbf\xbd", st->ascii ? 1 : 3, 1))
				return;
			col++;
			p++;
			continue;
		}
		int w = cp_width(st, cp);
		if (w >= 0) {
			bool ok;
			if (st->ascii)
				ok = w == 0 || emit(ctx, "?", 1, 1);
			else
				ok = emit(ctx, (const char *)p, len, w);
			if (!ok)
				return;
			col += st->ascii ? (w > 0) : w;
		}
		p += len;
	}
}

static bool count_glyph(void *ctx, const char *p, size_t len, int width)
{
	(void)p, (void)len;
	*(int *)ctx += width;
	return true;
}

int tty_text_width(struct tty *st, const char *s, size_t n)
{
	int w = 0;
	locale_t old = st->utf8 ? uselocale(st->utf8) : (locale_t)0;
	walk(st, s, n, 0, count_glyph, &w);
	if (old)
		uselocale(old);
	return w;
}

/* ---- lines ------------------------------------------------------------------------- */

void tty_line_init(struct tty_line *l, struct tty *st, int limit)
{
	*l = (struct tty_line){ .st = st, .limit = limit > 0 ? limit : 0 };
	tty_buf_add(&l->b, "", 0);
}

void tty_line_release(struct tty_line *l)
{
	tty_buf_release(&l->b);
}

void tty_line_color(struct tty_line *l, const char *sgr)
{
	if (!l->st->color || l->full)
		return;
	if (!sgr) {
		if (l->sgr)
			tty_buf_adds(&l->b, "\x1b[0m");
		l->sgr = false;
		return;
	}
	if (l->sgr)
		tty_buf_adds(&l->b, "\x1b[0m");
	tty_buf_addf(&l->b, "\x1b[%sm", sgr);
	l->sgr = true;
}

struct cut {
	struct tty_line *l;
	int room; /* columns for text before the ellipsis */
};

static bool add_glyph(void *ctx, const char *p, size_t len, int width)
{
	struct cut *c = ctx;
	if (c->l->width + width > c->room)
		return false;
	tty_buf_add(&c->l->b, p, len);
	c->l->width += width;
	return true;
}

void tty_line_text(struct tty_line *l, const char *s, size_t n)
{
	if (l->full || !n)
		return;
	struct tty *st = l->st;
	locale_t old = st->utf8 ? uselocale(st->utf8) : (locale_t)0;
	struct cut c = { l, l->limit ? l->limit : INT32_MAX };
	if (l->limit) {
		int w = 0;
		walk(st, s, n, l->width, count_glyph, &w);
		if (l->width + w > l->limit) {
			/* cut, with room for the ellipsis */
			c.room = l->limit - (st->ascii ? 3 : 1);
			walk(st, s, n, l->width, add_glyph, &c);
			int pad = c.room - l->width;
			while (pad-- > 0 && l->width < c.room) {
				tty_buf_add(&l->b, " ", 1);
				l->width++;
			}
			tty_buf_adds(&l->b, st->ascii ? "..." : "\xe2\x80\xa6");
			l->width += st->ascii ? 3 : 1;
			l->full = true;
			if (old)
				uselocale(old);
			return;
		}
	}
	walk(st, s, n, l->width, add_glyph, &c);
	if (old)
		uselocale(old);
}

void tty_line_str(struct tty_line *l, const char *s)
{
	if (s)
		tty_line_text(l, s, strlen(s));
}

void tty_line_printf(struct tty_line *l, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		tty_line_text(l, small, (size_t)n);
		return;
	}
	char *big = tty_alloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tty_line_text(l, big, (size_t)n);
	tty_free(big);
}

void tty_line_sym(struct tty_line *l, enum tty_sym sym)
{
	if (sym <= SYM_NONE || sym >= SYM__COUNT || l->full)
		return;
	const struct symdef *d = &syms[sym];
	if (l->st->ascii) {
		if (!*d->ascii)
			return;
		tty_line_text(l, d->ascii, strlen(d->ascii));
		tty_line_text(l, " ", 1);
		return;
	}
	/* Glyphs are added as they are (not cleaned up), padded to two
	 * columns as wcwidth() counts them. */
	int w = tty_text_width(l->st, d->glyph, strlen(d->glyph));
	if (l->limit && l->width + 3 > l->limit) {
		l->full = true;
		return;
	}
	tty_buf_adds(&l->b, d->glyph);
	l->width += w;
	while (w++ < 2) {
		tty_buf_add(&l->b, " ", 1);
		l->width++;
	}
	tty_buf_add(&l->b, " ", 1);
	l->width++;
}

void tty_line_pad(struct tty_line *l, int col)
{
	if (l->limit && col > l->limit)
		col = l->limit;
	while (l->width < col) {
		tty_buf_add(&l->b, " ", 1);
		l->width++;
	}
}

int tty_line_room(const struct tty_line *l, int suffix_w)
{
	if (!l->limit)
		return 0;
	int room = l->limit - suffix_w - 1;
	return room > l->width ? room : l->width;
}

void tty_line_append(struct tty_line *l, const struct tty_line *other)
{
	if (l->sgr)
		tty_line_color(l, NULL);
	tty_buf_add(&l->b, other->b.p, other->b.len);
	l->width += other->width;
	if (other->sgr)
		tty_buf_adds(&l->b, "\x1b[0m");
}

int tty_line_body(struct tty_line *l, int suffix_w)
{
	int saved = l->limit;
	if (saved) {
		int room = saved - suffix_w - 2;
		if (room < l->width + 8)
			room = l->width + 8;
		if (room > saved)
			room = saved;
		l->limit = room;
	}
	return saved;
}

void tty_line_suffix(struct tty_line *l, int saved, const struct tty_line *suffix)
{
	l->limit = saved;
	l->full = false;
	if (!suffix->width)
		return;
	if (saved) {
		if (l->width + 2 + suffix->width > saved)
			return; /* no room: the suffix is left out */
		tty_line_pad(l, saved - suffix->width);
	} else {
		tty_line_text(l, "  ", 2);
	}
	tty_line_append(l, suffix);
}

void tty_line_finish(struct tty_line *l)
{
	if (l->sgr) {
		tty_buf_adds(&l->b, "\x1b[0m");
		l->sgr = false;
	}
}

/* ---- numbers ------------------------------------------------------------------------ */

void tty_fmt_bytes(char *out, size_t size, int64_t b)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
	if (b > -1000 && b < 1000) {
		snprintf(out, size, "%lldB", (long long)b);
		return;
	}
	uint64_t a = b < 0 ? (uint64_t)0 - (uint64_t)b : (uint64_t)b, unit = 1;
	size_t i = 0;
	while (i + 1 < sizeof(units) / sizeof(units[0]) && a / unit >= 1000) {
		unit *= 1000;
		i++;
	}
	snprintf(out, size, "%.2f%s", (double)b / (double)unit, units[i]);
}

void tty_fmt_duration(char *out, size_t size, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	if (ns < 60 * TTY_NS) {
		/* tenths, rounded down, so that a timer never runs ahead */
		long long tenths = (long long)(ns / (TTY_NS / 10));
		snprintf(out, size, "%lld.%llds", tenths / 10, tenths % 10);
		return;
	}
	long long s = (long long)(ns / TTY_NS);
	if (s < 3600)
		snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, size, "%lldh%02lldm", s / 3600, (s / 60) % 60);
}
