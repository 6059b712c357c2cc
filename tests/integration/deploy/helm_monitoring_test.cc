// The chart's Prometheus side: the PrometheusRule is
// deploy/prometheus/alerts.yaml itself (a symlink helm follows, in the
// chart directory and in the packaged chart), and the ServiceMonitor
// scrapes the bridge as the job those alerts select.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>

#include "tests/integration/deploy/helm_fixture.h"

namespace hb::deploy_test {
namespace {

namespace fs = std::filesystem;
using test_support::RunResult;
using test_support::RunToCompletion;
using ::testing::HasSubstr;

TEST_F(HelmChart, PrometheusRuleIsDeployPrometheusAlertsYamlNotACopy) {
  const fs::path linked = ChartDir() / "files/alerts.yaml";
  ASSERT_TRUE(fs::is_symlink(linked)) << linked << " must link to " << AlertRules();
  EXPECT_TRUE(fs::equivalent(linked, AlertRules()));
  const YAML::Node alerts = YAML::LoadFile(AlertRules().string());
  ASSERT_GT(alerts["groups"].size(), 0U);

  const auto objects = Render({"--set", "prometheusRule.enabled=true"});
  ASSERT_FALSE(objects.empty());
  const YAML::Node rule = One(objects, "PrometheusRule");
  EXPECT_EQ(Str(rule["apiVersion"]), "monitoring.coreos.com/v1");
  EXPECT_TRUE(SameYaml(rule["spec"]["groups"], alerts["groups"]))
      << "rendered:\n"
      << rule["spec"]["groups"] << "\nalerts.yaml:\n"
      << alerts["groups"];
}

TEST_F(HelmChart, PackagedChartCarriesTheAlertRulesItLinks) {
  ScratchDir scratch;
  const RunResult package = Helm({"package", ChartDir().string(), "--destination", scratch.path()});
  ASSERT_EQ(package.exit_code, 0) << package.err;
  const YAML::Node chart = YAML::LoadFile((ChartDir() / "Chart.yaml").string());
  const fs::path archive = scratch.path() / ("health-bridge-" + Str(chart["version"]) + ".tgz");
  ASSERT_TRUE(fs::exists(archive)) << package.out;

  // Rendered from the archive alone: the symlink must have become a file.
  const auto objects = Render({"--set", "prometheusRule.enabled=true"}, archive.string());
  ASSERT_FALSE(objects.empty());
  EXPECT_TRUE(SameYaml(One(objects, "PrometheusRule")["spec"]["groups"],
                       YAML::LoadFile(AlertRules().string())["groups"]));
  // ci/ values are for testing the chart, not part of it.
  const RunResult listed = RunToCompletion(FindProgram("tar"), {"-tzf", archive.string()});
  EXPECT_THAT(listed.out, HasSubstr("health-bridge/files/alerts.yaml"));
  EXPECT_THAT(listed.out, ::testing::Not(HasSubstr("/ci/")));
}

TEST_F(HelmChart, ServiceMonitorScrapesTheServiceAsTheJobTheAlertsSelect) {
  const auto objects = Render({"-f", FullValues().string()});
  ASSERT_FALSE(objects.empty());
  const YAML::Node monitor = One(objects, "ServiceMonitor");
  const YAML::Node service = One(objects, "Service");
  EXPECT_TRUE(
      LabelsInclude(service["metadata"]["labels"], monitor["spec"]["selector"]["matchLabels"]));
  EXPECT_EQ(Str(monitor["spec"]["namespaceSelector"]["matchNames"][0]), kNamespace);
  EXPECT_EQ(Str(monitor["spec"]["endpoints"][0]["port"]), Str(service["spec"]["ports"][0]["name"]));
  EXPECT_EQ(Str(monitor["spec"]["endpoints"][0]["path"]), "/metrics");
  const std::string job = Str(service["metadata"]["labels"][Str(monitor["spec"]["jobLabel"])]);
  EXPECT_EQ(job, "health-bridge");
  EXPECT_THAT(ReadFile(AlertRules()), HasSubstr("job=\"" + job + "\""));
}

}  // namespace
}  // namespace hb::deploy_test
