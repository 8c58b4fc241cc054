// SOURCES: plugins/backend-docker/stream.c plugins/backend-docker/util.c
// PKGS: jansson libcrypto
// OBJS: renderer-json renderer-plain
/*
 * fuzz_dockerstream: libFuzzer target of the docker backend's decoder of
 * the Engine API's /build response (plugins/backend-docker/stream.c,
 * `make fuzz-dockerstream`): newline-delimited JSON messages from a
 * daemon that may be hostile or broken. The first input byte chooses how
 * the rest is split into reads (1 to 64 bytes, or all at once) and whether
 * the build ends cancelled; the rest is the response. The events go
 * through the core's bus to the json and plain renderers (sink.h). Seeds:
 * the recorded Docker and Podman responses of tests/tty/engine/.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../plugins/backend-docker/docker.h"
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
	if (size < 1)
		return 0;
	unsigned mode = data[0];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	size_t chunk = mode & 0x40 ? len : (mode & 0x3f) + 1;

	sink_begin();
	struct kiln_solve req = { .struct_size = sizeof(req), .job = &sink_job };
	struct docker_stream s;
	memset(&s, 0, sizeof(s));
	docker_stream_init(&s, &sink_host, &req);
	docker_stream_context_begin(&s);
	docker_stream_context_progress(&s, 10240, true);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < chunk ? len - off : chunk;
		docker_stream_feed(&s, body + off, n);
		off += n;
	}
	docker_stream_finish(&s, mode & 0x80 ? "cancelled" : NULL);
	char *msg = NULL;
	if (s.error)
		msg = s.error_vertex ? kiln__xasprintf("%s: %s", s.error_vertex, s.error)
				     : kiln__xstrdup(s.error);
	sink_end(msg);
	free(msg);
	docker_stream_release(&s);
	return 0;
}
