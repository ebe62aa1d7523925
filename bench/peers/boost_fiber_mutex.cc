// Peers of the lock, sem and pool suites on Boost.Fiber (see
// boost_fiber_sync.h): fibers::mutex hand-off, and the semaphore and pool a
// Boost.Fiber user builds from mutex + condition_variable.
#include <cerrno>
#include <new>
#include <vector>

#include <boost/fiber/all.hpp>

#include "bench.h"
#include "peers/boost_fiber_sync.h"

namespace {

// Runs body(i) in `fibers` fibers and returns the elapsed ns from before the
// first starts to after the last ended.
template <typename Body> int64_t run_fibers(unsigned fibers, Body body)
{
    std::vector<boost::fibers::fiber> fs;
    fs.reserve(fibers);
    int64_t t0 = rs_bench_now_ns();
    for (unsigned i = 0; i < fibers; i++)
        fs.emplace_back([&body, i] { body(i); });
    for (auto &f : fs)
        f.join();
    return rs_bench_now_ns() - t0;
}

template <typename Fn> int guarded(Fn fn)
{
    try {
        return fn();
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}

class fiber_semaphore {
  public:
    explicit fiber_semaphore(unsigned n) : avail_(n) {}
    void acquire()
    {
        std::unique_lock<boost::fibers::mutex> lk(m_);
        cv_.wait(lk, [this] { return avail_ > 0; });
        avail_--;
    }
    void release()
    {
        {
            std::unique_lock<boost::fibers::mutex> lk(m_);
            avail_++;
        }
        cv_.notify_one();
    }

  private:
    boost::fibers::mutex m_;
    boost::fibers::condition_variable cv_;
    unsigned avail_;
};

class fiber_pool {
  public:
    explicit fiber_pool(unsigned n)
    {
        for (unsigned i = 0; i < n; i++)
            free_.push_back(new int(static_cast<int>(i)));
    }
    ~fiber_pool()
    {
        for (int *r : free_)
            delete r;
    }
    int *take()
    {
        std::unique_lock<boost::fibers::mutex> lk(m_);
        cv_.wait(lk, [this] { return !free_.empty(); });
        int *r = free_.back();
        free_.pop_back();
        return r;
    }
    void give(int *r)
    {
        {
            std::unique_lock<boost::fibers::mutex> lk(m_);
            free_.push_back(r);
        }
        cv_.notify_one();
    }

  private:
    boost::fibers::mutex m_;
    boost::fibers::condition_variable cv_;
    std::vector<int *> free_;
};

} // namespace

extern "C" int rs_bench_fiber_mutex_uncontended(uint64_t n, double *ns_per_op)
{
    if (n == 0)
        return -EINVAL;
    return guarded([&] {
        boost::fibers::mutex m;
        int64_t elapsed = run_fibers(1, [&](unsigned) {
            for (uint64_t i = 0; i < n; i++) {
                m.lock();
                m.unlock();
            }
        });
        *ns_per_op = (double)elapsed / (double)n;
        return 0;
    });
}

extern "C" int rs_bench_fiber_mutex_handoff(unsigned fibers, uint64_t total_ops, double *ns_per_op)
{
    if (fibers == 0 || total_ops < fibers)
        return -EINVAL;
    return guarded([&] {
        boost::fibers::mutex m;
        uint64_t per = total_ops / fibers;
        int64_t elapsed = run_fibers(fibers, [&](unsigned) {
            for (uint64_t i = 0; i < per; i++) {
                m.lock();
                boost::this_fiber::yield();
                m.unlock();
            }
        });
        *ns_per_op = (double)elapsed / (double)(per * fibers);
        return 0;
    });
}

extern "C" int rs_bench_fiber_rw_as_mutex(unsigned readers, uint64_t total_ops, double *ops_per_s)
{
    if (readers == 0 || total_ops < readers + 1)
        return -EINVAL;
    return guarded([&] {
        boost::fibers::mutex m;
        unsigned fibers = readers + 1;
        uint64_t per = total_ops / fibers;
        int64_t elapsed = run_fibers(fibers, [&](unsigned) {
            for (uint64_t i = 0; i < per; i++) {
                m.lock();
                boost::this_fiber::yield();
                m.unlock();
            }
        });
        *ops_per_s = (double)(per * fibers) * 1e9 / (double)elapsed;
        return 0;
    });
}

extern "C" int rs_bench_fiber_sem_handoff(unsigned fibers, unsigned permits, uint64_t total_ops, double *ns_per_op)
{
    if (fibers == 0 || permits == 0 || total_ops < fibers)
        return -EINVAL;
    return guarded([&] {
        fiber_semaphore sem(permits);
        uint64_t per = total_ops / fibers;
        int64_t elapsed = run_fibers(fibers, [&](unsigned) {
            for (uint64_t i = 0; i < per; i++) {
                sem.acquire();
                boost::this_fiber::yield();
                sem.release();
            }
        });
        *ns_per_op = (double)elapsed / (double)(per * fibers);
        return 0;
    });
}

extern "C" int rs_bench_fiber_pool_handoff(unsigned fibers, unsigned size, uint64_t total_ops, double *ns_per_op)
{
    if (fibers == 0 || size == 0 || total_ops < fibers)
        return -EINVAL;
    return guarded([&] {
        fiber_pool pool(size);
        uint64_t per = total_ops / fibers;
        int64_t elapsed = run_fibers(fibers, [&](unsigned) {
            for (uint64_t i = 0; i < per; i++) {
                int *r = pool.take();
                boost::this_fiber::yield();
                (*r)++;
                pool.give(r);
            }
        });
        *ns_per_op = (double)elapsed / (double)(per * fibers);
        return 0;
    });
}

extern "C" int rs_bench_fiber_sem_uncontended(uint64_t n, double *ns_per_op)
{
    if (n == 0)
        return -EINVAL;
    return guarded([&] {
        fiber_semaphore sem(1);
        int64_t elapsed = run_fibers(1, [&](unsigned) {
            for (uint64_t i = 0; i < n; i++) {
                sem.acquire();
                sem.release();
            }
        });
        *ns_per_op = (double)elapsed / (double)n;
        return 0;
    });
}

extern "C" int rs_bench_fiber_pool_uncontended(uint64_t n, double *ns_per_op)
{
    if (n == 0)
        return -EINVAL;
    return guarded([&] {
        fiber_pool pool(1);
        int64_t elapsed = run_fibers(1, [&](unsigned) {
            for (uint64_t i = 0; i < n; i++) {
                int *r = pool.take();
                (*r)++;
                pool.give(r);
            }
        });
        *ns_per_op = (double)elapsed / (double)n;
        return 0;
    });
}
