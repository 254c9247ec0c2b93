// glibc malloc tuning at addon load (issue 13). A capture allocates every layer's output
// (onnxruntime's buffer, then the JavaScript copy) and frees it a segment later: with glibc's
// defaults each buffer above the dynamic mmap threshold gets fresh pages from the kernel (a
// page fault per 4 KiB, zeroed) and is unmapped again when freed. Raising the mmap threshold
// to its maximum (32 MiB on 64-bit) and keeping freed heap memory (trim threshold) lets those
// buffers be reused from the heap. Not applied when TRT_DEBUG_NO_MALLOPT=1, when the user
// tunes malloc through the environment (MALLOC_*_ or GLIBC_TUNABLES), or without glibc.
#include "malloc_tune.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

extern char** environ;

namespace td {

namespace {

bool user_tunes_malloc() {
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "MALLOC_", 7) == 0 || std::strncmp(*e, "GLIBC_TUNABLES=", 15) == 0) return true;
  }
  return false;
}

}  // namespace

const char* tune_malloc() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD)
  const char* off = std::getenv("TRT_DEBUG_NO_MALLOPT");
  if (off != nullptr && off[0] != '\0' && std::strcmp(off, "0") != 0) return "off (TRT_DEBUG_NO_MALLOPT)";
  if (user_tunes_malloc()) return "off (malloc tuned by the environment)";
  // 32 MiB is glibc's largest accepted mmap threshold on 64-bit (HEAP_MAX_SIZE / 2); on
  // 32-bit it is 512 KiB and the call fails: then only the trim settings apply.
  const int mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  const int trim_ok = mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
  const int pad_ok = mallopt(M_TOP_PAD, 64 * 1024 * 1024);
  return (mmap_ok == 1 && trim_ok == 1 && pad_ok == 1) ? "glibc" : "glibc (partly)";
#else
  return "off (not glibc)";
#endif
}

}  // namespace td
