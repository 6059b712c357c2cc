#pragma once

#include <string>
#include <vector>

#include "bridge/model/event.h"

namespace hb {

// Which events one sink receives (the sink's `events`, `services` and `tags`
// settings). Pure and safe to share between threads.
struct RouteFilter {
  // Globs of event types ("instance.down", "service.*"). Default: all.
  std::vector<std::string> events{"*"};
  // Globs of service names. Default: all.
  std::vector<std::string> services{"*"};
  // Tags an instance must carry, all of them. Service events carry no tags
  // and pass this part of the filter. Default: none required.
  std::vector<std::string> tags;

  bool Matches(const Event& event) const;
};

}  // namespace hb
