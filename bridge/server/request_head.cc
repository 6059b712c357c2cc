#include "bridge/server/request_head.h"

#include <algorithm>
#include <cctype>

#include "bridge/model/protocol_text.h"

namespace hb {
namespace {

constexpr std::string_view kEndOfHead = "\r\n\r\n";

HeadParse Malformed(std::string error) {
  HeadParse result;
  result.state = HeadParse::State::kMalformed;
  result.error = std::move(error);
  return result;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

const std::string* RequestHead::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

HeadParse ParseRequestHead(std::string_view received, std::size_t max_size) {
  const std::size_t end = received.find(kEndOfHead);
  if (end == std::string_view::npos || end + kEndOfHead.size() > max_size) {
    HeadParse result;
    if (received.size() >= max_size || end != std::string_view::npos) {
      result.state = HeadParse::State::kTooLarge;
    }
    return result;
  }
  std::string_view head = received.substr(0, end + 2);  // each line keeps its CRLF

  auto next_line = [&head]() -> std::string_view {
    const std::size_t crlf = head.find("\r\n");
    std::string_view line = head.substr(0, crlf);
    head.remove_prefix(crlf + 2);
    return line;
  };

  HeadParse result;
  RequestHead& request = result.head;
  const std::string_view request_line = next_line();
  const std::size_t first_space = request_line.find(' ');
  const std::size_t last_space = request_line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return Malformed("the request line is not METHOD TARGET VERSION");
  }
  const std::string_view method = request_line.substr(0, first_space);
  const std::string_view target =
      request_line.substr(first_space + 1, last_space - first_space - 1);
  const std::string_view version = request_line.substr(last_space + 1);
  if (!IsValidHeaderName(method)) return Malformed("the method is not a token");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Malformed("only HTTP/1.0 and HTTP/1.1 are served");
  }
  if (!target.starts_with('/') || std::any_of(target.begin(), target.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte <= 0x20 || byte >= 0x7F;
      })) {
    return Malformed("the request target must be a path of visible ASCII");
  }
  request.method = std::string(method);
  const std::size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));

  while (!head.empty()) {
    const std::string_view line = next_line();
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Malformed("obsolete line folding in the header fields");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Malformed("a header line without a colon");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimSpaces(line.substr(colon + 1));
    if (!IsValidHeaderName(name)) return Malformed("a header name that is not a token");
    if (!IsValidHeaderValue(value)) return Malformed("a control character in a header value");
    request.headers.emplace_back(Lower(name), std::string(value));
  }
  result.state = HeadParse::State::kComplete;
  return result;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    if (pair.empty()) continue;
    const std::size_t equals = pair.find('=');
    out.emplace_back(
        PercentDecode(pair.substr(0, equals)),
        equals == std::string_view::npos ? "" : PercentDecode(pair.substr(equals + 1)));
  }
  return out;
}

}  // namespace hb
