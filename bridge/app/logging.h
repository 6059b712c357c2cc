#pragma once

#include "config/bridge_config.h"

namespace hb {

// Points spdlog's default logger at stderr (stdout carries the log sink's
// events): `json` writes one object per line with ts (RFC 3339 UTC), level
// and msg; `text` is for people. Call once in main before any thread starts.
void SetUpLogging(const LogConfig& config);

}  // namespace hb
