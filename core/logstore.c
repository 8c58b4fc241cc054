/* logstore.c: build records under the state directory (logstore.h has
 * the layout). Failures to write never fail a build: the first one is
 * reported as a warning and recording stops. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "logstore.h"
#include "util.h"

#define HISTORY_VERSION 1

struct lvtx {
	char *digest;
	int fd;       /* open log file, or -1 */
	bool indexed; /* its line is in the job's index */
};

struct ljob {
	char *id;
	char *dir;         /* STATE/logs/RUN/JOB, or NULL when not made */
	char *history_key; /* KEY|target|platform|builder */
	int64_t started_ns;
	struct lvtx **tab; /* open addressing by digest */
	size_t n_v, tab_cap;
};

struct kiln_logstore {
	char *state;   /* the state directory */
	char *run_dir; /* STATE/logs/RUN */
	char *key;
	struct ljob **jobs;
	size_t n_jobs;
	bool broken;   /* a write failed: record nothing more */
};

char *kiln__state_dir(void)
{
	const char *v = getenv("KILN_STATE_DIR");
	if (v && *v)
		return kiln__xstrdup(v);
	v = getenv("XDG_STATE_HOME");
	if (v && *v == '/')
		return kiln__xasprintf("%s/kiln", v);
	v = getenv("HOME");
	if (v && *v)
		return kiln__xasprintf("%s/.local/state/kiln", v);
	return NULL;
}

static void broken(struct kiln_logstore *ls, const char *what, const char *path)
{
	if (!ls->broken)
		kiln__log(KILN_LOG_WARN, "build records: %s %s: %s (not keeping logs)", what,
			  path, strerror(errno));
	ls->broken = true;
}

/* mkdir -p with mode 0700 for what it makes. */
static int mkdirs(const char *path)
{
	char *p = kiln__xstrdup(path);
	int rc = 0;
	for (char *s = p + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			rc = -1;
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

/* ---- old runs ------------------------------------------------------------ */

/* "20261121T005337Z-1234" (optionally "-N" after): kiln's run names. */
static bool is_run_name(const char *s)
{
	for (int i = 0; i < 8; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (s[8] != 'T')
		return false;
	for (int i = 9; i < 15; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return s[15] == 'Z' && s[16] == '-';
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Remove the oldest runs so that `keep` remain. */
static void prune_runs(const char *logs, size_t keep)
{
	DIR *d = opendir(logs);
	if (!d)
		return;
	struct kiln_strv names = { 0 };
	struct dirent *de;
	while ((de = readdir(d)))
		if (is_run_name(de->d_name))
			kiln__strv_push(&names, de->d_name);
	closedir(d);
	if (names.n > keep) {
		qsort(names.v, names.n, sizeof(*names.v), cmp_str);
		for (size_t i = 0; i < names.n - keep; i++) {
			char *path = kiln__xasprintf("%s/%s", logs, names.v[i]);
			nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
			free(path);
		}
	}
	kiln__strv_release(&names);
}

struct kiln_logstore *kiln__logstore_open(const char *key, size_t keep_runs)
{
	char *state = kiln__state_dir();
	if (!state)
		return NULL;
	struct kiln_logstore *ls = kiln__xcalloc(1, sizeof(*ls));
	ls->state = state;
	ls->key = kiln__xstrdup(key ? key : "");
	char *logs = kiln__xasprintf("%s/logs", state);
	if (mkdirs(logs) < 0) {
		broken(ls, "cannot make", logs);
		free(logs);
		return ls;
	}
	prune_runs(logs, keep_runs > 0 ? keep_runs - 1 : 0);

	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 0; n < 100 && !ls->run_dir; n++) {
		char *dir = n ? kiln__xasprintf("%s/%s-%ld-%d", logs, stamp, (long)getpid(), n)
			      : kiln__xasprintf("%s/%s-%ld", logs, stamp, (long)getpid());
		if (mkdir(dir, 0700) == 0)
			ls->run_dir = dir;
		else if (errno == EEXIST)
			free(dir);
		else {
			broken(ls, "cannot make", dir);
			free(dir);
			break;
		}
	}
	free(logs);
	return ls;
}

const char *kiln__logstore_dir(const struct kiln_logstore *ls)
{
	return ls ? ls->run_dir : NULL;
}

/* ---- history --------------------------------------------------------------- */

static char *history_path(const struct kiln_logstore *ls)
{
	return kiln__xasprintf("%s/history.json", ls->state);
}

static json_t *history_load(const struct kiln_logstore *ls)
{
	char *path = history_path(ls);
	json_t *root = json_load_file(path, 0, NULL);
	free(path);
	if (!json_is_object(root) ||
	    json_integer_value(json_object_get(root, "version")) != HISTORY_VERSION ||
	    !json_is_object(json_object_get(root, "builds"))) {
		json_decref(root);
		root = json_object();
		json_object_set_new(root, "version", json_integer(HISTORY_VERSION));
		json_object_set_new(root, "builds", json_object());
	}
	return root;
}

static int64_t history_get(const struct kiln_logstore *ls, const char *hkey)
{
	json_t *root = history_load(ls);
	json_t *e = json_object_get(json_object_get(root, "builds"), hkey);
	json_int_t d = json_integer_value(json_object_get(e, "duration_ns"));
	json_decref(root);
	return d > 0 ? (int64_t)d : 0;
}

/* Record a successful build; written to a temporary file and renamed, so
 * that concurrent runs never see half a file (the last writer wins). */
static void history_put(struct kiln_logstore *ls, const char *hkey, int64_t duration_ns,
			int64_t finished_ns)
{
	json_t *root = history_load(ls);
	json_t *builds = json_object_get(root, "builds");
	json_t *e = json_object();
	json_object_set_new(e, "duration_ns", json_integer(duration_ns));
	json_object_set_new(e, "finished_ns", json_integer(finished_ns));
	json_object_set_new(builds, hkey, e);
	while (json_object_size(builds) > KILN_LOGSTORE_KEEP_HISTORY) {
		const char *k, *oldest = NULL;
		json_int_t when = 0;
		json_t *v;
		json_object_foreach(builds, k, v) {
			json_int_t t = json_integer_value(json_object_get(v, "finished_ns"));
			if (!oldest || t < when)
				oldest = k, when = t;
		}
		json_object_del(builds, oldest);
	}
	char *path = history_path(ls);
	char *tmp = kiln__xasprintf("%s.%ld.tmp", path, (long)getpid());
	if (json_dump_file(root, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) == 0) {
		if (rename(tmp, path) < 0) {
			broken(ls, "cannot write", path);
			unlink(tmp);
		}
	} else {
		broken(ls, "cannot write", tmp);
		unlink(tmp);
	}
	free(tmp);
	free(path);
	json_decref(root);
}

/* ---- jobs and vertices -------------------------------------------------------- */

static struct ljob *job_get(struct kiln_logstore *ls, const char *id)
{
	for (size_t i = 0; i < ls->n_jobs; i++)
		if (strcmp(ls->jobs[i]->id, id) == 0)
			return ls->jobs[i];
	ls->jobs = kiln__xrealloc(ls->jobs, (ls->n_jobs + 1) * sizeof(*ls->jobs));
	struct ljob *j = kiln__xcalloc(1, sizeof(*j));
	j->id = kiln__xstrdup(id);
	ls->jobs[ls->n_jobs++] = j;
	return j;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static void tab_put(struct ljob *j, struct lvtx *v)
{
	size_t mask = j->tab_cap - 1, i = (size_t)hash_str(v->digest) & mask;
	while (j->tab[i])
		i = (i + 1) & mask;
	j->tab[i] = v;
}

static struct lvtx *vtx_get(struct ljob *j, const char *digest)
{
	if (j->tab_cap) {
		size_t mask = j->tab_cap - 1;
		for (size_t i = (size_t)hash_str(digest) & mask; j->tab[i]; i = (i + 1) & mask)
			if (strcmp(j->tab[i]->digest, digest) == 0)
				return j->tab[i];
	}
	if ((j->n_v + 1) * 2 > j->tab_cap) {
		size_t old_cap = j->tab_cap;
		struct lvtx **old = j->tab;
		j->tab_cap = old_cap ? old_cap * 2 : 32;
		j->tab = kiln__xcalloc(j->tab_cap, sizeof(*j->tab));
		for (size_t i = 0; i < old_cap; i++)
			if (old[i])
				tab_put(j, old[i]);
		free(old);
	}
	struct lvtx *v = kiln__xcalloc(1, sizeof(*v));
	v->digest = kiln__xstrdup(digest);
	v->fd = -1;
	tab_put(j, v);
	j->n_v++;
	return v;
}

/* The file name part of a digest: its hex, without the algorithm; any
 * character that could leave the directory becomes '_'. */
static char *vertex_file_stem(const char *digest)
{
	const char *colon = strchr(digest, ':');
	char *s = kiln__xstrdup(colon && colon[1] ? colon + 1 : digest);
	for (char *p = s; *p; p++)
		if (*p == '/' || (p == s && *p == '.'))
			*p = '_';
	return s;
}

static char *job_dir_name(const char *id)
{
	char *s = kiln__xstrdup(*id ? id : "job");
	for (char *p = s; *p; p++)
		if (*p == '/' || (p == s && *p == '.'))
			*p = '_';
	return s;
}

static bool write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

static void index_vertex(struct kiln_logstore *ls, struct ljob *j, struct lvtx *v,
			 const char *name)
{
	if (v->indexed || !name || !*name || !j->dir || ls->broken)
		return;
	v->indexed = true;
	char *stem = vertex_file_stem(v->digest);
	struct kiln_sb line = KILN_SB_INIT;
	kiln__sb_addf(&line, "%s\t", stem);
	for (const char *p = name; *p; p++)
		kiln__sb_add(&line, (*p == '\t' || *p == '\n' || *p == '\r') ? " " : p, 1);
	kiln__sb_adds(&line, "\n");
	char *path = kiln__xasprintf("%s/index", j->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || !write_all(fd, line.buf, line.len))
		broken(ls, "cannot write", path);
	if (fd >= 0)
		close(fd);
	free(path);
	free(stem);
	kiln__sb_release(&line);
}

static void append_log(struct kiln_logstore *ls, struct ljob *j, struct lvtx *v,
		       const void *data, size_t len)
{
	if (!j->dir || ls->broken || !len)
		return;
	if (v->fd < 0) {
		char *stem = vertex_file_stem(v->digest);
		char *path = kiln__xasprintf("%s/%s.log", j->dir, stem);
		v->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (v->fd < 0)
			broken(ls, "cannot write", path);
		free(path);
		free(stem);
		if (v->fd < 0)
			return;
	}
	if (!write_all(v->fd, data, len))
		broken(ls, "cannot write the log of", v->digest);
}

static void close_vertex(struct lvtx *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

static void job_close_files(struct ljob *j)
{
	for (size_t i = 0; i < j->tab_cap; i++)
		if (j->tab[i])
			close_vertex(j->tab[i]);
}

static void on_job_started(struct kiln_logstore *ls, struct ljob *j, struct kiln_event *ev)
{
	const struct kiln_job *kj = ev->job;
	j->started_ns = ev->time_ns;
	free(j->history_key);
	j->history_key = kiln__xasprintf("%s|%s|%s|%s", ls->key, kj->target ? kj->target : "",
					 kj->platform ? kj->platform : "",
					 kj->builder ? kj->builder : "");
	if (!j->dir && ls->run_dir && !ls->broken) {
		char *name = job_dir_name(kj->id);
		char *dir = kiln__xasprintf("%s/%s", ls->run_dir, name);
		free(name);
		if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
			j->dir = dir;
		} else {
			broken(ls, "cannot make", dir);
			free(dir);
		}
	}
	ev->u.job_started.log_dir = j->dir;
	ev->u.job_started.previous_duration_ns = history_get(ls, j->history_key);
}

void kiln__logstore_event(struct kiln_logstore *ls, struct kiln_event *ev)
{
	if (!ls || !ev->job || !ev->job->id)
		return;
	struct ljob *j = job_get(ls, ev->job->id);
	switch (ev->kind) {
	case KILN_EVENT_JOB_STARTED:
		on_job_started(ls, j, ev);
		break;
	case KILN_EVENT_VERTEX: {
		const struct kiln_event_vertex *e = &ev->u.vertex;
		if (!e->digest)
			break;
		struct lvtx *v = vtx_get(j, e->digest);
		index_vertex(ls, j, v, e->name);
		if (e->completed_ns)
			close_vertex(v); /* reopened should more output come */
		break;
	}
	case KILN_EVENT_VERTEX_LOG: {
		const struct kiln_event_vertex_log *e = &ev->u.log;
		if (!e->vertex || !e->data)
			break;
		append_log(ls, j, vtx_get(j, e->vertex), e->data, e->len);
		break;
	}
	case KILN_EVENT_JOB_FINISHED: {
		job_close_files(j);
		const struct kiln_event_job_finished *e = &ev->u.job_finished;
		int64_t d = e->metrics.duration_ns;
		if (!d && j->started_ns && ev->time_ns > j->started_ns)
			d = ev->time_ns - j->started_ns;
		if (e->status == 0 && d > 0 && j->history_key)
			history_put(ls, j->history_key, d, ev->time_ns);
		break;
	}
	case KILN_EVENT_VERTEX_STATUS:
	case KILN_EVENT_WARNING:
		break;
	}
}

void kiln__logstore_free(struct kiln_logstore *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n_jobs; i++) {
		struct ljob *j = ls->jobs[i];
		for (size_t k = 0; k < j->tab_cap; k++) {
			if (!j->tab[k])
				continue;
			close_vertex(j->tab[k]);
			free(j->tab[k]->digest);
			free(j->tab[k]);
		}
		free(j->tab);
		free(j->id);
		free(j->dir);
		free(j->history_key);
		free(j);
	}
	free(ls->jobs);
	free(ls->run_dir);
	free(ls->key);
	free(ls->state);
	free(ls);
}
