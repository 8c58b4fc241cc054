/* Unit tests of core/engine.c's backend choice (docs/cli.md "Choosing the
 * engine"): the rules for --backend, KILN_BACKEND, BUILDKIT_HOST, --addr,
 * DOCKER_HOST and DOCKER_BUILDKIT, against a unix socket served here that
 * answers GET /_ping with the headers real engines send (recorded from
 * Debian's dockerd 20.10 and podman 4.3's `system service`), or stays
 * silent, or speaks no HTTP. The backends are stand-in vtables named
 * "buildkit" and "docker"; the real ones meet real engines in
 * tests/integration/engine_select_test.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

/* ---- stand-in backends --------------------------------------------------------------- */

static int has(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int probe_buildkit(const char *addr)
{
	return has(addr, "tcp://") || has(addr, "docker-unix://") || has(addr, "unix://") ? 20 : 0;
}

static int probe_docker(const char *addr)
{
	return has(addr, "unix://") || has(addr, "docker-unix://") ? 10 : 0;
}

static int fake_push(void *conn, const struct kiln_push *req, struct kiln_push_result *res,
		     struct kiln_err *err)
{
	(void)conn, (void)req, (void)res, (void)err;
	return 0;
}

static const struct kiln_backend buildkit = {
	.abi_version = KILN_ABI_VERSION, .struct_size = sizeof(struct kiln_backend),
	.name = "buildkit", .probe = probe_buildkit,
};
static const struct kiln_backend docker = {
	.abi_version = KILN_ABI_VERSION, .struct_size = sizeof(struct kiln_backend),
	.name = "docker", .probe = probe_docker, .push = fake_push,
};

static struct kiln_ctx *ctx_new(void)
{
	static struct kiln_reg_entry entries[2];
	static struct kiln_ctx ctx;
	entries[0] = (struct kiln_reg_entry){ .kind = KILN_KIND_BACKEND, .name = "buildkit",
					      .vt = &buildkit };
	entries[1] = (struct kiln_reg_entry){ .kind = KILN_KIND_BACKEND, .name = "docker",
					      .vt = &docker };
	/* every kind "loaded": the lazy lookups look no further than these */
	ctx = (struct kiln_ctx){ .reg = { .entries = entries, .n_entries = 2,
					  .kinds_done = KILN_KINDS_ALL, .others_done = true } };
	return &ctx;
}

/* ---- a socket that answers as an engine would ------------------------------------------ */

/* GET /_ping answers, as the engines sent them (curl -D - …/_ping). */
static const char DOCKERD_20_10[] =
	"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nBuilder-Version: 2\r\n"
	"Cache-Control: no-cache, no-store, must-revalidate\r\nDocker-Experimental: false\r\n"
	"Ostype: linux\r\nPragma: no-cache\r\nServer: Docker/20.10.24+dfsg1 (linux)\r\n"
	"Content-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOK";
static const char DOCKERD_18_06[] = /* before BuildKit: API 1.38, no Builder-Version */
	"HTTP/1.1 200 OK\r\nApi-Version: 1.38\r\nDocker-Experimental: false\r\n"
	"Ostype: linux\r\nServer: Docker/18.06.3-ce (linux)\r\nContent-Length: 2\r\n\r\nOK";
static const char NOT_DOCKER[] =
	"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
static const char NOT_HTTP[] = "SSH-2.0-OpenSSH_9.2p1\r\n";
static char podman_answer[2048]; /* read from tests/unit/data (recorded) */

struct server {
	char path[108];
	int fd;
	const char *answer; /* NULL: accept and stay silent */
	int requests;
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		s->requests++;
		if (!s->answer) {
			char buf[512];
			while (read(c, buf, sizeof(buf)) > 0)
				; /* until the client hangs up */
			close(c);
			continue;
		}
		char buf[1024];
		ssize_t n = read(c, buf, sizeof(buf));
		(void)n;
		ssize_t w = write(c, s->answer, strlen(s->answer));
		(void)w;
		close(c);
	}
}

static void server_start(struct server *s, const char *dir, const char *answer)
{
	*s = (struct server){ .answer = answer };
	snprintf(s->path, sizeof(s->path), "%s/engine.sock", dir);
	s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", s->path);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 8), 0);
	pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
	unlink(s->path);
}

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

struct fixture {
	struct server srv;
	char addr[160];
	struct kiln_engine_choice ch;
	struct kiln_err err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kiln-choice.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	unsetenv("KILN_BACKEND");
	unsetenv("DOCKER_BUILDKIT");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	unsetenv("KILN_BACKEND");
	unsetenv("DOCKER_BUILDKIT");
	free(f);
	return 0;
}

/* Serve answer, choose for unix://SOCKET from src, stop. Returns the rc. */
static int choose(struct fixture *f, const char *answer, enum kiln_addr_source src,
		  const char *flag_backend, bool want_store)
{
	server_start(&f->srv, tmpdir, answer);
	snprintf(f->addr, sizeof(f->addr), "unix://%s", f->srv.path);
	memset(&f->err, 0, sizeof(f->err));
	int rc = kiln__engine_choose_at(ctx_new(), f->addr, src, flag_backend, KILN_NEED_SOLVE,
					want_store, &f->ch, &f->err);
	server_stop(&f->srv);
	return rc;
}

/* ---- the rules --------------------------------------------------------------------------- */

static void test_dockerd_with_buildkit(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_DOCKER_HOST, NULL, true), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	char want[200];
	snprintf(want, sizeof(want), "docker-unix://%s", f->srv.path);
	assert_string_equal(f->ch.addr, want);
	assert_non_null(strstr(f->ch.why, "DOCKER_HOST="));
	assert_non_null(strstr(f->ch.why, "dockerd with BuildKit (Builder-Version 2, API 1.41)"));
	/* an image store: the docker backend pushes from it */
	assert_ptr_equal(f->ch.pusher, &docker);
	assert_int_equal(f->srv.requests, 1); /* one ping, reused for the store */
}

static void test_docker_buildkit_0(void **state)
{
	struct fixture *f = *state;
	setenv("DOCKER_BUILDKIT", "0", 1);
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_DOCKER_DEFAULT, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "docker");
	assert_string_equal(f->ch.addr, f->addr);
	assert_non_null(strstr(f->ch.why, "DOCKER_BUILDKIT=0"));
}

static void test_old_api_is_classic(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(choose(f, DOCKERD_18_06, KILN_ADDR_DOCKER_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "docker");
	assert_non_null(strstr(f->ch.why, "without BuildKit (API 1.38 < 1.39)"));
	/* DOCKER_BUILDKIT=1 asks for BuildKit, as the docker CLI lets it */
	setenv("DOCKER_BUILDKIT", "1", 1);
	assert_int_equal(choose(f, DOCKERD_18_06, KILN_ADDR_DOCKER_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	assert_non_null(strstr(f->ch.why, "DOCKER_BUILDKIT=1"));
}

static void test_podman(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(choose(f, podman_answer, KILN_ADDR_DOCKER_HOST, NULL, true), 0);
	assert_string_equal(f->ch.backend->name, "docker");
	assert_non_null(strstr(f->ch.why, "is Podman (Libpod API 4."));
	assert_ptr_equal(f->ch.pusher, &docker);
	/* a kiln.lua builder on Podman's socket: the same rule */
	assert_int_equal(choose(f, podman_answer, KILN_ADDR_BUILDER, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "docker");
}

static void test_buildkit_host_always_buildkit(void **state)
{
	struct fixture *f = *state;
	/* BUILDKIT_HOST and --addr: the buildkit backend, without asking */
	assert_int_equal(choose(f, DOCKERD_18_06, KILN_ADDR_BUILDKIT_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	assert_string_equal(f->ch.addr, f->addr);
	assert_non_null(strstr(f->ch.why, "BUILDKIT_HOST="));
	assert_int_equal(f->srv.requests, 0);
	assert_int_equal(choose(f, NULL, KILN_ADDR_FLAG, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	assert_non_null(strstr(f->ch.why, "--addr="));
	assert_int_equal(f->srv.requests, 0);
	/* DOCKER_BUILDKIT=0 is about Docker's socket, not BUILDKIT_HOST */
	setenv("DOCKER_BUILDKIT", "0", 1);
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_BUILDKIT_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
}

static void test_forced(void **state)
{
	struct fixture *f = *state;
	setenv("KILN_BACKEND", "docker", 1);
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_BUILDKIT_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "docker");
	assert_string_equal(f->ch.why, "KILN_BACKEND=docker");
	/* --backend wins over KILN_BACKEND */
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_DOCKER_HOST, "buildkit", false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	assert_string_equal(f->ch.why, "--backend=buildkit");
	assert_int_equal(choose(f, DOCKERD_20_10, KILN_ADDR_DOCKER_HOST, "nosuch", false),
			 KILN_E_NOTFOUND);
	assert_non_null(strstr(f->err.msg, "--backend: no backend plugin is named 'nosuch'"));
}

static void test_neither_engine(void **state)
{
	struct fixture *f = *state;
	/* HTTP, but not Docker's API */
	assert_int_equal(choose(f, NOT_DOCKER, KILN_ADDR_DOCKER_HOST, NULL, false),
			 KILN_E_CONNECT);
	assert_non_null(strstr(f->err.msg, f->addr));
	assert_non_null(strstr(f->err.msg, "HTTP 404, not a Docker Engine API"));
	/* silent: given up after the ping's 1.5 s, naming both engines */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(choose(f, NULL, KILN_ADDR_DOCKER_HOST, NULL, false), KILN_E_CONNECT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	assert_non_null(strstr(f->err.msg, f->addr));
	assert_non_null(strstr(f->err.msg, "not a Docker Engine API"));
	assert_non_null(strstr(f->err.msg, "not BuildKit"));
	/* no HTTP at all: maybe buildkitd; its backend's gRPC decides */
	assert_int_equal(choose(f, NOT_HTTP, KILN_ADDR_DOCKER_HOST, NULL, false), 0);
	assert_string_equal(f->ch.backend->name, "buildkit");
	assert_string_equal(f->ch.addr, f->addr);
	assert_non_null(strstr(f->ch.why, "did not answer GET /_ping"));
}

static void test_unreachable_goes_by_probe(void **state)
{
	(void)state;
	struct kiln_engine_choice ch;
	struct kiln_err err = { 0 };
	char addr[200];
	snprintf(addr, sizeof(addr), "unix://%s/none.sock", tmpdir);
	assert_int_equal(kiln__engine_choose_at(ctx_new(), addr, KILN_ADDR_DOCKER_HOST, NULL,
						KILN_NEED_SOLVE, false, &ch, &err), 0);
	assert_string_equal(ch.backend->name, "buildkit"); /* the higher probe */
	assert_string_equal(ch.addr, addr);
	assert_non_null(strstr(ch.why, "serves such addresses"));
	/* docker-unix:// names dockerd: buildkit, with its store */
	snprintf(addr, sizeof(addr), "docker-unix://%s/none.sock", tmpdir);
	assert_int_equal(kiln__engine_choose_at(ctx_new(), addr, KILN_ADDR_DOCKER_HOST, NULL,
						KILN_NEED_SOLVE, true, &ch, &err), 0);
	assert_string_equal(ch.backend->name, "buildkit");
	assert_ptr_equal(ch.pusher, &docker);
}

static void test_addr_order(void **state)
{
	(void)state;
	enum kiln_addr_source src;
	setenv("BUILDKIT_HOST", "tcp://127.0.0.1:1234", 1);
	setenv("DOCKER_HOST", "unix:///run/other.sock", 1);
	assert_string_equal(kiln__engine_addr_from("unix:///x.sock", &src), "unix:///x.sock");
	assert_int_equal(src, KILN_ADDR_FLAG);
	assert_string_equal(kiln__engine_addr_from(NULL, &src), "tcp://127.0.0.1:1234");
	assert_int_equal(src, KILN_ADDR_BUILDKIT_HOST);
	unsetenv("BUILDKIT_HOST");
	assert_string_equal(kiln__engine_addr_from("", &src), "unix:///run/other.sock");
	assert_int_equal(src, KILN_ADDR_DOCKER_HOST);
	unsetenv("DOCKER_HOST");
	const char *a = kiln__engine_addr_from(NULL, &src);
	assert_true(src == KILN_ADDR_BUILDKITD_DEFAULT || src == KILN_ADDR_DOCKER_DEFAULT);
	if (src == KILN_ADDR_DOCKER_DEFAULT)
		assert_string_equal(a, "unix:///var/run/docker.sock");
}

int main(void)
{
	/* Podman's answer, recorded from podman 4.3.1 (Debian 12) */
	const char *path = "tests/unit/data/podman-ping.http";
	FILE *fp = fopen(path, "r");
	if (!fp) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t n = fread(podman_answer, 1, sizeof(podman_answer) - 1, fp);
	podman_answer[n] = '\0';
	fclose(fp);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dockerd_with_buildkit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_buildkit_0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_api_is_classic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_podman, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buildkit_host_always_buildkit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_neither_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable_goes_by_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addr_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
