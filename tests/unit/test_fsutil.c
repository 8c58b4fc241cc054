// SOURCES: plugins/backend-buildkit/fsutil.c plugins/backend-buildkit/rpc.c
// PKGS: grpc
/* Unit tests of the buildkit backend's file transfers (plugins/backend-
 * buildkit/fsutil.c, BUILDKIT-WIRE.md section 8), driven through in-memory
 * pipes with the test playing the daemon: the FileSync sender's walk
 * (order, IDs, modes, hard links, include/exclude/followpaths), its REQ ->
 * DATA answers, the FileSend receivers (a round trip from the sender into
 * the receiver, and what a hostile daemon may try), and export
 * prepare/commit/abort. Uses the real host table (patterns from
 * core/ignore.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/backend-buildkit/fsutil.h"
#include "../../plugins/backend-buildkit/session.h"
#include "control.pb-c.h"
#include "fsutil.pb-c.h"

#include "loader.h"

static const struct kiln_host *H = &kiln__host;

#define GO_DIR BUILDKIT_GO_DIR
#define GO_LNK BUILDKIT_GO_SYMLINK
#define TIMEOUT_MS 20000

/* ---- the call's metadata: a test double of session.c's ------------------ */

struct buildkit_scall {
	const char *const *md; /* key, value, key, value, …, NULL */
};

size_t buildkit_scall_md(const struct buildkit_scall *c, const char *key, const char **vals,
			 size_t max)
{
	size_t n = 0;
	for (const char *const *p = c->md; p && p[0]; p += 2)
		if (strcmp(p[0], key) == 0) {
			if (n < max)
				vals[n] = p[1];
			n++;
		}
	return n;
}

/* ---- in-memory message channels and pipes ------------------------------------ */

struct msg {
	uint8_t *d;
	size_t len;
};

struct chan {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct msg *q;
	size_t head, n, cap;
	bool closed; /* the writer half-closed */
	bool broken; /* the call is gone */
};

static void chan_init(struct chan *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
}

static void chan_destroy(struct chan *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->q[c->head + i].d);
	free(c->q);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

static void chan_put(struct chan *c, const void *d, size_t len)
{
	pthread_mutex_lock(&c->mu);
	if (c->head + c->n == c->cap) {
		if (c->head) {
			memmove(c->q, c->q + c->head, c->n * sizeof(*c->q));
			c->head = 0;
		} else {
			c->cap = c->cap ? c->cap * 2 : 64;
			c->q = realloc(c->q, c->cap * sizeof(*c->q));
		}
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (len)
		memcpy(copy, d, len);
	c->q[c->head + c->n++] = (struct msg){ copy, len };
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void chan_set(struct chan *c, bool closed, bool broken)
{
	pthread_mutex_lock(&c->mu);
	c->closed |= closed;
	c->broken |= broken;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* 1 and a message (free it), 0 half-closed, -1 broken, -2 timed out. */
static int chan_get(struct chan *c, uint8_t **d, size_t *len, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	pthread_mutex_lock(&c->mu);
	int rc = 0;
	while (!c->n && !c->closed && !c->broken && rc == 0)
		rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
	if (c->broken) {
		rc = -1;
	} else if (c->n) {
		*d = c->q[c->head].d;
		*len = c->q[c->head].len;
		c->head++;
		c->n--;
		rc = 1;
	} else {
		rc = c->closed ? 0 : -2;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* One side of a call: reads in, writes out. */
struct end {
	struct chan *in, *out;
	uint8_t *last;
};

static int end_recv(void *ctx, const uint8_t **data, size_t *len)
{
	struct end *e = ctx;
	free(e->last);
	e->last = NULL;
	uint8_t *d;
	size_t l;
	int rc = chan_get(e->in, &d, &l, TIMEOUT_MS);
	if (rc == 1) {
		e->last = d;
		*data = d;
		*len = l;
	}
	return rc < -1 ? -1 : rc;
}

static int end_send(void *ctx, const void *data, size_t len)
{
	struct end *e = ctx;
	assert_true(len <= BUILDKIT_MAX_SEND);
	pthread_mutex_lock(&e->out->mu);
	bool gone = e->out->broken;
	pthread_mutex_unlock(&e->out->mu);
	if (gone)
		return -1;
	chan_put(e->out, data, len);
	return 0;
}

/* A handler running on a thread of its own, as session.c runs it. */
struct call {
	pthread_t th;
	buildkit_handler_fn *fn;
	struct buildkit_session *s;
	struct buildkit_scall scall;
	struct chan in, out; /* in: to the handler; out: from it */
	struct end end;
	struct buildkit_pipe pipe;
	grpc_status_code code;
	char details[512];
};

static void *call_main(void *arg)
{
	struct call *c = arg;
	c->code = c->fn(c->s, &c->scall, &c->pipe, c->details, sizeof(c->details));
	free(c->end.last);
	c->end.last = NULL;
	return NULL;
}

/* Start fn; in/out are the call's own channels unless given (to connect
 * two handlers). */
static void call_start(struct call *c, buildkit_handler_fn *fn, struct buildkit_session *s,
		       const char *const *md, struct chan *in, struct chan *out)
{
	memset(c, 0, sizeof(*c));
	c->fn = fn;
	c->s = s;
	c->scall.md = md;
	chan_init(&c->in);
	chan_init(&c->out);
	c->end = (struct end){ in ? in : &c->in, out ? out : &c->out, NULL };
	c->pipe = (struct buildkit_pipe){ &c->end, end_recv, end_send };
	assert_int_equal(pthread_create(&c->th, NULL, call_main, c), 0);
}

static void call_join(struct call *c)
{
	pthread_join(c->th, NULL);
	chan_destroy(&c->in);
	chan_destroy(&c->out);
}

/* The daemon's side: the next message from the handler, decoded. */
static Fsutil__Types__Packet *daemon_recv(struct call *c)
{
	uint8_t *d;
	size_t len;
	int rc = chan_get(&c->out, &d, &len, TIMEOUT_MS);
	if (rc != 1)
		fail_msg("no packet from the handler (%d)", rc);
	Fsutil__Types__Packet *p = fsutil__types__packet__unpack(NULL, len, d);
	assert_non_null(p);
	if (p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT && !p->stat)
		assert_int_equal(len, 0); /* the end marker is a zero-length message */
	free(d);
	return p;
}

static void daemon_send(struct call *c, Fsutil__Types__PacketType type, uint32_t id,
			const Fsutil__Types__Stat *st, const void *data, size_t len)
{
	Fsutil__Types__Packet p = FSUTIL__TYPES__PACKET__INIT;
	p.type = type;
	p.id = id;
	p.stat = (Fsutil__Types__Stat *)st;
	p.data.data = (uint8_t *)data;
	p.data.len = len;
	uint8_t buf[4096];
	size_t n = fsutil__types__packet__get_packed_size(&p);
	assert_true(n <= sizeof(buf));
	fsutil__types__packet__pack(&p, buf);
	chan_put(&c->in, buf, n);
}

/* ---- files -------------------------------------------------------------------- */

static char *tmpdir_new(void)
{
	char *t = strdup("/tmp/kiln-test-fsutil-XXXXXX");
	assert_non_null(mkdtemp(t));
	return t;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		chmod(p, 0700);
	return remove(p);
}

static void rm_tree(char *dir)
{
	if (!dir)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static char *pjoin(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* Set path's mtime (ns), not following a symlink. */
static void set_mtime(const char *root, const char *rel, int64_t ns)
{
	char *p = pjoin(root, rel);
	struct timespec ts[2] = { { ns / 1000000000, ns % 1000000000 },
				  { ns / 1000000000, ns % 1000000000 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

static void mk_dir(const char *root, const char *rel, mode_t mode)
{
	char *p = pjoin(root, rel);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void mk_file(const char *root, const char *rel, const void *data, size_t len, mode_t mode)
{
	char *p = pjoin(root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	free(p);
}

static void mk_text(const char *root, const char *rel, const char *text)
{
	mk_file(root, rel, text, strlen(text), 0644);
}

static void mk_link(const char *root, const char *rel, const char *target)
{
	char *p = pjoin(root, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

static void mk_hardlink(const char *root, const char *from, const char *to)
{
	char *a = pjoin(root, from), *b = pjoin(root, to);
	assert_int_equal(link(a, b), 0);
	free(a);
	free(b);
}

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len == cap)
			buf = realloc(buf, cap = cap ? cap * 2 : 4096);
		size_t n = fread(buf + *len, 1, cap - *len, f);
		if (n == 0)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- FileSync: a daemon that takes everything ------------------------------------ */

#define MAX_ENTRIES 512

struct got {
	struct {
		char *path, *linkname;
		uint32_t mode, uid, gid;
		int64_t size, mtime, devmajor, devminor;
	} st[MAX_ENTRIES];
	size_t n;
	struct {
		uint8_t *data;
		size_t len, chunks, max_chunk;
		bool requested, done;
	} file[MAX_ENTRIES];
	bool got_err;
	char err[512];
	grpc_status_code code;
	char details[512];
};

enum req_when { REQ_AT_STAT, REQ_AT_END, REQ_NONE };

static void got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->st[i].path);
		free(g->st[i].linkname);
		free(g->file[i].data);
	}
	free(g);
}

static void request(struct call *c, struct got *g, uint32_t id)
{
	g->file[id].requested = true;
	daemon_send(c, FSUTIL__TYPES__PACKET_TYPE__PACKET_REQ, id, NULL, NULL, 0);
}

/* Serve dir as "context" with metadata md (pairs); the daemon asks for
 * every data-bearing entry without a link name, when told. */
static struct got *sync_dir(const char *dir, const char *const *md, enum req_when when)
{
	struct got *g = calloc(1, sizeof(*g));
	struct kiln_kv dirs[] = { { "context", dir }, { "dockerfile", "/nonexistent" } };
	struct buildkit_session s = { .host = H, .dirs = dirs, .n_dirs = 2 };
	const char *base_md[] = { "dir-name", "context", NULL };
	struct call c;
	call_start(&c, buildkit_filesync_diffcopy, &s, md ? md : base_md, NULL, NULL);
	size_t outstanding = 0;
	bool end = false;
	for (;;) {
		if (end && outstanding == 0) {
			daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_FIN, 0, NULL, NULL, 0);
			Fsutil__Types__Packet *p = daemon_recv(&c);
			assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_FIN);
			fsutil__types__packet__free_unpacked(p, NULL);
			break;
		}
		Fsutil__Types__Packet *p = daemon_recv(&c);
		if (p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR) {
			g->got_err = true;
			snprintf(g->err, sizeof(g->err), "%.*s", (int)p->data.len, p->data.data);
			fsutil__types__packet__free_unpacked(p, NULL);
			chan_set(&c.in, false, true); /* the daemon cancels */
			break;
		}
		if (p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT && !p->stat) {
			assert_false(end);
			end = true;
			if (when == REQ_AT_END)
				for (size_t i = 0; i < g->n; i++)
					if (buildkit_go_has_data(g->st[i].mode) &&
					    !g->st[i].linkname[0]) {
						request(&c, g, (uint32_t)i);
						outstanding++;
					}
		} else if (p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT) {
			assert_false(end);
			assert_int_equal(p->id, 0); /* IDs are implicit */
			assert_true(g->n < MAX_ENTRIES);
			size_t i = g->n++;
			g->st[i].path = strdup(p->stat->path);
			g->st[i].linkname = strdup(p->stat->linkname);
			g->st[i].mode = p->stat->mode;
			g->st[i].uid = p->stat->uid;
			g->st[i].gid = p->stat->gid;
			g->st[i].size = p->stat->size;
			g->st[i].mtime = p->stat->modtime;
			g->st[i].devmajor = p->stat->devmajor;
			g->st[i].devminor = p->stat->devminor;
			if (when == REQ_AT_STAT && buildkit_go_has_data(p->stat->mode) &&
			    !p->stat->linkname[0]) {
				request(&c, g, (uint32_t)i);
				outstanding++;
			}
		} else if (p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA) {
			assert_true(p->id < g->n);
			assert_true(g->file[p->id].requested);
			assert_false(g->file[p->id].done);
			if (p->data.len == 0) {
				g->file[p->id].done = true;
				outstanding--;
			} else {
				size_t old = g->file[p->id].len;
				g->file[p->id].data = realloc(g->file[p->id].data, old + p->data.len);
				memcpy(g->file[p->id].data + old, p->data.data, p->data.len);
				g->file[p->id].len += p->data.len;
				g->file[p->id].chunks++;
				if (p->data.len > g->file[p->id].max_chunk)
					g->file[p->id].max_chunk = p->data.len;
			}
		} else {
			fail_msg("unexpected packet type %d", p->type);
		}
		fsutil__types__packet__free_unpacked(p, NULL);
	}
	call_join(&c);
	g->code = c.code;
	snprintf(g->details, sizeof(g->details), "%s", c.details);
	return g;
}

static void expect_paths(const struct got *g, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	char all[4096] = "";
	for (size_t i = 0; i < g->n; i++) {
		size_t l = strlen(all);
		snprintf(all + l, sizeof(all) - l, "%s%s", i ? ", " : "", g->st[i].path);
	}
	if (g->n != n)
		fail_msg("got %zu entries (%s), want %zu", g->n, all, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(g->st[i].path, want[i]) != 0)
			fail_msg("entry %zu is %s, want %s (all: %s)", i, g->st[i].path, want[i], all);
}

static size_t find(const struct got *g, const char *path)
{
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->st[i].path, path) == 0)
			return i;
	fail_msg("%s was not sent", path);
	return 0;
}

/* ---- sender: order, IDs, stats ---------------------------------------------------- */

static void stat_order_is_fsutils(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	mk_dir(root, "a", 0755);
	mk_text(root, "a/x", "x");
	mk_text(root, "a b", "ab");
	mk_text(root, "a.txt", "txt");
	mk_text(root, "B", "B");
	mk_text(root, "_", "_");
	mk_dir(root, "a/y", 0755);
	mk_text(root, "a/y/z", "");
	set_mtime(root, "a.txt", 1600000000123456789LL);
	struct got *g = sync_dir(root, NULL, REQ_AT_STAT);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	/* '/' sorts below every other byte: a/… comes before "a b" */
	const char *want[] = { "B", "_", "a", "a/x", "a/y", "a/y/z", "a b", "a.txt", NULL };
	expect_paths(g, want);
	for (size_t i = 0; i < g->n; i++) {
		assert_int_equal(g->st[i].uid, 0);
		assert_int_equal(g->st[i].gid, 0);
	}
	size_t t = find(g, "a.txt");
	assert_int_equal(g->st[t].mtime, 1600000000123456789LL);
	assert_int_equal(g->st[t].size, 3);
	assert_int_equal(g->st[find(g, "a")].size, 0);
	/* IDs are the STAT indexes: the data of ID 7 is a.txt's */
	assert_int_equal(t, 7);
	assert_int_equal(g->file[7].len, 3);
	assert_memory_equal(g->file[7].data, "txt", 3);
	assert_memory_equal(g->file[find(g, "a b")].data, "ab", 2);
	got_free(g);
	rm_tree(root);
}

static void modes_use_go_bits(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	mk_dir(root, "d", 0755);
	mk_dir(root, "sticky", 01777);
	mk_dir(root, "sgid", 02775);
	mk_file(root, "exe", "#!", 2, 0755);
	mk_file(root, "suid", "s", 1, 04755);
	mk_file(root, "ro", "r", 1, 0400);
	mk_link(root, "lnk", "d/target-that-does-not-exist");
	char *fifo = pjoin(root, "fifo");
	assert_int_equal(mkfifo(fifo, 0640), 0);
	/* a socket is left out */
	char *sock = pjoin(root, "sock");
	int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	assert_int_equal(bind(sfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct got *g = sync_dir(root, NULL, REQ_AT_STAT);
	close(sfd);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	const char *want[] = { "d", "exe", "fifo", "lnk", "ro", "sgid", "sticky", "suid", NULL };
	expect_paths(g, want);
	assert_int_equal(g->st[find(g, "d")].mode, GO_DIR | 0755);
	assert_int_equal(g->st[find(g, "sticky")].mode, GO_DIR | BUILDKIT_GO_STICKY | 0777);
	assert_int_equal(g->st[find(g, "sgid")].mode, GO_DIR | BUILDKIT_GO_SETGID | 0775);
	assert_int_equal(g->st[find(g, "exe")].mode, 0755);
	assert_int_equal(g->st[find(g, "suid")].mode, BUILDKIT_GO_SETUID | 0755);
	assert_int_equal(g->st[find(g, "ro")].mode, 0400);
	assert_int_equal(g->st[find(g, "fifo")].mode, BUILDKIT_GO_NAMEDPIPE | 0640);
	size_t l = find(g, "lnk");
	assert_int_equal(g->st[l].mode, GO_LNK | 0777);
	assert_string_equal(g->st[l].linkname, "d/target-that-does-not-exist");
	assert_int_equal(g->st[l].size, strlen("d/target-that-does-not-exist"));
	assert_false(g->file[l].requested);
	assert_false(g->file[find(g, "fifo")].requested);
	got_free(g);
	free(fifo);
	free(sock);
	rm_tree(root);
}

static void mode_conversions(void **state)
{
	(void)state;
	const struct {
		mode_t posix;
		uint32_t go;
	} cases[] = {
		{ S_IFREG | 0644, 0644 },
		{ S_IFREG | 04755, BUILDKIT_GO_SETUID | 0755 },
		{ S_IFREG | 02755, BUILDKIT_GO_SETGID | 0755 },
		{ S_IFDIR | 01777, GO_DIR | BUILDKIT_GO_STICKY | 0777 },
		{ S_IFLNK | 0777, GO_LNK | 0777 },
		{ S_IFBLK | 0660, BUILDKIT_GO_DEVICE | 0660 },
		{ S_IFCHR | 0666, BUILDKIT_GO_DEVICE | BUILDKIT_GO_CHARDEVICE | 0666 },
		{ S_IFIFO | 0600, BUILDKIT_GO_NAMEDPIPE | 0600 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(buildkit_go_mode(cases[i].posix), cases[i].go);
		assert_int_equal(buildkit_posix_mode(cases[i].go), cases[i].posix);
	}
	/* a socket looks like a regular file, as fsutil sends it */
	assert_int_equal(buildkit_go_mode(S_IFSOCK | 0755), 0755);
	assert_true(buildkit_go_has_data(0644 | BUILDKIT_GO_SETUID));
	assert_false(buildkit_go_has_data(GO_DIR | 0755));
	assert_false(buildkit_go_has_data(BUILDKIT_GO_IRREGULAR));
}

static void hard_links_name_the_first_path_sent(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	mk_text(root, "b1", "hello");
	mk_hardlink(root, "b1", "b2");
	mk_dir(root, "sub", 0755);
	mk_hardlink(root, "b1", "sub/b3");
	mk_text(root, "x1", "excluded first");
	mk_hardlink(root, "x1", "x2");
	const char *md[] = { "dir-name", "context", "exclude-patterns", "x1", NULL };
	struct got *g = sync_dir(root, md, REQ_AT_STAT);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	const char *want[] = { "b1", "b2", "sub", "sub/b3", "x2", NULL };
	expect_paths(g, want);
	assert_string_equal(g->st[0].linkname, "");
	assert_string_equal(g->st[1].linkname, "b1");
	assert_string_equal(g->st[3].linkname, "b1");
	/* a regular-file mode and the real size, as fsutil's mkstat sends */
	assert_int_equal(g->st[1].mode, 0644);
	assert_int_equal(g->st[1].size, 5);
	/* x1 was not sent, so x2 is the first path of its inode */
	assert_string_equal(g->st[4].linkname, "");
	assert_int_equal(g->file[4].len, strlen("excluded first"));
	got_free(g);
	rm_tree(root);
}

static void empty_dirs_and_empty_root(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	struct got *g = sync_dir(root, NULL, REQ_AT_STAT);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	assert_int_equal(g->n, 0); /* only the end marker came */
	got_free(g);
	mk_dir(root, "e", 0755);
	mk_dir(root, "e/f", 0700);
	g = sync_dir(root, NULL, REQ_AT_STAT);
	const char *want[] = { "e", "e/f", NULL };
	expect_paths(g, want);
	assert_int_equal(g->st[1].mode, GO_DIR | 0700);
	got_free(g);
	rm_tree(root);
}

/* ---- sender: filters --------------------------------------------------------------- */

static char *filter_tree(void)
{
	char *root = tmpdir_new();
	mk_text(root, "Dockerfile", "FROM x");
	mk_text(root, "a.go", "package a");
	mk_text(root, "app.log", "log");
	mk_dir(root, "build", 0755);
	mk_text(root, "build/keep.txt", "keep");
	mk_text(root, "build/junk.o", "junk");
	mk_dir(root, "node_modules", 0755);
	mk_dir(root, "node_modules/m", 0755);
	mk_text(root, "node_modules/m/i.js", "js");
	mk_dir(root, "src", 0755);
	mk_dir(root, "src/app", 0755);
	mk_text(root, "src/app/main.c", "int main;");
	mk_text(root, "src/app/x.tmp", "tmp");
	mk_dir(root, "src/lib", 0755);
	mk_text(root, "src/lib/lib.c", "lib");
	mk_text(root, "src/lib/lib.go", "package lib");
	return root;
}

static struct got *sync_md(const char *root, const char *k1, const char *v1, const char *k2,
			   const char *v2, const char *k3, const char *v3)
{
	const char *md[] = { "dir-name", "context", k1, v1, k2, v2, k3, v3, NULL };
	return sync_dir(root, md, REQ_AT_END);
}

static void exclude_without_exceptions(void **state)
{
	(void)state;
	char *root = filter_tree();
	struct got *g = sync_md(root, "exclude-patterns", "node_modules", "exclude-patterns",
				"*.log", "exclude-patterns", "src/**/*.tmp");
	assert_int_equal(g->code, GRPC_STATUS_OK);
	const char *want[] = { "Dockerfile", "a.go", "build", "build/junk.o", "build/keep.txt",
			       "src", "src/app", "src/app/main.c", "src/lib", "src/lib/lib.c",
			       "src/lib/lib.go", NULL };
	expect_paths(g, want);
	got_free(g);
	rm_tree(root);
}

static void exclude_with_exceptions(void **state)
{
	(void)state;
	char *root = filter_tree();
	/* build is excluded, but an exception below it keeps build/keep.txt,
	 * and build is then sent (late) as its parent */
	struct got *g = sync_md(root, "exclude-patterns", "build", "exclude-patterns",
				"!build/keep.txt", "exclude-patterns", "node_modules");
	const char *want[] = { "Dockerfile", "a.go", "app.log", "build", "build/keep.txt", "src",
			       "src/app", "src/app/main.c", "src/app/x.tmp", "src/lib",
			       "src/lib/lib.c", "src/lib/lib.go", NULL };
	expect_paths(g, want);
	assert_int_equal(g->st[3].mode, GO_DIR | 0755);
	got_free(g);
	/* everything but one file: its parents come with it */
	g = sync_md(root, "exclude-patterns", "*", "exclude-patterns", "!src/lib/lib.c", NULL, NULL);
	const char *want2[] = { "src", "src/lib", "src/lib/lib.c", NULL };
	expect_paths(g, want2);
	got_free(g);
	/* a wildcard exception: every directory is walked */
	g = sync_md(root, "exclude-patterns", "src", "exclude-patterns", "!**/*.go", NULL, NULL);
	const char *want3[] = { "Dockerfile", "a.go", "app.log", "build", "build/junk.o",
				"build/keep.txt", "node_modules", "node_modules/m",
				"node_modules/m/i.js", "src", "src/lib", "src/lib/lib.go", NULL };
	expect_paths(g, want3);
	got_free(g);
	rm_tree(root);
}

static void include_patterns(void **state)
{
	(void)state;
	char *root = filter_tree();
	/* a path: its parents are sent late, its contents whole */
	struct got *g = sync_md(root, "include-patterns", "src/app", NULL, NULL, NULL, NULL);
	const char *want[] = { "src", "src/app", "src/app/main.c", "src/app/x.tmp", NULL };
	expect_paths(g, want);
	got_free(g);
	/* a deeper prefix is walked into */
	g = sync_md(root, "include-patterns", "src/lib/lib.go", "include-patterns", "Dockerfile",
		    NULL, NULL);
	const char *want2[] = { "Dockerfile", "src", "src/lib", "src/lib/lib.go", NULL };
	expect_paths(g, want2);
	got_free(g);
	/* wildcards: "*.go" matches top-level files only; the .c pattern walks src */
	g = sync_md(root, "include-patterns", "*.go", "include-patterns", "src/*/*.c",
		    "exclude-patterns", "src/lib");
	const char *want3[] = { "a.go", "src", "src/app", "src/app/main.c", NULL };
	expect_paths(g, want3);
	got_free(g);
	/* include and exclude */
	g = sync_md(root, "include-patterns", "src", "exclude-patterns", "**/*.tmp",
		    "exclude-patterns", "src/lib");
	const char *want4[] = { "src", "src/app", "src/app/main.c", NULL };
	expect_paths(g, want4);
	got_free(g);
	rm_tree(root);
}

static void bad_patterns_fail_the_walk(void **state)
{
	(void)state;
	char *root = filter_tree();
	struct got *g = sync_md(root, "exclude-patterns", "[a-", NULL, NULL, NULL, NULL);
	assert_true(g->got_err);
	assert_non_null(strstr(g->err, "[a-"));
	assert_int_not_equal(g->code, GRPC_STATUS_OK);
	assert_int_equal(g->n, 0);
	got_free(g);
	rm_tree(root);
}

static void followpaths_resolve_symlinks(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	mk_text(root, "Dockerfile", "FROM x");
	mk_link(root, "lnk", "dir");
	mk_dir(root, "dir", 0755);
	mk_text(root, "dir/file", "f");
	mk_text(root, "dir/other", "o");
	mk_link(root, "abs", "/dir2"); /* absolute: relative to the root */
	mk_dir(root, "dir2", 0755);
	mk_text(root, "dir2/y", "y");
	mk_link(root, "out", "../../etc"); /* stays inside: ".." stops at the root */
	const char *md[] = { "dir-name", "context", "followpaths", "lnk/file", "followpaths", "abs",
			     "followpaths", "out/passwd", NULL };
	struct got *g = sync_dir(root, md, REQ_AT_STAT);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	const char *want[] = { "abs", "dir", "dir/file", "dir2", "dir2/y", "lnk", "out", NULL };
	expect_paths(g, want);
	assert_int_equal(g->st[find(g, "lnk")].mode, GO_LNK | 0777);
	assert_int_equal(g->st[find(g, "dir")].mode, GO_DIR | 0755);
	got_free(g);

	/* a wildcard in the last component */
	const char *md2[] = { "dir-name", "context", "followpaths", "l*", NULL };
	g = sync_dir(root, md2, REQ_AT_STAT);
	const char *want2[] = { "dir", "dir/file", "dir/other", "lnk", NULL };
	expect_paths(g, want2);
	got_free(g);

	/* "." means no filter */
	const char *md3[] = { "dir-name", "context", "followpaths", "Dockerfile", "followpaths", ".",
			      NULL };
	g = sync_dir(root, md3, REQ_AT_STAT);
	assert_int_equal(g->n, 9);
	got_free(g);

	/* "." among the include patterns, once followpaths are added: fsutil
	 * then drops the include filter altogether */
	const char *md5[] = { "dir-name", "context", "include-patterns", "dir",
			      "include-patterns", "dir/file", "include-patterns", ".",
			      "followpaths", "lnk", NULL };
	g = sync_dir(root, md5, REQ_AT_STAT);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	assert_int_equal(g->n, 9);
	got_free(g);

	/* a followpath that leaves the directory is refused */
	const char *md4[] = { "dir-name", "context", "followpaths", "../x", NULL };
	g = sync_dir(root, md4, REQ_AT_STAT);
	assert_true(g->got_err);
	assert_non_null(strstr(g->err, "leaves the directory"));
	assert_int_not_equal(g->code, GRPC_STATUS_OK);
	got_free(g);
	rm_tree(root);
}

static void unknown_dir_is_not_found(void **state)
{
	(void)state;
	struct kiln_kv dirs[] = { { "context", "/tmp" } };
	struct buildkit_session s = { .host = H, .dirs = dirs, .n_dirs = 1 };
	const char *md[] = { "dir-name", "secret-stuff", NULL };
	struct call c;
	call_start(&c, buildkit_filesync_diffcopy, &s, md, NULL, NULL);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_NOT_FOUND);
	assert_non_null(strstr(c.details, "secret-stuff"));
	const char *none[] = { NULL };
	call_start(&c, buildkit_filesync_diffcopy, &s, none, NULL, NULL);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_NOT_FOUND);
}

/* ---- sender: data ---------------------------------------------------------------------- */

static void data_comes_in_chunks_then_a_terminator(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	size_t big = 2 * BUILDKIT_FSUTIL_CHUNK + BUILDKIT_FSUTIL_CHUNK / 2 + 17;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 11));
	mk_file(root, "big", data, big, 0644);
	mk_file(root, "empty", "", 0, 0644);
	struct got *g = sync_dir(root, NULL, REQ_AT_END);
	assert_int_equal(g->code, GRPC_STATUS_OK);
	assert_int_equal(g->file[0].len, big);
	assert_memory_equal(g->file[0].data, data, big);
	assert_int_equal(g->file[0].chunks, 3);
	assert_int_equal(g->file[0].max_chunk, BUILDKIT_FSUTIL_CHUNK);
	assert_true(g->file[1].done);
	assert_int_equal(g->file[1].chunks, 0); /* only the terminator */
	got_free(g);
	free(data);
	rm_tree(root);
}

static void data_wire_shapes_and_bad_requests(void **state)
{
	(void)state;
	char *root = tmpdir_new();
	mk_text(root, "f0", "");
	mk_dir(root, "g", 0755);
	mk_text(root, "g/h", "hi");
	struct kiln_kv dirs[] = { { "context", root } };
	struct buildkit_session s = { .host = H, .dirs = dirs, .n_dirs = 1 };
	const char *md[] = { "dir-name", "context", NULL };
	struct call c;
	call_start(&c, buildkit_filesync_diffcopy, &s, md, NULL, NULL);
	/* a REQ before the end marker, as the daemon sends them */
	Fsutil__Types__Packet *p = daemon_recv(&c);
	assert_string_equal(p->stat->path, "f0");
	fsutil__types__packet__free_unpacked(p, NULL);
	static const uint8_t req0[] = { 0x08, 0x01 };
	chan_put(&c.in, req0, sizeof(req0));
	uint8_t *d;
	size_t len;
	int seen_term = 0, seen_end = 0, stats = 1;
	while (!(seen_term && seen_end)) {
		assert_int_equal(chan_get(&c.out, &d, &len, TIMEOUT_MS), 1);
		if (len == 2 && d[0] == 0x08 && d[1] == 0x02)
			seen_term = 1; /* end of file ID 0: exactly 08 02 */
		else if (len == 0)
			seen_end = 1;
		else
			stats++;
		free(d);
	}
	assert_int_equal(stats, 3);
	/* ID 2 is g/h: DATA 08 02 18 02 22 02 'h' 'i', then 08 02 18 02 */
	static const uint8_t req2[] = { 0x08, 0x01, 0x18, 0x02 };
	chan_put(&c.in, req2, sizeof(req2));
	static const uint8_t data2[] = { 0x08, 0x02, 0x18, 0x02, 0x22, 0x02, 'h', 'i' };
	static const uint8_t term2[] = { 0x08, 0x02, 0x18, 0x02 };
	assert_int_equal(chan_get(&c.out, &d, &len, TIMEOUT_MS), 1);
	assert_int_equal(len, sizeof(data2));
	assert_memory_equal(d, data2, len);
	free(d);
	assert_int_equal(chan_get(&c.out, &d, &len, TIMEOUT_MS), 1);
	assert_int_equal(len, sizeof(term2));
	assert_memory_equal(d, term2, len);
	free(d);
	/* the directory (ID 1) has no data: the call fails */
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_REQ, 1, NULL, NULL, 0);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(c.details, "invalid file id 1"));

	/* asking twice for one file fails too; ERR from the daemon aborts */
	call_start(&c, buildkit_filesync_diffcopy, &s, md, NULL, NULL);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR, 0, NULL, "disk full", 9);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_UNKNOWN);
	assert_non_null(strstr(c.details, "disk full"));
	/* the daemon going away */
	call_start(&c, buildkit_filesync_diffcopy, &s, md, NULL, NULL);
	chan_set(&c.in, false, true);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_CANCELLED);
	rm_tree(root);
}

/* ---- receiver ------------------------------------------------------------------------------ */

/* Compare two trees entry by entry (types, permissions incl. setuid/
 * setgid/sticky, sizes, bytes, link targets, mtimes, hard links). */
static const char *cmp_root_a, *cmp_root_b;

static int cmp_one(const char *pa, const struct stat *sa, int flag, struct FTW *f)
{
	(void)flag;
	(void)f;
	const char *rel = pa + strlen(cmp_root_a);
	if (!*rel)
		return 0;
	char *pb = malloc(strlen(cmp_root_b) + strlen(rel) + 1);
	snprintf(pb, strlen(cmp_root_b) + strlen(rel) + 1, "%s%s", cmp_root_b, rel);
	struct stat sb;
	if (lstat(pb, &sb) < 0)
		fail_msg("%s missing in the copy", rel);
	if ((sa->st_mode & S_IFMT) != (sb.st_mode & S_IFMT) ||
	    (sa->st_mode & 07777) != (sb.st_mode & 07777))
		fail_msg("%s: mode %o, copy %o", rel, sa->st_mode, sb.st_mode);
	if (sa->st_mtim.tv_sec != sb.st_mtim.tv_sec || sa->st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
		fail_msg("%s: mtime %ld.%09ld, copy %ld.%09ld", rel, (long)sa->st_mtim.tv_sec,
			 sa->st_mtim.tv_nsec, (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
	if (S_ISREG(sa->st_mode)) {
		size_t la, lb;
		uint8_t *da = read_all(pa, &la), *db = read_all(pb, &lb);
		assert_int_equal(la, lb);
		if (la)
			assert_memory_equal(da, db, la);
		free(da);
		free(db);
		assert_int_equal(sa->st_nlink, sb.st_nlink);
	} else if (S_ISLNK(sa->st_mode)) {
		char ta[4096], tb[4096];
		ssize_t na = readlink(pa, ta, sizeof(ta)), nb = readlink(pb, tb, sizeof(tb));
		assert_int_equal(na, nb);
		assert_memory_equal(ta, tb, (size_t)na);
	}
	free(pb);
	return 0;
}

static void trees_equal(const char *a, const char *b)
{
	cmp_root_a = a;
	cmp_root_b = b;
	assert_int_equal(nftw(a, cmp_one, 16, FTW_PHYS), 0);
	/* nothing extra in the copy */
	cmp_root_a = b;
	cmp_root_b = a;
	assert_int_equal(nftw(b, cmp_one, 16, FTW_PHYS), 0);
}

static void round_trip_reproduces_the_tree(void **state)
{
	(void)state;
	char *src = tmpdir_new(), *dst = tmpdir_new();
	size_t big = 3 * BUILDKIT_FSUTIL_CHUNK + 5;
	uint8_t *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i ^ (i >> 9));
	mk_file(src, "big.bin", data, big, 0644);
	mk_file(src, "empty", "", 0, 0600);
	mk_file(src, "run.sh", "#!/bin/sh\n", 10, 0755);
	mk_file(src, "suid", "s", 1, 04755);
	mk_file(src, "sgid", "g", 1, 02711);
	mk_dir(src, "tmp", 01777);
	mk_dir(src, "ro", 0755);
	mk_text(src, "ro/inside", "locked in");
	mk_dir(src, "ro/deeper", 0755);
	mk_text(src, "ro/deeper/leaf", "leaf");
	mk_link(src, "rel", "ro/inside");
	mk_link(src, "abs", "/etc/passwd");
	mk_link(src, "dangling", "nowhere");
	mk_hardlink(src, "run.sh", "run2.sh");
	mk_dir(src, "a", 0755);
	mk_hardlink(src, "big.bin", "a/big-link");
	char *fifo = pjoin(src, "a/fifo");
	assert_int_equal(mkfifo(fifo, 0620), 0);
	free(fifo);
	for (int i = 0; i < 150; i++) { /* more than BUILDKIT_FSUTIL_INFLIGHT files */
		char name[32], body[32];
		snprintf(name, sizeof(name), "a/f%03d", i);
		snprintf(body, sizeof(body), "file %d", i);
		mk_text(src, name, body);
		set_mtime(src, name, 1500000000000000000LL + i);
	}
	set_mtime(src, "big.bin", 1234567890987654321LL);
	set_mtime(src, "rel", 1111111111000000001LL);
	char *p = pjoin(src, "ro/deeper");
	chmod(p, 0555);
	free(p);
	p = pjoin(src, "ro");
	chmod(p, 0500);
	free(p);
	set_mtime(src, "ro/deeper", 1000000000000000001LL);
	set_mtime(src, "ro", 1000000000000000002LL);
	set_mtime(src, "a", 1000000000000000003LL);
	set_mtime(src, "tmp", 1000000000000000004LL);

	struct kiln_kv dirs[] = { { "context", src } };
	struct buildkit_session ss = { .host = H, .dirs = dirs, .n_dirs = 1 };
	struct buildkit_session rs = { .host = H };
	rs.export_.mode = BUILDKIT_EXPORT_PACKETS;
	rs.export_.tmp = dst;
	const char *md[] = { "dir-name", "context", NULL };
	/* the sender's out is the receiver's in, and back */
	struct chan fwd, back;
	chan_init(&fwd);
	chan_init(&back);
	struct call sc, rc;
	call_start(&sc, buildkit_filesync_diffcopy, &ss, md, &back, &fwd);
	call_start(&rc, buildkit_filesend_diffcopy, &rs, NULL, &fwd, &back);
	call_join(&sc);
	call_join(&rc);
	chan_destroy(&fwd);
	chan_destroy(&back);
	if (sc.code != GRPC_STATUS_OK || rc.code != GRPC_STATUS_OK)
		fail_msg("sender %d (%s), receiver %d (%s)", sc.code, sc.details, rc.code,
			 rc.details);
	assert_true(rs.export_.received);
	trees_equal(src, dst);
	struct stat a, b;
	char *pa = pjoin(dst, "big.bin"), *pb = pjoin(dst, "a/big-link");
	assert_int_equal(lstat(pa, &a), 0);
	assert_int_equal(lstat(pb, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	free(pa);
	free(pb);
	free(data);
	rm_tree(src);
	rm_tree(dst);
}

/* A receiver in dst with the test as the daemon. */
static void recv_start(struct call *c, struct buildkit_session *s, const char *dst)
{
	*s = (struct buildkit_session){ .host = H };
	s->export_.mode = BUILDKIT_EXPORT_PACKETS;
	s->export_.tmp = (char *)dst;
	call_start(c, buildkit_filesend_diffcopy, s, NULL, NULL, NULL);
}

static void send_stat(struct call *c, const char *path, uint32_t mode, const char *linkname)
{
	Fsutil__Types__Stat st = FSUTIL__TYPES__STAT__INIT;
	st.path = (char *)path;
	st.mode = mode;
	st.linkname = (char *)(linkname ? linkname : "");
	st.modtime = 1700000000000000000LL;
	daemon_send(c, FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT, 0, &st, NULL, 0);
}

/* Each of these is refused: the call fails, the daemon gets ERR, and
 * nothing is written outside dst. */
static void receiver_confines_paths(void **state)
{
	(void)state;
	char *outer = tmpdir_new();
	char *dst = pjoin(outer, "dst");
	assert_int_equal(mkdir(dst, 0700), 0);
	const struct {
		const char *path;
		uint32_t mode;
		const char *linkname;
		const char *why;
	} cases[][2] = {
		{ { "../x", 0644, NULL, "refusing path" } },
		{ { "/abs", 0644, NULL, "refusing path" } },
		{ { "a/../../x", 0644, NULL, "refusing path" } },
		{ { "./x", 0644, NULL, "refusing path" } },
		{ { "l", GO_LNK | 0777, "..", NULL }, { "l/x", 0644, NULL, "symlink" } },
		{ { "l", GO_LNK | 0777, "/", NULL }, { "l/x", GO_DIR | 0755, NULL, "symlink" } },
		{ { "h", 0644, "../outer-file", "refusing link" } },
		{ { "l", GO_LNK | 0777, "..", NULL }, { "h", 0644, "l/outer-file", "symlink" } },
	};
	char *outer_file = pjoin(outer, "outer-file");
	mk_text(outer, "outer-file", "precious");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct call c;
		struct buildkit_session s;
		recv_start(&c, &s, dst);
		for (size_t j = 0; j < 2 && cases[i][j].path; j++)
			send_stat(&c, cases[i][j].path, cases[i][j].mode, cases[i][j].linkname);
		Fsutil__Types__Packet *p = daemon_recv(&c);
		assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR);
		fsutil__types__packet__free_unpacked(p, NULL);
		chan_set(&c.in, false, true);
		call_join(&c);
		const char *why = cases[i][1].path ? cases[i][1].why : cases[i][0].why;
		if (c.code == GRPC_STATUS_OK || !strstr(c.details, why))
			fail_msg("case %zu: %d %s", i, c.code, c.details);
		assert_false(s.export_.received);
		/* nothing escaped */
		char *x = pjoin(outer, "x");
		assert_false(exists(x));
		assert_false(exists("/abs"));
		assert_false(exists("/x"));
		free(x);
		struct stat st;
		assert_int_equal(stat(outer_file, &st), 0);
		assert_int_equal(st.st_nlink, 1); /* not hard-linked into dst */
		/* empty dst for the next case */
		char *l = pjoin(dst, "l");
		unlink(l);
		free(l);
	}
	/* DATA for a file never requested */
	struct call c;
	struct buildkit_session s;
	recv_start(&c, &s, dst);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA, 3, NULL, "x", 1);
	Fsutil__Types__Packet *p = daemon_recv(&c);
	assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR);
	fsutil__types__packet__free_unpacked(p, NULL);
	call_join(&c);
	assert_non_null(strstr(c.details, "invalid file request 3"));
	free(outer_file);
	free(dst);
	rm_tree(outer);
}

static void receiver_protocol(void **state)
{
	(void)state;
	char *dst = tmpdir_new();
	struct call c;
	struct buildkit_session s;
	recv_start(&c, &s, dst);
	send_stat(&c, "d", GO_DIR | 0750, NULL);
	send_stat(&c, "d/f", BUILDKIT_GO_SETUID | 0755, NULL);
	send_stat(&c, "d/g", 0644, "d/f");
	send_stat(&c, "e", 0600, NULL);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT, 0, NULL, NULL, 0);
	/* REQs for 1 and 3 (not the hard link, not the directory) */
	Fsutil__Types__Packet *p = daemon_recv(&c);
	assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_REQ);
	assert_int_equal(p->id, 1);
	fsutil__types__packet__free_unpacked(p, NULL);
	p = daemon_recv(&c);
	assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_REQ);
	assert_int_equal(p->id, 3);
	fsutil__types__packet__free_unpacked(p, NULL);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA, 1, NULL, "#!", 2);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA, 3, NULL, NULL, 0);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA, 1, NULL, "sh", 2);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_DATA, 1, NULL, NULL, 0);
	p = daemon_recv(&c);
	assert_int_equal(p->type, FSUTIL__TYPES__PACKET_TYPE__PACKET_FIN);
	fsutil__types__packet__free_unpacked(p, NULL);
	assert_false(s.export_.received);
	daemon_send(&c, FSUTIL__TYPES__PACKET_TYPE__PACKET_FIN, 0, NULL, NULL, 0);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_OK);
	assert_true(s.export_.received);
	char *f = pjoin(dst, "d/f"), *g = pjoin(dst, "d/g"), *d = pjoin(dst, "d");
	struct stat st;
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_mode & 07777, 04755); /* setuid survives the write */
	assert_int_equal(st.st_size, 4);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mtim.tv_sec, 1700000000);
	assert_int_equal(stat(d, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1700000000); /* after its contents */
	free(f);
	free(g);
	free(d);
	rm_tree(dst);

	/* the daemon closing the stream early fails the export */
	dst = tmpdir_new();
	recv_start(&c, &s, dst);
	send_stat(&c, "x", 0644, NULL);
	chan_set(&c.in, true, false);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_ABORTED);
	assert_false(s.export_.received);
	rm_tree(dst);
}

static void raw_mode_appends_until_half_close(void **state)
{
	(void)state;
	char *dir = tmpdir_new();
	char *file = pjoin(dir, "out.tar");
	mk_file(dir, "out.tar", "", 0, 0600);
	struct buildkit_session s = { .host = H };
	s.export_.mode = BUILDKIT_EXPORT_RAW;
	s.export_.tmp = file;
	struct call c;
	call_start(&c, buildkit_filesend_diffcopy, &s, NULL, NULL, NULL);
	const char *parts[] = { "hello ", "", "tar ", "world" };
	for (size_t i = 0; i < 4; i++) {
		Moby__Buildkit__V1__BytesMessage m = MOBY__BUILDKIT__V1__BYTES_MESSAGE__INIT;
		m.data.data = (uint8_t *)parts[i];
		m.data.len = strlen(parts[i]);
		uint8_t buf[64];
		size_t n = moby__buildkit__v1__bytes_message__pack(&m, buf);
		chan_put(&c.in, buf, n);
	}
	chan_set(&c.in, true, false);
	call_join(&c);
	assert_int_equal(c.code, GRPC_STATUS_OK);
	assert_true(s.export_.received);
	size_t len;
	uint8_t *d = read_all(file, &len);
	assert_int_equal(len, strlen("hello tar world"));
	assert_memory_equal(d, "hello tar world", len);
	free(d);
	free(file);
	rm_tree(dir);
}

/* ---- exports ---------------------------------------------------------------------------- */

static struct buildkit_session export_session(enum buildkit_export_mode mode, const char *dest)
{
	struct buildkit_session s = { .host = H };
	s.export_.mode = mode;
	s.export_.dest = H->alloc(strlen(dest) + 1);
	memcpy(s.export_.dest, dest, strlen(dest) + 1);
	return s;
}

static size_t count_entries(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void export_directory_replaced_only_on_commit(void **state)
{
	(void)state;
	char *top = tmpdir_new();
	char *dest = pjoin(top, "out");
	assert_int_equal(mkdir(dest, 0751), 0);
	mk_text(dest, "old", "old");
	struct kiln_err err = { 0 };

	/* abort: dest untouched, the temp sibling gone */
	struct buildkit_session s = export_session(BUILDKIT_EXPORT_PACKETS, dest);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	assert_non_null(s.export_.tmp);
	assert_non_null(strstr(s.export_.tmp, "/.out.kiln-"));
	struct stat st;
	assert_int_equal(lstat(s.export_.tmp, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	mk_dir(s.export_.tmp, "ro", 0500); /* read-only dirs come out too */
	buildkit_export_abort(&s);
	assert_null(s.export_.tmp);
	assert_null(s.export_.dest);
	assert_int_equal(count_entries(top), 1);
	char *old = pjoin(dest, "old");
	assert_true(exists(old));

	/* commit without the daemon having sent it: refused, dest untouched */
	s = export_session(BUILDKIT_EXPORT_PACKETS, dest);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	assert_int_equal(buildkit_export_commit(&s, &err), KILN_E_PROTOCOL);
	assert_true(exists(old));
	assert_int_equal(count_entries(top), 1);

	/* commit: replaced, keeping dest's mode, nothing left beside it */
	s = export_session(BUILDKIT_EXPORT_PACKETS, dest);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	mk_text(s.export_.tmp, "new", "new");
	mk_dir(s.export_.tmp, "sub", 0555);
	s.export_.received = true;
	/* the old tree has a read-only directory to remove */
	mk_dir(dest, "locked", 0500);
	assert_int_equal(buildkit_export_commit(&s, &err), 0);
	assert_null(s.export_.tmp);
	assert_false(exists(old));
	char *nw = pjoin(dest, "new");
	assert_true(exists(nw));
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0751);
	assert_int_equal(count_entries(top), 1);
	assert_int_equal(count_entries(dest), 2);

	/* a new nested destination: parents made */
	char *nested = pjoin(top, "p/q/out");
	s = export_session(BUILDKIT_EXPORT_PACKETS, nested);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	s.export_.received = true;
	assert_int_equal(buildkit_export_commit(&s, &err), 0);
	assert_int_equal(stat(nested, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	/* destinations an export must not replace */
	char cwd[4096];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dest), 0);
	s = export_session(BUILDKIT_EXPORT_PACKETS, ".");
	assert_int_equal(buildkit_export_prepare(&s, &err), KILN_E_INVALID);
	assert_non_null(strstr(err.msg, "current directory"));
	buildkit_export_abort(&s);
	assert_int_equal(chdir(cwd), 0);
	struct kiln_kv dirs[] = { { "context", nw } };
	s = export_session(BUILDKIT_EXPORT_PACKETS, dest);
	dirs[0].value = dest;
	s.dirs = dirs;
	s.n_dirs = 1;
	assert_int_equal(buildkit_export_prepare(&s, &err), KILN_E_INVALID);
	buildkit_export_abort(&s);
	s = export_session(BUILDKIT_EXPORT_PACKETS, nw); /* a file */
	assert_int_equal(buildkit_export_prepare(&s, &err), KILN_E_INVALID);
	buildkit_export_abort(&s);
	/* safe to call with no export */
	s = (struct buildkit_session){ .host = H };
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	assert_int_equal(buildkit_export_commit(&s, &err), 0);
	buildkit_export_abort(&s);

	free(nested);
	free(nw);
	free(old);
	free(dest);
	rm_tree(top);
}

static void export_file_and_stdout(void **state)
{
	(void)state;
	char *top = tmpdir_new();
	char *dest = pjoin(top, "img.tar");
	mk_text(top, "img.tar", "old image");
	struct kiln_err err = { 0 };
	struct buildkit_session s = export_session(BUILDKIT_EXPORT_RAW, dest);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	assert_non_null(strstr(s.export_.tmp, "/.img.tar.kiln-"));
	buildkit_export_abort(&s);
	size_t len;
	uint8_t *d = read_all(dest, &len);
	assert_memory_equal(d, "old image", len);
	free(d);
	assert_int_equal(count_entries(top), 1);

	s = export_session(BUILDKIT_EXPORT_RAW, dest);
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	FILE *f = fopen(s.export_.tmp, "w");
	fputs("new image", f);
	fclose(f);
	s.export_.received = true;
	assert_int_equal(buildkit_export_commit(&s, &err), 0);
	d = read_all(dest, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(d, "new image", len);
	free(d);
	assert_int_equal(count_entries(top), 1);

	/* "-": a temp file in $TMPDIR, copied to stdout on commit */
	char *out = pjoin(top, "stdout");
	setenv("TMPDIR", top, 1);
	s = export_session(BUILDKIT_EXPORT_RAW, "-");
	assert_int_equal(buildkit_export_prepare(&s, &err), 0);
	assert_int_equal(strncmp(s.export_.tmp, top, strlen(top)), 0);
	f = fopen(s.export_.tmp, "w");
	fputs("to stdout", f);
	fclose(f);
	s.export_.received = true;
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	int rc = buildkit_export_commit(&s, &err);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	unsetenv("TMPDIR");
	assert_int_equal(rc, 0);
	d = read_all(out, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(d, "to stdout", len);
	free(d);
	assert_int_equal(count_entries(top), 2); /* img.tar, stdout */

	/* a directory is no file to replace */
	s = export_session(BUILDKIT_EXPORT_RAW, top);
	assert_int_equal(buildkit_export_prepare(&s, &err), KILN_E_INVALID);
	buildkit_export_abort(&s);
	free(out);
	free(dest);
	rm_tree(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stat_order_is_fsutils),
		cmocka_unit_test(modes_use_go_bits),
		cmocka_unit_test(mode_conversions),
		cmocka_unit_test(hard_links_name_the_first_path_sent),
		cmocka_unit_test(empty_dirs_and_empty_root),
		cmocka_unit_test(exclude_without_exceptions),
		cmocka_unit_test(exclude_with_exceptions),
		cmocka_unit_test(include_patterns),
		cmocka_unit_test(bad_patterns_fail_the_walk),
		cmocka_unit_test(followpaths_resolve_symlinks),
		cmocka_unit_test(unknown_dir_is_not_found),
		cmocka_unit_test(data_comes_in_chunks_then_a_terminator),
		cmocka_unit_test(data_wire_shapes_and_bad_requests),
		cmocka_unit_test(round_trip_reproduces_the_tree),
		cmocka_unit_test(receiver_confines_paths),
		cmocka_unit_test(receiver_protocol),
		cmocka_unit_test(raw_mode_appends_until_half_close),
		cmocka_unit_test(export_directory_replaced_only_on_commit),
		cmocka_unit_test(export_file_and_stdout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
