/*
 * parser_json.c: JSON for the Dockerfile parser.
 *
 * - The exec form: BuildKit hands `RUN ["a", "b"]` to Go's json.Unmarshal
 *   into []any. Which inputs count as JSON decides between the exec and
 *   the shell form, so this decoder follows Go's rules rather than
 *   jansson's: whitespace is " \t\n\r" only; nesting deeper than 10000 is
 *   invalid; invalid UTF-8 and bad surrogates become U+FFFD; a number that
 *   overflows a float64 makes the whole array invalid (shell form again).
 * - df_to_json(): the parse result as JSON (jansson), the golden-file format
 *   of tests/dockerfile/. Keys come in a fixed order; empty lists, false
 *   booleans and absent values of instructions are left out.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "parser_int.h"

/* ---- Go's json.Unmarshal for []any ---- */

#define JSON_MAX_DEPTH 10000

struct jp {
	const unsigned char *s;
	size_t n, i;
	bool overflow; /* a number out of float64 range */
	locale_t c_locale;
};

static void jp_ws(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
			       p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Checks a string at p->i (the opening quote). */
static int jp_string(struct jp *p)
{
	p->i++;
	while (p->i < p->n) {
		unsigned char c = p->s[p->i++];
		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c != '\\')
			continue;
		if (p->i >= p->n)
			return -1;
		c = p->s[p->i++];
		if (c == 'u') {
			for (int k = 0; k < 4; k++)
				if (p->i >= p->n || hexval(p->s[p->i++]) < 0)
					return -1;
		} else if (!strchr("\"\\/bfnrt", c)) {
			return -1;
		}
	}
	return -1;
}

static int jp_number(struct jp *p)
{
	size_t start = p->i;

	if (p->s[p->i] == '-')
		p->i++;
	if (p->i >= p->n)
		return -1;
	if (p->s[p->i] == '0') {
		p->i++;
	} else if (p->s[p->i] >= '1' && p->s[p->i] <= '9') {
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	} else {
		return -1;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return -1;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return -1;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	/* strconv.ParseFloat fails (and so does Unmarshal) past float64 */
	if (!p->overflow) {
		size_t len = p->i - start;
		char *tmp = malloc(len + 1);
		if (!tmp)
			return -2;
		memcpy(tmp, p->s + start, len);
		tmp[len] = '\0';
		double d = p->c_locale ? strtod_l(tmp, NULL, p->c_locale)
				       : strtod(tmp, NULL);
		if (isinf(d))
			p->overflow = true;
		free(tmp);
	}
	return 0;
}

static int jp_literal(struct jp *p)
{
	static const char *const lits[] = { "true", "false", "null" };

	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(lits[k]);
		if (p->n - p->i >= l && memcmp(p->s + p->i, lits[k], l) == 0) {
			p->i += l;
			return 0;
		}
	}
	return -1;
}

/* Decodes the (valid) string at s[i] (its opening quote) as Go does. */
static char *decode_string(const unsigned char *s, size_t i, bool *nul)
{
	struct df_buf b = {0};

	i++;
	for (;;) {
		unsigned char c = s[i];
		if (c == '"')
			break;
		if (c != '\\') {
			int32_t r;
			size_t w = kiln__df_utf8_decode((const char *)s + i, 4, &r);
			/* s is terminated by the closing quote, so 4 bytes are
			 * readable or the decoder stops at a non-continuation */
			if (r == (int32_t)DF_RUNE_ERROR && w == 1)
				kiln__df_buf_addrune(&b, r);
			else
				kiln__df_buf_add(&b, s + i, w);
			i += w;
			continue;
		}
		c = s[i + 1];
		i += 2;
		switch (c) {
		case 'b': kiln__df_buf_addc(&b, '\b'); break;
		case 'f': kiln__df_buf_addc(&b, '\f'); break;
		case 'n': kiln__df_buf_addc(&b, '\n'); break;
		case 'r': kiln__df_buf_addc(&b, '\r'); break;
		case 't': kiln__df_buf_addc(&b, '\t'); break;
		case 'u': {
			int32_t r = 0;
			for (int k = 0; k < 4; k++)
				r = r * 16 + hexval(s[i + (size_t)k]);
			i += 4;
			if (r >= 0xD800 && r < 0xE000) {
				int32_t r2 = -1;
				if (s[i] == '\\' && s[i + 1] == 'u') {
					r2 = 0;
					for (int k = 0; k < 4; k++) {
						int h = hexval(s[i + 2 + (size_t)k]);
						if (h < 0) {
							r2 = -1;
							break;
						}
						r2 = r2 * 16 + h;
					}
				}
				if (r < 0xDC00 && r2 >= 0xDC00 && r2 < 0xE000) {
					r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
					i += 6;
				} else {
					r = (int32_t)DF_RUNE_ERROR;
				}
			}
			if (r == 0)
				*nul = true;
			kiln__df_buf_addrune(&b, r);
			break;
		}
		default: /* '"', '\\', '/' */
			kiln__df_buf_addc(&b, (char)c);
			break;
		}
	}
	return kiln__df_buf_detach(&b);
}

int kiln__df_json_array(const char *rest, size_t len, char ***out, size_t *nout)
{
	struct jp p = { .s = (const unsigned char *)rest, .n = len };
	size_t depth = 0, *starts = NULL, nstarts = 0, capstarts = 0;
	char *stack = NULL; /* '[' or '{' per level */
	bool not_strings = false, nul = false;
	int rc = DF_JSON_INVALID;

	*out = NULL;
	*nout = 0;
	/* strings.TrimLeftFunc(rest, unicode.IsSpace), then a '[' */
	while (p.i < p.n) {
		int32_t r;
		size_t w = kiln__df_utf8_decode(rest + p.i, p.n - p.i, &r);
		if (!kiln__df_is_space(r))
			break;
		p.i += w;
	}
	if (p.i >= p.n || p.s[p.i] != '[')
		return DF_JSON_INVALID;
	p.c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	stack = malloc(JSON_MAX_DEPTH + 1);
	if (!stack) {
		rc = DF_JSON_OOM;
		goto out;
	}
	/* an iterative syntax check; the top level elements are noted */
	for (;;) {
		/* a value */
		jp_ws(&p);
		if (p.i >= p.n)
			goto out;
		if (depth == 1 && stack[0] == '[') {
			if (nstarts == capstarts) {
				size_t cap = capstarts ? capstarts * 2 : 8;
				size_t *ns = realloc(starts, cap * sizeof(*ns));
				if (!ns) {
					rc = DF_JSON_OOM;
					goto out;
				}
				starts = ns;
				capstarts = cap;
			}
			if (p.s[p.i] == '"')
				starts[nstarts++] = p.i;
			else
				not_strings = true;
		}
		unsigned char c = p.s[p.i];
		if (c == '[' || c == '{') {
			if (depth >= JSON_MAX_DEPTH)
				goto out;
			stack[depth++] = (char)c;
			p.i++;
			jp_ws(&p);
			if (p.i < p.n && p.s[p.i] == (c == '[' ? ']' : '}')) {
				p.i++;
				depth--;
				goto after_value;
			}
			if (c == '{')
				goto key;
			continue;
		} else if (c == '"') {
			if (jp_string(&p))
				goto out;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			int r = jp_number(&p);
			if (r == -2) {
				rc = DF_JSON_OOM;
				goto out;
			}
			if (r)
				goto out;
		} else if (jp_literal(&p)) {
			goto out;
		}
after_value:
		for (;;) {
			if (depth == 0)
				goto done;
			jp_ws(&p);
			if (p.i >= p.n)
				goto out;
			c = p.s[p.i++];
			if (c == ',')
				break;
			if ((c == ']' && stack[depth - 1] == '[') ||
			    (c == '}' && stack[depth - 1] == '{')) {
				depth--;
				continue;
			}
			goto out;
		}
		if (stack[depth - 1] == '[')
			continue;
key:
		jp_ws(&p);
		if (p.i >= p.n || p.s[p.i] != '"' || jp_string(&p))
			goto out;
		jp_ws(&p);
		if (p.i >= p.n || p.s[p.i] != ':')
			goto out;
		p.i++;
	}
done:
	jp_ws(&p);
	if (p.i != p.n || p.overflow)
		goto out;
	if (not_strings) {
		rc = DF_JSON_NOT_STRINGS;
		goto out;
	}
	*out = calloc(nstarts + 1, sizeof(char *));
	if (!*out) {
		rc = DF_JSON_OOM;
		goto out;
	}
	for (size_t k = 0; k < nstarts; k++) {
		(*out)[k] = decode_string(p.s, starts[k], &nul);
		if (!(*out)[k]) {
			rc = DF_JSON_OOM;
			*nout = k;
			goto fail;
		}
	}
	*nout = nstarts;
	if (nul) {
		rc = DF_JSON_NUL;
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	for (size_t k = 0; k < *nout; k++)
		free((*out)[k]);
	free(*out);
	*out = NULL;
	*nout = 0;
out:
	if (p.c_locale)
		freelocale(p.c_locale);
	free(stack);
	free(starts);
	return rc;
}

/* ---- df_to_json ---- */

/* A JSON string of s, invalid UTF-8 as U+FFFD (as Go's json.Marshal). */
static json_t *jstr(const char *s)
{
	struct df_buf b = {0};
	json_t *j;

	if (!s)
		return json_null();
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		int32_t r;
		size_t w = kiln__df_utf8_decode(s + i, n - i, &r);
		if (w == 1 && r == (int32_t)DF_RUNE_ERROR)
			kiln__df_buf_addrune(&b, r);
		else
			kiln__df_buf_add(&b, s + i, w);
		i += w;
	}
	j = json_stringn(b.p ? b.p : "", b.len);
	kiln__df_buf_release(&b);
	return j;
}

static json_t *jstrs(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jstr(v[i]));
	return a;
}

static json_t *jinstruction(const struct df_instruction *in)
{
	json_t *o = json_object();

	json_object_set_new(o, "line", json_integer(in->line));
	json_object_set_new(o, "end_line", json_integer(in->end_line));
	json_object_set_new(o, "column", json_integer(in->column));
	json_object_set_new(o, "kind", json_string(df_kind_name(in->kind)));
	json_object_set_new(o, "keyword", jstr(in->keyword));
	if (in->n_flags) {
		json_t *a = json_array();
		for (size_t i = 0; i < in->n_flags; i++) {
			const struct df_flag *f = &in->flags[i];
			json_t *fo = json_object();
			json_object_set_new(fo, "name", jstr(f->name));
			json_object_set_new(fo, "value", jstr(f->value));
			if (f->expanded)
				json_object_set_new(fo, "expanded", jstr(f->expanded));
			json_object_set_new(fo, "line", json_integer(f->line));
			json_object_set_new(fo, "column", json_integer(f->column));
			json_array_append_new(a, fo);
		}
		json_object_set_new(o, "flags", a);
	}
	if (in->json)
		json_object_set_new(o, "json", json_true());
	if (in->n_args)
		json_object_set_new(o, "args", jstrs(in->args, in->n_args));
	if (in->expanded)
		json_object_set_new(o, "expanded", jstrs(in->expanded, in->n_args));
	if (in->n_kvs) {
		json_t *a = json_array();
		for (size_t i = 0; i < in->n_kvs; i++) {
			const struct df_kv *kv = &in->kvs[i];
			json_t *ko = json_object();
			json_object_set_new(ko, "key", jstr(kv->key));
			json_object_set_new(ko, "value", jstr(kv->value));
			json_object_set_new(ko, "raw_value", jstr(kv->raw_value));
			if (kv->legacy)
				json_object_set_new(ko, "legacy", json_true());
			json_array_append_new(a, ko);
		}
		json_object_set_new(o, "kvs", a);
	}
	if (in->n_heredocs) {
		json_t *a = json_array();
		for (size_t i = 0; i < in->n_heredocs; i++) {
			const struct df_heredoc *h = &in->heredocs[i];
			json_t *ho = json_object();
			json_object_set_new(ho, "name", jstr(h->name));
			json_object_set_new(ho, "line", json_integer(h->line));
			json_object_set_new(ho, "expand", json_boolean(h->expand));
			json_object_set_new(ho, "chomp", json_boolean(h->chomp));
			json_object_set_new(ho, "content", jstr(h->content));
			json_array_append_new(a, ho);
		}
		json_object_set_new(o, "heredocs", a);
	}
	if (in->healthcheck_none)
		json_object_set_new(o, "healthcheck_none", json_true());
	if (in->onbuild)
		json_object_set_new(o, "onbuild", jinstruction(in->onbuild));
	json_object_set_new(o, "original", jstr(in->original));
	return o;
}

char *df_to_json(const struct df_file *file)
{
	json_t *root = json_object(), *a;
	char esc[2] = { file->escape, '\0' }, idx[32];
	char *out;

	json_object_set_new(root, "file", jstr(file->filename));
	json_object_set_new(root, "escape", jstr(esc));
	json_object_set_new(root, "syntax", jstr(file->syntax));
	a = json_array();
	for (size_t i = 0; i < file->n_directives; i++) {
		json_t *d = json_object();
		json_object_set_new(d, "name", jstr(file->directives[i].name));
		json_object_set_new(d, "value", jstr(file->directives[i].value));
		json_object_set_new(d, "line", json_integer(file->directives[i].line));
		json_array_append_new(a, d);
	}
	json_object_set_new(root, "directives", a);
	a = json_array();
	for (size_t i = 0; i < file->n_warnings; i++) {
		json_t *w = json_object();
		json_object_set_new(w, "line", json_integer(file->warnings[i].line));
		json_object_set_new(w, "message", jstr(file->warnings[i].message));
		json_array_append_new(a, w);
	}
	json_object_set_new(root, "warnings", a);
	json_object_set_new(root, "meta_args", json_integer((json_int_t)file->n_meta_args));
	json_object_set_new(root, "steps", json_integer(df_steps(file, NULL)));
	a = json_array();
	for (size_t i = 0; i < file->n_stages; i++) {
		const struct df_stage *s = &file->stages[i];
		json_t *so = json_object(), *deps = json_array();
		json_object_set_new(so, "name", jstr(s->name));
		json_object_set_new(so, "name_as_written", jstr(s->name_as_written));
		json_object_set_new(so, "base", jstr(s->base));
		json_object_set_new(so, "base_raw", jstr(s->base_raw));
		json_object_set_new(so, "platform", jstr(s->platform));
		json_object_set_new(so, "base_stage", json_integer(s->base_stage));
		json_object_set_new(so, "line", json_integer(s->line));
		json_object_set_new(so, "first", json_integer((json_int_t)s->first));
		json_object_set_new(so, "count", json_integer((json_int_t)s->count));
		for (size_t k = 0; k < s->n_deps; k++)
			json_array_append_new(deps, json_integer(s->deps[k]));
		json_object_set_new(so, "deps", deps);
		snprintf(idx, sizeof(idx), "%zu", i);
		json_object_set_new(so, "steps", json_integer(df_steps(file, idx)));
		json_array_append_new(a, so);
	}
	json_object_set_new(root, "stages", a);
	a = json_array();
	for (size_t i = 0; i < file->n_instructions; i++)
		json_array_append_new(a, jinstruction(&file->instructions[i]));
	json_object_set_new(root, "instructions", a);
	out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out;
}
