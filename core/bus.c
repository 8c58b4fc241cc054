/* bus.c: event fan-out and the metrics collector. */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "loader.h"
#include "logstore.h"
#include "util.h"

struct sink {
	const struct kiln_renderer *vt; /* NULL for a C sink */
	void *state;
	kiln_sink_fn fn;
};

/* What the collector knows of one vertex. */
struct vstate {
	char *digest;
	bool completed, cached, failed;
};

/* A "transferring …" progress item of a local source: its last count. */
struct xfer {
	char *key; /* vertex digest, '\n', status id */
	int64_t current;
};

struct jstats {
	char *job_id;
	int64_t started_ns;
	struct kiln_job_metrics m;
	struct vstate *v;
	size_t n_v, cap_v;
	struct xfer *x;
	size_t n_x;
};

struct kiln_bus {
	pthread_mutex_t mu;
	struct sink *sinks;
	size_t n_sinks;
	struct jstats *jobs;
	size_t n_jobs;
	struct kiln_logstore *store; /* build records, or NULL */
	bool closed;
};

struct kiln_bus *kiln__bus_new(void)
{
	struct kiln_bus *bus = kiln__xcalloc(1, sizeof(*bus));
	pthread_mutex_init(&bus->mu, NULL);
	return bus;
}

static void add_sink(struct kiln_bus *bus, struct sink s)
{
	pthread_mutex_lock(&bus->mu);
	bus->sinks = kiln__xrealloc(bus->sinks, (bus->n_sinks + 1) * sizeof(*bus->sinks));
	bus->sinks[bus->n_sinks++] = s;
	pthread_mutex_unlock(&bus->mu);
}

int kiln__bus_add_renderer(struct kiln_bus *bus, const struct kiln_renderer *vt,
			   const struct kiln_renderer_opts *opts, struct kiln_err *err)
{
	void *state = NULL;
	int rc = vt->open(&kiln__host, opts, &state, err);
	if (rc < 0)
		return rc;
	add_sink(bus, (struct sink){ .vt = vt, .state = state });
	return 0;
}

void kiln__bus_add_sink(struct kiln_bus *bus, kiln_sink_fn fn, void *ctx)
{
	add_sink(bus, (struct sink){ .fn = fn, .state = ctx });
}

static struct jstats *job_stats(struct kiln_bus *bus, const char *id)
{
	for (size_t i = 0; i < bus->n_jobs; i++)
		if (strcmp(bus->jobs[i].job_id, id) == 0)
			return &bus->jobs[i];
	bus->jobs = kiln__xrealloc(bus->jobs, (bus->n_jobs + 1) * sizeof(*bus->jobs));
	struct jstats *j = &bus->jobs[bus->n_jobs++];
	memset(j, 0, sizeof(*j));
	j->job_id = kiln__xstrdup(id);
	return j;
}

static struct vstate *vertex_state(struct jstats *j, const char *digest)
{
	for (size_t i = j->n_v; i-- > 0;)
		if (strcmp(j->v[i].digest, digest) == 0)
			return &j->v[i];
	if (j->n_v == j->cap_v) {
		j->cap_v = j->cap_v ? j->cap_v * 2 : 16;
		j->v = kiln__xrealloc(j->v, j->cap_v * sizeof(*j->v));
	}
	struct vstate *v = &j->v[j->n_v++];
	memset(v, 0, sizeof(*v));
	v->digest = kiln__xstrdup(digest);
	j->m.vertices++;
	return v;
}

/* The metrics collector: count each vertex once, by digest. */
static void collect(struct kiln_bus *bus, const struct kiln_event *ev)
{
	if (!ev->job || !ev->job->id)
		return;
	struct jstats *j = job_stats(bus, ev->job->id);
	switch (ev->kind) {
	case KILN_EVENT_JOB_STARTED:
		j->started_ns = ev->time_ns;
		break;
	case KILN_EVENT_VERTEX: {
		const struct kiln_event_vertex *v = &ev->u.vertex;
		if (!v->digest)
			break;
		struct vstate *s = vertex_state(j, v->digest);
		if (v->cached && !s->cached) {
			s->cached = true;
			j->m.cached++;
		}
		if (v->completed_ns && !s->completed) {
			s->completed = true;
			j->m.completed++;
		}
		if (v->error && *v->error && !s->failed) {
			s->failed = true;
			j->m.failed++;
		}
		break;
	}
	case KILN_EVENT_VERTEX_LOG:
		j->m.log_bytes += ev->u.log.len;
		break;
	case KILN_EVENT_WARNING:
		j->m.warnings++;
		break;
	case KILN_EVENT_JOB_FINISHED:
		if (j->started_ns && ev->time_ns > j->started_ns)
			j->m.duration_ns = ev->time_ns - j->started_ns;
		break;
	case KILN_EVENT_VERTEX_STATUS: {
		/* BuildKit's local source reports the bytes it received as
		 * "transferring context:" / "transferring dockerfile:"; the
		 * docker backend's context upload as "transferring context". */
		const struct kiln_event_vertex_status *st = &ev->u.status;
		if (!st->id || strncmp(st->id, "transferring", 12) != 0 || st->current < 0)
			break;
		char *key = kiln__xasprintf("%s\n%s", st->vertex ? st->vertex : "", st->id);
		size_t i = 0;
		while (i < j->n_x && strcmp(j->x[i].key, key) != 0)
			i++;
		if (i == j->n_x) {
			j->x = kiln__xrealloc(j->x, (j->n_x + 1) * sizeof(*j->x));
			j->x[j->n_x++] = (struct xfer){ .key = key };
		} else {
			free(key);
		}
		j->x[i].current = st->current;
		break;
	}
	}
}

static uint64_t context_bytes(const struct jstats *j)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < j->n_x; i++)
		sum += (uint64_t)j->x[i].current;
	return sum;
}

void kiln__bus_set_logstore(struct kiln_bus *bus, struct kiln_logstore *store)
{
	pthread_mutex_lock(&bus->mu);
	kiln__logstore_free(bus->store);
	bus->store = store;
	pthread_mutex_unlock(&bus->mu);
}

void kiln__bus_emit(struct kiln_bus *bus, const struct kiln_event *ev)
{
	pthread_mutex_lock(&bus->mu);
	collect(bus, ev);
	struct kiln_event copy;
	if (ev->kind == KILN_EVENT_JOB_FINISHED) {
		/* The metrics of job.finished come from the collector. */
		copy = *ev;
		copy.struct_size = sizeof(copy);
		struct jstats *js = job_stats(bus, ev->job->id);
		copy.u.job_finished.metrics = js->m;
		copy.u.job_finished.context_bytes = context_bytes(js);
		if (ev->struct_size < offsetof(struct kiln_event, u.job_finished.image_layers) +
					      sizeof(copy.u.job_finished.image_layers)) {
			/* an emitter from before these fields */
			copy.u.job_finished.image_size = 0;
			copy.u.job_finished.image_layers = 0;
		}
		ev = &copy;
	}
	if (bus->store) {
		/* The log store fills in job.started's log_dir and
		 * previous_duration_ns: in a copy, zero beyond what the
		 * sender's struct holds. */
		if (ev != &copy) {
			size_t n = ev->struct_size < sizeof(copy) ? ev->struct_size : sizeof(copy);
			memset(&copy, 0, sizeof(copy));
			memcpy(&copy, ev, n);
			copy.struct_size = sizeof(copy);
			ev = &copy;
		}
		kiln__logstore_event(bus->store, &copy);
	}
	for (size_t i = 0; i < bus->n_sinks && !bus->closed; i++) {
		struct sink *s = &bus->sinks[i];
		if (s->vt)
			s->vt->event(s->state, ev);
		else
			s->fn(s->state, ev);
	}
	pthread_mutex_unlock(&bus->mu);
}

struct kiln_job_metrics kiln__bus_metrics(struct kiln_bus *bus, const char *job_id)
{
	struct kiln_job_metrics m = { 0 };
	pthread_mutex_lock(&bus->mu);
	for (size_t i = 0; i < bus->n_jobs; i++)
		if (strcmp(bus->jobs[i].job_id, job_id) == 0)
			m = bus->jobs[i].m;
	pthread_mutex_unlock(&bus->mu);
	return m;
}

int kiln__bus_close(struct kiln_bus *bus, struct kiln_err *err)
{
	int first = 0;
	pthread_mutex_lock(&bus->mu);
	if (!bus->closed) {
		bus->closed = true;
		for (size_t i = 0; i < bus->n_sinks; i++) {
			struct sink *s = &bus->sinks[i];
			if (!s->vt)
				continue;
			struct kiln_err e = { 0 };
			int rc = s->vt->close(s->state, &e);
			if (rc < 0 && !first) {
				first = rc;
				if (err)
					*err = e;
			}
		}
	}
	pthread_mutex_unlock(&bus->mu);
	return first;
}

void kiln__bus_free(struct kiln_bus *bus)
{
	if (!bus)
		return;
	kiln__bus_close(bus, NULL);
	for (size_t i = 0; i < bus->n_jobs; i++) {
		for (size_t k = 0; k < bus->jobs[i].n_v; k++)
			free(bus->jobs[i].v[k].digest);
		free(bus->jobs[i].v);
		for (size_t k = 0; k < bus->jobs[i].n_x; k++)
			free(bus->jobs[i].x[k].key);
		free(bus->jobs[i].x);
		free(bus->jobs[i].job_id);
	}
	free(bus->jobs);
	free(bus->sinks);
	kiln__logstore_free(bus->store);
	pthread_mutex_destroy(&bus->mu);
	free(bus);
}
