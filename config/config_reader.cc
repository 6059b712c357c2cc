#include "config/config_reader.h"

#include <algorithm>
#include <cstdlib>

#include "config/byte_size.h"
#include "config/duration.h"

namespace hb {
namespace {

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string_view TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "a scalar";
  }
}

}  // namespace

Environment ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    // Read at startup only, before any thread exists.
    const char* value = std::getenv(std::string(name).c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

void ConfigErrors::Add(std::string_view path, std::string_view message) {
  std::string line(path);
  line += ": ";
  line += message;
  messages_.push_back(std::move(line));
}

void ConfigErrors::AddFromEnvironment(std::string_view path, std::string_view variable) {
  std::string line(path);
  line += ": ";
  line += variable;
  from_environment_.push_back(std::move(line));
}

std::string Quote(std::string_view value) {
  std::string out = "\"";
  out += value;
  out += '"';
  return out;
}

ConfigReader::ConfigReader(YAML::Node node, std::string path, ConfigErrors& errors,
                           const Environment& env)
    : node_(node), path_(std::move(path)), errors_(errors), env_(env) {
  if (present() && !node_.IsMap()) {
    errors_.Add(path_.empty() ? "(top level)" : path_,
                "expected a mapping, got " + std::string(TypeName(node_)));
    node_ = YAML::Node();
  }
}

std::string ConfigReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool ConfigReader::Has(std::string_view key) {
  known_.emplace(key);
  if (!present()) return false;
  const YAML::Node value = node_[std::string(key)];
  return value.IsDefined() && !value.IsNull();
}

void ConfigReader::Error(std::string_view key, std::string_view message) {
  errors_.Add(PathOf(key), message);
}

std::optional<std::string> ConfigReader::Substitute(const std::string& text, std::string_view key) {
  if (text.find('$') == std::string::npos) return text;
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const std::size_t end = text.find('}', i + 2);
    if (end == std::string::npos) {
      Error(key, "unterminated ${ in " + Quote(text));
      return std::nullopt;
    }
    const std::string name = text.substr(i + 2, end - i - 2);
    const auto value = env_(name);
    if (!value) {
      Error(key, "environment variable " + name + " is not set");
      return std::nullopt;
    }
    out += *value;
    errors_.AddFromEnvironment(PathOf(key), "${" + name + "}");
    i = end + 1;
  }
  return out;
}

std::optional<std::string> ConfigReader::Scalar(std::string_view key, std::string_view expected) {
  if (!Has(key)) return std::nullopt;
  const YAML::Node value = node_[std::string(key)];
  if (!value.IsScalar()) {
    Error(key, "expected " + std::string(expected) + ", got " + std::string(TypeName(value)));
    return std::nullopt;
  }
  return Substitute(value.Scalar(), key);
}

std::string ConfigReader::String(std::string_view key, std::string fallback) {
  auto value = Scalar(key, "a string");
  return value ? *value : std::move(fallback);
}

bool ConfigReader::Bool(std::string_view key, bool fallback) {
  auto value = Scalar(key, "true or false");
  if (!value) return fallback;
  if (*value == "true") return true;
  if (*value == "false") return false;
  Error(key, "expected true or false, got " + Quote(*value));
  return fallback;
}

std::int64_t ConfigReader::Int(std::string_view key, std::int64_t fallback, std::int64_t min,
                               std::int64_t max) {
  auto value = Scalar(key, "an integer");
  if (!value) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long parsed = std::strtoll(value->c_str(), &end, 10);
  if (value->empty() || *end != '\0' || errno != 0) {
    Error(key, "expected an integer, got " + Quote(*value));
    return fallback;
  }
  if (parsed < min || parsed > max) {
    Error(key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                   ", got " + *value);
    return fallback;
  }
  return parsed;
}

std::uint64_t ConfigReader::Bytes(std::string_view key, std::uint64_t fallback, std::uint64_t min,
                                  std::uint64_t max) {
  auto value = Scalar(key, "a size");
  if (!value) return fallback;
  auto parsed = ParseByteSize(*value);
  if (!parsed) {
    Error(key, "expected a size in bytes such as 1048576, \"512KiB\", \"64MiB\" or \"1GiB\", got " +
                   Quote(*value));
    return fallback;
  }
  if (*parsed < min) {
    Error(key, "must be at least " + FormatByteSize(min) + ", got " + Quote(*value));
    return fallback;
  }
  if (*parsed > max) {
    Error(key, "must be at most " + FormatByteSize(max) + ", got " + Quote(*value));
    return fallback;
  }
  return *parsed;
}

std::chrono::milliseconds ConfigReader::Duration(std::string_view key,
                                                 std::chrono::milliseconds fallback,
                                                 std::chrono::milliseconds max) {
  auto value = Scalar(key, "a duration");
  if (!value) return fallback;
  if (!value->empty() && value->front() == '-') {
    Error(key, "must not be negative, got " + Quote(*value));
    return fallback;
  }
  auto parsed = ParseDuration(*value);
  if (!parsed) {
    Error(key,
          "expected a duration such as \"500ms\", \"10s\", \"5m\" or \"1h\", got " + Quote(*value));
    return fallback;
  }
  if (*parsed > max) {
    Error(key, "must be at most " + FormatDuration(max) + ", got " + Quote(*value));
    return fallback;
  }
  return *parsed;
}

std::vector<std::string> ConfigReader::StringList(std::string_view key,
                                                  std::vector<std::string> fallback,
                                                  bool allow_comma_string) {
  if (!Has(key)) return fallback;
  const YAML::Node value = node_[std::string(key)];
  std::vector<std::string> out;
  if (value.IsScalar() && allow_comma_string) {
    auto text = Substitute(value.Scalar(), key);
    if (!text) return fallback;
    std::size_t start = 0;
    while (start <= text->size()) {
      const std::size_t comma = std::min(text->find(',', start), text->size());
      std::string item = text->substr(start, comma - start);
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      if (!item.empty()) out.push_back(item);
      start = comma + 1;
    }
    return out;
  }
  if (!value.IsSequence()) {
    Error(key, "expected a list of strings, got " + std::string(TypeName(value)));
    return fallback;
  }
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string item_key = std::string(key) + "[" + std::to_string(i) + "]";
    if (!value[i].IsScalar()) {
      Error(item_key, "expected a string, got " + std::string(TypeName(value[i])));
      continue;
    }
    if (auto item = Substitute(value[i].Scalar(), item_key)) out.push_back(*item);
  }
  return out;
}

std::map<std::string, std::string> ConfigReader::StringMap(std::string_view key) {
  std::map<std::string, std::string> out;
  if (!Has(key)) return out;
  const YAML::Node value = node_[std::string(key)];
  if (!value.IsMap()) {
    Error(key, "expected a mapping of names to values, got " + std::string(TypeName(value)));
    return out;
  }
  for (const auto& entry : value) {
    const std::string name = entry.first.as<std::string>();
    const std::string item_key = std::string(key) + "." + name;
    if (!entry.second.IsScalar()) {
      Error(item_key,
            "expected a string, number or bool, got " + std::string(TypeName(entry.second)));
      continue;
    }
    if (auto item = Substitute(entry.second.Scalar(), item_key)) out[name] = *item;
  }
  return out;
}

ConfigReader ConfigReader::Section(std::string_view key) {
  Has(key);
  return ConfigReader(present() ? node_[std::string(key)] : YAML::Node(), PathOf(key), errors_,
                      env_);
}

YAML::Node ConfigReader::Raw(std::string_view key) {
  Has(key);
  return present() ? node_[std::string(key)] : YAML::Node();
}

void ConfigReader::Finish() {
  if (!present()) return;
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) {
      errors_.Add(path_.empty() ? "(top level)" : path_,
                  "expected plain keys, got a list or map as a key");
      continue;
    }
    const std::string key = entry.first.Scalar();
    if (known_.contains(key)) continue;
    std::string message = "unknown key";
    std::string best;
    std::size_t best_distance = 3;  // at most two edits: a typo, not another key
    for (const auto& candidate : known_) {
      const std::size_t distance = EditDistance(key, candidate);
      if (distance < best_distance) {
        best_distance = distance;
        best = candidate;
      }
    }
    if (!best.empty()) message += "; did you mean " + best + "?";
    errors_.Add(PathOf(key), message);
  }
}

}  // namespace hb
