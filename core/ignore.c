/*
 * ignore.c: .dockerignore patterns behind kiln_host.patterns_* and
 * kiln_host.ignore_* (contracts in include/kiln/ignore.h).
 *
 * Behaviour follows github.com/moby/patternmatcher: New() and
 * MatchesOrParentMatches() in patternmatcher.go, ReadAll() in
 * ignorefile/ignorefile.go. Upstream turns each pattern into a Go regular
 * expression, or, when it has no wildcard, into a plain string compare
 * ("exact"), a prefix test (plain text then a final "**") or a suffix test
 * (a leading "**" then plain text). Those three are kept here as they are,
 * since they are not always what the expression would do: the suffix test
 * "**.txt" matches "a/b.txt", where the expression (.*\/)?\.txt would want
 * ".txt" right after a '/'. Every other pattern becomes a small program,
 * one op per element of the upstream expression:
 *
 *   '*'            [^/]*      OP_STAR   (a loop)
 *   '?'            [^/]       OP_ANY1
 *   "[...]"        [...]      OP_CLASS  (matches '/' too, as regexp does)
 *   "**" mid       (.*\/)?    OP_SPLIT, OP_ANY, '/'
 *   "**" at end    .*         OP_ANY
 *   anything else  literal    OP_CHAR   ('\' makes the next one literal)
 *
 * run as a Thompson NFA over the path's runes with a bitset of states on
 * the stack: no allocation, no backtracking, linear in the path for each
 * pattern. Every epsilon edge points forward, so one upward sweep closes a
 * state set. MatchesOrParentMatches tries the path and each ancestor
 * directory; the ancestors are the prefixes ending before each '/', so a
 * single pass tests them all: the accept state is checked before each '/'
 * and at the end.
 *
 * Differences from upstream, all in patterns nobody writes: inside a class
 * '*' and '?' are plain characters (upstream pastes "[^/]*" into the
 * class); '\' before a letter makes that letter literal (upstream hands
 * "\d" to regexp, a digit; "\b" a word boundary); and every bad pattern is
 * refused here, when compiling, where upstream finds some only when it
 * first matches with them (a range like "[z-a]", which only regexp
 * refuses) and older Go versions' filepath.Match let others through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "patterns.h"
#include "util.h"


/* Most ops one pattern may compile to (about its length in characters);
 * bounds the state bitsets that matching keeps on the stack. */
#define MAX_OPS 8192
#define SET_WORDS ((MAX_OPS + 1 + 63) / 64)

/* Most bytes of a bad pattern quoted in an error message. */
#define SHOWN_MAX 200

#define RUNE_ERROR 0xfffdu
#define RUNE_MAX 0x10ffffu

enum op_kind {
	OP_CHAR,  /* arg: a rune */
	OP_ANY1,  /* one rune but '/' */
	OP_CLASS, /* arg: index into classes */
	OP_STAR,  /* any runes but '/', zero or more */
	OP_ANY,   /* any runes, zero or more */
	OP_SPLIT, /* no rune: go on to the next op or to arg */
};

struct op {
	uint32_t kind;
	uint32_t arg;
};

struct range {
	uint32_t lo, hi;
};

struct class {
	uint32_t first, n; /* ranges[first .. first+n) */
	bool negated;
};

enum kind {
	K_EXACT,  /* the path (or an ancestor) is text */
	K_PREFIX, /* the path starts with text */
	K_SUFFIX, /* the path (or an ancestor) ends with text */
	K_GLOB,   /* the program accepts the path (or an ancestor) */
};

struct pattern {
	enum kind kind;
	bool exception;
	char *text;        /* the cleaned pattern, without '!' */
	const char *lit;   /* into text: what K_EXACT/PREFIX/SUFFIX compare */
	size_t lit_len;
	struct op *ops;
	size_t n_ops;
	struct class *classes;
	struct range *ranges;
};

struct kiln_patterns {
	struct pattern *v;
	size_t n;
	bool exceptions;
};

/* ---- UTF-8 and white space ------------------------------------------- */

/* The rune at s (n > 0 bytes left) and its length in *w; an invalid or
 * truncated sequence is RUNE_ERROR of length 1, as Go decodes it. */
static uint32_t decode(const unsigned char *s, size_t n, size_t *w)
{
	unsigned char c = s[0];
	*w = 1;
	if (c < 0x80)
		return c;
	size_t len;
	uint32_t r, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, r = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, r = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, r = c & 0x07, min = 0x10000;
	} else {
		return RUNE_ERROR;
	}
	if (n < len)
		return RUNE_ERROR;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return RUNE_ERROR;
		r = (r << 6) | (s[i] & 0x3f);
	}
	if (r < min || r > RUNE_MAX || (r >= 0xd800 && r <= 0xdfff))
		return RUNE_ERROR;
	*w = len;
	return r;
}

/* Go's unicode.IsSpace, which strings.TrimSpace uses. */
static bool is_space(uint32_t r)
{
	switch (r) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202f: case 0x205f: case 0x3000:
		return true;
	}
	return r >= 0x2000 && r <= 0x200a;
}

/* strings.TrimSpace of s[0..len): the trimmed part as *start, *end. */
static void trim(const char *s, size_t len, size_t *start, size_t *end)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, w;
	while (i < len && is_space(decode(u + i, len - i, &w)))
		i += w;
	*start = *end = i;
	while (i < len) {
		bool sp = is_space(decode(u + i, len - i, &w));
		i += w;
		if (!sp)
			*end = i;
	}
}

/* ---- cleaning -------------------------------------------------------- */

/*
 * Clean s in place like Go's filepath.Clean on Unix: one '/' between
 * elements, no "." elements, ".." eats the element before it (and is
 * dropped at the start of a rooted path), no trailing '/', "" is ".".
 * Writing never overtakes reading, so one buffer serves both; s needs room
 * for 2 bytes.
 */
static void clean(char *s)
{
	size_t n = strlen(s), r = 0, w = 0, dotdot = 0;
	bool rooted = n > 0 && s[0] == '/';
	if (rooted)
		w = r = dotdot = 1;
	while (r < n) {
		if (s[r] == '/') {
			r++;
		} else if (s[r] == '.' && (r + 1 == n || s[r + 1] == '/')) {
			r++;
		} else if (s[r] == '.' && s[r + 1] == '.' && (r + 2 == n || s[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && s[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					s[w++] = '/';
				s[w++] = '.';
				s[w++] = '.';
				dotdot = w;
			}
		} else {
			if (w != (rooted ? 1u : 0u))
				s[w++] = '/';
			while (r < n && s[r] != '/')
				s[w++] = s[r++];
		}
	}
	if (w == 0)
		s[w++] = '.';
	s[w] = '\0';
}

/*
 * An ignore-file line as ignorefile.ReadAll leaves it, in a new heap
 * string: trimmed; a leading '!' kept and the white space after it
 * trimmed; the rest cleaned and without a leading '/' (unless that is all
 * there is). NULL when nothing is left.
 */
static char *normalise_line(const char *s, size_t len)
{
	size_t a, b;
	trim(s, len, &a, &b);
	if (a == b)
		return NULL;
	bool bang = s[a] == '!';
	if (bang) {
		size_t a2, b2;
		trim(s + a + 1, b - a - 1, &a2, &b2);
		b = a + 1 + b2;
		a = a + 1 + a2;
	}
	size_t n = b - a, o = bang;
	char *out = kiln__xmalloc(o + n + 2); /* clean() may write "." */
	out[0] = '!';
	memcpy(out + o, s + a, n);
	out[o + n] = '\0';
	if (n > 0) {
		char *p = out + o;
		clean(p);
		if (p[0] == '/' && p[1])
			memmove(p, p + 1, strlen(p)); /* with its NUL */
	}
	return out;
}

/* ---- compiling --------------------------------------------------------- */

/* Growing arrays while one pattern compiles. */
struct builder {
	struct op *ops;
	size_t n_ops, cap_ops;
	struct class *classes;
	size_t n_classes, cap_classes;
	struct range *ranges;
	size_t n_ranges, cap_ranges;
};

static void emit(struct builder *b, uint32_t kind, uint32_t arg)
{
	if (b->n_ops == b->cap_ops) {
		b->cap_ops = b->cap_ops ? 2 * b->cap_ops : 16;
		b->ops = kiln__xrealloc(b->ops, b->cap_ops * sizeof(*b->ops));
	}
	b->ops[b->n_ops++] = (struct op){ kind, arg };
}

static void add_range(struct builder *b, uint32_t lo, uint32_t hi)
{
	if (b->n_ranges == b->cap_ranges) {
		b->cap_ranges = b->cap_ranges ? 2 * b->cap_ranges : 8;
		b->ranges = kiln__xrealloc(b->ranges, b->cap_ranges * sizeof(*b->ranges));
	}
	b->ranges[b->n_ranges++] = (struct range){ lo, hi };
}

/* The named classes of Go's regexp inside brackets ("[[:alpha:]]"),
 * ASCII only, ranges in ascending order. */
static const struct {
	const char *name;
	uint32_t n;
	struct range r[4];
} named_classes[] = {
	{ "alnum", 3, { { '0', '9' }, { 'A', 'Z' }, { 'a', 'z' } } },
	{ "alpha", 2, { { 'A', 'Z' }, { 'a', 'z' } } },
	{ "ascii", 1, { { 0, 0x7f } } },
	{ "blank", 2, { { '\t', '\t' }, { ' ', ' ' } } },
	{ "cntrl", 2, { { 0, 0x1f }, { 0x7f, 0x7f } } },
	{ "digit", 1, { { '0', '9' } } },
	{ "graph", 1, { { '!', '~' } } },
	{ "lower", 1, { { 'a', 'z' } } },
	{ "print", 1, { { ' ', '~' } } },
	{ "punct", 4, { { '!', '/' }, { ':', '@' }, { '[', '`' }, { '{', '~' } } },
	{ "space", 2, { { '\t', '\r' }, { ' ', ' ' } } },
	{ "upper", 1, { { 'A', 'Z' } } },
	{ "word", 4, { { '0', '9' }, { 'A', 'Z' }, { '_', '_' }, { 'a', 'z' } } },
	{ "xdigit", 3, { { '0', '9' }, { 'A', 'F' }, { 'a', 'f' } } },
};

/* Add the ranges of the named class s[0..len) ("alpha", "^alpha"). */
static const char *add_named(struct builder *b, const char *s, size_t len)
{
	bool negated = len > 0 && s[0] == '^';
	if (negated)
		s++, len--;
	for (size_t i = 0; i < sizeof(named_classes) / sizeof(named_classes[0]); i++) {
		if (strlen(named_classes[i].name) != len ||
		    memcmp(named_classes[i].name, s, len) != 0)
			continue;
		uint32_t from = 0;
		for (uint32_t k = 0; k < named_classes[i].n; k++) {
			struct range r = named_classes[i].r[k];
			if (!negated)
				add_range(b, r.lo, r.hi);
			else if (r.lo > from)
				add_range(b, from, r.lo - 1);
			from = r.hi + 1;
		}
		if (negated)
			add_range(b, from, RUNE_MAX);
		return NULL;
	}
	return "unknown character class name";
}

/* One character of a class (Go's getEsc): '\' escapes, an unescaped '-'
 * or ']' is an error, as is invalid UTF-8. */
static const char *class_char(const char *s, size_t len, size_t *k, uint32_t *r)
{
	if (*k >= len)
		return "unterminated character class";
	if (s[*k] == '-' || s[*k] == ']')
		return "'-' or ']' in a character class must be escaped";
	if (s[*k] == '\\' && ++*k >= len)
		return "unterminated character class";
	size_t w;
	*r = decode((const unsigned char *)s + *k, len - *k, &w);
	if (*r == RUNE_ERROR && w == 1)
		return "invalid UTF-8 in a character class";
	*k += w;
	return NULL;
}

/* The class starting just after a '[' at s[*k]; *k ends after its ']'. */
static const char *parse_class(struct builder *b, const char *s, size_t len, size_t *k)
{
	struct class c = { .first = (uint32_t)b->n_ranges };
	if (*k < len && s[*k] == '^')
		c.negated = true, ++*k;
	for (size_t items = 0;; items++) {
		if (*k < len && s[*k] == ']' && items > 0) {
			++*k;
			break;
		}
		if (*k + 1 < len && s[*k] == '[' && s[*k + 1] == ':') {
			const char *end = memmem(s + *k + 2, len - *k - 2, ":]", 2);
			if (end) { /* "[:name:]", as regexp reads it */
				const char *why = add_named(b, s + *k + 2,
							    (size_t)(end - (s + *k + 2)));
				if (why)
					return why;
				*k = (size_t)(end - s) + 2;
				continue;
			}
		}
		uint32_t lo, hi;
		const char *why = class_char(s, len, k, &lo);
		if (why)
			return why;
		hi = lo;
		if (*k < len && s[*k] == '-') {
			++*k;
			if ((why = class_char(s, len, k, &hi)))
				return why;
			if (hi < lo)
				return "character range runs backwards";
		}
		add_range(b, lo, hi);
	}
	c.n = (uint32_t)(b->n_ranges - c.first);
	if (b->n_classes == b->cap_classes) {
		b->cap_classes = b->cap_classes ? 2 * b->cap_classes : 4;
		b->classes = kiln__xrealloc(b->classes, b->cap_classes * sizeof(*b->classes));
	}
	b->classes[b->n_classes++] = c;
	return NULL;
}

/*
 * Compile p->text into p: its kind and, for K_GLOB, its program. The loop
 * is upstream's Pattern.compile(): the kind starts as exact; a wildcard,
 * class or escape makes it a glob; a final "**" after plain text makes it
 * a prefix test; a "**" as the very first token makes it a suffix test
 * unless something later makes it a glob. Returns why it is bad, or NULL.
 */
static const char *compile_one(struct pattern *p)
{
	const char *s = p->text;
	size_t len = strlen(s), i = 0;
	struct builder b = { 0 };
	enum kind kind = K_EXACT;
	const char *why = NULL;
	for (size_t tok = 0; i < len && !why; tok++) {
		char c = s[i];
		size_t w;
		if (c == '*' && i + 1 < len && s[i + 1] == '*') {
			i += 2;
			if (i < len && s[i] == '/')
				i++; /* "**" then '/' is one token */
			if (i == len && kind == K_EXACT) {
				kind = K_PREFIX;
			} else if (i == len) {
				emit(&b, OP_ANY, 0);
				kind = K_GLOB;
			} else { /* (.*\/)? */
				emit(&b, OP_SPLIT, (uint32_t)b.n_ops + 3);
				emit(&b, OP_ANY, 0);
				emit(&b, OP_CHAR, '/');
				kind = K_GLOB;
			}
			if (tok == 0)
				kind = K_SUFFIX;
		} else if (c == '*') {
			i++;
			emit(&b, OP_STAR, 0);
			kind = K_GLOB;
		} else if (c == '?') {
			i++;
			emit(&b, OP_ANY1, 0);
			kind = K_GLOB;
		} else if (c == '\\') {
			if (++i == len) {
				why = "a trailing '\\' escapes nothing";
				break;
			}
			emit(&b, OP_CHAR, decode((const unsigned char *)s + i, len - i, &w));
			i += w;
			kind = K_GLOB;
		} else if (c == '[') {
			i++;
			why = parse_class(&b, s, len, &i);
			emit(&b, OP_CLASS, (uint32_t)b.n_classes - 1);
			kind = K_GLOB;
		} else {
			if (c == ']')
				kind = K_GLOB;
			emit(&b, OP_CHAR, decode((const unsigned char *)s + i, len - i, &w));
			i += w;
		}
	}
	if (!why && kind == K_GLOB && b.n_ops > MAX_OPS)
		why = "pattern too long";
	p->kind = kind;
	p->lit = s;
	p->lit_len = len;
	if (kind == K_PREFIX) {
		p->lit_len = len - 2;
	} else if (kind == K_SUFFIX) {
		p->lit = s + 2;
		p->lit_len = len - 2;
	}
	if (why || kind != K_GLOB) {
		free(b.ops);
		free(b.classes);
		free(b.ranges);
		return why;
	}
	p->ops = b.ops;
	p->n_ops = b.n_ops;
	p->classes = b.classes;
	p->ranges = b.ranges;
	return NULL;
}

void kiln__patterns_free(struct kiln_patterns *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->v[i].text);
		free(ps->v[i].ops);
		free(ps->v[i].classes);
		free(ps->v[i].ranges);
	}
	free(ps->v);
	free(ps);
}

/*
 * A pattern as upstream's New() takes it: trimmed, then cleaned with any
 * '!' still in front (so "!a/../b" is the plain pattern "b"), then split
 * into the '!' and the rest; then, as ignorefile.ReadAll does, a leading
 * '/' dropped, but only from a pattern written with '/' (or "!/") first:
 * ReadAll's own output never starts so, and one that starts with white
 * space and then '/' (ReadAll makes " /x" of "/ /x") keeps its '/' and
 * matches nothing, as in Docker. A new heap string, NULL when blank.
 */
static char *normalise_pattern(const char *raw, bool *exception)
{
	bool slash = raw[0] == '/' || (raw[0] == '!' && raw[1] == '/');
	size_t a, b;
	trim(raw, strlen(raw), &a, &b);
	if (a == b)
		return NULL;
	char *t = kiln__xmalloc(b - a + 2); /* clean() may write "." */
	memcpy(t, raw + a, b - a);
	t[b - a] = '\0';
	clean(t);
	*exception = t[0] == '!';
	if (*exception)
		memmove(t, t + 1, strlen(t)); /* with its NUL */
	if (slash && t[0] == '/' && t[1])
		memmove(t, t + 1, strlen(t));
	return t;
}

int kiln__patterns_compile(const char *const *patterns, size_t n,
			   struct kiln_patterns **out, struct kiln_err *err)
{
	struct kiln_patterns *ps = kiln__xcalloc(1, sizeof(*ps));
	ps->v = kiln__xcalloc(n ? n : 1, sizeof(*ps->v));
	for (size_t i = 0; i < n; i++) {
		const char *raw = patterns[i];
		if (!raw) {
			kiln__patterns_free(ps);
			return kiln__err(err, KILN_E_INVALID, "pattern %zu is NULL", i);
		}
		bool exception = false;
		char *t = normalise_pattern(raw, &exception);
		if (!t)
			continue;
		struct pattern *p = &ps->v[ps->n++];
		p->text = t;
		p->exception = exception;
		ps->exceptions |= exception;
		const char *why = t[0] ? compile_one(p)
				       : "an exception needs a pattern after the '!'";
		if (why) {
			/* the pattern as given, trimmed, and cut to fit the
			 * message (not inside a UTF-8 sequence) */
			size_t a, b;
			trim(raw, strlen(raw), &a, &b);
			size_t shown = b - a;
			if (shown > SHOWN_MAX) {
				shown = SHOWN_MAX;
				while (shown > 0 && (raw[a + shown] & 0xc0) == 0x80)
					shown--;
			}
			int rc = kiln__err(err, KILN_E_INVALID, "invalid pattern '%.*s%s': %s",
					   (int)shown, raw + a, shown < b - a ? "..." : "", why);
			kiln__patterns_free(ps);
			return rc;
		}
	}
	*out = ps;
	return 0;
}

bool kiln__patterns_has_exceptions(const struct kiln_patterns *ps)
{
	return ps && ps->exceptions;
}

/* ---- matching ------------------------------------------------------------ */

static bool class_has(const struct pattern *p, uint32_t idx, uint32_t r)
{
	const struct class *c = &p->classes[idx];
	const struct range *rg = p->ranges + c->first;
	for (uint32_t i = 0; i < c->n; i++)
		if (r >= rg[i].lo && r <= rg[i].hi)
			return !c->negated;
	return c->negated;
}

#define SET_HAS(set, s) (((set)[(s) / 64] >> ((s) % 64)) & 1u)
#define SET_ADD(set, s) ((set)[(s) / 64] |= (uint64_t)1 << ((s) % 64))

/* Add to set every state its states reach without reading: the epsilon
 * closure. Edges only point forward, so one upward sweep is enough. */
static void close_set(const struct pattern *p, uint64_t *set, size_t words)
{
	for (size_t k = 0; k < words; k++) {
		uint64_t done = 0, todo;
		while ((todo = set[k] & ~done) != 0) {
			unsigned bit = (unsigned)__builtin_ctzll(todo);
			done |= (uint64_t)1 << bit;
			size_t s = k * 64 + bit;
			if (s >= p->n_ops)
				continue;
			switch (p->ops[s].kind) {
			case OP_SPLIT:
				SET_ADD(set, p->ops[s].arg);
				/* fall through */
			case OP_STAR:
			case OP_ANY:
				SET_ADD(set, s + 1);
				break;
			}
		}
	}
}

/* Does the program accept path[0..len) or one of its ancestors? */
static bool glob_match(const struct pattern *p, const char *path, size_t len)
{
	uint64_t a[SET_WORDS], b[SET_WORDS];
	uint64_t *cur = a, *next = b;
	const unsigned char *u = (const unsigned char *)path;
	size_t words = (p->n_ops + 1 + 63) / 64, accept = p->n_ops;
	memset(cur, 0, words * sizeof(*cur));
	cur[0] = 1;
	close_set(p, cur, words);
	for (size_t i = 0; i < len;) {
		if (u[i] == '/' && SET_HAS(cur, accept))
			return true; /* the ancestor path[0..i) */
		size_t w = 1;
		uint32_t r = u[i] < 0x80 ? u[i] : decode(u + i, len - i, &w);
		bool any = false;
		memset(next, 0, words * sizeof(*next));
		for (size_t k = 0; k < words; k++) {
			for (uint64_t bits = cur[k]; bits; bits &= bits - 1) {
				size_t s = k * 64 + (unsigned)__builtin_ctzll(bits), to;
				if (s >= accept)
					continue;
				const struct op *op = &p->ops[s];
				switch (op->kind) {
				case OP_CHAR:
					if (r != op->arg)
						continue;
					to = s + 1;
					break;
				case OP_ANY1:
					if (r == '/')
						continue;
					to = s + 1;
					break;
				case OP_CLASS:
					if (!class_has(p, op->arg, r))
						continue;
					to = s + 1;
					break;
				case OP_STAR:
					if (r == '/')
						continue;
					to = s;
					break;
				case OP_ANY:
					to = s;
					break;
				default:
					continue;
				}
				SET_ADD(next, to);
				any = true;
			}
		}
		if (!any)
			return false;
		close_set(p, next, words);
		uint64_t *t = cur;
		cur = next;
		next = t;
		i += w;
	}
	return SET_HAS(cur, accept);
}

/* Does the path or one of its ancestors end with the suffix? (upstream:
 * HasSuffix(path, s), or s is "/x" and the path is "x") */
static bool suffix_match(const struct pattern *p, const char *path, size_t len)
{
	const char *s = p->lit;
	size_t n = p->lit_len;
	if (n == 0)
		return true;
	for (size_t e = 0; e <= len; e++) {
		if (e < len && path[e] != '/')
			continue;
		if (e >= n && memcmp(path + e - n, s, n) == 0)
			return true;
		if (s[0] == '/' && e == n - 1 && memcmp(path, s + 1, e) == 0)
			return true;
	}
	return false;
}

static bool pattern_match(const struct pattern *p, const char *path, size_t len)
{
	switch (p->kind) {
	case K_EXACT: /* the path, or an ancestor: a prefix ending before '/' */
		return memcmp(path, p->lit, len < p->lit_len ? len : p->lit_len) == 0 &&
		       (len == p->lit_len || (len > p->lit_len && path[p->lit_len] == '/'));
	case K_PREFIX: /* an ancestor with the prefix implies the path has it */
		return len >= p->lit_len && memcmp(path, p->lit, p->lit_len) == 0;
	case K_SUFFIX:
		return suffix_match(p, path, len);
	case K_GLOB:
		return glob_match(p, path, len);
	}
	return false;
}

bool kiln__patterns_match(const struct kiln_patterns *ps, const char *path)
{
	if (!ps || !path)
		return false;
	size_t len = strlen(path);
	bool matched = false;
	for (size_t i = 0; i < ps->n; i++) {
		const struct pattern *p = &ps->v[i];
		/* an exception cannot change "not matched", nor another
		 * pattern "matched": skip them, as upstream does */
		if (p->exception != matched)
			continue;
		if (pattern_match(p, path, len))
			matched = !p->exception;
	}
	return matched;
}

/* ---- ignore files ---------------------------------------------------------- */

int kiln__ignore_read(const char *file, char ***patterns, size_t *n, struct kiln_err *err)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*patterns = NULL;
		*n = 0;
		return 0;
	}
	if (fd < 0)
		return kiln__err_at(err, KILN_E_IO, file, 0, 0, "cannot read the ignore file: %s",
				    strerror(errno));
	struct kiln_sb sb = KILN_SB_INIT;
	char buf[16384];
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			close(fd);
			kiln__sb_release(&sb);
			return kiln__err_at(err, KILN_E_IO, file, 0, 0,
					    "cannot read the ignore file: %s", strerror(e));
		}
		if (got == 0)
			break;
		kiln__sb_add(&sb, buf, (size_t)got);
	}
	close(fd);

	/* bufio.ScanLines: "\n" ends a line and one '\r' before it goes;
	 * a last line without "\n" counts */
	struct kiln_strv sv = { 0 };
	const char *d = kiln__sb_str(&sb);
	for (size_t pos = 0; pos < sb.len;) {
		const char *nl = memchr(d + pos, '\n', sb.len - pos);
		size_t a = pos, b = nl ? (size_t)(nl - d) : sb.len;
		if (b > a && d[b - 1] == '\r')
			b--;
		if (pos == 0 && b - a >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
			a += 3; /* the UTF-8 byte order mark */
		pos = nl ? (size_t)(nl - d) + 1 : sb.len;
		if (b > a && d[a] == '#')
			continue; /* a comment: '#' in the first column only */
		char *p = normalise_line(d + a, b - a);
		if (p)
			kiln__strv_push_owned(&sv, p);
	}
	kiln__sb_release(&sb);
	if (!sv.v)
		sv.v = kiln__xcalloc(1, sizeof(*sv.v)); /* the file exists */
	*patterns = sv.v;
	*n = sv.n;
	return 0;
}

void kiln__ignore_free(char **patterns)
{
	if (!patterns)
		return;
	for (char **p = patterns; *p; p++)
		free(*p);
	free(patterns);
}
