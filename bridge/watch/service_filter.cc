#include "bridge/watch/service_filter.h"

#include <algorithm>

#include "bridge/common/glob.h"

namespace hb {

bool ServiceFilter::Matches(std::string_view service,
                            const std::vector<std::string>& service_tags) const {
  if (!GlobMatchAny(options_.include, service)) return false;
  if (GlobMatchAny(options_.exclude, service)) return false;
  return std::all_of(options_.tags.begin(), options_.tags.end(), [&](const std::string& tag) {
    return std::find(service_tags.begin(), service_tags.end(), tag) != service_tags.end();
  });
}

}  // namespace hb
