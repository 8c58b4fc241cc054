// SOURCES: plugins/frontend-melange/util.c plugins/frontend-melange/doc.c plugins/frontend-melange/subst.c plugins/frontend-melange/cond.c plugins/frontend-melange/config.c plugins/frontend-melange/pipelines.c plugins/frontend-melange/compile.c plugins/frontend-melange/llb.c
// PKGS: yaml-0.1
/* Unit tests of the melange frontend (plugins/frontend-melange): YAML
 * with line numbers, the schema and its warnings, both phases of
 * ${{...}} substitution, var-transforms, ranges, the if: language, uses:
 * pipelines, the compiled steps (env, working directories, order), errors
 * with file:line, and the LLB: same digest 100 times, and per platform. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "loader.h"

#include "../../plugins/frontend-melange/melange.h"

static const struct mel_target AMD64 = { "x86_64", "0" };

/* Parse and compile text; returns the plan (pool p) or NULL with *err. */
static struct mel_plan *compile(struct mel_pool *p, const char *text, const struct mel_target *t,
				struct mel_diags *warn, struct mel_err *err)
{
	struct mel_config *cfg;
	struct mel_plan *plan;
	memset(err, 0, sizeof(*err));
	if (mel_config_parse(p, "pkg.yaml", text, strlen(text), &cfg, warn, err) < 0)
		return NULL;
	if (mel_compile(p, cfg, t ? t : &AMD64, &plan, warn, err) < 0)
		return NULL;
	return plan;
}

static const char *env_of(const struct mel_exec *e, const char *key)
{
	for (size_t i = 0; i < e->env.n; i++)
		if (strcmp(e->env.v[i].key, key) == 0)
			return e->env.v[i].value;
	return NULL;
}

/* The runs part of a script (after the three prelude lines). */
static const char *runs_of(const struct mel_exec *e)
{
	const char *s = e->script;
	for (int i = 0; i < 3 && s; i++) {
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return s;
}

/* ---- YAML --------------------------------------------------------------------- */

static void yaml_lines_and_literals(void **state)
{
	(void)state;
	struct mel_pool *p = mel_pool_new();
	struct mel_err err;
	struct mel_node *root;
	const char *y = "a: 0.2\n# c\nb:\n  - 3.10\n  - ''\nc:\nd: &x {k: v}\ne: *x\n";
	assert_int_equal(mel_yaml_load(p, "f", y, strlen(y), &root, &err), 0);
	assert_int_equal(root->kind, MEL_MAP);
	assert_int_equal(root->n, 10);
	assert_string_equal(root->v[1]->str, "0.2");
	assert_int_equal(root->v[2]->line, 3);
	assert_string_equal(root->v[3]->v[0]->str, "3.10");
	assert_int_equal(root->v[3]->v[1]->line, 5);
	assert_false(root->v[3]->v[1]->null_);
	assert_true(root->v[5]->null_);
	assert_ptr_equal(root->v[7], root->v[9]);
	/* errors carry a line */
	const char *bad[] = { "a: [1,\nb: 2\n", "a: 1\na: 2\n", "--- 1\n--- 2\n", "a: *nope\n" };
	int lines[] = { 3, 2, 2, 1 };
	for (size_t i = 0; i < 4; i++) {
		memset(&err, 0, sizeof(err));
		assert_int_equal(mel_yaml_load(p, "f", bad[i], strlen(bad[i]), &root, &err), -1);
		assert_int_equal(err.line, lines[i]);
		assert_string_equal(err.file, "f");
	}
	/* an alias bomb is refused */
	struct mel_buf b = { 0 };
	mel_buf_adds(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++) {
		char line[128];
		snprintf(line, sizeof(line), "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			 i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
		mel_buf_adds(&b, line);
	}
	assert_int_equal(mel_yaml_load(p, "f", b.s, b.len, &root, &err), -1);
	assert_non_null(strstr(err.msg, "expands"));
	mel_buf_free(&b);
	mel_pool_free(p);
}

/* ---- substitution ---------------------------------------------------------------- */

static void substitution_modes(void **state)
{
	(void)state;
	struct mel_pool *p = mel_pool_new();
	struct mel_scope s = { 0 };
	mel_scope_set(p, &s, "package.name", "hello");
	mel_scope_set(p, &s, "vars.q", "a\"b");
	const char *out, *bad = NULL;
	assert_int_equal(mel_subst(p, "${{package.name}}-${{ package.name }}-${X}-${{x.y}}",
				   MEL_SUBST_PARSE, &s, &out, &bad), 0);
	assert_string_equal(out, "hello-hello-${X}-${{x.y}}");
	assert_int_equal(mel_subst(p, "${{x.y}}", MEL_SUBST_RAW, &s, &out, &bad), -1);
	assert_string_equal(bad, "x.y");
	assert_int_equal(mel_subst(p, "${{ bad name}}", MEL_SUBST_RAW, &s, &out, &bad), -1);
	assert_int_equal(mel_subst(p, "${{vars.q}} == 'x'", MEL_SUBST_QUOTED, &s, &out, &bad), 0);
	assert_string_equal(out, "\"a\\\"b\" == 'x'");
	struct mel_scope child = { .parent = &s };
	mel_scope_set(p, &child, "package.name", "shadow");
	assert_string_equal(mel_scope_get(&child, "package.name", 12), "shadow");
	assert_string_equal(mel_scope_get(&child, "vars.q", 6), "a\"b");
	mel_pool_free(p);
}

/* ---- if: ------------------------------------------------------------------------- */

static void conditions(void **state)
{
	(void)state;
	static const struct {
		const char *expr;
		int result; /* 1 true, 0 false, -1 syntax error */
	} cases[] = {
		{ "'a' == 'a'", 1 },
		{ "'a' != 'a'", 0 },
		{ "\"x\" == 'x'", 1 },
		{ "'a' == 'b' || 'c' == 'c'", 1 },
		{ "'a' == 'a' && 'c' == 'd'", 0 },
		{ "'a' == 'a' || 'b' == 'b' && 'c' == 'd'", 0 }, /* left to right */
		{ "'a' == 'a' || ('b' == 'b' && 'c' == 'd')", 1 },
		{ "('a' == 'b')", 0 },
		{ "${{build.arch}} == ''", 1 },
		{ "'it\\'s' == \"it's\"", 1 },
		{ "'\\n' == \"\n\"", 1 },
		{ "'\\q' == '\\\\q'", 1 },
		{ " \t'a'\n==\r'a' ", 1 },
		{ "true == 'true'", -1 },
		{ "'a'", -1 },
		{ "'a' = 'a'", -1 },
		{ "('a' == 'a'", -1 },
		{ "'a' == 'a' &&", -1 },
		{ "'a' == 'a' x", -1 },
		{ "'unterminated == 'x", -1 },
		{ "", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool r = false;
		char msg[128] = "";
		size_t off = 0;
		int rc = mel_cond_eval(cases[i].expr, &r, msg, sizeof(msg), &off);
		if (cases[i].result < 0) {
			if (rc != -1)
				fail_msg("'%s' parsed", cases[i].expr);
			assert_true(msg[0] != '\0');
		} else {
			if (rc != 0)
				fail_msg("'%s': %s", cases[i].expr, msg);
			if ((int)r != cases[i].result)
				fail_msg("'%s' gave %d", cases[i].expr, (int)r);
		}
	}
	/* deep nesting is refused, not a crash */
	char deep[1024];
	memset(deep, '(', 600);
	deep[600] = '\0';
	bool r;
	char msg[128];
	size_t off;
	assert_int_equal(mel_cond_eval(deep, &r, msg, sizeof(msg), &off), -1);
}

/* ---- the schema and both phases ------------------------------------------------------ */

static const char *FULL =
	"package:\n"
	"  name: demo\n"
	"  version: 1.20.3\n"
	"  epoch: 2\n"
	"  description: a demo\n"
	"  copyright:\n"
	"    - license: MIT\n"
	"  dependencies:\n"
	"    runtime: [busybox, '${{package.name}}-libs']\n"
	"    provides: ['demo-bin=${{package.full-version}}']\n"
	"  frobnicate: 1\n"
	"environment:\n"
	"  contents:\n"
	"    packages: [busybox, build-base]\n"
	"  environment:\n"
	"    CFLAGS: -O2\n"
	"    PATH: /not/used\n"
	"vars:\n"
	"  flavor: min\n"
	"var-transforms:\n"
	"  - from: ${{package.version}}\n"
	"    match: ^(\\d+)\\.(\\d+)\\.\\d+$\n"
	"    replace: $1.$2\n"
	"    to: mm\n"
	"  - from: ${{vars.mm}}\n"
	"    match: \\.\n"
	"    replace: _\n"
	"    to: mmu\n"
	"data:\n"
	"  - name: langs\n"
	"    items:\n"
	"      fr: French\n"
	"      de: German\n"
	"pipeline:\n"
	"  - name: first ${{package.name}}\n"
	"    runs: echo ${{vars.mm}} ${{vars.mmu}} ${{targets.destdir}} ${{build.arch}}\n"
	"  - if: '\"${{vars.flavor}}\" == \"min\"'\n"
	"    environment:\n"
	"      LEVEL: parent\n"
	"      TAG: ${{package.name}}-${{targets.destdir}}\n"
	"    working-directory: sub\n"
	"    pipeline:\n"
	"      - runs: echo child\n"
	"      - environment: {LEVEL: child}\n"
	"        working-directory: /abs\n"
	"        runs: echo child2\n"
	"  - if: ${{build.arch}} == 'aarch64'\n"
	"    runs: echo arm only\n"
	"  - uses: autoconf/make-install\n"
	"    with:\n"
	"      dir: build-${{vars.flavor}}\n"
	"subpackages:\n"
	"  - name: ${{package.name}}-doc\n"
	"    pipeline:\n"
	"      - runs: echo ${{targets.subpkgdir}} ${{targets.contextdir}} ${{targets.destdir}}\n"
	"  - range: langs\n"
	"    name: demo-lang-${{range.key}}\n"
	"    description: ${{range.value}}\n"
	"    pipeline:\n"
	"      - runs: echo ${{range.key}}=${{range.value}} ${{subpkg.name}}\n"
	"  - name: never\n"
	"    if: ${{build.arch}} == 'x86_64'\n"
	"  - name: kept\n"
	"    if: '\"${{vars.flavor}}\" == \"min\"'\n";

static void full_file(void **state)
{
	(void)state;
	struct mel_pool *p = mel_pool_new();
	struct mel_diags warn = { 0 };
	struct mel_err err;
	struct mel_plan *pl = compile(p, FULL, NULL, &warn, &err);
	if (!pl)
		fail_msg("%s:%d: %s", err.file, err.line, err.msg);
	const struct mel_config *cfg = pl->cfg;
	/* package */
	assert_string_equal(cfg->version, "1.20.3");
	assert_int_equal(cfg->epoch, 2);
	assert_int_equal(cfg->licenses.n, 1);
	assert_string_equal(cfg->deps.runtime.v[1], "demo-libs");
	assert_string_equal(cfg->deps.provides.v[0], "demo-bin=1.20.3-r2");
	assert_int_equal(cfg->packages.n, 2);
	/* the unknown key is a warning with its line */
	assert_int_equal(warn.n, 1);
	assert_int_equal(warn.v[0].line, 11);
	assert_non_null(strstr(warn.v[0].msg, "frobnicate"));
	/* outputs: main, doc, the range sorted by key, kept (never dropped) */
	assert_int_equal(pl->n_outputs, 5);
	assert_string_equal(pl->outputs[1].name, "demo-doc");
	assert_string_equal(pl->outputs[2].name, "demo-lang-de");
	assert_string_equal(pl->outputs[3].name, "demo-lang-fr");
	assert_string_equal(pl->outputs[4].name, "kept");
	assert_string_equal(cfg->subs[2].description, "French");
	/* main steps: first, the if-true block's wd + 2 children, make-install */
	assert_int_equal(pl->outputs[0].n_execs, 5);
	const struct mel_exec *e = pl->execs;
	assert_string_equal(e[0].label, "first demo");
	assert_int_equal(e[0].line, 36);
	assert_string_equal(runs_of(&e[0]),
			    "echo 1.20 1_20 /home/build/melange-out/demo x86_64\nexit 0");
	assert_string_equal(e[0].wd, "/home/build");
	assert_non_null(strstr(e[0].script, "set -eo pipefail\n[ -d '/home/build' ]"));
	assert_string_equal(env_of(&e[0], "PATH"),
			    "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin");
	assert_string_equal(env_of(&e[0], "CFLAGS"), "-O2");
	assert_string_equal(env_of(&e[0], "HOME"), "/home/build");
	assert_string_equal(env_of(&e[0], "SOURCE_DATE_EPOCH"), "0");
	assert_null(env_of(&e[0], "LEVEL"));
	for (size_t i = 1; i < e[0].env.n; i++)
		assert_true(strcmp(e[0].env.v[i - 1].key, e[0].env.v[i].key) < 0);
	/* the block: relative wd joined to /home/build, children inherit */
	assert_string_equal(e[1].wd, "/home/build/sub");
	assert_string_equal(e[2].wd, "/home/build/sub");
	assert_string_equal(env_of(&e[2], "LEVEL"), "parent");
	/* environment values only get the parse phase */
	assert_string_equal(env_of(&e[2], "TAG"), "demo-${{targets.destdir}}");
	assert_string_equal(e[3].wd, "/abs");
	assert_string_equal(env_of(&e[3], "LEVEL"), "child");
	/* uses: with bound, contextdir, reported at the uses: line */
	assert_string_equal(e[4].label, "uses: autoconf/make-install");
	assert_int_equal(e[4].line, 49);
	assert_non_null(strstr(e[4].script, "make -C build-min install "
					    "DESTDIR=/home/build/melange-out/demo V=1"));
	/* subpackages */
	const struct mel_exec *d = &pl->execs[pl->outputs[1].first_exec];
	assert_string_equal(runs_of(d), "echo /home/build/melange-out/demo-doc "
					"/home/build/melange-out/demo-doc "
					"/home/build/melange-out/demo\nexit 0");
	d = &pl->execs[pl->outputs[3].first_exec];
	assert_string_equal(runs_of(d), "echo fr=French demo-lang-fr\nexit 0");
	assert_int_equal(pl->outputs[4].n_execs, 0);

	/* aarch64: the arm-only step runs */
	struct mel_target arm = { "aarch64", "0" };
	struct mel_pool *p2 = mel_pool_new();
	struct mel_plan *pl2 = compile(p2, FULL, &arm, NULL, &err);
	assert_non_null(pl2);
	assert_int_equal(pl2->outputs[0].n_execs, 6);
	assert_string_equal(runs_of(&pl2->execs[4]), "echo arm only\nexit 0");
	mel_pool_free(p2);
	mel_pool_free(p);
}

/* ---- errors with file:line ------------------------------------------------------- */

static void errors_have_lines(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
		{ "package: {name: x, version: 1}\npipeline:\n  - runs: [a\n", 4, "bad YAML" },
		{ "package: {name: x, version: 1}\npipeline:\n  - if: ${{package.name}} == 'x'\n"
		  "    runs: echo\n", 3, "bad if" },
		{ "package: {name: x, version: 1}\npipeline:\n  - uses: nope\n", 3,
		  "unknown pipeline" },
		{ "package: {name: x, version: 1}\npipeline:\n  - runs: echo\n  - runs: |\n"
		  "      echo ${{targets.subpkgdir}}\n", 4, "undefined variable" },
		{ "package: {name: x, version: 1}\npipeline:\n  - working-directory: ${{nope.x}}\n",
		  3, "undefined" },
		{ "package: {name: x, version: 1}\npipeline:\n  - uses: autoconf/make\n    with:\n"
		  "      bogus: 1\n", 5, "no input" },
		{ "package: {name: x, version: 1}\npipeline:\n  - uses: autoconf/make\n"
		  "    runs: echo\n", 4, "both" },
		{ "package: {name: x, version: 1}\npipeline:\n  - with: {a: b}\n", 3, "uses" },
		{ "package: {name: 'bad name', version: 1}\n", 1, "package.name" },
		{ "package: {name: x}\n", 1, "version" },
		{ "package:\n  name: x\n  version: 1\n  epoch: -1\n", 4, "epoch" },
		{ "package: {name: x, version: 1}\nsubpackages:\n  - name: y\n    range: nope\n", 4,
		  "no data entry" },
		{ "package: {name: x, version: 1}\nsubpackages:\n  - name: x\n", 3, "main package" },
		{ "package: {name: x, version: 1}\npipeline: 3\n", 2, "list" },
		{ "package: {name: x, version: 1}\npipeline:\n  - runs: echo\n    if: \"'a' ==\"\n",
		  4, "bad if" },
		{ "package: {name: x, version: 1}\npipeline:\n  - name: n\n    assertions:\n"
		  "      required-steps: 2\n    pipeline:\n      - runs: echo\n", 3, "required-steps" },
		{ "package: {name: x, version: 1}\nvar-transforms:\n  - from: a\n    match: (?i)a\n"
		  "    replace: b\n    to: c\n", 3, "not supported" },
		/* glibc's regcomp would take seconds and gigabytes on these
		 * (found by make fuzz-melange); Go refuses the first two */
		{ "package: {name: x, version: 1}\nvar-transforms:\n  - from: a\n"
		  "    match: a+++++++++++++++++++++++++++++++++++++++++\n    replace: b\n    to: c\n",
		  3, "nested repetition" },
		{ "package: {name: x, version: 1}\nvar-transforms:\n  - from: a\n"
		  "    match: a{1001}\n    replace: b\n    to: c\n", 3, "repeat count" },
		{ "package: {name: x, version: 1}\nvar-transforms:\n  - from: a\n"
		  "    match: ((((a+)+)+)+){999}\n    replace: b\n    to: c\n", 3, "too large" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mel_pool *p = mel_pool_new();
		struct mel_err err;
		struct mel_plan *pl = compile(p, cases[i].text, NULL, NULL, &err);
		if (pl)
			fail_msg("case %zu compiled", i);
		if (err.line != cases[i].line || !strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: %s:%d: %s (want line %d, '%s')", i, err.file, err.line,
				 err.msg, cases[i].line, cases[i].msg);
		assert_string_equal(err.file, "pkg.yaml");
		mel_pool_free(p);
	}
}

/* Every built-in pipeline parses and compiles with its defaults. */
static void builtin_pipelines_compile(void **state)
{
	(void)state;
	for (const char *const *n = mel_pipeline_names; *n; n++) {
		assert_non_null(mel_pipeline_text(*n));
		char text[512];
		const bool split = strncmp(*n, "split/", 6) == 0;
		const char *with = !strcmp(*n, "patch") ? "\n    with: {patches: a.patch}" : "";
		snprintf(text, sizeof(text),
			 "package: {name: x, version: 1}\n%s:\n%s  - uses: %s%s\n",
			 split ? "subpackages" : "pipeline", split ? "  - name: x-sub\n    pipeline:\n  " : "",
			 *n, with);
		struct mel_pool *p = mel_pool_new();
		struct mel_err err;
		struct mel_plan *pl = compile(p, text, NULL, NULL, &err);
		if (!pl)
			fail_msg("%s: %s:%d: %s\n%s", *n, err.file, err.line, err.msg, text);
		assert_true(pl->n_execs >= 1);
		mel_pool_free(p);
	}
}

/* ---- the graph ------------------------------------------------------------------ */

static const char *digest_of(const char *text, const char *platform, const char *image)
{
	static char digest[KILN_GRAPH_DIGEST_SIZE];
	struct mel_pool *p = mel_pool_new();
	struct mel_err merr;
	struct mel_target t = { mel_apk_arch(platform), "0" };
	struct mel_plan *pl = compile(p, text, &t, NULL, &merr);
	assert_non_null(pl);
	struct kiln_arena *a = kiln__arena_new();
	struct mel_llb_opts o = { image, platform, "source", "pkg.yaml" };
	const uint8_t *data;
	size_t len;
	struct kiln_err err = { 0 };
	assert_int_equal(mel_llb(&kiln__host, pl, &o, a, &data, &len, digest, &err), 0);
	assert_true(len > 100);
	kiln__arena_free(a);
	mel_pool_free(p);
	return digest;
}

static void same_digest_100_times(void **state)
{
	(void)state;
	char first[KILN_GRAPH_DIGEST_SIZE];
	snprintf(first, sizeof(first), "%s", digest_of(FULL, "linux/amd64", "busybox:latest"));
	assert_int_equal(strncmp(first, "sha256:", 7), 0);
	for (int i = 0; i < 100; i++) {
		/* allocate in between, so heap layouts differ */
		void *junk = malloc((size_t)(i * 37 + 1));
		assert_string_equal(digest_of(FULL, "linux/amd64", "busybox:latest"), first);
		free(junk);
	}
	assert_string_not_equal(digest_of(FULL, "linux/arm64", "busybox:latest"), first);
	assert_string_not_equal(digest_of(FULL, "linux/amd64", "debian:bookworm"), first);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(yaml_lines_and_literals),
		cmocka_unit_test(substitution_modes),
		cmocka_unit_test(conditions),
		cmocka_unit_test(full_file),
		cmocka_unit_test(errors_have_lines),
		cmocka_unit_test(builtin_pipelines_compile),
		cmocka_unit_test(same_digest_100_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
