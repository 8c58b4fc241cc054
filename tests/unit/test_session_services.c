// SOURCES: plugins/backend-buildkit/csv.c plugins/backend-buildkit/secrets.c plugins/backend-buildkit/sshfwd.c plugins/backend-buildkit/auth.c plugins/backend-buildkit/rpc.c
// PKGS: grpc
/* Unit tests of the session's Secrets, SSH and Auth services
 * (plugins/backend-buildkit/{secrets,sshfwd,auth}.c): --secret and --ssh
 * parsing, and each handler driven through a fake struct buildkit_pipe
 * (a queue of messages in, a list of messages out), with a test double of
 * session.c's buildkit_scall_md. ForwardAgent runs against a real
 * ssh-agent (skipped when openssh-client is missing) and a fake agent
 * that hangs up. Credentials come from a fake host->registry_credentials
 * (the lookup itself is the core's, tested in test_dockercfg.c), and once
 * from the core's own. Every log line and status detail is captured and
 * checked for the secret values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/backend-buildkit/buildkit.h"
#include "../../plugins/backend-buildkit/session.h"
#include "loader.h" /* kiln__host: the core's registry_credentials */
#include "auth.pb-c.h"
#include "secrets.pb-c.h"
#include "ssh.pb-c.h"

/* ---- a host: error(), log() captured, the heap ------------------------------ */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[64 * 1024];
static size_t loglen;

static int fake_error(struct kiln_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

static void fake_log(enum kiln_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&log_mu);
	if (loglen < sizeof(logbuf) - 1) {
		int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "[%d] ", (int)level);
		loglen += (size_t)n < sizeof(logbuf) - loglen ? (size_t)n : 0;
		n = vsnprintf(logbuf + loglen, sizeof(logbuf) - loglen, fmt, ap);
		loglen += (size_t)n < sizeof(logbuf) - loglen - 1 ? (size_t)n : 0;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
	pthread_mutex_unlock(&log_mu);
	va_end(ap);
}

static void *fake_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	assert_non_null(p);
	return p;
}

static void *fake_realloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	assert_non_null(p);
	return p;
}

static void fake_free(void *p)
{
	free(p);
}

/* The host's registry_credentials: canned answers by registry host, every
 * call counted and its host kept (the Auth tests below). */
static int creds_calls;
static char creds_last_reg[256];

static int fake_registry_credentials(const char *reg, char **username, char **secret)
{
	static const struct { const char *reg, *user, *secret; } known[] = {
		{ "registry-1.docker.io", "hubuser", "hubpass" },
		{ "127.0.0.1:5000", "local", "local-s3cret" },
		{ "tok.example.com", NULL, "id-t0ken" }, /* an identity token */
		{ "pwonly.example.com", "", "pw-only" },
		{ "useronly.example.com", "uo", "" },
	};
	creds_calls++;
	snprintf(creds_last_reg, sizeof(creds_last_reg), "%s", reg);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(reg, known[i].reg) != 0)
			continue;
		*username = known[i].user ? strdup(known[i].user) : NULL;
		*secret = strdup(known[i].secret);
		return 0;
	}
	*username = *secret = NULL;
	return KILN_E_NOTFOUND;
}

static const struct kiln_host host = {
	.struct_size = sizeof(struct kiln_host),
	.registry_credentials = fake_registry_credentials,
	.error = fake_error,
	.log = fake_log,
	.alloc = fake_alloc,
	.realloc = fake_realloc,
	.free = fake_free,
};

static void log_reset(void)
{
	pthread_mutex_lock(&log_mu);
	loglen = 0;
	logbuf[0] = '\0';
	pthread_mutex_unlock(&log_mu);
}

static bool log_has(const char *s)
{
	pthread_mutex_lock(&log_mu);
	bool r = strstr(logbuf, s) != NULL;
	pthread_mutex_unlock(&log_mu);
	return r;
}

static bool log_has_level(enum kiln_log_level level)
{
	char tag[8];
	snprintf(tag, sizeof(tag), "[%d] ", (int)level);
	return log_has(tag);
}

/* ---- the test double of session.c's metadata lookup --------------------------- */

struct buildkit_scall {
	const char *ssh_id; /* "buildkit.ssh.id", or NULL */
};

size_t buildkit_scall_md(const struct buildkit_scall *c, const char *key, const char **vals,
			 size_t max)
{
	if (!c || !c->ssh_id || strcmp(key, "buildkit.ssh.id") != 0)
		return 0;
	if (max > 0)
		vals[0] = c->ssh_id;
	return 1;
}

/* ---- a fake pipe: queued messages in, recorded messages out --------------------- */

#define FAKE_MAX 64

struct blob {
	uint8_t *data;
	size_t len;
};

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct blob in[FAKE_MAX];
	size_t n_in, next_in;
	int end;         /* 0: more may come; 1: half-closed; -1: cancelled */
	struct blob out[FAKE_MAX * 4];
	size_t n_out;
	bool send_fails; /* the call is gone */
	int recvs_after_end;
};

static int fake_recv(void *ctx, const uint8_t **data, size_t *len)
{
	struct fake *f = ctx;
	pthread_mutex_lock(&f->mu);
	while (f->next_in == f->n_in && f->end == 0)
		pthread_cond_wait(&f->cv, &f->mu);
	int r;
	if (f->end < 0) {
		r = -1;
	} else if (f->next_in < f->n_in) {
		*data = f->in[f->next_in].data;
		*len = f->in[f->next_in].len;
		f->next_in++;
		r = 1;
	} else {
		r = 0;
	}
	if (r <= 0)
		f->recvs_after_end++;
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake_send(void *ctx, const void *data, size_t len)
{
	struct fake *f = ctx;
	assert_true(len <= BUILDKIT_MAX_SEND);
	pthread_mutex_lock(&f->mu);
	int r = -1;
	if (!f->send_fails && f->n_out < FAKE_MAX * 4) {
		f->out[f->n_out].data = malloc(len ? len : 1);
		memcpy(f->out[f->n_out].data, data, len);
		f->out[f->n_out].len = len;
		f->n_out++;
		r = 0;
	}
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return r;
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
}

static void fake_release(struct fake *f)
{
	for (size_t i = 0; i < f->n_in; i++)
		free(f->in[i].data);
	for (size_t i = 0; i < f->n_out; i++)
		free(f->out[i].data);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
}

static struct buildkit_pipe fake_pipe(struct fake *f)
{
	return (struct buildkit_pipe){ .ctx = f, .recv = fake_recv, .send = fake_send };
}

static void fake_push(struct fake *f, const void *data, size_t len)
{
	pthread_mutex_lock(&f->mu);
	assert_true(f->n_in < FAKE_MAX);
	f->in[f->n_in].data = malloc(len ? len : 1);
	memcpy(f->in[f->n_in].data, data, len);
	f->in[f->n_in].len = len;
	f->n_in++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void fake_push_msg(struct fake *f, const ProtobufCMessage *m)
{
	uint8_t buf[4096];
	size_t n = protobuf_c_message_get_packed_size(m);
	assert_true(n <= sizeof(buf));
	protobuf_c_message_pack(m, buf);
	fake_push(f, buf, n);
}

static void fake_end(struct fake *f, int how)
{
	pthread_mutex_lock(&f->mu);
	f->end = how;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* ---- fixtures: a temp dir ----------------------------------------------------------- */

#include "tmpfiles.h"


static int group_setup(void **st)
{
	(void)st;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-sst-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int group_teardown(void **st)
{
	(void)st;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static bool is_secret_free(const char *secret, const char *details)
{
	return !log_has(secret) && !strstr(details, secret);
}

/* ================================================================================ */
/* Secrets                                                                           */
/* ================================================================================ */

/* Call GetSecret for id; returns the status, *data the answer (malloc). */
static grpc_status_code get_secret(struct buildkit_session *s, const char *id, uint8_t **data,
				   size_t *len, char *details, size_t dn)
{
	struct fake f;
	fake_init(&f);
	Moby__Buildkit__Secrets__V1__GetSecretRequest req =
		MOBY__BUILDKIT__SECRETS__V1__GET_SECRET_REQUEST__INIT;
	req.id = (char *)id;
	Moby__Buildkit__Secrets__V1__GetSecretRequest__AnnotationsEntry ann =
		MOBY__BUILDKIT__SECRETS__V1__GET_SECRET_REQUEST__ANNOTATIONS_ENTRY__INIT;
	Moby__Buildkit__Secrets__V1__GetSecretRequest__AnnotationsEntry *anns[] = { &ann };
	ann.key = "containerd.io/gc.root";
	ann.value = "x";
	req.n_annotations = 1;
	req.annotations = anns;
	fake_push_msg(&f, &req.base);
	fake_end(&f, 1);
	struct buildkit_pipe p = fake_pipe(&f);
	details[0] = '\0';
	grpc_status_code code = buildkit_secrets_get(s, NULL, &p, details, dn);
	*data = NULL;
	*len = 0;
	if (code == GRPC_STATUS_OK) {
		assert_int_equal(f.n_out, 1);
		Moby__Buildkit__Secrets__V1__GetSecretResponse *resp =
			moby__buildkit__secrets__v1__get_secret_response__unpack(NULL, f.out[0].len,
										  f.out[0].data);
		assert_non_null(resp);
		*len = resp->data.len;
		*data = malloc(resp->data.len + 1);
		if (resp->data.len)
			memcpy(*data, resp->data.data, resp->data.len);
		(*data)[resp->data.len] = '\0';
		moby__buildkit__secrets__v1__get_secret_response__free_unpacked(resp, NULL);
	} else {
		assert_int_equal(f.n_out, 0);
	}
	fake_release(&f);
	return code;
}

static void assert_secret(struct buildkit_session *s, const char *id, const char *want)
{
	uint8_t *data;
	size_t len;
	char details[512];
	assert_int_equal(get_secret(s, id, &data, &len, details, sizeof(details)),
			 GRPC_STATUS_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	free(data);
	if (*want)
		assert_true(is_secret_free(want, details));
}

static void secret_from_file(void **st)
{
	(void)st;
	log_reset();
	write_file("tok", "file-s3cret-value", 0600);
	char spec[256], spec2[256];
	snprintf(spec, sizeof(spec), "id=tok,src=%s/tok", tmpdir);
	snprintf(spec2, sizeof(spec2), "type=file,id=tok2,source=%s/tok", tmpdir);
	const char *specs[] = { spec, spec2 };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_secrets_parse(&s, specs, 2, &err), 0);
	assert_int_equal(s.n_secrets, 2);
	assert_string_equal(s.secrets[0].id, "tok");
	assert_null(s.secrets[0].env);
	assert_secret(&s, "tok", "file-s3cret-value");
	assert_secret(&s, "tok2", "file-s3cret-value");
	/* read when asked, not at parse time */
	write_file("tok", "rotated-s3cret", 0600);
	assert_secret(&s, "tok", "rotated-s3cret");
	assert_false(log_has("s3cret"));
	buildkit_secrets_free(&s);
	assert_null(s.secrets);
	assert_int_equal(s.n_secrets, 0);
}

static void secret_from_env(void **st)
{
	(void)st;
	log_reset();
	setenv("KILN_TEST_SECRET", "env-s3cret-value", 1);
	const char *specs[] = {
		"id=a,env=KILN_TEST_SECRET",
		"type=env,id=b,src=KILN_TEST_SECRET", /* buildx: src names the variable */
		"id=KILN_TEST_SECRET",                 /* no src/env: a set variable */
		"\"id=c\",\"env=KILN_TEST_SECRET\"",   /* CSV quoting */
		"ID=d,Env=KILN_TEST_SECRET",           /* keys are case-insensitive */
	};
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_secrets_parse(&s, specs, 5, &err), 0);
	assert_int_equal(s.n_secrets, 5);
	assert_string_equal(s.secrets[1].env, "KILN_TEST_SECRET");
	assert_null(s.secrets[1].src);
	assert_string_equal(s.secrets[2].env, "KILN_TEST_SECRET");
	assert_secret(&s, "a", "env-s3cret-value");
	assert_secret(&s, "b", "env-s3cret-value");
	assert_secret(&s, "KILN_TEST_SECRET", "env-s3cret-value");
	assert_secret(&s, "c", "env-s3cret-value");
	assert_secret(&s, "d", "env-s3cret-value");
	setenv("KILN_TEST_SECRET", "", 1); /* set but empty: an empty secret */
	assert_secret(&s, "a", "");
	unsetenv("KILN_TEST_SECRET");
	uint8_t *data;
	size_t len;
	char details[512];
	assert_int_equal(get_secret(&s, "a", &data, &len, details, sizeof(details)),
			 GRPC_STATUS_NOT_FOUND);
	assert_non_null(strstr(details, "KILN_TEST_SECRET"));
	assert_false(log_has("s3cret"));
	buildkit_secrets_free(&s);
}

static void secret_bare_id_is_a_file_when_no_variable(void **st)
{
	(void)st;
	char old[512];
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(tmpdir), 0);
	write_file("bareid", "bare-s3cret", 0600);
	unsetenv("bareid");
	const char *specs[] = { "id=bareid", "id=dup,src=bareid", "id=dup,src=bareid,env=" };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_secrets_parse(&s, specs, 3, &err), 0);
	/* a repeated id replaces the earlier one, as in buildx */
	assert_int_equal(s.n_secrets, 2);
	assert_string_equal(s.secrets[0].src, "bareid");
	assert_secret(&s, "bareid", "bare-s3cret");
	assert_secret(&s, "dup", "bare-s3cret");
	buildkit_secrets_free(&s);
	assert_int_equal(chdir(old), 0);
}

static void secret_unknown_id_is_not_found(void **st)
{
	(void)st;
	log_reset();
	struct buildkit_session s = { .host = &host };
	uint8_t *data;
	size_t len;
	char details[512];
	assert_int_equal(get_secret(&s, "nope", &data, &len, details, sizeof(details)),
			 GRPC_STATUS_NOT_FOUND);
	assert_non_null(strstr(details, "nope"));

	/* a malformed request, and a call that is gone */
	struct fake f;
	fake_init(&f);
	fake_push(&f, "\xff\xff\xff", 3);
	struct buildkit_pipe p = fake_pipe(&f);
	assert_int_equal(buildkit_secrets_get(&s, NULL, &p, details, sizeof(details)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	fake_release(&f);
	fake_init(&f);
	fake_end(&f, -1);
	p = fake_pipe(&f);
	assert_int_equal(buildkit_secrets_get(&s, NULL, &p, details, sizeof(details)),
			 GRPC_STATUS_CANCELLED);
	fake_release(&f);
}

static void secret_parse_errors_name_the_spec(void **st)
{
	(void)st;
	write_file("ok", "x", 0600);
	unsetenv("KILN_TEST_UNSET");
	char missing[256], dir[256], both[256], unset_id[256];
	snprintf(missing, sizeof(missing), "id=m,src=%s/does-not-exist", tmpdir);
	snprintf(dir, sizeof(dir), "id=d,src=%s", tmpdir);
	snprintf(both, sizeof(both), "id=x,src=%s/ok,env=KILN_TEST_UNSET", tmpdir);
	snprintf(unset_id, sizeof(unset_id), "id=%s/nothing-here", tmpdir);
	const struct {
		const char *spec;
		int code;
		const char *says;
	} cases[] = {
		{ missing, KILN_E_NOTFOUND, "does-not-exist" },
		{ "id=e,env=KILN_TEST_UNSET", KILN_E_NOTFOUND, "KILN_TEST_UNSET is not set" },
		{ both, KILN_E_NOTFOUND, "KILN_TEST_UNSET" },
		{ unset_id, KILN_E_NOTFOUND, "nothing-here" },
		{ dir, KILN_E_INVALID, "directory" },
		{ "id=x,foo=bar", KILN_E_INVALID, "unknown key 'foo'" },
		{ "id=x,justaword", KILN_E_INVALID, "key=value" },
		{ "justaword", KILN_E_INVALID, "key=value" },
		{ "src=/etc/hostname", KILN_E_INVALID, "id is required" },
		{ "type=ssh,id=x,src=/etc/hostname", KILN_E_INVALID, "unsupported secret type" },
		{ "id=x,src=\"unterminated", KILN_E_INVALID, "quote" },
		{ "\"id=x\"junk", KILN_E_INVALID, "quote" },
		{ "\"id=x", KILN_E_INVALID, "unterminated quote" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buildkit_session s = { .host = &host };
		struct kiln_err err = { 0 };
		const char *one[] = { cases[i].spec };
		int rc = buildkit_secrets_parse(&s, one, 1, &err);
		if (rc != cases[i].code || !strstr(err.msg, cases[i].spec) ||
		    !strstr(err.msg, cases[i].says))
			fail_msg("spec %s: rc %d, message \"%s\"", cases[i].spec, rc, err.msg);
		assert_int_equal(err.code, cases[i].code);
		assert_int_equal(s.n_secrets, 0);
		buildkit_secrets_free(&s);
	}
	/* an empty spec */
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	const char *empty[] = { "" };
	assert_int_equal(buildkit_secrets_parse(&s, empty, 1, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, "--secret"));
	/* a bad spec after good ones: the good ones stay, for _free */
	char good[256];
	snprintf(good, sizeof(good), "id=g,src=%s/ok", tmpdir);
	const char *mixed[] = { good, "id=x,foo=bar" };
	assert_int_equal(buildkit_secrets_parse(&s, mixed, 2, &err), KILN_E_INVALID);
	assert_int_equal(s.n_secrets, 1);
	buildkit_secrets_free(&s);
}

static void secret_size_limit(void **st)
{
	(void)st;
	log_reset();
	size_t big = BUILDKIT_MAX_SEND; /* over the limit (which leaves room for framing) */
	char p[256];
	path_in(p, sizeof(p), "big");
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)big - 1, SEEK_SET), 0);
	fputc('x', fp);
	fclose(fp);
	char spec[300];
	snprintf(spec, sizeof(spec), "id=big,src=%s", p);
	const char *specs[] = { spec };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_secrets_parse(&s, specs, 1, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, spec));
	/* the file grows after the check: the handler refuses it */
	write_file("big", "small", 0600);
	assert_int_equal(buildkit_secrets_parse(&s, specs, 1, &err), 0);
	assert_int_equal(truncate(p, (off_t)big), 0);
	uint8_t *data;
	size_t len;
	char details[512];
	assert_int_equal(get_secret(&s, "big", &data, &len, details, sizeof(details)),
			 GRPC_STATUS_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(details, "big"));
	/* just under: sent whole, and the message fits the daemon's limit */
	assert_int_equal(truncate(p, (off_t)(BUILDKIT_MAX_SEND - 16)), 0);
	assert_int_equal(get_secret(&s, "big", &data, &len, details, sizeof(details)),
			 GRPC_STATUS_OK);
	assert_int_equal(len, BUILDKIT_MAX_SEND - 16);
	free(data);
	buildkit_secrets_free(&s);
}

/* ================================================================================ */
/* SSH                                                                               */
/* ================================================================================ */

static pid_t agent_pid;
static char agent_sock[128];
static bool have_agent;

static int run(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Start `ssh-agent -D -a SOCK` with an ed25519 key loaded. */
static int agent_setup(void **st)
{
	(void)st;
	if (run("command -v ssh-agent >/dev/null && command -v ssh-add >/dev/null && "
		"command -v ssh-keygen >/dev/null") != 0)
		return 0;
	path_in(agent_sock, sizeof(agent_sock), "agent.sock");
	agent_pid = fork();
	if (agent_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* a crashed test leaves no agent */
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execlp("ssh-agent", "ssh-agent", "-D", "-a", agent_sock, (char *)NULL);
		_exit(127);
	}
	if (agent_pid < 0)
		return -1;
	struct stat sb;
	for (int i = 0; i < 500 && stat(agent_sock, &sb) != 0; i++)
		usleep(10000);
	if (stat(agent_sock, &sb) != 0)
		return -1;
	char cmd[600];
	snprintf(cmd, sizeof(cmd),
		 "ssh-keygen -q -t ed25519 -N '' -C kiln-test-key -f %s/id_test >/dev/null && "
		 "SSH_AUTH_SOCK=%s ssh-add -q %s/id_test >/dev/null 2>&1",
		 tmpdir, agent_sock, tmpdir);
	if (run(cmd) != 0)
		return -1;
	have_agent = true;
	return 0;
}

static int agent_teardown(void **st)
{
	(void)st;
	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		waitpid(agent_pid, NULL, 0);
		agent_pid = 0;
	}
	return 0;
}

static int all_setup(void **st)
{
	if (group_setup(st) != 0)
		return -1;
	return agent_setup(st);
}

static int all_teardown(void **st)
{
	agent_teardown(st);
	return group_teardown(st);
}

static void ssh_parse_forms(void **st)
{
	(void)st;
	if (!have_agent)
		skip();
	setenv("SSH_AUTH_SOCK", agent_sock, 1);
	char explicit[256], unnamed[256];
	snprintf(explicit, sizeof(explicit), "work=%s", agent_sock);
	snprintf(unnamed, sizeof(unnamed), "=%s", agent_sock);
	const char *specs[] = { "default", "myid", explicit };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_ssh_parse(&s, specs, 3, &err), 0);
	assert_int_equal(s.n_ssh, 3);
	assert_string_equal(s.ssh[0].id, "default");
	assert_int_equal(s.ssh[0].n_sockets, 1);
	assert_string_equal(s.ssh[0].sockets[0], agent_sock);
	assert_string_equal(s.ssh[1].id, "myid");
	assert_string_equal(s.ssh[1].sockets[0], agent_sock);
	assert_string_equal(s.ssh[2].id, "work");
	buildkit_ssh_free(&s);
	assert_null(s.ssh);
	const char *un[] = { unnamed };
	assert_int_equal(buildkit_ssh_parse(&s, un, 1, &err), 0);
	assert_string_equal(s.ssh[0].id, "default");
	buildkit_ssh_free(&s);
}

static void ssh_parse_errors(void **st)
{
	(void)st;
	write_file("id_fake", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0600);
	char keyfile[256], missing[256], two[512], dup1[256];
	snprintf(keyfile, sizeof(keyfile), "k=%s/id_fake", tmpdir);
	snprintf(missing, sizeof(missing), "m=%s/no-such.sock", tmpdir);
	snprintf(two, sizeof(two), "t=%s,%s", agent_sock, agent_sock);
	snprintf(dup1, sizeof(dup1), "default=%s", agent_sock);

	unsetenv("SSH_AUTH_SOCK");
	const struct {
		const char *spec;
		int code;
		const char *says;
	} cases[] = {
		{ "default", KILN_E_INVALID, "SSH_AUTH_SOCK is not set" },
		{ "myid", KILN_E_INVALID, "SSH_AUTH_SOCK is not set" },
		{ keyfile, KILN_E_UNSUPPORTED, "agent sockets only" },
		{ missing, KILN_E_NOTFOUND, "no-such.sock" },
		{ "", KILN_E_INVALID, "--ssh" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buildkit_session s = { .host = &host };
		struct kiln_err err = { 0 };
		const char *one[] = { cases[i].spec };
		int rc = buildkit_ssh_parse(&s, one, 1, &err);
		if (rc != cases[i].code || !strstr(err.msg, cases[i].spec) ||
		    !strstr(err.msg, cases[i].says))
			fail_msg("spec %s: rc %d, message \"%s\"", cases[i].spec, rc, err.msg);
		assert_int_equal(s.n_ssh, 0);
		buildkit_ssh_free(&s);
	}
	if (!have_agent)
		return;
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	const char *twos[] = { two };
	assert_int_equal(buildkit_ssh_parse(&s, twos, 1, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, "one agent socket"));
	const char *dups[] = { dup1, dup1 };
	assert_int_equal(buildkit_ssh_parse(&s, dups, 2, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, "twice"));
	assert_int_equal(s.n_ssh, 1);
	buildkit_ssh_free(&s);
}

static grpc_status_code check_agent(struct buildkit_session *s, const char *id, char *details,
				    size_t dn, size_t *n_out)
{
	struct fake f;
	fake_init(&f);
	Moby__Sshforward__V1__CheckAgentRequest req =
		MOBY__SSHFORWARD__V1__CHECK_AGENT_REQUEST__INIT;
	req.id = (char *)id;
	fake_push_msg(&f, &req.base);
	fake_end(&f, 1);
	struct buildkit_pipe p = fake_pipe(&f);
	details[0] = '\0';
	grpc_status_code code = buildkit_ssh_check(s, NULL, &p, details, dn);
	*n_out = f.n_out;
	if (f.n_out)
		assert_int_equal(f.out[0].len, 0); /* CheckAgentResponse{} */
	fake_release(&f);
	return code;
}

static void ssh_check_known_and_unknown(void **st)
{
	(void)st;
	if (!have_agent)
		skip();
	char spec[256];
	snprintf(spec, sizeof(spec), "default=%s", agent_sock);
	char spec2[256];
	snprintf(spec2, sizeof(spec2), "other=%s", agent_sock);
	const char *specs[] = { spec, spec2 };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_ssh_parse(&s, specs, 2, &err), 0);
	char details[512];
	size_t n_out;
	assert_int_equal(check_agent(&s, "", details, sizeof(details), &n_out), GRPC_STATUS_OK);
	assert_int_equal(n_out, 1);
	assert_int_equal(check_agent(&s, "default", details, sizeof(details), &n_out),
			 GRPC_STATUS_OK);
	assert_int_equal(check_agent(&s, "other", details, sizeof(details), &n_out),
			 GRPC_STATUS_OK);
	assert_int_equal(check_agent(&s, "nope", details, sizeof(details), &n_out),
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(n_out, 0);
	assert_non_null(strstr(details, "nope"));
	buildkit_ssh_free(&s);
	/* no --ssh at all: even "default" is unknown */
	assert_int_equal(check_agent(&s, "", details, sizeof(details), &n_out),
			 GRPC_STATUS_NOT_FOUND);
}

/* ---- ForwardAgent ------------------------------------------------------------------ */

struct fwd_run {
	struct buildkit_session *s;
	struct buildkit_scall call;
	struct fake f;
	struct buildkit_pipe pipe;
	pthread_t th;
	grpc_status_code code;
	char details[512];
	bool done;
};

static void *fwd_thread(void *arg)
{
	struct fwd_run *r = arg;
	r->code = buildkit_ssh_forward(r->s, &r->call, &r->pipe, r->details, sizeof(r->details));
	pthread_mutex_lock(&r->f.mu);
	r->done = true;
	pthread_cond_broadcast(&r->f.cv);
	pthread_mutex_unlock(&r->f.mu);
	return NULL;
}

static void fwd_start(struct fwd_run *r, struct buildkit_session *s, const char *id)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->call.ssh_id = id;
	fake_init(&r->f);
	r->pipe = fake_pipe(&r->f);
	assert_int_equal(pthread_create(&r->th, NULL, fwd_thread, r), 0);
}

/* Wait (5 s at most) for the handler to return; its status. */
static grpc_status_code fwd_wait(struct fwd_run *r)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&r->f.mu);
	while (!r->done)
		if (pthread_cond_timedwait(&r->f.cv, &r->f.mu, &dl) == ETIMEDOUT)
			break;
	bool done = r->done;
	pthread_mutex_unlock(&r->f.mu);
	if (!done)
		fail_msg("ForwardAgent did not return within 5 s");
	pthread_join(r->th, NULL);
	return r->code;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The bytes of every BytesMessage sent so far, concatenated (malloc). */
static size_t fwd_stream(struct fwd_run *r, uint8_t **out)
{
	size_t len = 0;
	*out = NULL;
	pthread_mutex_lock(&r->f.mu);
	for (size_t i = 0; i < r->f.n_out; i++) {
		Moby__Sshforward__V1__BytesMessage *m = moby__sshforward__v1__bytes_message__unpack(
			NULL, r->f.out[i].len, r->f.out[i].data);
		assert_non_null(m);
		*out = realloc(*out, len + m->data.len + 1);
		memcpy(*out + len, m->data.data, m->data.len);
		len += m->data.len;
		moby__sshforward__v1__bytes_message__free_unpacked(m, NULL);
	}
	pthread_mutex_unlock(&r->f.mu);
	return len;
}

/* Wait (5 s at most) until the agent's answers hold n complete frames;
 * returns the stream (malloc) and its length. */
static size_t fwd_wait_frames(struct fwd_run *r, size_t n, uint8_t **out)
{
	for (int tries = 0; tries < 500; tries++) {
		size_t len = fwd_stream(r, out);
		size_t off = 0, frames = 0;
		while (off + 4 <= len) {
			uint32_t fl = be32(*out + off);
			if (off + 4 + fl > len)
				break;
			off += 4 + fl;
			frames++;
		}
		if (frames >= n)
			return len;
		free(*out);
		usleep(10000);
	}
	fail_msg("no %zu answer(s) from the agent within 5 s", n);
	return 0;
}

/* Frame i of a stream: its type and body. */
static uint8_t frame_at(const uint8_t *s, size_t len, size_t i, const uint8_t **body,
			size_t *blen)
{
	size_t off = 0;
	for (;;) {
		assert_true(off + 5 <= len);
		uint32_t fl = be32(s + off);
		if (i-- == 0) {
			*body = s + off + 5;
			*blen = fl - 1;
			return s[off + 4];
		}
		off += 4 + fl;
	}
}

static void push_bytes(struct fwd_run *r, const void *data, size_t len)
{
	Moby__Sshforward__V1__BytesMessage m = MOBY__SSHFORWARD__V1__BYTES_MESSAGE__INIT;
	m.data.data = (uint8_t *)data;
	m.data.len = len;
	fake_push_msg(&r->f, &m.base);
}

static const uint8_t REQ_IDS[] = { 0, 0, 0, 1, 11 };    /* SSH2_AGENTC_REQUEST_IDENTITIES */
static const uint8_t REQ_REMOVE_ALL[] = { 0, 0, 0, 1, 19 };
static const uint8_t REQ_LOCK[] = { 0, 0, 0, 9, 22, 0, 0, 0, 4, 'p', 'a', 's', 's' };

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
	p[3] = (uint8_t)v;
}

static void ssh_forward_real_agent(void **st)
{
	(void)st;
	if (!have_agent)
		skip();
	char spec[256];
	snprintf(spec, sizeof(spec), "work=%s", agent_sock);
	const char *specs[] = { spec };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_ssh_parse(&s, specs, 1, &err), 0);

	struct fwd_run r;
	fwd_start(&r, &s, "work");
	/* a request split over messages: boundaries mean nothing */
	push_bytes(&r, REQ_IDS, 2);
	push_bytes(&r, REQ_IDS + 2, 3);
	uint8_t *out;
	size_t len = fwd_wait_frames(&r, 1, &out);
	const uint8_t *body;
	size_t blen;
	assert_int_equal(frame_at(out, len, 0, &body, &blen), 12); /* IDENTITIES_ANSWER */
	assert_true(blen >= 4);
	assert_int_equal(be32(body), 1); /* the one key */
	uint32_t kl = be32(body + 4);
	assert_true(8 + kl <= blen);
	uint8_t key[512];
	assert_true(kl <= sizeof(key));
	memcpy(key, body + 8, kl);
	free(out);

	/* a sign request (passed), then removing every key and locking (both
	 * refused: the agent answers FAILURE and keeps its keys), all in
	 * one message, then the identities again, a byte at a time */
	uint8_t req[1024];
	size_t n = 4;
	req[n++] = 13; /* SSH2_AGENTC_SIGN_REQUEST */
	put32(req + n, kl), n += 4;
	memcpy(req + n, key, kl), n += kl;
	put32(req + n, 5), n += 4;
	memcpy(req + n, "hello", 5), n += 5;
	put32(req + n, 0), n += 4;
	put32(req, (uint32_t)(n - 4));
	memcpy(req + n, REQ_REMOVE_ALL, sizeof(REQ_REMOVE_ALL)), n += sizeof(REQ_REMOVE_ALL);
	memcpy(req + n, REQ_LOCK, sizeof(REQ_LOCK)), n += sizeof(REQ_LOCK);
	push_bytes(&r, req, n);
	for (size_t i = 0; i < sizeof(REQ_IDS); i++)
		push_bytes(&r, REQ_IDS + i, 1);
	len = fwd_wait_frames(&r, 5, &out);
	assert_int_equal(frame_at(out, len, 1, &body, &blen), 14); /* SIGN_RESPONSE */
	assert_int_equal(frame_at(out, len, 2, &body, &blen), 5);  /* FAILURE: not removed */
	assert_int_equal(frame_at(out, len, 3, &body, &blen), 5);  /* FAILURE: not locked */
	assert_int_equal(frame_at(out, len, 4, &body, &blen), 12);
	assert_int_equal(be32(body), 1); /* the key is still there */
	free(out);

	/* the daemon half-closes: kiln shuts the agent's write side, the
	 * agent hangs up, the call ends OK */
	fake_end(&r.f, 1);
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_OK);
	fake_release(&r.f);

	/* the default id, from absent metadata */
	buildkit_ssh_free(&s);
	snprintf(spec, sizeof(spec), "default=%s", agent_sock);
	assert_int_equal(buildkit_ssh_parse(&s, specs, 1, &err), 0);
	fwd_start(&r, &s, NULL);
	push_bytes(&r, REQ_IDS, sizeof(REQ_IDS));
	len = fwd_wait_frames(&r, 1, &out);
	assert_int_equal(frame_at(out, len, 0, &body, &blen), 12);
	free(out);
	fake_end(&r.f, 1);
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_OK);
	fake_release(&r.f);
	buildkit_ssh_free(&s);
}

static void ssh_forward_cancel_ends_both_threads(void **st)
{
	(void)st;
	if (!have_agent)
		skip();
	char spec[256];
	snprintf(spec, sizeof(spec), "default=%s", agent_sock);
	const char *specs[] = { spec };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_ssh_parse(&s, specs, 1, &err), 0);

	/* cancelled mid-conversation */
	struct fwd_run r;
	fwd_start(&r, &s, "default");
	push_bytes(&r, REQ_IDS, sizeof(REQ_IDS));
	uint8_t *out;
	fwd_wait_frames(&r, 1, &out);
	free(out);
	push_bytes(&r, REQ_IDS, 3); /* half a request */
	fake_end(&r.f, -1);
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_CANCELLED);
	fake_release(&r.f);

	/* cancelled before a byte moved */
	fwd_start(&r, &s, "");
	fake_end(&r.f, -1);
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_CANCELLED);
	fake_release(&r.f);

	/* the call goes away while the agent answers (send fails) */
	fwd_start(&r, &s, "default");
	pthread_mutex_lock(&r.f.mu);
	r.f.send_fails = true;
	pthread_mutex_unlock(&r.f.mu);
	push_bytes(&r, REQ_IDS, sizeof(REQ_IDS));
	usleep(100000);
	fake_end(&r.f, -1); /* what a gone call's recv says */
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_CANCELLED);
	fake_release(&r.f);
	buildkit_ssh_free(&s);
}

/* A fake agent: accepts one connection, reads one request, hangs up. */
struct hangup_agent {
	int lfd;
	pthread_t th;
};

static void *hangup_main(void *arg)
{
	struct hangup_agent *a = arg;
	int c = accept(a->lfd, NULL, NULL);
	if (c >= 0) {
		uint8_t buf[5];
		size_t got = 0;
		while (got < sizeof(buf)) {
			ssize_t n = read(c, buf + got, sizeof(buf) - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(c);
	}
	return NULL;
}

static void ssh_forward_agent_hangs_up(void **st)
{
	(void)st;
	char sock[128];
	path_in(sock, sizeof(sock), "hangup.sock");
	struct hangup_agent a;
	a.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	assert_int_equal(bind(a.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(a.lfd, 4), 0);
	assert_int_equal(pthread_create(&a.th, NULL, hangup_main, &a), 0);

	char spec[256];
	snprintf(spec, sizeof(spec), "h=%s", sock);
	const char *specs[] = { spec };
	struct buildkit_session s = { .host = &host };
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_ssh_parse(&s, specs, 1, &err), 0);
	struct fwd_run r;
	fwd_start(&r, &s, "h");
	/* the agent takes the request and hangs up: kiln answers FAILURE */
	push_bytes(&r, REQ_IDS, sizeof(REQ_IDS));
	uint8_t *out;
	size_t len = fwd_wait_frames(&r, 1, &out);
	const uint8_t *body;
	size_t blen;
	assert_int_equal(frame_at(out, len, 0, &body, &blen), 5);
	free(out);
	/* and to whatever follows, until the daemon half-closes */
	push_bytes(&r, REQ_IDS, sizeof(REQ_IDS));
	len = fwd_wait_frames(&r, 2, &out);
	assert_int_equal(frame_at(out, len, 1, &body, &blen), 5);
	free(out);
	fake_end(&r.f, 1);
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_OK);
	fake_release(&r.f);
	pthread_join(a.th, NULL);

	/* nobody listens any more: UNAVAILABLE, naming the socket */
	close(a.lfd);
	fwd_start(&r, &s, "h");
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(r.details, "hangup.sock"));
	fake_release(&r.f);

	/* an id kiln was not given */
	fwd_start(&r, &s, "nope");
	assert_int_equal(fwd_wait(&r), GRPC_STATUS_NOT_FOUND);
	assert_non_null(strstr(r.details, "nope"));
	fake_release(&r.f);
	buildkit_ssh_free(&s);
}

/* ================================================================================ */
/* Auth                                                                              */
/* ================================================================================ */

/* Ask h's session for reg's credentials, as the daemon does. */
static grpc_status_code credentials_from(const struct kiln_host *h, const char *reg, char *user,
					 char *secret, size_t n)
{
	struct fake f;
	fake_init(&f);
	Moby__Filesync__V1__CredentialsRequest req = MOBY__FILESYNC__V1__CREDENTIALS_REQUEST__INIT;
	req.host = (char *)reg;
	fake_push_msg(&f, &req.base);
	fake_end(&f, 1);
	struct buildkit_pipe p = fake_pipe(&f);
	struct buildkit_session s = { .host = h };
	char details[512] = "";
	grpc_status_code code = buildkit_auth_credentials(&s, NULL, &p, details, sizeof(details));
	user[0] = secret[0] = '\0';
	if (code == GRPC_STATUS_OK) {
		assert_int_equal(f.n_out, 1);
		Moby__Filesync__V1__CredentialsResponse *resp =
			moby__filesync__v1__credentials_response__unpack(NULL, f.out[0].len,
									 f.out[0].data);
		assert_non_null(resp);
		snprintf(user, n, "%s", resp->username);
		snprintf(secret, n, "%s", resp->secret);
		moby__filesync__v1__credentials_response__free_unpacked(resp, NULL);
	}
	fake_release(&f);
	return code;
}

static void assert_creds_from(const struct kiln_host *h, const char *reg, const char *want_user,
			      const char *want_secret)
{
	char u[256], sec[256];
	assert_int_equal(credentials_from(h, reg, u, sec, sizeof(u)), GRPC_STATUS_OK);
	if (strcmp(u, want_user) != 0 || strcmp(sec, want_secret) != 0)
		fail_msg("%s: got user \"%s\" secret \"%s\", want \"%s\" \"%s\"", reg, u, sec,
			 want_user, want_secret);
}

static void assert_creds(const char *reg, const char *want_user, const char *want_secret)
{
	assert_creds_from(&host, reg, want_user, want_secret);
}

static void auth_answers_from_the_host(void **st)
{
	(void)st;
	log_reset();
	creds_calls = 0;
	/* the registry host goes to the core as the daemon gave it (the core
	 * maps Docker Hub's names) */
	assert_creds("registry-1.docker.io", "hubuser", "hubpass");
	assert_string_equal(creds_last_reg, "registry-1.docker.io");
	assert_creds("127.0.0.1:5000", "local", "local-s3cret");
	/* an identity token is the Secret, with no Username */
	assert_creds("tok.example.com", "", "id-t0ken");
	assert_creds("pwonly.example.com", "", "pw-only");
	assert_creds("useronly.example.com", "uo", "");
	assert_int_equal(creds_calls, 5);
	/* none: an empty answer with OK, which the daemon reads as anonymous */
	assert_creds("other.example.com", "", "");
	assert_int_equal(creds_calls, 6);
	/* no host: anonymous without asking */
	assert_creds("", "", "");
	assert_int_equal(creds_calls, 6);
	assert_false(log_has_level(KILN_LOG_WARN));
	const char *secrets[] = { "hubpass", "local-s3cret", "id-t0ken", "pw-only" };
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		assert_false(log_has(secrets[i]));
}

static void auth_without_the_host_service_is_anonymous(void **st)
{
	(void)st;
	/* a core older than registry_credentials: its host table ends at
	 * ignore_free, and whatever lies beyond must not be called */
	struct kiln_host old = host;
	old.struct_size = offsetof(struct kiln_host, registry_credentials);
	log_reset();
	creds_calls = 0;
	assert_creds_from(&old, "registry-1.docker.io", "", "");
	assert_int_equal(creds_calls, 0);
	assert_true(log_has_level(KILN_LOG_WARN));
	assert_true(log_has("registry-1.docker.io"));
	/* a host that has the field but leaves it NULL */
	old = host;
	old.registry_credentials = NULL;
	log_reset();
	assert_creds_from(&old, "registry-1.docker.io", "", "");
	assert_true(log_has_level(KILN_LOG_WARN));
}

static void auth_through_the_core_lookup(void **st)
{
	(void)st;
	/* the real thing: the core's lookup on a real config file */
	char dir[256];
	path_in(dir, sizeof(dir), "dockercfg");
	mkdir(dir, 0700);
	write_file("dockercfg/config.json",
		   "{\"auths\": {\"https://index.docker.io/v1/\": {\"auth\": \"aHVidXNlcjpodWJwYXNz\"},"
		   " \"tok.example.com\": {\"identitytoken\": \"id-t0ken\"}}}",
		   0600);
	const char *oc = getenv("DOCKER_CONFIG");
	char old_dc[512];
	snprintf(old_dc, sizeof(old_dc), "%s", oc ? oc : "");
	setenv("DOCKER_CONFIG", dir, 1);
	struct kiln_host core = host;
	core.registry_credentials = kiln__host.registry_credentials;
	assert_non_null(core.registry_credentials);
	log_reset();
	assert_creds_from(&core, "registry-1.docker.io", "hubuser", "hubpass");
	assert_creds_from(&core, "tok.example.com", "", "id-t0ken");
	assert_creds_from(&core, "other.example.com", "", "");
	if (oc)
		setenv("DOCKER_CONFIG", old_dc, 1);
	else
		unsetenv("DOCKER_CONFIG");
	assert_false(log_has("hubpass"));
}

static void auth_malformed_request(void **st)
{
	(void)st;
	struct fake f;
	fake_init(&f);
	fake_push(&f, "\x0a\x05" "ab", 4); /* field 1 says 5 bytes, has 2 */
	struct buildkit_pipe pp = fake_pipe(&f);
	struct buildkit_session s = { .host = &host };
	char details[512];
	creds_calls = 0;
	assert_int_equal(buildkit_auth_credentials(&s, NULL, &pp, details, sizeof(details)),
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(creds_calls, 0);
	fake_release(&f);
}

/* ---- wire: the method paths session.c serves match these protos ------------------- */

static void method_paths_match_the_services(void **st)
{
	(void)st;
	const struct {
		const ProtobufCServiceDescriptor *d;
		const char *method, *path;
	} m[] = {
		{ &moby__buildkit__secrets__v1__secrets__descriptor, "GetSecret",
		  "/moby.buildkit.secrets.v1.Secrets/GetSecret" },
		{ &moby__sshforward__v1__ssh__descriptor, "CheckAgent",
		  "/moby.sshforward.v1.SSH/CheckAgent" },
		{ &moby__sshforward__v1__ssh__descriptor, "ForwardAgent",
		  "/moby.sshforward.v1.SSH/ForwardAgent" },
		{ &moby__filesync__v1__auth__descriptor, "Credentials",
		  "/moby.filesync.v1.Auth/Credentials" },
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "/%s/%s", m[i].d->name, m[i].method);
		assert_string_equal(want, m[i].path);
		assert_non_null(protobuf_c_service_descriptor_get_method_by_name(m[i].d,
										  m[i].method));
	}
	/* GetSecretResponse{data: "ab"} is 0a 02 61 62, as Go encodes it */
	Moby__Buildkit__Secrets__V1__GetSecretResponse r =
		MOBY__BUILDKIT__SECRETS__V1__GET_SECRET_RESPONSE__INIT;
	r.data.data = (uint8_t *)"ab";
	r.data.len = 2;
	uint8_t buf[8];
	assert_int_equal(protobuf_c_message_pack(&r.base, buf), 4);
	assert_memory_equal(buf, "\x0a\x02" "ab", 4);
	/* CredentialsResponse{Username: "u", Secret: "s"} */
	Moby__Filesync__V1__CredentialsResponse c = MOBY__FILESYNC__V1__CREDENTIALS_RESPONSE__INIT;
	c.username = "u";
	c.secret = "s";
	assert_int_equal(protobuf_c_message_pack(&c.base, buf), 6);
	assert_memory_equal(buf, "\x0a\x01u\x12\x01s", 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(method_paths_match_the_services),
		cmocka_unit_test(secret_from_file),
		cmocka_unit_test(secret_from_env),
		cmocka_unit_test(secret_bare_id_is_a_file_when_no_variable),
		cmocka_unit_test(secret_unknown_id_is_not_found),
		cmocka_unit_test(secret_parse_errors_name_the_spec),
		cmocka_unit_test(secret_size_limit),
		cmocka_unit_test(ssh_parse_forms),
		cmocka_unit_test(ssh_parse_errors),
		cmocka_unit_test(ssh_check_known_and_unknown),
		cmocka_unit_test(ssh_forward_real_agent),
		cmocka_unit_test(ssh_forward_cancel_ends_both_threads),
		cmocka_unit_test(ssh_forward_agent_hangs_up),
		cmocka_unit_test(auth_answers_from_the_host),
		cmocka_unit_test(auth_without_the_host_service_is_anonymous),
		cmocka_unit_test(auth_through_the_core_lookup),
		cmocka_unit_test(auth_malformed_request),
	};
	return cmocka_run_group_tests_name("session_services", tests, all_setup, all_teardown);
}
