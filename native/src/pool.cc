#include "pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace td {
namespace {

int default_threads() {
  if (const char* e = std::getenv("TRT_DEBUG_THREADS")) {
    int v = std::atoi(e);
    if (v > 0) return std::min(v, 256);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 256u));
}

std::atomic<int> g_threads{0};

class Pool {
 public:
  explicit Pool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { Loop(i); });
  }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Caller holds use_. Runs the tasks on the calling thread and the first `helpers` workers.
  void Run(int tasks, int helpers, const std::function<void(int)>& fn) {
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &fn;
      tasks_ = tasks;
      helpers_ = helpers;
      next_.store(0);
      pending_workers_ = workers();
      ++gen_;
    }
    cv_.notify_all();
    Work(fn, tasks);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [this] { return pending_workers_ == 0; });
    job_ = nullptr;
  }

  std::mutex use_;

 private:
  void Work(const std::function<void(int)>& fn, int tasks) {
    for (;;) {
      int t = next_.fetch_add(1);
      if (t >= tasks) break;
      fn(t);
    }
  }
  void Loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      int tasks;
      bool helps;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return gen_ != seen; });
        seen = gen_;
        job = job_;
        tasks = tasks_;
        helps = index < helpers_;
      }
      if (helps) Work(*job, tasks);
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_workers_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;
  int helpers_ = 0;
  int pending_workers_ = 0;
  uint64_t gen_ = 0;
  std::atomic<int> next_{0};
};

// Created on first use and never destroyed (worker threads live until the process exits).
Pool* g_pool = nullptr;
std::mutex g_pool_mutex;

Pool* GetPool(int threads) {
  std::lock_guard<std::mutex> lk(g_pool_mutex);
  if (g_pool == nullptr || g_pool->workers() < threads - 1) {
    // Growing leaks the old (idle) pool's threads: only happens when a caller raises the
    // thread count above the default, i.e. in benchmarks.
    g_pool = new Pool(std::max(threads - 1, default_threads() - 1));
  }
  return g_pool;
}

}  // namespace

int pool_threads() {
  int t = g_threads.load();
  if (t <= 0) {
    t = default_threads();
    g_threads.store(t);
  }
  return t;
}

void set_pool_threads(int n) { g_threads.store(n <= 0 ? default_threads() : std::min(n, 256)); }

int chunk_count(size_t n) {
  if (n < kParallelThreshold) return 1;
  size_t byMin = n / (kParallelThreshold / 4);  // at least 64K elements per chunk
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(pool_threads(), byMin)));
}

void chunk_bounds(size_t n, int chunks, int c, size_t align, size_t* begin, size_t* end) {
  auto at = [&](int k) -> size_t {
    if (k >= chunks) return n;
    const size_t ch = static_cast<size_t>(chunks), kk = static_cast<size_t>(k);
    size_t p = (n / ch) * kk + ((n % ch) * kk) / ch;  // floor(n * k / chunks) without overflow
    p = (p / align) * align;
    return std::min(p, n);
  };
  *begin = at(c);
  *end = at(c + 1);
}

void parallel_chunks(int chunks, const std::function<void(int)>& fn) {
  if (chunks <= 1) {
    if (chunks == 1) fn(0);
    return;
  }
  // at most pool_threads() threads (the calling one included), however many chunks there are
  const int threads = std::min(chunks, pool_threads());
  Pool* pool = GetPool(threads);
  std::unique_lock<std::mutex> lk(pool->use_, std::try_to_lock);
  if (!lk.owns_lock()) {
    for (int c = 0; c < chunks; ++c) fn(c);
    return;
  }
  pool->Run(chunks, threads - 1, fn);
}

}  // namespace td
