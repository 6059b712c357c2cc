#pragma once

// Consul's per-client-IP connection limit (limits.http_max_conns_per_client,
// hashicorp/go-connlimit): every open TCP connection from one IP counts,
// idle keep-alive ones and held blocking queries alike, from the moment it is
// accepted until it closes. A connection past the limit is answered with a
// fixed 429 before any request is read, and closed.
//
// Thread-safe.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bridge/common/mutex.h"

namespace hb::test_support {

class ConnectionLimiter {
 public:
  // 0 turns the limit off (connections are still counted).
  explicit ConnectionLimiter(std::size_t max_per_client_ip) : max_(max_per_client_ip) {}

  // Counts a new connection from `ip`; false when it is over the limit (then
  // it is not counted and must be refused with RefusalResponse()).
  bool Accept(const std::string& ip);
  // A connection Accept() took has closed.
  void Release(const std::string& ip);

  // Consul's answer to a connection over the limit, written as is.
  static std::string_view RefusalResponse();

  std::size_t Open(const std::string& ip) const;
  // The most connections `ip` had open at once since the last ResetPeak().
  std::size_t Peak(const std::string& ip) const;
  void ResetPeak();
  // Connections refused since the start.
  std::size_t Refused() const;
  std::size_t limit() const { return max_; }

 private:
  const std::size_t max_;
  mutable Mutex mutex_;
  std::map<std::string, std::size_t, std::less<>> open_ GUARDED_BY(mutex_);
  std::map<std::string, std::size_t, std::less<>> peak_ GUARDED_BY(mutex_);
  std::size_t refused_ GUARDED_BY(mutex_) = 0;
};

}  // namespace hb::test_support
