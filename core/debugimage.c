/* debugimage.c: the failing step's root as an image (see debugimage.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "ops.pb-c.h"

#include "arena.h"
#include "debugimage.h"
#include "util.h"

struct failure {
	char *job_id;
	char *digest;
	char *name;     /* the vertex's name, or NULL */
	bool cancelled; /* the error reads as a cancellation */
};

struct kiln_debug_watch {
	pthread_mutex_t mu;
	struct failure *v;
	size_t n;
};

struct kiln_debug_watch *kiln__debug_watch_new(void)
{
	struct kiln_debug_watch *w = kiln__xcalloc(1, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	return w;
}

static bool is_cancel(const char *e)
{
	return strstr(e, "context canceled") || strstr(e, "cancelled") || strstr(e, "canceled");
}

void kiln__debug_watch_sink(void *watch, const struct kiln_event *ev)
{
	struct kiln_debug_watch *w = watch;
	if (ev->kind != KILN_EVENT_VERTEX || !ev->u.vertex.error || !ev->u.vertex.digest ||
	    !ev->job || !ev->job->id)
		return;
	bool cancel = is_cancel(ev->u.vertex.error);
	pthread_mutex_lock(&w->mu);
	struct failure *f = NULL;
	for (size_t i = 0; i < w->n && !f; i++)
		if (strcmp(w->v[i].job_id, ev->job->id) == 0)
			f = &w->v[i];
	if (!f) {
		w->v = kiln__xrealloc(w->v, (w->n + 1) * sizeof(*w->v));
		f = &w->v[w->n++];
		f->job_id = kiln__xstrdup(ev->job->id);
		f->digest = kiln__xstrdup(ev->u.vertex.digest);
		f->name = ev->u.vertex.name ? kiln__xstrdup(ev->u.vertex.name) : NULL;
		f->cancelled = cancel;
	} else if (f->cancelled && !cancel) { /* the real failure beats a cancel */
		free(f->digest);
		free(f->name);
		f->digest = kiln__xstrdup(ev->u.vertex.digest);
		f->name = ev->u.vertex.name ? kiln__xstrdup(ev->u.vertex.name) : NULL;
		f->cancelled = false;
	}
	pthread_mutex_unlock(&w->mu);
}

char *kiln__debug_watch_failed(struct kiln_debug_watch *w, const char *job_id, char **name)
{
	char *d = NULL;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n && !d; i++)
		if (strcmp(w->v[i].job_id, job_id) == 0) {
			d = kiln__xstrdup(w->v[i].digest);
			*name = kiln__xstrdup(w->v[i].name ? w->v[i].name : w->v[i].digest);
		}
	pthread_mutex_unlock(&w->mu);
	return d;
}

void kiln__debug_watch_free(struct kiln_debug_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].job_id);
		free(w->v[i].digest);
		free(w->v[i].name);
	}
	free(w->v);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* "sha256:<hex>" of b into out[72]: an op's digest is that of its bytes */
static void op_digest(const ProtobufCBinaryData *b, char out[72])
{
	kiln__sha256_digest(b->data, b->len, out);
}

int kiln__debug_root_def(const uint8_t *llb, size_t llb_len, const char *failed,
			 struct kiln_arena *arena, const uint8_t **out, size_t *out_len,
			 struct kiln_err *err)
{
	Pb__Definition *def = pb__definition__unpack(NULL, llb_len, llb);
	if (!def)
		return kiln__err(err, KILN_E_INVALID, "the LLB definition does not decode");
	Pb__Op *op = NULL;
	char d[72];
	for (size_t i = 0; i < def->n_def && !op; i++) {
		op_digest(&def->def[i], d);
		if (strcmp(d, failed) == 0)
			op = pb__op__unpack(NULL, def->def[i].len, def->def[i].data);
	}
	int rc = 0;
	const Pb__Input *root = NULL;
	if (!op) {
		rc = kiln__err(err, KILN_E_NOTFOUND, "the failed step %s is not in the definition",
			       failed);
		goto out;
	}
	if (op->op_case == PB__OP__OP_EXEC && op->exec) {
		for (size_t i = 0; i < op->exec->n_mounts && !root; i++) {
			const Pb__Mount *m = op->exec->mounts[i];
			if (m->dest && strcmp(m->dest, "/") == 0 && m->input >= 0 &&
			    (size_t)m->input < op->n_inputs)
				root = op->inputs[m->input];
		}
	} else if (op->n_inputs > 0) {
		root = op->inputs[0];
	}
	if (!root) {
		rc = kiln__err(err, KILN_E_NOTFOUND, "the failed step has no root filesystem "
			       "to export (it is a source)");
		goto out;
	}

	/* the definition's ops, and a new terminal op pointing at the root */
	Pb__Input in = PB__INPUT__INIT;
	Pb__Input *inp = &in;
	in.digest = root->digest;
	in.index = root->index;
	Pb__Op term = PB__OP__INIT;
	term.n_inputs = 1;
	term.inputs = &inp;
	size_t tlen = pb__op__get_packed_size(&term);
	uint8_t *tbuf = kiln__arena_alloc(arena, tlen ? tlen : 1);
	pb__op__pack(&term, tbuf);

	ProtobufCBinaryData *ops = kiln__xcalloc(def->n_def + 1, sizeof(*ops));
	size_t n = 0;
	for (size_t i = 0; i < def->n_def; i++) {
		/* drop the old terminal op (no op type, one input) */
		Pb__Op *o = pb__op__unpack(NULL, def->def[i].len, def->def[i].data);
		bool terminal = o && o->op_case == PB__OP__OP__NOT_SET;
		if (o)
			pb__op__free_unpacked(o, NULL);
		if (!terminal)
			ops[n++] = def->def[i];
	}
	ops[n].data = tbuf;
	ops[n++].len = tlen;
	Pb__Definition nd = PB__DEFINITION__INIT;
	nd.n_def = n;
	nd.def = ops;
	nd.n_metadata = def->n_metadata;
	nd.metadata = def->metadata;
	size_t len = pb__definition__get_packed_size(&nd);
	uint8_t *buf = kiln__arena_alloc(arena, len ? len : 1);
	pb__definition__pack(&nd, buf);
	free(ops);
	*out = buf;
	*out_len = len;
out:
	if (op)
		pb__op__free_unpacked(op, NULL);
	pb__definition__free_unpacked(def, NULL);
	return rc;
}
