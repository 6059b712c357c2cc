#pragma once

// Typed reading of one YAML mapping with key paths, so every problem in a
// config file is reported at once with where it is and what was expected.
// Used by the loader and by each sink's config parser.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace hb {

// Looks up an environment variable; injected so tests never touch the
// process environment.
using Environment = std::function<std::optional<std::string>(std::string_view)>;
Environment ProcessEnvironment();

// Every problem found, each "<key path>: <what is wrong>", and, beside
// them, which values the environment supplied (check-config shows those).
class ConfigErrors {
 public:
  void Add(std::string_view path, std::string_view message);
  bool empty() const { return messages_.empty(); }
  const std::vector<std::string>& messages() const { return messages_; }

  // "<key path>: <variable>" for a value taken from the environment.
  void AddFromEnvironment(std::string_view path, std::string_view variable);
  const std::vector<std::string>& from_environment() const { return from_environment_; }

 private:
  std::vector<std::string> messages_;
  std::vector<std::string> from_environment_;
};

// Reads the keys of one mapping. Keys never read are reported as unknown by
// Finish(), with a did-you-mean from the keys that were asked for. Scalars
// get ${VAR} substitution from the environment ($${ writes a literal ${).
// Not thread-safe; lives for one load.
// The largest duration and size any setting takes.
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24 * 366);
inline constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 40;  // 1 TiB

class ConfigReader {
 public:
  ConfigReader(YAML::Node node, std::string path, ConfigErrors& errors, const Environment& env);

  // Path of `key` under this mapping: "sinks[1].url".
  std::string PathOf(std::string_view key) const;
  bool Has(std::string_view key);

  std::string String(std::string_view key, std::string fallback = "");
  bool Bool(std::string_view key, bool fallback);
  std::int64_t Int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  // A duration ("1h30m", "500ms"), at most `max`: no setting needs more
  // than a year, and a bound keeps every deadline computed from it finite.
  std::chrono::milliseconds Duration(std::string_view key, std::chrono::milliseconds fallback,
                                     std::chrono::milliseconds max = kMaxDuration);
  // Bytes: an integer or "512KiB", "64MiB", "2GiB"; at least `min`, at
  // most `max`.
  std::uint64_t Bytes(std::string_view key, std::uint64_t fallback, std::uint64_t min,
                      std::uint64_t max = kMaxBytes);
  // A YAML list of strings, or (with `allow_comma_string`) "a,b,c".
  std::vector<std::string> StringList(std::string_view key, std::vector<std::string> fallback,
                                      bool allow_comma_string = false);
  // A mapping of string keys to scalar values (numbers and bools as text).
  std::map<std::string, std::string> StringMap(std::string_view key);
  // A nested mapping (empty when absent). Call Finish() on it too.
  ConfigReader Section(std::string_view key);
  // The raw node under `key` for lists of mappings (marks the key as known).
  YAML::Node Raw(std::string_view key);

  // Records an error for `key` (its full path).
  void Error(std::string_view key, std::string_view message);
  // Reports the keys that were never read as unknown.
  void Finish();

  ConfigErrors& errors() { return errors_; }
  const Environment& env() const { return env_; }
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }

 private:
  std::optional<std::string> Scalar(std::string_view key, std::string_view expected);
  std::optional<std::string> Substitute(const std::string& text, std::string_view key);

  YAML::Node node_;
  std::string path_;
  ConfigErrors& errors_;
  const Environment& env_;
  std::set<std::string, std::less<>> known_;
};

// Quotes a value for an error message: "ftp://x" → "\"ftp://x\"".
std::string Quote(std::string_view value);

}  // namespace hb
