/* Unit tests of the .dockerignore service (core/ignore.c,
 * include/kiln/ignore.h) through the host table, as a plugin uses it: a
 * table of pattern lists, paths and expected answers (Docker's semantics,
 * after moby/patternmatcher's MatchesOrParentMatches), bad patterns, and
 * ignore files read from temporary files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"

static const struct kiln_host *H = &kiln__host;

/* ---- the table ---------------------------------------------------------- */

struct match_case {
	const char *patterns[6]; /* NULL-terminated */
	const char *path;
	bool want;
};

#define P(...) { __VA_ARGS__, NULL }

static const struct match_case cases[] = {
	/* a plain name matches the path itself or any ancestor, nothing else */
	{ P("node_modules"), "node_modules", true },
	{ P("node_modules"), "node_modules/a/b.js", true },
	{ P("node_modules"), "src/node_modules", false },
	{ P("foo"), "foobar", false },
	{ P("a/b"), "a/b/c", true },
	{ P("a/b"), "a/bc", false },
	{ P("a(b)c.|$+{}"), "a(b)c.|$+{}", true },
	{ P("abc.def"), "abcZdef", false },
	/* '*' and '?' stay within one segment */
	{ P("*.log"), "x.log", true },
	{ P("*.log"), "d/x.log", false },
	{ P("*/*.log"), "d/x.log", true },
	{ P("*"), "anything/below/it", true },
	{ P("a*/b"), "a/c/b", false },
	{ P("temp?"), "tempa", true },
	{ P("temp?"), "temp", false },
	{ P("a?b"), "a/b", false },
	{ P("a?b"), "a\xe2\x98\xba" "b", true },     /* one rune, three bytes */
	{ P("a???b"), "a\xe2\x98\xba" "b", false },
	{ P("a*b?c*x"), "abxbbxdbxebxczzx", true },
	/* classes: ranges, '^' negates, '!' is an ordinary character */
	{ P("a[b-d]e"), "ace", true },
	{ P("a[b-d]e"), "aae", false },
	{ P("a[^b-d]e"), "aze", true },
	{ P("a[^b-d]e"), "ace", false },
	{ P("[!x]"), "!", true },
	{ P("[!x]"), "y", false },
	{ P("[\\]a]"), "]", true },
	{ P("[x\\-]"), "-", true },
	{ P("[a-\xce\xb6]*"), "\xce\xb1", true }, /* [a-ζ]* and α */
	{ P("[[:digit:]]*.txt"), "7up.txt", true },
	{ P("[[:digit:]]*.txt"), "up.txt", false },
	/* '\' makes the next character literal */
	{ P("a\\*b"), "a*b", true },
	{ P("a\\*b"), "axb", false },
	{ P("\\[x]"), "[x]", true },
	{ P("a\\\\"), "a\\", true },
	/* "**" leading, in the middle, trailing */
	{ P("**"), "a/b/c", true },
	{ P("**/*.go"), "main.go", true },
	{ P("**/*.go"), "a/b/main.go", true },
	{ P("**/*.go"), "a/b/main.c", false },
	{ P("**/dir"), "x/y/dir/z", true },
	{ P("**/foo/bar"), "foo/bar", true },
	{ P("**/.foo"), "bar.foo", false },
	{ P("a/**/b"), "a/b", true },
	{ P("a/**/b"), "a/x/y/b", true },
	{ P("a/**/b"), "a/x/yb", false },
	{ P("a/**/b"), "x/a/b", false },
	{ P("a**/*.txt"), "a/dir/file.txt", true },
	{ P("abc/**"), "abc", false },
	{ P("abc/**"), "abc/def/ghi", true },
	{ P("**/foo/**"), "x/foo/y", true },
	{ P("**/foo/**"), "x/foo", false },
	{ P("**/**/*.txt2"), "dir/file.txt", false },
	/* a leading "**" then plain text is a suffix test, as upstream */
	{ P("**.txt"), "a/b.txt", true },
	{ P("**file"), "dir/myfile", true },
	/* cleaning: leading '/', "./", "..", "//", trailing '/', blanks */
	{ P("/secret"), "secret", true },
	{ P("./build/"), "build/out.o", true },
	{ P("a/../b"), "b/c", true },
	{ P("a/../b"), "a", false },
	{ P("a//b/./c/"), "a/b/c", true },
	{ P("  spaced.txt\t"), "spaced.txt", true },
	{ P("../x"), "x", false },
	{ P("", "   "), "x", false },
	/* the last matching pattern decides */
	{ P("*.md", "!README.md"), "README.md", false },
	{ P("*.md", "!README.md"), "CHANGES.md", true },
	{ P("!README.md", "*.md"), "README.md", true },
	{ P("*.md", "!README*.md", "README-secret.md"), "README-secret.md", true },
	{ P("*.md", "!README*.md", "README-secret.md"), "README-public.md", false },
	{ P("*.md", "README-secret.md", "!README*.md"), "README-secret.md", false },
	/* '!' re-includes below an excluded directory */
	{ P("docs", "!docs/README.md"), "docs/README.md", false },
	{ P("docs/", "!docs/README.md"), "docs/other.md", true },
	{ P("docs", "!docs/README.md"), "docs", true },
	{ P("*", "!src"), "src/main.c", false },
	{ P("*", "!src"), "vendor/x.c", true },
	{ P("**", "!util/docker/web"), "util/docker/web/foo", false },
	{ P("**", "!util/docker/web", "util/docker/web/foo"), "util/docker/web/foo", true },
	{ P("**", "!**/*.go"), "a/b/c.go", false },
	{ P("**", "!**/*.go"), "a/b/c.txt", true },
	{ P("keep", " !keep/./me/ "), "keep/me/x", false },
	{ P("keep", "!/keep//me"), "keep/me", false },
	/* as New(): cleaned with the '!' in front, so "!a/../b" is "b" */
	{ P("!a/../b"), "b", true },
	/* only a '/' written first goes: ReadAll turns "/ /x" into " /x",
	 * which Docker trims to "/x", matching nothing */
	{ P(" /x"), "x", false },
};

static void compile_list(const char *const *pats, struct kiln_patterns **out)
{
	size_t n = 0;
	while (pats[n])
		n++;
	struct kiln_err err = { 0 };
	int rc = H->patterns_compile(pats, n, out, &err);
	if (rc != 0)
		fail_msg("patterns_compile: %d (%s)", rc, err.msg);
}

static void table_cases(void **st)
{
	(void)st;
	assert_true(sizeof(cases) / sizeof(cases[0]) >= 45);
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct match_case *c = &cases[i];
		struct kiln_patterns *p = NULL;
		compile_list(c->patterns, &p);
		bool got = H->patterns_match(p, c->path);
		if (got != c->want) {
			print_error("case %zu: patterns", i);
			for (const char *const *s = c->patterns; *s; s++)
				print_error(" '%s'", *s);
			print_error(", path '%s': got %d, want %d\n", c->path, got, c->want);
			bad++;
		}
		H->patterns_free(p);
	}
	assert_int_equal(bad, 0);
}

static void exceptions_and_empty_lists(void **st)
{
	(void)st;
	struct kiln_patterns *p = NULL;
	compile_list((const char *[]){ "*.o", "build", NULL }, &p);
	assert_false(H->patterns_has_exceptions(p));
	H->patterns_free(p);
	compile_list((const char *[]){ "build", "!build/keep", NULL }, &p);
	assert_true(H->patterns_has_exceptions(p));
	H->patterns_free(p);

	struct kiln_err err = { 0 };
	assert_int_equal(H->patterns_compile(NULL, 0, &p, &err), 0);
	assert_false(H->patterns_match(p, "anything"));
	assert_false(H->patterns_has_exceptions(p));
	H->patterns_free(p);
	assert_false(H->patterns_match(NULL, "x"));
	assert_false(H->patterns_has_exceptions(NULL));
	H->patterns_free(NULL);

	/* a long plain name is fine; a long wildcard pattern is refused */
	size_t len = 20000;
	char *big = malloc(len + 2);
	memset(big, 'a', len);
	big[len] = '\0';
	compile_list((const char *[]){ big, NULL }, &p);
	assert_true(H->patterns_match(p, big));
	H->patterns_free(p);
	big[0] = '*';
	static char dummy;
	struct kiln_patterns *untouched = (struct kiln_patterns *)(void *)&dummy;
	p = untouched;
	assert_int_equal(H->patterns_compile((const char *[]){ big }, 1, &p, &err),
			 KILN_E_INVALID);
	/* the message quotes the start of the pattern only */
	assert_non_null(strstr(err.msg, "...': pattern too long"));
	assert_true(strlen(err.msg) < 300);
	assert_ptr_equal(p, untouched);
	free(big);
}

/* ---- bad patterns -------------------------------------------------------- */

static void bad_patterns_name_the_pattern(void **st)
{
	(void)st;
	static const struct {
		const char *pattern, *msg;
	} bad[] = {
		{ "[a", "invalid pattern '[a': unterminated character class" },
		{ "  src/[^bc  ", "invalid pattern 'src/[^bc': unterminated character class" },
		{ "a[", "invalid pattern 'a[': unterminated character class" },
		{ "[]a]", "invalid pattern '[]a]': '-' or ']' in a character class must be escaped" },
		{ "[x-]", "invalid pattern '[x-]': '-' or ']' in a character class must be escaped" },
		{ "[a-b-c]", "invalid pattern '[a-b-c]': '-' or ']' in a character class must be escaped" },
		{ "[z-a]", "invalid pattern '[z-a]': character range runs backwards" },
		{ "[Local-Only]/", "invalid pattern '[Local-Only]/': character range runs backwards" },
		{ "[[:nope:]]", "invalid pattern '[[:nope:]]': unknown character class name" },
		{ "a\\", "invalid pattern 'a\\': a trailing '\\' escapes nothing" },
		{ "!", "invalid pattern '!': an exception needs a pattern after the '!'" },
		{ " !  ", "invalid pattern '!': an exception needs a pattern after the '!'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *list[] = { "*.o", bad[i].pattern, "!x" };
		struct kiln_patterns *p = NULL;
		struct kiln_err err = { 0 };
		assert_int_equal(H->patterns_compile(list, 3, &p, &err), KILN_E_INVALID);
		assert_null(p);
		assert_int_equal(err.code, KILN_E_INVALID);
		assert_string_equal(err.msg, bad[i].msg);
	}
}

/* ---- ignore files ---------------------------------------------------------- */

static char *write_temp(const char *data, size_t len)
{
	char *path = strdup("/tmp/kiln-test-ignore.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void reads_an_ignore_file(void **st)
{
	(void)st;
	static const char file[] =
		"\xef\xbb\xbf# comment after a byte order mark\r\n"
		"\r\n"
		"*.tmp\r\n"
		"   \n"
		"  # not a comment: '#' is not in the first column\n"
		"#*.md\n"
		"/build/./out/\n"
		"! /build/out/keep.o \r\n"
		"logs//\t\n"
		"!\n"
		"last-line-without-newline";
	static const char *const want[] = {
		"*.tmp", "# not a comment: '#' is not in the first column", "build/out",
		"!build/out/keep.o", "logs", "!", "last-line-without-newline",
	};
	char *path = write_temp(file, sizeof(file) - 1);
	char **pats = NULL;
	size_t n = 99;
	struct kiln_err err = { 0 };
	assert_int_equal(H->ignore_read(path, &pats, &n, &err), 0);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n; i++)
		assert_string_equal(pats[i], want[i]);
	assert_null(pats[n]);

	/* compile what was read (without the lone "!") and use it */
	const char *use[] = { pats[0], pats[1], pats[2], pats[3], pats[4], pats[6] };
	struct kiln_patterns *p = NULL;
	assert_int_equal(H->patterns_compile(use, 6, &p, &err), 0);
	assert_true(H->patterns_match(p, "x.tmp"));
	assert_true(H->patterns_match(p, "build/out/a.o"));
	assert_false(H->patterns_match(p, "build/out/keep.o"));
	assert_false(H->patterns_match(p, "build/other"));
	assert_true(H->patterns_match(p, "logs/2024/app.log"));
	assert_false(H->patterns_match(p, "README.md"));
	assert_true(H->patterns_has_exceptions(p));
	H->patterns_free(p);
	/* the whole list fails on the lone "!" */
	assert_int_equal(H->patterns_compile((const char *const *)pats, n, &p, &err),
			 KILN_E_INVALID);
	assert_string_equal(err.msg, "invalid pattern '!': an exception needs a pattern after the '!'");
	H->ignore_free(pats);
	unlink(path);
	free(path);

	/* an empty file exists: a non-NULL, empty list */
	path = write_temp("", 0);
	assert_int_equal(H->ignore_read(path, &pats, &n, &err), 0);
	assert_non_null(pats);
	assert_int_equal(n, 0);
	assert_null(pats[0]);
	H->ignore_free(pats);
	unlink(path);
	free(path);
}

static void missing_and_unreadable_files(void **st)
{
	(void)st;
	char *sentinel[1];
	char **pats = sentinel;
	size_t n = 7;
	struct kiln_err err = { 0 };
	assert_int_equal(H->ignore_read("/nonexistent/kiln/.dockerignore", &pats, &n, &err), 0);
	assert_null(pats);
	assert_int_equal(n, 0);
	H->ignore_free(NULL);

	char dir[] = "/tmp/kiln-test-ignore-dir.XXXXXX";
	assert_non_null(mkdtemp(dir));
	pats = sentinel;
	n = 7;
	assert_int_equal(H->ignore_read(dir, &pats, &n, &err), KILN_E_IO);
	assert_int_equal(err.code, KILN_E_IO);
	assert_string_equal(err.file, dir);
	assert_string_equal(err.msg, "cannot read the ignore file: Is a directory");
	assert_ptr_equal(pats, sentinel);
	assert_int_equal(n, 7);
	rmdir(dir);
}

/* 20,000 paths against a realistic list: correct counts, and quick. */
static void many_paths(void **st)
{
	(void)st;
	static const char *const list[] = {
		".git", "node_modules", "**/*.pyc", "*.log", "build/**", "dist",
		"**/__pycache__", "docs/*.md", "!docs/README.md", "**/.DS_Store",
		"tmp?", "[Tt]humbs.db", "coverage", "!coverage/keep.txt",
	};
	struct kiln_patterns *p = NULL;
	struct kiln_err err = { 0 };
	assert_int_equal(H->patterns_compile(list, sizeof(list) / sizeof(list[0]), &p, &err), 0);
	char path[256];
	size_t hits = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20000; i++) {
		static const char *const dirs[] = { "src/app/module", "node_modules/pkg/lib",
						    "docs", "build/out", "pkg/__pycache__" };
		static const char *const names[] = { "main.c", "x.pyc", "README.md", "a.log" };
		snprintf(path, sizeof(path), "%s/d%d/%s", dirs[i % 5], i / 20, names[(i / 5) % 4]);
		hits += H->patterns_match(p, path);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* per 20 paths: 4 under node_modules, 4 under build, 4 under
	 * __pycache__, and x.pyc in src and in docs ("docs" then "*.md"
	 * reaches one level down only) */
	assert_int_equal(hits, 20000 / 20 * 14);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("# 20000 paths x %zu patterns: %.1f ms\n", sizeof(list) / sizeof(list[0]), ms);
	H->patterns_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_cases),
		cmocka_unit_test(exceptions_and_empty_lists),
		cmocka_unit_test(bad_patterns_name_the_pattern),
		cmocka_unit_test(reads_an_ignore_file),
		cmocka_unit_test(missing_and_unreadable_files),
		cmocka_unit_test(many_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
