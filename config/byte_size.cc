#include "config/byte_size.h"

#include <array>
#include <charconv>
#include <utility>

namespace hb {
namespace {

constexpr std::array<std::pair<std::string_view, int>, 3> kUnits{
    {{"GiB", 30}, {"MiB", 20}, {"KiB", 10}}};

}  // namespace

std::optional<std::uint64_t> ParseByteSize(std::string_view text) {
  int shift = 0;
  for (const auto& [suffix, unit_shift] : kUnits) {
    if (text.ends_with(suffix)) {
      text.remove_suffix(suffix.size());
      shift = unit_shift;
      break;
    }
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (shift > 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
  return value << shift;
}

std::string FormatByteSize(std::uint64_t bytes) {
  for (const auto& [suffix, shift] : kUnits) {
    const std::uint64_t unit = std::uint64_t{1} << shift;
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + std::string(suffix);
  }
  return std::to_string(bytes);
}

}  // namespace hb
