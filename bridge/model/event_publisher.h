#pragma once

#include <vector>

#include "bridge/model/event.h"

namespace hb {

// Where the watch hands the engine's events: the router implements it.
// Publish() is called from the watch thread only, in event order, and must
// not block for long (a slow sink must never stall the watch).
class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  virtual void Publish(std::vector<Event> events) = 0;
};

}  // namespace hb
