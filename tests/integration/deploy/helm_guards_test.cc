// What the chart refuses, and says why: values that fail its schema
// (unknown keys and wrong types, down to the bridge's config) and setups
// its templates know cannot work.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/deploy/helm_fixture.h"

namespace hb::deploy_test {
namespace {

using test_support::RunResult;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(HelmChart, SchemaRejectsTyposAndWrongTypes) {
  ScratchDir scratch;
  struct Case {
    std::vector<std::string> args;
    std::string named;  // the key the error must name
  };
  const std::vector<Case> cases = {
      {{"--set-string", "replicaCount=x"}, "replicaCount"},
      {{"--set", "replicaCont=2"}, "replicaCont"},
      {{"--set", "image.tagg=1.0"}, "tagg"},
      {{"--set", "service.port=http"}, "service.port"},
      {{"--set", "serviceMonitor.enabled=yes"}, "serviceMonitor.enabled"},
      {{"--set-string", "secrets.env.not-a-variable=x"}, "secrets.env"},
      {{"-f", scratch.Write("consul.yaml", "config: {consul: {adress: http://c:8500}}").string()},
       "adress"},
      {{"-f", scratch.Write("bool.yaml", "config: {watch: {initial_events: sometimes}}").string()},
       "initial_events"},
      {{"-f",
        scratch.Write("sink.yaml", "config: {sinks: [{name: out, type: log, url: http://x:1}]}")
            .string()},
       "url"},
      {{"-f", scratch.Write("type.yaml", "config: {sinks: [{name: out, type: sms}]}").string()},
       "type"},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(::testing::PrintToString(test.args));
    const RunResult rendered = Template(test.args);
    EXPECT_NE(rendered.exit_code, 0) << rendered.out;
    EXPECT_THAT(rendered.err, HasSubstr("schema"));
    EXPECT_THAT(rendered.err, HasSubstr(test.named));
  }
  std::vector<std::string> lint = {"lint", "--strict", ChartDir().string(), "--set-string",
                                   "replicaCount=x"};
  EXPECT_NE(Helm(lint).exit_code, 0) << "helm lint must apply the schema too";
}

TEST_F(HelmChart, SchemaKnowsEveryKeyOfTheFullConfigExample) {
  // config/examples/full.yaml lists every key the bridge understands: a key
  // the schema lacks would make helm refuse a valid configuration.
  YAML::Node values;
  values["config"] = YAML::LoadFile((SourceDir() / "config/examples/full.yaml").string());
  ScratchDir scratch;
  const std::filesystem::path file = scratch.Write("values.yaml", YAML::Dump(values));
  const RunResult rendered = Template({"-f", file.string()});
  EXPECT_EQ(rendered.exit_code, 0)
      << "values.schema.json (definitions.bridgeConfig / definitions.sink) rejects a key of "
         "config/examples/full.yaml; teach it the new key:\n"
      << rendered.err;
}

TEST_F(HelmChart, TemplatesRefuseSetupsThatCannotWork) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"--set", "persistence.enabled=true"}, "persistence.enabled needs config.state.dir"},
      {{"--set", "persistence.enabled=true", "--set", "config.state.dir=/var/lib/hb", "--set",
        "replicaCount=2"},
       "replicas would share one state.dir"},
      {{"--set", "replicaCount=2"}, "replicaCount > 1 needs config.cluster.enabled"},
      {{"--set", "config.state.dir=state"}, "must be an absolute path"},
      {{"--set", "config.server.listen=127.0.0.1:9464"}, "loopback only"},
      {{"--set-string", "config.server.listen=9464"}, "must be host:port"},
      {{"--set", "secrets.existingSecret=mine", "--set", "secrets.env.A=b"}, "exclusive"},
      {{"--set", "podDisruptionBudget.enabled=true", "--set", "podDisruptionBudget.minAvailable=1",
        "--set", "podDisruptionBudget.maxUnavailable=1"},
       "not both"},
  };
  for (const Case& test : cases) {
    SCOPED_TRACE(::testing::PrintToString(test.args));
    const RunResult rendered = Template(test.args);
    EXPECT_NE(rendered.exit_code, 0);
    EXPECT_THAT(rendered.err, HasSubstr(test.error));
  }
}

// Several replicas work in cluster mode only, and then come with a
// disruption budget and a spread over nodes unless the values say otherwise.
TEST_F(HelmChart, SeveralReplicasInClusterModeGetABudgetAndAntiAffinity) {
  const RunResult rendered =
      Template({"--set", "replicaCount=3", "--set", "config.cluster.enabled=true"});
  ASSERT_EQ(rendered.exit_code, 0) << rendered.err;
  EXPECT_THAT(rendered.out, HasSubstr("kind: PodDisruptionBudget"));
  EXPECT_THAT(rendered.out, HasSubstr("maxUnavailable: 1"));
  EXPECT_THAT(rendered.out, HasSubstr("podAntiAffinity:"));
  EXPECT_THAT(rendered.out, HasSubstr("replicas: 3"));
  const RunResult single = Template({});
  ASSERT_EQ(single.exit_code, 0) << single.err;
  EXPECT_THAT(single.out, Not(HasSubstr("podAntiAffinity:")));
  EXPECT_THAT(single.out, Not(HasSubstr("kind: PodDisruptionBudget")));
}

}  // namespace
}  // namespace hb::deploy_test
