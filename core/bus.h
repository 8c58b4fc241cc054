/* bus.h: the event bus of one run. Fans every event out to the active
 * renderers, to extra C sinks, and to the metrics collector, which fills
 * in struct kiln_job_metrics on job.finished events. Thread-safe: emit()
 * may be called from any thread; deliveries are serialised. */
#ifndef KILN_CORE_BUS_H
#define KILN_CORE_BUS_H

#include <kiln/kiln.h>

struct kiln_bus;

typedef void (*kiln_sink_fn)(void *ctx, const struct kiln_event *ev);

struct kiln_bus *kiln__bus_new(void);
/* Open an instance of renderer vt; it receives every later event. */
int kiln__bus_add_renderer(struct kiln_bus *bus, const struct kiln_renderer *vt,
			   const struct kiln_renderer_opts *opts, struct kiln_err *err);
void kiln__bus_add_sink(struct kiln_bus *bus, kiln_sink_fn fn, void *ctx);
struct kiln_logstore;
/* Keep build records (core/logstore.h) of what the bus carries; the bus
 * owns store from now on and frees it. */
void kiln__bus_set_logstore(struct kiln_bus *bus, struct kiln_logstore *store);
/* Deliver ev (see kiln_host.emit). */
void kiln__bus_emit(struct kiln_bus *bus, const struct kiln_event *ev);
/* Metrics so far of the job with this id; zeroes if unknown. */
struct kiln_job_metrics kiln__bus_metrics(struct kiln_bus *bus, const char *job_id);
/* Close every renderer (flush, summaries). Returns the first error. */
int kiln__bus_close(struct kiln_bus *bus, struct kiln_err *err);
/* Free the bus; closes renderers first if kiln__bus_close was not called. */
void kiln__bus_free(struct kiln_bus *bus);

#endif
