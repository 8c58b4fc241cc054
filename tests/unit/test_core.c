/* Unit tests of the core's building blocks: string buffer, arena, error
 * reports, the event bus with its metrics collector, and connecting
 * (buildctl's TLS flags, backends with and without connect_opts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "arena.h"
#include "bus.h"
#include "cli.h"
#include "util.h"

static void sb_appends_and_formats(void **st)
{
	(void)st;
	struct kiln_sb sb = KILN_SB_INIT;
	assert_string_equal(kiln__sb_str(&sb), "");
	kiln__sb_adds(&sb, "#");
	kiln__sb_addf(&sb, "%d %s", 12, "DONE");
	for (int i = 0; i < 1000; i++)
		kiln__sb_add(&sb, "x", 1);
	assert_int_equal(sb.len, 1008);
	assert_memory_equal(sb.buf, "#12 DONE", 8);
	char *s = kiln__sb_detach(&sb);
	assert_null(sb.buf);
	assert_int_equal(strlen(s), 1008);
	free(s);
}

static void arena_zeroes_and_aligns(void **st)
{
	(void)st;
	struct kiln_arena *a = kiln__arena_new();
	for (int i = 1; i < 5000; i += 37) {
		unsigned char *p = kiln__arena_alloc(a, (size_t)i);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		for (int k = 0; k < i; k++)
			assert_int_equal(p[k], 0);
		memset(p, 0xab, (size_t)i);
	}
	char *big = kiln__arena_alloc(a, 1 << 20); /* larger than a chunk */
	big[(1 << 20) - 1] = 1;
	assert_string_equal(kiln__arena_strdup(a, "vertex"), "vertex");
	assert_null(kiln__arena_strdup(a, NULL));
	kiln__arena_free(a);
	kiln__arena_free(NULL);
}

static void err_is_one_line_and_truncated(void **st)
{
	(void)st;
	struct kiln_err e = { 0 };
	assert_int_equal(kiln__err_at(&e, KILN_E_SYNTAX, "Dockerfile", 3, 7, "bad\nflag %s", "--x"),
			 KILN_E_SYNTAX);
	assert_string_equal(e.msg, "bad flag --x");
	assert_string_equal(e.file, "Dockerfile");
	assert_int_equal(e.line, 3);
	char huge[4000];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	kiln__err(&e, KILN_E_IO, "%s", huge);
	assert_int_equal(strlen(e.msg), KILN_ERR_MSG_MAX - 1);
	assert_string_equal(e.file, "");
	assert_string_equal(kiln__strerror(KILN_E_ABI), "plugin ABI mismatch");
	assert_string_equal(kiln__strerror(-999), "unknown error");
}

struct seen {
	int n;
	struct kiln_event last_finished;
};

static void sink(void *ctx, const struct kiln_event *ev)
{
	struct seen *s = ctx;
	s->n++;
	if (ev->kind == KILN_EVENT_JOB_FINISHED)
		s->last_finished = *ev;
}

static void emit_vertex(struct kiln_bus *bus, const struct kiln_job *job, const char *dg,
			int64_t started, int64_t completed, bool cached, const char *error)
{
	struct kiln_event ev = { .struct_size = sizeof(ev), .kind = KILN_EVENT_VERTEX,
				 .time_ns = completed ? completed : started, .job = job };
	ev.u.vertex = (struct kiln_event_vertex){ .digest = dg, .name = dg,
						  .started_ns = started, .completed_ns = completed,
						  .cached = cached, .error = error };
	kiln__bus_emit(bus, &ev);
}

static void bus_counts_vertices_once_by_digest(void **st)
{
	(void)st;
	struct kiln_bus *bus = kiln__bus_new();
	struct seen s = { 0 };
	kiln__bus_add_sink(bus, sink, &s);
	struct kiln_job a = { .id = "a", .target = "a", .platform = "", .builder = "x", .number = 1 };
	struct kiln_job b = { .id = "b", .target = "b", .platform = "", .builder = "x", .number = 2 };
	struct kiln_event ev = { .struct_size = sizeof(ev), .kind = KILN_EVENT_JOB_STARTED,
				 .time_ns = 1000000000, .job = &a };
	kiln__bus_emit(bus, &ev);
	emit_vertex(bus, &a, "sha256:1", 1, 0, false, NULL);
	emit_vertex(bus, &a, "sha256:1", 1, 5, false, NULL);   /* same vertex completes */
	emit_vertex(bus, &a, "sha256:2", 2, 3, true, NULL);    /* cached */
	emit_vertex(bus, &a, "sha256:3", 2, 9, false, "exit code: 3");
	emit_vertex(bus, &b, "sha256:1", 1, 0, false, NULL);   /* other job's vertex */
	struct kiln_event log = { .struct_size = sizeof(log), .kind = KILN_EVENT_VERTEX_LOG,
				  .time_ns = 4, .job = &a };
	log.u.log = (struct kiln_event_vertex_log){ .vertex = "sha256:3", .stream = 1,
						    .data = (const uint8_t *)"hello\n", .len = 6 };
	kiln__bus_emit(bus, &log);
	ev.kind = KILN_EVENT_JOB_FINISHED;
	ev.time_ns = 3500000000;
	ev.u.job_finished.status = KILN_E_BUILD;
	kiln__bus_emit(bus, &ev);

	assert_int_equal(s.n, 8);
	const struct kiln_job_metrics *m = &s.last_finished.u.job_finished.metrics;
	assert_int_equal(m->vertices, 3);
	assert_int_equal(m->completed, 3);
	assert_int_equal(m->cached, 1);
	assert_int_equal(m->failed, 1);
	assert_int_equal(m->log_bytes, 6);
	assert_true(m->duration_ns == 2500000000);
	struct kiln_job_metrics mb = kiln__bus_metrics(bus, "b");
	assert_int_equal(mb.vertices, 1);
	assert_int_equal(mb.completed, 0);
	kiln__bus_free(bus);
}

/* ---- connecting ------------------------------------------------------------ */

static void tls_flags_resolve_as_buildctl(void **st)
{
	(void)st;
	struct kiln_connect_opts o;
	struct kiln_err e = { 0 };
	struct kiln_tls_cli t = { 0 };

	/* none: plain, any address */
	assert_int_equal(kiln__tls_cli_resolve(&t, "docker-unix:///d.sock", &o, &e), 0);
	assert_int_equal(o.struct_size, sizeof(o));
	assert_string_equal(o.addr, "docker-unix:///d.sock");
	assert_null(o.tls_ca_cert);
	assert_null(o.tls_server_name);

	/* --tlsdir DIR: DIR/ca.pem, DIR/cert.pem, DIR/key.pem */
	assert_true(kiln__tls_cli_take(&t, KILN_OPT_TLSDIR, "/certs/"));
	assert_true(kiln__tls_cli_take(&t, KILN_OPT_TLSSERVERNAME, "buildkitd"));
	assert_false(kiln__tls_cli_take(&t, 'v', NULL));
	assert_int_equal(kiln__tls_cli_resolve(&t, "tcp://10.0.0.1:1234", &o, &e), 0);
	assert_string_equal(o.tls_ca_cert, "/certs/ca.pem");
	assert_string_equal(o.tls_cert, "/certs/cert.pem");
	assert_string_equal(o.tls_key, "/certs/key.pem");
	assert_string_equal(o.tls_server_name, "buildkitd");

	/* ...but not with the file flags */
	t.ca_cert = "ca.pem";
	assert_int_equal(kiln__tls_cli_resolve(&t, "tcp://h:1", &o, &e), KILN_E_INVALID);
	assert_non_null(strstr(e.msg, "--tlsdir"));
	kiln__tls_cli_release(&t);

	/* a certificate and its key go together; "" is not given */
	t = (struct kiln_tls_cli){ .cert = "c.pem", .key = "" };
	assert_int_equal(kiln__tls_cli_resolve(&t, "tcp://h:1", &o, &e), KILN_E_INVALID);
	assert_non_null(strstr(e.msg, "--tlscert needs --tlskey"));
	t = (struct kiln_tls_cli){ .key = "k.pem" };
	assert_int_equal(kiln__tls_cli_resolve(&t, "tcp://h:1", &o, &e), KILN_E_INVALID);
	assert_non_null(strstr(e.msg, "--tlskey needs --tlscert"));

	/* TLS is for tcp:// only; the message names the address */
	t = (struct kiln_tls_cli){ .ca_cert = "ca.pem" };
	assert_int_equal(kiln__tls_cli_resolve(&t, "unix:///run/b.sock", &o, &e), KILN_E_INVALID);
	assert_non_null(strstr(e.msg, "--tlscacert"));
	assert_non_null(strstr(e.msg, "unix:///run/b.sock"));
	t = (struct kiln_tls_cli){ .server_name = "x" };
	assert_int_equal(kiln__tls_cli_resolve(&t, "docker://", &o, &e), KILN_E_INVALID);
	assert_non_null(strstr(e.msg, "--tlsservername"));
}

static int plain_calls, opts_calls;

static int plain_connect(const struct kiln_host *host, const char *addr, void **conn,
			 struct kiln_err *err)
{
	(void)host, (void)err;
	assert_string_equal(addr, "tcp://h:1");
	*conn = &plain_calls;
	plain_calls++;
	return 0;
}

static int opts_connect(const struct kiln_host *host, const struct kiln_connect_opts *o,
			void **conn, struct kiln_err *err)
{
	(void)host, (void)err;
	assert_string_equal(o->tls_ca_cert, "ca.pem");
	*conn = &opts_calls;
	opts_calls++;
	return 0;
}

static void backend_connect_uses_connect_opts_when_there(void **st)
{
	(void)st;
	struct kiln_backend be = {
		.abi_version = KILN_ABI_VERSION, .struct_size = sizeof(be), .name = "fake",
		.connect = plain_connect, .connect_opts = opts_connect,
	};
	struct kiln_connect_opts plain = { .struct_size = sizeof(plain), .addr = "tcp://h:1" };
	struct kiln_connect_opts tls = plain;
	tls.tls_ca_cert = "ca.pem";
	struct kiln_err e = { 0 };
	void *conn = NULL;

	assert_int_equal(kiln__backend_connect(&be, &tls, &conn, &e), 0);
	assert_ptr_equal(conn, &opts_calls);
	assert_int_equal(opts_calls, 1);

	/* no connect_opts, or a vtable from before it: connect(), no TLS */
	be.connect_opts = NULL;
	assert_int_equal(kiln__backend_connect(&be, &plain, &conn, &e), 0);
	assert_ptr_equal(conn, &plain_calls);
	assert_int_equal(kiln__backend_connect(&be, &tls, &conn, &e), KILN_E_UNSUPPORTED);
	assert_string_equal(e.msg, "the fake backend does not support --tlscacert (TLS to tcp://h:1)");
	be.connect_opts = opts_connect;
	be.struct_size = offsetof(struct kiln_backend, connect_opts);
	assert_int_equal(kiln__backend_connect(&be, &tls, &conn, &e), KILN_E_UNSUPPORTED);
	assert_int_equal(kiln__backend_connect(&be, &plain, &conn, &e), 0);
	assert_int_equal(plain_calls, 2);
	assert_int_equal(opts_calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sb_appends_and_formats),
		cmocka_unit_test(arena_zeroes_and_aligns),
		cmocka_unit_test(err_is_one_line_and_truncated),
		cmocka_unit_test(bus_counts_vertices_once_by_digest),
		cmocka_unit_test(tls_flags_resolve_as_buildctl),
		cmocka_unit_test(backend_connect_uses_connect_opts_when_there),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
