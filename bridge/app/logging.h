#pragma once

#include <spdlog/common.h>

#include <string_view>

#include "config/bridge_config.h"

namespace hb {

// A level by the name log.level uses for it (trace, debug, info, warn,
// error).
std::string_view LevelName(spdlog::level::level_enum level);

// Points spdlog's default logger at stderr (stdout carries the log sink's
// events): `json` writes one object per line with ts (RFC 3339 UTC), level
// and msg; `text` is for people, its times UTC too and marked Z. Call once in main before any
// thread starts.
void SetUpLogging(const LogConfig& config);

}  // namespace hb
