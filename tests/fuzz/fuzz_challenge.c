/*
 * fuzz_challenge: libFuzzer target of what the core's registry client
 * parses from a registry and from the user (core/registry.c, `make
 * fuzz-challenge`): the input, as one string, is a WWW-Authenticate value
 * for kiln__auth_challenge_parse and an image reference for
 * kiln__ref_parse. Checks: a challenge has a lower-case scheme without
 * blanks; a parsed reference prints (kiln__ref_string) as a reference that
 * parses to the same parts; errors carry a message; no leak.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	struct kiln_err err = { 0 };

	struct kiln_auth_challenge ch;
	if (kiln__auth_challenge_parse(s, &ch, &err) == 0) {
		CHECK(ch.scheme && ch.scheme[0]);
		for (const char *p = ch.scheme; *p; p++)
			CHECK(*p != ' ' && !isupper((unsigned char)*p));
		kiln__auth_challenge_release(&ch);
	} else {
		CHECK(err.msg[0]);
	}

	struct kiln_ref r;
	memset(&err, 0, sizeof(err));
	if (kiln__ref_parse(s, &r, &err) == 0) {
		CHECK(r.host && r.host[0] && r.repo && r.repo[0]);
		CHECK(r.tag || r.digest);
		char *str = kiln__ref_string(&r);
		struct kiln_ref again;
		CHECK(kiln__ref_parse(str, &again, &err) == 0);
		CHECK(same(r.host, again.host) && same(r.repo, again.repo) &&
		      same(r.digest, again.digest));
		CHECK(same(r.tag, again.tag) || (r.digest && !again.tag) || (r.digest && !r.tag));
		kiln__ref_release(&again);
		free(str);
		kiln__ref_release(&r);
	} else {
		CHECK(err.msg[0]);
	}
	free(s);
	return 0;
}
