// Peer of the spawn suite: Boost.Fiber fibers created with the default stack
// allocator and joined, on the default (round-robin) scheduler of this thread.
#include <cerrno>
#include <new>
#include <vector>

#include <boost/fiber/all.hpp>

#include "bench.h"
#include "peers/boost.h"

extern "C" int rs_bench_boost_fiber_spawn(uint64_t n, unsigned batch, double *ns_per_fiber)
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
                fibers.emplace_back([] {});
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
