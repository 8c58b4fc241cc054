/* Unit tests of the buildkit backend's pieces that need no daemon: the
 * Control protos' wire format (field numbers from BUILDKIT-WIRE.md section
 * 2, as BuildKit encodes them), the method paths, and address parsing
 * (plugins/backend-buildkit/addr.c, compiled in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../plugins/backend-buildkit/addr.c"
#include "control.pb-c.h"
#include "ops.pb-c.h"
#include "worker.pb-c.h"

/* ---- a host with just error() ------------------------------------------ */

static int fake_error(struct kiln_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

static const struct kiln_host host = { .error = fake_error };

/* ---- method paths -------------------------------------------------------- */

static void method_paths_match_the_service(void **st)
{
	(void)st;
	const ProtobufCServiceDescriptor *d = &moby__buildkit__v1__control__descriptor;
	assert_string_equal(d->name, "moby.buildkit.v1.Control");
	const char *paths[] = { BUILDKIT_M_INFO, BUILDKIT_M_LIST_WORKERS,
				BUILDKIT_M_DISK_USAGE, BUILDKIT_M_PRUNE };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const char *m = strrchr(paths[i], '/') + 1;
		char want[128];
		snprintf(want, sizeof(want), "/%s/%s", d->name, m);
		assert_string_equal(paths[i], want);
		assert_non_null(protobuf_c_service_descriptor_get_method_by_name(d, m));
	}
}

/* ---- requests: the bytes BuildKit expects ---------------------------------- */

static void prune_request_wire(void **st)
{
	(void)st;
	char *filters[] = { "type==regular" };
	Moby__Buildkit__V1__PruneRequest req = MOBY__BUILDKIT__V1__PRUNE_REQUEST__INIT;
	req.n_filter = 1;
	req.filter = filters;
	req.all = 1;
	req.keepduration = 3600LL * 1000000000LL; /* 1h in ns */
	req.keepbytes = 1024;
	static const uint8_t want[] = {
		0x0a, 13, 't', 'y', 'p', 'e', '=', '=', 'r', 'e', 'g', 'u', 'l', 'a', 'r',
		0x10, 0x01,                                     /* 2 all */
		0x18, 0x80, 0xc0, 0xe2, 0x85, 0xe3, 0x68,       /* 3 keepDuration */
		0x20, 0x80, 0x08,                               /* 4 keepBytes */
	};
	uint8_t buf[64];
	assert_int_equal(protobuf_c_message_get_packed_size(&req.base), sizeof(want));
	size_t n = protobuf_c_message_pack(&req.base, buf);
	assert_memory_equal(buf, want, n);
}

static void empty_requests_are_empty(void **st)
{
	(void)st;
	Moby__Buildkit__V1__InfoRequest info = MOBY__BUILDKIT__V1__INFO_REQUEST__INIT;
	Moby__Buildkit__V1__ListWorkersRequest lw = MOBY__BUILDKIT__V1__LIST_WORKERS_REQUEST__INIT;
	Moby__Buildkit__V1__DiskUsageRequest du = MOBY__BUILDKIT__V1__DISK_USAGE_REQUEST__INIT;
	assert_int_equal(protobuf_c_message_get_packed_size(&info.base), 0);
	assert_int_equal(protobuf_c_message_get_packed_size(&lw.base), 0);
	assert_int_equal(protobuf_c_message_get_packed_size(&du.base), 0);
}

/* ---- answers: decode what the daemon sends -------------------------------------- */

static void list_workers_response_decodes(void **st)
{
	(void)st;
	/* record { ID "w1"; Labels {"k": "v"}; platforms {arm64 linux v8};
	 * GCPolicy {all keepBytes 1024}; BuildkitVersion {version "v0.11.6"} } */
	static const uint8_t wire[] = {
		0x0a, 50,
		0x0a, 2, 'w', '1',
		0x12, 6, 0x0a, 1, 'k', 0x12, 1, 'v',
		0x1a, 18, 0x0a, 5, 'a', 'r', 'm', '6', '4', 0x12, 5, 'l', 'i', 'n', 'u', 'x',
		0x1a, 2, 'v', '8',
		0x22, 5, 0x08, 0x01, 0x18, 0x80, 0x08,
		0x2a, 9, 0x12, 7, 'v', '0', '.', '1', '1', '.', '6',
	};
	Moby__Buildkit__V1__ListWorkersResponse *r =
		moby__buildkit__v1__list_workers_response__unpack(NULL, sizeof(wire), wire);
	assert_non_null(r);
	assert_int_equal(r->n_record, 1);
	Moby__Buildkit__V1__Types__WorkerRecord *w = r->record[0];
	assert_string_equal(w->id, "w1");
	assert_int_equal(w->n_labels, 1);
	assert_string_equal(w->labels[0]->key, "k");
	assert_string_equal(w->labels[0]->value, "v");
	assert_int_equal(w->n_platforms, 1);
	assert_string_equal(w->platforms[0]->architecture, "arm64");
	assert_string_equal(w->platforms[0]->os, "linux");
	assert_string_equal(w->platforms[0]->variant, "v8");
	assert_int_equal(w->n_gcpolicy, 1);
	assert_true(w->gcpolicy[0]->all);
	assert_int_equal(w->gcpolicy[0]->keepbytes, 1024);
	assert_non_null(w->buildkitversion);
	assert_string_equal(w->buildkitversion->version, "v0.11.6");
	moby__buildkit__v1__list_workers_response__free_unpacked(r, NULL);
}

static void usage_record_decodes(void **st)
{
	(void)st;
	static const uint8_t wire[] = {
		0x0a, 2, 'r', '1',                      /* 1 ID */
		0x10, 0x01,                             /* 2 Mutable */
		0x18, 0x01,                             /* 3 InUse */
		0x20, 0x80, 0x08,                       /* 4 Size 1024 */
		0x2a, 2, 'p', '0',                      /* 5 Parent (v0.8) */
		0x32, 11, 0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06, /* 6 CreatedAt 1700000000 s */
		0x10, 0x95, 0x9a, 0xef, 0x3a,           /*   + 123456789 ns */
		0x40, 0x03,                             /* 8 UsageCount */
		0x4a, 1, 'd',                           /* 9 Description */
		0x52, 7, 'r', 'e', 'g', 'u', 'l', 'a', 'r', /* 10 RecordType */
		0x58, 0x01,                             /* 11 Shared */
		0x62, 2, 'p', '1',                      /* 12 Parents (v0.11) */
		0x62, 2, 'p', '2',
	};
	Moby__Buildkit__V1__UsageRecord *r =
		moby__buildkit__v1__usage_record__unpack(NULL, sizeof(wire), wire);
	assert_non_null(r);
	assert_string_equal(r->id, "r1");
	assert_true(r->mutable_ && r->inuse && r->shared);
	assert_int_equal(r->size, 1024);
	assert_string_equal(r->parent, "p0");
	assert_non_null(r->createdat);
	assert_int_equal(r->createdat->seconds, 1700000000);
	assert_int_equal(r->createdat->nanos, 123456789);
	assert_null(r->lastusedat); /* absent: never used */
	assert_int_equal(r->usagecount, 3);
	assert_string_equal(r->description, "d");
	assert_string_equal(r->recordtype, "regular");
	assert_int_equal(r->n_parents, 2);
	assert_string_equal(r->parents[1], "p2");
	moby__buildkit__v1__usage_record__free_unpacked(r, NULL);
}

/* ---- addresses ------------------------------------------------------------------- */

static void addresses_parse(void **st)
{
	(void)st;
	struct buildkit_addr a;
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_addr_parse(&host, "unix:///run/x.sock", &a, &err), 0);
	assert_int_equal(a.transport, BUILDKIT_UNIX);
	assert_string_equal(a.path, "/run/x.sock");
	assert_int_equal(buildkit_addr_parse(&host, "unix://", &a, &err), 0);
	assert_string_equal(a.path, "/run/buildkit/buildkitd.sock");
	assert_int_equal(buildkit_addr_parse(&host, "docker-unix:///v/d.sock", &a, &err), 0);
	assert_int_equal(a.transport, BUILDKIT_DOCKER);
	assert_string_equal(a.path, "/v/d.sock");
	assert_int_equal(buildkit_addr_parse(&host, "docker://", &a, &err), 0);
	assert_int_equal(a.transport, BUILDKIT_DOCKER);
	assert_string_equal(a.path, "/var/run/docker.sock");
	assert_int_equal(buildkit_addr_parse(&host, "tcp://127.0.0.1:1234", &a, &err), 0);
	assert_int_equal(a.transport, BUILDKIT_TCP);
	assert_string_equal(a.target, "ipv4:127.0.0.1:1234");
	assert_string_equal(a.host, "127.0.0.1"); /* the default TLS server name */
	assert_int_equal(buildkit_addr_parse(&host, "tcp://[::1]:1234", &a, &err), 0);
	assert_string_equal(a.target, "ipv6:[::1]:1234");
	assert_string_equal(a.host, "::1");
	assert_int_equal(buildkit_addr_parse(&host, "tcp://buildkitd:1234", &a, &err), 0);
	assert_string_equal(a.target, "dns:///buildkitd:1234");
	assert_string_equal(a.host, "buildkitd");
}

static void bad_addresses_are_refused_by_name(void **st)
{
	(void)st;
	static const char *const bad[] = {
		"tcp://host", "tcp://host:", "tcp://host:99999", "tcp://:1234",
		"tcp://[::1]", "tcp://[nothex]:1", "tcp://h/x:1", "docker://x",
		"http://x", "npipe:////./pipe/docker_engine",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buildkit_addr a;
		struct kiln_err err = { 0 };
		assert_int_equal(buildkit_addr_parse(&host, bad[i], &a, &err), KILN_E_INVALID);
		assert_non_null(strstr(err.msg, bad[i]));
	}
	char longpath[200] = "unix://";
	memset(longpath + 7, 'a', 150);
	struct buildkit_addr a;
	struct kiln_err err = { 0 };
	assert_int_equal(buildkit_addr_parse(&host, longpath, &a, &err), KILN_E_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(method_paths_match_the_service),
		cmocka_unit_test(prune_request_wire),
		cmocka_unit_test(empty_requests_are_empty),
		cmocka_unit_test(list_workers_response_decodes),
		cmocka_unit_test(usage_record_decodes),
		cmocka_unit_test(addresses_parse),
		cmocka_unit_test(bad_addresses_are_refused_by_name),
	};
	return cmocka_run_group_tests_name("buildkit_control", tests, NULL, NULL);
}
