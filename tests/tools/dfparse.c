/*
 * dfparse: the golden-file dumper of the Dockerfile parser.
 *
 *   dfparse [--build-arg K=V]... [--steps TARGET] FILE
 *   dfparse [--build-arg K=V]... [--escape C] --expand WORD
 *
 * prints df_to_json() of FILE, or with --steps the number of steps a build
 * of TARGET runs ("" = the last stage). --expand prints df_expand() of WORD
 * with the --build-args as the variables, and "unset: NAME" on stderr for
 * each unset name df_expand reports; its error goes to stderr, exit 1. A syntax error goes to stderr as
 * "FILE:LINE:COL: message" (LINE:COL left out where unknown) and exits 1;
 * a usage error exits 2. As with docker buildx, "--build-arg K" without a
 * value takes K from the environment (and is ignored when it is unset).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/frontend-dockerfile/parser.h"

static int usage(void)
{
	fprintf(stderr, "usage: dfparse [--build-arg K=V]... [--steps TARGET] FILE\n"
		"       dfparse [--build-arg K=V]... [--escape C] --expand WORD\n");
	return 2;
}

struct vars {
	const char **kv;
	size_t n;
};

static const char *vars_lookup(void *ctx, const char *name)
{
	const struct vars *v = ctx;
	const char *r = NULL;

	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->kv[2 * i], name) == 0)
			r = v->kv[2 * i + 1];
	return r;
}

static void vars_unset(void *ctx, const char *name)
{
	(void)ctx;
	fprintf(stderr, "unset: %s\n", name);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	const char **args = calloc((size_t)argc * 2 + 1, sizeof(char *));
	bool *owned = calloc((size_t)argc + 1, sizeof(bool));
	const char *steps = NULL, *path = NULL, *word = NULL;
	char escape = '\\';
	size_t nargs = 0, len = 0;
	struct df_parse_opts opts = {0};
	struct df_file *file;
	struct df_error err;
	char *buf;
	int rc = 0;

	if (!args || !owned) {
		free(args);
		free(owned);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--build-arg") == 0 || strncmp(a, "--build-arg=", 12) == 0) {
			const char *kv = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
			if (!kv)
				goto bad_usage;
			const char *eq = strchr(kv, '=');
			if (eq) {
				args[2 * nargs] = strndup(kv, (size_t)(eq - kv));
				args[2 * nargs + 1] = eq + 1;
				owned[nargs] = true;
				nargs++;
			} else if (getenv(kv)) {
				args[2 * nargs] = kv;
				args[2 * nargs + 1] = getenv(kv);
				nargs++;
			}
		} else if (strcmp(a, "--expand") == 0 && i + 1 < argc) {
			word = argv[++i];
		} else if (strcmp(a, "--escape") == 0 && i + 1 < argc) {
			escape = argv[++i][0];
		} else if (strcmp(a, "--steps") == 0) {
			if (i + 1 >= argc)
				goto bad_usage;
			steps = argv[++i];
		} else if (a[0] == '-' && a[1] != '\0') {
			goto bad_usage;
		} else if (!path) {
			path = a;
		} else {
			goto bad_usage;
		}
	}
	if (word && !path) {
		struct vars v = { args, nargs };
		char *r = df_expand(word, escape, vars_lookup, vars_unset, &v, &err);
		buf = NULL;
		if (!r) {
			fprintf(stderr, "%s\n", err.message);
			rc = 1;
		} else {
			printf("%s\n", r);
			free(r);
		}
		goto out;
	}
	if (!path || word)
		goto bad_usage;
	buf = read_file(path, &len);
	if (!buf) {
		fprintf(stderr, "dfparse: %s: %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	opts.build_args = args;
	opts.n_build_args = nargs;
	if (df_parse(path, buf, len, &opts, &file, &err)) {
		if (err.line && err.column)
			fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column, err.message);
		else if (err.line)
			fprintf(stderr, "%s:%d: %s\n", path, err.line, err.message);
		else
			fprintf(stderr, "%s: %s\n", path, err.message);
		rc = 1;
		goto out;
	}
	if (steps) {
		int n = df_steps(file, steps);
		if (n < 0) {
			fprintf(stderr, "dfparse: target stage \"%s\" could not be found\n", steps);
			rc = 1;
		} else {
			printf("%d\n", n);
		}
	} else {
		char *json = df_to_json(file);
		if (!json) {
			fprintf(stderr, "dfparse: out of memory\n");
			rc = 1;
		} else {
			fputs(json, stdout);
			fputc('\n', stdout);
			free(json);
		}
	}
	df_free(file);
out:
	free(buf);
	for (size_t i = 0; i < nargs; i++)
		if (owned[i])
			free((char *)args[2 * i]);
	free(owned);
	free(args);
	return rc;
bad_usage:
	rc = usage();
	buf = NULL;
	goto out;
}
