/* llbjson.c: a marshalled pb.Definition as JSON, for `kiln print-llb`
 * (and `kiln build --print-llb`): every op decoded with protobuf-c's
 * descriptors (field names as in ops.proto), with its digest and its
 * metadata, in the definition's order, after the definition's digest
 * (the terminal op's, as graph_marshal gives it). Bytes
 * fields print as text when they are printable ASCII, else as base64. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "ops.pb-c.h"

#include "cli.h"
#include "util.h"

static json_t *msg_json(const ProtobufCMessage *m);

static json_t *bytes_json(const ProtobufCBinaryData *b)
{
	bool text = true;
	for (size_t i = 0; i < b->len && text; i++)
		text = b->data[i] >= 0x20 && b->data[i] < 0x7f;
	if (text)
		return json_stringn((const char *)b->data, b->len);
	size_t n = 4 * ((b->len + 2) / 3) + 1;
	char *s = kiln__xmalloc(n);
	EVP_EncodeBlock((unsigned char *)s, b->data, (int)b->len);
	json_t *j = json_pack("{s:s}", "base64", s);
	free(s);
	return j;
}

/* One value of field f at p. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: return json_integer(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: return json_integer((json_int_t) * (const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
			f->descriptor, *(const int *)p);
		return ev ? json_string(ev->name) : json_integer(*(const int *)p);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s ? json_string(s) : json_null();
	}
	case PROTOBUF_C_TYPE_BYTES: return bytes_json(p);
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
		return m ? msg_json(m) : json_null();
	}
	}
	return json_null();
}

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: return 8;
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	default: return 4;
	}
}

/* A map entry message (fields "key" and "value"). */
static bool is_map_entry(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return false;
	const ProtobufCMessageDescriptor *d = f->descriptor;
	return d->n_fields == 2 && strcmp(d->fields[0].name, "key") == 0 &&
	       strcmp(d->fields[1].name, "value") == 0 && d->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       strlen(d->name) > 5 && strcmp(d->name + strlen(d->name) - 5, "Entry") == 0;
}

static json_t *msg_json(const ProtobufCMessage *m)
{
	json_t *o = json_object();
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			if (!n)
				continue;
			const char *arr = *(const char *const *)p;
			if (is_map_entry(f)) {
				json_t *map = json_object();
				for (size_t k = 0; k < n; k++) {
					const ProtobufCMessage *e =
						((const ProtobufCMessage *const *)arr)[k];
					const ProtobufCMessageDescriptor *ed = e->descriptor;
					const char *key = *(char *const *)((const char *)e +
									   ed->fields[0].offset);
					json_object_set_new(map, key ? key : "",
							    value_json(&ed->fields[1],
								       (const char *)e +
									       ed->fields[1].offset));
				}
				json_object_set_new(o, f->name, map);
				continue;
			}
			json_t *a = json_array();
			for (size_t k = 0; k < n; k++)
				json_array_append_new(a, value_json(f, arr + k * elem_size(f->type)));
			json_object_set_new(o, f->name, a);
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) {
			if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
				continue;
		} else if (f->label == PROTOBUF_C_LABEL_NONE) {
			/* proto3: zero values are not on the wire */
			if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const void *ptr = *(const void *const *)p;
				if (!ptr || (f->type == PROTOBUF_C_TYPE_STRING &&
					     (ptr == f->default_value || !*(const char *)ptr)))
					continue;
			} else if (f->type == PROTOBUF_C_TYPE_BYTES) {
				if (!((const ProtobufCBinaryData *)p)->len)
					continue;
			} else {
				static const char zero[8];
				if (memcmp(p, zero, elem_size(f->type)) == 0)
					continue;
			}
		}
		if ((f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) &&
		    !*(const void *const *)p)
			continue;
		json_object_set_new(o, f->name, value_json(f, p));
	}
	return o;
}

int kiln__llb_print(FILE *out, const uint8_t *data, size_t len)
{
	Pb__Definition *def = pb__definition__unpack(NULL, len, data);
	if (!def)
		return -1;
	json_t *root = json_object(), *ops = json_array();
	json_object_set_new(root, "digest", json_string(""));
	for (size_t i = 0; i < def->n_def; i++) {
		char dg[72];
		kiln__sha256_digest(def->def[i].data, def->def[i].len, dg);
		json_t *o = json_object();
		json_object_set_new(o, "digest", json_string(dg));
		Pb__Op *op = pb__op__unpack(NULL, def->def[i].len, def->def[i].data);
		json_object_set_new(o, "op", op ? msg_json(&op->base) : json_null());
		if (op)
			pb__op__free_unpacked(op, NULL);
		for (size_t k = 0; k < def->n_metadata; k++)
			if (def->metadata[k]->key && strcmp(def->metadata[k]->key, dg) == 0 &&
			    def->metadata[k]->value)
				json_object_set_new(o, "metadata",
						    msg_json(&def->metadata[k]->value->base));
		json_array_append_new(ops, o);
		/* the last op is the terminal one: its digest names the definition */
		if (i + 1 == def->n_def)
			json_object_set_new(root, "digest", json_string(dg));
	}
	pb__definition__free_unpacked(def, NULL);
	json_object_set_new(root, "ops", ops);
	char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(2));
	json_decref(root);
	if (!s)
		return -1;
	fputs(s, out);
	fputc('\n', out);
	free(s);
	return 0;
}
