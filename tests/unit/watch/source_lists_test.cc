// The lists that expand watch.sources templates: Consul's answers read
// strictly, and the expansion into concrete sources (every combination, a
// source named twice watched once, Consul's "default" the same as none).

#include "bridge/watch/source_lists.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Lists = std::map<std::string, std::optional<std::vector<std::string>>, std::less<>>;

std::vector<std::string> Keys(const std::vector<FoundSource>& found) {
  std::vector<std::string> keys;
  for (const FoundSource& source : found) keys.push_back(source.key);
  return keys;
}

TEST(SourceListsTest, ReadsConsulsListsStrictly) {
  EXPECT_THAT(*ParseDatacenterList(R"(["dc1","dc2"])"), ElementsAre("dc1", "dc2"));
  EXPECT_FALSE(ParseDatacenterList(R"({"dc1":1})").ok());
  EXPECT_THAT(ParseDatacenterList(R"(["dc1","dc 2"])").status().message(),
              HasSubstr("not a Consul name"));
  // A namespace being deleted (DeletedAt set) is left out.
  EXPECT_THAT(*ParseNamedList(R"([{"Name":"default","Description":"Builtin Default Namespace"},
      {"Name":"team-a","DeletedAt":"2019-12-02T23:00:00Z"},{"Name":"team-b","DeletedAt":null}])",
                              "namespaces"),
              ElementsAre("default", "team-b"));
  EXPECT_FALSE(ParseNamedList(R"([{"Description":"x"}])", "partitions").ok());
  EXPECT_THAT(ParseNamedList(R"([{"Name":"a/b"}])", "partitions").status().message(),
              HasSubstr("partitions answer: not a Consul name"));
  EXPECT_THAT(*ParseActivePeerings(R"([{"Name":"east","State":"ACTIVE"},
      {"Name":"west","State":"FAILING"},{"Name":"north","State":"PENDING"}])"),
              ElementsAre("east"));
  std::string many = "[";
  for (std::size_t i = 0; i <= kMaxListed; ++i)
    many += (i ? ",\"dc" : "\"dc") + std::to_string(i) + "\"";
  many += "]";
  EXPECT_EQ(ParseDatacenterList(many).status().code(), StatusCode::kResourceExhausted);
}

TEST(SourceListsTest, ExpandsEveryCombinationAndAsksForWhatItLacks) {
  WatchSource everything;
  everything.all_datacenters = true;
  everything.all_namespaces = true;
  std::vector<FoundSource> found;
  Lists lists;
  auto next = ExpandSources({everything}, "dc1", lists, found);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->Path(), "/v1/catalog/datacenters");
  lists[next->Key()] = std::vector<std::string>{"dc1", "dc2"};
  next = ExpandSources({everything}, "dc1", lists, found);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->Path(), "/v1/namespaces");
  EXPECT_EQ(next->datacenter, "") << "the local datacenter is asked without ?dc=";
  lists[next->Key()] = std::vector<std::string>{"default", "team-a"};
  next = ExpandSources({everything}, "dc1", lists, found);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->datacenter, "dc2");
  // dc2 could not be listed (cut off): its namespaces are unknown, the
  // rest is complete.
  lists[next->Key()] = std::nullopt;
  EXPECT_FALSE(ExpandSources({everything}, "dc1", lists, found));
  EXPECT_THAT(Keys(found), ElementsAre("dc1", "dc1/ns:team-a"));
}

TEST(SourceListsTest, ASourceNamedTwiceIsWatchedOnceWithTheFirstEntrysServices) {
  WatchSource local;
  local.services.include = {"web*"};
  WatchSource peers;
  peers.all_peers = true;
  WatchSource east;
  east.peer = "east";
  east.services.include = {"never-used"};
  Lists lists;
  lists["peerings@"] = std::vector<std::string>{"east", "west"};
  std::vector<FoundSource> found;
  EXPECT_FALSE(ExpandSources({local, peers, east}, "dc1", lists, found));
  EXPECT_THAT(Keys(found), ElementsAre("dc1", "dc1/peer:east", "dc1/peer:west"));
  EXPECT_EQ(found[0].source.services.include, std::vector<std::string>{"web*"});
  EXPECT_EQ(found[1].entry, 1U);
  EXPECT_EQ(found[1].source.datacenter, "dc1");
}

TEST(SourceListsTest, PartitionsThenTheirNamespaces) {
  WatchSource all;
  all.all_partitions = true;
  all.all_namespaces = true;
  Lists lists;
  lists["partitions@"] = std::vector<std::string>{"default", "eu"};
  lists["namespaces@/"] = std::vector<std::string>{"default"};
  std::vector<FoundSource> found;
  auto next = ExpandSources({all}, "dc1", lists, found);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->Key(), "namespaces@/eu");
  lists[next->Key()] = std::vector<std::string>{"default", "team-a"};
  EXPECT_FALSE(ExpandSources({all}, "dc1", lists, found));
  EXPECT_THAT(Keys(found), ElementsAre("dc1", "dc1/partition:eu", "dc1/ns:team-a/partition:eu"));
}

}  // namespace
}  // namespace hb
