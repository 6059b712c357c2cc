// The Helm chart (deploy/helm/health-bridge) as a real helm renders it
// with its default values, every option switched on (ci/full-values.yaml)
// and the README's minimal example: lint, the objects Kubernetes gets, and
// the config it renders fed to the health-bridge binary's own validator
// with the environment the pod would have.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/deploy/helm_fixture.h"

namespace hb::deploy_test {
namespace {

namespace fs = std::filesystem;
using test_support::ChildProcess;
using test_support::RunResult;
using test_support::RunToCompletion;
using ::testing::HasSubstr;

// What the README's `kubectl create secret` puts in the existing Secret the
// minimal example names: the chart cannot see it, so the test supplies it.
std::map<std::string, std::string> MinimalExistingSecret() {
  return {{"WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
          {"CONSUL_HTTP_TOKEN", "6f1f3e52-3c1e-4a4b-9d7b-0f0c2c8c9e11"}};
}

// The port of a host:port listen address, 0 when there is none.
int ListenPort(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return 0;
  int port = 0;
  const char* end = listen.data() + listen.size();
  const auto [stop, error] = std::from_chars(listen.data() + colon + 1, end, port);
  return error == std::errc() && stop == end ? port : 0;
}

// A values set the chart is tested with: its helm arguments and the keys
// of any Secret it names that the chart does not create.
struct ValuesCase {
  std::string name;
  std::vector<std::string> args;
  std::map<std::string, std::string> existing_secret;
};

void PrintTo(const ValuesCase& values, std::ostream* out) { *out << values.name; }

std::vector<ValuesCase> ValuesCases() {
  return {{"defaults", {}, {}},
          {"full", {"-f", FullValues().string()}, {}},
          {"minimal_example", {"-f", MinimalValues().string()}, MinimalExistingSecret()}};
}

class HelmChartValues : public HelmChart, public ::testing::WithParamInterface<ValuesCase> {
 protected:
  // The environment the bridge container gets: env entries (with
  // Kubernetes' $(VAR) expansion), the Secret behind envFrom, and a stand-in
  // for values only the cluster knows (fieldRef and the like).
  static std::map<std::string, std::string> PodEnvironment(const std::vector<YAML::Node>& objects,
                                                           const YAML::Node& container) {
    std::map<std::string, std::string> env;
    for (const YAML::Node& from : container["envFrom"]) {
      const std::string secret_name = Str(from["secretRef"]["name"]);
      EXPECT_FALSE(secret_name.empty()) << "envFrom other than a Secret: " << from;
      bool rendered = false;
      for (const YAML::Node& secret : OfKind(objects, "Secret")) {
        if (Str(secret["metadata"]["name"]) != secret_name) continue;
        rendered = true;
        for (const auto& entry : secret["data"]) {
          env[entry.first.as<std::string>()] = DecodeBase64(Str(entry.second));
        }
      }
      if (!rendered) {
        EXPECT_FALSE(GetParam().existing_secret.empty())
            << "envFrom names Secret " << secret_name << ", which the chart does not render";
        env.insert(GetParam().existing_secret.begin(), GetParam().existing_secret.end());
      }
    }
    static const std::regex kReference(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
    for (const YAML::Node& variable : container["env"]) {
      const std::string name = Str(variable["name"]);
      if (!variable["value"].IsDefined()) {
        env[name] = "10.0.0.1";  // fieldRef status.hostIP and the like
        continue;
      }
      std::string value = Str(variable["value"]);
      std::smatch match;
      std::string expanded;
      while (std::regex_search(value, match, kReference)) {
        const auto known = env.find(match[1].str());
        expanded += match.prefix().str() + (known == env.end() ? match[0].str() : known->second);
        value = match.suffix().str();
      }
      env[name] = expanded + value;
    }
    return env;
  }
};

TEST_P(HelmChartValues, LintStrictPasses) {
  std::vector<std::string> args = {"lint", "--strict", ChartDir().string()};
  args.insert(args.end(), GetParam().args.begin(), GetParam().args.end());
  const RunResult lint = Helm(args);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << lint.err;
  EXPECT_THAT(lint.out, HasSubstr("1 chart(s) linted, 0 chart(s) failed"));
}

TEST_P(HelmChartValues, EveryObjectHasTheKeysKubernetesRequires) {
  const auto objects = Render(GetParam().args);
  ASSERT_FALSE(objects.empty());
  static const std::regex kDnsSubdomain("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
  for (const YAML::Node& object : objects) {
    const std::string name = Str(object["metadata"]["name"]);
    SCOPED_TRACE(Str(object["kind"]) + " " + name);
    EXPECT_FALSE(Str(object["apiVersion"]).empty());
    EXPECT_FALSE(Str(object["kind"]).empty());
    EXPECT_TRUE(std::regex_match(name, kDnsSubdomain)) << "metadata.name '" << name << "'";
    for (const char* label :
         {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
          "app.kubernetes.io/component", "app.kubernetes.io/managed-by", "helm.sh/chart"}) {
      EXPECT_FALSE(Str(object["metadata"]["labels"][label]).empty()) << "label " << label;
    }
  }

  const YAML::Node deployment = One(objects, "Deployment");
  ASSERT_TRUE(deployment.IsDefined());
  const YAML::Node pod = deployment["spec"]["template"];
  EXPECT_TRUE(
      LabelsInclude(pod["metadata"]["labels"], deployment["spec"]["selector"]["matchLabels"]))
      << "the Deployment's selector does not select its own pods";
  ASSERT_EQ(pod["spec"]["containers"].size(), 1U);
  const YAML::Node container = pod["spec"]["containers"][0];
  EXPECT_THAT(Str(container["image"]), ::testing::MatchesRegex("[^ ]+:[^:/ ]+"));

  const YAML::Node config = RenderedConfig(objects);
  const std::string listen =
      config["server"]["listen"] ? Str(config["server"]["listen"]) : "0.0.0.0:9464";
  ASSERT_EQ(container["ports"].size(), 1U);
  EXPECT_EQ(container["ports"][0]["containerPort"].as<int>(), ListenPort(listen));
  const std::string port_name = Str(container["ports"][0]["name"]);
  EXPECT_EQ(Str(container["livenessProbe"]["httpGet"]["path"]), "/healthz");
  EXPECT_EQ(Str(container["livenessProbe"]["httpGet"]["port"]), port_name);
  EXPECT_EQ(Str(container["readinessProbe"]["httpGet"]["path"]), "/readyz");
  EXPECT_EQ(Str(container["readinessProbe"]["httpGet"]["port"]), port_name);

  const YAML::Node security = container["securityContext"];
  EXPECT_EQ(Str(security["runAsNonRoot"]), "true");
  EXPECT_EQ(Str(security["readOnlyRootFilesystem"]), "true");
  EXPECT_EQ(Str(security["allowPrivilegeEscalation"]), "false");
  EXPECT_EQ(Str(security["capabilities"]["drop"][0]), "ALL");
  EXPECT_GT(pod["spec"]["securityContext"]["runAsUser"].as<int>(0), 0);
  EXPECT_TRUE(container["resources"]["requests"].IsMap());
  EXPECT_TRUE(container["resources"]["limits"]["memory"].IsScalar());
  EXPECT_THAT(Str(pod["metadata"]["annotations"]["checksum/config"]),
              ::testing::MatchesRegex("[0-9a-f]{64}"));

  const YAML::Node service = One(objects, "Service");
  EXPECT_TRUE(LabelsInclude(pod["metadata"]["labels"], service["spec"]["selector"]))
      << "the Service does not select the bridge's pods";
  EXPECT_EQ(Str(service["spec"]["ports"][0]["targetPort"]), port_name);
}

TEST_P(HelmChartValues, RenderedConfigPassesCheckConfigWithThePodsEnvironment) {
  const auto objects = Render(GetParam().args);
  ASSERT_FALSE(objects.empty());
  const std::string config_text = Str(One(objects, "ConfigMap")["data"]["config.yaml"]);
  ASSERT_FALSE(config_text.empty());
  const YAML::Node container =
      One(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];

  ScratchDir scratch;
  const fs::path config = scratch.Write("config.yaml", config_text);
  ChildProcess::Options options;
  // Only the pod's environment counts, not the developer's shell's.
  for (const char* name :
       {"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL",
        "CONSUL_CACERT", "CONSUL_CAPATH", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY",
        "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_SSL_VERIFY"}) {
    options.env[name] = std::nullopt;
  }
  // A ${VAR} the pod lacks must stay unset even if this shell has it.
  static const std::regex kVariable(R"(\$\{([^}]+)\})");
  for (auto it = std::sregex_iterator(config_text.begin(), config_text.end(), kVariable);
       it != std::sregex_iterator(); ++it) {
    options.env[(*it)[1].str()] = std::nullopt;
  }
  for (const auto& [name, value] : PodEnvironment(objects, container)) options.env[name] = value;
  const RunResult check =
      RunToCompletion(BridgeBinary(), {"check-config", config.string()}, options);
  EXPECT_EQ(check.exit_code, 0) << check.err << "\nconfig:\n" << config_text;
  for (const YAML::Node& sink : YAML::Load(config_text)["sinks"]) {
    EXPECT_THAT(check.out, HasSubstr(Str(sink["name"])));
  }
}

std::string ValuesCaseName(const ::testing::TestParamInfo<ValuesCase>& values) {
  return values.param.name;
}

INSTANTIATE_TEST_SUITE_P(Values, HelmChartValues, ::testing::ValuesIn(ValuesCases()),
                         ValuesCaseName);

TEST_F(HelmChart, CheckConfigFailsWhenTheConfigNeedsAVariableThePodLacks) {
  ScratchDir scratch;
  const fs::path values = scratch.Write("values.yaml", R"(config:
  sinks:
    - name: hooks
      type: webhook
      url: http://alert-router:8080/consul
      secret: ${NOT_IN_THE_POD}
)");
  const auto objects = Render({"-f", values.string()});
  ASSERT_FALSE(objects.empty());
  const fs::path config =
      scratch.Write("config.yaml", Str(One(objects, "ConfigMap")["data"]["config.yaml"]));
  ChildProcess::Options options;
  options.env["NOT_IN_THE_POD"] = std::nullopt;
  const RunResult check =
      RunToCompletion(BridgeBinary(), {"check-config", config.string()}, options);
  EXPECT_EQ(check.exit_code, 2);
  EXPECT_THAT(check.err, HasSubstr("NOT_IN_THE_POD is not set"));
}

TEST_F(HelmChart, DefaultsRenderOnlyTheAlwaysOnObjects) {
  const auto objects = Render({});
  EXPECT_EQ(Kinds(objects),
            (std::multiset<std::string>{"ConfigMap", "Deployment", "Service", "ServiceAccount"}));
  const YAML::Node deployment = One(objects, "Deployment");
  EXPECT_EQ(deployment["spec"]["replicas"].as<int>(), 1);
  EXPECT_FALSE(deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"].IsDefined());
}

TEST_F(HelmChart, FullValuesRenderEveryOptionalObject) {
  const auto objects = Render({"-f", FullValues().string()});
  EXPECT_EQ(Kinds(objects), (std::multiset<std::string>{
                                "ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim",
                                "PodDisruptionBudget", "PrometheusRule", "Secret", "Service",
                                "ServiceAccount", "ServiceMonitor"}));
}

TEST_F(HelmChart, WebConfigSecretIsMountedAndTurnsProbesAndScrapesToHttps) {
  const auto objects = Render({"-f", FullValues().string()});
  ASSERT_FALSE(objects.empty());
  const std::string web_config = Str(RenderedConfig(objects)["server"]["web_config_file"]);
  EXPECT_EQ(web_config, "/etc/health-bridge-web/web.yml");
  const YAML::Node pod = One(objects, "Deployment")["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  std::string volume_name;
  for (const YAML::Node& mount : container["volumeMounts"]) {
    if (Str(mount["mountPath"]) == "/etc/health-bridge-web") volume_name = Str(mount["name"]);
  }
  ASSERT_FALSE(volume_name.empty());
  std::string secret;
  for (const YAML::Node& volume : pod["volumes"]) {
    if (Str(volume["name"]) == volume_name) secret = Str(volume["secret"]["secretName"]);
  }
  EXPECT_EQ(secret, "health-bridge-web");
  EXPECT_EQ(Str(container["livenessProbe"]["httpGet"]["scheme"]), "HTTPS");
  EXPECT_EQ(Str(container["readinessProbe"]["httpGet"]["scheme"]), "HTTPS");
  const YAML::Node endpoint = One(objects, "ServiceMonitor")["spec"]["endpoints"][0];
  EXPECT_EQ(Str(endpoint["scheme"]), "https");
  EXPECT_TRUE(endpoint["basicAuth"].IsDefined());

  // The defaults stay plain HTTP, with no web config.
  const auto plain = Render({});
  EXPECT_FALSE(RenderedConfig(plain)["server"].IsDefined() &&
               RenderedConfig(plain)["server"]["web_config_file"].IsDefined());
  EXPECT_EQ(Str(One(plain, "Deployment")["spec"]["template"]["spec"]["containers"][0]
                                        ["livenessProbe"]["httpGet"]["scheme"]),
            "HTTP");
}

TEST_F(HelmChart, NetworkPolicyAdmitsOnlyTheListedPeersToThePort) {
  const auto listed = Render({"-f", FullValues().string()});
  const YAML::Node rule = One(listed, "NetworkPolicy")["spec"]["ingress"][0];
  EXPECT_EQ(rule["ports"][0]["port"].as<int>(), 9100);  // full-values.yaml's server.listen
  ASSERT_EQ(rule["from"].size(), 1U);
  EXPECT_TRUE(rule["from"][0]["namespaceSelector"].IsDefined());
  // Nobody listed: no ingress rule at all, which admits nobody (an empty
  // `from` would admit everyone).
  const auto none = Render({"--set", "networkPolicy.enabled=true"});
  const YAML::Node spec = One(none, "NetworkPolicy")["spec"];
  EXPECT_EQ(spec["ingress"].size(), 0U);
  EXPECT_EQ(Str(spec["policyTypes"][0]), "Ingress");
}

TEST_F(HelmChart, ChartAppVersionIsTheProjectVersionAndTheDefaultImageTag) {
  const YAML::Node chart = YAML::LoadFile((ChartDir() / "Chart.yaml").string());
  EXPECT_EQ(Str(chart["apiVersion"]), "v2");
  EXPECT_EQ(Str(chart["appVersion"]), HB_PROJECT_VERSION)
      << "Chart.yaml appVersion must follow project(VERSION) in CMakeLists.txt";
  const auto objects = Render({});
  ASSERT_FALSE(objects.empty());
  EXPECT_THAT(Str(One(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]),
              ::testing::EndsWith(std::string(":") + HB_PROJECT_VERSION));
}

TEST_F(HelmChart, ConfigChangeRollsThePodsAndOtherChangesDoNot) {
  auto checksums = [](const std::vector<std::string>& args) {
    const auto objects = Render(args);
    const YAML::Node annotations =
        One(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"];
    return std::pair(Str(annotations["checksum/config"]), Str(annotations["checksum/secret"]));
  };
  const auto base = checksums({"-f", FullValues().string()});
  ASSERT_FALSE(base.first.empty());
  ASSERT_FALSE(base.second.empty()) << "a chart-managed Secret must roll the pods too";
  const auto config_changed =
      checksums({"-f", FullValues().string(), "--set", "config.log.level=info"});
  EXPECT_NE(config_changed.first, base.first);
  EXPECT_EQ(config_changed.second, base.second);
  const auto secret_changed = checksums(
      {"-f", FullValues().string(), "--set-string", "secrets.env.KAFKA_PASSWORD=rotated"});
  EXPECT_EQ(secret_changed.first, base.first);
  EXPECT_NE(secret_changed.second, base.second);
  const auto unrelated = checksums({"-f", FullValues().string(), "--set", "service.port=9200"});
  EXPECT_EQ(unrelated, base);
}

TEST_F(HelmChart, PersistenceMountsItsClaimAtStateDirAndRecreatesPods) {
  const auto objects = Render({"-f", FullValues().string()});
  ASSERT_FALSE(objects.empty());
  const std::string state_dir = Str(RenderedConfig(objects)["state"]["dir"]);
  ASSERT_FALSE(state_dir.empty());
  const YAML::Node deployment = One(objects, "Deployment");
  const YAML::Node pod = deployment["spec"]["template"]["spec"];
  std::string volume_name;
  for (const YAML::Node& mount : pod["containers"][0]["volumeMounts"]) {
    if (Str(mount["mountPath"]) == state_dir) volume_name = Str(mount["name"]);
  }
  ASSERT_FALSE(volume_name.empty()) << "nothing is mounted at state.dir " << state_dir;
  std::string claim;
  for (const YAML::Node& volume : pod["volumes"]) {
    if (Str(volume["name"]) == volume_name) {
      claim = Str(volume["persistentVolumeClaim"]["claimName"]);
    }
  }
  EXPECT_EQ(claim, Str(One(objects, "PersistentVolumeClaim")["metadata"]["name"]));
  // Two pods on one ReadWriteOnce claim and one state.dir: never.
  EXPECT_EQ(Str(deployment["spec"]["strategy"]["type"]), "Recreate");
}

TEST_F(HelmChart, StateDirWithoutPersistenceIsAWritableEmptyDir) {
  const auto objects = Render({"--set", "config.state.dir=/var/lib/health-bridge"});
  ASSERT_FALSE(objects.empty());
  const YAML::Node pod = One(objects, "Deployment")["spec"]["template"]["spec"];
  std::string volume_name;
  for (const YAML::Node& mount : pod["containers"][0]["volumeMounts"]) {
    if (Str(mount["mountPath"]) == "/var/lib/health-bridge") {
      volume_name = Str(mount["name"]);
      EXPECT_FALSE(mount["readOnly"].as<bool>(false));
    }
  }
  ASSERT_FALSE(volume_name.empty()) << "nothing is mounted at state.dir";
  bool empty_dir = false;
  for (const YAML::Node& volume : pod["volumes"]) {
    empty_dir |= Str(volume["name"]) == volume_name && volume["emptyDir"].IsDefined();
  }
  EXPECT_TRUE(empty_dir) << "the read-only root filesystem leaves state.dir unwritable";
  EXPECT_TRUE(OfKind(objects, "PersistentVolumeClaim").empty());
}

TEST_F(HelmChart, ReadmeDeploymentSectionUsesTheTestedExample) {
  const std::string readme = ReadFile(SourceDir() / "README.md");
  const std::size_t section = readme.find("\n## Deployment");
  ASSERT_NE(section, std::string::npos) << "README.md has no Deployment section";
  const std::string text = readme.substr(section, readme.find("\n## ", section + 1) - section);
  EXPECT_THAT(text, HasSubstr("helm install"));
  EXPECT_THAT(text, HasSubstr(fs::relative(MinimalValues(), SourceDir()).string()));
  EXPECT_THAT(text, HasSubstr(fs::relative(ChartDir(), SourceDir()).string()));
}

}  // namespace
}  // namespace hb::deploy_test
