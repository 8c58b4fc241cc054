/*
 * fuzz_dockerfile: libFuzzer target of the Dockerfile parser (`make fuzz`).
 * Every input is parsed as a Dockerfile (with two --build-args); a parse
 * result must survive df_to_json, df_steps for every stage and
 * df_stage_index, and hold together (indices in range, arrays as long as
 * they say); an error must carry a terminated message. The input is also
 * expanded as one word by df_expand with both escape characters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/frontend-dockerfile/parser.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *lookup(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "A") == 0)
		return "alpha";
	if (strcmp(name, "E") == 0)
		return "";
	if (strcmp(name, "P") == 0)
		return "/usr/local/bin:/usr/bin:/bin";
	return NULL;
}

static void unset(void *ctx, const char *name)
{
	size_t *n = ctx;
	CHECK(name != NULL);
	(*n)++;
}

static void check_instruction(const struct df_instruction *in, int depth)
{
	CHECK(in->keyword && in->original);
	CHECK((unsigned)in->kind < DF_KIND_COUNT);
	CHECK(in->line >= 1 && in->end_line >= in->line && in->column >= 1);
	for (size_t i = 0; i < in->n_flags; i++)
		CHECK(in->flags[i].name && in->flags[i].line >= 1);
	for (size_t i = 0; i < in->n_args; i++) {
		CHECK(in->args[i]);
		if (in->expanded)
			CHECK(in->expanded[i]);
	}
	for (size_t i = 0; i < in->n_kvs; i++)
		CHECK(in->kvs[i].key);
	for (size_t i = 0; i < in->n_heredocs; i++)
		CHECK(in->heredocs[i].name && in->heredocs[i].content);
	if (in->onbuild) {
		CHECK(depth == 0 && in->kind == DF_ONBUILD);
		check_instruction(in->onbuild, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const args[] = { "TAG", "1.2", "TARGETARCH", "arm64" };
	struct df_parse_opts opts = { .build_args = args, .n_build_args = 2 };
	struct df_file *f = NULL;
	struct df_error err;

	if (df_parse("Dockerfile", (const char *)data, size, &opts, &f, &err) == 0) {
		CHECK(f && f->n_stages > 0);
		for (size_t i = 0; i < f->n_instructions; i++)
			check_instruction(&f->instructions[i], 0);
		for (size_t i = 0; i < f->n_stages; i++) {
			const struct df_stage *s = &f->stages[i];
			char idx[32];
			CHECK(s->first + s->count <= f->n_instructions && s->count >= 1);
			CHECK(f->instructions[s->first].kind == DF_FROM && s->base);
			CHECK(s->base_stage < (int)i);
			for (size_t k = 0; k < s->n_deps; k++)
				CHECK(s->deps[k] >= 0 && (size_t)s->deps[k] < f->n_stages);
			snprintf(idx, sizeof(idx), "%zu", i);
			CHECK(df_steps(f, idx) >= (int)s->count);
			if (s->name)
				CHECK(df_stage_index(f, s->name) >= 0);
		}
		CHECK(df_steps(f, NULL) >= 1);
		CHECK(df_steps(f, "no-such-stage-name") == -1);
		char *json = df_to_json(f);
		CHECK(json);
		free(json);
		df_free(f);
	} else {
		CHECK(f == NULL);
		CHECK(memchr(err.message, '\0', sizeof(err.message)) && err.message[0]);
		CHECK(err.line >= 0 && err.column >= 0);
	}

	if (size <= 4096) {
		char *w = malloc(size + 1);
		if (!w)
			return 0;
		memcpy(w, data, size);
		w[size] = '\0';
		for (int e = 0; e < 2; e++) {
			size_t n = 0;
			char *r = df_expand(w, e ? '`' : '\\', lookup, unset, &n, &err);
			if (r)
				free(r);
			else
				CHECK(err.message[0]);
		}
		free(w);
	}
	return 0;
}
