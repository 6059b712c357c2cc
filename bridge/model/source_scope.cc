#include "bridge/model/source_scope.h"

#include "bridge/model/protocol_text.h"

namespace hb {

void AppendSourceKey(std::string& out, std::string_view datacenter, const SourceScope& scope) {
  AppendIdPart(out, datacenter);
  if (!scope.peer.empty()) out.append("/peer:"), AppendIdPart(out, scope.peer);
  if (!scope.ns.empty()) out.append("/ns:"), AppendIdPart(out, scope.ns);
  if (!scope.partition.empty()) out.append("/partition:"), AppendIdPart(out, scope.partition);
}

std::string SourceKey(std::string_view datacenter, const SourceScope& scope) {
  std::string key;
  AppendSourceKey(key, datacenter, scope);
  return key;
}

std::string CloudEventSource(std::string_view datacenter, const SourceScope& scope) {
  std::string source = "consul://";
  source.append(datacenter);
  char separator = '?';
  const auto add = [&](std::string_view name, const std::string& value) {
    if (value.empty()) return;
    source.push_back(separator);
    source.append(name).append("=");
    AppendIdPart(source, value);
    separator = '&';
  };
  add("peer", scope.peer);
  add("ns", scope.ns);
  add("partition", scope.partition);
  return source;
}

}  // namespace hb
