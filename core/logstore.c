/* logstore.c: build records under the state directory (logstore.h has
 * the layout). Failures to write never fail a build: the first one is
 * reported as a warning and recording stops. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/file.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
	/* for the record */
	size_t seen;  /* order of first sight */
	char *name;
	int64_t started_ns, completed_ns;
	bool cached;
	char *error;
	uint64_t log_bytes;
};

struct ljob {
	char *id;
	char *dir;         /* STATE/logs/RUN/JOB, or NULL when not made */
	char *history_key; /* KEY|target|platform|builder */
	int64_t started_ns;
	struct lvtx **tab; /* open addressing by digest */
	size_t n_v, tab_cap;
	/* for the record (record.json) */
	char *record_id;
	char *target, *platform, *builder, *frontend, *backend;
	int number;
	bool finished;
	int64_t finished_ns;
	int status;
	char *error, *image_digest, *config_digest;
	struct kiln_job_metrics metrics;
	uint64_t context_bytes;
	int64_t image_size;
	uint32_t image_layers;
};

struct kiln_logstore {
	char *state;   /* the state directory */
	char *run_dir; /* STATE/logs/RUN */
	char *run;     /* RUN */
	char *key;
	char *name, *context, *file; /* kiln__logstore_set_info */
	int lock_fd;   /* STATE/logs/RUN/lock, flock()ed while the run lasts */
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

/* Bytes of files under path. */
static uint64_t tree_bytes;
static int add_bytes(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F)
		tree_bytes += (uint64_t)sb->st_blocks * 512u;
	return 0;
}

static uint64_t du(const char *path)
{
	tree_bytes = 0;
	nftw(path, add_bytes, 16, FTW_PHYS);
	return tree_bytes;
}

bool kiln__logstore_run_active(const char *run_dir, long *pid)
{
	char *path = kiln__xasprintf("%s/lock", run_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	if (held && pid) {
		char buf[32] = "";
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		*pid = strtol(buf, NULL, 10);
	}
	close(fd);
	return held;
}

/* The Unix time of a run's name, or 0. */
static time_t run_time(const char *name)
{
	struct tm tm = { 0 };
	if (!strptime(name, "%Y%m%dT%H%M%SZ", &tm))
		return 0;
	return timegm(&tm);
}

void kiln__logstore_limits(struct kiln_logstore_limits *l)
{
	l->max_age_s = KILN_HISTORY_MAX_AGE_S;
	l->max_bytes = KILN_HISTORY_MAX_BYTES;
	const char *v = getenv("KILN_HISTORY_MAX_AGE");
	if (v && *v) {
		char *end;
		double d = strtod(v, &end);
		double mult = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60
			    : !strcmp(end, "h") ? 3600 : !strcmp(end, "d") ? 86400 : -1;
		if (end != v && d >= 0 && mult > 0)
			l->max_age_s = (int64_t)(d * mult);
		else
			kiln__log(KILN_LOG_WARN, "KILN_HISTORY_MAX_AGE=%s: not a duration (e.g. 30d, "
				  "48h); keeping %lld days", v, (long long)(l->max_age_s / 86400));
	}
	v = getenv("KILN_HISTORY_MAX_SIZE");
	if (v && *v) {
		char *end;
		double d = strtod(v, &end);
		int c = *end | 0x20;
		double mult = !*end ? 1 : c == 'k' ? 1024.0 : c == 'm' ? 1048576.0
			    : c == 'g' ? 1073741824.0 : -1;
		if (end != v && d >= 0 && mult > 0 && (!*end || !end[1] || !strcasecmp(end + 1, "b") ||
						       !strcasecmp(end + 1, "ib")))
			l->max_bytes = (uint64_t)(d * mult);
		else
			kiln__log(KILN_LOG_WARN, "KILN_HISTORY_MAX_SIZE=%s: not a size (e.g. 512m, 1g); "
				  "keeping %llu MiB", v, (unsigned long long)(l->max_bytes >> 20));
	}
}

/* Remove the oldest runs so that at most `keep` remain, none is older
 * than the age limit and all of them take at most the size limit; runs
 * under way (their lock held) stay. */
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
	if (names.n)
		qsort(names.v, names.n, sizeof(*names.v), cmp_str);
	struct kiln_logstore_limits lim;
	kiln__logstore_limits(&lim);
	uint64_t *bytes = kiln__xcalloc(names.n + 1, sizeof(*bytes));
	uint64_t total = 0;
	for (size_t i = 0; i < names.n; i++) {
		char *path = kiln__xasprintf("%s/%s", logs, names.v[i]);
		bytes[i] = du(path);
		total += bytes[i];
		free(path);
	}
	time_t now = time(NULL);
	size_t left = names.n;
	for (size_t i = 0; i < names.n; i++) {
		time_t t = run_time(names.v[i]);
		bool old = lim.max_age_s > 0 && t && now - t > lim.max_age_s;
		if (!(left > keep || old || total > lim.max_bytes))
			break;
		char *path = kiln__xasprintf("%s/%s", logs, names.v[i]);
		if (!kiln__logstore_run_active(path, NULL)) {
			nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
			total -= bytes[i];
			left--;
		}
		free(path);
	}
	free(bytes);
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
	ls->lock_fd = -1;
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
		if (mkdir(dir, 0700) == 0) {
			ls->run_dir = dir;
			ls->run = kiln__xstrdup(strrchr(dir, '/') + 1);
		} else if (errno == EEXIST)
			free(dir);
		else {
			broken(ls, "cannot make", dir);
			free(dir);
			break;
		}
	}
	free(logs);
	if (ls->run_dir) {
		/* The lock says "under way" to kiln ps and kiln cancel, and
		 * keeps the retention of other runs off this one. */
		char *path = kiln__xasprintf("%s/lock", ls->run_dir);
		ls->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (ls->lock_fd >= 0 && flock(ls->lock_fd, LOCK_EX | LOCK_NB) == 0) {
			char pid[32];
			int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
			if (write(ls->lock_fd, pid, (size_t)n) != n)
				broken(ls, "cannot write", path);
		}
		free(path);
	}
	return ls;
}

void kiln__logstore_set_info(struct kiln_logstore *ls, const char *name, const char *context,
			     const char *file)
{
	if (!ls)
		return;
	free(ls->name);
	free(ls->context);
	free(ls->file);
	ls->name = name ? kiln__xstrdup(name) : NULL;
	ls->context = context ? kiln__xstrdup(context) : NULL;
	ls->file = file ? kiln__xstrdup(file) : NULL;
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

json_t *kiln__json_load_versioned(const char *path, int version, const char *member)
{
	json_t *root = path ? json_load_file(path, 0, NULL) : NULL;
	if (!json_is_object(root) ||
	    json_integer_value(json_object_get(root, "version")) != version ||
	    !json_is_object(json_object_get(root, member))) {
		json_decref(root);
		root = json_object();
		json_object_set_new(root, "version", json_integer(version));
		json_object_set_new(root, member, json_object());
	}
	return root;
}

static json_t *history_load(const struct kiln_logstore *ls)
{
	char *path = history_path(ls);
	json_t *root = kiln__json_load_versioned(path, HISTORY_VERSION, "builds");
	free(path);
	return root;
}

void kiln__json_keep_newest(json_t *obj, const char *time_key, size_t keep)
{
	while (json_object_size(obj) > keep) {
		const char *k, *oldest = NULL;
		json_int_t when = 0;
		json_t *v;
		json_object_foreach(obj, k, v) {
			json_int_t t = json_integer_value(json_object_get(v, time_key));
			if (!oldest || t < when)
				oldest = k, when = t;
		}
		json_object_del(obj, oldest);
	}
}

int kiln__json_write_atomic(json_t *root, const char *path)
{
	char *tmp = kiln__xasprintf("%s.XXXXXX", path);
	int fd = mkstemp(tmp), rc = -1;
	if (fd >= 0) {
		bool ok = json_dumpfd(root, fd, JSON_INDENT(1) | JSON_SORT_KEYS) == 0;
		ok = close(fd) == 0 && ok;
		if (ok && rename(tmp, path) == 0)
			rc = 0;
		else
			unlink(tmp);
	}
	int e = errno;
	free(tmp);
	errno = e;
	return rc;
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
	kiln__json_keep_newest(builds, "finished_ns", KILN_LOGSTORE_KEEP_HISTORY);
	char *path = history_path(ls);
	if (kiln__json_write_atomic(root, path) < 0)
		broken(ls, "cannot write", path);
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
	v->seen = j->n_v;
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

static void replace_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? kiln__xstrdup(src) : NULL;
}

char *kiln__record_id(const char *run, const char *job_id)
{
	char *in = kiln__xasprintf("%s/%s", run, job_id);
	uint8_t md[32];
	char *id = kiln__xcalloc(1, KILN_RECORD_ID_LEN + 1);
	kiln__sha256(in, strlen(in), md);
	/* base 36, as buildx's refs; 12 characters carry 62 bits */
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | md[i];
	for (int i = 0; i < KILN_RECORD_ID_LEN; i++, v /= 36)
		id[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
	free(in);
	return id;
}

bool kiln__vertex_is_step(const char *name)
{
	static const char *const not_steps[] = {
		"[internal]", "exporting ", "naming to ", "writing image ", "unpacking to ",
		"importing cache", "resolve image config", "load metadata", "preparing layers",
		NULL,
	};
	if (!name)
		return false;
	for (const char *const *p = not_steps; *p; p++)
		if (strncmp(name, *p, strlen(*p)) == 0)
			return false;
	/* base images: "[stage 1/4] FROM ref", "docker-image://ref" (a
	 * source is resolved or pulled, never run) */
	const char *rest = name;
	if (*rest == '[' && strchr(rest, ']'))
		rest = strchr(rest, ']') + 1;
	while (*rest == ' ')
		rest++;
	return strncasecmp(rest, "FROM ", 5) != 0 && strncmp(rest, "docker-image://", 15) != 0;
}

static const char *status_word(const struct ljob *j)
{
	if (!j->finished)
		return "running";
	if (j->status == 0)
		return "completed";
	return j->status == KILN_E_CANCELLED ? "canceled" : "error";
}

/* kiln's exit code for a job's status (docs/cli.md). */
static int exit_code_of(int status)
{
	switch (status) {
	case KILN_OK: return 0;
	case KILN_E_BUILD: return 1;
	case KILN_E_CONNECT:
	case KILN_E_PROTOCOL: return 3;
	case KILN_E_CANCELLED: return 130;
	default: return 2;
	}
}

static void set_time(json_t *o, const char *key, int64_t ns)
{
	if (!ns)
		return;
	char buf[64];
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%09lldZ", (long long)(ns % 1000000000));
	json_object_set_new(o, key, json_string(buf));
	char *k = kiln__xasprintf("%s_ns", key);
	json_object_set_new(o, k, json_integer(ns));
	free(k);
}

static void set_opt(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static int cmp_vtx(const void *a, const void *b)
{
	const struct lvtx *x = *(struct lvtx *const *)a, *y = *(struct lvtx *const *)b;
	/* by start; never-started ones last; then in order of sight */
	if ((x->started_ns == 0) != (y->started_ns == 0))
		return x->started_ns == 0 ? 1 : -1;
	if (x->started_ns != y->started_ns)
		return x->started_ns < y->started_ns ? -1 : 1;
	return x->seen < y->seen ? -1 : x->seen > y->seen;
}

/* STATE/logs/RUN/JOB/record.json (docs/history.md), written to a
 * temporary sibling and renamed. */
static void write_record(struct kiln_logstore *ls, struct ljob *j)
{
	if (!j->dir || !j->record_id || ls->broken)
		return;
	json_t *r = json_object();
	json_object_set_new(r, "version", json_integer(KILN_RECORD_VERSION));
	json_object_set_new(r, "id", json_string(j->record_id));
	json_object_set_new(r, "run", json_string(ls->run));
	const char *name = ls->name && (!j->target || !strcmp(j->target, "default") || !*j->target)
				   ? ls->name : j->target;
	set_opt(r, "name", name ? name : j->id);
	set_opt(r, "context", ls->context);
	set_opt(r, "file", ls->file);
	json_object_set_new(r, "job", json_pack("{s:s,s:s,s:s,s:s,s:i}", "id", j->id, "target",
						j->target ? j->target : "", "platform",
						j->platform ? j->platform : "", "builder",
						j->builder ? j->builder : "", "number", j->number));
	set_opt(r, "frontend", j->frontend);
	set_opt(r, "backend", j->backend);
	json_object_set_new(r, "pid", json_integer((json_int_t)getpid()));
	json_object_set_new(r, "status", json_string(status_word(j)));
	set_time(r, "started", j->started_ns);
	if (j->finished) {
		set_time(r, "finished", j->finished_ns);
		json_object_set_new(r, "duration_ns", json_integer(j->metrics.duration_ns));
		json_object_set_new(r, "status_code", json_integer(j->status));
		json_object_set_new(r, "exit_code", json_integer(exit_code_of(j->status)));
		set_opt(r, "error", j->error);
	}
	set_opt(r, "image_digest", j->image_digest);
	set_opt(r, "config_digest", j->config_digest);
	if (j->image_size > 0)
		json_object_set_new(r, "image_size", json_integer(j->image_size));
	if (j->image_layers)
		json_object_set_new(r, "image_layers", json_integer(j->image_layers));
	if (j->finished)
		json_object_set_new(r, "context_bytes",
				    json_integer(j->context_bytes > (uint64_t)INT64_MAX
							 ? INT64_MAX : (json_int_t)j->context_bytes));
	json_object_set_new(r, "log_dir", json_string(j->dir));

	struct lvtx **vs = kiln__xcalloc(j->n_v + 1, sizeof(*vs));
	size_t n = 0;
	for (size_t i = 0; i < j->tab_cap; i++)
		if (j->tab[i])
			vs[n++] = j->tab[i];
	qsort(vs, n, sizeof(*vs), cmp_vtx);
	json_t *arr = json_array();
	uint32_t hits = 0, misses = 0, steps = 0;
	const char *failed_step = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct lvtx *v = vs[i];
		json_t *o = json_object();
		bool step = kiln__vertex_is_step(v->name);
		json_object_set_new(o, "n", json_integer((json_int_t)i + 1));
		json_object_set_new(o, "digest", json_string(v->digest));
		set_opt(o, "name", v->name);
		json_object_set_new(o, "step", json_boolean(step));
		set_time(o, "started", v->started_ns);
		set_time(o, "completed", v->completed_ns);
		if (v->started_ns && v->completed_ns >= v->started_ns)
			json_object_set_new(o, "duration_ns",
					    json_integer(v->completed_ns - v->started_ns));
		json_object_set_new(o, "cached", json_boolean(v->cached));
		set_opt(o, "error", v->error);
		if (v->log_bytes) {
			char *stem = vertex_file_stem(v->digest);
			char *f = kiln__xasprintf("%s.log", stem);
			json_object_set_new(o, "log", json_string(f));
			free(f);
			free(stem);
		}
		json_object_set_new(o, "log_bytes", json_integer((json_int_t)v->log_bytes));
		json_array_append_new(arr, o);
		if (step) {
			steps++;
			if (v->cached)
				hits++;
			else if (v->completed_ns)
				misses++;
		}
		if (v->error && !failed_step)
			failed_step = v->name;
	}
	free(vs);
	set_opt(r, "failed_step", failed_step);
	if (j->error) {
		/* "… did not complete successfully: exit code: 3" */
		const char *p = strstr(j->error, "exit code: ");
		if (p)
			json_object_set_new(r, "step_exit_code", json_integer(atoi(p + 11)));
	}
	json_object_set_new(r, "cache", json_pack("{s:i,s:i,s:i}", "steps", (int)steps, "hits",
						  (int)hits, "misses", (int)misses));
	const struct kiln_job_metrics *m = &j->metrics;
	json_object_set_new(r, "metrics",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "vertices", (json_int_t)m->vertices,
				      "completed", (json_int_t)m->completed, "cached",
				      (json_int_t)m->cached, "failed", (json_int_t)m->failed,
				      "warnings", (json_int_t)m->warnings, "log_bytes",
				      (json_int_t)(m->log_bytes > (uint64_t)INT64_MAX
							   ? INT64_MAX : m->log_bytes)));
	json_object_set_new(r, "vertices", arr);

	char *path = kiln__xasprintf("%s/record.json", j->dir);
	char *tmp = kiln__xasprintf("%s/.record.json.tmp", j->dir);
	if (json_dump_file(r, tmp, JSON_INDENT(1) | JSON_SORT_KEYS) != 0 || rename(tmp, path) < 0) {
		broken(ls, "cannot write", path);
		unlink(tmp);
	}
	free(tmp);
	free(path);
	json_decref(r);
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
	replace_str(&j->target, kj->target);
	replace_str(&j->platform, kj->platform);
	replace_str(&j->builder, kj->builder);
	replace_str(&j->frontend, ev->u.job_started.frontend);
	replace_str(&j->backend, ev->u.job_started.backend);
	j->number = kj->number;
	if (ls->run && !j->record_id)
		j->record_id = kiln__record_id(ls->run, kj->id);
	write_record(ls, j);
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
		if (e->name && *e->name && (!v->name || strcmp(v->name, e->name) != 0)) {
			free(v->name);
			v->name = kiln__xstrdup(e->name);
		}
		if (e->started_ns && (!v->started_ns || e->started_ns < v->started_ns))
			v->started_ns = e->started_ns;
		if (e->completed_ns)
			v->completed_ns = e->completed_ns;
		v->cached = v->cached || e->cached;
		if (e->error && *e->error && !v->error)
			v->error = kiln__xstrdup(e->error);
		if (e->completed_ns)
			close_vertex(v); /* reopened should more output come */
		break;
	}
	case KILN_EVENT_VERTEX_LOG: {
		const struct kiln_event_vertex_log *e = &ev->u.log;
		if (!e->vertex || !e->data)
			break;
		struct lvtx *v = vtx_get(j, e->vertex);
		v->log_bytes += e->len;
		append_log(ls, j, v, e->data, e->len);
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
		j->finished = true;
		j->finished_ns = ev->time_ns;
		j->status = e->status;
		j->metrics = e->metrics;
		j->metrics.duration_ns = d;
		replace_str(&j->error, e->error);
		replace_str(&j->image_digest, e->image_digest);
		replace_str(&j->config_digest, e->config_digest);
		if (KILN_HAS_FIELD(ev, struct kiln_event, u.job_finished.image_layers)) {
			j->context_bytes = e->context_bytes;
			j->image_size = e->image_size;
			j->image_layers = e->image_layers;
		}
		write_record(ls, j);
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
			free(j->tab[k]->name);
			free(j->tab[k]->error);
			free(j->tab[k]);
		}
		free(j->tab);
		free(j->id);
		free(j->dir);
		free(j->history_key);
		char **strs[] = { &j->record_id, &j->target, &j->platform, &j->builder,
				  &j->frontend, &j->backend, &j->error, &j->image_digest,
				  &j->config_digest };
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			free(*strs[k]);
		free(j);
	}
	free(ls->jobs);
	if (ls->lock_fd >= 0) {
		char *path = kiln__xasprintf("%s/lock", ls->run_dir);
		unlink(path);
		free(path);
		close(ls->lock_fd);
	}
	free(ls->run_dir);
	free(ls->run);
	free(ls->name);
	free(ls->context);
	free(ls->file);
	free(ls->key);
	free(ls->state);
	free(ls);
}
