#pragma once

namespace td {
// Applies trt-debug's glibc malloc settings once, at addon load; returns what was done
// ("glibc", "glibc (partly)" or "off (reason)").
const char* tune_malloc();
}  // namespace td
