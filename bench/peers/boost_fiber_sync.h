/* Boost.Fiber peers of the lock, sem and pool suites (bench/peers/
 * boost_fiber_mutex.cc) as plain C calls. Every workload runs on the calling
 * thread's default (round-robin) fiber scheduler, with the same shape as the
 * ringscope side: `fibers` fibers share `total_ops` acquisitions equally,
 * and each acquisition holds across one this_fiber::yield(). Boost.Fiber has
 * no semaphore, read-write lock or pool: those peers are what a Boost.Fiber
 * user writes (a counter or a free list under fibers::mutex +
 * fibers::condition_variable). Each returns 0, or -EINVAL / -ENOMEM / -EIO
 * (the library threw). */
#ifndef RS_BENCH_PEERS_BOOST_FIBER_SYNC_H
#define RS_BENCH_PEERS_BOOST_FIBER_SYNC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* n lock+unlock of an uncontended fibers::mutex; *ns = elapsed / n. */
int rs_bench_fiber_mutex_uncontended(uint64_t n, double *ns_per_op);

/* fibers::mutex: lock; yield; unlock. *ns = elapsed / total_ops. */
int rs_bench_fiber_mutex_handoff(unsigned fibers, uint64_t total_ops, double *ns_per_op);

/* Read-mostly: `readers` fibers and one writer fiber on one fibers::mutex
 * (there is no fiber shared mutex), each acquisition holding across a yield;
 * *ops_per_s = total acquisitions / elapsed. */
int rs_bench_fiber_rw_as_mutex(unsigned readers, uint64_t total_ops, double *ops_per_s);

/* A counting semaphore of `permits` on mutex + condition_variable:
 * acquire 1; yield; release. *ns = elapsed / total_ops. */
int rs_bench_fiber_sem_handoff(unsigned fibers, unsigned permits, uint64_t total_ops, double *ns_per_op);

/* n acquire+release of the semaphore above, uncontended, in one fiber. */
int rs_bench_fiber_sem_uncontended(uint64_t n, double *ns_per_op);

/* A pool of `size` resources (a free list on mutex + condition_variable):
 * take; yield; give back. *ns = elapsed / total_ops. */
int rs_bench_fiber_pool_handoff(unsigned fibers, unsigned size, uint64_t total_ops, double *ns_per_op);

/* n take+give back of the pool above (one resource), uncontended, in one fiber. */
int rs_bench_fiber_pool_uncontended(uint64_t n, double *ns_per_op);

#ifdef __cplusplus
}
#endif

#endif
