// The query headers of a Consul answer (X-Consul-Index, X-Consul-LastContact,
// X-Consul-KnownLeader), one value per line of the input: any bytes give an
// index of at least 1 read from digits only, or an error; never "-1" or
// "+5" wrapped into a huge index, never a negative last contact.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "bridge/consul/consul_client.h"

namespace {

std::string_view NextLine(std::string_view& input) {
  const std::size_t end = input.find('\n');
  const std::string_view line = input.substr(0, end);
  input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string index(NextLine(input));
  std::map<std::string, std::string> headers{{"x-consul-index", index}};
  if (!input.empty()) headers["x-consul-lastcontact"] = std::string(NextLine(input));
  if (!input.empty()) headers["x-consul-knownleader"] = std::string(NextLine(input));

  const auto meta = hb::ParseQueryMeta(headers);
  const bool digits = !index.empty() && std::all_of(index.begin(), index.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
  if (!meta.ok()) {
    // Up to 19 digits always fits in 64 bits: such an index must be read.
    if (digits && index.size() <= 19) std::abort();
    return 0;
  }
  if (!digits || meta->index == 0 || meta->last_contact.count() < 0) std::abort();
  // The number read is the number written (0 read as 1).
  const std::size_t first = std::min(index.find_first_not_of('0'), index.size());
  const std::string written = first == index.size() ? "1" : index.substr(first);
  if (std::to_string(meta->index) != written) std::abort();
  return 0;
}
