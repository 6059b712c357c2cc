#pragma once

// A peer's answer body (Consul's error text, a webhook receiver's page, a
// proxy's HTML error page) as one printable line of bounded length, for
// logs, dead letters and /v1/sinks: a multi-line HTML page must not end up
// in a log line or a status field as it came.

#include <cstddef>
#include <string>
#include <string_view>

namespace hb {

// An HTML page becomes its <title> (or its text without tags when it has
// none); every run of whitespace or control bytes becomes one space; the
// result is cut to `limit` bytes at a UTF-8 boundary and marked "...".
// Bytes that are not valid UTF-8 become '?'.
std::string SummarizePeerText(std::string_view body, std::size_t limit = 200);

}  // namespace hb
