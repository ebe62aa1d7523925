// Peer of the switch suite: Boost.Context continuations resuming each other,
// the way the library's documentation shows (callcc, then resume in a loop).
#include <cerrno>
#include <new>

#include <boost/context/continuation.hpp>

#include "bench.h"
#include "peers/boost.h"

namespace ctx = boost::context;

extern "C" int rs_bench_boost_context_switch(uint64_t n, double *ns_per_switch)
{
    try {
        bool stop = false;
        // callcc enters the lambda at once; it comes back at its first resume.
        ctx::continuation other = ctx::callcc([&stop](ctx::continuation &&back) {
            while (!stop)
                back = back.resume();
            return std::move(back);
        });
        int64_t t0 = rs_bench_now_ns();
        for (uint64_t i = 0; i < n; i++)
            other = other.resume(); // there and back: two switches
        int64_t t1 = rs_bench_now_ns();
        stop = true;
        other = other.resume(); // lets the lambda return
        *ns_per_switch = (double)(t1 - t0) / (2.0 * (double)n);
        return 0;
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}
