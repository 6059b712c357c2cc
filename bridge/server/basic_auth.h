#pragma once

// HTTP basic authentication against bcrypt hashes (the web config file's
// basic_auth_users). bcrypt is slow on purpose, tens of milliseconds a
// check, so a verified pair is remembered by its SHA-256 (never in clear)
// and a scraper that authenticates every 15 s costs one bcrypt per start.

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "bridge/common/mutex.h"

namespace hb {

class BasicAuth {
 public:
  // user -> bcrypt hash. No users: every request is allowed.
  explicit BasicAuth(std::map<std::string, std::string> users);

  bool enabled() const { return !users_.empty(); }
  // Whether an Authorization header value (or none: nullptr) grants access.
  // Thread-safe.
  bool Allows(const std::string* authorization);

 private:
  using Digest = std::array<std::uint8_t, 32>;
  bool Verify(const std::string& user, const std::string& password);

  const std::map<std::string, std::string> users_;
  Mutex mutex_;
  std::set<Digest> verified_ GUARDED_BY(mutex_);  // bounded, cleared when full
};

}  // namespace hb
