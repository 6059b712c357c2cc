#pragma once

// CloudEvents 1.0 JSON (structured mode) for health events: the wire format
// of docs/design.md, shared by every sink. Pure functions.

#include <cstddef>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "bridge/model/event.h"

namespace hb {

struct CloudEventOptions {
  // Reverse-DNS prefix of `type`: "<prefix>.instance.down".
  // Default: "io.healthbridge".
  std::string type_prefix = "io.healthbridge";
  // The `source` attribute. Default: "" = "consul://<datacenter>".
  std::string source;
  // Check outputs longer than this are cut (at a UTF-8 boundary) and marked
  // "output_truncated": intermediaries only promise 64 KiB per event.
  // Default: 1024.
  std::size_t max_check_output_bytes = 1024;
};

// Both modes come from one writer and one table of attributes
// (cloud_event.cc): structured mode is the attributes and `data` in one
// object, binary mode the same attributes as text and `data` alone, so the
// two cannot drift apart.

// The whole structured-mode event as compact JSON text (canonical: members
// sorted by name).
std::string SerializeCloudEvent(const Event& event, const CloudEventOptions& options);
// The same into `out`, replacing its text and keeping its storage: a sink
// that reuses one buffer allocates nothing per event.
void SerializeCloudEvent(const Event& event, const CloudEventOptions& options, std::string& out);
// The `data` object alone (binary mode's payload) into `out`, as above:
// the text SerializeCloudEvent() puts under "data".
void SerializeCloudEventData(const Event& event, const CloudEventOptions& options,
                             std::string& out);
// The context attributes (specversion, id, source, type, subject, time,
// datacontenttype, partitionkey) as name/value text pairs, in that order:
// binary-mode transports prefix them (Kafka: "ce_<name>").
std::vector<std::pair<std::string, std::string>> CloudEventAttributes(
    const Event& event, const CloudEventOptions& options);

// The texts above parsed back, for tests and tools that inspect fields.
nlohmann::json CloudEventData(const Event& event, const CloudEventOptions& options);
nlohmann::json ToCloudEvent(const Event& event, const CloudEventOptions& options);

// RFC 3339 UTC with milliseconds: "2026-11-24T10:15:03.120Z".
std::string FormatRfc3339(WallTime time);

}  // namespace hb
