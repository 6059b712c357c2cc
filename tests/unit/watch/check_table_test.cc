// The kept read of the whole checks table says which services were written
// between two reads: a registration or deregistration whose checks all pass
// shows nowhere else, so a change it fails to name is never reported.

#include "bridge/watch/check_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hb {
namespace {

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

using Change = CheckTable::Change;

CheckRow ServiceCheck(const std::string& node, const std::string& service_id,
                      const std::string& service, const std::string& status,
                      std::uint64_t modify_index) {
  return {node, "service:" + service_id, service_id, service, status, modify_index};
}

CheckRow NodeCheck(const std::string& node, const std::string& status, std::uint64_t modify_index) {
  return {node, "serfHealth", "", "", status, modify_index};
}

const std::vector<CheckRow> kBaseline = {NodeCheck("node-a", "passing", 5),
                                         ServiceCheck("node-a", "web-1", "web", "passing", 10),
                                         ServiceCheck("node-b", "db-1", "db", "passing", 12)};

TEST(CheckTable, TheSameReadNamesNothing) {
  EXPECT_THAT(CheckTable(kBaseline).ChangesSince(CheckTable(kBaseline)), IsEmpty());
}

TEST(CheckTable, AddedRemovedAndWrittenChecksNameTheirService) {
  std::vector<CheckRow> rows = kBaseline;
  rows[1].modify_index = 20;     // web-1 written, still passing (a re-registration)
  rows.erase(rows.begin() + 2);  // db-1 deregistered
  rows.push_back(ServiceCheck("node-c", "api-1", "api", "passing", 21));  // registered
  std::uint64_t latest_write = 0;
  EXPECT_THAT(CheckTable(rows, 25).ChangesSince(CheckTable(kBaseline, 15), &latest_write),
              UnorderedElementsAre(Change{"web", ""}, Change{"db", ""}, Change{"api", ""}));
  EXPECT_EQ(latest_write, 25u);  // the removal: at this read's index at the latest
  const std::vector<CheckRow> without_removal = {
      kBaseline[0], kBaseline[1], kBaseline[2],
      ServiceCheck("node-c", "api-1", "api", "passing", 21)};
  EXPECT_THAT(
      CheckTable(without_removal, 25).ChangesSince(CheckTable(kBaseline, 15), &latest_write),
      UnorderedElementsAre(Change{"api", ""}));
  EXPECT_EQ(latest_write, 21u);
}

TEST(CheckTable, ANodeCheckNamesItsNode) {
  std::vector<CheckRow> rows = kBaseline;
  rows[0] = NodeCheck("node-a", "critical", 30);
  EXPECT_THAT(CheckTable(rows).ChangesSince(CheckTable(kBaseline)),
              UnorderedElementsAre(Change{"", "node-a"}));
}

TEST(CheckTable, ACheckIdTakenOverByAnotherServiceNamesBoth) {
  std::vector<CheckRow> rows = kBaseline;
  rows[1].service_name = "web-canary";
  rows[1].modify_index = 31;
  EXPECT_THAT(CheckTable(rows).ChangesSince(CheckTable(kBaseline)),
              UnorderedElementsAre(Change{"web", ""}, Change{"web-canary", ""}));
}

// Node and check names are Consul's text, any bytes: two different pairs
// must never be taken for one check.
TEST(CheckTable, NamesThatConcatenateAlikeAreDifferentChecks) {
  const CheckTable before({CheckRow{"ab", "c", "", "", "passing", 1}});
  const CheckTable after({CheckRow{"a", "bc", "", "", "passing", 1}});
  EXPECT_THAT(after.ChangesSince(before), UnorderedElementsAre(Change{"", "a"}, Change{"", "ab"}));
}

TEST(CheckTable, KnowsTheIndexesItsChecksWereWrittenAt) {
  const CheckTable table(kBaseline);
  EXPECT_TRUE(table.Wrote(10));
  EXPECT_TRUE(table.Wrote(12));
  EXPECT_FALSE(table.Wrote(11));
  EXPECT_EQ(table.size(), 3u);
}

}  // namespace
}  // namespace hb
