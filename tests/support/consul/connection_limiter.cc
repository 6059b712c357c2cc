#include "tests/support/consul/connection_limiter.h"

#include <algorithm>

namespace hb::test_support {

bool ConnectionLimiter::Accept(const std::string& ip) {
  MutexLock lock(&mutex_);
  std::size_t& open = open_[ip];
  if (max_ > 0 && open >= max_) {
    ++refused_;
    return false;
  }
  ++open;
  std::size_t& peak = peak_[ip];
  peak = std::max(peak, open);
  return true;
}

void ConnectionLimiter::Release(const std::string& ip) {
  MutexLock lock(&mutex_);
  auto it = open_.find(ip);
  if (it == open_.end() || it->second == 0) return;
  if (--it->second == 0) open_.erase(it);
}

std::string_view ConnectionLimiter::RefusalResponse() {
  // go-connlimit's bytes: the body ends with a newline, Content-Length counts it.
  static constexpr std::string_view kResponse =
      "HTTP/1.1 429 Too Many Requests\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Length: 81\r\n"
      "Connection: close\r\n"
      "\r\n"
      "Your IP is issuing too many concurrent connections, please rate limit your calls\n";
  return kResponse;
}

std::size_t ConnectionLimiter::Open(const std::string& ip) const {
  MutexLock lock(&mutex_);
  auto it = open_.find(ip);
  return it == open_.end() ? 0 : it->second;
}

std::size_t ConnectionLimiter::Peak(const std::string& ip) const {
  MutexLock lock(&mutex_);
  auto it = peak_.find(ip);
  return it == peak_.end() ? 0 : it->second;
}

void ConnectionLimiter::ResetPeak() {
  MutexLock lock(&mutex_);
  peak_.clear();
  for (const auto& [ip, open] : open_) peak_[ip] = open;
}

std::size_t ConnectionLimiter::Refused() const {
  MutexLock lock(&mutex_);
  return refused_;
}

}  // namespace hb::test_support
