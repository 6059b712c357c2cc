#include "bridge/common/peer_text.h"

#include <algorithm>
#include <cctype>

namespace hb {
namespace {

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

std::size_t FindNoCase(std::string_view text, std::string_view needle, std::size_t from = 0) {
  for (std::size_t i = from; i + needle.size() <= text.size(); ++i) {
    if (StartsWithNoCase(text.substr(i), needle)) return i;
  }
  return std::string_view::npos;
}

bool LooksLikeHtml(std::string_view body) {
  const std::size_t first = body.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || body[first] != '<') return false;
  return FindNoCase(body, "<html") != std::string_view::npos ||
         FindNoCase(body, "<!doctype html") != std::string_view::npos ||
         FindNoCase(body, "<title") != std::string_view::npos ||
         FindNoCase(body, "<body") != std::string_view::npos;
}

// The text of an HTML page that says what went wrong: its title, else its
// text without tags.
std::string HtmlText(std::string_view body) {
  if (const std::size_t open = FindNoCase(body, "<title"); open != std::string_view::npos) {
    const std::size_t start = body.find('>', open);
    const std::size_t end = FindNoCase(body, "</title", open);
    if (start != std::string_view::npos && end != std::string_view::npos && start < end) {
      const std::string_view title = body.substr(start + 1, end - start - 1);
      if (title.find_first_not_of(" \t\r\n") != std::string_view::npos) return std::string(title);
    }
  }
  std::string text;
  bool in_tag = false;
  for (const char c : body) {
    if (c == '<') {
      in_tag = true;
      text.push_back(' ');
    } else if (c == '>') {
      in_tag = false;
    } else if (!in_tag) {
      text.push_back(c);
    }
  }
  return text;
}

// Length of the valid UTF-8 sequence at `text[i]`, 0 when invalid.
std::size_t Utf8Length(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  std::size_t length = 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) length = 2;
  if (c >= 0xE0 && c <= 0xEF) length = 3;
  if (c >= 0xF0 && c <= 0xF4) length = 4;
  if (length == 0 || i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

std::string SummarizePeerText(std::string_view body, std::size_t limit) {
  const std::string html = LooksLikeHtml(body) ? HtmlText(body) : std::string();
  const std::string_view text = html.empty() ? body : std::string_view(html);
  std::string out;
  out.reserve(std::min(text.size(), limit) + 3);
  bool space = false;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F || c == ' ') {
      space = !out.empty();
      ++i;
      continue;
    }
    const std::size_t length = Utf8Length(text, i);
    const std::size_t width = length == 0 ? 1 : length;
    if (out.size() + (space ? 1 : 0) + width > limit) {
      out += "...";
      return out;
    }
    if (space) out.push_back(' ');
    space = false;
    if (length == 0) {
      out.push_back('?');
    } else {
      out.append(text.substr(i, length));
    }
    i += width;
  }
  return out;
}

}  // namespace hb
