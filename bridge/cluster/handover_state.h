#pragma once

// A service's handover state in Consul KV: what every sink of its owner
// acknowledged (ReportedService), under `<prefix>/state/<encoded service>`,
// so the replica that takes the service over emits exactly what happened
// since. The value is JSON, version 1:
//   {"v":1,"up":true,"instances":[["<node>","<instance id>",true,"passing",1234],...]}
// (node, id, up, status, index of its last acknowledged event), instances
// sorted by node and id.

#include <cstddef>
#include <string>
#include <string_view>

#include "bridge/common/status.h"
#include "bridge/state/reported_state.h"

namespace hb {

// Consul refuses values above its kv_max_value_size (512 KiB by default);
// the state stays well below, and a service whose state would not fit
// (about 3,000 instances) has none kept: its successor takes the silent
// initial sync for it, as a first owner does.
inline constexpr std::size_t kMaxHandoverStateBytes = 256 * 1024;

std::string HandoverStateKey(std::string_view prefix, std::string_view service);

// Empty when the encoding is longer than `limit`.
std::string EncodeHandoverState(const ReportedService& state,
                                std::size_t limit = kMaxHandoverStateBytes);
// Strict: anything but a version-1 state written as above is an error
// naming what is wrong (the value is another process's writing).
StatusOr<ReportedService> DecodeHandoverState(std::string_view value);

}  // namespace hb
