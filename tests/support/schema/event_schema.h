#pragma once

// The event contract as a test oracle: every event a test receives is
// checked against docs/contract/events.schema.json by an independent
// validator (Python's jsonschema, Debian's python3-jsonschema).

#include <string>
#include <vector>

namespace hb::test_support {

// "" when every document is valid, else the validator's findings. With
// `data_only` each document is an event's `data` (Kafka binary mode).
std::string EventSchemaViolations(const std::vector<std::string>& documents,
                                  bool data_only = false);

// The same for the log sink's output: every line that starts with '{' is
// one CloudEvent.
std::string LogLinesSchemaViolations(const std::string& text);

}  // namespace hb::test_support
