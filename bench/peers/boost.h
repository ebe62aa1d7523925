/* The Boost peers (C++, bench/peers/boost_*.cc) as plain C calls for the suites.
 * Each returns 0, or -ENOMEM / -EIO when the library threw. */
#ifndef RS_BENCH_PEERS_BOOST_H
#define RS_BENCH_PEERS_BOOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Two contexts resuming each other (boost::context::continuation): n round
 * trips, i.e. 2n switches; *ns_per_switch = elapsed / 2n. */
int rs_bench_boost_context_switch(uint64_t n, double *ns_per_switch);

/* n empty fibers (boost::fibers::fiber, default stack allocator), created in
 * batches of `batch` and joined; *ns_per_fiber = elapsed / n. */
int rs_bench_boost_fiber_spawn(uint64_t n, unsigned batch, double *ns_per_fiber);

/* The same with pooled stacks (boost::fibers::pooled_fixedsize_stack, one
 * pool per call): stacks are reused from fiber to fiber, as ringscope's are. */
int rs_bench_boost_fiber_spawn_pooled(uint64_t n, unsigned batch, double *ns_per_fiber);

#ifdef __cplusplus
}
#endif

#endif
