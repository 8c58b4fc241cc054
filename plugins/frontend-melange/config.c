/* config.c: a melange build file's tree to struct mel_config: the schema
 * (MELANGE.md section 1; unknown keys are warnings, wrong types errors),
 * then the parse phase of substitution (section 2.2): package.*, vars.*,
 * var-transforms and, in ranged subpackages, range.key / range.value are
 * pasted in raw; other ${{...}} are left for the compile phase. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melange.h"

struct ctx {
	struct mel_pool *p;
	const char *file;
	struct mel_diags *warn;
	struct mel_err *err;
};

/* ---- tree helpers ------------------------------------------------------ */

static const char *kind_name(enum mel_kind k)
{
	return k == MEL_MAP ? "a mapping" : k == MEL_SEQ ? "a list" : "a scalar";
}

static int want(struct ctx *c, const struct mel_node *n, enum mel_kind k, const char *what)
{
	if (n->kind == k)
		return 0;
	return mel_fail(c->err, c->file, n->line, n->column, "%s must be %s, not %s", what,
			kind_name(k), kind_name(n->kind));
}

/* Warn about keys of map n that are not in known (NULL-terminated). */
static void known_keys(struct ctx *c, const struct mel_node *n, const char *where,
		       const char *const *known)
{
	for (size_t i = 0; i < n->n; i += 2) {
		const char *k = n->v[i]->str;
		bool ok = false;
		for (const char *const *q = known; *q && !ok; q++)
			ok = strcmp(*q, k) == 0;
		if (!ok)
			mel_warn(c->p, c->warn, c->file, n->v[i]->line, n->v[i]->column,
				 "unknown key \"%s\" in %s (ignored)", k, where);
	}
}

static const struct mel_node *get(const struct mel_node *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2)
		if (strcmp(map->v[i]->str, key) == 0)
			return map->v[i + 1];
	return NULL;
}

/* A string field: any scalar, its literal text; null is "". */
static int str(struct ctx *c, const struct mel_node *n, const char *what, const char **out)
{
	if (!n)
		return 0;
	if (want(c, n, MEL_SCALAR, what) < 0)
		return -1;
	*out = n->null_ ? "" : n->str;
	return 0;
}

static int strlist(struct ctx *c, const struct mel_node *n, const char *what,
		   struct mel_strs *out)
{
	if (!n || (n->kind == MEL_SCALAR && n->null_))
		return 0;
	if (want(c, n, MEL_SEQ, what) < 0)
		return -1;
	out->v = mel_alloc(c->p, (n->n + 1) * sizeof(*out->v));
	out->n = 0;
	for (size_t i = 0; i < n->n; i++)
		if (str(c, n->v[i], what, &out->v[out->n++]) < 0)
			return -1;
	return 0;
}

static int kvmap(struct ctx *c, const struct mel_node *n, const char *what, struct mel_kvs *out)
{
	if (!n || (n->kind == MEL_SCALAR && n->null_))
		return 0;
	if (want(c, n, MEL_MAP, what) < 0)
		return -1;
	out->v = mel_alloc(c->p, (n->n / 2 + 1) * sizeof(*out->v));
	out->n = 0;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		struct mel_kv *kv = &out->v[out->n++];
		kv->key = n->v[i]->str;
		kv->line = n->v[i]->line;
		kv->value = "";
		if (str(c, n->v[i + 1], what, &kv->value) < 0)
			return -1;
	}
	return 0;
}

/* ---- steps ---------------------------------------------------------------- */

static const char *const STEP_KEYS[] = {
	"name", "uses", "with", "runs", "if", "working-directory", "environment", "pipeline",
	"needs", "assertions", "inputs", "label", NULL,
};

static int parse_steps(struct ctx *c, const struct mel_node *n, struct mel_step **out,
		       size_t *n_out);

static int parse_step(struct ctx *c, const struct mel_node *n, struct mel_step *s)
{
	if (want(c, n, MEL_MAP, "a pipeline step") < 0)
		return -1;
	known_keys(c, n, "a pipeline step", STEP_KEYS);
	s->file = c->file;
	s->line = n->line;
	s->required_steps = -1;
	const struct mel_node *v;
	if ((v = get(n, "name")) && (s->name_line = v->line, str(c, v, "name", &s->name) < 0))
		return -1;
	if ((v = get(n, "uses")) && (s->uses_line = v->line, str(c, v, "uses", &s->uses) < 0))
		return -1;
	if ((v = get(n, "runs")) && (s->runs_line = v->line, str(c, v, "runs", &s->runs) < 0))
		return -1;
	if ((v = get(n, "if")) && (s->if_line = v->line, str(c, v, "if", &s->if_) < 0))
		return -1;
	if ((v = get(n, "working-directory")) &&
	    (s->wd_line = v->line, str(c, v, "working-directory", &s->wd) < 0))
		return -1;
	if ((v = get(n, "with")) && (s->with_line = v->line, kvmap(c, v, "with", &s->with) < 0))
		return -1;
	if (kvmap(c, get(n, "environment"), "environment", &s->env) < 0)
		return -1;
	if ((v = get(n, "needs"))) {
		if (!(v->kind == MEL_SCALAR && v->null_)) {
			if (want(c, v, MEL_MAP, "needs") < 0)
				return -1;
			static const char *const keys[] = { "packages", NULL };
			known_keys(c, v, "needs", keys);
			if (strlist(c, get(v, "packages"), "needs.packages", &s->needs) < 0)
				return -1;
		}
	}
	if ((v = get(n, "assertions")) && !(v->kind == MEL_SCALAR && v->null_)) {
		if (want(c, v, MEL_MAP, "assertions") < 0)
			return -1;
		static const char *const keys[] = { "required-steps", NULL };
		known_keys(c, v, "assertions", keys);
		const struct mel_node *r = get(v, "required-steps");
		if (r) {
			const char *t = NULL;
			char *end;
			if (str(c, r, "assertions.required-steps", &t) < 0)
				return -1;
			long x = strtol(t, &end, 10);
			if (!*t || *end || x < 0 || x > 100000)
				return mel_fail(c->err, c->file, r->line, r->column,
						"assertions.required-steps must be a number, "
						"not \"%s\"", t);
			s->required_steps = x;
		}
	}
	if ((v = get(n, "inputs")) && !(v->kind == MEL_SCALAR && v->null_)) {
		if (want(c, v, MEL_MAP, "inputs") < 0)
			return -1;
		s->inputs = mel_alloc(c->p, (v->n / 2 + 1) * sizeof(*s->inputs));
		for (size_t i = 0; i + 1 < v->n; i += 2) {
			struct mel_input *in = &s->inputs[s->n_inputs++];
			in->name = v->v[i]->str;
			in->def = "";
			const struct mel_node *d = v->v[i + 1];
			if (d->kind == MEL_SCALAR && d->null_)
				continue;
			if (want(c, d, MEL_MAP, "an input") < 0)
				return -1;
			static const char *const keys[] = { "description", "default", "required",
							    NULL };
			known_keys(c, d, "an input", keys);
			const char *req = NULL;
			if (str(c, get(d, "default"), "default", &in->def) < 0 ||
			    str(c, get(d, "required"), "required", &req) < 0)
				return -1;
			in->required = req && strcmp(req, "true") == 0;
		}
	}
	if ((v = get(n, "pipeline"))) {
		s->has_pipeline = true;
		if (parse_steps(c, v, &s->steps, &s->n_steps) < 0)
			return -1;
	}
	/* melange's validation */
	if (s->with.n && !s->uses)
		return mel_fail(c->err, c->file, s->with_line, 0,
				"a step with \"with\" needs \"uses\"");
	if (s->uses && s->runs)
		return mel_fail(c->err, c->file, s->runs_line, 0,
				"a step cannot have both \"uses\" and \"runs\"");
	if (s->uses && s->has_pipeline) {
		mel_warn(c->p, c->warn, c->file, s->uses_line, 0,
			 "a step with both \"uses\" and \"pipeline\": \"uses: %s\" is ignored",
			 s->uses);
		s->uses = NULL;
	}
	return 0;
}

static int parse_steps(struct ctx *c, const struct mel_node *n, struct mel_step **out,
		       size_t *n_out)
{
	if (n->kind == MEL_SCALAR && n->null_)
		return 0;
	if (want(c, n, MEL_SEQ, "pipeline") < 0)
		return -1;
	*out = mel_alloc(c->p, (n->n + 1) * sizeof(**out));
	*n_out = n->n;
	for (size_t i = 0; i < n->n; i++)
		if (parse_step(c, n->v[i], &(*out)[i]) < 0)
			return -1;
	return 0;
}

int mel_step_parse(struct mel_pool *p, const char *file, const struct mel_node *n,
		   struct mel_step *out, struct mel_diags *warn, struct mel_err *err)
{
	struct ctx c = { .p = p, .file = file, .warn = warn, .err = err };
	memset(out, 0, sizeof(*out));
	return parse_step(&c, n, out);
}

/* ---- package, environment, subpackages ---------------------------------- */

static int parse_deps(struct ctx *c, const struct mel_node *n, struct mel_deps *d)
{
	if (!n || (n->kind == MEL_SCALAR && n->null_))
		return 0;
	if (want(c, n, MEL_MAP, "dependencies") < 0)
		return -1;
	static const char *const keys[] = { "runtime", "provides", "replaces",
					    "provider-priority", "replaces-priority", NULL };
	known_keys(c, n, "dependencies", keys);
	if (strlist(c, get(n, "runtime"), "dependencies.runtime", &d->runtime) < 0 ||
	    strlist(c, get(n, "provides"), "dependencies.provides", &d->provides) < 0 ||
	    strlist(c, get(n, "replaces"), "dependencies.replaces", &d->replaces) < 0 ||
	    str(c, get(n, "provider-priority"), "provider-priority", &d->provider_priority) < 0 ||
	    str(c, get(n, "replaces-priority"), "replaces-priority", &d->replaces_priority) < 0)
		return -1;
	return 0;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (const char *q = s; *q; q++) {
		char ch = *q;
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9');
		if (!alnum && (q == s || (ch != '+' && ch != '_' && ch != '.' && ch != '-')))
			return false;
	}
	return true;
}

static int parse_package(struct ctx *c, const struct mel_node *n, struct mel_config *cfg)
{
	if (!n)
		return mel_fail(c->err, c->file, 1, 1, "no \"package\" section");
	if (want(c, n, MEL_MAP, "package") < 0)
		return -1;
	static const char *const keys[] = {
		"name", "version", "epoch", "description", "url", "commit", "annotations",
		"target-architecture", "copyright", "dependencies", "options", "scriptlets",
		"checks", "cpe", "setcap", "timeout", "resources", "test-resources", NULL,
	};
	known_keys(c, n, "package", keys);
	const struct mel_node *v;
	if (str(c, get(n, "name"), "package.name", &cfg->name) < 0 ||
	    str(c, get(n, "version"), "package.version", &cfg->version) < 0 ||
	    str(c, get(n, "description"), "package.description", &cfg->description) < 0 ||
	    str(c, get(n, "url"), "package.url", &cfg->url) < 0 ||
	    str(c, get(n, "commit"), "package.commit", &cfg->commit) < 0 ||
	    strlist(c, get(n, "target-architecture"), "package.target-architecture",
		    &cfg->target_archs) < 0 ||
	    parse_deps(c, get(n, "dependencies"), &cfg->deps) < 0)
		return -1;
	if (!cfg->name || !valid_name(cfg->name))
		return mel_fail(c->err, c->file, (v = get(n, "name")) ? v->line : n->line, 0,
				"package.name %s%s%s: it must match ^[a-zA-Z0-9][a-zA-Z0-9+_.-]*$",
				cfg->name ? "\"" : "is missing", cfg->name ? cfg->name : "",
				cfg->name ? "\" is invalid" : "");
	if (!cfg->version || !*cfg->version)
		return mel_fail(c->err, c->file, (v = get(n, "version")) ? v->line : n->line, 0,
				"package.version is missing or empty");
	if ((v = get(n, "epoch"))) {
		const char *t = "";
		if (str(c, v, "package.epoch", &t) < 0)
			return -1;
		char *end;
		unsigned long long e = strtoull(t, &end, 10);
		if (!*t || *end || *t == '-' || *t == '+' || e > 0xffffffffull)
			return mel_fail(c->err, c->file, v->line, v->column,
					"package.epoch must be a number, not \"%s\"", t);
		cfg->epoch = e;
	}
	if ((v = get(n, "copyright")) && !(v->kind == MEL_SCALAR && v->null_)) {
		if (want(c, v, MEL_SEQ, "package.copyright") < 0)
			return -1;
		cfg->licenses.v = mel_alloc(c->p, (v->n + 1) * sizeof(char *));
		for (size_t i = 0; i < v->n; i++) {
			const struct mel_node *e = v->v[i];
			if (want(c, e, MEL_MAP, "a copyright entry") < 0)
				return -1;
			static const char *const ck[] = { "license", "paths", "attestation",
							  "license-path", "detection-override",
							  NULL };
			known_keys(c, e, "a copyright entry", ck);
			const char *lic = NULL;
			if (str(c, get(e, "license"), "license", &lic) < 0)
				return -1;
			if (lic && *lic)
				cfg->licenses.v[cfg->licenses.n++] = lic;
		}
	}
	return 0;
}

static int parse_environment(struct ctx *c, const struct mel_node *n, struct mel_config *cfg)
{
	if (!n || (n->kind == MEL_SCALAR && n->null_))
		return 0;
	if (want(c, n, MEL_MAP, "environment") < 0)
		return -1;
	static const char *const keys[] = {
		"contents", "environment", "accounts", "archs", "paths", "entrypoint", "cmd",
		"work-dir", "volumes", "annotations", "stop-signal", "include", "options",
		"vcs-url", NULL,
	};
	known_keys(c, n, "environment", keys);
	const struct mel_node *ct = get(n, "contents");
	if (ct && !(ct->kind == MEL_SCALAR && ct->null_)) {
		if (want(c, ct, MEL_MAP, "environment.contents") < 0)
			return -1;
		static const char *const ck[] = { "repositories", "keyring", "packages",
						  "build_repositories", "baseimage", NULL };
		known_keys(c, ct, "environment.contents", ck);
		if (strlist(c, get(ct, "packages"), "environment.contents.packages",
			    &cfg->packages) < 0 ||
		    strlist(c, get(ct, "repositories"), "environment.contents.repositories",
			    &cfg->repositories) < 0)
			return -1;
	}
	return kvmap(c, get(n, "environment"), "environment.environment", &cfg->env);
}

static int parse_subpackages(struct ctx *c, const struct mel_node *n, struct mel_config *cfg)
{
	if (!n || (n->kind == MEL_SCALAR && n->null_))
		return 0;
	if (want(c, n, MEL_SEQ, "subpackages") < 0)
		return -1;
	cfg->subs = mel_alloc(c->p, (n->n + 1) * sizeof(*cfg->subs));
	cfg->n_subs = n->n;
	static const char *const keys[] = {
		"name", "range", "if", "pipeline", "dependencies", "options", "scriptlets",
		"description", "annotations", "url", "commit", "checks", "setcap", "test",
		"copyright", NULL,
	};
	for (size_t i = 0; i < n->n; i++) {
		const struct mel_node *e = n->v[i];
		struct mel_subpkg *s = &cfg->subs[i];
		if (want(c, e, MEL_MAP, "a subpackage") < 0)
			return -1;
		known_keys(c, e, "a subpackage", keys);
		s->line = e->line;
		const struct mel_node *v;
		if ((v = get(e, "if")) && (s->if_line = v->line, str(c, v, "if", &s->if_) < 0))
			return -1;
		if ((v = get(e, "range")) &&
		    (s->range_line = v->line, str(c, v, "range", &s->range) < 0))
			return -1;
		if ((v = get(e, "name")) && (s->name_line = v->line, 0))
			return -1;
		if (str(c, v, "subpackage name", &s->name) < 0 ||
		    str(c, get(e, "description"), "description", &s->description) < 0 ||
		    str(c, get(e, "url"), "url", &s->url) < 0 ||
		    str(c, get(e, "commit"), "commit", &s->commit) < 0 ||
		    parse_deps(c, get(e, "dependencies"), &s->deps) < 0)
			return -1;
		if (!s->name || !*s->name)
			return mel_fail(c->err, c->file, e->line, e->column,
					"a subpackage needs a name");
		if ((v = get(e, "pipeline")) && parse_steps(c, v, &s->steps, &s->n_steps) < 0)
			return -1;
	}
	return 0;
}

static int parse_vars(struct ctx *c, const struct mel_node *root, struct mel_config *cfg)
{
	if (kvmap(c, get(root, "vars"), "vars", &cfg->vars) < 0)
		return -1;
	const struct mel_node *n = get(root, "var-transforms");
	if (n && !(n->kind == MEL_SCALAR && n->null_)) {
		if (want(c, n, MEL_SEQ, "var-transforms") < 0)
			return -1;
		cfg->transforms = mel_alloc(c->p, (n->n + 1) * sizeof(*cfg->transforms));
		cfg->n_transforms = n->n;
		static const char *const keys[] = { "from", "match", "replace", "to", NULL };
		for (size_t i = 0; i < n->n; i++) {
			const struct mel_node *e = n->v[i];
			struct mel_transform *t = &cfg->transforms[i];
			if (want(c, e, MEL_MAP, "a var-transform") < 0)
				return -1;
			known_keys(c, e, "a var-transform", keys);
			t->line = e->line;
			t->from = t->match = t->replace = t->to = "";
			if (str(c, get(e, "from"), "from", &t->from) < 0 ||
			    str(c, get(e, "match"), "match", &t->match) < 0 ||
			    str(c, get(e, "replace"), "replace", &t->replace) < 0 ||
			    str(c, get(e, "to"), "to", &t->to) < 0)
				return -1;
			if (!*t->to || !*t->match)
				return mel_fail(c->err, c->file, e->line, e->column,
						"a var-transform needs \"match\" and \"to\"");
		}
	}
	n = get(root, "data");
	if (n && !(n->kind == MEL_SCALAR && n->null_)) {
		if (want(c, n, MEL_SEQ, "data") < 0)
			return -1;
		cfg->data = mel_alloc(c->p, (n->n + 1) * sizeof(*cfg->data));
		cfg->n_data = n->n;
		static const char *const keys[] = { "name", "items", NULL };
		for (size_t i = 0; i < n->n; i++) {
			const struct mel_node *e = n->v[i];
			struct mel_data *d = &cfg->data[i];
			if (want(c, e, MEL_MAP, "a data entry") < 0)
				return -1;
			known_keys(c, e, "a data entry", keys);
			d->line = e->line;
			if (str(c, get(e, "name"), "name", &d->name) < 0 ||
			    kvmap(c, get(e, "items"), "items", &d->items) < 0)
				return -1;
			if (!d->name || !*d->name)
				return mel_fail(c->err, c->file, e->line, e->column,
						"a data entry needs a name");
		}
	}
	return 0;
}

/* ---- var-transforms: Go regexps on POSIX regex ---------------------------- */

/* Translate the RE2 syntax melange's files use (\d \w \s and their
 * negations, escaped punctuation) to POSIX ERE. Constructs POSIX lacks
 * (lazy quantifiers, flags, named groups) are refused. */
static int go_to_ere(struct ctx *c, int line, const char *re, struct mel_buf *out)
{
	bool in_class = false;
	mel_buf_add(out, "", 0);
	for (const char *q = re; *q; q++) {
		if (*q == '\\' && q[1]) {
			char e = *++q;
			const char *cls = NULL, *neg = NULL;
			switch (e) {
			case 'd': cls = "0-9"; break;
			case 'D': neg = "0-9"; break;
			case 'w': cls = "A-Za-z0-9_"; break;
			case 'W': neg = "A-Za-z0-9_"; break;
			case 's': cls = "[:space:]"; break;
			case 'S': neg = "[:space:]"; break;
			}
			if (cls && in_class) {
				mel_buf_adds(out, cls);
			} else if (cls || neg) {
				if (in_class)
					return mel_fail(c->err, c->file, line, 0, "var-transform: "
							"\\%c inside [...] is not supported", e);
				mel_buf_adds(out, cls ? "[" : "[^");
				mel_buf_adds(out, cls ? cls : neg);
				mel_buf_adds(out, "]");
			} else if (e == 'n' || e == 't') {
				mel_buf_adds(out, e == 'n' ? "\n" : "\t");
			} else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') ||
				   (e >= '0' && e <= '9')) {
				return mel_fail(c->err, c->file, line, 0,
						"var-transform: \\%c is not supported", e);
			} else if (in_class) {
				if (e == ']' || e == '^' || e == '-')
					return mel_fail(c->err, c->file, line, 0, "var-transform: "
							"\\%c inside [...] is not supported", e);
				mel_buf_add(out, &e, 1);
			} else {
				char two[2] = { '\\', e };
				mel_buf_add(out, two, 2);
			}
			continue;
		}
		if (!in_class && *q == '(' && q[1] == '?')
			return mel_fail(c->err, c->file, line, 0, "var-transform: (?...) groups "
					"and flags are not supported");
		if (!in_class && (*q == '*' || *q == '+' || *q == '?' || *q == '}') && q[1] == '?')
			return mel_fail(c->err, c->file, line, 0,
					"var-transform: lazy quantifiers are not supported");
		if (!in_class && *q == '[') {
			in_class = true;
			mel_buf_add(out, q, 1);
			if (q[1] == '^')
				mel_buf_add(out, ++q, 1);
			if (q[1] == ']')
				mel_buf_add(out, ++q, 1);
			continue;
		}
		if (in_class && *q == ']')
			in_class = false;
		mel_buf_add(out, q, 1);
	}
	return 0;
}

/* Go's Regexp.Expand of template for one match. */
static void expand(struct mel_buf *b, const char *tmpl, const char *s, const regmatch_t *m,
		   size_t nm)
{
	for (const char *q = tmpl; *q; q++) {
		if (*q != '$') {
			mel_buf_add(b, q, 1);
			continue;
		}
		if (q[1] == '$') {
			mel_buf_add(b, "$", 1);
			q++;
			continue;
		}
		const char *name = q + 1, *end;
		bool braced = *name == '{';
		if (braced)
			name++;
		end = name;
		while ((*end >= 'a' && *end <= 'z') || (*end >= 'A' && *end <= 'Z') ||
		       (*end >= '0' && *end <= '9') || *end == '_')
			end++;
		if (end == name || (braced && *end != '}')) {
			mel_buf_add(b, q, 1); /* not a reference: a literal '$' */
			continue;
		}
		bool digits = true;
		for (const char *d = name; d < end; d++)
			digits = digits && *d >= '0' && *d <= '9';
		if (digits && end - name < 4) {
			size_t k = (size_t)strtoul(name, NULL, 10);
			if (k < nm && m[k].rm_so >= 0)
				mel_buf_add(b, s + m[k].rm_so, (size_t)(m[k].rm_eo - m[k].rm_so));
		}
		q = braced ? end : end - 1;
	}
}

/* glibc's regcomp copies the operand of '+' and of "{n,m}" (m copies),
 * so nested repetitions grow its parse tree geometrically: "a++++…" or
 * "((a{99}){99}){99}" take seconds and gigabytes to compile. Go's RE2
 * refuses "++" ("invalid nested repetition operator") and counts over
 * 1000 ("invalid repeat count"); a pattern within those rules whose tree
 * would still pass MEL_ERE_MAX_NODES nodes is refused too. ere is the
 * translated ERE. Returns 0, or a message naming what is refused. */
#define MEL_ERE_MAX_NODES 20000
#define MEL_ERE_MAX_DEPTH 64
static const char *ere_too_costly(const char *ere)
{
	/* per open group: nodes so far in it; "last" is the operand that a
	 * repetition operator applies to */
	unsigned long total[MEL_ERE_MAX_DEPTH + 1] = { 0 };
	unsigned long last = 0;
	int depth = 0;
	bool after_rep = false, have_operand = false;
	for (const char *q = ere; *q; q++) {
		unsigned long copies = 0; /* operand copies a repetition adds */
		if (*q == '*' || *q == '?' || *q == '+' || (*q == '{' && have_operand)) {
			if (after_rep)
				return "invalid nested repetition operator";
			if (*q == '+')
				copies = 1;
			if (*q == '{') {
				char *e;
				unsigned long lo = strtoul(q + 1, &e, 10), hi = lo;
				if (*e == ',')
					hi = e[1] == '}' ? lo + 1 : strtoul(e + 1, &e, 10);
				if (*e == ',')
					e++;
				if (*e != '}' || lo > 1000 || hi > 1000)
					return "invalid repeat count (more than 1000)";
				copies = hi > 1 ? hi - 1 : 0;
				q = e;
			}
			total[depth] += last * copies;
			last += last * copies;
			if (total[depth] > MEL_ERE_MAX_NODES)
				return "pattern too large to compile";
			after_rep = true;
			continue;
		}
		after_rep = false;
		if (*q == '(') {
			if (depth == MEL_ERE_MAX_DEPTH)
				return "groups nested too deeply";
			total[++depth] = 0;
			have_operand = false;
			continue;
		}
		if (*q == ')' && depth > 0) {
			last = total[depth--] + 1;
			total[depth] += last;
		} else if (*q == '|' || *q == '^' || *q == '$') {
			total[depth]++;
			have_operand = *q != '|';
			last = 1;
			continue;
		} else {
			if (*q == '\\' && q[1])
				q++;
			else if (*q == '[') {
				/* a bracket expression is one operand */
				const char *e = q + 1;
				if (*e == '^')
					e++;
				if (*e == ']')
					e++;
				while (*e && *e != ']')
					e++;
				q = *e ? e : e - 1;
			}
			last = 1;
			total[depth]++;
		}
		have_operand = true;
		if (total[depth] > MEL_ERE_MAX_NODES)
			return "pattern too large to compile";
	}
	return NULL;
}

static int transform(struct ctx *c, const struct mel_transform *t, const char *from,
		     const char **out)
{
	struct mel_buf ere = { 0 };
	if (go_to_ere(c, t->line, t->match, &ere) < 0) {
		mel_buf_free(&ere);
		return -1;
	}
	const char *why = ere_too_costly(ere.s);
	if (why) {
		mel_buf_free(&ere);
		return mel_fail(c->err, c->file, t->line, 0, "var-transform: bad match \"%s\": %s",
				t->match, why);
	}
	regex_t re;
	int rc = regcomp(&re, ere.s, REG_EXTENDED);
	mel_buf_free(&ere);
	if (rc != 0) {
		char m[256];
		regerror(rc, NULL, m, sizeof(m));
		return mel_fail(c->err, c->file, t->line, 0, "var-transform: bad match \"%s\": %s",
				t->match, m);
	}
	regmatch_t m[10];
	struct mel_buf b = { 0 };
	mel_buf_add(&b, "", 0);
	size_t len = strlen(from), pos = 0;
	long prev_end = -1;
	while (pos <= len) {
		if (regexec(&re, from + pos, 10, m, pos ? REG_NOTBOL : 0) != 0)
			break;
		size_t ms = pos + (size_t)m[0].rm_so, me = pos + (size_t)m[0].rm_eo;
		for (int k = 0; k < 10; k++)
			if (m[k].rm_so >= 0) {
				m[k].rm_so += (regoff_t)pos;
				m[k].rm_eo += (regoff_t)pos;
			}
		mel_buf_add(&b, from + pos, ms - pos);
		if (!(ms == me && (long)ms == prev_end))
			expand(&b, t->replace, from, m, 10);
		prev_end = (long)me;
		if (me == ms) {
			if (ms < len)
				mel_buf_add(&b, from + ms, 1);
			pos = ms + 1;
		} else {
			pos = me;
		}
	}
	if (pos < len)
		mel_buf_add(&b, from + pos, len - pos);
	regfree(&re);
	*out = mel_strndup(c->p, b.s, b.len);
	mel_buf_free(&b);
	return 0;
}

/* ---- the parse phase ------------------------------------------------------ */

static int subst_parse(struct ctx *c, const struct mel_scope *sc, const char **s)
{
	const char *bad = NULL;
	return mel_subst(c->p, *s, MEL_SUBST_PARSE, sc, s, &bad);
}

/* A deep copy of steps with the parse phase applied. */
static void subst_steps(struct ctx *c, const struct mel_scope *sc, const struct mel_step *in,
			size_t n, struct mel_step **out)
{
	*out = NULL;
	if (!n)
		return;
	struct mel_step *v = mel_alloc(c->p, n * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct mel_step *s = &v[i];
		*s = in[i];
		subst_parse(c, sc, &s->name);
		subst_parse(c, sc, &s->runs);
		subst_parse(c, sc, &s->if_);
		subst_parse(c, sc, &s->wd);
		struct mel_kv *w = mel_alloc(c->p, (s->with.n + 1) * sizeof(*w));
		mel_copy(w, in[i].with.v, s->with.n * sizeof(*w));
		for (size_t k = 0; k < s->with.n; k++)
			subst_parse(c, sc, &w[k].value);
		s->with.v = w;
		struct mel_kv *e = mel_alloc(c->p, (s->env.n + 1) * sizeof(*e));
		mel_copy(e, in[i].env.v, s->env.n * sizeof(*e));
		for (size_t k = 0; k < s->env.n; k++)
			subst_parse(c, sc, &e[k].value);
		s->env.v = e;
		const char **nd = mel_alloc(c->p, (s->needs.n + 1) * sizeof(*nd));
		mel_copy(nd, in[i].needs.v, s->needs.n * sizeof(*nd));
		for (size_t k = 0; k < s->needs.n; k++)
			subst_parse(c, sc, &nd[k]);
		s->needs.v = nd;
		subst_steps(c, sc, in[i].steps, in[i].n_steps, &s->steps);
	}
	*out = v;
}

/* Dependency lists: parse phase, then a strict pass. */
static int subst_deps(struct ctx *c, const struct mel_scope *sc, struct mel_deps *d, int line)
{
	struct mel_strs *lists[] = { &d->runtime, &d->provides, &d->replaces };
	for (size_t l = 0; l < 3; l++) {
		const char **v = mel_alloc(c->p, (lists[l]->n + 1) * sizeof(*v));
		for (size_t i = 0; i < lists[l]->n; i++) {
			const char *bad = NULL;
			if (mel_subst(c->p, lists[l]->v[i], MEL_SUBST_RAW, sc, &v[i], &bad) < 0)
				return mel_fail(c->err, c->file, line, 0, "dependencies: undefined "
						"variable ${{%s}} in \"%s\"", bad, lists[l]->v[i]);
		}
		lists[l]->v = v;
	}
	return 0;
}

static int cmp_kv_key(const void *a, const void *b)
{
	return strcmp(((const struct mel_kv *)a)->key, ((const struct mel_kv *)b)->key);
}

/* A subpackage after the parse phase, with sc (the range's scope, or the
 * global one); appended to out unless its if: is false. */
static int add_subpkg(struct ctx *c, const struct mel_scope *sc, const struct mel_subpkg *in,
		      struct mel_config *cfg, size_t *n_out)
{
	struct mel_subpkg s = *in;
	subst_parse(c, sc, &s.name);
	subst_parse(c, sc, &s.description);
	subst_parse(c, sc, &s.url);
	subst_parse(c, sc, &s.if_);
	if (subst_deps(c, sc, &s.deps, s.line) < 0)
		return -1;
	if (!valid_name(s.name))
		return mel_fail(c->err, c->file, s.name_line ? s.name_line : s.line, 0,
				"subpackage name \"%s\" is invalid: it must match "
				"^[a-zA-Z0-9][a-zA-Z0-9+_.-]*$", s.name);
	if (s.if_ && *s.if_) {
		/* melange evaluates the parse-phase text (MELANGE.md 2.5):
		 * every ${{...}} left reads as "" */
		bool ok;
		char msg[256];
		size_t off = 0;
		if (mel_cond_eval(s.if_, &ok, msg, sizeof(msg), &off) < 0)
			return mel_fail(c->err, c->file, s.if_line, 0, "bad if: \"%s\": %s", s.if_,
					msg);
		if (!ok)
			return 0;
	}
	if (strcmp(s.name, cfg->name) == 0)
		return mel_fail(c->err, c->file, s.name_line ? s.name_line : s.line, 0,
				"subpackage \"%s\" has the main package's name", s.name);
	for (size_t i = 0; i < *n_out; i++)
		if (strcmp(cfg->subs[i].name, s.name) == 0)
			return mel_fail(c->err, c->file, s.name_line ? s.name_line : s.line, 0,
					"subpackage \"%s\" is declared twice", s.name);
	subst_steps(c, sc, in->steps, in->n_steps, &s.steps);
	cfg->subs[(*n_out)++] = s;
	return 0;
}

static int parse_phase(struct ctx *c, struct mel_config *cfg)
{
	struct mel_scope *sc = mel_alloc(c->p, sizeof(*sc));
	mel_scope_set(c->p, sc, "package.name", cfg->name);
	mel_scope_set(c->p, sc, "package.version", cfg->version);
	const char *epoch = mel_printf(c->p, "%llu", (unsigned long long)cfg->epoch);
	mel_scope_set(c->p, sc, "package.epoch", epoch);
	mel_scope_set(c->p, sc, "package.full-version",
		      mel_printf(c->p, "%s-r%s", cfg->version, epoch));
	mel_scope_set(c->p, sc, "package.description", cfg->description ? cfg->description : "");
	/* vars are literal (melange's map order is not defined) */
	for (size_t i = 0; i < cfg->vars.n; i++)
		mel_scope_set(c->p, sc, mel_printf(c->p, "vars.%s", cfg->vars.v[i].key),
			      cfg->vars.v[i].value);
	/* var-transforms in order; a later one may use an earlier output */
	struct mel_kv *vars = mel_alloc(c->p, (cfg->vars.n + cfg->n_transforms + 1) * sizeof(*vars));
	mel_copy(vars, cfg->vars.v, cfg->vars.n * sizeof(*vars));
	size_t n_vars = cfg->vars.n;
	for (size_t i = 0; i < cfg->n_transforms; i++) {
		const struct mel_transform *t = &cfg->transforms[i];
		const char *from = t->from, *val;
		subst_parse(c, sc, &from);
		if (transform(c, t, from, &val) < 0)
			return -1;
		mel_scope_set(c->p, sc, mel_printf(c->p, "vars.%s", t->to), val);
		vars[n_vars++] = (struct mel_kv){ t->to, val, t->line };
	}
	cfg->vars.v = vars;
	cfg->vars.n = n_vars;

	for (size_t i = 0; i < cfg->packages.n; i++)
		subst_parse(c, sc, &cfg->packages.v[i]);
	for (size_t i = 0; i < cfg->env.n; i++)
		subst_parse(c, sc, &cfg->env.v[i].value);
	if (subst_deps(c, sc, &cfg->deps, 1) < 0)
		return -1;
	struct mel_step *steps;
	subst_steps(c, sc, cfg->steps, cfg->n_steps, &steps);
	cfg->steps = steps;

	/* subpackages: ranged ones expand in place, items by key */
	size_t n_all = 0;
	for (size_t i = 0; i < cfg->n_subs; i++) {
		if (!cfg->subs[i].range) {
			n_all++;
			continue;
		}
		for (size_t d = 0; d < cfg->n_data; d++)
			if (strcmp(cfg->data[d].name, cfg->subs[i].range) == 0)
				n_all += cfg->data[d].items.n;
	}
	struct mel_subpkg *in = cfg->subs;
	size_t n_in = cfg->n_subs, n_out = 0;
	cfg->subs = mel_alloc(c->p, (n_all + 1) * sizeof(*cfg->subs));
	for (size_t i = 0; i < n_in; i++) {
		const struct mel_subpkg *s = &in[i];
		if (!s->range) {
			if (add_subpkg(c, sc, s, cfg, &n_out) < 0)
				return -1;
			continue;
		}
		const struct mel_data *data = NULL;
		for (size_t d = 0; d < cfg->n_data && !data; d++)
			if (strcmp(cfg->data[d].name, s->range) == 0)
				data = &cfg->data[d];
		if (!data)
			return mel_fail(c->err, c->file, s->range_line, 0,
					"range: no data entry named \"%s\"", s->range);
		struct mel_kv *items = mel_alloc(c->p, (data->items.n + 1) * sizeof(*items));
		mel_copy(items, data->items.v, data->items.n * sizeof(*items));
		qsort(items, data->items.n, sizeof(*items), cmp_kv_key);
		for (size_t k = 0; k < data->items.n; k++) {
			struct mel_scope *rs = mel_alloc(c->p, sizeof(*rs));
			rs->parent = sc;
			mel_scope_set(c->p, rs, "range.key", items[k].key);
			mel_scope_set(c->p, rs, "range.value", items[k].value);
			if (add_subpkg(c, rs, s, cfg, &n_out) < 0)
				return -1;
		}
	}
	cfg->n_subs = n_out;

	/* melange's defaults for the build environment (MELANGE.md 2.4) */
	static const char *const defaults[][2] = {
		{ "HOME", "/home/build" },
		{ "GOPATH", "/home/build/.cache/go" },
		{ "GOMODCACHE", "/var/cache/melange/gomodcache" },
		{ "UV_CACHE_DIR", "/var/cache/melange/uv" },
		{ "PIP_CACHE_DIR", "/var/cache/melange/pip" },
		{ "COMPOSER_CACHE_DIR", "/var/cache/melange/composer" },
		{ "npm_config_cache", "/var/cache/melange/npm" },
	};
	size_t nd = sizeof(defaults) / sizeof(defaults[0]);
	struct mel_kv *env = mel_alloc(c->p, (cfg->env.n + nd + 1) * sizeof(*env));
	mel_copy(env, cfg->env.v, cfg->env.n * sizeof(*env));
	size_t n_env = cfg->env.n;
	for (size_t i = 0; i < nd; i++) {
		bool set = false;
		for (size_t k = 0; k < cfg->env.n && !set; k++)
			set = strcmp(cfg->env.v[k].key, defaults[i][0]) == 0;
		if (!set)
			env[n_env++] = (struct mel_kv){ defaults[i][0], defaults[i][1], 0 };
	}
	cfg->env.v = env;
	cfg->env.n = n_env;
	return 0;
}

int mel_config_parse(struct mel_pool *p, const char *file, const char *text, size_t len,
		     struct mel_config **out, struct mel_diags *warn, struct mel_err *err)
{
	struct ctx c = { .p = p, .file = mel_strdup(p, file), .warn = warn, .err = err };
	struct mel_node *root;
	if (mel_yaml_load(p, c.file, text, len, &root, err) < 0)
		return -1;
	if (root->kind == MEL_SCALAR && root->null_)
		return mel_fail(err, c.file, 1, 1, "empty build file: no \"package\" section");
	if (want(&c, root, MEL_MAP, "a melange build file") < 0)
		return -1;
	static const char *const keys[] = {
		"package", "environment", "pipeline", "subpackages", "data", "vars",
		"var-transforms", "options", "update", "test", "capabilities", NULL,
	};
	known_keys(&c, root, "the build file", keys);
	struct mel_config *cfg = mel_alloc(p, sizeof(*cfg));
	cfg->file = c.file;
	const struct mel_node *pl = get(root, "pipeline");
	if (parse_package(&c, get(root, "package"), cfg) < 0 ||
	    parse_environment(&c, get(root, "environment"), cfg) < 0 ||
	    (pl && parse_steps(&c, pl, &cfg->steps, &cfg->n_steps) < 0) ||
	    parse_vars(&c, root, cfg) < 0 ||
	    parse_subpackages(&c, get(root, "subpackages"), cfg) < 0 ||
	    parse_phase(&c, cfg) < 0)
		return -1;
	*out = cfg;
	return 0;
}
