/* Build records under the state directory (core/logstore.c), through the
 * real event bus: every byte of every vertex's log lands in its file,
 * job.started carries the log directory and the last successful build's
 * duration, old runs are removed, and an unwritable state directory
 * costs the build nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "logstore.h"
#include "util.h"

#define S INT64_C(1000000000)

static char state[64];

/* What job.started looked like to a renderer. */
static char seen_log_dir[512];
static int64_t seen_previous;

static void sink(void *ctx, const struct kiln_event *ev)
{
	(void)ctx;
	if (ev->kind != KILN_EVENT_JOB_STARTED)
		return;
	snprintf(seen_log_dir, sizeof(seen_log_dir), "%s",
		 ev->u.job_started.log_dir ? ev->u.job_started.log_dir : "");
	seen_previous = ev->u.job_started.previous_duration_ns;
}

static int setup(void **st)
{
	(void)st;
	snprintf(state, sizeof(state), "/tmp/kiln-logstore-XXXXXX");
	assert_non_null(mkdtemp(state));
	setenv("KILN_STATE_DIR", state, 1);
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
	.builder = "b", .number = 1,
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

/* One build: a vertex writing `chunks` chunks of output; status 0 or not. */
static void build(const char *key, int64_t t0, int64_t dur, int chunks, int status)
{
	struct kiln_bus *bus = kiln__bus_new();
	kiln__bus_add_sink(bus, sink, NULL);
	kiln__bus_set_logstore(bus, kiln__logstore_open(key, 3));
	struct kiln_event ev = { 0 };
	emit(bus, KILN_EVENT_JOB_STARTED, t0, &ev);
	memset(&ev, 0, sizeof(ev));
	ev.u.vertex.digest = "sha256:00ff";
	ev.u.vertex.name = "[2/2] RUN\tmake";
	ev.u.vertex.started_ns = t0 + 1;
	emit(bus, KILN_EVENT_VERTEX, t0 + 1, &ev);
	char line[64];
	for (int i = 0; i < chunks; i++) {
		memset(&ev, 0, sizeof(ev));
		int n = snprintf(line, sizeof(line), "line %d\n%s", i, i % 3 ? "" : "part");
		ev.u.log.vertex = "sha256:00ff";
		ev.u.log.stream = 1;
		ev.u.log.data = (const uint8_t *)line;
		ev.u.log.len = (size_t)n;
		emit(bus, KILN_EVENT_VERTEX_LOG, t0 + 2, &ev);
	}
	memset(&ev, 0, sizeof(ev));
	ev.u.job_finished.status = status;
	emit(bus, KILN_EVENT_JOB_FINISHED, t0 + dur, &ev);
	kiln__bus_close(bus, NULL);
	kiln__bus_free(bus);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct kiln_sb sb = KILN_SB_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		kiln__sb_add(&sb, buf, n);
	fclose(f);
	*len = sb.len;
	return kiln__sb_detach(&sb);
}

static void keeps_every_byte(void **st)
{
	(void)st;
	build("ctx", 100 * S, 3 * S, 20000, 0);
	/* the job's directory is under STATE/logs and named after the job */
	assert_non_null(strstr(seen_log_dir, state));
	assert_non_null(strstr(seen_log_dir, "/logs/"));
	assert_non_null(strstr(seen_log_dir, "/app@linux_arm64"));
	assert_int_equal(seen_previous, 0); /* no build before */

	char *path = kiln__xasprintf("%s/00ff.log", seen_log_dir);
	size_t len = 0;
	char *data = slurp(path, &len);
	assert_non_null(data);
	struct kiln_sb want = KILN_SB_INIT;
	for (int i = 0; i < 20000; i++)
		kiln__sb_addf(&want, "line %d\n%s", i, i % 3 ? "" : "part");
	assert_int_equal(len, want.len);
	assert_memory_equal(data, want.buf, len);
	free(data);
	free(path);
	kiln__sb_release(&want);

	path = kiln__xasprintf("%s/index", seen_log_dir);
	data = slurp(path, &len);
	assert_non_null(data);
	assert_string_equal(data, "00ff\t[2/2] RUN make\n");
	free(data);
	free(path);
}

static void previous_duration_for_the_eta(void **st)
{
	(void)st;
	build("ctx", 200 * S, 7 * S, 1, 0);
	build("ctx", 300 * S, 9 * S, 1, KILN_E_BUILD); /* failed: not recorded */
	build("ctx", 400 * S, 1 * S, 1, 0);
	assert_int_equal(seen_previous, 7 * S); /* the last successful one */
	build("other", 500 * S, 1 * S, 1, 0);
	assert_int_equal(seen_previous, 0); /* another context */
}

static void keeps_the_last_runs(void **st)
{
	(void)st;
	for (int i = 0; i < 5; i++) {
		build("ctx", (600 + i) * S, S, 1, 0);
	}
	char *cmd = kiln__xasprintf("test $(ls '%s/logs' | wc -l) -eq 3", state);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void unwritable_state_dir(void **st)
{
	(void)st;
	setenv("KILN_STATE_DIR", "/proc/self/kiln-nowhere", 1);
	build("ctx", 700 * S, S, 10, 0); /* warns once, builds on */
	assert_string_equal(seen_log_dir, "");
	setenv("KILN_STATE_DIR", state, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(keeps_every_byte),
		cmocka_unit_test(previous_duration_for_the_eta),
		cmocka_unit_test(keeps_the_last_runs),
		cmocka_unit_test(unwritable_state_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
