// The change detector decides which covered services are read again after
// an answer of /v1/health/state/any: a service it fails to name is a
// transition the bridge never reports.

#include "bridge/watch/change_detector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bridge/watch/watcher.h"

namespace hb {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

CheckRow ServiceCheck(const std::string& node, const std::string& service_id,
                      const std::string& service, const std::string& status,
                      std::uint64_t modify_index) {
  return {node, "service:" + service_id, service_id, service, status, modify_index};
}

CheckRow NodeCheck(const std::string& node, const std::string& check_id, const std::string& status,
                   std::uint64_t modify_index) {
  return {node, check_id, "", "", status, modify_index};
}

Instance On(const std::string& node, const std::string& id, const std::string& service) {
  Instance instance;
  instance.node = node;
  instance.id = id;
  instance.service = service;
  return instance;
}

class ChangeDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseline_ = {NodeCheck("node-a", "serfHealth", "passing", 5),
                 NodeCheck("node-b", "serfHealth", "passing", 6),
                 ServiceCheck("node-a", "web-1", "web", "passing", 10),
                 ServiceCheck("node-b", "web-2", "web", "passing", 11),
                 ServiceCheck("node-a", "db-1", "db", "passing", 12)};
    EXPECT_THAT(detector_.OnChecks(baseline_), IsEmpty());  // the baseline names nothing
    EXPECT_FALSE(detector_.has_baseline());                 // the whole table is not read yet
    EXPECT_THAT(detector_.OnTable(baseline_), IsEmpty());
    EXPECT_TRUE(detector_.has_baseline());
    detector_.RecordInstances("web", {On("node-a", "web-1", "web"), On("node-b", "web-2", "web")});
    detector_.RecordInstances("db", {On("node-a", "db-1", "db")});
    detector_.RecordInstances("cache", {On("node-b", "cache-1", "cache")});  // no checks at all
  }

  std::vector<CheckRow> baseline_;
  ChangeDetector detector_;
};

TEST_F(ChangeDetectorTest, AnUnchangedAnswerNamesNothing) {
  EXPECT_THAT(detector_.OnChecks(baseline_), IsEmpty());
}

TEST_F(ChangeDetectorTest, AServiceCheckThatChangedStatusNamesItsService) {
  baseline_[4].status = "critical";
  baseline_[4].modify_index = 20;
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("db"));
}

TEST_F(ChangeDetectorTest, AWriteWithTheSameStatusStillNamesItsService) {
  // The output moved (a deferred TTL output): re-read and let the engine
  // decide that nothing it reports changed.
  baseline_[2].modify_index = 30;
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("web"));
}

TEST_F(ChangeDetectorTest, ANodeCheckFlipNamesEveryServiceWithAnInstanceOnThatNode) {
  baseline_[1].status = "critical";  // node-b's agent died
  baseline_[1].modify_index = 40;
  // cache has no check of its own, but its instance is on node-b.
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("cache", "web"));
}

TEST_F(ChangeDetectorTest, NodeMaintenanceAddedAndRemovedNamesTheNodesServices) {
  auto with_maintenance = baseline_;
  with_maintenance.push_back(NodeCheck("node-a", "_node_maintenance", "critical", 50));
  EXPECT_THAT(detector_.OnChecks(with_maintenance), ElementsAre("db", "web"));
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("db", "web"));
}

TEST_F(ChangeDetectorTest, ServiceMaintenanceNamesItsServiceOnly) {
  auto with_maintenance = baseline_;
  with_maintenance.push_back({"node-a", "_service_maintenance:db-1", "db-1", "db", "critical", 51});
  EXPECT_THAT(detector_.OnChecks(with_maintenance), ElementsAre("db"));
}

TEST_F(ChangeDetectorTest, InstancesComingAndGoingWithTheirChecksNameTheirService) {
  auto more = baseline_;
  more.push_back(ServiceCheck("node-c", "web-3", "web", "critical", 60));
  more.push_back(ServiceCheck("node-c", "api-1", "api", "passing", 60));
  EXPECT_THAT(detector_.OnChecks(more), ElementsAre("api", "web"));
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("api", "web"));
}

TEST_F(ChangeDetectorTest, AnIndexThatWentBackwardsIsDiffedLikeAnyOtherAnswer) {
  // A snapshot restore rewrites the ModifyIndexes lower: every service whose
  // checks moved is read again (the engine finds nothing new to report).
  auto restored = baseline_;
  for (auto& row : restored) row.modify_index = std::min<std::uint64_t>(row.modify_index, 2);
  EXPECT_THAT(detector_.OnChecks(restored), ElementsAre("cache", "db", "web"));
  EXPECT_THAT(detector_.OnChecks(restored), IsEmpty());
}

TEST_F(ChangeDetectorTest, AForgottenServiceIsNoLongerNamedByItsNode) {
  detector_.Forget("cache");
  baseline_[1].status = "critical";
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("web"));
}

TEST_F(ChangeDetectorTest, AnInstanceThatMovedNodesFollowsItsNewNode) {
  detector_.RecordInstances("db", {On("node-b", "db-1", "db")});
  baseline_[0].status = "critical";  // node-a
  EXPECT_THAT(detector_.OnChecks(baseline_), ElementsAre("web"));
}

TEST_F(ChangeDetectorTest, ExplainsTheIndexesItSawWrittenOnly) {
  auto registered = baseline_;
  registered.push_back(ServiceCheck("node-c", "api-1", "api", "passing", 70));
  detector_.OnChecks(registered, 70);
  EXPECT_TRUE(detector_.Explains(70));   // a registration with its check
  EXPECT_TRUE(detector_.Explains(12));   // db-1's check was written at 12
  EXPECT_FALSE(detector_.Explains(69));  // a write no check shows (meta, checkless)
  // A deregistration removes checks: the answer's own index is the write's.
  detector_.OnChecks(baseline_, 75);
  EXPECT_TRUE(detector_.Explains(75));
  EXPECT_FALSE(detector_.Explains(70));
  // An instance without checks deregistered: Consul moves the checks
  // table's index, but nothing in the answer changed.
  detector_.OnChecks(baseline_, 80);
  EXPECT_FALSE(detector_.Explains(80));
}

TEST_F(ChangeDetectorTest, AfterResetTheNextAnswerIsANewBaseline) {
  detector_.Reset();
  EXPECT_FALSE(detector_.has_baseline());
  baseline_[4].status = "critical";
  EXPECT_THAT(detector_.OnChecks(baseline_), IsEmpty());
  EXPECT_FALSE(detector_.has_table());
  EXPECT_THAT(detector_.OnTable(baseline_), IsEmpty());
  EXPECT_TRUE(detector_.has_baseline());
}

// The blocking query answers only the checks that are not passing: a check
// entering that set, leaving it, or changing status within it is a health
// transition of its service (or of every service on its node).
class UnhealthySetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    detector_.RecordInstances("web", {On("node-a", "web-1", "web"), On("node-b", "web-2", "web")});
    detector_.RecordInstances("db", {On("node-a", "db-1", "db")});
    EXPECT_THAT(detector_.OnChecks({}, 100), IsEmpty());
    EXPECT_THAT(detector_.OnTable({}, 100), IsEmpty());
  }
  ChangeDetector detector_;
};

TEST_F(UnhealthySetTest, EnteringChangingWithinAndLeavingTheSetNameTheService) {
  const auto warning = ServiceCheck("node-a", "db-1", "db", "warning", 101);
  const auto critical = ServiceCheck("node-a", "db-1", "db", "critical", 102);
  EXPECT_THAT(detector_.OnChecks({warning}, 101), ElementsAre("db"));
  EXPECT_THAT(detector_.OnChecks({critical}, 102), ElementsAre("db"));
  // Another check's passing write moves the index only: nothing to read.
  EXPECT_THAT(detector_.OnChecks({critical}, 103), IsEmpty());
  EXPECT_THAT(detector_.OnChecks({}, 104), ElementsAre("db"));  // passing again
}

TEST_F(UnhealthySetTest, MaintenanceChecksNameTheirServiceOrTheWholeNode) {
  const auto service_maintenance =
      CheckRow{"node-b", "_service_maintenance:web-2", "web-2", "web", "critical", 110};
  EXPECT_THAT(detector_.OnChecks({service_maintenance}, 110), ElementsAre("web"));
  EXPECT_THAT(detector_.OnChecks({}, 111), ElementsAre("web"));
  EXPECT_THAT(detector_.OnChecks({NodeCheck("node-a", "_node_maintenance", "critical", 112)}, 112),
              ElementsAre("db", "web"));
  EXPECT_THAT(detector_.OnChecks({NodeCheck("node-a", "serfHealth", "critical", 113)}, 113),
              ElementsAre("db", "web"));  // maintenance removed, serf failed: both named
}

// A registration whose checks all pass, or the deregistration of a passing
// instance, never shows in the unhealthy set: the whole table read on the
// catalog's move names it and explains the move.
TEST_F(UnhealthySetTest, TheTableReadNamesPassingRegistrationsAndDeregistrations) {
  const auto api = ServiceCheck("node-c", "api-1", "api", "passing", 120);
  EXPECT_THAT(detector_.OnChecks({}, 120), IsEmpty());
  EXPECT_FALSE(detector_.Explains(120));
  EXPECT_THAT(detector_.OnTable({api}, 120), ElementsAre("api"));
  EXPECT_TRUE(detector_.Explains(120));
  EXPECT_THAT(detector_.OnTable({}, 125), ElementsAre("api"));  // deregistered
  EXPECT_TRUE(detector_.Explains(125));
  EXPECT_FALSE(detector_.Explains(120));
  EXPECT_THAT(detector_.OnTable({}, 130), IsEmpty());  // a checkless instance: not explained
  EXPECT_FALSE(detector_.Explains(130));
}

// The whole table is diffed off the watch thread: while a read is out for
// its diff, the filtered answers keep naming services, and the read's result
// is taken back afterwards.
TEST_F(UnhealthySetTest, FilteredAnswersAreDiffedWhileATableReadIsOutForItsDiff) {
  const auto api = ServiceCheck("node-c", "api-1", "api", "passing", 120);
  ChangeDetector::TableBase base = detector_.TakeTable();
  EXPECT_TRUE(base.has_baseline);
  EXPECT_TRUE(detector_.has_baseline());  // a change after the baseline still shows
  // A lapse lands while the table is diffed elsewhere.
  EXPECT_THAT(detector_.OnChecks({ServiceCheck("node-a", "db-1", "db", "critical", 121)}, 121),
              ElementsAre("db"));
  EXPECT_TRUE(detector_.Explains(121));
  ChangeDetector::TableRead read = ChangeDetector::DiffTable({api}, 120, base);
  EXPECT_THAT(detector_.ApplyTable(std::move(read)), ElementsAre("api"));
  EXPECT_TRUE(detector_.Explains(120));
  // The next read is diffed against the one taken back.
  EXPECT_THAT(detector_.OnTable({api}, 122), IsEmpty());
}

// Table reads keep to a share of the time, so one may come after the same
// check was written again (registered passing, lapsed, re-registered): the
// catalog's earlier move is still that service's, not a write no check shows.
TEST_F(UnhealthySetTest, ATableReadAfterLaterWritesOfTheSameCheckStillExplainsTheEarlierMoves) {
  const auto api = ServiceCheck("node-c", "api-1", "api", "passing", 122);
  EXPECT_THAT(detector_.OnTable({api}, 122), ElementsAre("api"));
  EXPECT_TRUE(detector_.Explains(120));
  EXPECT_TRUE(detector_.Explains(122));
  EXPECT_FALSE(detector_.Explains(100));  // before the read before: settled by it
  EXPECT_FALSE(detector_.Explains(123));  // after this read
  EXPECT_THAT(detector_.OnTable({api}, 130), IsEmpty());
  EXPECT_FALSE(detector_.Explains(125));  // nothing named since: a write no check shows
}

TEST_F(UnhealthySetTest, ATableReadStartedBeforeAResetIsDropped) {
  ChangeDetector::TableBase base = detector_.TakeTable();
  detector_.Reset();
  const auto api = ServiceCheck("node-c", "api-1", "api", "passing", 120);
  EXPECT_THAT(detector_.ApplyTable(ChangeDetector::DiffTable({api}, 120, base)), IsEmpty());
  EXPECT_FALSE(detector_.has_table());  // the next read is the new baseline
  EXPECT_THAT(detector_.OnTable({api}, 121), IsEmpty());
  EXPECT_TRUE(detector_.has_table());
}

TEST_F(UnhealthySetTest, AFailedTableReadKeepsTheLastReadAsItsBaseline) {
  const auto api = ServiceCheck("node-c", "api-1", "api", "passing", 120);
  EXPECT_THAT(detector_.OnTable({api}, 120), ElementsAre("api"));
  detector_.RestoreTable(detector_.TakeTable());  // the next read was malformed
  EXPECT_THAT(detector_.OnTable({api}, 121), IsEmpty());
  EXPECT_THAT(detector_.OnTable({}, 122), ElementsAre("api"));
}

TEST(ConnectionPlan, SpendsTheBudgetOnTheCatalogTheDetectorReadsAndDedicatedQueries) {
  const ConnectionPlan standard = ConnectionPlan::For(100);
  EXPECT_EQ(standard.reads, 8u);
  EXPECT_EQ(standard.dedicated, 90u);  // 100 - catalog - detector - 8 reads
  const ConnectionPlan smallest = ConnectionPlan::For(3);
  EXPECT_EQ(smallest.reads, 1u);
  EXPECT_EQ(smallest.dedicated, 0u);
  EXPECT_EQ(ConnectionPlan::For(40).reads, 4u);
  EXPECT_EQ(ConnectionPlan::For(40).dedicated, 34u);
}

}  // namespace
}  // namespace hb
