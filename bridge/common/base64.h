#pragma once

// Standard base64 (RFC 4648, with padding), as Consul's KV API carries
// values.

#include <optional>
#include <string>
#include <string_view>

namespace hb {

std::string EncodeBase64(std::string_view bytes);
// Stops at the first '='; nullopt on a byte outside the alphabet.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace hb
