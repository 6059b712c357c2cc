#include "bridge/common/redact.h"

namespace hb {

std::string RedactUrl(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  const std::size_t authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const std::size_t authority_end = url.find_first_of("/?#", authority);
  const std::string_view host_part = url.substr(authority, authority_end - authority);
  std::string out(url.substr(0, authority));
  // The last '@' ends the user info: a password may itself hold '@'.
  if (const std::size_t at = host_part.rfind('@'); at != std::string_view::npos) {
    out += kRedacted;
    out += host_part.substr(at);
  } else {
    out += host_part;
  }
  if (authority_end == std::string_view::npos) return out;
  const std::string_view rest = url.substr(authority_end);
  const std::size_t query = rest.find('?');
  if (query == std::string_view::npos) {
    out += rest;
    return out;
  }
  out += rest.substr(0, query + 1);
  out += kRedacted;
  if (const std::size_t fragment = rest.find('#', query); fragment != std::string_view::npos) {
    out += rest.substr(fragment);
  }
  return out;
}

}  // namespace hb
