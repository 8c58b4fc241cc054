/* Build records (core/logstore.c, docs/history.md) through the real event
 * bus: record.json holds the job's status, per-vertex times, cache hits
 * and misses over build steps, context bytes and image size; the run's
 * lock says "under way" until the store is freed; retention removes runs
 * past the age and size limits but never one under way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "bus.h"
#include "logstore.h"
#include "util.h"

#define S INT64_C(1000000000)
#define T0 (INT64_C(1795168800) * S)

static char state[64];

static int setup(void **st)
{
	(void)st;
	snprintf(state, sizeof(state), "/tmp/kiln-history-XXXXXX");
	assert_non_null(mkdtemp(state));
	setenv("KILN_STATE_DIR", state, 1);
	unsetenv("KILN_HISTORY_MAX_AGE");
	unsetenv("KILN_HISTORY_MAX_SIZE");
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	char *cmd = kiln__xasprintf("rm -rf '%s'", state);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static const struct kiln_job job = {
	.id = "app@linux/arm64", .target = "app", .platform = "linux/arm64",
	.builder = "b", .number = 2,
};

static void emit(struct kiln_bus *bus, enum kiln_event_kind kind, int64_t t,
		 struct kiln_event *ev)
{
	ev->struct_size = sizeof(*ev);
	ev->kind = kind;
	ev->time_ns = t;
	ev->job = &job;
	kiln__bus_emit(bus, ev);
}

static void vertex(struct kiln_bus *bus, const char *digest, const char *name, int64_t start,
		   int64_t end, bool cached, const char *error)
{
	struct kiln_event ev = { 0 };
	ev.u.vertex = (struct kiln_event_vertex){
		.digest = digest, .name = name, .started_ns = start, .completed_ns = end,
		.cached = cached, .error = error,
	};
	emit(bus, KILN_EVENT_VERTEX, end ? end : start, &ev);
}

static void status(struct kiln_bus *bus, const char *vtx, const char *id, int64_t current)
{
	struct kiln_event ev = { 0 };
	ev.u.status = (struct kiln_event_vertex_status){ .id = id, .vertex = vtx,
							 .current = current };
	emit(bus, KILN_EVENT_VERTEX_STATUS, T0, &ev);
}

static json_t *load_record(const char *run_dir)
{
	char *path = kiln__xasprintf("%s/app@linux_arm64/record.json", run_dir);
	json_t *j = json_load_file(path, 0, NULL);
	free(path);
	assert_non_null(j);
	return j;
}

static void record_of_a_job(void **st)
{
	(void)st;
	struct kiln_bus *bus = kiln__bus_new();
	struct kiln_logstore *ls = kiln__logstore_open("ctx", 10);
	kiln__logstore_set_info(ls, "ctx", "/src/ctx", "Dockerfile");
	char *run_dir = kiln__xstrdup(kiln__logstore_dir(ls));
	const char *run = strrchr(run_dir, '/') + 1;
	kiln__bus_set_logstore(bus, ls);
	struct kiln_event ev = { 0 };
	ev.u.job_started.frontend = "dockerfile";
	emit(bus, KILN_EVENT_JOB_STARTED, T0, &ev);

	long pid = 0;
	assert_true(kiln__logstore_run_active(run_dir, &pid));
	assert_int_equal(pid, (long)getpid());
	json_t *r = load_record(run_dir);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "running");
	json_decref(r);

	/* out of order on purpose: the record sorts by start */
	vertex(bus, "sha256:cc", "[3/3] RUN make", T0 + 3 * S, T0 + 5 * S, false, NULL);
	vertex(bus, "sha256:aa", "[internal] load build definition from Dockerfile", T0 + S,
	       T0 + S + 10, false, NULL);
	vertex(bus, "sha256:b0", "[1/3] FROM busybox", T0 + 2 * S, T0 + 2 * S, false, NULL);
	vertex(bus, "sha256:bb", "[2/3] COPY . /src", T0 + 2 * S + 1, T0 + 2 * S + 2, true, NULL);
	vertex(bus, "sha256:dd", "exporting to image", T0 + 6 * S, T0 + 7 * S, false, NULL);
	status(bus, "sha256:aa", "transferring dockerfile:", 100);
	status(bus, "sha256:aa", "transferring dockerfile:", 300);
	status(bus, "sha256:ee", "transferring context:", 50);
	status(bus, "sha256:dd", "exporting layers", 9999);
	memset(&ev, 0, sizeof(ev));
	ev.u.log = (struct kiln_event_vertex_log){ .vertex = "sha256:cc", .stream = 1,
						   .data = (const uint8_t *)"built\n", .len = 6 };
	emit(bus, KILN_EVENT_VERTEX_LOG, T0 + 4 * S, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.u.job_finished.image_digest = "sha256:1234";
	ev.u.job_finished.image_size = 4242;
	ev.u.job_finished.image_layers = 3;
	emit(bus, KILN_EVENT_JOB_FINISHED, T0 + 8 * S, &ev);

	r = load_record(run_dir);
	char *id = kiln__record_id(run, job.id);
	assert_int_equal(strlen(id), KILN_RECORD_ID_LEN);
	assert_string_equal(json_string_value(json_object_get(r, "id")), id);
	assert_string_equal(json_string_value(json_object_get(r, "status")), "completed");
	assert_string_equal(json_string_value(json_object_get(r, "name")), "app");
	assert_string_equal(json_string_value(json_object_get(r, "context")), "/src/ctx");
	assert_int_equal(json_integer_value(json_object_get(r, "duration_ns")), 8 * S);
	assert_int_equal(json_integer_value(json_object_get(r, "exit_code")), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "context_bytes")), 350);
	assert_int_equal(json_integer_value(json_object_get(r, "image_size")), 4242);
	assert_int_equal(json_integer_value(json_object_get(r, "image_layers")), 3);
	json_t *cache = json_object_get(r, "cache");
	/* steps: COPY (hit) and RUN (miss); not [internal], FROM, exporting */
	assert_int_equal(json_integer_value(json_object_get(cache, "steps")), 2);
	assert_int_equal(json_integer_value(json_object_get(cache, "hits")), 1);
	assert_int_equal(json_integer_value(json_object_get(cache, "misses")), 1);
	json_t *vs = json_object_get(r, "vertices");
	assert_int_equal(json_array_size(vs), 5);
	const char *order[] = { "sha256:aa", "sha256:b0", "sha256:bb", "sha256:cc", "sha256:dd" };
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(vs, i),
									 "digest")), order[i]);
	json_t *run_v = json_array_get(vs, 3);
	assert_int_equal(json_integer_value(json_object_get(run_v, "n")), 4);
	assert_int_equal(json_integer_value(json_object_get(run_v, "duration_ns")), 2 * S);
	assert_string_equal(json_string_value(json_object_get(run_v, "log")), "cc.log");
	assert_int_equal(json_integer_value(json_object_get(run_v, "log_bytes")), 6);
	json_decref(r);
	free(id);

	kiln__bus_close(bus, NULL);
	kiln__bus_free(bus);
	assert_false(kiln__logstore_run_active(run_dir, NULL));
	free(run_dir);
}

static void failed_and_cancelled(void **st)
{
	(void)st;
	int codes[] = { KILN_E_BUILD, KILN_E_CANCELLED };
	const char *words[] = { "error", "canceled" };
	int exits[] = { 1, 130 };
	for (int k = 0; k < 2; k++) {
		struct kiln_bus *bus = kiln__bus_new();
		struct kiln_logstore *ls = kiln__logstore_open("ctx", 10);
		char *run_dir = kiln__xstrdup(kiln__logstore_dir(ls));
		kiln__bus_set_logstore(bus, ls);
		struct kiln_event ev = { 0 };
		emit(bus, KILN_EVENT_JOB_STARTED, T0, &ev);
		vertex(bus, "sha256:cc", "[2/2] RUN exit 3", T0 + 1, T0 + 2, false,
		       "process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3");
		memset(&ev, 0, sizeof(ev));
		ev.u.job_finished.status = codes[k];
		ev.u.job_finished.error = "failed to solve: exit code: 3";
		emit(bus, KILN_EVENT_JOB_FINISHED, T0 + S, &ev);
		json_t *r = load_record(run_dir);
		assert_string_equal(json_string_value(json_object_get(r, "status")), words[k]);
		assert_int_equal(json_integer_value(json_object_get(r, "exit_code")), exits[k]);
		assert_int_equal(json_integer_value(json_object_get(r, "step_exit_code")), 3);
		assert_string_equal(json_string_value(json_object_get(r, "failed_step")),
				    "[2/2] RUN exit 3");
		json_decref(r);
		kiln__bus_free(bus);
		free(run_dir);
	}
}

static void steps(void **st)
{
	(void)st;
	assert_true(kiln__vertex_is_step("[build 2/5] RUN make"));
	assert_true(kiln__vertex_is_step("[2/3] COPY . /src"));
	assert_true(kiln__vertex_is_step("mkfile /x"));
	assert_false(kiln__vertex_is_step("[internal] load build context"));
	assert_false(kiln__vertex_is_step("[stage-1 1/4] FROM docker.io/library/alpine"));
	assert_false(kiln__vertex_is_step("docker-image://docker.io/library/busybox:latest"));
	assert_false(kiln__vertex_is_step("exporting to image"));
	assert_false(kiln__vertex_is_step("resolve image config for docker.io/x"));
	assert_false(kiln__vertex_is_step(NULL));
}

static void ids_are_stable(void **st)
{
	(void)st;
	char *a = kiln__record_id("20261121T005337Z-1234", "default@native");
	char *b = kiln__record_id("20261121T005337Z-1234", "default@native");
	char *c = kiln__record_id("20261121T005337Z-1235", "default@native");
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	for (const char *p = a; *p; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'));
	free(a), free(b), free(c);
}

static void mkrun(const char *name)
{
	char *cmd = kiln__xasprintf("mkdir -p '%s/logs/%s/j' && head -c 4096 /dev/zero > "
				    "'%s/logs/%s/j/x.log'", state, name, state, name);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static bool exists(const char *name)
{
	char *path = kiln__xasprintf("%s/logs/%s", state, name);
	struct stat sb;
	bool e = stat(path, &sb) == 0;
	free(path);
	return e;
}

static void retention(void **st)
{
	(void)st;
	struct kiln_logstore_limits l;
	kiln__logstore_limits(&l);
	assert_int_equal(l.max_age_s, KILN_HISTORY_MAX_AGE_S);
	assert_true(l.max_bytes == KILN_HISTORY_MAX_BYTES);
	setenv("KILN_HISTORY_MAX_AGE", "48h", 1);
	setenv("KILN_HISTORY_MAX_SIZE", "512m", 1);
	kiln__logstore_limits(&l);
	assert_int_equal(l.max_age_s, 48 * 3600);
	assert_true(l.max_bytes == (uint64_t)512 << 20);
	setenv("KILN_HISTORY_MAX_AGE", "soon", 1); /* warned, default kept */
	kiln__logstore_limits(&l);
	assert_int_equal(l.max_age_s, KILN_HISTORY_MAX_AGE_S);

	/* by age */
	setenv("KILN_HISTORY_MAX_AGE", "30d", 1);
	unsetenv("KILN_HISTORY_MAX_SIZE");
	mkrun("20000101T000000Z-1");
	struct kiln_logstore *keep = kiln__logstore_open("ctx", 100);
	assert_false(exists("20000101T000000Z-1"));
	/* by size: everything but the runs under way (keep, and the new one) */
	mkrun("20010101T000000Z-2");
	mkrun("20010101T000000Z-3");
	unsetenv("KILN_HISTORY_MAX_AGE");
	setenv("KILN_HISTORY_MAX_SIZE", "1", 1);
	struct kiln_logstore *ls = kiln__logstore_open("ctx", 100);
	assert_false(exists("20010101T000000Z-2"));
	assert_false(exists("20010101T000000Z-3"));
	assert_true(exists(strrchr(kiln__logstore_dir(keep), '/') + 1));
	kiln__logstore_free(ls);
	kiln__logstore_free(keep);
	unsetenv("KILN_HISTORY_MAX_SIZE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_of_a_job),
		cmocka_unit_test(failed_and_cancelled),
		cmocka_unit_test(steps),
		cmocka_unit_test(ids_are_stable),
		cmocka_unit_test(retention),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
