/* subst.c: melange's ${{ name }} substitution (MELANGE.md 2.2). A
 * reference is "${{", optional spaces, a name of [A-Za-z0-9._-]+,
 * optional spaces, "}}". Shell's ${FOO} is not touched. */
#include <string.h>

#include "melange.h"

void mel_scope_set(struct mel_pool *p, struct mel_scope *s, const char *key, const char *value)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0) {
			s->values[i] = value;
			return;
		}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		const char **k = mel_alloc(p, cap * sizeof(*k));
		const char **v = mel_alloc(p, cap * sizeof(*v));
		if (s->n) {
			memcpy(k, s->keys, s->n * sizeof(*k));
			memcpy(v, s->values, s->n * sizeof(*v));
		}
		s->keys = k;
		s->values = v;
		s->cap = cap;
	}
	s->keys[s->n] = key;
	s->values[s->n] = value;
	s->n++;
}

const char *mel_scope_get(const struct mel_scope *s, const char *name, size_t len)
{
	for (; s; s = s->parent)
		for (size_t i = s->n; i-- > 0;)
			if (strlen(s->keys[i]) == len && memcmp(s->keys[i], name, len) == 0)
				return s->values[i];
	return NULL;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* A double-quoted literal of the if: language for v. */
static void add_quoted(struct mel_buf *b, const char *v)
{
	mel_buf_add(b, "\"", 1);
	for (; *v; v++) {
		switch (*v) {
		case '"': mel_buf_add(b, "\\\"", 2); break;
		case '\\': mel_buf_add(b, "\\\\", 2); break;
		case '\n': mel_buf_add(b, "\\n", 2); break;
		case '\t': mel_buf_add(b, "\\t", 2); break;
		default: mel_buf_add(b, v, 1);
		}
	}
	mel_buf_add(b, "\"", 1);
}

int mel_subst(struct mel_pool *p, const char *in, enum mel_subst_mode mode,
	      const struct mel_scope *scope, const char **out, const char **bad)
{
	if (!in) {
		*out = NULL;
		return 0;
	}
	if (!strstr(in, "${{")) {
		*out = in;
		return 0;
	}
	struct mel_buf b = { 0 };
	mel_buf_add(&b, "", 0);
	const char *s = in;
	while (*s) {
		const char *ref = strstr(s, "${{");
		if (!ref) {
			mel_buf_adds(&b, s);
			break;
		}
		mel_buf_add(&b, s, (size_t)(ref - s));
		const char *q = ref + 3;
		while (*q == ' ')
			q++;
		const char *name = q;
		while (name_char(*q))
			q++;
		size_t nlen = (size_t)(q - name);
		while (*q == ' ')
			q++;
		if (nlen == 0 || q[0] != '}' || q[1] != '}') {
			/* malformed: an error once it must be resolved */
			if (mode != MEL_SUBST_PARSE) {
				const char *end = strstr(ref, "}}");
				*bad = mel_strndup(p, ref, end ? (size_t)(end + 2 - ref)
							       : strnlen(ref, 40));
				mel_buf_free(&b);
				return -1;
			}
			mel_buf_add(&b, ref, 3);
			s = ref + 3;
			continue;
		}
		const char *v = mel_scope_get(scope, name, nlen);
		if (!v) {
			if (mode != MEL_SUBST_PARSE) {
				*bad = mel_strndup(p, name, nlen);
				mel_buf_free(&b);
				return -1;
			}
			mel_buf_add(&b, ref, (size_t)(q + 2 - ref));
		} else if (mode == MEL_SUBST_QUOTED) {
			add_quoted(&b, v);
		} else {
			mel_buf_adds(&b, v);
		}
		s = q + 2;
	}
	*out = mel_strndup(p, b.s, b.len);
	mel_buf_free(&b);
	return 0;
}
