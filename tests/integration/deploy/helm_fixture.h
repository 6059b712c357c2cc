#pragma once

// The fixture of the Helm chart tests: a real helm from scripts/install-helm
// (which fetches it on a fresh machine; a failed install fails every test
// with its reason), run with scratch config/cache/data homes, and helpers
// to pick objects out of what `helm template` renders.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/deploy/deploy_test_support.h"
#include "tests/support/process/child_process.h"

namespace hb::deploy_test {

// Functions, not constants: a path built at static initialization could
// throw before main, where nothing can catch it.
inline std::filesystem::path SourceDir() { return HB_SOURCE_DIR; }
inline std::filesystem::path ChartDir() { return SourceDir() / "deploy/helm/health-bridge"; }
inline std::filesystem::path FullValues() { return ChartDir() / "ci/full-values.yaml"; }
inline std::filesystem::path MinimalValues() {
  return SourceDir() / "deploy/helm/examples/minimal-values.yaml";
}
inline std::filesystem::path AlertRules() { return SourceDir() / "deploy/prometheus/alerts.yaml"; }
inline std::filesystem::path BridgeBinary() { return HB_BRIDGE_BINARY; }
inline constexpr std::string_view kRelease = "health-bridge";
inline constexpr std::string_view kNamespace = "observability";

// A scalar's text; "" for anything else (missing keys included).
std::string Str(const YAML::Node& node);

std::vector<YAML::Node> OfKind(const std::vector<YAML::Node>& objects, const std::string& kind);

// The one object of `kind`; records a failure and returns an undefined
// node when there is not exactly one.
YAML::Node One(const std::vector<YAML::Node>& objects, const std::string& kind);

std::multiset<std::string> Kinds(const std::vector<YAML::Node>& objects);

// True when every label of `subset` is in `labels` with the same value.
bool LabelsInclude(const YAML::Node& labels, const YAML::Node& subset);

// The bridge's config as rendered into the chart's ConfigMap.
YAML::Node RenderedConfig(const std::vector<YAML::Node>& objects);

class HelmChart : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  // Runs helm with its config, cache and data homes in a scratch directory,
  // so the tests neither read nor write the developer's helm setup.
  static test_support::RunResult Helm(const std::vector<std::string>& args);
  // `helm template` of `chart` (a directory or packaged .tgz) as release
  // kRelease in kNamespace, with `extra` arguments.
  static test_support::RunResult Template(const std::vector<std::string>& extra,
                                          const std::string& chart = ChartDir().string());
  // The rendered objects; a failed render records a failure and returns
  // none, so callers ASSERT on the result being non-empty.
  static std::vector<YAML::Node> Render(const std::vector<std::string>& extra,
                                        const std::string& chart = ChartDir().string());

 private:
  static std::optional<std::filesystem::path> helm_;
  static std::string install_error_;
  static std::unique_ptr<ScratchDir> homes_;
};

}  // namespace hb::deploy_test
