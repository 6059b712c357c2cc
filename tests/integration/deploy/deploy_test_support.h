#pragma once

// Helpers shared by the Helm chart and container image tests: reading
// files, finding programs on PATH, a scratch directory, and comparing YAML
// trees. Not thread-safe; each test binary uses them from its main thread.

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace hb::deploy_test {

// The whole file; records a test failure and returns "" when unreadable.
std::string ReadFile(const std::filesystem::path& path);

// The first executable `name` on PATH; empty when there is none.
std::filesystem::path FindProgram(std::string_view name);

// A fresh directory under the system temp directory, removed with its
// contents on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to path()/name and returns that path.
  std::filesystem::path Write(const std::string& name, std::string_view text) const;

 private:
  std::filesystem::path path_;
};

// Structural equality: same scalars, same sequences in order, same maps
// whatever their key order (helm's toYaml sorts keys).
bool SameYaml(const YAML::Node& a, const YAML::Node& b);

// Decodes standard base64 (a Secret's data). Invalid input records a test
// failure and returns what was decoded before it.
std::string DecodeBase64(std::string_view text);

}  // namespace hb::deploy_test
