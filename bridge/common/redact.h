#pragma once

// Secrets that ride inside ordinary settings: a URL's user info
// (https://user:password@host) and its query (?api_key=...). Every URL that
// check-config prints or a log line names goes through RedactUrl().

#include <string>
#include <string_view>

namespace hb {

inline constexpr char kRedacted[] = "******";

// The URL with any user info replaced by "******@" and any query string by
// "?******"; the scheme, host, port and path stay, which is what an operator
// needs to recognise the target. Text that is not a URL is returned as is.
std::string RedactUrl(std::string_view url);

}  // namespace hb
