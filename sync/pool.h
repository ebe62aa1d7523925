/* What tests may tune of the resource pool (sync/pool.c). */
#ifndef RS_SYNC_POOL_H
#define RS_SYNC_POOL_H

#include <stdint.h>

/* The wait in ms before a failed background fill to min is tried again; it
 * doubles after each further failure in a row, up to 10 s. 100 by default.
 * Process-wide and read when a fill fails: a test sets it before rs_run,
 * shorter to watch the retries, or INT64_MAX (never) to keep every decision
 * of the pool free of timing. */
extern int64_t rs__pool_refill_first_ms;

#endif
