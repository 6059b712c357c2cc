#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hb {

// "1048576", "512KiB", "64MiB", "2GiB" (binary units only: a spool bound is
// about disk blocks, and "MB" would be ambiguous). nullopt when not one.
std::optional<std::uint64_t> ParseByteSize(std::string_view text);

// The largest exact unit: 268435456 → "256MiB", 1000 → "1000".
std::string FormatByteSize(std::uint64_t bytes);

}  // namespace hb
