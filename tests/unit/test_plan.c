/* Unit tests of the plan (core/plan.c, core/lua_script.c) below what
 * `kiln print` shows: the jobs (target x platform), their order and the
 * jobs each waits for. Scripts are real files evaluated by the real Lua
 * state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan.h"
#include "util.h"

/* Load text as a script in a fresh directory and select names. */
static int load(struct kiln_plan *plan, const char *text, const char *const *names, size_t n,
		struct kiln_err *err)
{
	char dir[] = "/tmp/kiln-test-plan.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *file = kiln__xasprintf("%s/kiln.lua", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	struct kiln_plan_opts opts = { .file = file };
	int rc = kiln__plan_load(plan, &opts, err);
	if (rc == 0)
		rc = kiln__plan_select(plan, names, n, err);
	unlink(file);
	rmdir(dir);
	free(file);
	return rc;
}

/* "id<-dep,dep" for job i. */
static char *job_text(const struct kiln_plan *plan, size_t i)
{
	struct kiln_sb sb = KILN_SB_INIT;
	const struct kiln_plan_job *j = &plan->jobs[i];
	kiln__sb_adds(&sb, j->id);
	for (size_t d = 0; d < j->n_deps; d++)
		kiln__sb_addf(&sb, "%s%s", d ? "," : "<-", plan->jobs[j->deps[d]].id);
	return kiln__sb_detach(&sb);
}

static void assert_jobs(const struct kiln_plan *plan, const char *const *want, size_t n)
{
	assert_int_equal(plan->n_jobs, n);
	for (size_t i = 0; i < n; i++) {
		char *got = job_text(plan, i);
		assert_string_equal(got, want[i]);
		free(got);
	}
}

static void jobs_are_target_times_platform_in_dependency_order(void **st)
{
	(void)st;
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	int rc = load(&plan,
		      "target 'app' { depends = { 'base' }, platforms = { 'linux/amd64', 'linux/arm64' } }\n"
		      "target 'base' { platforms = { 'linux/amd64', 'linux/arm64' } }\n"
		      "target 'lint' {}\n"
		      "group 'default' { 'app', 'lint' }\n",
		      NULL, 0, &err);
	assert_int_equal(rc, 0);
	static const char *const want[] = {
		"base@linux/amd64", "base@linux/arm64",
		"app@linux/amd64<-base@linux/amd64,base@linux/arm64",
		"app@linux/arm64<-base@linux/amd64,base@linux/arm64",
		"lint",
	};
	assert_jobs(&plan, want, 5);
	assert_int_equal(plan.n_selected, 3);
	assert_string_equal(plan.selected[0]->name, "app"); /* by name */
	assert_null(plan.jobs[4].platform);
	kiln__plan_release(&plan);
}

/* A context from a target needs only the same platform's job when the
 * other target builds that platform; depends needs all of them. */
static void a_context_waits_for_the_same_platform(void **st)
{
	(void)st;
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	static const char *const names[] = { "app", "tool" };
	int rc = load(&plan,
		      "target 'base' { tags = { 'b' }, platforms = { 'linux/amd64', 'linux/arm64' } }\n"
		      "target 'app' { contexts = { b = 'target:base' }, platforms = { 'linux/arm64', 'linux/riscv64' } }\n"
		      "target 'tool' { contexts = { b = 'target:base' } }\n",
		      names, 2, &err);
	assert_int_equal(rc, 0);
	static const char *const want[] = {
		"base@linux/amd64", "base@linux/arm64",
		"app@linux/arm64<-base@linux/arm64",
		"app@linux/riscv64<-base@linux/amd64,base@linux/arm64",
		"tool<-base@linux/amd64,base@linux/arm64",
	};
	assert_jobs(&plan, want, 5);
	kiln__plan_release(&plan);
}

static void depends_on_a_group_and_each_job_once(void **st)
{
	(void)st;
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	static const char *const names[] = { "all", "z", "all" };
	int rc = load(&plan,
		      "target 'a' {} target 'b' {}\n"
		      "group 'libs' { 'a', 'b' }\n"
		      "target 'z' { depends = { 'libs', 'a' } }\n"
		      "group 'all' { 'z', 'libs' }\n",
		      names, 3, &err);
	assert_int_equal(rc, 0);
	static const char *const want[] = { "a", "b", "z<-a,b" };
	assert_jobs(&plan, want, 3);
	assert_int_equal(plan.n_selected_groups, 2); /* all, libs */
	kiln__plan_release(&plan);
}

static void an_unknown_name_is_an_error_with_the_script_named(void **st)
{
	(void)st;
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	static const char *const names[] = { "nope" };
	int rc = load(&plan, "target 'a' {}\n", names, 1, &err);
	assert_int_equal(rc, KILN_E_NOTFOUND);
	assert_string_equal(err.msg, "no target or group named 'nope'");
	assert_non_null(strstr(err.file, "/kiln.lua"));
	kiln__plan_release(&plan);
}

/* Lua errors unwind with longjmp: what was declared before stays owned by
 * the plan and is freed with it (the sanitizer build checks for leaks). */
static void a_lua_error_keeps_the_traceback(void **st)
{
	(void)st;
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	int rc = load(&plan, "target 'a' { tags = { 'x' } }\nlocal t = nil\nprint(t.x)\n", NULL, 0,
		      &err);
	assert_int_equal(rc, KILN_E_SYNTAX);
	assert_int_equal(err.line, 3);
	assert_string_equal(err.msg, "attempt to index a nil value (local 't')");
	assert_non_null(plan.traceback);
	assert_non_null(strstr(plan.traceback, "stack traceback:"));
	assert_int_equal(plan.n_decls, 1);
	kiln__plan_release(&plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jobs_are_target_times_platform_in_dependency_order),
		cmocka_unit_test(a_context_waits_for_the_same_platform),
		cmocka_unit_test(depends_on_a_group_and_each_job_once),
		cmocka_unit_test(an_unknown_name_is_an_error_with_the_script_named),
		cmocka_unit_test(a_lua_error_keeps_the_traceback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
