#pragma once

// Which catalog services the bridge watches (watch.services in the config).

#include <string>
#include <string_view>
#include <vector>

namespace hb {

struct ServiceFilterOptions {
  // Globs of service names to watch. Default: everything.
  std::vector<std::string> include{"*"};
  // Globs of service names never to watch, even when included.
  // Default: Consul's own service.
  std::vector<std::string> exclude{"consul"};
  // Tags a service must carry (all of them, on any of its instances, as
  // /v1/catalog/services reports the union). Default: none required.
  std::vector<std::string> tags;

  bool operator==(const ServiceFilterOptions&) const = default;
};

// Pure predicate; safe to share between threads.
class ServiceFilter {
 public:
  explicit ServiceFilter(ServiceFilterOptions options) : options_(std::move(options)) {}

  bool Matches(std::string_view service, const std::vector<std::string>& service_tags) const;

 private:
  ServiceFilterOptions options_;
};

}  // namespace hb
