/* imageinfo.c: image size and layers from a Docker image store, and the
 * state directory's memo of them (imageinfo.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lazylib.h"
#include "imageinfo.h"
#include "logstore.h"
#include "util.h"

#define MEMO_VERSION 1

/* The memo's entry for image in memo (kiln__json_load_versioned's root). */
static bool memo_get(json_t *memo, const char *image, struct kiln_event_job_finished *e)
{
	json_t *m = json_object_get(json_object_get(memo, "images"), image);
	json_int_t size = json_integer_value(json_object_get(m, "size"));
	json_int_t layers = json_integer_value(json_object_get(m, "layers"));
	if (size <= 0 || layers <= 0 || layers > UINT32_MAX)
		return false;
	e->image_size = (int64_t)size;
	e->image_layers = (uint32_t)layers;
	return true;
}

/* Add image to memo, drop the oldest entries beyond the limit, write it
 * to path. */
static void memo_put(json_t *memo, const char *path, const char *image,
		     const struct kiln_event_job_finished *e)
{
	json_t *images = json_object_get(memo, "images");
	json_t *m = json_object();
	json_object_set_new(m, "size", json_integer(e->image_size));
	json_object_set_new(m, "layers", json_integer(e->image_layers));
	json_object_set_new(m, "added_ns", json_integer(kiln__now_ns()));
	json_object_set_new(images, image, m);
	kiln__json_keep_newest(images, "added_ns", KILN_IMAGE_INFO_KEEP);
	if (kiln__json_write_atomic(memo, path) < 0)
		kiln__log(KILN_LOG_DEBUG, "cannot write %s: %s", path, strerror(errno));
}

#define INSPECT_MS 3000L
#define INSPECT_MAX (4u << 20) /* bytes of answer we read at most */

static size_t body_cb(char *data, size_t size, size_t n, void *ud)
{
	struct kiln_sb *sb = ud;
	if (sb->len + size * n > INSPECT_MAX)
		return 0;
	kiln__sb_add(sb, data, size * n);
	return size * n;
}

/* The unix socket of a Docker Engine API behind (backend, addr), or NULL. */
static const char *store_socket(const char *backend, const char *addr)
{
	if (!backend || !addr)
		return NULL;
	if (strcmp(backend, "buildkit") == 0 && strncmp(addr, "docker-unix://", 14) == 0)
		return addr + 14;
	if (strcmp(backend, "docker") == 0 && strncmp(addr, "unix://", 7) == 0)
		return addr + 7;
	return NULL;
}

/* An image ID or digest is "sha256:" and hex: nothing to escape. */
static bool plain_ref(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || *s == ':'))
			return false;
	return true;
}

void kiln__image_info_fill(const char *backend, const char *addr,
			   struct kiln_event_job_finished *e)
{
	const char *sock = store_socket(backend, addr);
	const char *image = e->config_digest ? e->config_digest : e->image_digest;
	if (!sock || !image || !plain_ref(image))
		return;
	char *state = kiln__state_dir();
	char *memo_path = state ? kiln__xasprintf("%s/images.json", state) : NULL;
	free(state);
	json_t *memo = kiln__json_load_versioned(memo_path, MEMO_VERSION, "images");
	CURL *c = NULL;
	if (memo_get(memo, image, e) || !(c = curl_easy_init())) {
		json_decref(memo);
		free(memo_path);
		return;
	}
	struct kiln_sb body = KILN_SB_INIT;
	char *url = kiln__xasprintf("http://docker/images/%s/json", image);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, INSPECT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	free(url);
	if (status == 200) {
		json_t *root = json_loadb(kiln__sb_str(&body), body.len, 0, NULL);
		json_t *size = json_object_get(root, "Size");
		json_t *layers = json_object_get(json_object_get(root, "RootFS"), "Layers");
		if (json_is_integer(size) && json_integer_value(size) > 0)
			e->image_size = (int64_t)json_integer_value(size);
		if (json_is_array(layers))
			e->image_layers = (uint32_t)json_array_size(layers);
		json_decref(root);
		if (memo_path && e->image_size > 0 && e->image_layers > 0)
			memo_put(memo, memo_path, image, e);
	} else {
		kiln__log(KILN_LOG_DEBUG, "image %s: no size from %s (HTTP %ld)", image, sock,
			  status);
	}
	kiln__sb_release(&body);
	json_decref(memo);
	free(memo_path);
}
