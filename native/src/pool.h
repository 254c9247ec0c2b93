// A small fixed thread pool for the numeric kernels.
//
// Work is split into a fixed number of contiguous chunks (one per thread) so that the
// partial results of reductions are combined in a deterministic order for a given thread
// count. Small inputs never touch the pool.
#pragma once

#include <cstddef>
#include <functional>

namespace td {

// Inputs with fewer elements than this run on the calling thread only.
constexpr size_t kParallelThreshold = 256 * 1024;

// Number of threads the kernels use (calling thread included): the TRT_DEBUG_THREADS
// environment variable if set, else std::thread::hardware_concurrency().
int pool_threads();
void set_pool_threads(int n);  // n <= 0 restores the default

// Number of chunks a range of n elements is cut into (1 below the threshold).
int chunk_count(size_t n);

// Chunk c of `chunks` over [0, n): boundaries are multiples of `align` elements.
void chunk_bounds(size_t n, int chunks, int c, size_t align, size_t* begin, size_t* end);

// Runs fn(c) for c in [0, chunks) on the calling thread and at most pool_threads() - 1 pool
// workers, each taking the next chunk when it is free; returns when all are done. If the pool
// is busy (another JS thread is using it) the chunks run serially on the calling thread.
void parallel_chunks(int chunks, const std::function<void(int)>& fn);

}  // namespace td
