#pragma once

// The head of an HTTP/1.x request (request line and header fields), parsed
// strictly: the bridge's port may face anyone, and it serves only GET and
// HEAD, so nothing past the head is ever read.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hb {

struct RequestHead {
  std::string method;
  std::string path;   // the target up to '?', as sent (no decoding)
  std::string query;  // after '?', without it; "" when none
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  // The value of the first field named `lower_name`, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
};

struct HeadParse {
  enum class State {
    kIncomplete,  // no blank line yet, within the size limit: read more
    kComplete,    // `head` holds the request
    kTooLarge,    // no end of head within max_size bytes (431)
    kMalformed,   // not an HTTP/1.x request head (400); `error` says why
  };
  State state = State::kIncomplete;
  RequestHead head;
  std::string error;
};

// Parses `received` (the bytes read so far) if it holds a whole head, which
// ends at the first CRLF CRLF. Lines end with CRLF; header names are RFC 9110
// tokens; obsolete line folding, control bytes in values and a request
// target that is not an origin form ("/...") are malformed.
HeadParse ParseRequestHead(std::string_view received, std::size_t max_size);

// Parses "a=1&b=two" into pairs, percent-decoding names and values ('+' is
// a space). Malformed escapes are kept as they are.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace hb
