/* graph_internal.h: the core side of kiln_host.graph_* (core/graph.c). The
 * contracts are in include/kiln/graph.h; host.c wires these into the host
 * table and tests call them through it. */
#ifndef KILN_CORE_GRAPH_INTERNAL_H
#define KILN_CORE_GRAPH_INTERNAL_H

#include <kiln/kiln.h>

kiln_graph_new_fn kiln__graph_new;
kiln_graph_free_fn kiln__graph_free;
kiln_graph_add_source_fn kiln__graph_add_source;
kiln_graph_add_exec_fn kiln__graph_add_exec;
kiln_graph_add_file_fn kiln__graph_add_file;
kiln_graph_marshal_fn kiln__graph_marshal;
kiln_graph_digest_fn kiln__graph_digest;

#endif
