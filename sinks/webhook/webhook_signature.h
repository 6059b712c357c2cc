#pragma once

// Standard Webhooks signing: receivers verify
//   webhook-signature: v1,<base64(HMAC-SHA256(key, id "." timestamp "." body))>
// where the key is the base64-decoded part of a "whsec_" secret, or the
// secret's bytes as they are when it has no such prefix.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hb {

// The HMAC key of `secret`; nullopt when a whsec_ secret is not base64.
std::optional<std::string> WebhookSigningKey(std::string_view secret);

// The webhook-signature header value ("v1,<base64>").
std::string SignWebhook(std::string_view key, std::string_view id, std::int64_t timestamp,
                        std::string_view body);

std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace hb
