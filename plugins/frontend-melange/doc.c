/* doc.c: YAML text to a tree of struct mel_node, with line numbers, using
 * libyaml's event parser and an explicit stack (no recursion, so deep
 * nesting cannot exhaust the C stack). Aliases share the anchored node;
 * a budget on the expanded size refuses alias bombs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "melange.h"

#define MEL_YAML_DEPTH 200          /* nesting limit */
#define MEL_YAML_BUDGET 1000000u    /* nodes, counting alias expansions */

struct frame {
	struct mel_node *node;
	size_t cap;
	size_t size; /* expanded size of the subtree so far */
};

struct anchor {
	const char *name;
	struct mel_node *node;
	size_t size;
};

struct loader {
	struct mel_pool *p;
	const char *file;
	struct frame stack[MEL_YAML_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	struct mel_node *root;
	size_t root_size;
	size_t total;
};

static void push_child(struct loader *l, struct frame *f, struct mel_node *c)
{
	struct mel_node *n = f->node;
	if (n->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct mel_node **v = mel_alloc(l->p, cap * sizeof(*v));
		if (n->n)
			memcpy(v, n->v, n->n * sizeof(*v));
		n->v = v;
		f->cap = cap;
	}
	n->v[n->n++] = c;
}

static void add_anchor(struct loader *l, const unsigned char *name, struct mel_node *n,
		       size_t size)
{
	if (!name)
		return;
	if (l->n_anchors == l->cap_anchors) {
		size_t cap = l->cap_anchors ? l->cap_anchors * 2 : 8;
		struct anchor *v = mel_alloc(l->p, cap * sizeof(*v));
		if (l->n_anchors)
			memcpy(v, l->anchors, l->n_anchors * sizeof(*v));
		l->anchors = v;
		l->cap_anchors = cap;
	}
	l->anchors[l->n_anchors++] = (struct anchor){ mel_strdup(l->p, (const char *)name), n, size };
}

/* Attach a finished node (of expanded size) to its parent, or make it the root. */
static int attach(struct loader *l, struct mel_node *n, size_t size, struct mel_err *err)
{
	l->total += size;
	if (l->total > MEL_YAML_BUDGET)
		return mel_fail(err, l->file, n->line, n->column,
				"the document expands to more than %u nodes (aliases)",
				MEL_YAML_BUDGET);
	if (l->depth == 0) {
		l->root = n;
		l->root_size = size;
		return 0;
	}
	struct frame *f = &l->stack[l->depth - 1];
	struct mel_node *parent = f->node;
	if (parent->kind == MEL_MAP && parent->n % 2 == 0) {
		/* a key: a scalar, not yet present */
		if (n->kind != MEL_SCALAR)
			return mel_fail(err, l->file, n->line, n->column,
					"a mapping key must be a scalar");
		for (size_t i = 0; i < parent->n; i += 2)
			if (strcmp(parent->v[i]->str, n->str) == 0)
				return mel_fail(err, l->file, n->line, n->column,
						"mapping key \"%s\" already defined at line %d",
						n->str, parent->v[i]->line);
	}
	push_child(l, f, n);
	f->size += size;
	return 0;
}

static struct mel_node *new_node(struct loader *l, enum mel_kind kind, const yaml_mark_t *m)
{
	struct mel_node *n = mel_alloc(l->p, sizeof(*n));
	n->kind = kind;
	n->line = (int)m->line + 1;
	n->column = (int)m->column + 1;
	return n;
}

int mel_yaml_load(struct mel_pool *p, const char *file, const char *text, size_t len,
		  struct mel_node **root, struct mel_err *err)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return mel_fail(err, file, 0, 0, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	struct loader *l = mel_alloc(p, sizeof(*l));
	l->p = p;
	l->file = file;
	int rc = 0, docs = 0;
	bool done = false;
	while (!done && rc == 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = mel_fail(err, file, (int)parser.problem_mark.line + 1,
				      (int)parser.problem_mark.column + 1, "bad YAML: %s%s%s",
				      parser.problem ? parser.problem : "syntax error",
				      parser.context ? " " : "", parser.context ? parser.context : "");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1)
				rc = mel_fail(err, file, (int)ev.start_mark.line + 1, 1,
					      "bad YAML: more than one document");
			break;
		case YAML_SCALAR_EVENT: {
			struct mel_node *n = new_node(l, MEL_SCALAR, &ev.start_mark);
			if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
				rc = mel_fail(err, file, n->line, n->column, "a scalar holds a NUL byte");
				break;
			}
			n->str = mel_strndup(p, (const char *)ev.data.scalar.value,
					     ev.data.scalar.length);
			if (ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			    (!*n->str || !strcmp(n->str, "~") || !strcmp(n->str, "null") ||
			     !strcmp(n->str, "Null") || !strcmp(n->str, "NULL")))
				n->null_ = true;
			add_anchor(l, ev.data.scalar.anchor, n, 1);
			rc = attach(l, n, 1, err);
			break;
		}
		case YAML_ALIAS_EVENT: {
			const char *a = (const char *)ev.data.alias.anchor;
			struct anchor *found = NULL;
			for (size_t i = l->n_anchors; i-- > 0;)
				if (strcmp(l->anchors[i].name, a) == 0) {
					found = &l->anchors[i];
					break;
				}
			if (!found)
				rc = mel_fail(err, file, (int)ev.start_mark.line + 1,
					      (int)ev.start_mark.column + 1,
					      "bad YAML: unknown anchor \"%s\"", a);
			else
				rc = attach(l, found->node, found->size, err);
			break;
		}
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			if (l->depth >= MEL_YAML_DEPTH) {
				rc = mel_fail(err, file, (int)ev.start_mark.line + 1,
					      (int)ev.start_mark.column + 1,
					      "bad YAML: nested deeper than %d levels", MEL_YAML_DEPTH);
				break;
			}
			bool seq = ev.type == YAML_SEQUENCE_START_EVENT;
			struct mel_node *n = new_node(l, seq ? MEL_SEQ : MEL_MAP, &ev.start_mark);
			const unsigned char *anchor = seq ? ev.data.sequence_start.anchor
							  : ev.data.mapping_start.anchor;
			l->stack[l->depth++] = (struct frame){ .node = n, .size = 1 };
			/* the anchor is registered when the node is complete (an
			 * alias inside itself is unknown, so no cycles) */
			if (anchor)
				n->str = mel_strdup(p, (const char *)anchor);
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT: {
			struct frame f = l->stack[--l->depth];
			if (f.node->str) {
				add_anchor(l, (const unsigned char *)f.node->str, f.node, f.size);
				f.node->str = NULL;
			}
			rc = attach(l, f.node, f.size, err);
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc < 0)
		return rc;
	if (!l->root) {
		yaml_mark_t m = { 0 };
		l->root = new_node(l, MEL_MAP, &m);
	}
	*root = l->root;
	return 0;
}
