// SOURCES: plugins/backend-buildkit/solve.c plugins/backend-buildkit/session.c plugins/backend-buildkit/fsutil.c plugins/backend-buildkit/secrets.c plugins/backend-buildkit/sshfwd.c plugins/backend-buildkit/auth.c plugins/backend-buildkit/csv.c plugins/backend-buildkit/rpc.c plugins/backend-buildkit/transport.c plugins/backend-buildkit/addr.c plugins/backend-buildkit/control.c
// PKGS: grpc libprotobuf-c jansson libcrypto
// OBJS: renderer-json renderer-plain
/*
 * fuzz_solvestatus: libFuzzer target of the buildkit backend's reading of
 * Control.Status replies (`make fuzz-solvestatus`), as a hostile or broken
 * daemon may send them: the input is a series of messages, each a 2-byte
 * little-endian length and that many bytes (a last short one takes what is
 * left), each unpacked as a moby.buildkit.v1.StatusResponse by protobuf-c
 * with the backend's allocator, as rpc.c does, and turned into events by
 * buildkit_status_emit (plugins/backend-buildkit/solve.c). The events go
 * through the core's bus to the json and plain renderers (sink.h). Seeds:
 * tests/fuzz/mkseeds.py.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../plugins/backend-buildkit/buildkit.h"
#include "control.pb-c.h"
#include "sink.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	kiln__log_level = KILN_LOG_ERROR;
	return sink_init();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCAllocator a;
	buildkit_allocator(&sink_host, &a);
	struct kiln_solve req = { .struct_size = sizeof(req), .job = &sink_job };
	sink_begin();
	for (size_t off = 0; off < size;) {
		size_t n = size - off;
		if (n >= 2) {
			size_t want = (size_t)data[off] | (size_t)data[off + 1] << 8;
			off += 2;
			n = size - off < want ? size - off : want;
		} else {
			off = size;
			n = 0;
			break;
		}
		Moby__Buildkit__V1__StatusResponse *m =
			moby__buildkit__v1__status_response__unpack(&a, n, data + off);
		off += n;
		if (!m)
			continue; /* status_main ends the stream: a protocol error */
		buildkit_status_emit(&sink_host, &req, m);
		moby__buildkit__v1__status_response__free_unpacked(m, &a);
	}
	sink_end(NULL);
	return 0;
}
