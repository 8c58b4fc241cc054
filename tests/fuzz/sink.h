/*
 * sink.h: where the fuzz targets of daemon streams (fuzz_dockerstream.c,
 * fuzz_solvestatus.c) send the events they make: the core's real bus
 * (core/bus.c) with the json and plain renderers (plugins/renderer-*,
 * linked in with their kiln_plugin_init renamed; see the Makefile) writing
 * to /dev/null, and a sink that checks each event as a renderer relies on
 * it (strings terminated, arrays as long as they say). One job per input:
 * sink_begin(), the events, sink_end().
 */
#ifndef KILN_FUZZ_SINK_H
#define KILN_FUZZ_SINK_H

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kiln/kiln.h>

#include "bus.h"
#include "loader.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int kiln_json_plugin_init(const struct kiln_host *host, uint32_t host_abi,
			  struct kiln_plugin *plugin, struct kiln_err *err);
int kiln_plain_plugin_init(const struct kiln_host *host, uint32_t host_abi,
			   struct kiln_plugin *plugin, struct kiln_err *err);

static const struct kiln_renderer *sink_vt[2];
static size_t sink_n_vt;
static struct kiln_bus *sink_bus;
static int sink_fd = -1;
static int64_t sink_now = INT64_C(1795168800000000000);
static struct kiln_host sink_host;
static struct kiln_job sink_job = { .id = "default@native", .target = "default",
				    .platform = "", .builder = "fuzz", .number = 1 };

static int sink_register(struct kiln_plugin *p, const struct kiln_renderer *vt)
{
	(void)p;
	if (sink_n_vt < 2)
		sink_vt[sink_n_vt++] = vt;
	return 0;
}

static int64_t sink_clock(void)
{
	return sink_now += 1000;
}

static void sink_str(const char *s)
{
	if (s)
		(void)strlen(s);
}

/* What a renderer may rely on in an event a backend emits. */
static void sink_check(void *ctx, const struct kiln_event *ev)
{
	(void)ctx;
	CHECK(ev->job != NULL);
	switch (ev->kind) {
	case KILN_EVENT_VERTEX:
		sink_str(ev->u.vertex.digest);
		sink_str(ev->u.vertex.name);
		sink_str(ev->u.vertex.error);
		CHECK(ev->u.vertex.n_inputs == 0 || ev->u.vertex.inputs);
		for (size_t i = 0; i < ev->u.vertex.n_inputs; i++)
			sink_str(ev->u.vertex.inputs[i]);
		break;
	case KILN_EVENT_VERTEX_STATUS:
		sink_str(ev->u.status.id);
		sink_str(ev->u.status.vertex);
		sink_str(ev->u.status.name);
		break;
	case KILN_EVENT_VERTEX_LOG:
		sink_str(ev->u.log.vertex);
		CHECK(ev->u.log.len == 0 || ev->u.log.data);
		break;
	case KILN_EVENT_WARNING:
		sink_str(ev->u.warning.message);
		CHECK(ev->u.warning.n_detail == 0 || ev->u.warning.detail);
		for (size_t i = 0; i < ev->u.warning.n_detail; i++)
			sink_str(ev->u.warning.detail[i]);
		break;
	default:
		break;
	}
}

static void sink_emit(struct kiln_bus *bus, const struct kiln_event *ev)
{
	(void)bus;
	kiln__bus_emit(sink_bus, ev);
}

static int sink_init(void)
{
	sink_host = kiln__host;
	sink_host.register_renderer = sink_register;
	sink_host.emit = sink_emit;
	sink_host.now_ns = sink_clock;
	struct kiln_err err = { 0 };
	if (kiln_json_plugin_init(&sink_host, KILN_ABI_VERSION, NULL, &err) != 0 ||
	    kiln_plain_plugin_init(&sink_host, KILN_ABI_VERSION, NULL, &err) != 0 ||
	    sink_n_vt != 2)
		return 1;
	sink_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	return sink_fd < 0;
}

static void sink_job_event(enum kiln_event_kind kind, const char *error)
{
	struct kiln_event ev = { .struct_size = sizeof(ev), .kind = kind,
				 .time_ns = sink_clock(), .job = &sink_job };
	if (kind == KILN_EVENT_JOB_STARTED) {
		ev.u.job_started.frontend = "dockerfile";
		ev.u.job_started.backend = "fuzz";
		ev.u.job_started.steps = 3;
		ev.u.job_started.jobs = 1;
	} else {
		ev.u.job_finished.status = error ? KILN_E_BUILD : 0;
		ev.u.job_finished.error = error;
	}
	kiln__bus_emit(sink_bus, &ev);
}

/* A new bus with both renderers (plain verbose: every log line), and the
 * job's start. */
static void sink_begin(void)
{
	struct kiln_err err = { 0 };
	sink_bus = kiln__bus_new();
	kiln__bus_add_sink(sink_bus, sink_check, NULL);
	for (size_t i = 0; i < sink_n_vt; i++) {
		struct kiln_renderer_opts ro = { .struct_size = sizeof(ro), .fd = sink_fd,
						 .verbose = i == 1, .start_ns = sink_now };
		CHECK(kiln__bus_add_renderer(sink_bus, sink_vt[i], &ro, &err) == 0);
	}
	sink_job_event(KILN_EVENT_JOB_STARTED, NULL);
}

/* The job's end (failed with error, when not NULL); close and free. */
static void sink_end(const char *error)
{
	struct kiln_err err = { 0 };
	sink_job_event(KILN_EVENT_JOB_FINISHED, error);
	kiln__bus_close(sink_bus, &err);
	kiln__bus_free(sink_bus);
	sink_bus = NULL;
}

#endif
