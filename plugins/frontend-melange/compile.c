/* compile.c: the compile phase (MELANGE.md 2.3, 2.4): `uses:` pipelines
 * loaded and bound to `with:`, the remaining ${{...}} resolved (unknown
 * is an error), `if:` evaluated, environment and working-directory
 * inherited; the result is the flat, ordered list of processes to run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melange.h"

#define HOME "/home/build"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
#define USES_DEPTH 16

struct cctx {
	struct mel_pool *p;
	const struct mel_config *cfg;
	const struct mel_target *t;
	struct mel_plan *plan;
	struct mel_diags *warn;
	struct mel_err *err;
	const char *pkg; /* the output being compiled */
};

/* Where a step is reported: the user's file and line, also for the
 * steps of a built-in pipeline (their `uses:` line). */
struct origin {
	const char *file;
	int line;
	const char *label; /* "uses: X" for unnamed steps of a pipeline */
	int depth;         /* uses nesting */
};

const char *mel_apk_arch(const char *platform)
{
	if (!platform)
		return NULL;
	const char *a = platform;
	if (strncmp(a, "linux/", 6) == 0)
		a += 6;
	if (!strcmp(a, "amd64") || !strcmp(a, "x86_64"))
		return "x86_64";
	if (!strcmp(a, "arm64") || !strcmp(a, "arm64/v8") || !strcmp(a, "aarch64"))
		return "aarch64";
	return NULL;
}

const char *mel_goarch(const char *apk)
{
	if (!apk)
		return NULL;
	if (!strcmp(apk, "x86_64"))
		return "amd64";
	if (!strcmp(apk, "aarch64"))
		return "arm64";
	return NULL;
}

/* ---- environment layers --------------------------------------------------- */

/* base ∪ over, over's keys win; order: base's, then over's new keys. */
static struct mel_kvs env_merge(struct mel_pool *p, struct mel_kvs base, struct mel_kvs over)
{
	struct mel_kvs r = { mel_alloc(p, (base.n + over.n + 1) * sizeof(struct mel_kv)), 0 };
	mel_copy(r.v, base.v, base.n * sizeof(struct mel_kv));
	r.n = base.n;
	for (size_t i = 0; i < over.n; i++) {
		size_t k = 0;
		while (k < r.n && strcmp(r.v[k].key, over.v[i].key) != 0)
			k++;
		r.v[k] = over.v[i];
		if (k == r.n)
			r.n++;
	}
	return r;
}

static int cmp_kv(const void *a, const void *b)
{
	return strcmp(((const struct mel_kv *)a)->key, ((const struct mel_kv *)b)->key);
}

/* ---- scripts ---------------------------------------------------------------- */

static void add_squoted(struct mel_buf *b, const char *s)
{
	mel_buf_adds(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			mel_buf_adds(b, "'\\''");
		else
			mel_buf_add(b, s, 1);
	}
	mel_buf_adds(b, "'");
}

static const char *script(struct mel_pool *p, const char *wd, const char *runs)
{
	struct mel_buf b = { 0 };
	mel_buf_adds(&b, "set -eo pipefail\n[ -d ");
	add_squoted(&b, wd);
	mel_buf_adds(&b, " ] || mkdir -p ");
	add_squoted(&b, wd);
	mel_buf_adds(&b, "\ncd ");
	add_squoted(&b, wd);
	mel_buf_adds(&b, "\n");
	mel_buf_adds(&b, runs ? runs : "");
	mel_buf_adds(&b, "\nexit 0");
	const char *r = mel_strndup(p, b.s, b.len);
	mel_buf_free(&b);
	return r;
}

/* The label of an unnamed step: its first line of runs. */
static const char *runs_label(struct mel_pool *p, const char *runs)
{
	while (*runs == ' ' || *runs == '\n' || *runs == '\t')
		runs++;
	size_t n = strcspn(runs, "\n");
	if (n > 60)
		return mel_printf(p, "%.57s...", runs);
	return mel_strndup(p, runs, n);
}

/* ---- steps ------------------------------------------------------------------ */

static int compile_steps(struct cctx *c, const struct mel_step *steps, size_t n,
			 const struct mel_scope *sc, struct mel_kvs env, const char *wd,
			 const struct origin *o, int *ran);

/* Where to report a problem with step s. */
static void where(const struct cctx *c, const struct mel_step *s, const struct origin *o,
		  int line, const char **file, int *out_line)
{
	(void)c;
	if (o->file) {
		*file = o->file;
		*out_line = o->line;
	} else {
		*file = s->file;
		*out_line = line ? line : s->line;
	}
}

static int undefined(struct cctx *c, const struct mel_step *s, const struct origin *o, int line,
		     const char *field, const char *bad)
{
	const char *file;
	int l;
	where(c, s, o, line, &file, &l);
	if (strncmp(bad, "${{", 3) == 0)
		return mel_fail(c->err, file, l, 0, "%s: malformed substitution %s%s%s", field, bad,
				o->file ? " in pipeline " : "", o->file ? o->label + 6 : "");
	return mel_fail(c->err, file, l, 0, "%s: undefined variable ${{%s}}%s%s", field, bad,
			o->file ? " in pipeline " : "", o->file ? o->label + 6 : "");
}

static void add_exec(struct cctx *c, const struct mel_exec *e)
{
	struct mel_plan *pl = c->plan;
	if (pl->n_execs == pl->cap_execs) {
		size_t cap = pl->cap_execs ? pl->cap_execs * 2 : 16;
		struct mel_exec *v = mel_alloc(c->p, cap * sizeof(*v));
		if (pl->n_execs)
			mel_copy(v, pl->execs, pl->n_execs * sizeof(*v));
		pl->execs = v;
		pl->cap_execs = cap;
	}
	pl->execs[pl->n_execs++] = *e;
}

/* Compile one step; *ran is 1 when its if: held. */
static int compile_step(struct cctx *c, const struct mel_step *s, const struct mel_scope *sc,
			struct mel_kvs inherited, const char *parent_wd, const struct origin *o,
			int *ran)
{
	*ran = 0;
	const char *bad = NULL, *file;
	int line;
	if (s->if_ && *s->if_) {
		const char *cond;
		if (mel_subst(c->p, s->if_, MEL_SUBST_QUOTED, sc, &cond, &bad) < 0)
			return undefined(c, s, o, s->if_line, "if", bad);
		bool ok;
		char msg[256];
		size_t off;
		if (mel_cond_eval(cond, &ok, msg, sizeof(msg), &off) < 0) {
			where(c, s, o, s->if_line, &file, &line);
			return mel_fail(c->err, file, line, 0, "bad if: \"%s\": %s", cond, msg);
		}
		if (!ok)
			return 0;
	}
	*ran = 1;

	struct mel_step expanded;
	const struct mel_scope *child_sc = sc;
	struct origin child_o = *o;
	if (s->uses) {
		const char *text = mel_pipeline_text(s->uses);
		where(c, s, o, s->uses_line, &file, &line);
		if (!text)
			return mel_fail(c->err, file, line, 0, "unknown pipeline \"uses: %s\" (built "
					"in: see docs/melange.md)", s->uses);
		if (o->depth >= USES_DEPTH)
			return mel_fail(c->err, file, line, 0, "pipelines nest deeper than %d",
					USES_DEPTH);
		const char *pfile = mel_printf(c->p, "pipelines/%s.yaml", s->uses);
		struct mel_node *root;
		struct mel_step tmpl;
		if (mel_yaml_load(c->p, pfile, text, strlen(text), &root, c->err) < 0 ||
		    mel_step_parse(c->p, pfile, root, &tmpl, NULL, c->err) < 0)
			return -1;
		/* with: every key a declared input */
		for (size_t i = 0; i < s->with.n; i++) {
			bool known = false;
			for (size_t k = 0; k < tmpl.n_inputs && !known; k++)
				known = strcmp(tmpl.inputs[k].name, s->with.v[i].key) == 0;
			if (!known) {
				where(c, s, o, s->with.v[i].line, &file, &line);
				return mel_fail(c->err, file, line, 0, "pipeline \"%s\" has no input "
						"\"%s\"", s->uses, s->with.v[i].key);
			}
		}
		struct mel_scope *in = mel_alloc(c->p, sizeof(*in));
		in->parent = sc;
		for (size_t k = 0; k < tmpl.n_inputs; k++) {
			const struct mel_input *decl = &tmpl.inputs[k];
			const char *v = NULL;
			int vline = s->uses_line;
			for (size_t i = 0; i < s->with.n; i++)
				if (strcmp(s->with.v[i].key, decl->name) == 0 && *s->with.v[i].value) {
					v = s->with.v[i].value;
					vline = s->with.v[i].line;
				}
			if (!v)
				v = decl->def ? decl->def : "";
			const char *val;
			if (mel_subst(c->p, v, MEL_SUBST_RAW, sc, &val, &bad) < 0)
				return undefined(c, s, o, vline,
						 mel_printf(c->p, "with.%s", decl->name), bad);
			if (decl->required && !*val) {
				where(c, s, o, s->uses_line, &file, &line);
				return mel_fail(c->err, file, line, 0, "pipeline \"%s\": input \"%s\" "
						"is required", s->uses, decl->name);
			}
			mel_scope_set(c->p, in, mel_printf(c->p, "inputs.%s", decl->name), val);
		}
		expanded = *s;
		expanded.steps = tmpl.steps;
		expanded.n_steps = tmpl.n_steps;
		expanded.needs = tmpl.needs;
		expanded.required_steps = tmpl.required_steps;
		s = &expanded;
		child_sc = in;
		if (!o->file) {
			child_o.file = s->file;
			child_o.line = s->uses_line;
		}
		child_o.label = mel_printf(c->p, "uses: %s", s->uses);
		child_o.depth = o->depth + 1;
	}

	/* the step's layer: default PATH, inherited, its own */
	struct mel_kv path = { "PATH", DEFAULT_PATH, 0 };
	struct mel_kvs layer = env_merge(c->p, (struct mel_kvs){ &path, 1 }, inherited);
	layer = env_merge(c->p, layer, s->env);

	const char *wd = parent_wd;
	if (s->wd && *s->wd) {
		if (mel_subst(c->p, s->wd, MEL_SUBST_RAW, sc, &wd, &bad) < 0)
			return undefined(c, s, o, s->wd_line, "working-directory", bad);
		if (wd[0] != '/')
			wd = mel_printf(c->p, HOME "/%s", wd);
	}
	const char *runs = NULL;
	if (s->runs && (mel_subst(c->p, s->runs, MEL_SUBST_RAW, child_sc == sc ? sc : sc,
				  &runs, &bad) < 0))
		return undefined(c, s, o, s->runs_line, "runs", bad);
	if ((runs && *runs) || (s->wd && *s->wd)) {
		struct mel_exec e = { .pkg = c->pkg, .wd = wd };
		e.label = s->name && *s->name ? s->name
			  : s->uses		 ? mel_printf(c->p, "uses: %s", s->uses)
			  : o->label		 ? o->label
			  : runs && *runs	 ? runs_label(c->p, runs)
					   : mel_printf(c->p, "working-directory: %s", wd);
		where(c, s, o, s->runs_line, &e.file, &e.line);
		e.script = script(c->p, wd, runs);
		/* container env, then the layer; sorted, unique */
		struct mel_kv sde = { "SOURCE_DATE_EPOCH", c->t->source_date_epoch, 0 };
		struct mel_kvs env = env_merge(c->p, (struct mel_kvs){ &sde, 1 }, c->cfg->env);
		env = env_merge(c->p, env, layer);
		qsort(env.v, env.n, sizeof(*env.v), cmp_kv);
		e.env = env;
		add_exec(c, &e);
	}
	int n_ran = 0;
	if (compile_steps(c, s->steps, s->n_steps, child_sc, layer, wd, &child_o, &n_ran) < 0)
		return -1;
	if (s->required_steps >= 0 && n_ran != s->required_steps) {
		where(c, s, o, s->line, &file, &line);
		return mel_fail(c->err, file, line, 0, "assertions.required-steps is %ld, but %d "
				"steps ran", s->required_steps, n_ran);
	}
	return 0;
}

static int compile_steps(struct cctx *c, const struct mel_step *steps, size_t n,
			 const struct mel_scope *sc, struct mel_kvs env, const char *wd,
			 const struct origin *o, int *ran)
{
	for (size_t i = 0; i < n; i++) {
		int r = 0;
		if (compile_step(c, &steps[i], sc, env, wd, o, &r) < 0)
			return -1;
		*ran += r;
	}
	return 0;
}

/* ---- the whole build --------------------------------------------------------- */

static const char *gnu_triplet(const char *arch)
{
	return !strcmp(arch, "x86_64") ? "x86_64-pc-linux-gnu" : "aarch64-unknown-linux-gnu";
}

int mel_compile(struct mel_pool *p, const struct mel_config *cfg, const struct mel_target *t,
		struct mel_plan **out, struct mel_diags *warn, struct mel_err *err)
{
	struct mel_plan *pl = mel_alloc(p, sizeof(*pl));
	pl->cfg = cfg;
	pl->arch = t->arch;
	pl->outputs = mel_alloc(p, (cfg->n_subs + 1) * sizeof(*pl->outputs));
	struct cctx c = { .p = p, .cfg = cfg, .t = t, .plan = pl, .warn = warn, .err = err };

	struct mel_scope *g = mel_alloc(p, sizeof(*g));
	const char *epoch = mel_printf(p, "%llu", (unsigned long long)cfg->epoch);
	const char *destdir = mel_printf(p, HOME "/melange-out/%s", cfg->name);
	mel_scope_set(p, g, "package.name", cfg->name);
	mel_scope_set(p, g, "package.version", cfg->version);
	mel_scope_set(p, g, "package.epoch", epoch);
	mel_scope_set(p, g, "package.full-version", mel_printf(p, "%s-r%s", cfg->version, epoch));
	mel_scope_set(p, g, "package.srcdir", HOME);
	for (size_t i = 0; i < cfg->vars.n; i++)
		mel_scope_set(p, g, mel_printf(p, "vars.%s", cfg->vars.v[i].key),
			      cfg->vars.v[i].value);
	mel_scope_set(p, g, "targets.outdir", HOME "/melange-out");
	mel_scope_set(p, g, "targets.destdir", destdir);
	mel_scope_set(p, g, mel_printf(p, "targets.package.%s", cfg->name), destdir);
	for (size_t i = 0; i < cfg->n_subs; i++)
		mel_scope_set(p, g, mel_printf(p, "targets.package.%s", cfg->subs[i].name),
			      mel_printf(p, HOME "/melange-out/%s", cfg->subs[i].name));
	mel_scope_set(p, g, "build.arch", t->arch);
	mel_scope_set(p, g, "build.goarch", mel_goarch(t->arch));
	const char *gnu = gnu_triplet(t->arch);
	const char *rust = !strcmp(t->arch, "x86_64") ? "x86_64-unknown-linux-gnu"
						      : "aarch64-unknown-linux-gnu";
	mel_scope_set(p, g, "host.triplet.gnu", gnu);
	mel_scope_set(p, g, "host.triplet.rust", rust);
	mel_scope_set(p, g, "cross.triplet.gnu.glibc", gnu);
	mel_scope_set(p, g, "cross.triplet.gnu.musl",
		      !strcmp(t->arch, "x86_64") ? "x86_64-pc-linux-musl" : "aarch64-unknown-linux-musl");
	mel_scope_set(p, g, "cross.triplet.rust.glibc", rust);
	mel_scope_set(p, g, "cross.triplet.rust.musl",
		      !strcmp(t->arch, "x86_64") ? "x86_64-unknown-linux-musl" : "aarch64-unknown-linux-musl");

	/* the main package */
	struct mel_scope *m = mel_alloc(p, sizeof(*m));
	m->parent = g;
	mel_scope_set(p, m, "targets.contextdir", destdir);
	mel_scope_set(p, m, "context.name", cfg->name);
	struct origin o = { 0 };
	struct mel_kvs none = { 0 };
	int ran = 0;
	c.pkg = cfg->name;
	pl->outputs[0] = (struct mel_output){ cfg->name, 0, 0 };
	if (compile_steps(&c, cfg->steps, cfg->n_steps, m, none, HOME, &o, &ran) < 0)
		return -1;
	pl->outputs[0].n_execs = pl->n_execs;
	pl->n_outputs = 1;

	for (size_t i = 0; i < cfg->n_subs; i++) {
		const struct mel_subpkg *s = &cfg->subs[i];
		const char *dir = mel_printf(p, HOME "/melange-out/%s", s->name);
		struct mel_scope *ss = mel_alloc(p, sizeof(*ss));
		ss->parent = g;
		mel_scope_set(p, ss, "targets.contextdir", dir);
		mel_scope_set(p, ss, "targets.subpkgdir", dir);
		mel_scope_set(p, ss, "context.name", s->name);
		mel_scope_set(p, ss, "subpkg.name", s->name);
		c.pkg = s->name;
		size_t first = pl->n_execs;
		ran = 0;
		if (compile_steps(&c, s->steps, s->n_steps, ss, none, HOME, &o, &ran) < 0)
			return -1;
		pl->outputs[pl->n_outputs++] = (struct mel_output){ s->name, first,
								    pl->n_execs - first };
	}
	*out = pl;
	return 0;
}
