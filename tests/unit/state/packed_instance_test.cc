#include "bridge/state/packed_instance.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/state/engine_test_util.h"

namespace hb {
namespace {

using test_support::MakeInstance;

Instance RoundTrip(const Instance& instance) {
  return PackedInstance(instance).Unpack(instance.node, instance.id);
}

TEST(PackedInstance, TypicalInstanceUnpacksEqual) {
  const Instance instance = MakeInstance("payments-1", HealthStatus::kWarning);
  EXPECT_EQ(RoundTrip(instance), instance);
}

TEST(PackedInstance, TypicalInstanceTakesLittleMoreThanItsText) {
  const Instance instance = MakeInstance("payments-1", HealthStatus::kPassing);
  std::size_t text = instance.service.size() + instance.address.size();
  for (const auto& tag : instance.tags) text += tag.size();
  for (const auto& [key, value] : instance.meta) text += key.size() + value.size();
  for (const Check& check : instance.checks) {
    text += check.id.size() + check.name.size() + check.output.size() + check.notes.size() +
            check.service_id.size() + check.type.size();
  }
  // One length byte per short string, one status byte per check, port and
  // counts: what a struct per field would spend on pointers alone is more.
  EXPECT_LE(PackedInstance(instance).size(), text + 32);
}

TEST(PackedInstance, EveryStatusAndPortSurvive) {
  Instance instance = MakeInstance("payments-1", HealthStatus::kPassing);
  for (const HealthStatus status : {HealthStatus::kPassing, HealthStatus::kWarning,
                                    HealthStatus::kCritical, HealthStatus::kMaintenance}) {
    for (const int port : {0, 1, 127, 128, 65535, -1, 2147483647}) {
      instance.checks[1].status = status;
      instance.port = port;
      EXPECT_EQ(RoundTrip(instance), instance) << ToString(status) << " " << port;
    }
  }
}

TEST(PackedInstance, LongAndBinaryStringsSurvive) {
  Instance instance = MakeInstance("payments-1", HealthStatus::kCritical);
  // Lengths past one and two varint bytes, a NUL inside, and UTF-8.
  instance.checks[1].output = std::string(200, 'x') + std::string(1, '\0') + "après";
  instance.checks[1].notes = std::string(20000, 'n');
  instance.meta["blob"] = std::string(128, '\xff');
  instance.meta[""] = "";
  instance.tags = {"", "a", std::string(300, 't')};
  EXPECT_EQ(RoundTrip(instance), instance);
}

TEST(PackedInstance, EmptyCollectionsStayEmpty) {
  Instance instance;
  instance.node = "node-a";
  instance.id = "bare";
  EXPECT_EQ(RoundTrip(instance), instance);
}

TEST(PackedInstance, ManyChecksKeepConsulsOrder) {
  Instance instance = MakeInstance("payments-1", HealthStatus::kPassing);
  for (int i = 0; i < 200; ++i) {
    instance.checks.push_back(test_support::ServiceCheck(
        "payments-1-" + std::to_string(i), HealthStatus::kPassing, std::to_string(i)));
  }
  EXPECT_EQ(RoundTrip(instance), instance);
}

TEST(PackedInstance, NodeAndIdComeFromTheCaller) {
  const Instance instance = MakeInstance("payments-1", HealthStatus::kPassing, "node-a");
  const Instance unpacked = PackedInstance(instance).Unpack("node-b", "payments-9");
  EXPECT_EQ(unpacked.node, "node-b");
  EXPECT_EQ(unpacked.id, "payments-9");
  EXPECT_EQ(unpacked.checks, instance.checks);
}

TEST(PackedInstance, DefaultHoldsAnEmptyInstance) {
  const Instance unpacked = PackedInstance().Unpack("node-a", "payments-1");
  Instance expected;
  expected.node = "node-a";
  expected.id = "payments-1";
  EXPECT_EQ(unpacked, expected);
}

}  // namespace
}  // namespace hb
