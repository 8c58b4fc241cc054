/* Unit tests of core/registry.c's pure parts: image references as docker
 * normalises them, WWW-Authenticate challenges as registries send them
 * (Docker Hub's and distribution's token auth, htpasswd's Basic), and the
 * image index kiln writes. The HTTP side runs against the real registry in
 * tests/integration/lua_publish_test.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "util.h"

static void test_ref_normalise(void **state)
{
	(void)state;
	static const struct {
		const char *in, *host, *repo, *tag, *digest;
	} cases[] = {
		{ "busybox", "docker.io", "library/busybox", "latest", NULL },
		{ "busybox:1.36", "docker.io", "library/busybox", "1.36", NULL },
		{ "me/app", "docker.io", "me/app", "latest", NULL },
		{ "docker.io/busybox", "docker.io", "library/busybox", "latest", NULL },
		{ "localhost/app:dev", "localhost", "app", "dev", NULL },
		{ "localhost:5000/a/b/c:v1.2-rc_3", "localhost:5000", "a/b/c", "v1.2-rc_3", NULL },
		{ "127.0.0.1:5000/kiln/multi:t1", "127.0.0.1:5000", "kiln/multi", "t1", NULL },
		{ "ghcr.io/o/r", "ghcr.io", "o/r", "latest", NULL },
		{ "r.example:443/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  "r.example:443", "x", NULL,
		  "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kiln_ref r;
		struct kiln_err err = { 0 };
		assert_int_equal(kiln__ref_parse(cases[i].in, &r, &err), 0);
		assert_string_equal(r.host, cases[i].host);
		assert_string_equal(r.repo, cases[i].repo);
		if (cases[i].tag)
			assert_string_equal(r.tag, cases[i].tag);
		else
			assert_null(r.tag);
		if (cases[i].digest)
			assert_string_equal(r.digest, cases[i].digest);
		else
			assert_null(r.digest);
		kiln__ref_release(&r);
	}
	struct kiln_ref r;
	struct kiln_err err = { 0 };
	assert_int_equal(kiln__ref_parse("127.0.0.1:5000/kiln/multi:t1", &r, &err), 0);
	char *s = kiln__ref_string(&r);
	assert_string_equal(s, "127.0.0.1:5000/kiln/multi:t1");
	free(s);
	kiln__ref_release(&r);
}

static void test_ref_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"Upper/case", "a//b", "app:", "app:-x", "app@sha256:12", "/abs", "app/",
		"app:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 130-char tag */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kiln_ref r;
		struct kiln_err err = { 0 };
		assert_int_equal(kiln__ref_parse(bad[i], &r, &err), KILN_E_INVALID);
		assert_non_null(strstr(err.msg, "image reference"));
		assert_null(r.host);
	}
}

static void test_challenge(void **state)
{
	(void)state;
	struct kiln_auth_challenge c;
	struct kiln_err err = { 0 };
	assert_int_equal(kiln__auth_challenge_parse(
				 "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
				 "scope=\"repository:library/busybox:pull,push\"", &c, &err), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull,push");
	kiln__auth_challenge_release(&c);

	assert_int_equal(kiln__auth_challenge_parse("Basic realm=\"Registry Realm\"", &c, &err), 0);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "Registry Realm");
	assert_null(c.service);
	kiln__auth_challenge_release(&c);

	/* unquoted values, odd case, an escaped quote */
	assert_int_equal(kiln__auth_challenge_parse(
				 "BEARER Realm=http://127.0.0.1:5001/auth, service=\"a \\\"b\\\"\"", &c,
				 &err), 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "http://127.0.0.1:5001/auth");
	assert_string_equal(c.service, "a \"b\"");
	kiln__auth_challenge_release(&c);

	assert_int_equal(kiln__auth_challenge_parse("   ", &c, &err), KILN_E_PROTOCOL);
}

static void test_index_json(void **state)
{
	(void)state;
	struct kiln_index_entry e[2] = {
		{ "linux/amd64", { "sha256:aa", KILN_MT_DOCKER_MANIFEST, 734 } },
		{ "linux/arm/v7", { "sha256:bb", KILN_MT_DOCKER_MANIFEST, 733 } },
	};
	const char *mt;
	char *j = kiln__index_json(e, 2, &mt);
	assert_string_equal(mt, KILN_MT_DOCKER_LIST);
	assert_string_equal(j,
		"{\"schemaVersion\":2,\"mediaType\":\"" KILN_MT_DOCKER_LIST "\",\"manifests\":["
		"{\"mediaType\":\"" KILN_MT_DOCKER_MANIFEST "\",\"digest\":\"sha256:aa\",\"size\":734,"
		"\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
		"{\"mediaType\":\"" KILN_MT_DOCKER_MANIFEST "\",\"digest\":\"sha256:bb\",\"size\":733,"
		"\"platform\":{\"architecture\":\"arm\",\"os\":\"linux\",\"variant\":\"v7\"}}]}");
	free(j);
	/* one OCI manifest makes it an OCI index */
	snprintf(e[1].m.media_type, sizeof(e[1].m.media_type), "%s", KILN_MT_OCI_MANIFEST);
	j = kiln__index_json(e, 2, &mt);
	assert_string_equal(mt, KILN_MT_OCI_INDEX);
	assert_non_null(strstr(j, "\"mediaType\":\"" KILN_MT_OCI_INDEX "\""));
	free(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_normalise),
		cmocka_unit_test(test_ref_errors),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_index_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
