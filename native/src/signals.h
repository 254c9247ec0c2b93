#pragma once
#include <cstddef>

namespace td {
// Install the SIGINT/SIGTERM handler (unlink registered temp files, _exit(128 + sig)).
// Returns false where unsupported (Windows).
bool install_signal_cleanup();
// Register a temporary file; returns its slot, or -1 when the table is full or the path too long.
int register_temp(const char* path, size_t len);
void unregister_temp(int slot);
}  // namespace td
