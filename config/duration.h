#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace hb {

// Parses Go-style durations: one or more <number><unit> with units ms, s,
// m, h ("500ms", "10s", "1m30s", "1h"). "0" alone is zero. Negative values
// and fractions are rejected. Returns nullopt when `text` is not one.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest exact form: 90000ms → "1m30s", 0 → "0s".
std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace hb
