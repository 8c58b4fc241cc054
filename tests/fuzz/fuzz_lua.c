/*
 * fuzz_lua: libFuzzer target of the kiln.lua loader (core/lua_script.c and
 * core/plan.c, `make fuzz-lua`). Each input is a script: written to
 * kiln.lua in a project directory (which also holds a module, mod.lua, and
 * a data file for require and kiln.read_file), loaded by kiln__plan_load
 * in the real sandbox with one --set and one --var, then, when it loads,
 * kiln__plan_select of the default (or of the last target declared). The
 * script's limits are lowered (64 MiB, 1 s) so that loops and hoarding end
 * as the errors a user would get, not as fuzzer timeouts. Checks: an error
 * carries a message; a loaded plan holds together (names, jobs in range).
 * print() and log lines go to /dev/null while the script runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plan.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char script[4096];
static FILE *devnull;

static int put(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/tmp/kiln-fuzz-lua-XXXXXX";
	const char *dir = mkdtemp(tmpl);
	if (!dir)
		return 1;
	snprintf(script, sizeof(script), "%s/kiln.lua", dir);
	put(dir, "mod.lua", "return { base = { context = 'app', args = { A = '1' } } }\n");
	put(dir, "data.txt", "hello\n");
	kiln__script_mem_max = (size_t)64 << 20;
	kiln__script_seconds_max = 1;
	devnull = fopen("/dev/null", "w");
	setenv("KILN_FUZZ_ENV", "value", 1);
	return devnull == NULL;
}

static void check_plan(struct kiln_plan *plan)
{
	for (size_t i = 0; i < plan->n_targets; i++) {
		const struct kiln_plan_target *t = plan->targets[i];
		CHECK(t && t->name && t->context && t->dockerfile);
		CHECK(kiln__plan_target(plan, t->name) == t);
		for (size_t k = 0; k < t->args.n; k++)
			CHECK(t->args.v[k].key && t->args.v[k].value);
	}
	for (size_t i = 0; i < plan->n_groups; i++)
		CHECK(kiln__plan_group(plan, plan->groups[i]->name) == plan->groups[i]);
}

static void check_select(struct kiln_plan *plan, const char *const *names, size_t n)
{
	struct kiln_err err = { 0 };
	if (kiln__plan_select(plan, names, n, &err) != 0) {
		CHECK(err.msg[0]);
		return;
	}
	for (size_t j = 0; j < plan->n_jobs; j++) {
		const struct kiln_plan_job *job = &plan->jobs[j];
		CHECK(job->target && job->id);
		for (size_t d = 0; d < job->n_deps; d++)
			CHECK(job->deps[d] < j); /* dependency order */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(script, "w");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);

	static const char *const sets[] = { "*.labels.fuzz=1" };
	static const struct kiln_kv vars[] = { { "VERSION", "1.0" } };
	struct kiln_plan_opts opts = { .file = script, .sets = sets, .n_sets = 1,
				       .vars = vars, .n_vars = 1 };
	struct kiln_plan plan;
	struct kiln_err err = { 0 };
	FILE *saved = stderr;
	stderr = devnull;
	int rc = kiln__plan_load(&plan, &opts, &err);
	stderr = saved;
	if (rc != 0) {
		CHECK(rc < 0 && err.msg[0]);
		kiln__plan_release(&plan);
		return 0;
	}
	check_plan(&plan);
	/* kiln__plan_select is once a plan: the default when there is one
	 * (group "default" or a single target), else the last declared */
	if (kiln__plan_group(&plan, "default") || plan.n_targets == 1 || plan.n_decls == 0)
		check_select(&plan, NULL, 0);
	else
		check_select(&plan, &plan.decls[plan.n_decls - 1]->name, 1);
	kiln__plan_release(&plan);
	return 0;
}
