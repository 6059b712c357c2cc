// GET /v1/health/state/any bodies, through the parser into the change
// detector as the watch feeds it: never a crash; every row names its node
// and check (and its service, for a service check); an answer diffed
// against itself names no service.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bridge/consul/answer_parsers.h"
#include "bridge/watch/change_detector.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto rows = hb::ParseHealthState(body);
  if (!rows.ok()) return 0;
  for (const hb::CheckRow& row : *rows) {
    if (row.node.empty() || row.check_id.empty()) std::abort();
    if (!row.service_id.empty() && row.service_name.empty()) std::abort();
  }
  hb::ChangeDetector detector;
  detector.RecordInstances("web", {});
  if (!detector.OnChecks(*rows, 7).empty()) std::abort();  // the baseline
  if (!detector.OnChecks(*rows, 8).empty()) std::abort();  // nothing changed
  if (!detector.OnTable(*rows, 9).empty()) std::abort();
  if (!detector.OnTable(*rows, 10).empty()) std::abort();
  // Everything leaving names what it touched, without a crash.
  detector.OnChecks({}, 11);
  detector.OnTable({}, 12);
  for (const hb::CheckRow& row : *rows) detector.Explains(row.modify_index);
  return 0;
}
