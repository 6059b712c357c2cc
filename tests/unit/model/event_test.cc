#include "bridge/model/event.h"

#include <gtest/gtest.h>

namespace hb {
namespace {

TEST(EventType, RoundTripsThroughText) {
  for (auto type : kAllEventTypes) {
    EXPECT_EQ(ParseEventType(ToString(type)), type);
  }
  EXPECT_EQ(ToString(EventType::kInstanceStatusChanged), "instance.status_changed");
  EXPECT_EQ(ParseEventType("instance.gone"), std::nullopt);
}

TEST(Event, SubjectIsServiceSlashInstanceOrService) {
  Event instance_event;
  instance_event.service = "payments";
  instance_event.instance_id = "payments-1";
  EXPECT_EQ(instance_event.Subject(), "payments/payments-1");
  EXPECT_TRUE(instance_event.IsInstanceEvent());

  Event service_event;
  service_event.service = "payments";
  EXPECT_EQ(service_event.Subject(), "payments");
  EXPECT_FALSE(service_event.IsInstanceEvent());
}

}  // namespace
}  // namespace hb
