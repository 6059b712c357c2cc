#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_loader.h"
#include "sinks/builtin_sinks.h"

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class SourcesConfigTest : public ::testing::Test {
 protected:
  SourcesConfigTest() { RegisterBuiltinSinks(registry_); }

  LoadResult Load(std::string_view yaml) {
    return LoadConfigString(yaml, registry_.Parsers(),
                            [](std::string_view) { return std::optional<std::string>(); });
  }

  // The one error of a config that must fail.
  std::string ErrorOf(std::string_view yaml) {
    const LoadResult result = Load(yaml);
    EXPECT_FALSE(result.ok());
    if (result.errors.size() != 1) {
      ADD_FAILURE() << "expected one error, got " << result.errors.size();
      return result.errors.empty() ? "" : result.errors.front();
    }
    return result.errors.front();
  }

  SinkRegistry registry_;
};

TEST_F(SourcesConfigTest, DefaultIsNoSourceList) {
  const LoadResult result = Load("consul:\n  datacenter: dc1\n");
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result.config->watch.watcher.sources, IsEmpty());
}

TEST_F(SourcesConfigTest, ReadsEveryKindOfSource) {
  const LoadResult result = Load(R"(
watch:
  services:
    include: ["web*"]
  sources:
    - {}
    - datacenter: dc2
      services:
        include: ["payments*"]
        tags: [prod]
    - peer: cluster-east
    - namespace: team-a
      partition: eu
)");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  const auto& sources = result.config->watch.watcher.sources;
  ASSERT_EQ(sources.size(), 4U);
  EXPECT_EQ(sources[0], (WatchSource{"", "", "", "", {{"web*"}, {"consul"}, {}}}));
  // A source's own services keys replace the global ones, the rest stay.
  EXPECT_EQ(sources[1], (WatchSource{"dc2", "", "", "", {{"payments*"}, {"consul"}, {"prod"}}}));
  EXPECT_EQ(sources[2].peer, "cluster-east");
  EXPECT_THAT(sources[2].services.include, ElementsAre("web*"));
  EXPECT_EQ(sources[3].ns, "team-a");
  EXPECT_EQ(sources[3].partition, "eu");
}

TEST_F(SourcesConfigTest, CheckConfigShowsTheSources) {
  const LoadResult result = Load("watch:\n  sources:\n    - datacenter: dc2\n    - peer: east\n");
  ASSERT_TRUE(result.ok());
  const LoadResult again = Load(FormatEffectiveConfig(*result.config, false));
  ASSERT_TRUE(again.ok()) << testing::PrintToString(again.errors);
  EXPECT_EQ(again.config->watch.watcher.sources, result.config->watch.watcher.sources);
}

TEST_F(SourcesConfigTest, NamesTheBadKey) {
  EXPECT_THAT(ErrorOf("watch:\n  sources: dc2\n"),
              HasSubstr("watch.sources: expected a list of sources"));
  EXPECT_THAT(ErrorOf("watch:\n  sources: []\n"),
              HasSubstr("watch.sources: must list at least one source"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - dc2\n"),
              HasSubstr("watch.sources[0]: expected a mapping"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: dc1\n    - datacenter: 'dc 2'\n"),
              HasSubstr("watch.sources[1].datacenter: expected a datacenter name"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - peer: 'east/x'\n"),
              HasSubstr("watch.sources[0].peer: expected a peer name"));
  // Wildcards are whole values, each kind with its own.
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: 'a*'\n"),
              HasSubstr("watch.sources[0].datacenter: expected a datacenter name"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: '*'\n"),
              HasSubstr("watch.sources[0].datacenter: every datacenter is written \"all\", got "
                        "\"*\""));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - namespace: all\n"),
              HasSubstr("watch.sources[0].namespace: every namespace is written \"*\""));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - partition: 'team-*'\n"),
              HasSubstr("watch.sources[0].partition: expected a partition name"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: all\n      peer: all\n"),
              HasSubstr("watch.sources[0].peer: a peer's services are imported"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: dc2\n      peer: east\n"),
              HasSubstr("watch.sources[0].peer: a peer's services are imported into the local "
                        "datacenter"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: dc2\n      datacentre: dc3\n"),
              HasSubstr("watch.sources[0].datacentre"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - services: {incude: [a]}\n"),
              HasSubstr("watch.sources[0].services.incude"));
}

TEST_F(SourcesConfigTest, ReadsWildcardsAsTemplates) {
  const LoadResult result = Load(R"(
consul:
  max_connections: 100
watch:
  max_sources: 20
  source_grace: 2m
  source_list_interval: 15s
  sources:
    - datacenter: all
      namespace: "*"
    - peer: all
      partition: "*"
    - datacenter: dc2
)");
  ASSERT_TRUE(result.ok()) << testing::PrintToString(result.errors);
  const WatcherOptions& watcher = result.config->watch.watcher;
  ASSERT_EQ(watcher.sources.size(), 3U);
  EXPECT_TRUE(watcher.sources[0].all_datacenters);
  EXPECT_TRUE(watcher.sources[0].all_namespaces);
  EXPECT_EQ(watcher.sources[0].datacenter, "");
  EXPECT_TRUE(watcher.sources[1].all_peers);
  EXPECT_TRUE(watcher.sources[1].all_partitions);
  EXPECT_FALSE(watcher.sources[2].IsTemplate());
  EXPECT_EQ(watcher.max_sources, 20U);
  EXPECT_EQ(watcher.source_grace, std::chrono::minutes(2));
  EXPECT_EQ(watcher.source_list_interval, std::chrono::seconds(15));
  // check-config writes them back as they were read.
  const LoadResult again = Load(FormatEffectiveConfig(*result.config, false));
  ASSERT_TRUE(again.ok()) << testing::PrintToString(again.errors);
  EXPECT_EQ(again.config->watch.watcher.sources, watcher.sources);
  EXPECT_EQ(again.config->watch.watcher.max_sources, 20U);
}

TEST_F(SourcesConfigTest, TemplatesNeedTheirBudgetAndTheirSettingsNeedATemplate) {
  // max_sources shares of 3 plus the listing's connection.
  EXPECT_THAT(ErrorOf("consul:\n  max_connections: 48\nwatch:\n  sources:\n"
                      "    - datacenter: all\n"),
              HasSubstr("consul.max_connections: must be at least 3 per source plus one for "
                        "listing the sources found at run time: watch.max_sources 16 needs 49"));
  EXPECT_TRUE(Load("consul:\n  max_connections: 10\nwatch:\n  max_sources: 3\n  sources:\n"
                   "    - datacenter: all\n")
                  .ok());
  EXPECT_THAT(ErrorOf("watch:\n  max_sources: 3\n  sources:\n    - datacenter: dc2\n"),
              HasSubstr("watch.max_sources: applies to sources found at run time only"));
  EXPECT_THAT(ErrorOf("watch:\n  source_list_interval: 10ms\n  sources:\n"
                      "    - namespace: '*'\n"),
              HasSubstr("watch.source_list_interval: must be at least 1s"));
  // Two wildcard entries alike are the same template twice.
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: all\n    - datacenter: all\n"),
              HasSubstr("watch.sources[1]: every datacenter is already watched"));
}

TEST_F(SourcesConfigTest, RefusesTheSameSourceTwice) {
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - datacenter: dc2\n    - peer: east\n"
                      "    - datacenter: dc2\n"),
              HasSubstr("watch.sources[2]: datacenter dc2 is already watched by "
                        "watch.sources[0]"));
  EXPECT_THAT(ErrorOf("watch:\n  sources:\n    - {}\n    - {}\n"),
              HasSubstr("watch.sources[1]: the agent's datacenter is already watched"));
}

TEST_F(SourcesConfigTest, EverySourceNeedsItsShareOfTheConnectionBudget) {
  EXPECT_THAT(ErrorOf("consul:\n  max_connections: 5\nwatch:\n  sources:\n    - {}\n"
                      "    - datacenter: dc2\n"),
              HasSubstr("consul.max_connections: must be at least 3 per source"));
  EXPECT_TRUE(Load("consul:\n  max_connections: 6\nwatch:\n  sources:\n    - {}\n"
                   "    - datacenter: dc2\n")
                  .ok());
}

TEST_F(SourcesConfigTest, ClusterModeTakesOneSourceOnly) {
  EXPECT_THAT(ErrorOf("cluster: {enabled: true}\nwatch:\n  sources:\n    - {}\n"
                      "    - datacenter: dc2\n"),
              HasSubstr("cluster.enabled: cannot be combined with watch.sources yet"));
}

}  // namespace
}  // namespace hb
