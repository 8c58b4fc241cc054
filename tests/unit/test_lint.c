// SOURCES: plugins/frontend-dockerfile/parser.c plugins/frontend-dockerfile/parser_json.c plugins/frontend-dockerfile/shell.c plugins/frontend-dockerfile/lint.c
// PKGS: jansson
/* Unit tests of the Dockerfile linter (plugins/frontend-dockerfile/lint.c):
 * for every rule a Dockerfile where it fires, at the exact line with
 * BuildKit's message, and a near miss where it must not; the check
 * directive (skip, skip=all, error=true, BUILDKIT_DOCKERFILE_CHECK); the
 * rule table and its URLs. Inputs go through the real parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/frontend-dockerfile/lint.h"
#include "../../plugins/frontend-dockerfile/parser.h"

/* The case tables leave the build-argument list out where there is none. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* ---- helpers -------------------------------------------------------------- */

/* Parses src with build args (K, V pairs) and lints it; the parse must
 * succeed. Returns df_lint's return code. */
static int lint_src(const char *src, const char *const *args, size_t n_pairs,
		    struct df_lint_result *res, struct df_error *lerr)
{
	struct df_parse_opts po = { .build_args = args, .n_build_args = n_pairs };
	struct df_file *f = NULL;
	struct df_error perr = { 0 };
	if (df_parse("Dockerfile", src, strlen(src), &po, &f, &perr) != 0)
		fail_msg("parse failed at %d:%d: %s\n--- input:\n%s", perr.line, perr.column,
			 perr.message, src);
	struct df_lint_opts lo = { .build_args = args, .n_build_args = n_pairs };
	memset(lerr, 0, sizeof(*lerr));
	int rc = df_lint(f, &lo, res, lerr);
	df_free(f);
	return rc;
}

/* The findings as "LINE:COL Rule: message\n" lines. */
static char *render(const struct df_lint_result *r)
{
	size_t cap = 1;
	for (size_t i = 0; i < r->n; i++)
		cap += strlen(r->findings[i].rule) + strlen(r->findings[i].message) + 40;
	char *s = malloc(cap), *p = s;
	*p = '\0';
	for (size_t i = 0; i < r->n; i++) {
		int w = snprintf(p, cap - (size_t)(p - s), "%d:%d %s: %s\n", r->findings[i].line,
				 r->findings[i].column, r->findings[i].rule, r->findings[i].message);
		p += w;
	}
	return s;
}

struct lcase {
	const char *name;
	const char *src;
	const char *want;         /* rendered findings */
	const char *args[4];      /* build args, K, V pairs, NULL-terminated */
};

static size_t pairs(const char *const *args)
{
	size_t n = 0;
	while (n < 4 && args[n])
		n++;
	return n / 2;
}

static void run_cases(const struct lcase *cases, size_t n)
{
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		struct df_lint_result res;
		struct df_error err;
		int rc = lint_src(cases[i].src, cases[i].args, pairs(cases[i].args), &res, &err);
		if (rc != 0) {
			print_error("case %s: df_lint failed: %s\n", cases[i].name, err.message);
			failed++;
			continue;
		}
		char *got = render(&res);
		if (strcmp(got, cases[i].want) != 0) {
			print_error("case %s:\n--- input:\n%s--- want:\n%s--- got:\n%s", cases[i].name,
				    cases[i].src, cases[i].want, got);
			failed++;
		}
		/* Every finding carries its rule's URL and a sane range. */
		for (size_t k = 0; k < res.n; k++) {
			const struct df_finding *fd = &res.findings[k];
			if (!fd->url || strncmp(fd->url, "https://docs.docker.com/go/dockerfile/rule/", 43) != 0 ||
			    fd->end_line < fd->line) {
				print_error("case %s: finding %zu has url %s, lines %d-%d\n",
					    cases[i].name, k, fd->url ? fd->url : "(null)", fd->line,
					    fd->end_line);
				failed++;
			}
		}
		free(got);
		df_lint_result_free(&res);
	}
	if (failed)
		fail_msg("%d case(s) failed", failed);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- per rule: positive and near-miss cases ------------------------------ */

static const struct lcase casing_cases[] = {
	{ "upper majority", "FROM alpine\nrun echo hi\nRUN echo there\n",
	  "2:1 ConsistentInstructionCasing: Command 'run' should match the case of the command majority (uppercase)\n" },
	{ "lower majority", "from alpine\nrun a\nRUN b\ncopy x /y\n",
	  "3:1 ConsistentInstructionCasing: Command 'RUN' should match the case of the command majority (lowercase)\n" },
	{ "mixed keyword", "From alpine\nRUN a\n",
	  "1:1 ConsistentInstructionCasing: Command 'From' should match the case of the command majority (uppercase)\n" },
	{ "tie goes to uppercase", "from alpine\nRUN a\n",
	  "1:1 ConsistentInstructionCasing: Command 'from' should match the case of the command majority (uppercase)\n" },
	{ "all lower", "from alpine\nrun a\n", "" },
	{ "meta ARG not counted", "arg V=3.19\nFROM alpine:$V\nRUN a\n", "" },
};

static void test_consistent_instruction_casing(void **state)
{
	(void)state;
	run_cases(casing_cases, N(casing_cases));
}

static const struct lcase stage_cases[] = {
	{ "duplicate", "FROM alpine AS base\nRUN a\nFROM debian AS base\n",
	  "3:1 DuplicateStageName: Duplicate stage name \"base\", stage names should be unique\n" },
	{ "duplicate other case",
	  "FROM alpine AS base\nFROM debian AS BASE\n",
	  "2:1 StageNameCasing: Stage name 'BASE' should be lowercase\n"
	  "2:1 DuplicateStageName: Duplicate stage name \"base\", stage names should be unique\n" },
	{ "distinct names", "FROM alpine AS base\nFROM base AS final\n", "" },
	{ "reserved", "FROM alpine AS context\n",
	  "1:1 ReservedStageName: Stage name should not use the same name as reserved stage \"context\"\n" },
	{ "reserved scratch", "FROM alpine AS scratch\n",
	  "1:1 ReservedStageName: Stage name should not use the same name as reserved stage \"scratch\"\n" },
	{ "not reserved", "FROM alpine AS contexts\nFROM scratch AS out\n", "" },
	{ "stage name casing", "FROM alpine AS Builder\n",
	  "1:1 StageNameCasing: Stage name 'Builder' should be lowercase\n" },
	{ "stage name lower", "FROM alpine AS builder\n", "" },
	{ "as casing", "FROM alpine as build\n",
	  "1:1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n" },
	{ "AS casing", "from alpine AS build\n",
	  "1:1 FromAsCasing: 'AS' and 'from' keywords' casing do not match\n" },
	{ "as matches from", "from alpine as build\n", "" },
	{ "mixed FROM: casing rule only", "From alpine as build\n",
	  "1:1 ConsistentInstructionCasing: Command 'From' should match the case of the command majority (uppercase)\n" },
};

static void test_stage_names(void **state)
{
	(void)state;
	run_cases(stage_cases, N(stage_cases));
}

static const struct lcase expose_cases[] = {
	{ "ip and host port", "FROM alpine\nEXPOSE 127.0.0.1:8080:80 8443:443/tcp\n",
	  "2:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:8080:80'\n"
	  "2:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8443:443/tcp'\n" },
	{ "from a variable", "FROM alpine\nARG PORT=8080:80\nEXPOSE $PORT\n",
	  "3:1 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80'\n" },
	{ "plain ports", "FROM alpine\nEXPOSE 80 443/tcp 53/udp 8000-8010\n", "" },
	{ "upper-case protocol", "FROM alpine\nEXPOSE 80/TCP 53/Udp\n",
	  "2:1 ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase\n"
	  "2:1 ExposeProtoCasing: Defined protocol '53/Udp' in EXPOSE instruction should be lowercase\n" },
	{ "lower-case protocol", "FROM alpine\nEXPOSE 80/tcp 9000/sctp\n", "" },
};

static void test_expose(void **state)
{
	(void)state;
	run_cases(expose_cases, N(expose_cases));
}

static const struct lcase platform_cases[] = {
	{ "constant platform", "FROM --platform=linux/amd64 alpine AS build\n",
	  "1:1 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value \"linux/amd64\"\n" },
	{ "constant platform, no name", "FROM --platform=linux/arm64 alpine\n",
	  "1:1 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value \"linux/arm64\"\n" },
	{ "stage named after its arch", "FROM --platform=linux/arm64 alpine AS build-arm64\n", "" },
	{ "variable platform", "FROM --platform=$BUILDPLATFORM alpine AS build\n", "" },
	{ "redundant", "FROM --platform=$TARGETPLATFORM alpine\n",
	  "1:1 RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior\n" },
	{ "redundant, braces", "FROM --platform=${TARGETPLATFORM} alpine\n",
	  "1:1 RedundantTargetPlatform: Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior\n" },
	{ "build platform", "FROM --platform=$BUILDPLATFORM alpine\n", "" },
};

static void test_from_platform(void **state)
{
	(void)state;
	run_cases(platform_cases, N(platform_cases));
}

static const struct lcase from_arg_cases[] = {
	{ "no default", "ARG TAG\nFROM alpine:${TAG}\n",
	  "2:1 InvalidDefaultArgInFrom: Default value for ARG alpine:${TAG} results in empty or invalid base image name\n" },
	{ "no default, build arg given", "ARG TAG\nFROM alpine:${TAG}\n",
	  "2:1 InvalidDefaultArgInFrom: Default value for ARG alpine:${TAG} results in empty or invalid base image name\n",
	  { "TAG", "3.19" } },
	{ "empty image by default", "ARG IMAGE\nFROM $IMAGE\n",
	  "2:1 InvalidDefaultArgInFrom: Default value for ARG $IMAGE results in empty or invalid base image name\n",
	  { "IMAGE", "alpine" } },
	{ "upper-case repository by default", "ARG REPO=Alpine\nFROM ${REPO}\n",
	  "2:1 InvalidDefaultArgInFrom: Default value for ARG ${REPO} results in empty or invalid base image name\n",
	  { "REPO", "alpine" } },
	{ "with default", "ARG TAG=3.19\nFROM alpine:${TAG}\n", "" },
	{ "registry, port, digest",
	  "ARG REG=localhost:5000\nFROM ${REG}/team/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
	  "" },
	{ "undeclared", "ARG TAG=3.19\nFROM alpine:${TAG}${SUFIX}\n",
	  "2:1 UndefinedArgInFrom: FROM argument 'SUFIX' is not declared\n" },
	{ "undeclared, suggestion", "ARG VERSION=3.19\nFROM alpine:${VERSON:-3.19}\n",
	  "2:1 UndefinedArgInFrom: FROM argument 'VERSON' is not declared (did you mean VERSION?)\n" },
	{ "declared without value", "ARG TAG\nFROM alpine:3${TAG}\n", "" },
	{ "predefined platform ARGs", "FROM --platform=$BUILDPLATFORM alpine:3.19\nFROM alpine:${TARGETARCH}\n", "" },
};

static void test_from_args(void **state)
{
	(void)state;
	run_cases(from_arg_cases, N(from_arg_cases));
}

static const struct lcase instr_cases[] = {
	{ "shell-form CMD and ENTRYPOINT", "FROM alpine\nCMD echo hi\nENTRYPOINT exec app\n",
	  "2:1 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n"
	  "3:1 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals\n" },
	{ "keyword as written", "from alpine\ncmd echo hi\n",
	  "2:1 JSONArgsRecommended: JSON arguments recommended for cmd to prevent unintended behavior related to OS signals\n" },
	{ "exec form", "FROM alpine\nCMD [\"echo\", \"hi\"]\nENTRYPOINT [\"app\"]\n", "" },
	{ "after SHELL", "FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n", "" },
	{ "SHELL in the parent stage", "FROM alpine AS base\nSHELL [\"/bin/sh\", \"-c\"]\nFROM base\nCMD echo hi\n", "" },
	{ "legacy ENV and LABEL", "FROM alpine\nENV FOO bar\nLABEL maintainer me\n",
	  "2:1 LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format\n"
	  "3:1 LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format\n" },
	{ "key=value", "FROM alpine\nENV FOO=bar BAR=\"a b\"\nLABEL a=b\n", "" },
	{ "MAINTAINER", "FROM alpine\nMAINTAINER me@example.com\n",
	  "2:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n" },
	{ "authors label", "FROM alpine\nLABEL org.opencontainers.image.authors=\"me@example.com\"\n", "" },
	{ "repeated CMD, ENTRYPOINT, HEALTHCHECK",
	  "FROM alpine\nCMD [\"a\"]\nENTRYPOINT [\"x\"]\nCMD [\"b\"]\nHEALTHCHECK NONE\n"
	  "HEALTHCHECK CMD [\"true\"]\nENTRYPOINT [\"y\"]\n",
	  "2:1 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used\n"
	  "3:1 MultipleInstructionsDisallowed: Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used\n"
	  "5:1 MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used\n" },
	{ "one CMD per stage", "FROM alpine AS a\nCMD [\"a\"]\nFROM a\nCMD [\"b\"]\n", "" },
	{ "secrets", "FROM alpine\nARG GITHUB_TOKEN\nENV AWS_SECRET_ACCESS_KEY=x\n",
	  "2:1 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"GITHUB_TOKEN\")\n"
	  "3:1 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"AWS_SECRET_ACCESS_KEY\")\n" },
	{ "not secrets", "ARG API_TOKEN=x\nFROM alpine\nARG PUBLIC_KEY\nENV KEYBOARD=us TOKENIZER=x GPG_KEY_FILE=/k\n", "" },
	{ "relative WORKDIR", "FROM alpine\nWORKDIR app\n",
	  "2:1 WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes\n" },
	{ "relative after absolute", "FROM alpine\nWORKDIR /app\nWORKDIR sub\n", "" },
	{ "absolute in the parent stage", "FROM alpine AS base\nWORKDIR /app\nFROM base\nWORKDIR sub\n", "" },
	{ "absolute after expansion", "FROM alpine\nENV D=/srv\nWORKDIR $D/app\n", "" },
	{ "ONBUILD trigger runs at the child's FROM",
	  "FROM alpine AS base\nONBUILD ENV FOO bar\nFROM base\nRUN true\n",
	  "3:1 LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format\n" },
};

static void test_instructions(void **state)
{
	(void)state;
	run_cases(instr_cases, N(instr_cases));
}

static const struct lcase var_cases[] = {
	{ "COPY source", "FROM alpine\nCOPY $foo /app/\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$foo'\n" },
	{ "suggestion", "FROM alpine\nENV PATH=$PAHT:/app/bin\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)\n" },
	{ "suggestion, case", "FROM alpine\nARG foo=1\nCOPY $Foo /\n",
	  "3:1 UndefinedVar: Usage of undefined variable '$Foo' (did you mean $foo?)\n" },
	{ "no suggestion at distance 3", "FROM alpine\nENV FOO_BAR=1\nCOPY $FOO_BAZ_X /\n",
	  "3:1 UndefinedVar: Usage of undefined variable '$FOO_BAZ_X'\n" },
	{ "suggestion at distance 2, first of equals", "FROM alpine\nENV ABXY=1 ABWX=2\nCOPY $ABZZ /\n",
	  "3:1 UndefinedVar: Usage of undefined variable '$ABZZ' (did you mean $ABXY?)\n" },
	{ "same ENV instruction", "FROM alpine\nENV A=1 B=$A\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$A'\n" },
	{ "ARG default", "FROM alpine\nARG V=$X\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$X'\n" },
	{ "meta ARG not redeclared", "ARG VERSION=1\nFROM alpine\nLABEL v=$VERSION\n",
	  "3:1 UndefinedVar: Usage of undefined variable '$VERSION'\n" },
	{ "meta ARG redeclared", "ARG VERSION=1\nFROM alpine\nARG VERSION\nLABEL v=$VERSION\n", "" },
	{ "default modifier still looks up", "FROM alpine\nWORKDIR ${HOME:-/root}\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$HOME'\n" },
	{ "RUN --mount", "FROM alpine\nRUN --mount=type=cache,target=$CACHE echo\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$CACHE'\n" },
	{ "heredoc body", "FROM alpine\nCOPY <<EOF /etc/app.conf\nhost=$HOST\nEOF\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$HOST'\n" },
	{ "heredoc body, single quotes do not hide", "FROM alpine\nCOPY <<EOF /etc/app.conf\nhost='$HOST'\nEOF\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$HOST'\n" },
	{ "quoted heredoc", "FROM alpine\nCOPY <<'EOF' /etc/app.conf\nhost=$HOST\nEOF\n", "" },
	{ "declared, set, inherited, shell",
	  "FROM alpine AS base\nENV APP=/app\nFROM base\nARG foo\nARG bar=1\nENV baz=2\n"
	  "COPY $foo/$bar/$baz $APP/\nRUN echo $undefined\nCMD [\"echo\", \"$undefined\"]\n"
	  "COPY \\$escaped /\n",
	  "" },
	{ "USER, VOLUME, STOPSIGNAL, LABEL value",
	  "FROM alpine\nUSER $U\nVOLUME $V\nSTOPSIGNAL $S\nLABEL k=$K\n",
	  "2:1 UndefinedVar: Usage of undefined variable '$U'\n"
	  "3:1 UndefinedVar: Usage of undefined variable '$V'\n"
	  "4:1 UndefinedVar: Usage of undefined variable '$S'\n"
	  "5:1 UndefinedVar: Usage of undefined variable '$K'\n" },
	{ "not in EXPOSE or FROM", "FROM alpine\nEXPOSE 80$P\n", "" },
};

static void test_undefined_var(void **state)
{
	(void)state;
	run_cases(var_cases, N(var_cases));
}

static const struct lcase cont_cases[] = {
	{ "empty continuation line", "FROM alpine\nRUN echo a \\\n\n    b\n",
	  "4:1 NoEmptyContinuation: Empty continuation line\n" },
	{ "comment in a continuation", "FROM alpine\nRUN echo a \\\n# comment\n    b\n", "" },
	{ "no blank line", "FROM alpine\nRUN echo a \\\n    b\n", "" },
};

static void test_no_empty_continuation(void **state)
{
	(void)state;
	run_cases(cont_cases, N(cont_cases));
}

/* Positions: the keyword's column, the instruction's last line. */
static void test_positions(void **state)
{
	(void)state;
	struct df_lint_result res;
	struct df_error err;
	assert_int_equal(lint_src("FROM alpine\n\n   CMD echo \\\n     hi\n", NULL, 0, &res, &err), 0);
	assert_int_equal(res.n, 1);
	assert_string_equal(res.findings[0].rule, "JSONArgsRecommended");
	assert_int_equal(res.findings[0].line, 3);
	assert_int_equal(res.findings[0].column, 4);
	assert_int_equal(res.findings[0].end_line, 4);
	assert_string_equal(res.findings[0].url,
			    "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/");
	df_lint_result_free(&res);

	/* Sorted by line whatever order the rules are raised in. */
	assert_int_equal(lint_src("FROM alpine AS Base\nRUN a \\\n\n b\nMAINTAINER x\nfrom base\n",
				  NULL, 0, &res, &err), 0);
	char *got = render(&res);
	assert_string_equal(got,
		"1:1 StageNameCasing: Stage name 'Base' should be lowercase\n"
		"4:1 NoEmptyContinuation: Empty continuation line\n"
		"5:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n"
		"6:1 ConsistentInstructionCasing: Command 'from' should match the case of the command majority (uppercase)\n");
	free(got);
	df_lint_result_free(&res);
}

/* ---- the check directive ------------------------------------------------- */

static const char two_rules[] = "FROM alpine\nMAINTAINER me\nCMD echo hi\n";

static void expect_directive(const char *directive, const char *const *args, size_t n_pairs,
			     const char *want, size_t skipped, bool error)
{
	char src[512];
	snprintf(src, sizeof(src), "%s%s", directive, two_rules);
	struct df_lint_result res;
	struct df_error err;
	assert_int_equal(lint_src(src, args, n_pairs, &res, &err), 0);
	char *got = render(&res);
	if (strcmp(got, want) != 0)
		fail_msg("directive %s: want\n%sgot\n%s", directive, want, got);
	assert_int_equal(res.skipped, skipped);
	assert_int_equal(res.error, error);
	free(got);
	df_lint_result_free(&res);
}

static void test_check_directive(void **state)
{
	(void)state;
	const char *maint = "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n";
	const char *json = "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals\n";
	char both[512], m3[256], j4[256];
	snprintf(m3, sizeof(m3), "3:1 %s", maint);
	snprintf(j4, sizeof(j4), "4:1 %s", json);
	snprintf(both, sizeof(both), "%s%s", m3, j4);

	/* no directive: both fire (lines 2, 3 without the directive line) */
	char plain[512];
	snprintf(plain, sizeof(plain), "2:1 %s3:1 %s", maint, json);
	expect_directive("", NULL, 0, plain, 0, false);
	/* skip one rule */
	expect_directive("# check=skip=JSONArgsRecommended\n", NULL, 0, m3, 1, false);
	/* skip two */
	expect_directive("# check=skip=JSONArgsRecommended,MaintainerDeprecated\n", NULL, 0, "", 2, false);
	/* the directive's value ends at the first blank, as in BuildKit */
	expect_directive("# check=skip=JSONArgsRecommended, MaintainerDeprecated\n", NULL, 0, m3, 1, false);
	/* skip=all */
	expect_directive("# check=skip=all\n", NULL, 0, "", 2, false);
	/* error=true: findings stay, the result says fail */
	expect_directive("# check=error=true\n", NULL, 0, both, 0, true);
	expect_directive("# check=skip=MaintainerDeprecated;error=true\n", NULL, 0, j4, 1, true);
	/* spaces around the directive's '=' */
	expect_directive("#  check = skip=all\n", NULL, 0, "", 2, false);
	/* experimental= is accepted (no experimental rule is implemented) */
	expect_directive("# check=experimental=all\n", NULL, 0, both, 0, false);

	/* BUILDKIT_DOCKERFILE_CHECK replaces the directive entirely */
	const char *a1[] = { "BUILDKIT_DOCKERFILE_CHECK", "skip=JSONArgsRecommended" };
	expect_directive("# check=skip=MaintainerDeprecated;error=true\n", a1, 1, m3, 1, false);
	const char *a2[] = { "BUILDKIT_DOCKERFILE_CHECK", "" };
	expect_directive("# check=skip=all\n", a2, 1, both, 0, false);
	const char *a3[] = { "BUILDKIT_DOCKERFILE_CHECK", "error=true;skip=all" };
	expect_directive("", a3, 1, "", 2, true);
}

static void expect_bad_config(const char *src, const char *const *args, size_t n_pairs,
			      int line, const char *msg)
{
	struct df_lint_result res;
	struct df_error err;
	assert_int_equal(lint_src(src, args, n_pairs, &res, &err), -1);
	assert_int_equal(res.n, 0);
	assert_null(res.findings);
	assert_int_equal(err.line, line);
	assert_string_equal(err.message, msg);
	df_lint_result_free(&res);
}

/* A check comment after the first instruction is no directive. */
static void test_check_not_directive(void **state)
{
	(void)state;
	static const struct lcase late[] = {
		{ "after FROM", "FROM alpine\n# check=skip=all\nMAINTAINER x\n",
		  "3:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n" },
		{ "after a comment", "# hello\n# check=skip=all\nFROM alpine\nMAINTAINER x\n",
		  "4:1 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label\n" },
	};
	run_cases(late, N(late));
}

static void test_check_directive_errors(void **state)
{
	(void)state;
	expect_bad_config("# check=foo=bar\nFROM alpine\n", NULL, 0, 1,
			  "failed to parse check options: invalid check option \"foo\"");
	expect_bad_config("# check=skip\nFROM alpine\n", NULL, 0, 1,
			  "failed to parse check options: invalid check option \"skip\"");
	expect_bad_config("# check=error=maybe\nFROM alpine\n", NULL, 0, 1,
			  "failed to parse check options: failed to parse check option \"error=maybe\": "
			  "strconv.ParseBool: parsing \"maybe\": invalid syntax");
	expect_bad_config("# check=skip=all;\nFROM alpine\n", NULL, 0, 1,
			  "failed to parse check options: invalid check option \"\"");
	/* "skip = all": the value is cut at its first blank, leaving "skip" */
	expect_bad_config("# check=skip = all\nFROM alpine\n", NULL, 0, 1,
			  "failed to parse check options: invalid check option \"skip\"");
	const char *a[] = { "BUILDKIT_DOCKERFILE_CHECK", "skip" };
	expect_bad_config("# check=skip=all\nFROM alpine\n", a, 1, 0,
			  "failed to parse BUILDKIT_DOCKERFILE_CHECK: invalid check option \"skip\"");
}

/* ---- the rule table ------------------------------------------------------ */

/* "JSONArgsRecommended" -> "json-args-recommended". */
static void kebab(const char *name, char *out, size_t cap)
{
	size_t o = 0, n = strlen(name);
	for (size_t i = 0; i < n && o + 2 < cap; i++) {
		char c = name[i];
		bool up = c >= 'A' && c <= 'Z';
		if (up && i > 0) {
			bool prev_lower = name[i - 1] >= 'a' && name[i - 1] <= 'z';
			bool prev_upper = name[i - 1] >= 'A' && name[i - 1] <= 'Z';
			bool next_lower = i + 1 < n && name[i + 1] >= 'a' && name[i + 1] <= 'z';
			if (prev_lower || (prev_upper && next_lower))
				out[o++] = '-';
		}
		out[o++] = up ? (char)(c - 'A' + 'a') : c;
	}
	out[o] = '\0';
}

static void test_rule_table(void **state)
{
	(void)state;
	static const char *const required[] = {
		"ConsistentInstructionCasing", "DuplicateStageName", "ExposeInvalidFormat",
		"ExposeProtoCasing", "FromAsCasing", "FromPlatformFlagConstDisallowed",
		"InvalidDefaultArgInFrom", "JSONArgsRecommended", "LegacyKeyValueFormat",
		"MaintainerDeprecated", "MultipleInstructionsDisallowed", "NoEmptyContinuation",
		"RedundantTargetPlatform", "ReservedStageName", "SecretsUsedInArgOrEnv",
		"StageNameCasing", "UndefinedArgInFrom", "UndefinedVar", "WorkdirRelativePath",
	};
	size_t n;
	const struct df_lint_rule *rules = df_lint_rules(&n);
	for (size_t r = 0; r < N(required); r++) {
		const struct df_lint_rule *found = NULL;
		for (size_t i = 0; i < n; i++)
			if (strcmp(rules[i].name, required[r]) == 0)
				found = &rules[i];
		if (!found)
			fail_msg("rule %s missing", required[r]);
		assert_true(found->implemented);
		assert_false(found->experimental);
	}
	for (size_t i = 0; i < n; i++) {
		char k[128], url[256];
		kebab(rules[i].name, k, sizeof(k));
		snprintf(url, sizeof(url), "https://docs.docker.com/go/dockerfile/rule/%s/", k);
		if (strcmp(rules[i].name, "InvalidBaseImagePlatform") == 0)
			assert_null(rules[i].url); /* BuildKit gives it no page */
		else if (strcmp(rules[i].url, url) != 0)
			fail_msg("%s: url %s, want %s", rules[i].name, rules[i].url, url);
		assert_non_null(rules[i].description);
		if (strcmp(rules[i].name, "InvalidDefinitionDescription") == 0)
			assert_true(rules[i].experimental);
	}
}

/* A clean multi-stage file: nothing at all. */
static void test_clean_file(void **state)
{
	(void)state;
	static const struct lcase clean[] = {
		{ "clean",
		  "# syntax=docker/dockerfile:1\n"
		  "ARG GO_VERSION=1.22\n"
		  "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build\n"
		  "WORKDIR /src\n"
		  "COPY go.mod go.sum ./\n"
		  "RUN go mod download\n"
		  "COPY . .\n"
		  "ARG TARGETOS TARGETARCH\n"
		  "RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .\n"
		  "\n"
		  "FROM scratch\n"
		  "COPY --from=build /out/app /app\n"
		  "EXPOSE 8080\n"
		  "USER 65534\n"
		  "ENTRYPOINT [\"/app\"]\n",
		  "" },
	};
	run_cases(clean, N(clean));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_consistent_instruction_casing),
		cmocka_unit_test(test_stage_names),
		cmocka_unit_test(test_expose),
		cmocka_unit_test(test_from_platform),
		cmocka_unit_test(test_from_args),
		cmocka_unit_test(test_instructions),
		cmocka_unit_test(test_undefined_var),
		cmocka_unit_test(test_no_empty_continuation),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_check_directive),
		cmocka_unit_test(test_check_directive_errors),
		cmocka_unit_test(test_check_not_directive),
		cmocka_unit_test(test_rule_table),
		cmocka_unit_test(test_clean_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
