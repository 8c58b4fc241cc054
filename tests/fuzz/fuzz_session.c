// SOURCES: plugins/backend-buildkit/fsutil.c plugins/backend-buildkit/secrets.c plugins/backend-buildkit/sshfwd.c plugins/backend-buildkit/auth.c plugins/backend-buildkit/csv.c plugins/backend-buildkit/rpc.c
// PKGS: grpc libprotobuf-c
/*
 * fuzz_session: libFuzzer target of the buildkit session's handlers
 * (plugins/backend-buildkit/{fsutil,secrets,sshfwd,auth}.c, `make
 * fuzz-session`): what a hostile daemon may send on the calls it makes to
 * kiln. The input is
 *   byte 0        the call: 0 Secrets/GetSecret, 1 Auth/Credentials,
 *                 2 SSH/CheckAgent, 3 FileSync/DiffCopy (the build context
 *                 upload), 4 FileSend/DiffCopy into a directory (a `local`
 *                 export), 5 FileSend/DiffCopy into a file (`tar`)
 *   byte 1        how many request metadata pairs follow (0-7)
 *   metadata      key and value, each a 1-byte length and its bytes
 *                 ("dir-name", "include-patterns", "followpaths", …)
 *   messages      each a 2-byte little-endian length and its bytes (a
 *                 protobuf message of the call: Packet, GetSecretRequest, …)
 * The handler runs against a fake pipe that hands it the messages and then
 * half-closes; what it sends is decoded and checked as a fsutil Packet on
 * the DiffCopy calls. The session serves a small context directory, a file
 * and an env secret, an SSH id with no agent, and a fake credential
 * lookup; exports go to a fresh temp directory, removed after each input.
 * For FileSync, the daemon's messages are held back until the sender has
 * sent its last STAT (or an error), as a daemon would, so that the run
 * does not depend on thread timing. Seeds: tests/fuzz/mkseeds.py.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/backend-buildkit/buildkit.h"
#include "../../plugins/backend-buildkit/session.h"
#include "fsutil.pb-c.h"
#include "loader.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); __builtin_trap(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* ---- the call's metadata: a double of session.c's ------------------------ */

#define MD_MAX 7
struct buildkit_scall {
	char *md[2 * MD_MAX];
	size_t n;
};

size_t buildkit_scall_md(const struct buildkit_scall *c, const char *key, const char **vals,
			 size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->md[2 * i], key) == 0) {
			if (n < max)
				vals[n] = c->md[2 * i + 1];
			n++;
		}
	return n;
}

/* ---- the fake pipe --------------------------------------------------------- */

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const uint8_t *in;
	size_t len, off;
	bool hold;       /* FileSync: wait for the sender's last STAT */
	bool stats_done;
	uint8_t *msg;    /* the message recv handed out */
};

static int fake_recv(void *ctx, const uint8_t **data, size_t *len)
{
	struct fake *f = ctx;
	pthread_mutex_lock(&f->mu);
	if (f->hold && !f->stats_done) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 2;
		while (!f->stats_done)
			if (pthread_cond_timedwait(&f->cv, &f->mu, &until) == ETIMEDOUT)
				break;
	}
	int r = 0;
	free(f->msg);
	f->msg = NULL;
	if (f->len - f->off >= 2) {
		size_t want = (size_t)f->in[f->off] | (size_t)f->in[f->off + 1] << 8;
		f->off += 2;
		size_t n = f->len - f->off < want ? f->len - f->off : want;
		/* a copy of its own, so that ASan sees reads past its end */
		f->msg = malloc(n ? n : 1);
		memcpy(f->msg, f->in + f->off, n);
		f->off += n;
		*data = f->msg;
		*len = n;
		r = 1;
	}
	pthread_mutex_unlock(&f->mu);
	return r;
}

static int fake_send(void *ctx, const void *data, size_t len)
{
	struct fake *f = ctx;
	CHECK(len <= BUILDKIT_MAX_SEND);
	if (f->hold) {
		Fsutil__Types__Packet *p = fsutil__types__packet__unpack(NULL, len, data);
		CHECK(p != NULL);
		pthread_mutex_lock(&f->mu);
		if ((p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_STAT && !p->stat) ||
		    p->type == FSUTIL__TYPES__PACKET_TYPE__PACKET_ERR) {
			f->stats_done = true;
			pthread_cond_broadcast(&f->cv);
		}
		pthread_mutex_unlock(&f->mu);
		fsutil__types__packet__free_unpacked(p, NULL);
	}
	return 0;
}

/* ---- the session ------------------------------------------------------------- */

static char dir[256], ctx_dir[300], secret_file[300], export_dir[300], export_file[300];
static struct kiln_host host;
static struct kiln_kv dirs[2];

static int fake_credentials(const char *reg, char **username, char **secret)
{
	if (strcmp(reg, "ghcr.io") != 0) {
		*username = *secret = NULL;
		return KILN_E_NOTFOUND;
	}
	*username = kiln__xstrdup("user");
	*secret = kiln__xstrdup("password");
	return 0;
}

static void quiet_log(enum kiln_log_level level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static size_t n_entries;

static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)flag;
	(void)ftw;
	n_entries++;
	return 0;
}

/* Entries in the session's directory: an export must leave none behind,
 * and never write outside its own temp directory. */
static size_t tree_count(void)
{
	n_entries = 0;
	nftw(dir, count_entry, 16, FTW_PHYS);
	return n_entries;
}

static size_t baseline;

static int put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char tmpl[] = "/tmp/kiln-fuzz-session-XXXXXX";
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	snprintf(ctx_dir, sizeof(ctx_dir), "%s/ctx", dir);
	snprintf(secret_file, sizeof(secret_file), "%s/secret.txt", dir);
	/* exports go three levels down, so that a path with ".." that
	 * escapes the export still lands where the check below sees it */
	snprintf(export_dir, sizeof(export_dir), "%s/x/y/z/out", dir);
	snprintf(export_file, sizeof(export_file), "%s/x/y/z/out.tar", dir);
	char p[512];
	snprintf(p, sizeof(p), "%s/x", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/x/y", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/x/y/z", dir);
	mkdir(p, 0755);
	mkdir(ctx_dir, 0755);
	snprintf(p, sizeof(p), "%s/sub", ctx_dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/a.txt", ctx_dir);
	put(p, "hello\n");
	snprintf(p, sizeof(p), "%s/sub/b.go", ctx_dir);
	put(p, "package b\n");
	snprintf(p, sizeof(p), "%s/Dockerfile", ctx_dir);
	put(p, "FROM scratch\nCOPY . /\n");
	snprintf(p, sizeof(p), "%s/link", ctx_dir);
	if (symlink("a.txt", p) != 0)
		return 1;
	put(secret_file, "s3cret");
	setenv("KILN_FUZZ_SECRET", "from-env", 1);
	unsetenv("SSH_AUTH_SOCK");
	dirs[0] = (struct kiln_kv){ "context", ctx_dir };
	dirs[1] = (struct kiln_kv){ "dockerfile", ctx_dir };
	host = kiln__host;
	host.registry_credentials = fake_credentials;
	host.log = quiet_log;
	baseline = tree_count();
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT) {
		/* a directory the export left without write permission */
		chmod(path, 0700);
		remove(path);
	}
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	chmod(path, 0700);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_dirs_writable(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D || flag == FTW_DP || (st && S_ISDIR(st->st_mode)))
		chmod(path, 0700);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned call = data[0] % 6;
	struct buildkit_scall c = { 0 };
	size_t off = 2, want = data[1] & 7;
	while (c.n < want && off < size) {
		char *kv[2];
		for (int k = 0; k < 2; k++) {
			size_t l = off < size ? data[off++] : 0;
			if (l > size - off)
				l = size - off;
			kv[k] = malloc(l + 1);
			memcpy(kv[k], data + off, l);
			kv[k][l] = '\0';
			off += l;
		}
		c.md[2 * c.n] = kv[0];
		c.md[2 * c.n + 1] = kv[1];
		c.n++;
	}

	struct buildkit_secret secrets[2] = {
		{ .id = "file", .src = secret_file },
		{ .id = "env", .env = "KILN_FUZZ_SECRET" },
	};
	char *sock = "/nonexistent/agent.sock";
	struct buildkit_ssh ssh = { .id = "default", .sockets = &sock, .n_sockets = 1 };
	struct buildkit_session s = {
		.host = &host, .dirs = dirs, .n_dirs = 2, .secrets = secrets, .n_secrets = 2,
		.ssh = &ssh, .n_ssh = 1,
	};
	struct fake f = { .in = data, .len = size, .off = off, .hold = call == 3 };
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cv, NULL);
	struct buildkit_pipe pipe = { .ctx = &f, .recv = fake_recv, .send = fake_send };
	char details[512] = "";
	struct kiln_err err = { 0 };
	grpc_status_code code;
	switch (call) {
	case 0:
		code = buildkit_secrets_get(&s, &c, &pipe, details, sizeof(details));
		break;
	case 1:
		code = buildkit_auth_credentials(&s, &c, &pipe, details, sizeof(details));
		break;
	case 2:
		code = buildkit_ssh_check(&s, &c, &pipe, details, sizeof(details));
		break;
	case 3:
		code = buildkit_filesync_diffcopy(&s, &c, &pipe, details, sizeof(details));
		break;
	default:
		s.export_.mode = call == 4 ? BUILDKIT_EXPORT_PACKETS : BUILDKIT_EXPORT_RAW;
		s.export_.dest = kiln__xstrdup(call == 4 ? export_dir : export_file);
		CHECK(buildkit_export_prepare(&s, &err) == 0);
		code = buildkit_filesend_diffcopy(&s, &c, &pipe, details, sizeof(details));
		/* what the export wrote stays inside its temp directory */
		if (s.export_.tmp)
			nftw(s.export_.tmp, make_dirs_writable, 16, FTW_PHYS);
		buildkit_export_abort(&s);
		CHECK(s.export_.tmp == NULL);
		rm_rf(export_dir);
		rm_rf(export_file);
		CHECK(tree_count() == baseline);
		break;
	}
	CHECK(code == GRPC_STATUS_OK || details[0]);
	CHECK(memchr(details, '\0', sizeof(details)));
	free(f.msg);
	pthread_mutex_destroy(&f.mu);
	pthread_cond_destroy(&f.cv);
	for (size_t i = 0; i < 2 * c.n; i++)
		free(c.md[i]);
	return 0;
}
