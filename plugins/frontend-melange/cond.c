/* cond.c: melange's `if:` condition language (MELANGE.md 2.5), a small
 * recursive-descent parser that evaluates as it goes:
 *
 *   expr       := atom ( ("&&" | "||") atom )*   -- equal precedence, left to right
 *   atom       := "(" expr ")" | comparison
 *   comparison := value ("==" | "!=") value
 *   value      := 'chars' | "chars" | ${{ name }}  -- a reference reads as ""
 *
 * Escapes in literals: \\ \' \" \n \t; any other \x stays as two characters.
 * Whitespace: space, tab, CR, LF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melange.h"

#define COND_DEPTH 100

struct cparser {
	const char *s;
	size_t i;
	int depth;
	char *msg;
	size_t msgsz;
	size_t *offset;
	bool failed;
};

static int fail(struct cparser *c, const char *what)
{
	if (!c->failed) {
		snprintf(c->msg, c->msgsz, "%s at offset %zu", what, c->i);
		if (c->offset)
			*c->offset = c->i;
		c->failed = true;
	}
	return -1;
}

static void skip_ws(struct cparser *c)
{
	while (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\r' ||
	       c->s[c->i] == '\n')
		c->i++;
}

/* A value into *buf (heap); returns 0 or -1. */
static int value(struct cparser *c, struct mel_buf *buf)
{
	skip_ws(c);
	char q = c->s[c->i];
	mel_buf_add(buf, "", 0);
	if (q == '\'' || q == '"') {
		c->i++;
		for (;;) {
			char ch = c->s[c->i];
			if (ch == '\0')
				return fail(c, "unterminated string");
			c->i++;
			if (ch == q)
				return 0;
			if (ch == '\\') {
				char e = c->s[c->i];
				const char *r = NULL;
				switch (e) {
				case '\\': r = "\\"; break;
				case '\'': r = "'"; break;
				case '"': r = "\""; break;
				case 'n': r = "\n"; break;
				case 't': r = "\t"; break;
				}
				if (r) {
					mel_buf_adds(buf, r);
					c->i++;
					continue;
				}
			}
			mel_buf_add(buf, &ch, 1);
		}
	}
	if (strncmp(c->s + c->i, "${{", 3) == 0) {
		const char *end = strstr(c->s + c->i, "}}");
		if (!end)
			return fail(c, "unterminated ${{");
		c->i = (size_t)(end + 2 - c->s);
		return 0; /* an unresolved reference is "" */
	}
	if (q == '\0')
		return fail(c, "unexpected end of expression, expected a value");
	return fail(c, "unexpected character, expected a quoted string");
}

static int expr(struct cparser *c, bool *out);

static int atom(struct cparser *c, bool *out)
{
	skip_ws(c);
	if (c->s[c->i] == '(') {
		if (++c->depth > COND_DEPTH)
			return fail(c, "parentheses nested too deeply");
		c->i++;
		if (expr(c, out) < 0)
			return -1;
		skip_ws(c);
		if (c->s[c->i] != ')')
			return fail(c, "expected ')'");
		c->i++;
		c->depth--;
		return 0;
	}
	struct mel_buf a = { 0 }, b = { 0 };
	int rc = value(c, &a);
	bool eq = false;
	if (rc == 0) {
		skip_ws(c);
		if (strncmp(c->s + c->i, "==", 2) == 0)
			eq = true;
		else if (strncmp(c->s + c->i, "!=", 2) != 0)
			rc = fail(c, "expected == or !=");
	}
	if (rc == 0) {
		c->i += 2;
		rc = value(c, &b);
	}
	if (rc == 0)
		*out = (strcmp(a.s, b.s) == 0) == eq;
	mel_buf_free(&a);
	mel_buf_free(&b);
	return rc;
}

static int expr(struct cparser *c, bool *out)
{
	if (atom(c, out) < 0)
		return -1;
	for (;;) {
		skip_ws(c);
		bool and_;
		if (strncmp(c->s + c->i, "&&", 2) == 0)
			and_ = true;
		else if (strncmp(c->s + c->i, "||", 2) == 0)
			and_ = false;
		else
			return 0;
		c->i += 2;
		bool rhs;
		if (atom(c, &rhs) < 0)
			return -1;
		*out = and_ ? (*out && rhs) : (*out || rhs);
	}
}

int mel_cond_eval(const char *s, bool *result, char *msg, size_t msgsz, size_t *offset)
{
	struct cparser c = { .s = s, .msg = msg, .msgsz = msgsz, .offset = offset };
	bool r = false;
	if (expr(&c, &r) < 0)
		return -1;
	skip_ws(&c);
	if (c.s[c.i] != '\0')
		return fail(&c, "unexpected text after the expression");
	*result = r;
	return 0;
}
