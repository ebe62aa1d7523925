/* ringscope: structured concurrency and first-class locks for C services.
 *
 * Umbrella header: the runtime (tasks, scopes, cancellation), synchronization
 * (lock, semaphore, resource pool), I/O through io_uring, and lock stores.
 * Each database client has its own header (ringscope/redis.h, pg.h, mysql.h,
 * mongo.h) because it brings that client library's types.
 *
 * Conventions: functions that can fail return 0 (or a count) on success and a
 * negative errno on failure; durations are int64_t milliseconds; options are
 * passed as a pointer to a struct whose zero fields select the defaults. */
#ifndef RINGSCOPE_H
#define RINGSCOPE_H

#include <ringscope/runtime.h>
#include <ringscope/sync.h>
#include <ringscope/io.h>
#include <ringscope/store.h>

#endif
