/* Unit tests of the registry credential lookup (core/dockercfg.c), which
 * the host table serves as registry_credentials: real config.json files
 * in a temp DOCKER_CONFIG (and a temp HOME), a fake credential helper
 * (docker-credential-kilntest, a shell script) on PATH. The core's log
 * lines (stderr, debug level included) are captured around each lookup
 * and checked for warnings and for the secret values, which must never
 * appear. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dockercfg.h"
#include "loader.h"
#include "util.h"

/* ---- fixtures: a temp dir, the config, the helper -------------------------- */

#include "tmpfiles.h"
static char logpath[128];
static char old_path[4096];


static void write_config(const char *json)
{
	write_file("dockercfg/config.json", json, 0600);
}

/* The fake helper answers by the key it reads on stdin, as
 * docker-credential-pass and friends do. */
static const char helper_script[] =
	"#!/bin/sh\n"
	"[ \"$1\" = get ] || exit 3\n"
	"host=$(cat)\n"
	"case \"$host\" in\n"
	"helped.example.com) echo '{\"ServerURL\":\"helped.example.com\","
	"\"Username\":\"helperuser\",\"Secret\":\"helper-s3cret\"}' ;;\n"
	"tokenhelper.example.com) echo '{\"Username\":\"<token>\","
	"\"Secret\":\"helper-t0ken\"}' ;;\n"
	"nouser.example.com) echo '{\"Secret\":\"nouser-s3cret\"}' ;;\n"
	"nosecret.example.com) echo '{\"Username\":\"lonely\"}' ;;\n"
	"https://index.docker.io/v1/) echo '{\"Username\":\"hubhelper\","
	"\"Secret\":\"hub-helper-s3cret\"}' ;;\n"
	"garbage.example.com) echo 'not json' ;;\n"
	"broken.example.com) echo 'keychain locked'; exit 1 ;;\n"
	"*) echo 'credentials not found in native keychain'; exit 1 ;;\n"
	"esac\n";

static int group_setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-dcfg-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	char p[256];
	path_in(p, sizeof(p), "dockercfg");
	mkdir(p, 0700);
	setenv("DOCKER_CONFIG", p, 1);
	path_in(p, sizeof(p), "bin");
	mkdir(p, 0700);
	write_file("bin/docker-credential-kilntest", helper_script, 0755);
	const char *op = getenv("PATH");
	snprintf(old_path, sizeof(old_path), "%s", op ? op : "/usr/bin:/bin");
	char np[4400];
	snprintf(np, sizeof(np), "%s:%s", p, old_path);
	setenv("PATH", np, 1);
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	/* every line the lookup can write, so that all are checked */
	kiln__log_level = KILN_LOG_DEBUG;
	return 0;
}

static int group_teardown(void **st)
{
	(void)st;
	setenv("PATH", old_path, 1);
	unsetenv("DOCKER_CONFIG");
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- the log: stderr of each lookup, appended to a file -------------------- */

static char logbuf[64 * 1024];

static void log_reset(void)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static const char *log_text(void)
{
	logbuf[0] = '\0';
	FILE *f = fopen(logpath, "r");
	if (f) {
		size_t n = fread(logbuf, 1, sizeof(logbuf) - 1, f);
		logbuf[n] = '\0';
		fclose(f);
	}
	return logbuf;
}

static bool log_has(const char *s)
{
	return strstr(log_text(), s) != NULL;
}

static bool log_has_warning(void)
{
	return log_has("kiln: warning: ");
}

/* kiln__docker_credentials with stderr sent to the log file (only for the
 * call, so cmocka's own messages still reach the terminal). */
static int lookup(const char *reg, char **user, char **secret)
{
	fflush(stderr);
	int saved = dup(2);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	int rc = kiln__docker_credentials(reg, user, secret);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	return rc;
}

/* want_user NULL: an identity token. */
static void expect_found(const char *reg, const char *want_user, const char *want_secret)
{
	char *u = (char *)"unset", *s = (char *)"unset";
	int rc = lookup(reg, &u, &s);
	if (rc != 0)
		fail_msg("%s: got %d (%s), want credentials", reg, rc, kiln__strerror(rc));
	assert_non_null(s);
	if (strcmp(s, want_secret) != 0 || (want_user == NULL) != (u == NULL) ||
	    (u && strcmp(u, want_user) != 0))
		fail_msg("%s: got user %s%s%s secret \"%s\", want %s%s%s \"%s\"", reg,
			 u ? "\"" : "", u ? u : "NULL", u ? "\"" : "", s,
			 want_user ? "\"" : "", want_user ? want_user : "NULL",
			 want_user ? "\"" : "", want_secret);
	kiln__creds_free(u, s);
}

static void expect_anonymous(const char *reg)
{
	char *u = (char *)"unset", *s = (char *)"unset";
	int rc = lookup(reg, &u, &s);
	if (rc != KILN_E_NOTFOUND)
		fail_msg("%s: got %d, want KILN_E_NOTFOUND", reg ? reg : "(null)", rc);
	assert_null(u);
	assert_null(s);
}

static void assert_no_secret_logged(void)
{
	static const char *const secrets[] = {
		"hubpass", "p2:with", "id-t0ken", "f-s3cret", "pw-only", "helper-s3cret",
		"helper-t0ken", "nouser-s3cret", "hub-helper-s3cret", "aHVidXNlcjpodWJwYXNz",
		"c2VjcmV0", "keychain locked",
	};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		if (log_has(secrets[i]))
			fail_msg("\"%s\" was logged:\n%s", secrets[i], logbuf);
}

/* ---- auths -------------------------------------------------------------------- */

static const char auths_config[] =
	"{\n"
	"  \"auths\": {\n"
	"    \"https://index.docker.io/v1/\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\"},\n"
	"    \"https://reg.example.com/v1/\": {\"auth\": \"dTI6cDI6d2l0aDpjb2xvbnM=\"},\n"
	"    \"http://plainhttp.example.com\": {\"auth\": \"dXNlcjo=\"},\n"
	"    \"127.0.0.1:5000\": {\"auth\": \"bG9jYWw6bG9jYWxwdw==\"},\n"
	"    \"tok.example.com\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\", "
	"\"identitytoken\": \"id-t0ken\"},\n"
	"    \"fields.example.com\": {\"username\": \"fu\", \"password\": \"f-s3cret\"},\n"
	"    \"pwonly.example.com\": {\"password\": \"pw-only\"},\n"
	"    \"useronly.example.com\": {\"username\": \"uo\"},\n"
	"    \"bad.example.com\": {\"auth\": \"!!!!\"},\n"
	"    \"nocolon.example.com\": {\"auth\": \"aHVidXNlcg==\"},\n"
	"    \"empty.example.com\": {},\n"
	"    \"notanobject.example.com\": \"c2VjcmV0\"\n"
	"  }\n"
	"}\n";

static void auths_auth_is_base64_user_password(void **st)
{
	(void)st;
	write_config(auths_config);
	log_reset();
	/* an exact key */
	expect_found("127.0.0.1:5000", "local", "localpw");
	/* a URL key matches its host; the password keeps its colons */
	expect_found("reg.example.com", "u2", "p2:with:colons");
	/* "user:" is a user with an empty password */
	expect_found("plainhttp.example.com", "user", "");
	assert_false(log_has_warning());
	assert_true(log_has("credentials for reg.example.com from "));
	assert_no_secret_logged();
}

static void auths_docker_hub_key(void **st)
{
	(void)st;
	write_config(auths_config);
	log_reset();
	/* both of Docker Hub's names are looked up as the index URL */
	expect_found("registry-1.docker.io", "hubuser", "hubpass");
	expect_found("docker.io", "hubuser", "hubpass");
	/* the index's own host matches the URL key by its host */
	expect_found("index.docker.io", "hubuser", "hubpass");
	assert_false(log_has_warning());
	assert_no_secret_logged();
}

static void auths_username_password_and_identity_token(void **st)
{
	(void)st;
	write_config(auths_config);
	log_reset();
	expect_found("fields.example.com", "fu", "f-s3cret");
	/* a password alone: an empty username, not an identity token */
	expect_found("pwonly.example.com", "", "pw-only");
	expect_found("useronly.example.com", "uo", "");
	/* an identity token wins over auth and has no username */
	expect_found("tok.example.com", NULL, "id-t0ken");
	assert_false(log_has_warning());
	assert_no_secret_logged();
}

static void auths_nothing_is_anonymous(void **st)
{
	(void)st;
	write_config(auths_config);
	log_reset();
	expect_anonymous("empty.example.com");
	expect_anonymous("other.example.com");
	expect_anonymous("notanobject.example.com");
	expect_anonymous("example.com"); /* not a prefix match */
	expect_anonymous("");
	expect_anonymous(NULL);
	assert_false(log_has_warning());
	/* what cannot be decoded: a warning naming the registry, anonymous */
	expect_anonymous("bad.example.com");
	assert_true(log_has_warning());
	assert_true(log_has("bad.example.com"));
	log_reset();
	expect_anonymous("nocolon.example.com");
	assert_true(log_has_warning());
	assert_no_secret_logged();
}

/* ---- credential helpers --------------------------------------------------------- */

static void cred_helpers_run_the_named_helper(void **st)
{
	(void)st;
	write_config("{\n"
		     "  \"auths\": {\"helped.example.com\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\"},\n"
		     "            \"unknown.example.com\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\"}},\n"
		     "  \"credHelpers\": {\"helped.example.com\": \"kilntest\", "
		     "\"tokenhelper.example.com\": \"kilntest\", "
		     "\"nouser.example.com\": \"kilntest\", "
		     "\"nosecret.example.com\": \"kilntest\", "
		     "\"unknown.example.com\": \"kilntest\", "
		     "\"https://index.docker.io/v1/\": \"kilntest\", "
		     "\"garbage.example.com\": \"kilntest\", "
		     "\"broken.example.com\": \"kilntest\", "
		     "\"nohelper.example.com\": \"nosuchhelper\"}\n"
		     "}\n");
	log_reset();
	/* the helper wins over auths */
	expect_found("helped.example.com", "helperuser", "helper-s3cret");
	/* Username "<token>" means an identity token */
	expect_found("tokenhelper.example.com", NULL, "helper-t0ken");
	expect_found("nouser.example.com", "", "nouser-s3cret");
	expect_found("registry-1.docker.io", "hubhelper", "hub-helper-s3cret");
	/* no Secret, or "not found": quietly anonymous, auths not consulted */
	expect_anonymous("nosecret.example.com");
	expect_anonymous("unknown.example.com");
	assert_false(log_has_warning());
	assert_true(log_has("docker-credential-kilntest"));
	/* a helper that fails: a warning naming it, anonymous */
	log_reset();
	expect_anonymous("garbage.example.com");
	assert_true(log_has_warning());
	assert_true(log_has("docker-credential-kilntest"));
	log_reset();
	expect_anonymous("broken.example.com");
	assert_true(log_has_warning());
	assert_true(log_has("docker-credential-kilntest get failed (exit status 1)"));
	log_reset();
	expect_anonymous("nohelper.example.com");
	assert_true(log_has_warning());
	assert_true(log_has("docker-credential-nosuchhelper"));
	assert_no_secret_logged();
}

static void creds_store_serves_every_host(void **st)
{
	(void)st;
	/* credsStore serves every host without a credHelpers entry; auths
	 * entries are then ignored */
	write_config("{\"auths\": {\"https://index.docker.io/v1/\": {}, "
		     "\"reg.example.com\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\"}},"
		     " \"credHelpers\": {\"broken.example.com\": \"nosuchhelper\"},"
		     " \"credsStore\": \"kilntest\"}");
	log_reset();
	expect_found("registry-1.docker.io", "hubhelper", "hub-helper-s3cret");
	expect_found("helped.example.com", "helperuser", "helper-s3cret");
	expect_anonymous("reg.example.com");
	assert_false(log_has_warning());
	/* credHelpers still comes first */
	expect_anonymous("broken.example.com");
	assert_true(log_has("docker-credential-nosuchhelper"));
	assert_no_secret_logged();
}

/* ---- the file ------------------------------------------------------------------- */

static void missing_config_is_anonymous(void **st)
{
	(void)st;
	char p[256];
	path_in(p, sizeof(p), "dockercfg/config.json");
	unlink(p);
	log_reset();
	expect_anonymous("registry-1.docker.io");
	assert_false(log_has_warning());
	/* DOCKER_CONFIG pointing nowhere is the same */
	char dc[256];
	snprintf(dc, sizeof(dc), "%s", getenv("DOCKER_CONFIG"));
	path_in(p, sizeof(p), "no-such-dir");
	setenv("DOCKER_CONFIG", p, 1);
	expect_anonymous("registry-1.docker.io");
	setenv("DOCKER_CONFIG", dc, 1);
	assert_false(log_has_warning());
}

static void malformed_config_is_anonymous_with_a_warning(void **st)
{
	(void)st;
	write_config("{\"auths\": {\"x\": {\"auth\": \"c2VjcmV0\"");
	log_reset();
	expect_anonymous("registry-1.docker.io");
	assert_true(log_has_warning());
	assert_true(log_has("config.json is not valid JSON (line "));
	log_reset();
	write_config("[1, 2]");
	expect_anonymous("registry-1.docker.io");
	assert_true(log_has_warning());
	assert_true(log_has("not a JSON object"));
	/* a directory where the file should be */
	log_reset();
	char p[256];
	path_in(p, sizeof(p), "dockercfg/config.json");
	unlink(p);
	assert_int_equal(mkdir(p, 0700), 0);
	expect_anonymous("registry-1.docker.io");
	assert_true(log_has_warning());
	rmdir(p);
	assert_no_secret_logged();
}

static void home_docker_config_without_docker_config(void **st)
{
	(void)st;
	char home[256], dotdocker[256];
	path_in(home, sizeof(home), "home");
	path_in(dotdocker, sizeof(dotdocker), "home/.docker");
	mkdir(home, 0700);
	mkdir(dotdocker, 0700);
	write_file("home/.docker/config.json",
		   "{\"auths\": {\"https://index.docker.io/v1/\": "
		   "{\"auth\": \"aHVidXNlcjpodWJwYXNz\"}}}",
		   0600);
	write_config("{}");
	const char *oh = getenv("HOME");
	char old_home[512], dc[256];
	snprintf(old_home, sizeof(old_home), "%s", oh ? oh : "/");
	snprintf(dc, sizeof(dc), "%s", getenv("DOCKER_CONFIG"));
	log_reset();
	/* DOCKER_CONFIG wins while set */
	setenv("HOME", home, 1);
	expect_anonymous("docker.io");
	unsetenv("DOCKER_CONFIG");
	expect_found("docker.io", "hubuser", "hubpass");
	/* an empty DOCKER_CONFIG is unset */
	setenv("DOCKER_CONFIG", "", 1);
	expect_found("docker.io", "hubuser", "hubpass");
	setenv("HOME", old_home, 1);
	setenv("DOCKER_CONFIG", dc, 1);
	assert_no_secret_logged();
}

/* ---- through the host table ------------------------------------------------------ */

static void host_table_serves_it(void **st)
{
	(void)st;
	const struct kiln_host *h = &kiln__host;
	/* appended right after ignore_free (later fields go after it) */
	assert_int_equal(offsetof(struct kiln_host, registry_credentials),
			 offsetof(struct kiln_host, ignore_free) + sizeof(h->ignore_free));
	assert_true(sizeof(struct kiln_host) >= offsetof(struct kiln_host, registry_credentials) +
							sizeof(h->registry_credentials));
	assert_true(KILN_HAS_FIELD(h, struct kiln_host, registry_credentials));
	struct kiln_host older = { .struct_size = offsetof(struct kiln_host, registry_credentials) };
	assert_false(KILN_HAS_FIELD(&older, struct kiln_host, registry_credentials));
	assert_true(KILN_HAS_FIELD(&older, struct kiln_host, ignore_free));

	write_config(auths_config);
	kiln__log_level = KILN_LOG_WARN; /* not captured here: nothing to warn about */
	char *u = NULL, *s = NULL;
	assert_int_equal(h->registry_credentials("fields.example.com", &u, &s), 0);
	assert_string_equal(u, "fu");
	assert_string_equal(s, "f-s3cret");
	/* what a plugin does with them */
	explicit_bzero(u, strlen(u));
	explicit_bzero(s, strlen(s));
	h->free(u);
	h->free(s);
	u = s = (char *)"unset";
	assert_int_equal(h->registry_credentials("other.example.com", &u, &s), KILN_E_NOTFOUND);
	assert_null(u);
	assert_null(s);
	kiln__log_level = KILN_LOG_DEBUG;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(auths_auth_is_base64_user_password),
		cmocka_unit_test(auths_docker_hub_key),
		cmocka_unit_test(auths_username_password_and_identity_token),
		cmocka_unit_test(auths_nothing_is_anonymous),
		cmocka_unit_test(cred_helpers_run_the_named_helper),
		cmocka_unit_test(creds_store_serves_every_host),
		cmocka_unit_test(missing_config_is_anonymous),
		cmocka_unit_test(malformed_config_is_anonymous_with_a_warning),
		cmocka_unit_test(home_docker_config_without_docker_config),
		cmocka_unit_test(host_table_serves_it),
	};
	return cmocka_run_group_tests_name("dockercfg", tests, group_setup, group_teardown);
}
