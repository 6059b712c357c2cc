#include "bridge/model/protocol_text.h"

#include <algorithm>
#include <cstdint>

namespace hb {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }

void AppendEncoded(std::string& out, unsigned char c) {
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

}  // namespace

void AppendIdPart(std::string& out, std::string_view part) {
  for (const char ch : part) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c > 0x7E || c == '%' || c == '/') {
      AppendEncoded(out, c);
    } else {
      out.push_back(ch);
    }
  }
}

std::string InstanceEventId(std::string_view datacenter, std::string_view node,
                            std::string_view instance_id, std::uint64_t index,
                            std::string_view event) {
  return InstanceEventId(datacenter, SourceScope{}, node, instance_id, index, event);
}

std::string ServiceEventId(std::string_view datacenter, std::string_view service,
                           std::uint64_t index, std::string_view event) {
  return ServiceEventId(datacenter, SourceScope{}, service, index, event);
}

// The default scope's source key is the datacenter alone, so one builder
// serves every source.
std::string InstanceEventId(std::string_view datacenter, const SourceScope& scope,
                            std::string_view node, std::string_view instance_id,
                            std::uint64_t index, std::string_view event) {
  std::string id;
  id.reserve(datacenter.size() + node.size() + instance_id.size() + 40);
  AppendSourceKey(id, datacenter, scope);
  id += '/';
  AppendIdPart(id, node);
  id += '/';
  AppendIdPart(id, instance_id);
  id.append("/").append(std::to_string(index)).append("/").append(event);
  return id;
}

std::string ServiceEventId(std::string_view datacenter, const SourceScope& scope,
                           std::string_view service, std::uint64_t index, std::string_view event) {
  std::string id;
  AppendSourceKey(id, datacenter, scope);
  id += '/';
  AppendIdPart(id, service);
  id.append("/").append(std::to_string(index)).append("/").append(event);
  return id;
}

std::string HeaderSafe(std::string_view value) {
  const bool clean = std::none_of(value.begin(), value.end(), [](char ch) {
    return IsControl(static_cast<unsigned char>(ch));
  });
  if (clean) return std::string(value);
  std::string out;
  out.reserve(value.size() + 8);
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsControl(c)) {
      AppendEncoded(out, c);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

bool IsValidHeaderValue(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char ch) {
    return ch != '\t' && IsControl(static_cast<unsigned char>(ch));
  });
}

bool IsValidHeaderName(std::string_view name) {
  static constexpr std::string_view kTokenSymbols = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kTokenSymbols.find(ch) != std::string_view::npos;
  });
}

std::string LogSafe(std::string_view text, std::size_t limit) {
  std::string out;
  out.reserve(std::min(text.size(), limit) + 4);
  for (const char ch : text) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(ch);
    if (IsControl(c)) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

}  // namespace hb
