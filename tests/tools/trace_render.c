/* trace_render: the timeline writer (core/trace.c) behind a command line,
 * fed from a recorded `kiln build --progress=json` stream instead of a
 * build record, so tests/integration/trace_test.sh and the picture in
 * docs/ need no `kiln history`.
 *
 *   trace_render [--job ID] [--format html|svg] [-o FILE] EVENTS.jsonl|-
 *
 * One job of the stream (the first one seen, or --job ID) becomes one
 * struct kiln_trace: its id and target, job.started/job.finished times and
 * status, and the last state of each of its vertices (by digest; a later
 * vertex event supersedes earlier ones, docs/events.md). -o FILE is
 * written atomically (a temporary sibling renamed over it); default
 * stdout. Exit 0, 1 on bad input (file:line: message), 2 on usage. */
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "eventjson.h"
#include "trace.h"
#include "util.h"

static int usage(void)
{
	fprintf(stderr, "usage: trace_render [--job ID] [--format html|svg] [-o FILE] EVENTS.jsonl|-\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *job = NULL, *outpath = NULL, *inpath = NULL;
	enum kiln_trace_format format = KILN_TRACE_HTML;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--job") == 0 && i + 1 < argc) {
			job = argv[++i];
		} else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "html") == 0)
				format = KILN_TRACE_HTML;
			else if (strcmp(argv[i], "svg") == 0)
				format = KILN_TRACE_SVG;
			else
				return usage();
		} else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			outpath = argv[++i];
		} else if (!inpath && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			inpath = argv[i];
		} else {
			return usage();
		}
	}
	if (!inpath)
		return usage();

	FILE *in = strcmp(inpath, "-") == 0 ? stdin : fopen(inpath, "r");
	if (!in) {
		fprintf(stderr, "trace_render: %s: %s\n", inpath, strerror(errno));
		return 1;
	}
	struct kiln_arena *arena = kiln__arena_new();
	struct kiln_trace t = { 0 };
	struct kiln_trace_vertex *vs = NULL;
	size_t nv = 0, capv = 0;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;
	while ((len = getline(&line, &linecap, in)) > 0) {
		lineno++;
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		struct kiln_event ev;
		struct kiln_err err = { 0 };
		int r = kiln__event_decode(line, arena, &ev, &err);
		if (r == KILN_E_UNSUPPORTED)
			continue;
		if (r != 0) {
			fprintf(stderr, "trace_render: %s:%d: %s\n", inpath, lineno, err.msg);
			rc = 1;
			break;
		}
		if (!job)
			job = kiln__arena_strdup(arena, ev.job->id);
		if (strcmp(ev.job->id, job) != 0)
			continue;
		if (!t.id) {
			t.id = ev.job->id;
			t.title = ev.job->target;
			if (ev.job->platform && ev.job->platform[0]) {
				char *s = kiln__xasprintf("%s %s", ev.job->target, ev.job->platform);
				t.title = kiln__arena_strdup(arena, s);
				free(s);
			}
		}
		switch (ev.kind) {
		case KILN_EVENT_JOB_STARTED:
			t.started_ns = ev.time_ns;
			break;
		case KILN_EVENT_JOB_FINISHED:
			t.finished_ns = ev.time_ns;
			t.status = ev.u.job_finished.status;
			break;
		case KILN_EVENT_VERTEX: {
			const struct kiln_event_vertex *v = &ev.u.vertex;
			size_t i = 0;
			while (i < nv && strcmp(vs[i].digest, v->digest) != 0)
				i++;
			if (i == nv) {
				if (nv == capv) {
					capv = capv ? 2 * capv : 64;
					vs = kiln__xrealloc(vs, capv * sizeof(*vs));
				}
				nv++;
			}
			vs[i] = (struct kiln_trace_vertex){
				.digest = v->digest, .name = v->name, .started_ns = v->started_ns,
				.completed_ns = v->completed_ns, .cached = v->cached, .error = v->error,
			};
			break;
		}
		default:
			break;
		}
	}
	free(line);
	if (rc == 0 && ferror(in)) {
		fprintf(stderr, "trace_render: %s: read error\n", inpath);
		rc = 1;
	}
	if (in != stdin)
		fclose(in);
	if (rc == 0 && !t.id) {
		fprintf(stderr, "trace_render: %s: no events%s%s\n", inpath,
			job ? " of job " : "", job ? job : "");
		rc = 1;
	}
	t.vertices = vs;
	t.n_vertices = nv;

	if (rc == 0 && !outpath) {
		if (kiln__trace_write(stdout, &t, format) != 0) {
			fprintf(stderr, "trace_render: stdout: %s\n", strerror(errno));
			rc = 1;
		}
	} else if (rc == 0) {
		char *tmp = kiln__xasprintf("%s.tmp.XXXXXX", outpath);
		int fd = mkstemp(tmp);
		FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
		bool ok = out && fchmod(fd, 0644) == 0 && kiln__trace_write(out, &t, format) == 0;
		if (out && fclose(out) != 0)
			ok = false;
		else if (!out && fd >= 0)
			close(fd);
		if (!ok || rename(tmp, outpath) != 0) {
			fprintf(stderr, "trace_render: %s: %s\n", outpath, strerror(errno));
			if (fd >= 0)
				unlink(tmp);
			rc = 1;
		}
		free(tmp);
	}
	free(vs);
	kiln__arena_free(arena);
	return rc;
}
