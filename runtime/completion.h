/* A completion: what an io_uring CQE's user_data points at.
 *
 * The worker reaps CQEs and calls done(c, res, flags) on the record named by
 * user_data (0 means "nobody is interested", e.g. an ASYNC_CANCEL request).
 * Records live in the frame of the task that waits for them; done runs on the
 * worker between task switches and typically wakes that task. */
#ifndef RS_RUNTIME_COMPLETION_H
#define RS_RUNTIME_COMPLETION_H

#include <stdint.h>

typedef struct rs__completion {
    void (*done)(struct rs__completion *c, int res, uint32_t cqe_flags);
} rs__completion;

#endif
