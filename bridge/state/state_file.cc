#include "bridge/state/state_file.h"

#include <charconv>
#include <cstdio>
#include <string>

#include "bridge/common/crc32c.h"
#include "bridge/common/file_io.h"

namespace hb {
namespace {

constexpr std::string_view kMagic = "hb-state 1 ";

}  // namespace

StatusOr<std::optional<SavedState>> LoadStateFile(const std::filesystem::path& path) {
  auto content = ReadWholeFile(path);
  if (!content.ok()) {
    if (content.status().code() == StatusCode::kNotFound) return std::optional<SavedState>();
    return content.status();
  }
  const std::string_view text = *content;
  const std::size_t newline = text.find('\n');
  const std::string where = "saved state " + path.string() + ": ";
  if (!text.starts_with(kMagic) || newline == std::string_view::npos) {
    return Status::DataLoss(where + "no \"hb-state 1\" header line (truncated or not ours)");
  }
  const std::string_view hex = text.substr(kMagic.size(), newline - kMagic.size());
  std::uint32_t expected = 0;
  const auto [end, error] = std::from_chars(hex.data(), hex.data() + hex.size(), expected, 16);
  if (error != std::errc() || end != hex.data() + hex.size()) {
    return Status::DataLoss(where + "unreadable checksum in the header line");
  }
  const std::string_view body = text.substr(newline + 1);
  if (Crc32c(body) != expected) {
    return Status::DataLoss(where + "checksum mismatch (" + std::to_string(body.size()) +
                            " bytes after the header; truncated or corrupted)");
  }
  auto state = DecodeSavedState(body);
  if (!state.ok()) return Status::DataLoss(where + state.status().message());
  return std::optional<SavedState>(std::move(*state));
}

Status SaveStateFile(const std::filesystem::path& path, const SavedState& state) {
  const std::string body = EncodeSavedState(state);
  char crc[16];
  std::snprintf(crc, sizeof crc, "%08x\n", Crc32c(body));
  return ReplaceFileDurably(path, std::string(kMagic) + crc + body);
}

}  // namespace hb
