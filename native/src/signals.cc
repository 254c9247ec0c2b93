// Prompt, clean exit on SIGINT/SIGTERM in every phase.
//
// Node runs its JavaScript signal listeners on the event loop, which onnxruntime's synchronous
// session creation and runs (and a large protobuf decode) block for seconds. This handler runs
// at signal time instead, on whichever thread receives the signal: it unlinks the temporary
// files the JavaScript side registered (partial dumps, caches, plans), writes one line and
// _exits with 128 + the signal number. Everything it calls is async-signal-safe (unlink,
// write, _exit); the registry is a fixed table of slots published with release/acquire atomics.
#include "signals.h"

#include <atomic>
#include <csignal>
#include <cstring>

#ifndef _WIN32
#include <unistd.h>
#endif

namespace td {
namespace {

constexpr int kSlots = 256;
constexpr size_t kPathMax = 4096;

struct Slot {
  std::atomic<int> used{0};
  char path[kPathMax];
};

Slot g_slots[kSlots];
std::atomic<int> g_installed{0};

#ifndef _WIN32
const char kMsgInt[] = "\ntrt-debug: interrupted (SIGINT); partial outputs removed\n";
const char kMsgTerm[] = "\ntrt-debug: interrupted (SIGTERM); partial outputs removed\n";

void OnSignal(int sig) {
  for (Slot& s : g_slots) {
    if (s.used.load(std::memory_order_acquire) == 1) unlink(s.path);
  }
  const char* m = sig == SIGINT ? kMsgInt : kMsgTerm;
  const size_t n = sig == SIGINT ? sizeof(kMsgInt) - 1 : sizeof(kMsgTerm) - 1;
  ssize_t w = write(2, m, n);
  (void)w;
  _exit(128 + sig);
}
#endif

}  // namespace

bool install_signal_cleanup() {
#ifdef _WIN32
  return false;
#else
  if (g_installed.exchange(1) == 1) return true;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigfillset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return true;
#endif
}

int register_temp(const char* path, size_t len) {
  if (len == 0 || len >= kPathMax) return -1;
  for (int i = 0; i < kSlots; i++) {
    int expected = 0;
    // 2 = being written: the handler only reads slots in state 1.
    if (g_slots[i].used.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) {
      std::memcpy(g_slots[i].path, path, len);
      g_slots[i].path[len] = '\0';
      g_slots[i].used.store(1, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].used.store(0, std::memory_order_release);
}

}  // namespace td
