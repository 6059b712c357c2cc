#pragma once

// What the drivers that run the bridge binary against the Consul test
// server share: how their instances are registered and how their samples
// are summarised.

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace hb::bench {

// An agent service registration with one TTL check, passing.
inline nlohmann::json Registration(const std::string& service, const std::string& id,
                                   const std::string& ttl) {
  return {{"ID", id},
          {"Name", service},
          {"Tags", {"v1"}},
          {"Address", "127.0.0.1"},
          {"Port", 8000},
          {"Meta", {{"version", "1.0.0"}}},
          {"Check", {{"CheckID", "service:" + id}, {"TTL", ttl}, {"Status", "passing"}}}};
}

// Nearest-rank percentile; `values` must not be empty.
inline double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[rank];
}

}  // namespace hb::bench
