// SOURCES: plugins/backend-docker/stream.c plugins/backend-docker/util.c plugins/renderer-json/json.c
// PKGS: jansson libcrypto
/*
 * The docker backend's /build stream parser on recorded engine responses
 * (tests/tty/engine/NAME.stream: Docker 20.10 and Podman 4.3, made with
 * tests/tty/engine/record.sh). Each recording is fed at its recorded
 * times, split at odd places, with the context upload before it, as the
 * backend does; the events it yields are
 *  - checked for what a user sees of them (steps, cache hits, pulls as
 *    statuses, output as logs, the failing step and its exit code);
 *  - written by the real json renderer and compared with
 *    tests/tty/streams/NAME.jsonl, the streams the tty screen tests
 *    replay. KILN_UPDATE_STREAMS=1 rewrites those files instead.
 * Run from the repository's root (tests/run.sh does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../plugins/backend-docker/docker.h"
#include "loader.h"
#include "util.h"

#define T0 INT64_C(1795168800000000000) /* 2026-11-20T10:00:00Z */
#define MS INT64_C(1000000)

static int64_t fake_now;
static const struct kiln_renderer *json_vt;
static void *json_state;
static struct kiln_sb transcript; /* one line per event, for the checks */

static int64_t test_now(void)
{
	return fake_now;
}

static int capture_renderer(struct kiln_plugin *p, const struct kiln_renderer *vt)
{
	(void)p;
	json_vt = vt;
	return 0;
}

static void note_event(const struct kiln_event *ev)
{
	switch (ev->kind) {
	case KILN_EVENT_VERTEX: {
		const struct kiln_event_vertex *v = &ev->u.vertex;
		kiln__sb_addf(&transcript, "V %s%s%s%s%s\n", v->name ? v->name : "?",
			      v->started_ns ? " started" : "", v->completed_ns ? " completed" : "",
			      v->cached ? " cached" : "", v->error ? " error" : "");
		if (v->error)
			kiln__sb_addf(&transcript, "E %s\n", v->error);
		break;
	}
	case KILN_EVENT_VERTEX_STATUS: {
		const struct kiln_event_vertex_status *s = &ev->u.status;
		kiln__sb_addf(&transcript, "S %s %lld/%lld%s\n", s->id, (long long)s->current,
			      (long long)s->total, s->completed_ns ? " done" : "");
		break;
	}
	case KILN_EVENT_VERTEX_LOG:
		kiln__sb_addf(&transcript, "L%d %.*s", ev->u.log.stream, (int)ev->u.log.len,
			      (const char *)ev->u.log.data);
		if (ev->u.log.len && ev->u.log.data[ev->u.log.len - 1] != '\n')
			kiln__sb_adds(&transcript, "\n");
		break;
	case KILN_EVENT_WARNING:
		kiln__sb_addf(&transcript, "W %s\n", ev->u.warning.message);
		break;
	default:
		break;
	}
}

static void test_emit(struct kiln_bus *bus, const struct kiln_event *ev)
{
	(void)bus;
	note_event(ev);
	json_vt->event(json_state, ev);
}

struct recording {
	const char *name;     /* tests/tty/engine/NAME.stream */
	const char *builder;  /* the engine's address */
	int steps;            /* instructions of its Dockerfile */
	const char *tags;     /* t= of the request */
};

/* Replays recording r through the parser; the json renderer writes the
 * events to out_path. Returns the parser's final state's error (owned by
 * the transcript's caller: copied) through *error. */
static void run_recording(const struct recording *r, const char *out_path, char **error)
{
	struct kiln_host host = kiln__host;
	host.register_renderer = capture_renderer;
	host.emit = test_emit;
	host.now_ns = test_now;
	struct kiln_err err = { 0 };
	assert_int_equal(kiln_plugin_init(&host, KILN_ABI_VERSION, NULL, &err), 0);
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	struct kiln_renderer_opts ro = { .struct_size = sizeof(ro), .fd = fd };
	assert_int_equal(json_vt->open(&host, &ro, &json_state, &err), 0);
	kiln__sb_release(&transcript);

	char id[64];
	snprintf(id, sizeof(id), "default@native");
	struct kiln_job job = { .id = id, .target = "default", .platform = "",
				.builder = r->builder, .number = 1 };
	struct kiln_solve req = { .struct_size = sizeof(req), .job = &job };
	struct kiln_event ev = { .struct_size = sizeof(ev), .job = &job };

	fake_now = T0;
	ev.kind = KILN_EVENT_JOB_STARTED;
	ev.time_ns = fake_now;
	ev.u.job_started.frontend = "dockerfile";
	ev.u.job_started.backend = "docker";
	ev.u.job_started.steps = r->steps;
	ev.u.job_started.jobs = 1;
	test_emit(NULL, &ev);

	struct docker_stream s;
	docker_stream_init(&s, &host, &req);
	fake_now = T0 + 2 * MS;
	docker_stream_context_begin(&s);
	fake_now = T0 + 9 * MS;
	docker_stream_context_progress(&s, 10240, true);

	char path[256];
	snprintf(path, sizeof(path), "tests/tty/engine/%s.stream", r->name);
	FILE *in = fopen(path, "r");
	if (!in)
		fail_msg("%s: cannot open (run from the repository's root)", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int k = 0;
	while ((n = getline(&line, &cap, in)) > 0) {
		char *sp = strchr(line, ' ');
		assert_non_null(sp);
		assert_int_equal(line[0], '+');
		fake_now = T0 + 10 * MS + strtoll(line + 1, NULL, 10) * MS;
		/* split each message somewhere inside, as a transport may */
		const char *msg = sp + 1;
		size_t len = (size_t)(line + n - msg), cut = (size_t)(k++ * 7) % (len + 1);
		docker_stream_feed(&s, msg, cut);
		docker_stream_feed(&s, msg + cut, len - cut);
	}
	free(line);
	fclose(in);
	fake_now += 2 * MS;
	docker_stream_finish(&s, NULL);

	memset(&ev.u, 0, sizeof(ev.u));
	ev.kind = KILN_EVENT_JOB_FINISHED;
	ev.time_ns = fake_now + 1 * MS;
	char *msg = NULL;
	if (s.error) {
		msg = s.error_vertex ? kiln__xasprintf("%s: %s", s.error_vertex, s.error)
				     : kiln__xstrdup(s.error);
		ev.u.job_finished.status = KILN_E_BUILD;
		ev.u.job_finished.error = msg;
	} else {
		ev.u.job_finished.image_digest = s.image_id;
		ev.u.job_finished.config_digest = s.image_id;
	}
	/* the core's metrics collector is not here: the replay recomputes
	 * them, so the file holds zeroes, as a decoder accepts */
	test_emit(NULL, &ev);
	*error = msg;
	docker_stream_release(&s);
	assert_int_equal(json_vt->close(json_state, &err), 0);
	close(fd);
}

/* Compare out_path with tests/tty/streams/NAME.jsonl, or update it. */
static void check_stream(const char *name, const char *out_path)
{
	char want[256];
	snprintf(want, sizeof(want), "tests/tty/streams/%s.jsonl", name);
	char *cmd;
	const char *up = getenv("KILN_UPDATE_STREAMS");
	if (up && *up == '1')
		cmd = kiln__xasprintf("cat '%s' > '%s'", out_path, want);
	else
		cmd = kiln__xasprintf("cmp -s '%s' '%s' || diff -u '%s' '%s' | head -40 >&2; "
				      "cmp -s '%s' '%s'", want, out_path, want, out_path, want,
				      out_path);
	int rc = system(cmd);
	free(cmd);
	if (rc != 0)
		fail_msg("%s differs from the parser's events (KILN_UPDATE_STREAMS=1 "
			 "rewrites it)", want);
}

static char *run(const struct recording *r)
{
	char tmp[] = "/tmp/kiln-docker-stream-XXXXXX";
	int fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	char *error = NULL;
	run_recording(r, tmp, &error);
	check_stream(r->name, tmp);
	unlink(tmp);
	return error;
}

static void expect(const char *what)
{
	if (!strstr(kiln__sb_str(&transcript), what))
		fail_msg("no \"%s\" in the events:\n%s", what, kiln__sb_str(&transcript));
}

static void expect_not(const char *what)
{
	if (strstr(kiln__sb_str(&transcript), what))
		fail_msg("unexpected \"%s\" in the events:\n%s", what, kiln__sb_str(&transcript));
}

static const char docker_sock[] = "unix:///var/run/docker.sock";
static const char podman_sock[] = "unix:///run/podman/podman.sock";

static void docker_pull(void **st)
{
	(void)st;
	struct recording r = { "docker-pull", docker_sock, 6, "kiln-tty/rec:1" };
	char *error = run(&r);
	assert_null(error);
	expect("V [1/6] FROM 127.0.0.1:5000/kiln-tty/base:rec started completed\n");
	/* the layer's download and extraction, with bytes, done */
	expect("S 41749da90ba1 55410688/60018521\n");
	expect("S 41749da90ba1 0/0 done\n");
	expect("S extracting 41749da90ba1 60018521/60018521\n");
	expect("S 1a2e6318b482 0/0 done\n"); /* "Already exists" */
	expect("L1 step 2 of 3\n");
	expect("V [6/6] ENTRYPOINT [\"cat\", \"/greeting.txt\"] started completed\n");
	expect("S naming to kiln-tty/rec:1 0/0 done\n");
	expect_not("Running in");
	expect_not("cached");
}

static void docker_cached(void **st)
{
	(void)st;
	struct recording r = { "docker-cached", docker_sock, 6, "kiln-tty/rec:1" };
	assert_null(run(&r));
	expect("V [2/6] COPY greeting.txt /greeting.txt started completed cached\n");
	expect("V [6/6] ENTRYPOINT [\"cat\", \"/greeting.txt\"] started completed cached\n");
	expect_not("L1 ");
}

static void docker_fail(void **st)
{
	(void)st;
	struct recording r = { "docker-fail", docker_sock, 2, "kiln-tty/fail:1" };
	char *error = run(&r);
	assert_non_null(error);
	assert_non_null(strstr(error, "[2/2] RUN for i in"));
	assert_non_null(strstr(error, "returned a non-zero code: 3"));
	free(error);
	expect("L2 configure: error: libfoo not found\n"); /* Docker's red stderr */
	expect("checking for feature 24... yes\n");
	expect(" started completed error\n");
}

static void podman_pull(void **st)
{
	(void)st;
	struct recording r = { "podman-pull", podman_sock, 6, "kiln-tty/rec:1" };
	assert_null(run(&r));
	expect("V [1/6] FROM 127.0.0.1:5000/kiln-tty/base:rec started completed\n");
	/* Podman's pull text becomes statuses of the FROM step */
	expect("S pulling 127.0.0.1:5000/kiln-tty/base:rec 0/0\n");
	expect("S sha256:41749da90ba1a320ae1a13a0745e6cb0f8f31e40b43006509a0faed686cdbfab 0/0\n");
	expect("S sha256:41749da90ba1a320ae1a13a0745e6cb0f8f31e40b43006509a0faed686cdbfab 0/0 done\n");
	expect("S pulling 127.0.0.1:5000/kiln-tty/base:rec 0/0 done\n");
	expect_not("Copying blob");
	expect_not("Getting image source signatures");
	expect_not("Writing manifest");
	expect("L1 building on x86_64\n");
	expect("V exporting to image started\n");
	expect("S naming to docker.io/kiln-tty/rec:1 0/0 done\n");
	/* Podman's bare image ID at the end is no output */
	expect_not("L1 3f43a61b233ae5077af27544322a15174acbe95a41ca88fbb55ca8ea91a47170");
}

static void podman_cached(void **st)
{
	(void)st;
	struct recording r = { "podman-cached", podman_sock, 6, "kiln-tty/rec:1" };
	assert_null(run(&r));
	expect("V [3/6] RUN echo \"building on $(uname -m)\"; for i in 1 2 3; do echo "
	       "\"step $i of 3\"; sleep 0.4; done; cat /greeting.txt started completed cached\n");
	expect("V [6/6] ENTRYPOINT [\"cat\", \"/greeting.txt\"] started completed cached\n");
}

static void podman_fail(void **st)
{
	(void)st;
	struct recording r = { "podman-fail", podman_sock, 2, "kiln-tty/fail:1" };
	char *error = run(&r);
	assert_non_null(error);
	assert_non_null(strstr(error, "exit status 3"));
	free(error);
	expect("L1 checking for feature 1... yes\n");
	expect("L1 configure: error: libfoo not found\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(docker_pull),  cmocka_unit_test(docker_cached),
		cmocka_unit_test(docker_fail),  cmocka_unit_test(podman_pull),
		cmocka_unit_test(podman_cached), cmocka_unit_test(podman_fail),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	kiln__sb_release(&transcript);
	return rc;
}
