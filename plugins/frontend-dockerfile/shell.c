/*
 * shell.c: word expansion of the Dockerfile parser, as BuildKit's
 * frontend/dockerfile/shell lexer (Lex.ProcessWord / ProcessWords) does it:
 * $VAR, ${VAR}, ${VAR:-w}, ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR:?w},
 * ${VAR?w}, ${VAR#p}, ${VAR##p}, ${VAR%p}, ${VAR%%p}, ${VAR/p/r},
 * ${VAR//p/r}, quotes and escapes, and the lexer's settings (raw quotes,
 * raw escapes, skip unset) that the parser uses to find heredocs.
 *
 * BuildKit's lexer is recursive (a ${...} word may hold quotes holding
 * ${...}); this one keeps its own stack of frames instead, so that input
 * depth never turns into C stack depth. Go's quirks are kept on purpose
 * (they decide what a build does): the shared word buffer that a nested
 * ${x:-...} resets, U+FFFD for invalid UTF-8, a leading BOM skipped, and
 * the pattern operators' regular expression semantics ('?' and '*' do not
 * match a newline; leftmost-first matches).
 *
 * Also here: the small text helpers the parser shares (a byte buffer,
 * Go's UTF-8 decoding, Unicode classes, strconv.Quote, Levenshtein).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser_int.h"
#include "shell_unicode.h"

/* ---- byte buffer ---- */

static bool buf_grow(struct df_buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (more > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return false;
	}
	size_t need = b->len + more + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 32;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void kiln__df_buf_add(struct df_buf *b, const void *s, size_t n)
{
	if (!buf_grow(b, n))
		return;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void kiln__df_buf_addc(struct df_buf *b, char c)
{
	kiln__df_buf_add(b, &c, 1);
}

void kiln__df_buf_addstr(struct df_buf *b, const char *s)
{
	kiln__df_buf_add(b, s, strlen(s));
}

void kiln__df_buf_addrune(struct df_buf *b, int32_t r)
{
	unsigned char u[4];
	size_t n;

	if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = (int32_t)DF_RUNE_ERROR;
	if (r < 0x80) {
		u[0] = (unsigned char)r;
		n = 1;
	} else if (r < 0x800) {
		u[0] = (unsigned char)(0xC0 | (r >> 6));
		u[1] = (unsigned char)(0x80 | (r & 0x3F));
		n = 2;
	} else if (r < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (r >> 12));
		u[1] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (r & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (r >> 18));
		u[1] = (unsigned char)(0x80 | ((r >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (r & 0x3F));
		n = 4;
	}
	kiln__df_buf_add(b, u, n);
}

void kiln__df_buf_reset(struct df_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void kiln__df_buf_release(struct df_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

char *kiln__df_buf_detach(struct df_buf *b)
{
	char *p;

	if (b->oom) {
		kiln__df_buf_release(b);
		return NULL;
	}
	if (!b->p) {
		p = malloc(1);
		if (p)
			p[0] = '\0';
		return p;
	}
	p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}

/* ---- UTF-8 and Unicode classes (Go's semantics) ---- */

size_t kiln__df_utf8_decode(const char *str, size_t n, int32_t *r)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t need;
	int32_t v;

	if (c < 0x80) {
		*r = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
		v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		v = c & 0x0F;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		v = c & 0x07;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		goto bad;
	}
	if (n < 2 || s[1] < lo || s[1] > hi)
		goto bad;
	v = (v << 6) | (s[1] & 0x3F);
	for (size_t i = 2; i < need; i++) {
		if (n <= i || s[i] < 0x80 || s[i] > 0xBF)
			goto bad;
		v = (v << 6) | (s[i] & 0x3F);
	}
	*r = v;
	return need;
bad:
	*r = (int32_t)DF_RUNE_ERROR;
	return 1;
}

static bool in_ranges(const uint32_t (*t)[2], size_t n, int32_t r)
{
	size_t lo = 0, hi = n;

	if (r < 0)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uint32_t)r < t[mid][0])
			hi = mid;
		else if ((uint32_t)r > t[mid][1])
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

bool kiln__df_is_space(int32_t r)
{
	switch (r) {
	case '\t': case '\n': case '\v': case '\f': case '\r': case ' ':
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return true;
	}
	return r >= 0x2000 && r <= 0x200A;
}

bool kiln__df_is_letter(int32_t r)
{
	if (r < 0x80)
		return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
	return in_ranges(df_uni_letter, NELEM(df_uni_letter), r);
}

bool kiln__df_is_digit(int32_t r)
{
	if (r < 0x80)
		return r >= '0' && r <= '9';
	return in_ranges(df_uni_digit, NELEM(df_uni_digit), r);
}

bool kiln__df_is_print(int32_t r)
{
	if (r < 0x80)
		return r >= 0x20 && r < 0x7F;
	return in_ranges(df_uni_print, NELEM(df_uni_print), r);
}

void kiln__df_goquote(struct df_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[12];

	kiln__df_buf_addc(b, '"');
	for (size_t i = 0; i < n;) {
		int32_t r;
		size_t w = kiln__df_utf8_decode(s + i, n - i, &r);
		if (w == 1 && r == (int32_t)DF_RUNE_ERROR) {
			unsigned char c = (unsigned char)s[i];
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 15];
			kiln__df_buf_add(b, tmp, 4);
			i++;
			continue;
		}
		i += w;
		if (r == '"' || r == '\\') {
			kiln__df_buf_addc(b, '\\');
			kiln__df_buf_addc(b, (char)r);
			continue;
		}
		if (kiln__df_is_print(r)) {
			kiln__df_buf_addrune(b, r);
			continue;
		}
		switch (r) {
		case '\a': kiln__df_buf_addstr(b, "\\a"); continue;
		case '\b': kiln__df_buf_addstr(b, "\\b"); continue;
		case '\f': kiln__df_buf_addstr(b, "\\f"); continue;
		case '\n': kiln__df_buf_addstr(b, "\\n"); continue;
		case '\r': kiln__df_buf_addstr(b, "\\r"); continue;
		case '\t': kiln__df_buf_addstr(b, "\\t"); continue;
		case '\v': kiln__df_buf_addstr(b, "\\v"); continue;
		}
		if (r < ' ' || r == 0x7F)
			snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)r);
		else if (r < 0x10000)
			snprintf(tmp, sizeof(tmp), "\\u%04x", (unsigned)r);
		else
			snprintf(tmp, sizeof(tmp), "\\U%08x", (unsigned)r);
		kiln__df_buf_addstr(b, tmp);
	}
	kiln__df_buf_addc(b, '"');
}

/* Runes of s (invalid bytes as U+FFFD), with each rune's byte offset;
 * off has n+1 entries. Returns the rune count, or (size_t)-1 on oom. */
static size_t to_runes(const char *s, size_t len, int32_t **runes, size_t **off)
{
	size_t n = 0;
	int32_t *r = malloc((len + 1) * sizeof(*r));
	size_t *o = off ? malloc((len + 1) * sizeof(*o)) : NULL;

	if (!r || (off && !o)) {
		free(r);
		free(o);
		return (size_t)-1;
	}
	for (size_t i = 0; i < len;) {
		if (o)
			o[n] = i;
		i += kiln__df_utf8_decode(s + i, len - i, &r[n]);
		n++;
	}
	if (o)
		o[n] = len;
	*runes = r;
	if (off)
		*off = o;
	return n;
}

size_t kiln__df_levenshtein(const char *a, const char *b)
{
	int32_t *ra = NULL, *rb = NULL;
	size_t na = to_runes(a, strlen(a), &ra, NULL);
	size_t nb = to_runes(b, strlen(b), &rb, NULL);
	size_t *row = NULL, d = (size_t)-1;

	if (na == (size_t)-1 || nb == (size_t)-1)
		goto out;
	row = malloc((nb + 1) * sizeof(*row));
	if (!row)
		goto out;
	for (size_t j = 0; j <= nb; j++)
		row[j] = j;
	for (size_t i = 1; i <= na; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t best = diag + (ra[i - 1] == rb[j - 1] ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	d = row[nb];
out:
	free(ra);
	free(rb);
	free(row);
	return d;
}

/* ---- shell patterns (${VAR#p}, ${VAR%p}, ${VAR/p/r}) ----
 * BuildKit turns the pattern into a Go regular expression: '*' is ".*"
 * (greedy) or ".*?" (lazy), '?' is '.', "\*" "\?" "\\" are literals,
 * "\}" and "\/" drop the backslash, any other escape is an error. '.'
 * does not match '\n'. Matching is leftmost-first, done here by a Pike
 * VM over the runes (linear in pattern x value). */

enum { OP_LIT, OP_ANY, OP_SPLIT, OP_JMP, OP_MATCH };

struct pinst {
	int op;
	int32_t r;   /* OP_LIT */
	size_t x, y; /* OP_SPLIT (x preferred), OP_JMP (x) */
};

struct pattern {
	struct pinst *prog;
	size_t n;
};

static int pattern_compile(const char *pat, size_t len, bool greedy,
			   struct pattern *out, char *err, size_t errlen)
{
	int32_t *toks = NULL;
	size_t nt = to_runes(pat, len, &toks, NULL), pos = 0, nprog = 0;
	struct pinst *prog;

	if (nt == (size_t)-1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* text/scanner skips a BOM at the start */
	if (nt > 0 && toks[0] == 0xFEFF)
		pos = 1;
	prog = calloc(nt * 3 + 1, sizeof(*prog));
	if (!prog) {
		free(toks);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (pos < nt) {
		int32_t t = toks[pos++];
		if (t == '*') {
			size_t s = nprog;
			prog[s].op = OP_SPLIT;
			prog[s + 1].op = OP_ANY;
			prog[s + 2].op = OP_JMP;
			prog[s + 2].x = s;
			prog[s].x = greedy ? s + 1 : s + 3;
			prog[s].y = greedy ? s + 3 : s + 1;
			nprog += 3;
			continue;
		}
		if (t == '?') {
			prog[nprog++].op = OP_ANY;
			continue;
		}
		if (t == '\\') {
			if (pos < nt && (toks[pos] == '}' || toks[pos] == '/'))
				continue;
			int32_t e = pos < nt ? toks[pos++] : DF_EOF;
			if (e != '*' && e != '?' && e != '\\') {
				struct df_buf b = {0};
				kiln__df_buf_addrune(&b, e);
				snprintf(err, errlen, "invalid escape '\\%s'",
					 b.p ? b.p : "");
				kiln__df_buf_release(&b);
				free(toks);
				free(prog);
				return -1;
			}
			t = e;
		}
		prog[nprog].op = OP_LIT;
		prog[nprog++].r = t;
	}
	prog[nprog++].op = OP_MATCH;
	free(toks);
	out->prog = prog;
	out->n = nprog;
	return 0;
}

struct pthread {
	size_t pc, start;
};

struct pvm {
	const struct pattern *p;
	size_t *mark;           /* per pc: list generation + 1 */
	struct pthread *l[2];
	size_t nl[2];
	size_t *stack;
};

static void pvm_add(struct pvm *vm, int li, size_t gen, size_t pc, size_t start)
{
	size_t sp = 0;

	vm->stack[sp++] = pc;
	while (sp) {
		size_t q = vm->stack[--sp];
		if (vm->mark[q] == gen + 1)
			continue;
		vm->mark[q] = gen + 1;
		const struct pinst *in = &vm->p->prog[q];
		if (in->op == OP_JMP) {
			vm->stack[sp++] = in->x;
		} else if (in->op == OP_SPLIT) {
			vm->stack[sp++] = in->y;
			vm->stack[sp++] = in->x;
		} else {
			vm->l[li][vm->nl[li]].pc = q;
			vm->l[li][vm->nl[li]++].start = start;
		}
	}
}

/* Leftmost-first match of p in r[from..n): *ms..*me in runes. */
static int pattern_search(const struct pattern *p, const int32_t *r, size_t n,
			  size_t from, bool anchored, size_t *ms, size_t *me)
{
	struct pvm vm = { .p = p };
	int found = 0, cur = 0;

	vm.mark = calloc(p->n, sizeof(*vm.mark));
	vm.l[0] = malloc(p->n * sizeof(struct pthread));
	vm.l[1] = malloc(p->n * sizeof(struct pthread));
	vm.stack = malloc((2 * p->n + 2) * sizeof(size_t));
	if (!vm.mark || !vm.l[0] || !vm.l[1] || !vm.stack) {
		found = -1;
		goto out;
	}
	for (size_t i = from;; i++) {
		int nxt = 1 - cur;
		if (!found && (!anchored || i == from))
			pvm_add(&vm, cur, i - from, 0, i);
		if (vm.nl[cur] == 0)
			break;
		vm.nl[nxt] = 0;
		for (size_t k = 0; k < vm.nl[cur]; k++) {
			const struct pthread *t = &vm.l[cur][k];
			const struct pinst *in = &p->prog[t->pc];
			if (in->op == OP_MATCH) {
				found = 1;
				*ms = t->start;
				*me = i;
				break;
			}
			if (i >= n)
				continue;
			if ((in->op == OP_LIT && r[i] == in->r) ||
			    (in->op == OP_ANY && r[i] != '\n'))
				pvm_add(&vm, nxt, i - from + 1, t->pc + 1, t->start);
		}
		vm.nl[cur] = 0;
		if (i >= n)
			break;
		cur = nxt;
	}
out:
	free(vm.mark);
	free(vm.l[0]);
	free(vm.l[1]);
	free(vm.stack);
	return found;
}

/* ---- the lexer ---- */

enum fkind { FK_WORD, FK_DQUOTE, FK_DOLLAR };
enum dstage { DS_START, DS_WORD, DS_PATTERN, DS_REPL, DS_BUSY };

struct frame {
	enum fkind kind;
	struct df_buf res;
	/* FK_WORD */
	int32_t stop;
	bool prev_raw;
	bool in_word;
	/* FK_DOLLAR */
	enum dstage stage;
	char *name;
	int32_t mod;
	bool null_unset;
	bool replace_all;
	struct df_buf chs;
	char *pattern;
};

struct strset {
	char **keys;
	size_t n, cap; /* cap: a power of two, or 0 */
	char **order;  /* insertion order */
};

struct lexer {
	const char *s;
	size_t n, pos;
	int32_t esc;
	struct df_lex_opts o;
	bool raw_escapes;
	df_lookup_fn lookup;
	df_unset_fn unset;
	void *ctx;
	size_t *budget;
	bool over, failed, oom;
	size_t fail_frame;
	char *err;
	size_t errlen;
	struct df_buf wbuf;     /* Go's shared shellWord.wordsBuffer */
	char **words;           /* the top frame's words */
	size_t n_words, cap_words;
	struct frame *fr;
	size_t nfr, capfr;
	struct strset unset_names;
	bool done;
	bool want_words;        /* ProcessWords: keep the word buffer */
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Adds key (copied) unless present. 1 added, 0 present, -1 oom. */
static int strset_add(struct strset *set, const char *key)
{
	if ((set->n + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		char **keys = calloc(cap, sizeof(*keys));
		char **order = realloc(set->order, cap * sizeof(*order));
		if (!keys || !order) {
			free(keys);
			if (order)
				set->order = order;
			return -1;
		}
		set->order = order;
		for (size_t i = 0; i < set->cap; i++) {
			if (!set->keys[i])
				continue;
			size_t j = str_hash(set->keys[i]) & (cap - 1);
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = set->keys[i];
		}
		free(set->keys);
		set->keys = keys;
		set->cap = cap;
	}
	size_t j = str_hash(key) & (set->cap - 1);
	while (set->keys[j]) {
		if (strcmp(set->keys[j], key) == 0)
			return 0;
		j = (j + 1) & (set->cap - 1);
	}
	char *k = strdup(key);
	if (!k)
		return -1;
	set->keys[j] = k;
	set->order[set->n++] = k;
	return 1;
}

static void strset_release(struct strset *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->order[i]);
	free(set->keys);
	free(set->order);
	memset(set, 0, sizeof(*set));
}

static void lx_fail(struct lexer *lx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void lx_fail(struct lexer *lx, const char *fmt, ...)
{
	va_list ap;

	if (lx->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(lx->err, lx->errlen, fmt, ap);
	va_end(ap);
	lx->failed = true;
	lx->fail_frame = lx->nfr ? lx->nfr - 1 : 0;
}

static bool lx_charge(struct lexer *lx, size_t n)
{
	if (n > *lx->budget) {
		lx->over = true;
		return false;
	}
	*lx->budget -= n;
	return true;
}

static void lx_add(struct lexer *lx, struct df_buf *b, const char *s, size_t n)
{
	if (lx_charge(lx, n))
		kiln__df_buf_add(b, s, n);
}

static void lx_addrune(struct lexer *lx, struct df_buf *b, int32_t r)
{
	if (lx_charge(lx, 4))
		kiln__df_buf_addrune(b, r);
}

static int32_t lx_peek(struct lexer *lx)
{
	int32_t r;

	if (lx->pos >= lx->n)
		return DF_EOF;
	kiln__df_utf8_decode(lx->s + lx->pos, lx->n - lx->pos, &r);
	return r;
}

static int32_t lx_next(struct lexer *lx)
{
	int32_t r;

	if (lx->pos >= lx->n)
		return DF_EOF;
	lx->pos += kiln__df_utf8_decode(lx->s + lx->pos, lx->n - lx->pos, &r);
	return r;
}

static struct frame *lx_push(struct lexer *lx, enum fkind kind)
{
	if (lx->nfr == lx->capfr) {
		size_t cap = lx->capfr ? lx->capfr * 2 : 8;
		struct frame *fr = realloc(lx->fr, cap * sizeof(*fr));
		if (!fr) {
			lx->oom = true;
			return NULL;
		}
		lx->fr = fr;
		lx->capfr = cap;
	}
	struct frame *f = &lx->fr[lx->nfr++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	return f;
}

static void frame_release(struct frame *f)
{
	kiln__df_buf_release(&f->res);
	kiln__df_buf_release(&f->chs);
	free(f->name);
	free(f->pattern);
}

/* processStopOn: a word frame, with Go's shared word buffer reset. */
static void lx_push_word(struct lexer *lx, int32_t stop, bool raw)
{
	struct frame *f = lx_push(lx, FK_WORD);

	if (!f)
		return;
	f->stop = stop;
	f->prev_raw = lx->raw_escapes;
	lx->raw_escapes = raw;
	kiln__df_buf_reset(&lx->wbuf);
}

/* Word-splitting helpers (Go's wordsStruct) for frame index fi. */
static void words_flush(struct lexer *lx, size_t fi)
{
	if (!lx->want_words)
		return;
	if (fi == 0) {
		if (lx->n_words == lx->cap_words) {
			size_t cap = lx->cap_words ? lx->cap_words * 2 : 8;
			char **w = realloc(lx->words, cap * sizeof(*w));
			if (!w) {
				lx->oom = true;
				return;
			}
			lx->words = w;
			lx->cap_words = cap;
		}
		char *w = strdup(lx->wbuf.p ? lx->wbuf.p : "");
		if (!w) {
			lx->oom = true;
			return;
		}
		lx->words[lx->n_words++] = w;
	}
	kiln__df_buf_reset(&lx->wbuf);
	lx->fr[fi].in_word = false;
}

static void words_add_raw(struct lexer *lx, size_t fi, const char *s, size_t n)
{
	if (!lx->want_words)
		return;
	lx_add(lx, &lx->wbuf, s, n);
	lx->fr[fi].in_word = true;
}

static void words_add_rawrune(struct lexer *lx, size_t fi, int32_t r)
{
	if (!lx->want_words)
		return;
	lx_addrune(lx, &lx->wbuf, r);
	lx->fr[fi].in_word = true;
}

static void words_add_char(struct lexer *lx, size_t fi, int32_t r)
{
	if (!lx->want_words)
		return;
	if (kiln__df_is_space(r)) {
		if (lx->fr[fi].in_word && lx->wbuf.len != 0)
			words_flush(lx, fi);
	} else {
		words_add_rawrune(lx, fi, r);
	}
}

static void words_add_string(struct lexer *lx, size_t fi, const char *s, size_t n)
{
	if (!lx->want_words)
		return;
	for (size_t i = 0; i < n;) {
		int32_t r;
		i += kiln__df_utf8_decode(s + i, n - i, &r);
		words_add_char(lx, fi, r);
	}
}

static void words_get(struct lexer *lx, size_t fi)
{
	if (!lx->want_words)
		return;
	if (lx->wbuf.len > 0)
		words_flush(lx, fi);
}

/* getEnv: the value or NULL; an unset name is remembered for `unset`. */
static const char *lx_getenv(struct lexer *lx, const char *name)
{
	const char *v = lx->lookup ? lx->lookup(lx->ctx, name) : NULL;

	if (!v && lx->unset && strset_add(&lx->unset_names, name) < 0)
		lx->oom = true;
	return v;
}

static char *lx_name(struct lexer *lx)
{
	struct df_buf b = {0};
	char *s;

	while (lx_peek(lx) != DF_EOF) {
		int32_t ch = lx_peek(lx);
		if (b.len == 0 && kiln__df_is_digit(ch)) {
			while (lx_peek(lx) != DF_EOF && kiln__df_is_digit(lx_peek(lx)))
				kiln__df_buf_addrune(&b, lx_next(lx));
			break;
		}
		if (b.len == 0 && (ch == '@' || ch == '*' || ch == '#' ||
				   ch == '?' || ch == '-' || ch == '$' ||
				   ch == '!' || ch == '0')) {
			kiln__df_buf_addrune(&b, lx_next(lx));
			break;
		}
		if (!kiln__df_is_letter(ch) && !kiln__df_is_digit(ch) && ch != '_')
			break;
		kiln__df_buf_addrune(&b, lx_next(lx));
	}
	s = kiln__df_buf_detach(&b);
	if (!s)
		lx->oom = true;
	return s;
}

/* Hands value (malloc'd, taken) from the top frame to its parent and pops
 * the top frame. */
static void lx_deliver(struct lexer *lx, char *value);

static void lx_pop(struct lexer *lx)
{
	struct frame *f = &lx->fr[lx->nfr - 1];

	if (f->kind == FK_WORD)
		lx->raw_escapes = f->prev_raw;
	frame_release(f);
	lx->nfr--;
}

static char *xstrcat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (!s)
		return NULL;
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/* trimPrefix (suffix=false) / trimSuffix of value by pattern word. */
static char *lx_trim(struct lexer *lx, const char *word, const char *value,
		     bool greedy, bool suffix)
{
	struct df_buf pw = {0}, vw = {0};
	int32_t *pr = NULL, *vr = NULL;
	size_t *voff = NULL, np, nv, ms, me;
	struct pattern pat = {0};
	char *res = NULL, msg[200];
	const char *pword = word, *val = value;
	size_t vlen = strlen(value);
	int m;

	if (suffix) {
		/* reversePattern keeps "\x" pairs; reverseString goes by runes */
		np = to_runes(word, strlen(word), &pr, NULL);
		if (np == (size_t)-1)
			goto oom;
		int32_t *out = malloc((np + 1) * sizeof(*out));
		if (!out)
			goto oom;
		for (size_t i = 0; i < np;) {
			size_t o = np - 1 - i;
			if (pr[i] == '\\' && i != np - 1) {
				out[o - 1] = pr[i];
				out[o] = pr[i + 1];
				i += 2;
			} else {
				out[o] = pr[i];
				i++;
			}
		}
		for (size_t i = 0; i < np; i++)
			kiln__df_buf_addrune(&pw, out[i]);
		free(out);
		nv = to_runes(value, vlen, &vr, NULL);
		if (nv == (size_t)-1)
			goto oom;
		for (size_t i = nv; i-- > 0;)
			kiln__df_buf_addrune(&vw, vr[i]);
		free(vr);
		vr = NULL;
		pword = pw.p ? pw.p : "";
		val = vw.p ? vw.p : "";
		vlen = vw.len;
		if (pw.oom || vw.oom)
			goto oom;
	}
	if (pattern_compile(pword, strlen(pword), greedy, &pat, msg, sizeof(msg))) {
		lx_fail(lx, "invalid pattern (%s) in substitution: %s", pword, msg);
		goto out;
	}
	nv = to_runes(val, vlen, &vr, &voff);
	if (nv == (size_t)-1)
		goto oom;
	m = pattern_search(&pat, vr, nv, 0, true, &ms, &me);
	if (m < 0)
		goto oom;
	{
		size_t from = m ? voff[me] : 0;
		if (!suffix) {
			res = strdup(val + from);
		} else {
			int32_t *rr = NULL;
			struct df_buf b = {0};
			size_t nr = to_runes(val + from, vlen - from, &rr, NULL);
			if (nr == (size_t)-1)
				goto oom;
			for (size_t i = nr; i-- > 0;)
				kiln__df_buf_addrune(&b, rr[i]);
			free(rr);
			res = kiln__df_buf_detach(&b);
		}
		if (!res)
			goto oom;
	}
	goto out;
oom:
	lx->oom = true;
out:
	free(pat.prog);
	free(pr);
	free(vr);
	free(voff);
	kiln__df_buf_release(&pw);
	kiln__df_buf_release(&vw);
	return res;
}

/* Go's Regexp.expand of a ReplaceAllString template, with group 0 only. */
static void expand_template(struct lexer *lx, struct df_buf *out, const char *t,
			    const char *m, size_t mlen)
{
	size_t tl = strlen(t);

	for (size_t i = 0; i < tl;) {
		const char *d = memchr(t + i, '$', tl - i);
		if (!d) {
			lx_add(lx, out, t + i, tl - i);
			return;
		}
		lx_add(lx, out, t + i, (size_t)(d - (t + i)));
		i = (size_t)(d - t) + 1;
		if (i < tl && t[i] == '$') {
			lx_add(lx, out, "$", 1);
			i++;
			continue;
		}
		/* extract(): {name} or name of letters, digits, '_' */
		size_t j = i;
		bool brace = false;
		if (j < tl && t[j] == '{') {
			brace = true;
			j++;
		}
		size_t ns = j;
		while (j < tl) {
			int32_t r;
			size_t w = kiln__df_utf8_decode(t + j, tl - j, &r);
			if (!kiln__df_is_letter(r) && !kiln__df_is_digit(r) && r != '_')
				break;
			j += w;
		}
		size_t nl = j - ns;
		if (nl == 0 || (brace && (j >= tl || t[j] != '}'))) {
			lx_add(lx, out, "$", 1);
			continue;
		}
		if (brace)
			j++;
		/* only "$0" (the whole match) names a group that exists */
		if (nl == 1 && t[ns] == '0')
			lx_add(lx, out, m, mlen);
		i = j;
	}
}

/* ${name/pattern/replacement} and ${name//pattern/replacement}. */
static char *lx_replace(struct lexer *lx, const char *pattern, const char *repl,
			const char *value, bool all)
{
	struct pattern pat = {0};
	int32_t *vr = NULL;
	size_t *off = NULL, vlen = strlen(value), nv, ms, me;
	struct df_buf out = {0};
	char msg[200], *res = NULL;
	int m;

	if (pattern_compile(pattern, strlen(pattern), true, &pat, msg, sizeof(msg))) {
		lx_fail(lx, "invalid pattern (%s) in substitution: %s", pattern, msg);
		return NULL;
	}
	nv = to_runes(value, vlen, &vr, &off);
	if (nv == (size_t)-1)
		goto oom;
	if (!all) {
		m = pattern_search(&pat, vr, nv, 0, false, &ms, &me);
		if (m < 0)
			goto oom;
		if (!m) {
			lx_add(lx, &out, value, vlen);
		} else {
			lx_add(lx, &out, value, off[ms]);
			lx_add(lx, &out, repl, strlen(repl));
			lx_add(lx, &out, value + off[me], vlen - off[me]);
		}
	} else {
		size_t last = 0, pos = 0;
		while (pos <= nv && !lx->over) {
			m = pattern_search(&pat, vr, nv, pos, false, &ms, &me);
			if (m < 0)
				goto oom;
			if (!m)
				break;
			lx_add(lx, &out, value + off[last], off[ms] - off[last]);
			if (me > last || ms == 0)
				expand_template(lx, &out, repl, value + off[ms],
						off[me] - off[ms]);
			last = me;
			size_t width = pos < nv ? 1 : 0;
			if (pos + width > me)
				pos += width;
			else if (pos + 1 > me)
				pos++;
			else
				pos = me;
		}
		lx_add(lx, &out, value + off[last], vlen - off[last]);
	}
	res = kiln__df_buf_detach(&out);
	if (!res)
		goto oom;
	goto done;
oom:
	lx->oom = true;
	kiln__df_buf_release(&out);
done:
	free(pat.prog);
	free(vr);
	free(off);
	return res;
}

/* The ${name<mod>word} result, once word is known (processDollar). */
static void lx_dollar_word(struct lexer *lx, char *word)
{
	struct frame *f = &lx->fr[lx->nfr - 1];
	const char *chs = f->chs.p ? f->chs.p : "";
	const char *value = lx_getenv(lx, f->name);
	bool set = value != NULL;
	bool empty = !set || (f->null_unset && value[0] == '\0');
	char *res = NULL;

	f->stage = DS_BUSY;
	if (!set && lx->o.skip_unset_env) {
		struct df_buf b = {0};
		kiln__df_buf_addstr(&b, "${");
		kiln__df_buf_addstr(&b, f->name);
		kiln__df_buf_addstr(&b, chs);
		kiln__df_buf_addstr(&b, word);
		kiln__df_buf_addstr(&b, "}");
		free(word);
		res = kiln__df_buf_detach(&b);
		if (!res)
			lx->oom = true;
		lx_deliver(lx, res);
		return;
	}
	if (!value)
		value = "";
	switch (f->mod) {
	case '-':
		res = empty ? word : strdup(value);
		if (res != word)
			free(word);
		break;
	case '+':
		res = empty ? strdup("") : word;
		if (res != word)
			free(word);
		break;
	case '?':
		if (!set) {
			lx_fail(lx, "%s: %s", f->name,
				word[0] ? word : "is not allowed to be unset");
			free(word);
			return;
		}
		if (f->null_unset && value[0] == '\0') {
			lx_fail(lx, "%s: %s", f->name,
				word[0] ? word : "is not allowed to be empty");
			free(word);
			return;
		}
		free(word);
		res = strdup(value);
		break;
	case '%':
	case '#': {
		bool greedy = false;
		const char *w = word;
		if (w[0] != '\0' && (unsigned char)w[0] == (unsigned)f->mod) {
			greedy = true;
			w++;
		}
		res = lx_trim(lx, w, value, greedy, f->mod == '%');
		free(word);
		if (lx->failed)
			return;
		break;
	}
	default:
		free(word);
		lx_fail(lx, "unsupported modifier (%s) in substitution", chs);
		return;
	}
	if (!res) {
		lx->oom = true;
		return;
	}
	lx_deliver(lx, res);
}

static void lx_deliver(struct lexer *lx, char *value)
{
	enum fkind from = lx->fr[lx->nfr - 1].kind;
	size_t vlen;

	if (!value) {
		lx->oom = true;
		return;
	}
	lx_pop(lx);
	struct frame *p = &lx->fr[lx->nfr - 1];
	size_t pi = lx->nfr - 1;
	vlen = strlen(value);
	switch (p->kind) {
	case FK_WORD:
		lx_add(lx, &p->res, value, vlen);
		if (from == FK_DOLLAR)
			words_add_string(lx, pi, value, vlen);
		else
			words_add_raw(lx, pi, value, vlen);
		free(value);
		break;
	case FK_DQUOTE:
		lx_add(lx, &p->res, value, vlen);
		free(value);
		break;
	case FK_DOLLAR:
		if (p->stage == DS_WORD) {
			lx_dollar_word(lx, value);
		} else if (p->stage == DS_PATTERN) {
			p->pattern = value;
			p->stage = DS_REPL;
			lx_push_word(lx, '}', true);
		} else {
			struct frame *f = p;
			const char *v = lx_getenv(lx, f->name);
			char *res;
			f->stage = DS_BUSY;
			if (!v && lx->o.skip_unset_env) {
				struct df_buf b = {0};
				kiln__df_buf_addstr(&b, "${");
				kiln__df_buf_addstr(&b, f->name);
				kiln__df_buf_addstr(&b, "/");
				kiln__df_buf_addstr(&b, f->pattern);
				kiln__df_buf_addstr(&b, "/");
				kiln__df_buf_addstr(&b, value);
				kiln__df_buf_addstr(&b, "}");
				res = kiln__df_buf_detach(&b);
			} else {
				res = lx_replace(lx, f->pattern, value, v ? v : "",
						 f->replace_all);
			}
			free(value);
			if (lx->failed || lx->oom) {
				free(res);
				return;
			}
			lx_deliver(lx, res);
		}
		break;
	}
}

static void lx_dollar_start(struct lexer *lx)
{
	struct frame *f = &lx->fr[lx->nfr - 1];
	int32_t ch;
	char *name;

	lx_next(lx); /* '$' */
	if (lx_peek(lx) != '{') {
		name = lx_name(lx);
		if (!name)
			return;
		if (name[0] == '\0') {
			free(name);
			lx_deliver(lx, strdup("$"));
			return;
		}
		const char *v = lx_getenv(lx, name);
		char *res;
		if (!v && lx->o.skip_unset_env)
			res = xstrcat3("$", name, "");
		else
			res = strdup(v ? v : "");
		free(name);
		lx_deliver(lx, res);
		return;
	}
	lx_next(lx); /* '{' */
	ch = lx_peek(lx);
	if (ch == DF_EOF) {
		lx_fail(lx, "syntax error: missing '}'");
		return;
	}
	if (ch == '{' || ch == '}' || ch == ':') {
		lx_fail(lx, "syntax error: bad substitution");
		return;
	}
	f->name = lx_name(lx);
	if (!f->name)
		return;
	ch = lx_next(lx);
	kiln__df_buf_addrune(&f->chs, ch);
	switch (ch) {
	case '}': {
		const char *v = lx_getenv(lx, f->name);
		char *res;
		if (!v && lx->o.skip_unset_env)
			res = xstrcat3("${", f->name, "}");
		else
			res = strdup(v ? v : "");
		lx_deliver(lx, res);
		return;
	}
	case ':':
		f->null_unset = true;
		ch = lx_next(lx);
		kiln__df_buf_addrune(&f->chs, ch);
		/* Go's fallthrough: any character after ':' is the modifier */
		__attribute__((fallthrough));
	case '+': case '-': case '?': case '#': case '%': {
		bool raw = ch == '#' || ch == '%';
		if (f->null_unset && raw) {
			lx_fail(lx, "unsupported modifier (%s) in substitution",
				f->chs.p ? f->chs.p : "");
			return;
		}
		f->mod = ch;
		f->stage = DS_WORD;
		lx_push_word(lx, '}', raw);
		return;
	}
	case '/':
		if (lx_peek(lx) == '/') {
			f->replace_all = true;
			lx_next(lx);
		}
		f->stage = DS_PATTERN;
		lx_push_word(lx, '/', true);
		return;
	default:
		lx_fail(lx, "unsupported modifier (%s) in substitution",
			f->chs.p ? f->chs.p : "");
		return;
	}
}

static void lx_step_word(struct lexer *lx)
{
	size_t fi = lx->nfr - 1;
	struct frame *f = &lx->fr[fi];
	int32_t ch = lx_peek(lx);

	if (ch == DF_EOF) {
		if (f->stop != DF_EOF) {
			struct df_buf b = {0};
			kiln__df_buf_addrune(&b, f->stop);
			lx_fail(lx, "unexpected end of statement while looking for matching %s",
				b.p ? b.p : "");
			kiln__df_buf_release(&b);
			return;
		}
		words_get(lx, fi);
		lx->done = true;
		return;
	}
	if (f->stop != DF_EOF && ch == f->stop) {
		lx_next(lx);
		words_get(lx, fi);
		char *v = kiln__df_buf_detach(&f->res);
		lx_deliver(lx, v);
		return;
	}
	if (ch == '$') {
		struct frame *d = lx_push(lx, FK_DOLLAR);
		if (d)
			lx_dollar_start(lx);
		return;
	}
	if (ch == '<') {
		char tmp[3] = "<<";
		lx_next(lx);
		if (lx_peek(lx) != '<') {
			lx_add(lx, &f->res, "<", 1);
			words_add_raw(lx, fi, "<", 1);
			return;
		}
		lx_next(lx);
		lx_add(lx, &f->res, tmp, 2);
		words_add_raw(lx, fi, tmp, 2);
		while ((ch = lx_peek(lx)) == '\t' || ch == '\r' || ch == ' ') {
			char c = (char)lx_next(lx);
			lx_add(lx, &f->res, &c, 1);
			words_add_raw(lx, fi, &c, 1);
		}
		return;
	}
	if (ch == '\'' && !lx->o.skip_process_quotes) {
		struct df_buf q = {0};
		lx_next(lx);
		if (lx->o.raw_quotes)
			kiln__df_buf_addc(&q, '\'');
		for (;;) {
			ch = lx_next(lx);
			if (ch == DF_EOF) {
				kiln__df_buf_release(&q);
				lx_fail(lx, "unexpected end of statement while looking for matching single-quote");
				return;
			}
			if (ch == '\'') {
				if (lx->o.raw_quotes)
					kiln__df_buf_addc(&q, '\'');
				break;
			}
			kiln__df_buf_addrune(&q, ch);
		}
		if (q.oom)
			lx->oom = true;
		lx_add(lx, &f->res, q.p ? q.p : "", q.len);
		words_add_raw(lx, fi, q.p ? q.p : "", q.len);
		kiln__df_buf_release(&q);
		return;
	}
	if (ch == '"' && !lx->o.skip_process_quotes) {
		lx_next(lx);
		struct frame *d = lx_push(lx, FK_DQUOTE);
		if (d && lx->o.raw_quotes)
			lx_add(lx, &d->res, "\"", 1);
		return;
	}
	ch = lx_next(lx);
	if (ch == lx->esc) {
		if (lx->raw_escapes) {
			words_add_rawrune(lx, fi, ch);
			lx_addrune(lx, &f->res, ch);
		}
		ch = lx_next(lx);
		if (ch == DF_EOF)
			return; /* the loop ends on EOF next */
		words_add_rawrune(lx, fi, ch);
	} else {
		words_add_char(lx, fi, ch);
	}
	lx_addrune(lx, &f->res, ch);
}

static void lx_step_dquote(struct lexer *lx)
{
	struct frame *f = &lx->fr[lx->nfr - 1];
	int32_t ch = lx_peek(lx);

	if (ch == DF_EOF) {
		lx_fail(lx, "unexpected end of statement while looking for matching double-quote");
		return;
	}
	if (ch == '"') {
		lx_next(lx);
		if (lx->o.raw_quotes)
			lx_add(lx, &f->res, "\"", 1);
		lx_deliver(lx, kiln__df_buf_detach(&f->res));
		return;
	}
	if (ch == '$') {
		if (lx_push(lx, FK_DOLLAR))
			lx_dollar_start(lx);
		return;
	}
	ch = lx_next(lx);
	if (ch == lx->esc) {
		if (lx->raw_escapes)
			lx_addrune(lx, &f->res, ch);
		int32_t p = lx_peek(lx);
		if (p == DF_EOF)
			return; /* "ignore \ at end of word": the next step fails */
		if (p == '"' || p == '$' || p == lx->esc)
			ch = lx_next(lx);
	}
	lx_addrune(lx, &f->res, ch);
}

int kiln__df_lex(const char *word, size_t len, const struct df_lex_opts *opts,
		 bool want_words, df_lookup_fn lookup, df_unset_fn unset,
		 void *ctx, size_t *budget, struct df_lex_out *out,
		 char *err, size_t errlen)
{
	struct lexer lx = {
		.s = word, .n = len, .esc = (unsigned char)opts->escape,
		.o = *opts, .raw_escapes = opts->raw_escapes,
		.lookup = lookup, .unset = unset, .ctx = ctx,
		.budget = budget, .err = err, .errlen = errlen,
		.want_words = want_words,
	};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len >= 3 && memcmp(word, "\xEF\xBB\xBF", 3) == 0)
		lx.pos = 3;
	lx_push_word(&lx, DF_EOF, opts->raw_escapes);
	while (!lx.failed && !lx.oom && !lx.done) {
		if (lx.over) {
			lx_fail(&lx, "the expanded value exceeds the size limit");
			break;
		}
		switch (lx.fr[lx.nfr - 1].kind) {
		case FK_WORD:
			lx_step_word(&lx);
			break;
		case FK_DQUOTE:
			lx_step_dquote(&lx);
			break;
		case FK_DOLLAR: /* on top only while it starts */
			if (lx.fr[lx.nfr - 1].stage == DS_START)
				lx_dollar_start(&lx);
			else
				lx_fail(&lx, "internal error: lexer state");
			break;
		}
		if (lx.wbuf.oom || lx.fr[lx.nfr - 1].res.oom)
			lx.oom = true;
	}
	if (lx.oom && !lx.failed) {
		snprintf(err, errlen, "out of memory");
		lx.failed = true;
	} else if (lx.failed) {
		/* processDollar turns an error met at the end of the input into
		 * "missing '}'" (or "missing '/'"), frame by frame outwards */
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", err);
		if (lx.pos >= lx.n) {
			for (size_t i = lx.fail_frame; i-- > 0;) {
				const struct frame *f = &lx.fr[i];
				if (f->kind != FK_DOLLAR)
					continue;
				if (f->stage == DS_WORD || f->stage == DS_REPL)
					snprintf(msg, sizeof(msg), "syntax error: missing '}'");
				else if (f->stage == DS_PATTERN)
					snprintf(msg, sizeof(msg), "syntax error: missing '/' in ${}");
			}
		}
		struct df_buf q = {0};
		kiln__df_goquote(&q, word, len);
		snprintf(err, errlen, "failed to process %s: %s", q.p ? q.p : "\"\"", msg);
		kiln__df_buf_release(&q);
	} else {
		out->word = kiln__df_buf_detach(&lx.fr[0].res);
		if (!out->word) {
			snprintf(err, errlen, "out of memory");
		} else {
			rc = 0;
			if (want_words) {
				out->words = lx.words;
				out->n_words = lx.n_words;
				lx.words = NULL;
				lx.n_words = 0;
			}
			if (unset)
				for (size_t i = 0; i < lx.unset_names.n; i++)
					unset(ctx, lx.unset_names.order[i]);
		}
	}
	while (lx.nfr)
		lx_pop(&lx);
	free(lx.fr);
	for (size_t i = 0; i < lx.n_words; i++)
		free(lx.words[i]);
	free(lx.words);
	kiln__df_buf_release(&lx.wbuf);
	strset_release(&lx.unset_names);
	if (rc)
		kiln__df_lex_out_release(out);
	return rc;
}

void kiln__df_lex_out_release(struct df_lex_out *out)
{
	free(out->word);
	for (size_t i = 0; i < out->n_words; i++)
		free(out->words[i]);
	free(out->words);
	memset(out, 0, sizeof(*out));
}

/* What one df_expand() call may produce at most. */
#define DF_EXPAND_MAX ((size_t)64 << 20)

char *df_expand(const char *word, char escape, df_lookup_fn lookup,
		df_unset_fn unset, void *ctx, struct df_error *err)
{
	struct df_lex_opts o = { .escape = escape ? escape : '\\' };
	struct df_lex_out out;
	struct df_error local;
	size_t budget = DF_EXPAND_MAX;

	if (!err)
		err = &local;
	if (!word)
		word = "";
	if (kiln__df_lex(word, strlen(word), &o, false, lookup, unset, ctx,
			 &budget, &out, err->message, sizeof(err->message))) {
		err->line = 0;
		err->column = 0;
		return NULL;
	}
	return out.word;
}
