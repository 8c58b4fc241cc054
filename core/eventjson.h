/* eventjson.h: decoding the JSON event stream (docs/events.md) back into
 * struct kiln_event, for `kiln replay` and the golden tests. The encoder is
 * the json renderer plugin; the two must agree (a round-trip test checks). */
#ifndef KILN_CORE_EVENTJSON_H
#define KILN_CORE_EVENTJSON_H

#include <kiln/kiln.h>

struct kiln_arena;

/* Decode one JSON object (one line of the stream, NUL-terminated) into
 * *ev. Everything ev points to, the job included, is allocated from arena
 * and lives until the arena is freed. Returns 0; KILN_E_UNSUPPORTED for an
 * unknown "type" or a schema newer than this kiln (the caller skips it);
 * KILN_E_SYNTAX with a message for malformed input (the caller adds
 * file:line). */
int kiln__event_decode(const char *line, struct kiln_arena *arena,
		       struct kiln_event *ev, struct kiln_err *err);

#endif
