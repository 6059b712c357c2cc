#pragma once

// Where a service lives beyond its datacenter: a cluster peer whose
// services are imported, a Consul Enterprise namespace, an admin
// partition. The default scope (all empty) is the only one a bridge with a
// single source sees, and everything it writes stays as it was before
// sources existed.

#include <string>
#include <string_view>

namespace hb {

struct SourceScope {
  std::string peer;
  std::string ns;         // namespace
  std::string partition;  // admin partition
  // The bridge watches several sources: subjects (the CloudEvents subject
  // and partitionkey, Kafka message keys) name the source too, since two
  // sources can hold the same service name and instance ID.
  bool named_in_subject = false;

  bool IsDefault() const { return peer.empty() && ns.empty() && partition.empty(); }
  bool operator==(const SourceScope&) const = default;
};

// The source as one text: "<dc>", then "/peer:<peer>", "/ns:<namespace>",
// "/partition:<partition>" for the parts set, each value encoded as an
// event id part (AppendIdPart: no '/' inside a part). Two sources never
// share it, and the default scope's is the datacenter alone.
void AppendSourceKey(std::string& out, std::string_view datacenter, const SourceScope& scope);
std::string SourceKey(std::string_view datacenter, const SourceScope& scope);

// "consul://<dc>", with "?peer=", "ns=", "partition=" for the parts set:
// the CloudEvents source of the source's events.
std::string CloudEventSource(std::string_view datacenter, const SourceScope& scope);

}  // namespace hb
