#include "bridge/model/health.h"

#include <gtest/gtest.h>

#include <vector>

namespace hb {
namespace {

Check MakeCheck(std::string id, HealthStatus status) {
  Check check;
  check.id = std::move(id);
  check.status = status;
  return check;
}

TEST(AggregateStatus, NoChecksIsPassing) { EXPECT_EQ(AggregateStatus({}), HealthStatus::kPassing); }

TEST(AggregateStatus, WorstCheckWins) {
  std::vector<Check> checks = {MakeCheck("serfHealth", HealthStatus::kPassing),
                               MakeCheck("service:a", HealthStatus::kWarning)};
  EXPECT_EQ(AggregateStatus(checks), HealthStatus::kWarning);
  checks.push_back(MakeCheck("service:a:2", HealthStatus::kCritical));
  EXPECT_EQ(AggregateStatus(checks), HealthStatus::kCritical);
}

TEST(AggregateStatus, MaintenanceBeatsCritical) {
  std::vector<Check> service = {MakeCheck("service:a", HealthStatus::kCritical),
                                MakeCheck("_service_maintenance:a", HealthStatus::kCritical)};
  EXPECT_EQ(AggregateStatus(service), HealthStatus::kMaintenance);
  std::vector<Check> node = {MakeCheck("_node_maintenance", HealthStatus::kCritical),
                             MakeCheck("service:a", HealthStatus::kPassing)};
  EXPECT_EQ(AggregateStatus(node), HealthStatus::kMaintenance);
}

TEST(Check, OnlyConsulMaintenanceIdsAreMaintenance) {
  EXPECT_TRUE(MakeCheck("_node_maintenance", HealthStatus::kCritical).IsMaintenance());
  EXPECT_TRUE(
      MakeCheck("_service_maintenance:payments-1", HealthStatus::kCritical).IsMaintenance());
  EXPECT_FALSE(MakeCheck("service:payments-1", HealthStatus::kCritical).IsMaintenance());
  EXPECT_FALSE(MakeCheck("_service_maintenance", HealthStatus::kCritical).IsMaintenance());
}

TEST(HealthStatus, RoundTripsThroughText) {
  for (auto status : {HealthStatus::kPassing, HealthStatus::kWarning, HealthStatus::kCritical,
                      HealthStatus::kMaintenance}) {
    EXPECT_EQ(ParseHealthStatus(ToString(status)), status);
  }
  EXPECT_EQ(ParseHealthStatus("any"), std::nullopt);
  EXPECT_EQ(ParseHealthStatus("Passing"), std::nullopt);
}

}  // namespace
}  // namespace hb
