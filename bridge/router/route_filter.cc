#include "bridge/router/route_filter.h"

#include <algorithm>

#include "bridge/common/glob.h"

namespace hb {

bool RouteFilter::Matches(const Event& event) const {
  if (!GlobMatchAny(events, ToString(event.type))) return false;
  if (!GlobMatchAny(services, event.service)) return false;
  if (!event.IsInstanceEvent()) return true;
  return std::all_of(tags.begin(), tags.end(), [&](const std::string& tag) {
    return std::find(event.tags.begin(), event.tags.end(), tag) != event.tags.end();
  });
}

}  // namespace hb
