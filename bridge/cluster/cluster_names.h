#pragma once

// The naming rules of cluster mode's Consul keys, header-only so the config
// loader checks them without linking the cluster library.

#include <string>
#include <string_view>

namespace hb {

inline bool IsClusterNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// A member id is one KV key segment: "" when valid, else why not.
inline std::string ValidateMemberId(std::string_view id) {
  if (id.empty()) return "must not be empty";
  if (id.size() > 128) return "must be at most 128 characters";
  for (const char c : id) {
    if (!IsClusterNameChar(c)) return "may hold only letters, digits, '-', '_' and '.'";
  }
  return "";
}

// A KV prefix: segments of the same characters, separated by '/'.
inline std::string ValidateClusterPrefix(std::string_view prefix) {
  if (prefix.empty()) return "must not be empty";
  if (prefix.size() > 256) return "must be at most 256 characters";
  if (prefix.front() == '/' || prefix.back() == '/') return "must not start or end with '/'";
  std::size_t segment = 0;
  for (const char c : prefix) {
    if (c == '/') {
      if (segment == 0) return "must not hold an empty segment ('//')";
      segment = 0;
    } else if (!IsClusterNameChar(c)) {
      return "may hold only letters, digits, '-', '_', '.' and '/'";
    } else {
      ++segment;
    }
  }
  return "";
}

}  // namespace hb
