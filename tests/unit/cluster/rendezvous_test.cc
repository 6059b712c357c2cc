// Rendezvous hashing spreads services evenly and moves few of them when a
// member joins or leaves: what makes scale-out and failover cheap.

#include "bridge/cluster/rendezvous.h"

#include <gtest/gtest.h>

#include <map>

namespace hb {
namespace {

std::vector<std::string> Services(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back("service-" + std::to_string(i));
  return out;
}

std::vector<std::string> Members(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back("health-bridge-" + std::to_string(i));
  return out;
}

TEST(RendezvousTest, EveryReplicaComputesTheSameOwner) {
  const std::vector<std::string> members = {"b", "a", "c"};
  const std::vector<std::string> reordered = {"c", "b", "a"};
  for (const auto& service : Services(100)) {
    EXPECT_EQ(RendezvousOwner(service, members), RendezvousOwner(service, reordered));
  }
  EXPECT_EQ(RendezvousOwner("web", {}), "");
  EXPECT_EQ(RendezvousOwner("web", {"only"}), "only");
}

TEST(RendezvousTest, WeightsAreStableAcrossBuilds) {
  // Pinned: replicas of different versions must agree during a rolling update.
  EXPECT_EQ(RendezvousWeight("a", "web"), RendezvousWeight("a", "web"));
  EXPECT_NE(RendezvousWeight("ab", "c"), RendezvousWeight("a", "bc"));
  EXPECT_EQ(RendezvousWeight("replica-1", "payments"), 8779796090741107016ULL);
}

TEST(RendezvousTest, TenThousandServicesSplitEvenlyWithinFifteenPercent) {
  const auto services = Services(10000);
  for (int count : {2, 3, 5, 10}) {
    const auto members = Members(count);
    std::map<std::string, int> owned;
    for (const auto& service : services) ++owned[RendezvousOwner(service, members)];
    const double even = 10000.0 / count;
    for (const auto& member : members) {
      EXPECT_NEAR(owned[member], even, even * 0.15) << member << " of " << count;
    }
  }
}

TEST(RendezvousTest, AMembershipChangeMovesAboutOneNth) {
  const auto services = Services(10000);
  auto members = Members(3);
  std::map<std::string, std::string> before;
  for (const auto& service : services) before[service] = RendezvousOwner(service, members);

  // A fourth member joins: only services it wins move, about 1/4, all to it.
  members.push_back("health-bridge-3");
  int moved = 0;
  for (const auto& service : services) {
    const std::string owner = RendezvousOwner(service, members);
    if (owner != before[service]) {
      ++moved;
      EXPECT_EQ(owner, "health-bridge-3");
    }
  }
  EXPECT_NEAR(moved, 2500, 2500 * 0.15);

  // A member leaves: only its own services move; the others keep theirs.
  members = Members(3);
  members.erase(members.begin() + 1);
  moved = 0;
  for (const auto& service : services) {
    const std::string owner = RendezvousOwner(service, members);
    if (before[service] != "health-bridge-1") {
      EXPECT_EQ(owner, before[service]);
    } else {
      ++moved;
    }
  }
  EXPECT_NEAR(moved, 3333, 3333 * 0.15);
}

}  // namespace
}  // namespace hb
