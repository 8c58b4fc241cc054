/*
 * fuzz_melange: libFuzzer target of the melange frontend (`make fuzz`).
 * Every input is read as a melange build file and compiled for x86_64
 * and aarch64 (YAML, schema, both substitution phases, var-transforms,
 * ranges, uses:, if:); a result must hold together (outputs cover the
 * execs, every exec has a script, a sorted env and a source line), an
 * error must carry a terminated message. The input is also evaluated
 * as an if: condition and substituted in every mode.
 * The graph step (llb.c) needs the host table and is covered by
 * tests/unit/test_melange.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/frontend-melange/melange.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void compile_one(const char *text, size_t size, const char *arch)
{
	struct mel_pool *p = mel_pool_new();
	struct mel_diags warn = { 0 };
	struct mel_err err = { 0 };
	struct mel_config *cfg = NULL;
	struct mel_plan *plan = NULL;
	struct mel_target t = { arch, "0" };
	int rc = mel_config_parse(p, "fuzz.yaml", text, size, &cfg, &warn, &err);
	if (rc == 0)
		rc = mel_compile(p, cfg, &t, &plan, &warn, &err);
	if (rc < 0) {
		CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
		CHECK(err.msg[0] != '\0');
	} else {
		CHECK(plan->n_outputs == cfg->n_subs + 1);
		size_t next = 0;
		for (size_t i = 0; i < plan->n_outputs; i++) {
			CHECK(plan->outputs[i].first_exec == next);
			next += plan->outputs[i].n_execs;
		}
		CHECK(next == plan->n_execs);
		for (size_t i = 0; i < plan->n_execs; i++) {
			const struct mel_exec *e = &plan->execs[i];
			CHECK(e->script && e->label && e->file && e->wd && e->wd[0] == '/');
			for (size_t k = 1; k < e->env.n; k++)
				CHECK(strcmp(e->env.v[k - 1].key, e->env.v[k].key) < 0);
		}
	}
	for (size_t i = 0; i < warn.n; i++)
		CHECK(warn.v[i].msg != NULL);
	mel_pool_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	compile_one(text, size, "x86_64");
	compile_one(text, size, "aarch64");

	bool r;
	char msg[256];
	size_t off = 0;
	if (mel_cond_eval(text, &r, msg, sizeof(msg), &off) < 0)
		CHECK(off <= size && memchr(msg, '\0', sizeof(msg)) != NULL);

	struct mel_pool *p = mel_pool_new();
	struct mel_scope s = { 0 };
	mel_scope_set(p, &s, "package.name", "fuzz");
	mel_scope_set(p, &s, "vars.x", "a\"b\\c");
	for (int mode = MEL_SUBST_PARSE; mode <= MEL_SUBST_QUOTED; mode++) {
		const char *out = NULL, *bad = NULL;
		if (mel_subst(p, text, (enum mel_subst_mode)mode, &s, &out, &bad) == 0)
			CHECK(out != NULL);
		else
			CHECK(mode != MEL_SUBST_PARSE && bad != NULL);
	}
	mel_pool_free(p);
	free(text);
	return 0;
}
