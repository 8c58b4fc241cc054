/*
 * parser.c: the Dockerfile parser (parser.h), after BuildKit's
 * frontend/dockerfile/parser (lines, directives, continuations, heredocs,
 * line-level argument parsing), frontend/dockerfile/instructions (checks
 * and flags per instruction) and the parts of dockerfile2llb that fail
 * any build (no stages, meta ARG and FROM expansion, COPY --from indices,
 * circular stage dependencies).
 *
 * It runs in BuildKit's three phases, so that the first error reported
 * is the one BuildKit reports: (1) all lines into nodes, (2) each node
 * into an instruction, in order, (3) stages, expansion, dependencies.
 *
 * Where BuildKit needs a value it cannot know here:
 * - the built-in platform ARGs (TARGETPLATFORM, BUILDARCH, ...) and
 *   TARGETSTAGE expand to their own name, "$TARGETPLATFORM", unless a
 *   --build-arg sets them;
 * - a base image's environment is unknown: a stage from an image (or
 *   scratch) starts with PATH set to BuildKit's default Linux PATH, as
 *   BuildKit sets it when the image has none; a stage from another stage
 *   starts with that stage's final ENV and ARG values, as in BuildKit.
 * An expansion that fails inside a stage is a warning (BuildKit fails only
 * when it builds that stage); in FROM, --platform and meta ARGs it is an
 * error.
 *
 * Memory: everything a df_file holds lives in one arena freed by
 * df_free(). Time: linear in the input, apart from what variable
 * expansion produces, which a budget per parse bounds.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser_int.h"

/* ---- arena ---- */

#if defined(__SANITIZE_ADDRESS__)
#define DF_ARENA_EXACT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DF_ARENA_EXACT 1
#endif
#endif

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct file_priv {
	struct df_file pub;
	struct chunk *chunks;
};

#define CHUNK_SIZE ((size_t)64 << 10)

/* ---- the parser's state ---- */

struct seg {          /* bytes of a logical line from one source line */
	size_t off;   /* offset in the joined line */
	int line, col;
};

/* A variable map (name -> value), open addressing. */
struct vent {
	const char *k, *v;
};
struct vmap {
	struct vent *e;
	size_t n, cap;
};

struct scope {
	const struct scope *parent;
	struct vmap m;
};

/* Per instruction, what phase 1 knows beyond struct df_instruction. */
struct pinfo {
	bool known;         /* a known instruction (kind is valid) */
	bool onbuild_known; /* the ONBUILD trigger is known */
	int dispatch_kind;  /* kind for line-level parsing, -1 unknown */
};

struct parser {
	struct file_priv *fp;
	struct df_file *f;
	const char *buf;
	size_t len;
	char esc;
	bool oom;
	struct df_error *err;
	const struct df_parse_opts *opts;
	size_t budget;
	int toolong_line;

	/* directive parser */
	bool dp_done;
	bool seen[3];

	/* the current logical line */
	struct df_buf line;
	struct seg *segs;
	size_t nsegs, capsegs;

	size_t cap_ins, cap_warn, cap_dir;
	struct pinfo *pi;
	size_t cap_pi;

	/* phase 3 */
	struct vmap build_args;
	struct scope global, image_root;
	struct scope *scopes; /* per stage */
	int n_states;         /* BuildKit's dispatch states so far */
	struct vmap stage_names; /* lower-cased AS name -> "index" (last wins) */
	size_t *dep_mark;     /* per stage: 1 + the stage that last added it */
};

/* ---- arena and small helpers ---- */

static void *ar_alloc(struct parser *p, size_t n)
{
	struct chunk *c = p->fp->chunks;
	void *r;

	if (n == 0)
		n = 1;
#ifndef DF_ARENA_EXACT
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	if (!c || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
		c = malloc(sizeof(*c) + cap);
		if (!c) {
			p->oom = true;
			return NULL;
		}
		c->cap = cap;
		c->used = 0;
		if (cap == n && p->fp->chunks) {
			/* a big block goes behind the current chunk */
			c->next = p->fp->chunks->next;
			p->fp->chunks->next = c;
		} else {
			c->next = p->fp->chunks;
			p->fp->chunks = c;
		}
	}
#else
	/* one block per allocation, so that ASan sees every overflow */
	c = malloc(sizeof(*c) + n);
	if (!c) {
		p->oom = true;
		return NULL;
	}
	c->cap = n;
	c->used = 0;
	c->next = p->fp->chunks;
	p->fp->chunks = c;
#endif
	r = (char *)c->data + c->used;
	c->used += n;
	memset(r, 0, n);
	return r;
}

static char *ar_strndup(struct parser *p, const char *s, size_t n)
{
	char *r = ar_alloc(p, n + 1);

	if (r) {
		if (n)
			memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static char *ar_strdup(struct parser *p, const char *s)
{
	return s ? ar_strndup(p, s, strlen(s)) : NULL;
}

/* Grows an arena array to hold n+1 elements. */
static bool ar_reserve(struct parser *p, void **arr, size_t *cap, size_t n, size_t el)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *na = ar_alloc(p, ncap * el);
	if (!na)
		return false;
	if (n)
		memcpy(na, *arr, n * el);
	*arr = na;
	*cap = ncap;
	return true;
}

static int fail(struct parser *p, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, int line, int col, const char *fmt, ...)
{
	va_list ap;

	p->err->line = line;
	p->err->column = col;
	va_start(ap, fmt);
	vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_oom(struct parser *p)
{
	return fail(p, 0, 0, "out of memory");
}

static void warn(struct parser *p, int line, const char *msg)
{
	struct df_file *f = p->f;

	if (!ar_reserve(p, (void **)&f->warnings, &p->cap_warn, f->n_warnings,
			sizeof(*f->warnings)))
		return;
	f->warnings[f->n_warnings].message = ar_strdup(p, msg);
	f->warnings[f->n_warnings].line = line;
	f->n_warnings++;
}

/* Go's strings.ToLower / ToUpper for comparisons with ASCII keywords:
 * the non-ASCII runes that map into ASCII are U+212A KELVIN SIGN (-> k),
 * and U+0131 (dotless i -> I) and U+017F (long s -> S) upwards. */
static char *go_case(const char *s, bool upper)
{
	struct df_buf b = {0};
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (!upper && i + 2 < n + 0 && memcmp(s + i, "\xE2\x84\xAA", 3) == 0) {
			kiln__df_buf_addc(&b, 'k');
			i += 3;
		} else if (upper && i + 1 < n && memcmp(s + i, "\xC4\xB1", 2) == 0) {
			kiln__df_buf_addc(&b, 'I');
			i += 2;
		} else if (upper && i + 1 < n && memcmp(s + i, "\xC5\xBF", 2) == 0) {
			kiln__df_buf_addc(&b, 'S');
			i += 2;
		} else {
			if (upper && c >= 'a' && c <= 'z')
				c = (unsigned char)(c - 32);
			else if (!upper && c >= 'A' && c <= 'Z')
				c = (unsigned char)(c + 32);
			kiln__df_buf_addc(&b, (char)c);
			i++;
		}
	}
	return kiln__df_buf_detach(&b);
}

/* ---- variable maps ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool vmap_set(struct vmap *m, const char *k, const char *v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct vent *e = calloc(cap, sizeof(*e));
		if (!e)
			return false;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->e[i].k)
				continue;
			size_t j = hash_str(m->e[i].k) & (cap - 1);
			while (e[j].k)
				j = (j + 1) & (cap - 1);
			e[j] = m->e[i];
		}
		free(m->e);
		m->e = e;
		m->cap = cap;
	}
	size_t j = hash_str(k) & (m->cap - 1);
	while (m->e[j].k) {
		if (strcmp(m->e[j].k, k) == 0) {
			m->e[j].v = v;
			return true;
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->e[j].k = k;
	m->e[j].v = v;
	m->n++;
	return true;
}

static const char *vmap_get(const struct vmap *m, const char *k)
{
	if (!m->cap)
		return NULL;
	size_t j = hash_str(k) & (m->cap - 1);
	while (m->e[j].k) {
		if (strcmp(m->e[j].k, k) == 0)
			return m->e[j].v;
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

static const char *scope_lookup(void *ctx, const char *name)
{
	for (const struct scope *s = ctx; s; s = s->parent) {
		const char *v = vmap_get(&s->m, name);
		if (v)
			return v;
	}
	return NULL;
}

static const char *empty_lookup(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

/* ---- text helpers (Go's semantics) ---- */

/* Bytes of leading unicode.IsSpace runes. */
static size_t lead_space(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		int32_t r;
		size_t w = kiln__df_utf8_decode(s + i, n - i, &r);
		if (!kiln__df_is_space(r))
			break;
		i += w;
	}
	return i;
}

/* Length without trailing unicode.IsSpace runes (strings.TrimRightFunc). */
static size_t trail_trim(const char *s, size_t n)
{
	while (n > 0) {
		size_t start = n - 1;
		/* find the start of the last rune */
		while (start > 0 && n - start < 4 &&
		       ((unsigned char)s[start] & 0xC0) == 0x80)
			start--;
		int32_t r;
		size_t w = kiln__df_utf8_decode(s + start, n - start, &r);
		if (start + w != n) {
			/* the last byte is no rune of its own: invalid */
			r = (int32_t)DF_RUNE_ERROR;
			start = n - 1;
		}
		if (!kiln__df_is_space(r))
			break;
		n = start;
	}
	return n;
}

/* reWhitespace: [\t\v\f\r ] */
static bool re_ws(char c)
{
	return c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == ' ';
}

/* unicode.IsSpace(rune(b)) of one byte (BuildKit looks at bytes there). */
static bool byte_space(unsigned char c)
{
	return (c >= '\t' && c <= '\r') || c == ' ' || c == 0x85 || c == 0xA0;
}

static bool is_comment(const char *s, size_t n)
{
	size_t k = lead_space(s, n);
	return k < n && s[k] == '#';
}

/* trimContinuationCharacter: true when the line does NOT continue. */
static bool trim_cont(char esc, const char *s, size_t *n)
{
	size_t j = *n;

	while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
		j--;
	if (j == 0 || s[j - 1] != esc)
		return true;
	if (j == 1) {
		*n = 0;
		return false;
	}
	if (s[j - 2] == esc)
		return true;
	*n = j - 1;
	return false;
}

/* ---- positions ---- */

static void seg_add(struct parser *p, size_t off, int line, int col)
{
	if (p->nsegs == p->capsegs) {
		size_t cap = p->capsegs ? p->capsegs * 2 : 16;
		struct seg *s = realloc(p->segs, cap * sizeof(*s));
		if (!s) {
			p->oom = true;
			return;
		}
		p->segs = s;
		p->capsegs = cap;
	}
	p->segs[p->nsegs].off = off;
	p->segs[p->nsegs].line = line;
	p->segs[p->nsegs].col = col;
	p->nsegs++;
}

static void pos_of(const struct parser *p, size_t off, int *line, int *col)
{
	size_t lo = 0, hi = p->nsegs;

	if (!p->nsegs) {
		*line = 0;
		*col = 0;
		return;
	}
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->segs[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	/* prefer the segment that starts at off (an empty one may precede) */
	*line = p->segs[lo].line;
	*col = p->segs[lo].col + (int)(off - p->segs[lo].off);
}

/* ---- kinds ---- */

static const char *const kind_names[DF_KIND_COUNT] = {
	"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
	"HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL",
	"STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
};

const char *df_kind_name(enum df_kind kind)
{
	if ((unsigned)kind >= DF_KIND_COUNT)
		return "UNKNOWN";
	return kind_names[kind];
}

/* The kind of a keyword as BuildKit's dispatch (strings.ToLower), or -1. */
static int kind_of(const char *kw)
{
	char *l = go_case(kw, false);
	int k = -1;

	if (!l)
		return -1;
	for (int i = 0; i < DF_KIND_COUNT; i++) {
		const char *n = kind_names[i];
		size_t j = 0;
		while (n[j] && l[j] && l[j] == n[j] + 32 * (n[j] >= 'A' && n[j] <= 'Z'))
			j++;
		if (!n[j] && !l[j]) {
			k = i;
			break;
		}
	}
	free(l);
	return k;
}

/* ---- phase 1: lines ---- */

/* The directive parser (DirectiveParser.ParseLine) on a line already
 * stripped of leading whitespace. */
static int directive(struct parser *p, const char *s, size_t n, int lineno)
{
	static const char *const names[3] = { "syntax", "escape", "check" };
	size_t i, ns, ne;

	if (p->dp_done)
		return 0;
	if (n == 0 || s[0] != '#') {
		p->dp_done = true;
		return 0;
	}
	i = 1 + lead_space(s + 1, n - 1);
	ns = i;
	if (i >= n || !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
		goto none;
	while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			 (s[i] >= '0' && s[i] <= '9')))
		i++;
	ne = i;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\f' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i >= n || s[i] != '=')
		goto none;
	i++;
	if (i >= n)
		goto none;
	/* \s*(.+?)\s*$ */
	size_t vs = i, ve = n;
	while (vs < n && (s[vs] == ' ' || s[vs] == '\t' || s[vs] == '\f' || s[vs] == '\r' || s[vs] == '\n'))
		vs++;
	if (vs == n) {
		vs = n - 1; /* all blanks: .+? takes the last one */
	} else {
		while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t' || s[ve - 1] == '\f' ||
				   s[ve - 1] == '\r' || s[ve - 1] == '\n'))
			ve--;
	}
	int which = -1;
	for (int k = 0; k < 3; k++) {
		size_t l = strlen(names[k]);
		if (ne - ns == l && strncasecmp(s + ns, names[k], l) == 0)
			which = k;
	}
	if (which < 0)
		goto none;
	if (p->seen[which])
		return fail(p, lineno, 1, "only one %s parser directive can be used",
			    names[which]);
	p->seen[which] = true;
	char *v = ar_strndup(p, s + vs, ve - vs);
	if (!v)
		return fail_oom(p);
	if (which == 1) {
		if (strcmp(v, "`") != 0 && strcmp(v, "\\") != 0)
			return fail(p, lineno, 1,
				    "invalid escape token '%s' does not match ` or \\", v);
		p->esc = v[0];
	}
	if (!ar_reserve(p, (void **)&p->f->directives, &p->cap_dir,
			p->f->n_directives, sizeof(struct df_directive)))
		return fail_oom(p);
	struct df_directive *d = &p->f->directives[p->f->n_directives++];
	d->name = ar_strdup(p, names[which]);
	d->value = v;
	d->line = lineno;
	if (which == 0)
		p->f->syntax = v;
	return 0;
none:
	p->dp_done = true;
	return 0;
}

/* A word list being built in the arena. */
struct words {
	char **v;
	size_t n, cap;
	size_t *off; /* offsets in the line, when tracked */
	size_t capoff;
};

static bool words_push(struct parser *p, struct words *w, const char *s, size_t n, size_t off)
{
	if (!ar_reserve(p, (void **)&w->v, &w->cap, w->n, sizeof(char *)))
		return false;
	if (!ar_reserve(p, (void **)&w->off, &w->capoff, w->n, sizeof(size_t)))
		return false;
	w->v[w->n] = ar_strndup(p, s, n);
	if (!w->v[w->n])
		return false;
	w->off[w->n++] = off;
	return true;
}

/* extractBuilderFlags: the --flags before the arguments. Bytes, as
 * BuildKit reads them there (so a byte >= 0x80 becomes the rune U+00xx). */
static size_t extract_flags(struct parser *p, const char *line, size_t n,
			    size_t base, struct words *w)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	struct df_buf b = {0};
	char quote = 0;
	bool blank_ok = false;
	size_t start = 0, rest = n;

	for (size_t pos = 0; pos <= n; pos++) {
		unsigned char ch = pos < n ? (unsigned char)line[pos] : 0;
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (byte_space(ch))
				continue;
			if (ch != '-' || pos + 1 == n || line[pos + 1] != '-') {
				rest = pos;
				goto out;
			}
			phase = WORD;
			start = pos;
		}
		if ((phase == WORD || phase == QUOTE) && pos == n) {
			if (!(b.len == 2 && memcmp(b.p, "--", 2) == 0) && (blank_ok || b.len > 0))
				if (!words_push(p, w, b.p ? b.p : "", b.len, base + start))
					p->oom = true;
			rest = n;
			goto out;
		}
		if (phase == WORD) {
			if (byte_space(ch)) {
				phase = SPACES;
				if (b.len == 2 && memcmp(b.p, "--", 2) == 0) {
					rest = pos;
					goto out;
				}
				if (blank_ok || b.len > 0)
					if (!words_push(p, w, b.p ? b.p : "", b.len, base + start))
						p->oom = true;
				kiln__df_buf_reset(&b);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = (char)ch;
				blank_ok = true;
				phase = QUOTE;
				continue;
			}
			if (ch == (unsigned char)p->esc) {
				if (pos + 1 == n)
					continue;
				pos++;
				ch = (unsigned char)line[pos];
			}
			kiln__df_buf_addrune(&b, ch);
			continue;
		}
		/* QUOTE */
		if (ch == (unsigned char)quote) {
			phase = WORD;
			continue;
		}
		if (ch == (unsigned char)p->esc) {
			if (pos + 1 == n) {
				phase = WORD;
				continue;
			}
			pos++;
			ch = (unsigned char)line[pos];
		}
		kiln__df_buf_addrune(&b, ch);
	}
	rest = n;
out:
	if (b.oom)
		p->oom = true;
	kiln__df_buf_release(&b);
	return rest;
}

/* parseWords: words with quotes kept, for ENV, LABEL and ARG. */
static bool parse_words(struct parser *p, const char *rest, size_t n, struct words *w)
{
	enum { SPACES, WORD, QUOTE } phase = SPACES;
	struct df_buf b = {0};
	int32_t quote = 0, ch = 0;
	bool blank_ok = false;
	size_t chw = 0;
	int32_t esc = (unsigned char)p->esc;

	for (size_t pos = 0; pos <= n; pos += chw) {
		if (pos != n)
			chw = kiln__df_utf8_decode(rest + pos, n - pos, &ch);
		if (phase == SPACES) {
			if (pos == n)
				break;
			if (kiln__df_is_space(ch))
				continue;
			phase = WORD;
		}
		if ((phase == WORD || phase == QUOTE) && pos == n) {
			if (blank_ok || b.len > 0)
				if (!words_push(p, w, b.p ? b.p : "", b.len, 0))
					p->oom = true;
			break;
		}
		if (phase == WORD) {
			if (kiln__df_is_space(ch)) {
				phase = SPACES;
				if (blank_ok || b.len > 0)
					if (!words_push(p, w, b.p ? b.p : "", b.len, 0))
						p->oom = true;
				kiln__df_buf_reset(&b);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = QUOTE;
			}
			if (ch == esc) {
				if (pos + chw == n)
					continue;
				kiln__df_buf_addrune(&b, ch);
				pos += chw;
				chw = kiln__df_utf8_decode(rest + pos, n - pos, &ch);
			}
			kiln__df_buf_addrune(&b, ch);
			continue;
		}
		/* QUOTE */
		if (ch == quote)
			phase = WORD;
		if (ch == esc && quote != '\'') {
			if (pos + chw == n) {
				phase = WORD;
				continue;
			}
			pos += chw;
			kiln__df_buf_addrune(&b, ch);
			chw = kiln__df_utf8_decode(rest + pos, n - pos, &ch);
		}
		kiln__df_buf_addrune(&b, ch);
	}
	bool ok = !b.oom;
	kiln__df_buf_release(&b);
	return ok;
}

static bool set_args(struct df_instruction *in, struct words *w)
{
	in->args = w->v;
	in->n_args = w->n;
	return true;
}

/* parseStringsWhitespaceDelimited */
static bool split_ws(struct parser *p, const char *rest, size_t n, struct words *w)
{
	size_t i = 0;

	if (n == 0)
		return true;
	for (;;) {
		size_t j = i;
		while (j < n && !re_ws(rest[j]))
			j++;
		if (!words_push(p, w, rest + i, j - i, 0))
			return false;
		if (j == n)
			break;
		while (j < n && re_ws(rest[j]))
			j++;
		i = j;
	}
	return true;
}

/* parseJSON + its fallback. Returns 1 for JSON, 0 for not JSON, -1 error. */
static int try_json(struct parser *p, struct df_instruction *in, const char *rest,
		    size_t n, int line, int col)
{
	char **v;
	size_t nv;
	int rc = kiln__df_json_array(rest, n, &v, &nv);

	if (rc == DF_JSON_INVALID)
		return 0;
	if (rc == DF_JSON_NOT_STRINGS)
		return fail(p, line, col,
			    "when using JSON array syntax, arrays must be comprised of strings only");
	if (rc == DF_JSON_NUL)
		return fail(p, line, col, "JSON string holds a NUL character");
	if (rc)
		return fail_oom(p);
	in->args = ar_alloc(p, (nv + 1) * sizeof(char *));
	if (in->args)
		for (size_t i = 0; i < nv; i++)
			in->args[i] = ar_strdup(p, v[i]);
	for (size_t i = 0; i < nv; i++)
		free(v[i]);
	free(v);
	if (p->oom)
		return fail_oom(p);
	in->n_args = nv;
	in->json = true;
	return 1;
}

static int node_from_line(struct parser *p, const char *line, size_t len,
			  size_t base, struct df_instruction *in, struct pinfo *pi,
			  int depth);

/* The line-level parser of kind (BuildKit's dispatch table). */
static int dispatch_line(struct parser *p, int kind, struct df_instruction *in,
			 struct pinfo *pi, const char *rest, size_t n, size_t base,
			 int depth)
{
	struct words w = {0};
	int line = in->line, col = in->column, r;

	switch (kind) {
	case DF_ADD:
	case DF_COPY:
	case DF_VOLUME:
		r = try_json(p, in, rest, n, line, col);
		if (r)
			return r < 0 ? -1 : 0;
		if (!split_ws(p, rest, n, &w))
			return fail_oom(p);
		return set_args(in, &w) ? 0 : -1;
	case DF_EXPOSE:
	case DF_FROM:
		if (!split_ws(p, rest, n, &w))
			return fail_oom(p);
		return set_args(in, &w) ? 0 : -1;
	case DF_CMD:
	case DF_ENTRYPOINT:
	case DF_RUN:
	case DF_SHELL:
		if (n == 0)
			return 0;
		r = try_json(p, in, rest, n, line, col);
		if (r)
			return r < 0 ? -1 : 0;
		/* fall back to the shell form: the rest, one string */
		__attribute__((fallthrough));
	case DF_MAINTAINER:
	case DF_STOPSIGNAL:
	case DF_USER:
	case DF_WORKDIR:
		if (n == 0)
			return 0;
		if (!words_push(p, &w, rest, n, 0))
			return fail_oom(p);
		return set_args(in, &w) ? 0 : -1;
	case DF_ARG:
		if (!parse_words(p, rest, n, &w))
			return fail_oom(p);
		return set_args(in, &w) ? 0 : -1;
	case DF_ENV:
	case DF_LABEL: {
		const char *what = kind == DF_ENV ? "ENV" : "LABEL";
		size_t cap = 0;
		if (!parse_words(p, rest, n, &w))
			return fail_oom(p);
		if (w.n == 0)
			return 0;
		if (!strchr(w.v[0], '=')) {
			/* the legacy form: KEY value (split at the first blanks) */
			size_t i = 0;
			while (i < n && !re_ws(rest[i]))
				i++;
			if (i == n)
				return fail(p, line, col, "%s must have two arguments", what);
			size_t j = i;
			while (j < n && re_ws(rest[j]))
				j++;
			in->kvs = ar_alloc(p, sizeof(struct df_kv));
			if (!in->kvs)
				return fail_oom(p);
			in->kvs[0].key = ar_strndup(p, rest, i);
			in->kvs[0].raw_value = ar_strndup(p, rest + j, n - j);
			in->kvs[0].legacy = true;
			in->n_kvs = 1;
			return p->oom ? fail_oom(p) : 0;
		}
		for (size_t k = 0; k < w.n; k++) {
			const char *eq = strchr(w.v[k], '=');
			if (!eq) {
				struct df_buf q = {0};
				kiln__df_goquote(&q, w.v[k], strlen(w.v[k]));
				fail(p, line, col,
				     "Syntax error - can't find = in %s. Must be of the form: name=value",
				     q.p ? q.p : "");
				kiln__df_buf_release(&q);
				return -1;
			}
			if (!ar_reserve(p, (void **)&in->kvs, &cap, in->n_kvs, sizeof(struct df_kv)))
				return fail_oom(p);
			struct df_kv *kv = &in->kvs[in->n_kvs++];
			kv->key = ar_strndup(p, w.v[k], (size_t)(eq - w.v[k]));
			kv->raw_value = ar_strdup(p, eq + 1);
		}
		return p->oom ? fail_oom(p) : 0;
	}
	case DF_HEALTHCHECK: {
		size_t sep = 0, next;
		while (sep < n && !byte_space((unsigned char)rest[sep]))
			sep++;
		next = sep;
		while (next < n && byte_space((unsigned char)rest[next]))
			next++;
		if (sep == 0)
			return 0;
		struct df_instruction tmp = *in;
		tmp.args = NULL;
		tmp.n_args = 0;
		if (dispatch_line(p, DF_CMD, &tmp, pi, rest + next, n - next,
				  base + next, depth))
			return -1;
		if (!words_push(p, &w, rest, sep, 0))
			return fail_oom(p);
		for (size_t k = 0; k < tmp.n_args; k++)
			if (!words_push(p, &w, tmp.args[k], strlen(tmp.args[k]), 0))
				return fail_oom(p);
		in->json = tmp.json;
		return set_args(in, &w) ? 0 : -1;
	}
	case DF_ONBUILD: {
		if (n == 0)
			return 0;
		/* (node_from_line walks deeper ONBUILD chains itself) */
		struct df_instruction *child = ar_alloc(p, sizeof(*child));
		struct pinfo *cpi = ar_alloc(p, sizeof(*cpi));
		if (!child || !cpi)
			return fail_oom(p);
		child->line = in->line;
		child->end_line = in->end_line;
		if (node_from_line(p, rest, n, base, child, cpi, depth + 1))
			return -1;
		if (!words_push(p, &w, child->keyword, strlen(child->keyword), 0))
			return fail_oom(p);
		set_args(in, &w);
		in->onbuild = child;
		pi->onbuild_known = cpi->known;
		return 0;
	}
	}
	return 0;
}

/* newNodeFromLine: the keyword, the flags, then the line-level parser.
 * An ONBUILD inside an ONBUILD trigger is walked here in a loop (parsed
 * for its errors only), so nesting never deepens the C stack. */
static int node_from_line(struct parser *p, const char *line, size_t len,
			  size_t base, struct df_instruction *in, struct pinfo *pi,
			  int depth)
{
	for (;;) {
		size_t lead = lead_space(line, len);
		size_t tend = trail_trim(line, len);
		if (tend < lead)
			tend = lead;
		const char *t = line + lead;
		size_t tn = tend - lead, c = 0, rs, rn;
		struct words fw = {0};
		int l, col;

		while (c < tn && !re_ws(t[c]))
			c++;
		in->keyword = ar_strndup(p, t, c);
		in->original = ar_strndup(p, line, len);
		if (!in->keyword || !in->original)
			return fail_oom(p);
		pos_of(p, base + lead, &l, &col);
		if (!in->line)
			in->line = l;
		in->column = col;
		rs = c;
		rn = 0;
		if (c < tn) {
			size_t a = c;
			while (a < tn && re_ws(t[a]))
				a++;
			size_t r = extract_flags(p, t + a, tn - a, base + lead + a, &fw);
			if (p->oom)
				return fail_oom(p);
			/* strings.TrimSpace of the rest */
			size_t s0 = a + r;
			s0 += lead_space(t + s0, tn - s0);
			size_t e0 = s0 + trail_trim(t + s0, tn - s0);
			rs = s0;
			rn = e0 - s0;
		}
		int kind = kind_of(in->keyword);
		pi->known = kind >= 0;
		pi->dispatch_kind = kind;
		in->kind = kind >= 0 ? (enum df_kind)kind : DF_ADD;
		if (fw.n) {
			in->flags = ar_alloc(p, fw.n * sizeof(struct df_flag));
			if (!in->flags)
				return fail_oom(p);
			for (size_t k = 0; k < fw.n; k++) {
				struct df_flag *f = &in->flags[k];
				const char *wv = fw.v[k] + 2; /* after "--" */
				const char *eq = strchr(wv, '=');
				f->name = eq ? ar_strndup(p, wv, (size_t)(eq - wv)) : ar_strdup(p, wv);
				f->value = eq ? ar_strdup(p, eq + 1) : NULL;
				pos_of(p, fw.off[k], &f->line, &f->column);
			}
			in->n_flags = fw.n;
			if (p->oom)
				return fail_oom(p);
		}
		if (kind == DF_ONBUILD && depth > 0) {
			if (rn == 0)
				return 0;
			/* validate the chain further down, keep nothing */
			line = t + rs;
			len = rn;
			base = base + lead + rs;
			in = ar_alloc(p, sizeof(*in));
			pi = ar_alloc(p, sizeof(*pi));
			if (!in || !pi)
				return fail_oom(p);
			in->line = l;
			continue;
		}
		return dispatch_line(p, kind, in, pi, t + rs, rn, base + lead + rs, depth);
	}
}

/* ParseHeredoc: 1 and *h filled for a heredoc word, 0 for none, -1 error. */
static int parse_heredoc(struct parser *p, const char *word, struct df_heredoc *h,
			 int line, int col)
{
	struct df_lex_opts o = { .escape = '\\', .skip_unset_env = true };
	struct df_lex_out a, b;
	size_t i = 0, budget;
	char msg[256];

	while (word[i] >= '0' && word[i] <= '9')
		i++;
	if (word[i] != '<' || word[i + 1] != '<')
		return 0;
	i += 2;
	h->chomp = word[i] == '-';
	if (h->chomp)
		i++;
	while (word[i] == ' ' || word[i] == '\t' || word[i] == '\n' || word[i] == '\f' || word[i] == '\r')
		i++;
	const char *rest = word + i;
	size_t rl = strlen(rest);
	if (rl == 0 || memchr(rest, '<', rl))
		return 0;
	budget = rl * 8 + 64;
	if (kiln__df_lex(rest, rl, &o, true, empty_lookup, NULL, NULL, &budget, &a,
			 msg, sizeof(msg)))
		return fail(p, line, col, "%s", msg);
	if (a.n_words != 1) {
		kiln__df_lex_out_release(&a);
		return 0;
	}
	o.raw_quotes = true;
	budget = rl * 8 + 64;
	if (kiln__df_lex(rest, rl, &o, true, empty_lookup, NULL, NULL, &budget, &b,
			 msg, sizeof(msg))) {
		kiln__df_lex_out_release(&a);
		return fail(p, line, col, "%s", msg);
	}
	if (b.n_words != a.n_words) {
		kiln__df_lex_out_release(&a);
		kiln__df_lex_out_release(&b);
		return fail(p, line, col,
			    "internal lexing of heredoc produced inconsistent results: %s", rest);
	}
	size_t qa = 0, qb = 0;
	for (const char *s = a.words[0]; *s; s++)
		qa += *s == '\'' || *s == '"';
	for (const char *s = b.words[0]; *s; s++)
		qb += *s == '\'' || *s == '"';
	h->expand = qa == qb;
	h->name = ar_strdup(p, a.words[0]);
	kiln__df_lex_out_release(&a);
	kiln__df_lex_out_release(&b);
	return h->name ? 1 : fail_oom(p);
}

/* The next physical line at *pos (with its '\n'), or false at the end. */
static bool next_line(const struct parser *p, size_t *pos, const char **ln, size_t *n)
{
	if (*pos >= p->len)
		return false;
	const char *s = p->buf + *pos;
	const char *nl = memchr(s, '\n', p->len - *pos);
	*ln = s;
	*n = nl ? (size_t)(nl - s) + 1 : p->len - *pos;
	*pos += *n;
	return true;
}

/* trimNewline: the length without trailing '\r' and '\n' bytes. */
static size_t trim_newline(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	return n;
}

static bool can_heredoc(const struct df_instruction *in, const struct pinfo *pi)
{
	int kind = pi->dispatch_kind;
	bool json = in->json;

	if (kind == DF_ONBUILD && in->onbuild) {
		kind = pi->onbuild_known ? (int)in->onbuild->kind : -1;
		json = in->onbuild->json;
	}
	return (kind == DF_ADD || kind == DF_COPY || kind == DF_RUN) && !json;
}

/* Reads the bodies of the heredocs the line names. */
static int read_heredocs(struct parser *p, struct df_instruction *in, size_t *pos,
			 int *cur, int start)
{
	struct df_lex_opts o = { .escape = '\\', .raw_quotes = true,
				 .raw_escapes = true, .skip_unset_env = true };
	struct df_lex_out lo;
	size_t budget = p->line.len * 8 + 64, cap = 0;
	char msg[256];
	const char *line = p->line.p;

	if (kiln__df_lex(line, p->line.len, &o, true, empty_lookup, NULL, NULL,
			 &budget, &lo, msg, sizeof(msg)))
		return 0; /* BuildKit ignores this error: no heredocs */
	for (size_t w = 0; w < lo.n_words; w++) {
		struct df_heredoc h = {0};
		int r = parse_heredoc(p, lo.words[w], &h, start, in->column);
		if (r < 0) {
			kiln__df_lex_out_release(&lo);
			return -1;
		}
		if (r == 0)
			continue;
		if (!ar_reserve(p, (void **)&in->heredocs, &cap, in->n_heredocs,
				sizeof(struct df_heredoc))) {
			kiln__df_lex_out_release(&lo);
			return fail_oom(p);
		}
		in->heredocs[in->n_heredocs++] = h;
	}
	kiln__df_lex_out_release(&lo);
	for (size_t k = 0; k < in->n_heredocs; k++) {
		struct df_heredoc *h = &in->heredocs[k];
		size_t nl = strlen(h->name);
		struct df_buf content = {0};
		bool done = false;
		const char *ln;
		size_t n;

		h->line = *cur + 1;
		while (next_line(p, pos, &ln, &n)) {
			(*cur)++;
			size_t tl = trim_newline(ln, n), ts = 0;
			if (h->chomp)
				while (ts < tl && ln[ts] == '\t')
					ts++;
			if (tl - ts == nl && memcmp(ln + ts, h->name, nl) == 0) {
				done = true;
				break;
			}
			/* with <<- the leading tabs of each line go */
			if (h->chomp)
				kiln__df_buf_add(&content, ln + ts, n - ts);
			else
				kiln__df_buf_add(&content, ln, n);
		}
		if (!done) {
			kiln__df_buf_release(&content);
			return fail(p, start, in->column, "unterminated heredoc");
		}
		if (content.oom)
			return fail_oom(p);
		h->content = ar_strndup(p, content.p ? content.p : "", content.len);
		kiln__df_buf_release(&content);
		if (!h->content)
			return fail_oom(p);
	}
	if (in->onbuild) {
		in->onbuild->heredocs = in->heredocs;
		in->onbuild->n_heredocs = in->n_heredocs;
	}
	return 0;
}

/* Phase 1: BuildKit's parser.Parse. */
static int parse_lines(struct parser *p)
{
	struct df_file *f = p->f;
	size_t pos = 0;
	int cur = 0;
	const char *ln;
	size_t n;

	while (next_line(p, &pos, &ln, &n)) {
		int bom = 0;
		if (cur == 0 && n >= 3 && memcmp(ln, "\xEF\xBB\xBF", 3) == 0) {
			ln += 3;
			n -= 3;
			bom = 3;
		}
		size_t tl = trim_newline(ln, n);
		size_t k = lead_space(ln, tl);
		const char *first = ln + k;
		size_t fl = tl - k;
		if (directive(p, first, fl, cur + 1))
			return -1;
		if (is_comment(first, fl))
			fl = 0;
		cur++;
		int start = cur;
		bool eol = trim_cont(p->esc, first, &fl);
		if (eol && fl == 0)
			continue;

		kiln__df_buf_reset(&p->line);
		p->nsegs = 0;
		seg_add(p, 0, cur, (int)k + 1);
		kiln__df_buf_add(&p->line, first, fl);
		bool empty_cont = false;
		(void)bom;
		while (!eol && next_line(p, &pos, &ln, &n)) {
			cur++;
			tl = trim_newline(ln, n);
			if (is_comment(ln, tl))
				continue;
			if (lead_space(ln, tl) == tl) {
				empty_cont = true;
				continue;
			}
			size_t cl = tl;
			eol = trim_cont(p->esc, ln, &cl);
			seg_add(p, p->line.len, cur, 1);
			kiln__df_buf_add(&p->line, ln, cl);
		}
		if (p->line.oom || p->oom)
			return fail_oom(p);
		if (!p->line.p)
			kiln__df_buf_add(&p->line, "", 0);

		if (empty_cont) {
			struct df_buf m = {0};
			kiln__df_buf_addstr(&m, "Empty continuation line found in: ");
			kiln__df_buf_add(&m, p->line.p, p->line.len);
			if (m.oom)
				return fail_oom(p);
			warn(p, cur, m.p);
			kiln__df_buf_release(&m);
		}

		if (!ar_reserve(p, (void **)&f->instructions, &p->cap_ins,
				f->n_instructions, sizeof(struct df_instruction)))
			return fail_oom(p);
		if (!ar_reserve(p, (void **)&p->pi, &p->cap_pi, f->n_instructions,
				sizeof(struct pinfo)))
			return fail_oom(p);
		struct df_instruction *in = &f->instructions[f->n_instructions];
		struct pinfo *pi = &p->pi[f->n_instructions];
		memset(in, 0, sizeof(*in));
		memset(pi, 0, sizeof(*pi));
		in->line = start;
		in->end_line = cur;
		if (node_from_line(p, p->line.p, p->line.len, 0, in, pi, 0))
			return -1;
		if (can_heredoc(in, pi) && memmem(p->line.p, p->line.len, "<<", 2) &&
		    read_heredocs(p, in, &pos, &cur, start))
			return -1;
		in->end_line = cur;
		if (in->onbuild)
			in->onbuild->end_line = cur;
		f->n_instructions++;
	}
	if (f->n_instructions == 0) {
		if (p->toolong_line)
			return 0;
		return fail(p, 0, 0, "file with no instructions");
	}
	return 0;
}

/* ---- phase 2: instructions ---- */

enum ftype { FT_BOOL, FT_STRING, FT_STRINGS };

struct fdef {
	const char *name;
	enum ftype type;
};

static const struct fdef add_flags[] = {
	{ "chown", FT_STRING }, { "chmod", FT_STRING }, { "link", FT_BOOL },
	{ "keep-git-dir", FT_BOOL }, { "checksum", FT_STRING },
	{ "unpack", FT_BOOL }, { "exclude", FT_STRINGS },
};
static const struct fdef copy_flags[] = {
	{ "chown", FT_STRING }, { "from", FT_STRING }, { "chmod", FT_STRING },
	{ "link", FT_BOOL }, { "exclude", FT_STRINGS }, { "parents", FT_BOOL },
};
static const struct fdef from_flags[] = { { "platform", FT_STRING } };
static const struct fdef run_flags[] = {
	{ "device", FT_STRINGS }, { "mount", FT_STRINGS },
	{ "network", FT_STRING }, { "security", FT_STRING },
};
static const struct fdef hc_flags[] = {
	{ "interval", FT_STRING }, { "timeout", FT_STRING },
	{ "start-period", FT_STRING }, { "start-interval", FT_STRING },
	{ "retries", FT_STRING },
};

#define NDEFS(a) (sizeof(a) / sizeof((a)[0]))

/* suggest.Search: the closest option under distance 3, or NULL. Ties go
 * to the first option in the list (Go's map order is random there). */
static const char *suggest(const char *val, const char *const *opts, size_t n,
			   bool case_sensitive)
{
	size_t best = 3;
	const char *match = NULL;
	char *lv = case_sensitive ? strdup(val) : go_case(val, false);

	if (!lv)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char *lo = case_sensitive ? strdup(opts[i]) : go_case(opts[i], false);
		if (!lo)
			break;
		if (strcmp(lv, lo) == 0) {
			free(lo);
			match = NULL;
			break;
		}
		size_t d = kiln__df_levenshtein(lv, lo);
		free(lo);
		if (d < best) {
			best = d;
			match = opts[i];
		}
	}
	free(lv);
	return match;
}

/* BFlags.Parse. used[i] is the index of the (last) flag for defs[i]. */
static int parse_flags(struct parser *p, const struct df_instruction *in,
		       const struct fdef *defs, size_t ndefs, int *used)
{
	for (size_t i = 0; i < ndefs; i++)
		used[i] = -1;
	for (size_t k = 0; k < in->n_flags; k++) {
		const struct df_flag *f = &in->flags[k];
		size_t d;
		for (d = 0; d < ndefs; d++)
			if (strcmp(defs[d].name, f->name) == 0)
				break;
		if (d == ndefs) {
			const char *opts[8];
			for (size_t i = 0; i < ndefs; i++)
				opts[i] = defs[i].name;
			const char *s = suggest(f->name, opts, ndefs, true);
			if (s)
				return fail(p, f->line, f->column,
					    "unknown flag: --%s (did you mean %s?)", f->name, s);
			return fail(p, f->line, f->column, "unknown flag: --%s", f->name);
		}
		if (used[d] >= 0 && defs[d].type != FT_STRINGS)
			return fail(p, f->line, f->column, "duplicate flag specified: --%s",
				    f->name);
		used[d] = (int)k;
		switch (defs[d].type) {
		case FT_BOOL:
			if (f->value && f->value[0] == '\0')
				return fail(p, f->line, f->column,
					    "missing a value on flag: --%s", f->name);
			if (f->value && strcasecmp(f->value, "true") != 0 &&
			    strcasecmp(f->value, "false") != 0)
				return fail(p, f->line, f->column,
					    "expecting boolean value for flag --%s, not: %s",
					    f->name, f->value);
			break;
		case FT_STRING:
		case FT_STRINGS:
			if (!f->value)
				return fail(p, f->line, f->column,
					    "missing a value on flag: --%s", f->name);
			break;
		}
	}
	return 0;
}

static int no_flags(struct parser *p, const struct df_instruction *in)
{
	return parse_flags(p, in, NULL, 0, NULL);
}

/* Go's csvvalue.Fields (one CSV record); fields malloc'd in *out. */
static int csv_fields(const char *line, char ***out, size_t *n, char *err, size_t errlen)
{
	size_t len = strlen(line), pos = 0, cap = 0;
	struct df_buf field = {0};
	char **v = NULL;

	*out = NULL;
	*n = 0;
	if (len > 0 && line[len - 1] == '\n')
		len -= (len > 1 && line[len - 2] == '\r') ? 2 : 1;
	if (len == 0) {
		snprintf(err, errlen, "EOF");
		return -1;
	}
#define PUSH_FIELD()                                                        \
	do {                                                                \
		if (*n == cap) {                                            \
			cap = cap ? cap * 2 : 8;                            \
			char **nv = realloc(v, cap * sizeof(*nv));          \
			if (!nv)                                            \
				goto oom;                                   \
			v = nv;                                             \
		}                                                           \
		v[*n] = kiln__df_buf_detach(&field);                        \
		if (!v[*n])                                                 \
			goto oom;                                           \
		(*n)++;                                                     \
	} while (0)
	for (;;) {
		if (pos >= len || line[pos] != '"') {
			const char *c = memchr(line + pos, ',', len - pos);
			size_t fl = c ? (size_t)(c - (line + pos)) : len - pos;
			const char *q = memchr(line + pos, '"', fl);
			if (q) {
				snprintf(err, errlen,
					 "parse error on line 1, column %zu: bare \" in non-quoted-field",
					 (size_t)(q - line) + 1);
				goto fail;
			}
			kiln__df_buf_add(&field, line + pos, fl);
			PUSH_FIELD();
			if (!c)
				break;
			pos += fl + 1;
			continue;
		}
		pos++;
		for (;;) {
			const char *q = memchr(line + pos, '"', len - pos);
			if (!q) {
				snprintf(err, errlen,
					 "parse error on line 1, column %zu: extraneous or missing \" in quoted-field",
					 pos + 1);
				goto fail;
			}
			kiln__df_buf_add(&field, line + pos, (size_t)(q - (line + pos)));
			pos = (size_t)(q - line) + 1;
			if (pos < len && line[pos] == '"') {
				kiln__df_buf_addc(&field, '"');
				pos++;
				continue;
			}
			if (pos < len && line[pos] == ',') {
				pos++;
				PUSH_FIELD();
				goto next_field;
			}
			if (pos >= len) {
				PUSH_FIELD();
				goto done;
			}
			snprintf(err, errlen,
				 "parse error on line 1, column %zu: extraneous or missing \" in quoted-field",
				 pos);
			goto fail;
		}
next_field:
		continue;
	}
done:
#undef PUSH_FIELD
	kiln__df_buf_release(&field);
	*out = v;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	kiln__df_buf_release(&field);
	for (size_t i = 0; i < *n; i++)
		free(v[i]);
	free(v);
	*n = 0;
	return -1;
}

static void free_fields(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool go_parse_bool(const char *s, bool *b)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };

	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, t[i]) == 0) {
			*b = true;
			return true;
		}
		if (strcmp(s, f[i]) == 0) {
			*b = false;
			return true;
		}
	}
	return false;
}

/* instructions.ParseDevice */
static int check_device(struct parser *p, const struct df_flag *fl)
{
	char **v, err[200];
	size_t n;
	const char *name = NULL;
	int rc = 0;

	if (csv_fields(fl->value, &v, &n, err, sizeof(err)))
		return fail(p, fl->line, fl->column, "failed to parse csv devices: %s", err);
	for (size_t i = 0; i < n && !rc; i++) {
		char *field = v[i], *eq = strchr(field, '=');
		char *key = go_case(field, false);
		bool b;
		if (!key) {
			rc = fail_oom(p);
			break;
		}
		if (eq)
			key[eq - field] = '\0';
		if (!eq) {
			if (strcmp(key, "required") == 0) {
			} else if (!name) {
				name = field;
			} else {
				rc = fail(p, fl->line, fl->column,
					  "invalid field '%s' must be a key=value pair", field);
			}
		} else if (strcmp(key, "name") == 0) {
			if (name)
				rc = fail(p, fl->line, fl->column, "device name already set to %s", name);
			else
				name = eq + 1;
		} else if (strcmp(key, "required") == 0) {
			if (!go_parse_bool(eq + 1, &b))
				rc = fail(p, fl->line, fl->column, "invalid value for %s: %s", key, eq + 1);
		} else if (!name) {
			name = field;
		} else {
			const char *opts[] = { "name", "required" };
			const char *s = suggest(key, opts, 2, true);
			char *k = strndup(field, (size_t)(eq - field));
			if (s)
				rc = fail(p, fl->line, fl->column,
					  "unexpected key '%s' in '%s' (did you mean %s?)", key, field, s);
			else
				rc = fail(p, fl->line, fl->column, "unexpected key '%s' in '%s'", key, field);
			free(k);
		}
		free(key);
	}
	free_fields(v, n);
	return rc;
}

/* parseMount without an expander: the CSV and from= without variables. */
static int check_mount(struct parser *p, const struct df_flag *fl)
{
	char **v, err[200];
	size_t n;
	int rc = 0;

	if (csv_fields(fl->value, &v, &n, err, sizeof(err)))
		return fail(p, fl->line, fl->column, "failed to parse csv mounts: %s", err);
	for (size_t i = 0; i < n && !rc; i++) {
		char *eq = strchr(v[i], '=');
		if (!eq)
			continue;
		char *key = go_case(v[i], false);
		if (!key) {
			rc = fail_oom(p);
			break;
		}
		key[eq - v[i]] = '\0';
		const char *d = strchr(eq + 1, '$');
		if (strcmp(key, "from") == 0 && d && d[1] != '\0')
			rc = fail(p, fl->line, fl->column,
				  "'%s' doesn't support variable expansion, define alias stage instead",
				  key);
		free(key);
	}
	free_fields(v, n);
	return rc;
}

/* Go's time.ParseDuration; returns 0 and *d, or -1 with its message. */
static void time_quote(struct df_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	kiln__df_buf_addc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80 || c < ' ') {
			char t[4] = { '\\', 'x', hex[c >> 4], hex[c & 15] };
			kiln__df_buf_add(b, t, 4);
		} else {
			if (c == '"' || c == '\\')
				kiln__df_buf_addc(b, '\\');
			kiln__df_buf_addc(b, (char)c);
		}
	}
	kiln__df_buf_addc(b, '"');
}

static int parse_duration(const char *orig, int64_t *out, char *err, size_t errlen)
{
	static const struct { const char *u; uint64_t v; } units[] = {
		{ "ns", 1 }, { "us", 1000 }, { "\xC2\xB5s", 1000 }, { "\xCE\xBCs", 1000 },
		{ "ms", 1000000 }, { "s", 1000000000ull }, { "m", 60000000000ull },
		{ "h", 3600000000000ull },
	};
	const uint64_t lim = (uint64_t)1 << 63;
	const char *s = orig;
	uint64_t d = 0;
	bool neg = false;
	struct df_buf q = {0};

	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '\0')
		goto invalid;
	while (*s) {
		uint64_t v = 0, f = 0;
		double scale = 1;
		bool pre, post = false, ovf = false;
		const char *st;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			goto invalid;
		st = s;
		while (*s >= '0' && *s <= '9') {
			if (v > lim / 10)
				goto invalid;
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > lim)
				goto invalid;
			s++;
		}
		pre = s != st;
		if (*s == '.') {
			s++;
			st = s;
			while (*s >= '0' && *s <= '9') {
				if (!ovf) {
					if (f > (lim - 1) / 10) {
						ovf = true;
					} else {
						uint64_t y = f * 10 + (uint64_t)(*s - '0');
						if (y > lim)
							ovf = true;
						else {
							f = y;
							scale *= 10;
						}
					}
				}
				s++;
			}
			post = s != st;
		}
		if (!pre && !post)
			goto invalid;
		st = s;
		while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
			s++;
		if (s == st) {
			kiln__df_buf_addstr(&q, "time: missing unit in duration ");
			time_quote(&q, orig);
			snprintf(err, errlen, "%s", q.p ? q.p : "");
			kiln__df_buf_release(&q);
			return -1;
		}
		size_t ul = (size_t)(s - st), k;
		for (k = 0; k < NDEFS(units); k++)
			if (strlen(units[k].u) == ul && memcmp(units[k].u, st, ul) == 0)
				break;
		if (k == NDEFS(units)) {
			char *u = strndup(st, ul);
			kiln__df_buf_addstr(&q, "time: unknown unit ");
			time_quote(&q, u ? u : "");
			kiln__df_buf_addstr(&q, " in duration ");
			time_quote(&q, orig);
			free(u);
			snprintf(err, errlen, "%s", q.p ? q.p : "");
			kiln__df_buf_release(&q);
			return -1;
		}
		uint64_t unit = units[k].v;
		if (v > lim / unit)
			goto invalid;
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > lim)
				goto invalid;
		}
		d += v;
		if (d > lim)
			goto invalid;
	}
	if (neg) {
		*out = d == lim ? INT64_MIN : -(int64_t)d;
		return 0;
	}
	if (d > lim - 1)
		goto invalid;
	*out = (int64_t)d;
	return 0;
invalid:
	kiln__df_buf_addstr(&q, "time: invalid duration ");
	time_quote(&q, orig);
	snprintf(err, errlen, "%s", q.p ? q.p : "");
	kiln__df_buf_release(&q);
	return -1;
}

/* strconv.ParseInt(s, 10, 32) */
static int parse_int32(const char *s, long long *out, char *err, size_t errlen)
{
	const char *d = s;
	bool neg = false;
	unsigned long long v = 0;
	struct df_buf q = {0};
	const char *why = "invalid syntax";

	if (*d == '+' || *d == '-') {
		neg = *d == '-';
		d++;
	}
	if (*d == '\0')
		goto bad;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			goto bad;
		if (v < (1ull << 40))
			v = v * 10 + (unsigned long long)(*d - '0');
	}
	if ((!neg && v > 2147483647ull) || (neg && v > 2147483648ull)) {
		why = "value out of range";
		goto bad;
	}
	*out = neg ? -(long long)v : (long long)v;
	return 0;
bad:
	kiln__df_goquote(&q, s, strlen(s));
	snprintf(err, errlen, "strconv.ParseInt: parsing %s: %s", q.p ? q.p : "", why);
	kiln__df_buf_release(&q);
	return -1;
}

static bool is_heredoc_word(const char *w)
{
	size_t i = 0;

	while (w[i] >= '0' && w[i] <= '9')
		i++;
	if (w[i] != '<' || w[i + 1] != '<')
		return false;
	i += 2;
	if (w[i] == '-')
		i++;
	while (w[i] == ' ' || w[i] == '\t' || w[i] == '\n' || w[i] == '\f' || w[i] == '\r')
		i++;
	if (w[i] == '\0' || strchr(w + i, '<'))
		return false;
	/* ParseHeredoc also wants one shell word there */
	struct df_lex_opts o = { .escape = '\\', .skip_unset_env = true };
	struct df_lex_out lo;
	size_t budget = strlen(w) * 8 + 64;
	char msg[64];
	if (kiln__df_lex(w + i, strlen(w + i), &o, true, empty_lookup, NULL, NULL,
			 &budget, &lo, msg, sizeof(msg)))
		return false;
	bool one = lo.n_words == 1;
	kiln__df_lex_out_release(&lo);
	return one;
}

static bool fold_as(const char *s)
{
	/* strings.EqualFold(s, "as"): s may be written with U+017F for s */
	if (s[0] != 'a' && s[0] != 'A')
		return false;
	if ((s[1] == 's' || s[1] == 'S') && s[2] == '\0')
		return true;
	return strcmp(s + 1, "\xC5\xBF") == 0;
}

static bool valid_stage_name(const char *s)
{
	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static int interval_flag(struct parser *p, const struct df_instruction *in,
			 const int *used, size_t d)
{
	char err[200];
	int64_t v;

	if (used[d] < 0)
		return 0;
	const struct df_flag *f = &in->flags[used[d]];
	if (f->value[0] == '\0')
		return 0;
	if (parse_duration(f->value, &v, err, sizeof(err)))
		return fail(p, f->line, f->column, "%s", err);
	if (v != 0 && v < 1000000)
		return fail(p, f->line, f->column, "Interval \"%s\" cannot be less than 1ms",
			    hc_flags[d].name);
	return 0;
}

static int check_healthcheck(struct parser *p, struct df_instruction *in)
{
	int used[NDEFS(hc_flags)];
	int l = in->line, c = in->column;
	char *typ;

	if (in->n_args == 0)
		return fail(p, l, c, "HEALTHCHECK requires at least one argument");
	typ = go_case(in->args[0], true);
	if (!typ)
		return fail_oom(p);
	if (strcmp(typ, "NONE") == 0) {
		free(typ);
		if (in->n_args != 1)
			return fail(p, l, c, "HEALTHCHECK NONE takes no arguments");
		in->healthcheck_none = true;
		return 0;
	}
	if (parse_flags(p, in, hc_flags, NDEFS(hc_flags), used)) {
		free(typ);
		return -1;
	}
	if (strcmp(typ, "CMD") != 0) {
		struct df_buf q = {0};
		kiln__df_goquote(&q, typ, strlen(typ));
		fail(p, l, c, "Unknown type %s in HEALTHCHECK (try CMD)", q.p ? q.p : "");
		kiln__df_buf_release(&q);
		free(typ);
		return -1;
	}
	free(typ);
	if (in->n_args == 1)
		return fail(p, l, c, "Missing command after HEALTHCHECK CMD");
	/* the args become CMD's: drop the type word */
	in->args++;
	in->n_args--;
	for (size_t d = 0; d < 4; d++)
		if (interval_flag(p, in, used, d))
			return -1;
	if (used[4] >= 0 && in->flags[used[4]].value[0] != '\0') {
		const struct df_flag *f = &in->flags[used[4]];
		char err[200];
		long long r;
		if (parse_int32(f->value, &r, err, sizeof(err)))
			return fail(p, f->line, f->column, "%s", err);
		if (r < 0)
			return fail(p, f->line, f->column, "--retries cannot be negative (%lld)", r);
	}
	return 0;
}

/* ARG: the words into pairs (parseArg). */
static int arg_pairs(struct parser *p, struct df_instruction *in, bool check)
{
	if (check && in->n_args == 0)
		return fail(p, in->line, in->column, "ARG requires at least one argument");
	in->kvs = ar_alloc(p, (in->n_args + 1) * sizeof(struct df_kv));
	if (!in->kvs)
		return fail_oom(p);
	for (size_t i = 0; i < in->n_args; i++) {
		const char *w = in->args[i], *eq = strchr(w, '=');
		struct df_kv *kv = &in->kvs[i];
		if (eq) {
			if (eq == w && check)
				return fail(p, in->line, in->column, "ARG names can not be blank");
			kv->key = ar_strndup(p, w, (size_t)(eq - w));
			kv->raw_value = ar_strdup(p, eq + 1);
			kv->value = kv->raw_value;
		} else {
			kv->key = ar_strdup(p, w);
		}
	}
	in->n_kvs = in->n_args;
	in->args = NULL;
	in->n_args = 0;
	return p->oom ? fail_oom(p) : 0;
}

/* The ONBUILD trigger as stored: no checks, no expansion. */
static int settle_trigger(struct parser *p, struct df_instruction *t)
{
	if (t->kind == DF_ARG)
		return arg_pairs(p, t, false);
	if (t->kind == DF_ENV || t->kind == DF_LABEL)
		for (size_t i = 0; i < t->n_kvs; i++)
			t->kvs[i].value = t->kvs[i].raw_value;
	if (t->kind == DF_HEALTHCHECK && t->n_args > 0) {
		char *typ = go_case(t->args[0], true);
		if (!typ)
			return fail_oom(p);
		if (strcmp(typ, "NONE") == 0) {
			t->healthcheck_none = true;
		} else if (strcmp(typ, "CMD") == 0) {
			t->args++;
			t->n_args--;
		}
		free(typ);
	}
	return 0;
}

static int check_instruction(struct parser *p, size_t idx)
{
	struct df_instruction *in = &p->f->instructions[idx];
	const struct pinfo *pi = &p->pi[idx];
	int l = in->line, c = in->column;
	const char *name = df_kind_name(in->kind);
	int used[8];

	if (!pi->known) {
		const char *s = suggest(in->keyword, kind_names, DF_KIND_COUNT, false);
		if (s) {
			/* matchCase: the suggestion in the keyword's casing */
			char *lo = go_case(in->keyword, false), *up = go_case(in->keyword, true);
			char *sl = go_case(s, false);
			const char *shown = s;
			if (lo && strcmp(lo, in->keyword) == 0)
				shown = sl;
			else if (up && strcmp(up, in->keyword) == 0)
				shown = s;
			fail(p, l, c, "unknown instruction: %s (did you mean %s?)", in->keyword,
			     shown ? shown : s);
			free(lo);
			free(up);
			free(sl);
			return -1;
		}
		return fail(p, l, c, "unknown instruction: %s", in->keyword);
	}
	switch (in->kind) {
	case DF_ENV:
	case DF_LABEL:
		if (no_flags(p, in))
			return -1;
		if (in->n_kvs == 0)
			return fail(p, l, c, "%s requires at least one argument", name);
		for (size_t i = 0; i < in->n_kvs; i++)
			if (in->kvs[i].key[0] == '\0')
				return fail(p, l, c, "%s names can not be blank", name);
		return 0;
	case DF_MAINTAINER:
		if (in->n_args != 1)
			return fail(p, l, c, "MAINTAINER requires exactly one argument");
		return no_flags(p, in);
	case DF_ADD:
	case DF_COPY:
		if (in->n_args < 2)
			return fail(p, l, c,
				    "%s requires at least two arguments, but only one was provided. Destination could not be determined",
				    name);
		if (in->kind == DF_ADD ? parse_flags(p, in, add_flags, NDEFS(add_flags), used)
				       : parse_flags(p, in, copy_flags, NDEFS(copy_flags), used))
			return -1;
		if (is_heredoc_word(in->args[in->n_args - 1]))
			return fail(p, l, c, "%s cannot accept a heredoc as a destination", name);
		return 0;
	case DF_FROM:
		if (in->n_args == 3 && fold_as(in->args[1])) {
			char *lo = go_case(in->args[2], false);
			if (!lo)
				return fail_oom(p);
			bool ok = valid_stage_name(lo);
			free(lo);
			if (!ok) {
				struct df_buf q = {0};
				kiln__df_goquote(&q, in->args[2], strlen(in->args[2]));
				fail(p, l, c,
				     "invalid name for build stage: %s, name can't start with a number or contain symbols",
				     q.p ? q.p : "");
				kiln__df_buf_release(&q);
				return -1;
			}
		} else if (in->n_args != 1) {
			return fail(p, l, c, "FROM requires either one or three arguments");
		}
		return parse_flags(p, in, from_flags, NDEFS(from_flags), used);
	case DF_ONBUILD: {
		if (in->n_args == 0)
			return fail(p, l, c, "ONBUILD requires at least one argument");
		if (no_flags(p, in))
			return -1;
		char *t = go_case(in->args[0], true);
		if (!t)
			return fail_oom(p);
		int rc = 0;
		if (strcmp(t, "ONBUILD") == 0)
			rc = fail(p, l, c, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
		else if (strcmp(t, "MAINTAINER") == 0 || strcmp(t, "FROM") == 0)
			rc = fail(p, l, c, "%s isn't allowed as an ONBUILD trigger", t);
		free(t);
		if (rc)
			return rc;
		if (!pi->onbuild_known) {
			in->onbuild = NULL; /* not an instruction BuildKit knows */
			return 0;
		}
		return settle_trigger(p, in->onbuild);
	}
	case DF_WORKDIR:
	case DF_USER:
		if (in->n_args != 1)
			return fail(p, l, c, "%s requires exactly one argument", name);
		return no_flags(p, in);
	case DF_RUN:
		if (parse_flags(p, in, run_flags, NDEFS(run_flags), used))
			return -1;
		for (size_t k = 0; k < in->n_flags; k++)
			if (strcmp(in->flags[k].name, "device") == 0 &&
			    check_device(p, &in->flags[k]))
				return -1;
		for (size_t k = 0; k < in->n_flags; k++)
			if (strcmp(in->flags[k].name, "mount") == 0 &&
			    check_mount(p, &in->flags[k]))
				return -1;
		if (used[2] >= 0) {
			const struct df_flag *f = &in->flags[used[2]];
			if (strcmp(f->value, "default") != 0 && strcmp(f->value, "none") != 0 &&
			    strcmp(f->value, "host") != 0) {
				struct df_buf q = {0};
				kiln__df_goquote(&q, f->value, strlen(f->value));
				fail(p, f->line, f->column, "invalid network mode %s", q.p ? q.p : "");
				kiln__df_buf_release(&q);
				return -1;
			}
		}
		if (used[3] >= 0) {
			const struct df_flag *f = &in->flags[used[3]];
			if (strcmp(f->value, "insecure") != 0 && strcmp(f->value, "sandbox") != 0) {
				struct df_buf q = {0};
				kiln__df_goquote(&q, f->value, strlen(f->value));
				fail(p, f->line, f->column, "security %s is not valid", q.p ? q.p : "");
				kiln__df_buf_release(&q);
				return -1;
			}
		}
		return 0;
	case DF_CMD:
	case DF_ENTRYPOINT:
		return no_flags(p, in);
	case DF_HEALTHCHECK:
		return check_healthcheck(p, in);
	case DF_EXPOSE:
		if (in->n_args == 0)
			return fail(p, l, c, "EXPOSE requires at least one argument");
		return no_flags(p, in);
	case DF_VOLUME:
		if (in->n_args == 0)
			return fail(p, l, c, "VOLUME requires at least one argument");
		if (no_flags(p, in))
			return -1;
		for (size_t i = 0; i < in->n_args; i++) {
			const char *v = in->args[i];
			size_t n = strlen(v), a = lead_space(v, n);
			if (a == n)
				return fail(p, l, c, "VOLUME specified can not be an empty string");
		}
		return 0;
	case DF_STOPSIGNAL:
		if (in->n_args != 1)
			return fail(p, l, c, "STOPSIGNAL requires exactly one argument");
		return 0;
	case DF_ARG:
		return arg_pairs(p, in, true);
	case DF_SHELL:
		if (no_flags(p, in))
			return -1;
		if (in->n_args == 0)
			return fail(p, l, c, "SHELL requires at least one argument");
		if (!in->json)
			return fail(p, l, c, "SHELL requires the arguments to be in JSON form");
		return 0;
	case DF_KIND_COUNT:
		break;
	}
	return 0;
}

/* Phase 2: instructions.Parse. */
static int parse_instructions(struct parser *p)
{
	struct df_file *f = p->f;
	size_t cap = 0;

	for (size_t i = 0; i < f->n_instructions; i++) {
		struct df_instruction *in = &f->instructions[i];
		if (check_instruction(p, i))
			return -1;
		if (f->n_stages == 0 && in->kind == DF_ARG) {
			f->n_meta_args++;
			continue;
		}
		if (in->kind == DF_FROM) {
			if (!ar_reserve(p, (void **)&f->stages, &cap, f->n_stages,
					sizeof(struct df_stage)))
				return fail_oom(p);
			struct df_stage *s = &f->stages[f->n_stages++];
			memset(s, 0, sizeof(*s));
			s->base_raw = in->args[0];
			s->line = in->line;
			s->first = i;
			s->count = 1;
			s->base_stage = -1;
			if (in->n_args == 3) {
				s->name_as_written = in->args[2];
				s->name = go_case(in->args[2], false);
				if (!s->name)
					return fail_oom(p);
				char *a = ar_strdup(p, s->name);
				free(s->name);
				s->name = a;
				if (!a)
					return fail_oom(p);
			}
			continue;
		}
		if (f->n_stages == 0)
			return fail(p, in->line, in->column, "no build stage in current context");
		f->stages[f->n_stages - 1].count++;
	}
	return 0;
}

/* ---- phase 3: stages, expansion, dependencies ---- */

static const char *const builtin_args[] = {
	"BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
	"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH",
	"TARGETVARIANT", "TARGETSTAGE",
};

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Expands word with the lexer; NULL with p->err-style message in msg. */
static char *expand(struct parser *p, const char *word, const struct scope *sc,
		    bool words, char *msg, size_t msglen)
{
	struct df_lex_opts o = { .escape = p->esc };
	struct df_lex_out lo;
	char *r;

	if (kiln__df_lex(word, strlen(word), &o, words, sc ? scope_lookup : empty_lookup,
			 NULL, (void *)sc, &p->budget, &lo, msg, msglen))
		return NULL;
	if (words) {
		struct df_buf b = {0};
		for (size_t i = 0; i < lo.n_words; i++) {
			if (i)
				kiln__df_buf_addc(&b, ' ');
			kiln__df_buf_addstr(&b, lo.words[i]);
		}
		r = ar_strndup(p, b.p ? b.p : "", b.len);
		if (b.oom)
			r = NULL;
		kiln__df_buf_release(&b);
	} else {
		r = ar_strdup(p, lo.word);
	}
	kiln__df_lex_out_release(&lo);
	if (!r)
		snprintf(msg, msglen, "out of memory");
	return r;
}

static const char *build_arg(struct parser *p, const char *key)
{
	return vmap_get(&p->build_args, key);
}

static int meta_args(struct parser *p)
{
	struct df_file *f = p->f;
	char msg[256];

	for (size_t b = 0; b < NDEFS(builtin_args); b++) {
		const char *v = build_arg(p, builtin_args[b]);
		if (!v) {
			char *ph = ar_alloc(p, strlen(builtin_args[b]) + 2);
			if (!ph)
				return fail_oom(p);
			ph[0] = '$';
			memcpy(ph + 1, builtin_args[b], strlen(builtin_args[b]) + 1);
			v = ph;
		}
		if (!vmap_set(&p->global.m, builtin_args[b], v))
			return fail_oom(p);
	}
	for (size_t i = 0; i < f->n_meta_args; i++) {
		struct df_instruction *in = &f->instructions[i];
		for (size_t k = 0; k < in->n_kvs; k++) {
			struct df_kv *kv = &in->kvs[k];
			const char *v = build_arg(p, kv->key);
			if (v) {
				kv->value = (char *)v;
			} else if (kv->raw_value) {
				kv->value = expand(p, kv->raw_value, &p->global, false, msg, sizeof(msg));
				if (!kv->value)
					return fail(p, in->line, in->column, "%s", msg);
			} else {
				kv->value = NULL;
			}
			if (kv->value && !vmap_set(&p->global.m, kv->key, kv->value))
				return fail_oom(p);
		}
	}
	return 0;
}

static int stage_bases(struct parser *p)
{
	struct df_file *f = p->f;
	char msg[256];

	for (size_t i = 0; i < f->n_stages; i++) {
		struct df_stage *s = &f->stages[i];
		struct df_instruction *in = &f->instructions[s->first];
		s->base = expand(p, s->base_raw, &p->global, false, msg, sizeof(msg));
		if (!s->base)
			return fail(p, in->line, in->column, "%s", msg);
		if (s->base[0] == '\0')
			return fail(p, in->line, in->column, "base name (%s) should not be blank",
				    s->base_raw);
		in->expanded = ar_alloc(p, in->n_args * sizeof(char *));
		if (!in->expanded)
			return fail_oom(p);
		in->expanded[0] = s->base;
		for (size_t k = 1; k < in->n_args; k++)
			in->expanded[k] = in->args[k];
		for (size_t k = 0; k < in->n_flags; k++) {
			struct df_flag *fl = &in->flags[k];
			/* one --platform at most (phase 2) */
			fl->expanded = expand(p, fl->value, &p->global, false, msg, sizeof(msg));
			if (!fl->expanded)
				return fail(p, fl->line, fl->column,
					    "failed to process arguments for platform : %s", msg);
			if (fl->expanded[0] == '\0')
				return fail(p, fl->line, fl->column,
					    "empty platform value from expression %s", fl->value);
			s->platform = fl->expanded;
		}
		/* addState: the latest earlier stage of that exact name */
		const char *b = vmap_get(&p->stage_names, s->base);
		if (b)
			s->base_stage = atoi(b);
		if (s->name) {
			char num[24];
			snprintf(num, sizeof(num), "%zu", i);
			char *v = ar_strdup(p, num);
			if (!v || !vmap_set(&p->stage_names, s->name, v))
				return fail_oom(p);
		}
	}
	return 0;
}

/* findStateByName: the last stage named name (strings.ToLower), or -1. */
static int state_by_name(struct parser *p, const char *name)
{
	char *lo = go_case(name, false);
	const char *v;

	if (!lo) {
		p->oom = true;
		return -1;
	}
	v = vmap_get(&p->stage_names, lo);
	free(lo);
	return v ? atoi(v) : -1;
}

/* The last stage named name (lower-cased as BuildKit does), or -1. */
static int stage_by_name(const struct df_file *f, const char *name)
{
	char *lo = go_case(name, false);
	int r = -1;

	if (!lo)
		return -1;
	for (size_t i = f->n_stages; i-- > 0;) {
		if (f->stages[i].name && strcmp(f->stages[i].name, lo) == 0) {
			r = (int)i;
			break;
		}
	}
	free(lo);
	return r;
}

/* strconv.Atoi */
static bool go_atoi(const char *s, long long *out)
{
	const char *d = s;
	bool neg = false;
	unsigned long long v = 0;

	if (*d == '+' || *d == '-') {
		neg = *d == '-';
		d++;
	}
	if (*d == '\0')
		return false;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return false;
		if (v > (unsigned long long)INT64_MAX / 10 + 1)
			return false;
		v = v * 10 + (unsigned long long)(*d - '0');
	}
	if ((!neg && v > (unsigned long long)INT64_MAX) ||
	    (neg && v > (unsigned long long)INT64_MAX + 1))
		return false;
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

static bool dep_add(struct parser *p, struct df_stage *s, int d, size_t *cap)
{
	size_t me = (size_t)(s - p->f->stages) + 1;

	if (p->dep_mark[d] == me)
		return true;
	p->dep_mark[d] = me;
	if (!ar_reserve(p, (void **)&s->deps, cap, s->n_deps, sizeof(int)))
		return false;
	s->deps[s->n_deps++] = d;
	return true;
}

/* The from= of a --mount (the last one), or "" */
static char *mount_from(const char *value)
{
	char **v, err[200];
	size_t n;
	char *from = NULL;

	if (csv_fields(value, &v, &n, err, sizeof(err)))
		return strdup("");
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(v[i], '=');
		if (!eq)
			continue;
		char *key = go_case(v[i], false);
		if (!key)
			continue;
		key[eq - v[i]] = '\0';
		if (strcmp(key, "from") == 0) {
			free(from);
			from = strdup(eq + 1);
		}
		free(key);
	}
	free_fields(v, n);
	return from ? from : strdup("");
}

/* buildStageDependencyGraph + validateCircularDependency */
static int stage_deps(struct parser *p)
{
	struct df_file *f = p->f;
	int *copydeps_n;
	size_t *caps;
	char msg[256];
	int rc = 0;

	p->n_states = (int)f->n_stages;
	p->dep_mark = calloc(f->n_stages, sizeof(*p->dep_mark));
	if (!p->dep_mark)
		return fail_oom(p);
	caps = calloc(f->n_stages, sizeof(*caps));
	copydeps_n = calloc(f->n_stages, sizeof(*copydeps_n));
	if (!caps || !copydeps_n) {
		free(caps);
		free(copydeps_n);
		return fail_oom(p);
	}
	for (size_t si = 0; si < f->n_stages && !rc; si++) {
		struct df_stage *s = &f->stages[si];
		for (size_t i = s->first + 1; i < s->first + s->count && !rc; i++) {
			struct df_instruction *in = &f->instructions[i];
			if (in->kind == DF_COPY) {
				for (size_t k = 0; k < in->n_flags; k++) {
					struct df_flag *fl = &in->flags[k];
					if (strcmp(fl->name, "from") != 0 || !fl->value[0])
						continue;
					char *e = expand(p, fl->value, NULL, false, msg, sizeof(msg));
					if (!e) {
						rc = fail(p, fl->line, fl->column, "%s", msg);
						break;
					}
					if (strcmp(e, fl->value) != 0) {
						rc = fail(p, fl->line, fl->column,
							  "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround");
						break;
					}
					fl->expanded = e;
					long long idx;
					int d = -1;
					if (go_atoi(fl->value, &idx)) {
						if (idx < 0 || idx >= p->n_states) {
							rc = fail(p, fl->line, fl->column,
								  "invalid stage index %lld", idx);
							break;
						}
						if (idx < (long long)f->n_stages)
							d = (int)idx;
					} else {
						d = state_by_name(p, fl->value);
						if (d < 0)
							p->n_states++;
					}
					if (d >= 0 && !dep_add(p, s, d, &caps[si]))
						rc = fail_oom(p);
				}
			} else if (in->kind == DF_RUN) {
				for (size_t k = 0; k < in->n_flags && !rc; k++) {
					struct df_flag *fl = &in->flags[k];
					if (strcmp(fl->name, "mount") != 0)
						continue;
					char *from = mount_from(fl->value);
					if (!from) {
						rc = fail_oom(p);
						break;
					}
					int d = state_by_name(p, from[0] ? from : "scratch");
					free(from);
					if (d < 0)
						p->n_states++;
					else if (!dep_add(p, s, d, &caps[si]))
						rc = fail_oom(p);
				}
			}
		}
		copydeps_n[si] = (int)s->n_deps;
	}
	/* cycles over COPY --from / --mount from edges (as BuildKit) */
	if (!rc) {
		char *color = calloc(f->n_stages, 1);
		size_t *stk = calloc(f->n_stages + 1, sizeof(*stk));
		size_t *it = calloc(f->n_stages + 1, sizeof(*it));
		if (!color || !stk || !it)
			rc = fail_oom(p);
		for (size_t root = 0; root < f->n_stages && !rc; root++) {
			if (color[root])
				continue;
			size_t sp = 0;
			bool cycle = false;
			stk[sp] = root;
			it[sp++] = 0;
			color[root] = 1;
			while (sp && !cycle) {
				size_t v = stk[sp - 1];
				if (it[sp - 1] < (size_t)copydeps_n[v]) {
					size_t w = (size_t)f->stages[v].deps[it[sp - 1]++];
					if (color[w] == 1)
						cycle = true;
					else if (!color[w]) {
						color[w] = 1;
						stk[sp] = w;
						it[sp++] = 0;
					}
				} else {
					color[v] = 2;
					sp--;
				}
			}
			if (cycle) {
				const struct df_stage *s = &f->stages[root];
				char nm[32];
				snprintf(nm, sizeof(nm), "stage-%zu", root);
				rc = fail(p, s->line, f->instructions[s->first].column,
					  "circular dependency detected on stage: %s",
					  s->name ? s->name : nm);
			}
		}
		free(color);
		free(stk);
		free(it);
	}
	/* then the base stage; sorted */
	for (size_t si = 0; si < f->n_stages && !rc; si++) {
		struct df_stage *s = &f->stages[si];
		if (s->base_stage >= 0 && !dep_add(p, s, s->base_stage, &caps[si]))
			rc = fail_oom(p);
		for (size_t a = 1; a < s->n_deps; a++)
			for (size_t b = a; b > 0 && s->deps[b - 1] > s->deps[b]; b--) {
				int t = s->deps[b];
				s->deps[b] = s->deps[b - 1];
				s->deps[b - 1] = t;
			}
	}
	free(caps);
	free(copydeps_n);
	return rc;
}

/* Re-quotes a CSV field when it needs it (encoding/csv's rule). */
static void csv_field_out(struct df_buf *b, const char *s)
{
	bool q = s[0] == ' ' || s[0] == '\t' || strpbrk(s, ",\"\r\n") != NULL;

	if (!q) {
		kiln__df_buf_addstr(b, s);
		return;
	}
	kiln__df_buf_addc(b, '"');
	for (; *s; s++) {
		if (*s == '"')
			kiln__df_buf_addc(b, '"');
		kiln__df_buf_addc(b, *s);
	}
	kiln__df_buf_addc(b, '"');
}

/* A --mount value with each field's value expanded (RunCommand.Expand). */
static char *expand_mount(struct parser *p, const char *value, const struct scope *sc,
			  char *msg, size_t msglen)
{
	char **v;
	size_t n;
	struct df_buf b = {0};
	char *r = NULL;

	if (csv_fields(value, &v, &n, msg, msglen))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char *eq = strchr(v[i], '=');
		if (i)
			kiln__df_buf_addc(&b, ',');
		if (!eq) {
			csv_field_out(&b, v[i]);
			continue;
		}
		char *e = expand(p, eq + 1, sc, false, msg, msglen);
		if (!e)
			goto out;
		struct df_buf fb = {0};
		kiln__df_buf_add(&fb, v[i], (size_t)(eq - v[i]) + 1);
		kiln__df_buf_addstr(&fb, e);
		csv_field_out(&b, fb.p ? fb.p : "");
		kiln__df_buf_release(&fb);
	}
	r = ar_strndup(p, b.p ? b.p : "", b.len);
out:
	kiln__df_buf_release(&b);
	free_fields(v, n);
	return r;
}

static bool is_non_env_arg(const char *k)
{
	return strcmp(k, "BUILDKIT_SBOM_SCAN_CONTEXT") == 0 ||
	       strcmp(k, "BUILDKIT_SBOM_SCAN_STAGE") == 0;
}

/* Expands one instruction of a stage; false (msg) when an expansion fails. */
static bool expand_instruction(struct parser *p, struct df_instruction *in,
			       struct scope *sc, char *msg, size_t msglen)
{
	switch (in->kind) {
	case DF_ENV:
	case DF_LABEL: {
		bool ok = true;
		char **keys = ar_alloc(p, in->n_kvs * sizeof(char *) + 1);
		if (!keys)
			return false;
		for (size_t k = 0; k < in->n_kvs; k++) {
			struct df_kv *kv = &in->kvs[k];
			char *key = ok ? expand(p, kv->key, sc, false, msg, msglen) : NULL;
			char *val = key ? expand(p, kv->raw_value, sc, false, msg, msglen) : NULL;
			if (!key || !val)
				ok = false;
			keys[k] = key;
			kv->value = val ? val : kv->raw_value;
		}
		for (size_t k = 0; k < in->n_kvs; k++) {
			if (keys[k])
				in->kvs[k].key = keys[k];
			if (in->kind == DF_ENV && !vmap_set(&sc->m, in->kvs[k].key, in->kvs[k].value))
				p->oom = true;
		}
		return ok;
	}
	case DF_ARG: {
		bool ok = true;
		for (size_t k = 0; k < in->n_kvs; k++) {
			struct df_kv *kv = &in->kvs[k];
			const char *v = build_arg(p, kv->key);
			if (v) {
				kv->value = (char *)v;
			} else if (kv->raw_value) {
				kv->value = expand(p, kv->raw_value, sc, false, msg, msglen);
				if (!kv->value) {
					kv->value = kv->raw_value;
					ok = false;
				}
			} else {
				kv->value = (char *)vmap_get(&p->global.m, kv->key);
			}
			if (kv->value && !is_non_env_arg(kv->key) &&
			    !vmap_set(&sc->m, kv->key, kv->value))
				p->oom = true;
		}
		return ok;
	}
	case DF_ADD:
	case DF_COPY:
	case DF_WORKDIR:
	case DF_USER:
	case DF_STOPSIGNAL:
	case DF_VOLUME:
	case DF_EXPOSE: {
		char **e = ar_alloc(p, in->n_args * sizeof(char *) + 1);
		if (!e)
			return false;
		for (size_t k = 0; k < in->n_flags; k++) {
			struct df_flag *fl = &in->flags[k];
			if ((in->kind == DF_ADD || in->kind == DF_COPY) &&
			    (strcmp(fl->name, "chown") == 0 || strcmp(fl->name, "chmod") == 0 ||
			     (in->kind == DF_ADD && strcmp(fl->name, "checksum") == 0))) {
				fl->expanded = expand(p, fl->value, sc, false, msg, msglen);
				if (!fl->expanded)
					return false;
			}
		}
		for (size_t k = 0; k < in->n_args; k++) {
			const char *a = in->args[k];
			if ((in->kind == DF_ADD || in->kind == DF_COPY) && k + 1 < in->n_args &&
			    is_heredoc_word(a)) {
				e[k] = in->args[k];
				continue;
			}
			if (in->kind == DF_VOLUME) {
				/* parseVolume trims each path first */
				size_t n = strlen(a), s0 = lead_space(a, n);
				size_t e0 = s0 + trail_trim(a + s0, n - s0);
				char *t = ar_strndup(p, a + s0, e0 - s0);
				if (!t)
					return false;
				a = t;
			}
			e[k] = expand(p, a, sc, in->kind == DF_EXPOSE, msg, msglen);
			if (!e[k])
				return false;
		}
		in->expanded = e;
		return true;
	}
	case DF_RUN:
		for (size_t k = 0; k < in->n_flags; k++) {
			struct df_flag *fl = &in->flags[k];
			if (strcmp(fl->name, "mount") != 0)
				continue;
			fl->expanded = expand_mount(p, fl->value, sc, msg, msglen);
			if (!fl->expanded)
				return false;
		}
		return true;
	default:
		return true;
	}
}

static int stage_expansion(struct parser *p)
{
	struct df_file *f = p->f;
	char msg[256];

	p->scopes = calloc(f->n_stages ? f->n_stages : 1, sizeof(*p->scopes));
	if (!p->scopes)
		return fail_oom(p);
	if (!vmap_set(&p->image_root.m, "PATH", DEFAULT_PATH))
		return fail_oom(p);
	for (size_t si = 0; si < f->n_stages; si++) {
		struct df_stage *s = &f->stages[si];
		struct scope *sc = &p->scopes[si];
		sc->parent = s->base_stage >= 0 ? &p->scopes[s->base_stage] : &p->image_root;
		for (size_t i = s->first + 1; i < s->first + s->count; i++) {
			struct df_instruction *in = &f->instructions[i];
			if (!expand_instruction(p, in, sc, msg, sizeof(msg))) {
				if (p->oom)
					return fail_oom(p);
				warn(p, in->line, msg);
			}
			if (p->oom)
				return fail_oom(p);
		}
	}
	return 0;
}

/* ---- the API ---- */

static void release_parser(struct parser *p)
{
	kiln__df_buf_release(&p->line);
	free(p->segs);
	free(p->build_args.e);
	free(p->stage_names.e);
	free(p->dep_mark);
	free(p->global.m.e);
	free(p->image_root.m.e);
	if (p->scopes)
		for (size_t i = 0; i < p->f->n_stages; i++)
			free(p->scopes[i].m.e);
	free(p->scopes);
}

int df_parse(const char *filename, const char *buf, size_t len,
	     const struct df_parse_opts *opts, struct df_file **out,
	     struct df_error *err)
{
	static const struct df_parse_opts no_opts;
	struct df_error local;
	struct parser p;
	struct file_priv *fp;
	int rc = -1;

	if (!err)
		err = &local;
	memset(err, 0, sizeof(*err));
	if (out)
		*out = NULL;
	if (!opts)
		opts = &no_opts;
	if (!buf)
		len = 0;
	fp = calloc(1, sizeof(*fp));
	if (!fp) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return -1;
	}
	memset(&p, 0, sizeof(p));
	p.fp = fp;
	p.f = &fp->pub;
	p.buf = buf ? buf : "";
	p.len = len;
	p.esc = '\\';
	p.err = err;
	p.opts = opts;
	p.budget = ((size_t)64 << 20) + (len < (SIZE_MAX >> 6) ? len * 32 : SIZE_MAX >> 2);
	p.f->escape = '\\';
	p.f->filename = ar_strdup(&p, filename ? filename : "Dockerfile");

	/* NUL bytes: refused before anything else */
	const char *z = memchr(p.buf, '\0', len);
	if (z) {
		size_t off = (size_t)(z - p.buf), ls = 0;
		int line = 1;
		for (const char *q = p.buf; (q = memchr(q, '\n', (size_t)(z - q))) != NULL; q++) {
			line++;
			ls = (size_t)(q - p.buf) + 1;
		}
		fail(&p, line, (int)(off - ls) + 1, "invalid NUL byte in the Dockerfile");
		goto out;
	}
	/* BuildKit's line scanner stops at a line over 64 KiB: what comes
	 * before it is parsed, then the scanner's error is returned */
	{
		size_t pos = 0;
		int line = 0;
		while (pos < len) {
			const char *nl = memchr(p.buf + pos, '\n', len - pos);
			size_t tok = nl ? (size_t)(nl - (p.buf + pos)) + 1 : len - pos;
			line++;
			if ((nl && tok > DF_MAX_LINE + 1) || (!nl && tok > DF_MAX_LINE)) {
				p.len = pos;
				p.toolong_line = line;
				break;
			}
			pos += tok;
		}
	}
	for (size_t i = 0; i < opts->n_build_args; i++) {
		const char *k = opts->build_args[2 * i], *v = opts->build_args[2 * i + 1];
		if (!k)
			continue;
		if (!vmap_set(&p.build_args, k, v ? v : "")) {
			fail_oom(&p);
			goto out;
		}
	}
	if (parse_lines(&p))
		goto out;
	p.f->escape = p.esc;
	if (p.toolong_line) {
		fail(&p, p.toolong_line, 1, "dockerfile line greater than max allowed size of %d",
		     DF_MAX_LINE);
		goto out;
	}
	if (parse_instructions(&p))
		goto out;
	if (p.f->n_stages == 0) {
		fail(&p, 0, 0, "dockerfile contains no stages to build");
		goto out;
	}
	if (meta_args(&p) || stage_bases(&p) || stage_deps(&p) || stage_expansion(&p))
		goto out;
	if (p.oom) {
		fail_oom(&p);
		goto out;
	}
	rc = 0;
out:
	release_parser(&p);
	if (rc) {
		df_free(&fp->pub);
		return -1;
	}
	if (out)
		*out = &fp->pub;
	else
		df_free(&fp->pub);
	return 0;
}

void df_free(struct df_file *file)
{
	struct file_priv *fp;

	if (!file)
		return;
	fp = (struct file_priv *)(void *)((char *)file - offsetof(struct file_priv, pub));
	for (struct chunk *c = fp->chunks, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(fp);
}

int df_stage_index(const struct df_file *file, const char *name)
{
	long long idx;

	if (!file || !name || !name[0])
		return -1;
	int s = stage_by_name(file, name);
	if (s >= 0)
		return s;
	if (name[0] >= '0' && name[0] <= '9' && go_atoi(name, &idx) &&
	    idx < (long long)file->n_stages)
		return (int)idx;
	return -1;
}

int df_steps(const struct df_file *file, const char *target)
{
	int t, steps = 0;
	size_t sp = 0;
	char *seen;
	int *stk;

	if (!file || file->n_stages == 0)
		return -1;
	if (!target || !target[0])
		t = (int)file->n_stages - 1;
	else
		t = df_stage_index(file, target);
	if (t < 0)
		return -1;
	seen = calloc(file->n_stages, 1);
	stk = calloc(file->n_stages, sizeof(*stk));
	if (!seen || !stk) {
		free(seen);
		free(stk);
		return -1;
	}
	seen[t] = 1;
	stk[sp++] = t;
	while (sp) {
		const struct df_stage *s = &file->stages[stk[--sp]];
		steps += (int)s->count;
		for (size_t i = 0; i < s->n_deps; i++) {
			int d = s->deps[i];
			if (d >= 0 && (size_t)d < file->n_stages && !seen[d]) {
				seen[d] = 1;
				stk[sp++] = d;
			}
		}
	}
	free(seen);
	free(stk);
	return steps;
}
