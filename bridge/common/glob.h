#pragma once

#include <span>
#include <string>
#include <string_view>

namespace hb {

// Shell-style match of `text` against `pattern`: `*` matches any run of
// characters (also empty), `?` one character; everything else is literal.
// Used for service and event-type filters ("payments-*", "service.*").
bool GlobMatch(std::string_view pattern, std::string_view text);

// True when any pattern matches.
bool GlobMatchAny(std::span<const std::string> patterns, std::string_view text);

}  // namespace hb
