// Peer of the spawn suite: Boost.Fiber fibers created and joined on the
// default (round-robin) scheduler of this thread, with the default stack
// allocator (fixedsize_stack: a malloc per stack) or with pooled stacks
// (pooled_fixedsize_stack, which reuses them as ringscope's pool does).
#include <cerrno>
#include <new>
#include <vector>

#include <boost/fiber/all.hpp>

#include "bench.h"
#include "peers/boost.h"

template <typename MakeFiber>
static int spawn_batches(uint64_t n, unsigned batch, double *ns_per_fiber, MakeFiber make)
{
    if (n == 0 || batch == 0)
        return -EINVAL;
    try {
        std::vector<boost::fibers::fiber> fibers;
        fibers.reserve(batch);
        int64_t t0 = rs_bench_now_ns();
        for (uint64_t done = 0; done < n;) {
            uint64_t k = n - done < batch ? n - done : batch;
            for (uint64_t i = 0; i < k; i++)
                fibers.push_back(make());
            for (auto &f : fibers)
                f.join();
            fibers.clear();
            done += k;
        }
        int64_t t1 = rs_bench_now_ns();
        *ns_per_fiber = (double)(t1 - t0) / (double)n;
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}

extern "C" int rs_bench_boost_fiber_spawn(uint64_t n, unsigned batch, double *ns_per_fiber)
{
    return spawn_batches(n, batch, ns_per_fiber, [] { return boost::fibers::fiber([] {}); });
}

extern "C" int rs_bench_boost_fiber_spawn_pooled(uint64_t n, unsigned batch, double *ns_per_fiber)
{
    try {
        boost::fibers::pooled_fixedsize_stack stacks; // outlives every fiber of the run
        return spawn_batches(n, batch, ns_per_fiber,
                             [&] { return boost::fibers::fiber(std::allocator_arg, stacks, [] {}); });
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}
