/*
 * ignore.h: Docker's .dockerignore pattern matching, a host service
 * (kiln_host.patterns_* and kiln_host.ignore_*). Backends use it to leave
 * files out of a build context (the docker backend's context tar, the
 * buildkit backend's FileSync sender with the include/exclude patterns the
 * daemon sends); frontends use it to read ignore files.
 *
 * Behaviour is Docker's, as documented at
 * https://docs.docker.com/build/concepts/context/#dockerignore-files and
 * implemented by github.com/moby/patternmatcher (New,
 * MatchesOrParentMatches) and its ignorefile.ReadAll, which docker build,
 * buildx and BuildKit's fsutil all use:
 *  - a pattern is trimmed of white space and cleaned like Go's
 *    filepath.Clean ("./a//b/" is "a/b", "a/../b" is "b"); a leading '/'
 *    is dropped ("/a" is "a": the context is the root); blank patterns are
 *    skipped; a leading '!' makes the pattern an exception (re-includes);
 *  - '*' matches any run of characters other than '/', '?' one such
 *    character; "[a-z]" a character class ('^' right after '[' negates;
 *    '!' there is an ordinary character, as in Go; a class can match '/';
 *    "[:alpha:]"-style named classes work inside one); '\' makes the next
 *    character literal;
 *  - "**" matches any number of path segments, zero included. Written
 *    with spaces here (a comment cannot hold them otherwise): "** / x" is
 *    x at any depth, "a / ** / b" is b anywhere below a (a/b too), "a / **"
 *    everything below a (not a itself), "**" alone everything; a pattern
 *    that starts with "**" followed only by plain characters matches any
 *    path that ends with what follows ("**.txt" matches "a/b.txt");
 *  - a pattern matches a path when it matches the whole path or any of the
 *    path's ancestor directories ("a" excludes "a/b/c");
 *  - patterns are applied in order and the last one that matches decides:
 *    a match of an exception means "not matched".
 * A matched directory whose contents are excluded may still hold files an
 * exception re-includes ("*" then "!src/main.c"): a walker may skip a
 * matched directory only when patterns_has_exceptions() is false.
 *
 * These functions are newer than ABI 1.0's first host table: a plugin
 * checks KILN_HAS_FIELD(host, struct kiln_host, ignore_free) before using
 * any of them (all six arrived together).
 */
#ifndef KILN_IGNORE_H
#define KILN_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#include "kiln/common.h"
#include "kiln/error.h"

/* Opaque: a compiled, immutable list of patterns. Matching does not
 * change it, so one list may be used from several threads at once. */
struct kiln_patterns;

/*
 * Compile patterns[0..n) (n may be 0; patterns may then be NULL) into *out,
 * which the caller frees with patterns_free(). Each pattern is borrowed for
 * the call only. Patterns are taken as patternmatcher.New() takes them:
 * trimmed, then cleaned with any '!' in front; in addition a pattern
 * written with '/' (or "!/") first loses that '/', as in an ignore file.
 * Give it the entries of ignore_read(), or patterns a daemon sent (already
 * read that way): white space after a '!' is not trimmed here, and
 * "! /x" or "!./x" would not mean "!x" as they do in an ignore file.
 *
 * Errors: KILN_E_INVALID naming the bad pattern as given, e.g.
 * "invalid pattern '[a-': unterminated character class"; the syntax
 * errors are Go's filepath.Match ones (unterminated or empty "[...]", a
 * '-' or ']' that should be escaped inside one, a trailing '\'), a class
 * range running backwards ("[z-a]"), an unknown named class, and a lone
 * "!". *out is left untouched on error.
 */
typedef int kiln_patterns_compile_fn(const char *const *patterns, size_t n,
				     struct kiln_patterns **out,
				     struct kiln_err *err);

/*
 * Does path match the list (itself, or through one of its ancestor
 * directories), after the last-match-wins rule? path is relative to the
 * context root, '/'-separated and clean, as a walk produces it: "a/b.txt",
 * never "./a", "a/", "/a" or "a//b". p may be NULL (nothing matches).
 * Allocates nothing; time is linear in the length of path for each
 * pattern.
 */
typedef bool kiln_patterns_match_fn(const struct kiln_patterns *p,
				    const char *path);

/* True when the list holds at least one '!' exception. Then a matched
 * directory must still be walked, since an exception may re-include
 * something below it; without exceptions everything below a matched
 * directory is matched too. NULL gives false. */
typedef bool kiln_patterns_has_exceptions_fn(const struct kiln_patterns *p);

/* Free a compiled list. NULL is a no-op. */
typedef void kiln_patterns_free_fn(struct kiln_patterns *p);

/*
 * Read the ignore file `file` (e.g. "<context>/.dockerignore") like
 * ignorefile.ReadAll: a UTF-8 byte order mark at its start is skipped;
 * lines end at "\n" or "\r\n"; a line whose first character is '#' is a
 * comment (a '#' after leading blanks is part of a pattern); blank lines
 * are skipped; each pattern is trimmed, cleaned and stripped of a leading
 * '/', keeping a leading '!' ("! /a/./b/" gives "!a/b"). Patterns are not
 * checked here: patterns_compile() reports bad ones.
 *
 * On success *patterns is a NULL-terminated heap array of *n heap strings
 * in file order, which the caller frees with ignore_free(). A missing file
 * (ENOENT) is not an error: it gives *patterns = NULL and *n = 0, while an
 * existing file, even an empty one, gives a non-NULL array, so a caller can
 * tell "no file" (e.g. to fall back to another ignore file) from "no
 * patterns". Errors: KILN_E_IO naming the file (cannot open or read it, or
 * it is a directory); *patterns and *n are then untouched.
 */
typedef int kiln_ignore_read_fn(const char *file, char ***patterns, size_t *n,
				struct kiln_err *err);

/* Free what ignore_read() returned: every string and the array. NULL is a
 * no-op. */
typedef void kiln_ignore_free_fn(char **patterns);

#endif
