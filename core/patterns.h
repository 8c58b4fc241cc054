/* patterns.h: the core's .dockerignore pattern service (core/ignore.c),
 * which core/host.c puts in the host table; contracts in kiln/ignore.h. */
#ifndef KILN_CORE_PATTERNS_H
#define KILN_CORE_PATTERNS_H

#include <kiln/kiln.h>

kiln_patterns_compile_fn kiln__patterns_compile;
kiln_patterns_match_fn kiln__patterns_match;
kiln_patterns_has_exceptions_fn kiln__patterns_has_exceptions;
kiln_patterns_free_fn kiln__patterns_free;
kiln_ignore_read_fn kiln__ignore_read;
kiln_ignore_free_fn kiln__ignore_free;

#endif
