/*
 * control.c: BuildKit's Control API besides Solve: Info (the version
 * probe), ListWorkers, DiskUsage and Prune, turned into kiln's records
 * (struct kiln_worker, struct kiln_usage_record in kiln/plugin.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildkit.h"
#include "control.pb-c.h"
#include "ops.pb-c.h"
#include "worker.pb-c.h"

/* Field of a caller's struct that begins with struct_size, if present. */
#define HAS(p, type, field) ((p)->struct_size >= offsetof(type, field) + sizeof((p)->field))

static void free_msg(const struct kiln_host *host, void *msg)
{
	ProtobufCAllocator a;
	buildkit_allocator(host, &a);
	if (msg)
		protobuf_c_message_free_unpacked(msg, &a);
}

/* ---- Info -------------------------------------------------------------------------- */

int buildkit_info(struct buildkit_conn *conn, int timeout_ms, struct buildkit_status *st,
		  struct kiln_err *err)
{
	const struct kiln_host *host = conn->host;
	Moby__Buildkit__V1__InfoRequest req = MOBY__BUILDKIT__V1__INFO_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	struct buildkit_status own = { 0 };
	if (!st)
		st = &own;
	int rc = buildkit_unary(conn, BUILDKIT_M_INFO, &req.base,
				&moby__buildkit__v1__info_response__descriptor, timeout_ms,
				&msg, st, err);
	if (rc == KILN_E_UNSUPPORTED) {
		/* grpc-go: "unknown service X" when the server has no such
		 * service at all, "unknown method Info for service X" when
		 * it is a BuildKit without Info. */
		if (strstr(st->details, "unknown service"))
			return host->error(err, KILN_E_CONNECT,
					   "cannot reach buildkit at %s: the gRPC server there "
					   "is not BuildKit (%s)", conn->addr, st->details);
		conn->version[0] = '\0';
		conn->v011 = false;
		host->log(KILN_LOG_DEBUG, "buildkit: %s has no Control.Info: BuildKit before "
			  "v0.11, speaking v0.8's feature set", conn->addr);
		return 0;
	}
	if (rc < 0)
		return rc;
	Moby__Buildkit__V1__InfoResponse *info = (Moby__Buildkit__V1__InfoResponse *)msg;
	const char *v = info->buildkitversion ? info->buildkitversion->version : "";
	snprintf(conn->version, sizeof(conn->version), "%s", v && *v ? v : "v0.11+");
	conn->v011 = true; /* Info exists since v0.11 */
	host->log(KILN_LOG_DEBUG, "buildkit: %s runs BuildKit %s (%s %s)", conn->addr,
		  conn->version,
		  info->buildkitversion ? info->buildkitversion->package : "",
		  info->buildkitversion ? info->buildkitversion->revision : "");
	free_msg(host, msg);
	return 0;
}

/* ---- ListWorkers ---------------------------------------------------------------------- */

static int kv_cmp(const void *a, const void *b)
{
	const struct kiln_kv *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* "os/arch" or "os/arch/variant". */
static const char *platform_string(const struct kiln_host *host, struct kiln_arena *arena,
				   const Pb__Platform *p)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s/%s%s%s", p->os, p->architecture,
		 p->variant[0] ? "/" : "", p->variant);
	return host->arena_strdup(arena, buf);
}

int buildkit_workers(void *connp, struct kiln_arena *arena, struct kiln_worker **out,
		     size_t *n, struct kiln_err *err)
{
	struct buildkit_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	Moby__Buildkit__V1__ListWorkersRequest req = MOBY__BUILDKIT__V1__LIST_WORKERS_REQUEST__INIT;
	ProtobufCMessage *msg = NULL;
	*out = NULL;
	*n = 0;
	int rc = buildkit_unary(conn, BUILDKIT_M_LIST_WORKERS, &req.base,
				&moby__buildkit__v1__list_workers_response__descriptor,
				BUILDKIT_UNARY_MS, &msg, NULL, err);
	if (rc < 0)
		return rc;
	Moby__Buildkit__V1__ListWorkersResponse *resp = (Moby__Buildkit__V1__ListWorkersResponse *)msg;
	struct kiln_worker *w = host->arena_alloc(arena, (resp->n_record ? resp->n_record : 1) *
							 sizeof(*w));
	for (size_t i = 0; i < resp->n_record; i++) {
		const Moby__Buildkit__V1__Types__WorkerRecord *rec = resp->record[i];
		w[i].id = host->arena_strdup(arena, rec->id);
		const char **plats = host->arena_alloc(arena, (rec->n_platforms + 1) *
								  sizeof(*plats));
		for (size_t k = 0; k < rec->n_platforms; k++)
			plats[k] = platform_string(host, arena, rec->platforms[k]);
		w[i].platforms = plats;
		w[i].n_platforms = rec->n_platforms;
		struct kiln_kv *kv = host->arena_alloc(arena, (rec->n_labels + 1) * sizeof(*kv));
		for (size_t k = 0; k < rec->n_labels; k++) {
			kv[k].key = host->arena_strdup(arena, rec->labels[k]->key);
			kv[k].value = host->arena_strdup(arena, rec->labels[k]->value);
		}
		/* the daemon's map order is not an order */
		qsort(kv, rec->n_labels, sizeof(*kv), kv_cmp);
		w[i].labels = kv;
		w[i].n_labels = rec->n_labels;
	}
	*out = w;
	*n = resp->n_record;
	free_msg(host, msg);
	return 0;
}

/* ---- UsageRecord ------------------------------------------------------------------------- */

/* A Timestamp in ns since the epoch; 0 when absent or at/before the epoch
 * (Go's zero time.Time is year 1). */
static int64_t ts_ns(const Moby__Buildkit__V1__Timestamp *t)
{
	if (!t || t->seconds <= 0 || t->seconds > INT64_MAX / 1000000000 - 1)
		return 0;
	return t->seconds * 1000000000 + t->nanos;
}

/* Fill *out from rec. With arena, strings are copied there; without, they
 * point into rec and parents into *one (v0.8's single Parent). */
static void usage_record(const struct kiln_host *host, struct kiln_arena *arena,
			 const Moby__Buildkit__V1__UsageRecord *rec, struct kiln_usage_record *out,
			 const char **one)
{
	*out = (struct kiln_usage_record){
		.size = rec->size,
		.created_ns = ts_ns(rec->createdat),
		.last_used_ns = ts_ns(rec->lastusedat),
		.usage_count = rec->usagecount,
		.mutable_ = rec->mutable_,
		.in_use = rec->inuse,
		.shared = rec->shared,
	};
	/* v0.11 lists Parents (12); v0.8 has the one Parent (5) */
	size_t np = rec->n_parents ? rec->n_parents : rec->parent[0] ? 1 : 0;
	const char *const *src = rec->n_parents ? (const char *const *)rec->parents : NULL;
	if (arena) {
		out->id = host->arena_strdup(arena, rec->id);
		out->description = host->arena_strdup(arena, rec->description);
		out->record_type = host->arena_strdup(arena, rec->recordtype);
		const char **p = host->arena_alloc(arena, (np + 1) * sizeof(*p));
		for (size_t i = 0; i < np; i++)
			p[i] = host->arena_strdup(arena, src ? src[i] : rec->parent);
		out->parents = p;
	} else {
		out->id = rec->id;
		out->description = rec->description;
		out->record_type = rec->recordtype;
		*one = rec->parent;
		out->parents = src ? src : (const char *const *)one;
	}
	out->n_parents = np;
}

/* ---- DiskUsage ------------------------------------------------------------------------------ */

int buildkit_disk_usage(void *connp, const char *const *filters, size_t n_filters,
			struct kiln_arena *arena, struct kiln_usage_record **out, size_t *n,
			struct kiln_err *err)
{
	struct buildkit_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	Moby__Buildkit__V1__DiskUsageRequest req = MOBY__BUILDKIT__V1__DISK_USAGE_REQUEST__INIT;
	req.n_filter = n_filters;
	req.filter = (char **)filters; /* only read by pack */
	ProtobufCMessage *msg = NULL;
	*out = NULL;
	*n = 0;
	int rc = buildkit_unary(conn, BUILDKIT_M_DISK_USAGE, &req.base,
				&moby__buildkit__v1__disk_usage_response__descriptor,
				BUILDKIT_DU_MS, &msg, NULL, err);
	if (rc < 0)
		return rc;
	Moby__Buildkit__V1__DiskUsageResponse *resp = (Moby__Buildkit__V1__DiskUsageResponse *)msg;
	struct kiln_usage_record *r = host->arena_alloc(arena, (resp->n_record ? resp->n_record : 1) *
							       sizeof(*r));
	for (size_t i = 0; i < resp->n_record; i++)
		usage_record(host, arena, resp->record[i], &r[i], NULL);
	*out = r;
	*n = resp->n_record;
	free_msg(host, msg);
	return 0;
}

/* ---- Prune --------------------------------------------------------------------------------- */

int buildkit_prune(void *connp, const struct kiln_prune_opts *opts, kiln_prune_cb cb,
		   void *ctx, struct kiln_err *err)
{
	struct buildkit_conn *conn = connp;
	const struct kiln_host *host = conn->host;
	Moby__Buildkit__V1__PruneRequest req = MOBY__BUILDKIT__V1__PRUNE_REQUEST__INIT;
	if (HAS(opts, struct kiln_prune_opts, all))
		req.all = opts->all;
	if (HAS(opts, struct kiln_prune_opts, keep_duration_ns))
		req.keepduration = opts->keep_duration_ns;
	if (HAS(opts, struct kiln_prune_opts, keep_storage_bytes))
		req.keepbytes = opts->keep_storage_bytes;
	if (HAS(opts, struct kiln_prune_opts, n_filters)) {
		req.n_filter = opts->n_filters;
		req.filter = (char **)opts->filters; /* only read by pack */
	}
	if (req.keepduration < 0 || req.keepbytes < 0)
		return host->error(err, KILN_E_INVALID, "prune: negative keep-duration or "
				   "keep-storage");
	host->log(KILN_LOG_DEBUG, "buildkit: Prune all=%d keepDuration=%lld ns keepBytes=%lld "
		  "filters=%zu", (int)req.all, (long long)req.keepduration,
		  (long long)req.keepbytes, req.n_filter);
	struct buildkit_stream s;
	int rc = buildkit_stream_open(conn, BUILDKIT_M_PRUNE, &req.base, BUILDKIT_PRUNE_MS, &s,
				      err);
	if (rc < 0)
		return rc;
	for (;;) {
		ProtobufCMessage *msg = NULL;
		rc = buildkit_stream_next(&s, &moby__buildkit__v1__usage_record__descriptor, &msg,
					  err);
		if (rc <= 0)
			break;
		struct kiln_usage_record rec;
		const char *one = NULL;
		usage_record(host, NULL, (const Moby__Buildkit__V1__UsageRecord *)msg, &rec, &one);
		if (cb)
			cb(ctx, &rec);
		free_msg(host, msg);
	}
	buildkit_stream_close(&s);
	return rc < 0 ? rc : 0;
}
