/*
 * fuzz_ignore: libFuzzer target of the .dockerignore patterns
 * (core/ignore.c, `make fuzz-ignore`). The input is split at its first NUL:
 * the part before is an ignore file, read by kiln__ignore_read from a
 * memfd (BOM, CRLF, comments, trimming, cleaning) and compiled by
 * kiln__patterns_compile; the part after is a list of paths, one a line,
 * cleaned as a context walk would give them, matched against the list.
 * Without a NUL, a fixed set of paths is matched. Checks: a compile error
 * carries a message and leaves the list untouched; a match is stable; and,
 * as kiln/ignore.h promises, when the list has no exception everything
 * below a matched path is matched too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "patterns.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int memfd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kiln__log_level = KILN_LOG_ERROR;
	memfd = memfd_create("dockerignore", MFD_CLOEXEC);
	return memfd < 0;
}

static const char *const fixed_paths[] = {
	"a", "a/b", "a/b/c.txt", "Dockerfile", ".git", ".git/config", "node_modules/x/y.js",
	"dir/sub/file.go", "\xc3\xa9t\xc3\xa9/x", "[a]", "a b", "x*y", "foo.tmp", "build/out",
};

/* The path of line s (len bytes) as a walk gives it: components joined by
 * '/', none empty, ".", or "..". NULL when nothing is left. */
static char *clean_path(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && s[j] != '/')
			j++;
		size_t cl = j - i;
		bool skip = cl == 0 || (cl == 1 && s[i] == '.') ||
			    (cl == 2 && s[i] == '.' && s[i + 1] == '.') || memchr(s + i, '\0', cl);
		if (!skip) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, s + i, cl);
			o += cl;
		}
		i = j + 1;
	}
	out[o] = '\0';
	if (!o) {
		free(out);
		return NULL;
	}
	return out;
}

static void check_path(const struct kiln_patterns *ps, bool exceptions, const char *path)
{
	bool m = kiln__patterns_match(ps, path);
	CHECK(m == kiln__patterns_match(ps, path));
	if (m && !exceptions) {
		char *below = kiln__xasprintf("%s/below", path);
		CHECK(kiln__patterns_match(ps, below));
		free(below);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t flen = nul ? (size_t)(nul - data) : size;
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, flen, 0) != (ssize_t)flen)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);

	char **pats = NULL;
	size_t n = 0;
	struct kiln_err err = { 0 };
	CHECK(kiln__ignore_read(path, &pats, &n, &err) == 0);
	CHECK(pats != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK(pats[i] && pats[i][0]);
	CHECK(pats[n] == NULL);

	struct kiln_patterns *ps = (struct kiln_patterns *)&err; /* must stay as is */
	int rc = kiln__patterns_compile((const char *const *)pats, n, &ps, &err);
	if (rc != 0) {
		CHECK(ps == (struct kiln_patterns *)&err);
		CHECK(err.msg[0]);
		kiln__ignore_free(pats);
		return 0;
	}
	bool exc = kiln__patterns_has_exceptions(ps);
	if (nul) {
		const char *p = (const char *)nul + 1, *end = (const char *)data + size;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
			char *c = clean_path(p, l);
			if (c) {
				check_path(ps, exc, c);
				free(c);
			}
			p += l + 1;
		}
	} else {
		for (size_t i = 0; i < sizeof(fixed_paths) / sizeof(*fixed_paths); i++)
			check_path(ps, exc, fixed_paths[i]);
	}
	kiln__patterns_free(ps);
	kiln__ignore_free(pats);
	return 0;
}
