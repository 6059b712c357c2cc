#pragma once

// Consul data is free text: a service ID may hold CR, LF, NUL or any byte.
// These helpers are the only way such text reaches a protocol line (an HTTP
// header, a Kafka header, an event id), so a hostile ID can never end a
// header early or smuggle a second request (docs/design.md, "Hostile text").

#include <cstdint>
#include <string>
#include <string_view>

#include "bridge/model/source_scope.h"

namespace hb {

// Appends one part of an event id: every byte outside visible ASCII
// (0x21-0x7E), and '%' and '/', is percent-encoded (upper-case hex), so an
// id is visible ASCII only and its '/'-separated parts cannot be confused
// ("a/b" + "c" and "a" + "b/c" give different ids). Parts made of other
// visible ASCII, which covers nearly every real ID, appear unchanged.
void AppendIdPart(std::string& out, std::string_view part);

// The event ids (Event::id): "<dc>/<node>/<instance_id>/<index>/<event>"
// and "<dc>/<service>/<index>/<event>", each text part by AppendIdPart().
std::string InstanceEventId(std::string_view datacenter, std::string_view node,
                            std::string_view instance_id, std::uint64_t index,
                            std::string_view event);
std::string ServiceEventId(std::string_view datacenter, std::string_view service,
                           std::uint64_t index, std::string_view event);
// The same for a source outside the default scope: "<dc>" is replaced by
// the source's key (source_scope.h), which has more '/'-separated parts than
// a datacenter, so no scoped id equals an unscoped one.
std::string InstanceEventId(std::string_view datacenter, const SourceScope& scope,
                            std::string_view node, std::string_view instance_id,
                            std::uint64_t index, std::string_view event);
std::string ServiceEventId(std::string_view datacenter, const SourceScope& scope,
                           std::string_view service, std::uint64_t index, std::string_view event);

// A header value that cannot break its line: control bytes (0x00-0x1F and
// 0x7F) are percent-encoded; everything else, UTF-8 and '%' included,
// stays, so a value without control bytes (every event id) is unchanged.
std::string HeaderSafe(std::string_view value);

// True when `value` holds no control byte but horizontal tab: what RFC 9110
// allows in a header field value. For values a user configures, which are
// refused at load rather than rewritten.
bool IsValidHeaderValue(std::string_view value);

// True for a non-empty RFC 9110 token: the characters a header name may use.
bool IsValidHeaderName(std::string_view name);

// Text for a log line: control bytes become \xNN and the result is cut to
// `limit` bytes (marked with "..."), so a peer's text stays on one line.
std::string LogSafe(std::string_view text, std::size_t limit = 200);

}  // namespace hb
