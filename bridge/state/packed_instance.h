#pragma once

// An Instance packed into one allocation: what the transition engine keeps
// per instance between answers. Held as structs (two Checks of six strings
// each, a tag vector, a meta map, each with allocations of its own) the
// engine's RSS was 1.2 KB per instance in bench/watch_scale, 120 MB at
// 100,000 instances; packed, the details take little more than their text
// (about 150 bytes there) and the engine 0.37 KB per instance. The engine
// reads them back only to fill an event, save state or list instances.
//
// Node and id are not packed: the engine keys each instance by them.
// A value type; packing and unpacking are pure and never fail.

#include <cstddef>
#include <string>
#include <string_view>

#include "bridge/model/health.h"

namespace hb {

class PackedInstance {
 public:
  // Holds an instance with no service, address, tags, meta or checks.
  PackedInstance() = default;
  // Everything of `instance` but its node and id.
  explicit PackedInstance(const Instance& instance);

  // The packed instance, with `node` and `id` put back: equal to the
  // Instance it was packed from.
  Instance Unpack(std::string_view node, std::string_view id) const;

  // Bytes of the packed form.
  std::size_t size() const { return bytes_.size(); }

 private:
  std::string bytes_;
};

}  // namespace hb
