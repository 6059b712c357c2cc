// The Dockerfile, checked without a Docker engine: its build stage must be
// the project's own bootstrap and CMake build, and its runtime stage must
// install the Debian package of every shared library the built binary
// loads (ldd + dpkg on this Debian 12 machine, the image's release) and
// nothing the binary does not need.

#include <fnmatch.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/deploy/debian_packages.h"
#include "tests/integration/deploy/deploy_test_support.h"
#include "tests/integration/deploy/dockerfile.h"
#include "tests/support/process/bridge_under_test.h"

namespace hb::deploy_test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kSource = HB_SOURCE_DIR;
using test_support::kBridge;
const fs::path kBinaryDir = HB_BINARY_DIR;

// Runtime packages that are not shared libraries, and why the image needs
// them anyway.
const std::map<std::string, std::string> kRuntimeDataPackages = {
    {"ca-certificates", "trust store for https Consul, webhooks and Kafka TLS"}};

class ContainerImage : public ::testing::Test {
 protected:
  void SetUp() override {
    stages_ = ParseDockerfile(ReadFile(kSource / "Dockerfile"));
    ASSERT_GE(stages_.size(), 2U) << "a multi-stage Dockerfile";
  }
  const Stage& BuildStage() const { return stages_.front(); }
  const Stage& RuntimeStage() const { return stages_.back(); }

  std::vector<Stage> stages_;
};

TEST_F(ContainerImage, BothStagesAreDebianBookworm) {
  EXPECT_EQ(BuildStage().image, "debian:bookworm");
  EXPECT_THAT(RuntimeStage().image, ::testing::MatchesRegex("debian:bookworm(-slim)?"));
  EXPECT_FALSE(BuildStage().name.empty()) << "the runtime stage copies from it by name";
}

TEST_F(ContainerImage, BuildStageRunsBootstrapThenTheCMakeBuildOfScriptsTest) {
  std::string runs;
  for (const std::string& run : BuildStage().Args("RUN")) runs += run + "\n";
  const std::size_t bootstrap = runs.find("scripts/bootstrap");
  const std::size_t configure = runs.find("cmake -S . -B build");
  ASSERT_NE(bootstrap, std::string::npos) << "the build stage must run scripts/bootstrap";
  ASSERT_NE(configure, std::string::npos);
  EXPECT_LT(bootstrap, configure);
  EXPECT_NE(runs.find("cmake --build build", configure), std::string::npos);

  const auto words = Words(runs.substr(configure, runs.find("&&", configure) - configure));
  std::map<std::string, std::string> defines;
  std::string generator;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (words[i] == "-G" && i + 1 < words.size()) generator = words[i + 1];
    if (words[i].starts_with("-D")) {
      const std::size_t equals = words[i].find('=');
      defines[words[i].substr(2, equals - 2)] = words[i].substr(equals + 1);
    }
  }
  std::smatch match;
  const std::string test_script = ReadFile(kSource / "scripts/test");
  ASSERT_TRUE(std::regex_search(test_script, match, std::regex(R"(cmake -S \. -B \S+ -G (\S+))")));
  EXPECT_EQ(generator, match[1]) << "the generator of scripts/test";
  EXPECT_EQ(defines["CMAKE_BUILD_TYPE"], "Release");
  EXPECT_EQ(defines["HB_BUILD_TESTS"], "OFF");
  EXPECT_EQ(defines["HB_BUILD_BENCHMARKS"], "OFF");

  // A renamed option would otherwise be ignored by CMake with a warning.
  const std::string options = ReadFile(kSource / "cmake/ProjectOptions.cmake");
  std::set<std::string> declared;
  static const std::regex kOption(R"((?:option|set)\((HB_[A-Z0-9_]+))");
  for (auto it = std::sregex_iterator(options.begin(), options.end(), kOption);
       it != std::sregex_iterator(); ++it) {
    declared.insert((*it)[1]);
  }
  for (const auto& [name, value] : defines) {
    if (name.starts_with("HB_")) {
      EXPECT_TRUE(declared.contains(name)) << name << " is not an option in ProjectOptions.cmake";
    }
  }
}

TEST_F(ContainerImage, RuntimeStageRunsTheBuiltBinaryAsNonRootOnTheServerPort) {
  // COPY --from=<build> <workdir>/build/<target path> <destination>
  const std::string workdir = BuildStage().Args("WORKDIR").at(0);
  const std::string built =
      workdir + "/build/" + fs::path(kBridge).lexically_relative(kBinaryDir).string();
  std::string installed;
  for (const std::string& copy : RuntimeStage().Args("COPY")) {
    const auto words = Words(copy);
    if (words.size() == 3 && words[0] == "--from=" + BuildStage().name && words[1] == built) {
      installed = words[2];
    }
  }
  ASSERT_FALSE(installed.empty()) << "no COPY --from=" << BuildStage().name << " " << built;

  const auto entrypoint = YAML::Load(RuntimeStage().Args("ENTRYPOINT").at(0));
  ASSERT_TRUE(entrypoint.IsSequence()) << "exec form, so signals reach the bridge";
  EXPECT_EQ(entrypoint[0].as<std::string>(), installed);

  const auto users = RuntimeStage().Args("USER");
  ASSERT_EQ(users.size(), 1U);
  std::smatch user;
  ASSERT_TRUE(std::regex_match(users[0], user, std::regex(R"((\d+)(:(\d+))?)")))
      << "a numeric uid, which Kubernetes' runAsNonRoot can verify: " << users[0];
  EXPECT_NE(user[1], "0");
  const YAML::Node values =
      YAML::LoadFile((kSource / "deploy/helm/health-bridge/values.yaml").string());
  EXPECT_EQ(values["podSecurityContext"]["runAsUser"].as<std::string>(), user[1].str())
      << "the chart must run the pod as the image's user";

  // The port of ServerConfig's default listen address.
  const std::string config_header = ReadFile(kSource / "config/bridge_config.h");
  std::smatch listen;
  ASSERT_TRUE(
      std::regex_search(config_header, listen, std::regex(R"re(listen = "[^"]*:(\d+)")re")));
  EXPECT_EQ(RuntimeStage().Args("EXPOSE"), std::vector<std::string>{listen[1].str()});

  // The default command reads a config the image ships.
  const auto command = YAML::Load(RuntimeStage().Args("CMD").at(0));
  ASSERT_EQ(command.size(), 2U);
  EXPECT_EQ(command[0].as<std::string>(), "--config");
  bool shipped = false;
  for (const std::string& copy : RuntimeStage().Args("COPY")) {
    const auto words = Words(copy);
    shipped |= words.size() == 2 && words[1] == command[1].as<std::string>() &&
               fs::exists(kSource / words[0]);
  }
  EXPECT_TRUE(shipped) << "CMD's config " << command[1] << " is not copied into the image";
}

TEST_F(ContainerImage, RuntimePackagesCoverEverySharedLibraryOfTheBinary) {
  // dpkg answers for this machine: only meaningful on the image's release.
  const std::string os = ReadFile("/etc/os-release");
  ASSERT_THAT(os, HasSubstr("VERSION_CODENAME=bookworm"))
      << "run this test on Debian 12 (bookworm), the image's release";

  const std::set<std::string> listed = AptInstalled(RuntimeStage());
  ASSERT_FALSE(listed.empty()) << "the runtime stage installs no packages";
  const std::set<std::string> available = DependencyClosure(listed);
  const auto libraries = LibraryPackages(kBridge);
  ASSERT_FALSE(libraries.empty());
  for (const auto& [library, package] : libraries) {
    EXPECT_TRUE(available.contains(package))
        << library << " comes from " << package
        << ", which the runtime stage neither installs nor gets as a dependency: add " << package
        << " to the apt-get install of the Dockerfile's last stage";
  }
}

TEST_F(ContainerImage, RuntimePackagesAreOnlyThoseTheBinaryNeeds) {
  std::set<std::string> needed;
  for (const auto& [library, package] : LibraryPackages(kBridge)) needed.insert(package);
  ASSERT_FALSE(needed.empty());
  for (const std::string& package : AptInstalled(RuntimeStage())) {
    EXPECT_TRUE(needed.contains(package) || kRuntimeDataPackages.contains(package))
        << package << " is installed in the runtime stage, but the binary links no library of it";
  }
  for (const std::string& run : RuntimeStage().Args("RUN")) {
    EXPECT_THAT(run, ::testing::Not(HasSubstr("scripts/bootstrap")));
    EXPECT_THAT(run, ::testing::Not(::testing::ContainsRegex("-dev( |$)")));
  }
}

TEST_F(ContainerImage, DockerignoreKeepsHostBuildsOutButNotTheSources) {
  // Docker's rule: the last pattern that matches a path or one of its
  // parents decides; `!` re-includes.
  std::vector<std::string> patterns;
  std::istringstream lines(ReadFile(kSource / ".dockerignore"));
  for (std::string line; std::getline(lines, line);) {
    line.erase(0, line.find_first_not_of(" \t"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty() || line.starts_with("#")) continue;
    if (line.starts_with("/")) line.erase(0, 1);
    patterns.push_back(line);
  }
  auto ignored = [&](const std::string& path) {
    bool result = false;
    for (std::string pattern : patterns) {
      const bool negated = pattern.starts_with("!");
      if (negated) pattern.erase(0, 1);
      if (pattern.starts_with("**/")) pattern = "*" + pattern.substr(2);
      for (std::size_t end = path.find('/');; end = path.find('/', end + 1)) {
        const std::string prefix = path.substr(0, end);
        if (::fnmatch(pattern.c_str(), prefix.c_str(), FNM_PATHNAME) == 0 ||
            (pattern.starts_with("*/") &&
             ::fnmatch(pattern.substr(2).c_str(), prefix.c_str(), FNM_PATHNAME) == 0)) {
          result = !negated;
          break;
        }
        if (end == std::string::npos) break;
      }
    }
    return result;
  };
  // A host CMakeCache.txt in the context makes the image's configure fail.
  for (const char* path :
       {"build/release/CMakeCache.txt", "build/asan/build.ninja", ".tools/bin/helm"}) {
    EXPECT_TRUE(ignored(path)) << path << " would be sent to the Docker build";
  }
  for (const char* path :
       {"CMakeLists.txt", "cmake/ProjectOptions.cmake", "scripts/bootstrap", "bridge/app/main.cc",
        "config/examples/minimal.yaml", "sinks/CMakeLists.txt", ".git/HEAD"}) {
    EXPECT_FALSE(ignored(path)) << path << " is needed by the image build but ignored";
  }
}

}  // namespace
}  // namespace hb::deploy_test
