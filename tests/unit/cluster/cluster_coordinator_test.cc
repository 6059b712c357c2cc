// Several coordinators against the Consul test server (sessions, locks and
// blocking KV reads as Consul serves them): every service gets exactly one
// owner, the one rendezvous hashing picks; a crashed replica's services
// are taken over once Consul frees its locks; a graceful leave hands them
// over at once; a replica whose session is gone stops emitting, and a new
// owner's epoch is higher than every earlier one.

#include "bridge/cluster/cluster_coordinator.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "bridge/cluster/rendezvous.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::ConsulTestServer;
using test_support::ConsulTestServerOptions;
using test_support::Eventually;

constexpr int kServices = 40;

std::string ServiceName(int i) { return "svc-" + std::to_string(i); }

class Replica {
 public:
  Replica(const std::string& address, const std::string& id) {
    ConsulClientOptions client_options;
    client_options.address = address;
    client_options.backoff_initial = milliseconds(50);
    client_options.backoff_max = milliseconds(200);
    client_ = std::move(*ConsulClient::Create(client_options));
    ClusterOptions options;
    options.prefix = "test/bridge";
    options.member_id = id;
    options.session_ttl = milliseconds(1000);
    options.lock_delay = milliseconds(300);
    options.retry_interval = milliseconds(50);
    options.watched = [](const std::string& name, const std::vector<std::string>&) {
      return name != "consul";
    };
    coordinator_ = std::make_unique<ClusterCoordinator>(options, client_options, *client_, clock_);
  }
  ClusterCoordinator& operator*() { return *coordinator_; }
  ClusterCoordinator* operator->() { return coordinator_.get(); }

 private:
  SystemClock clock_;
  std::unique_ptr<ConsulClient> client_;
  std::unique_ptr<ClusterCoordinator> coordinator_;
};

class ClusterCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConsulTestServerOptions options;
    options.sessions.min_ttl = milliseconds(100);
    server_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(server_->Start(), 0);
    for (int i = 0; i < kServices; ++i) {
      ASSERT_EQ(server_->RegisterService({{"ID", ServiceName(i) + "-1"}, {"Name", ServiceName(i)}}),
                "");
    }
  }

  void StartReplicas(const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
      replicas_[id] = std::make_unique<Replica>(server_->address(), id);
      ASSERT_TRUE((*replicas_[id])->Start().ok());
    }
  }

  // Every service held by exactly one of `live`, the one rendezvous picks.
  bool SettledOn(std::vector<std::string> live) {
    for (int i = 0; i < kServices; ++i) {
      const std::string service = ServiceName(i);
      const std::string owner = RendezvousOwner(service, live);
      for (const auto& id : live) {
        const bool holds = (*replicas_[id])->EpochFor(service).has_value();
        if (holds != (id == owner)) return false;
      }
    }
    return true;
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::map<std::string, std::unique_ptr<Replica>> replicas_;
};

TEST_F(ClusterCoordinatorTest, EveryServiceHasExactlyOneOwner) {
  StartReplicas({"r1", "r2", "r3"});
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1", "r2", "r3"}); }, seconds(20)));
  const ClusterSnapshot snapshot = (*replicas_["r1"])->Snapshot();
  EXPECT_TRUE(snapshot.session_valid);
  EXPECT_EQ(snapshot.members, (std::vector<std::string>{"r1", "r2", "r3"}));
  EXPECT_EQ(snapshot.services, static_cast<std::size_t>(kServices));
}

TEST_F(ClusterCoordinatorTest, CrashedReplicasServicesAreTakenOverWithHigherEpochs) {
  StartReplicas({"r1", "r2", "r3"});
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1", "r2", "r3"}); }, seconds(20)));
  std::map<std::string, std::uint64_t> epochs;
  for (int i = 0; i < kServices; ++i) {
    for (auto& [id, replica] : replicas_) {
      if (auto epoch = (**replica).EpochFor(ServiceName(i))) epochs[ServiceName(i)] = *epoch;
    }
  }
  // A crash: no release, no destroy; Consul frees r2's locks after its TTL
  // (up to twice it) and then lock-delay.
  (*replicas_["r2"])->Abandon();
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1", "r3"}); }, seconds(20)));
  for (int i = 0; i < kServices; ++i) {
    const std::string service = ServiceName(i);
    for (const char* id : {"r1", "r3"}) {
      if (auto epoch = (*replicas_[id])->EpochFor(service)) {
        EXPECT_GE(*epoch, epochs[service]);
        if (RendezvousOwner(service, {"r1", "r2", "r3"}) == "r2") {
          EXPECT_GT(*epoch, epochs[service]) << service << ": a takeover is a new epoch";
        }
      }
    }
  }
}

TEST_F(ClusterCoordinatorTest, LocksHeldElsewhereDoNotHoldBackTheOthers) {
  // The locks are taken in transactions, and one refused lock fails its
  // whole transaction: the coordinator must drop just the refused ones.
  httplib::Client http("127.0.0.1", server_->port());
  const auto session =
      nlohmann::json::parse(
          http.Put("/v1/session/create", R"({"LockDelay":"0s"})", "application/json")->body)["ID"]
          .get<std::string>();
  const std::set<std::string> taken = {ServiceName(3), ServiceName(17), ServiceName(31)};
  for (const std::string& service : taken) {
    ASSERT_EQ(http.Put("/v1/kv/" + ServiceLockKey("test/bridge", service) + "?acquire=" + session,
                       "", "application/json")
                  ->body,
              "true");
  }
  StartReplicas({"r1"});
  ASSERT_TRUE(Eventually(
      [&] {
        for (int i = 0; i < kServices; ++i) {
          if (!taken.contains(ServiceName(i)) && !(*replicas_["r1"])->EpochFor(ServiceName(i))) {
            return false;
          }
        }
        return true;
      },
      seconds(20)));
  for (const std::string& service : taken) EXPECT_FALSE((*replicas_["r1"])->EpochFor(service));
  http.Put("/v1/session/destroy/" + session, "", "application/json");
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1"}); }, seconds(20)));
}

TEST_F(ClusterCoordinatorTest, GracefulLeaveHandsServicesOver) {
  StartReplicas({"r1", "r2"});
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1", "r2"}); }, seconds(20)));
  (*replicas_["r1"])->Leave();
  for (int i = 0; i < kServices; ++i) {
    EXPECT_FALSE((*replicas_["r1"])->EpochFor(ServiceName(i))) << "stops emitting at once";
  }
  // Released explicitly: no lock-delay, no TTL to wait for.
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r2"}); }, seconds(20)));
  // The member key is gone, not left behind as a dead member.
  httplib::Client http("127.0.0.1", server_->port());
  auto member = http.Get("/v1/kv/test/bridge/members/r1");
  ASSERT_TRUE(member);
  EXPECT_EQ(member->status, 404);
}

TEST_F(ClusterCoordinatorTest, AReplicaWhoseSessionIsGoneStopsEmittingAndComesBack) {
  StartReplicas({"r1"});
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1"}); }, seconds(20)));
  const std::uint64_t before = *(*replicas_["r1"])->EpochFor(ServiceName(0));
  // The node's agent dies: Consul invalidates every session bound to it.
  ASSERT_TRUE(server_->SetSerfHealth("node-a", "critical"));
  ASSERT_TRUE(
      Eventually([&] { return !(*replicas_["r1"])->EpochFor(ServiceName(0)); }, seconds(10)));
  ASSERT_TRUE(server_->SetSerfHealth("node-a", "passing"));
  // A new session, then the locks again once the lock-delay has passed.
  ASSERT_TRUE(Eventually([&] { return SettledOn({"r1"}); }, seconds(20)));
  EXPECT_GT(*(*replicas_["r1"])->EpochFor(ServiceName(0)), before);
}

TEST(ClusterNamesTest, KeysAndValidation) {
  EXPECT_EQ(ServiceLockKey("hb", "a/b c"), "hb/services/a%2Fb%20c");
  EXPECT_EQ(MemberKey("hb/prod", "pod-1"), "hb/prod/members/pod-1");
  EXPECT_EQ(ValidateMemberId("pod-1.example"), "");
  EXPECT_NE(ValidateMemberId(""), "");
  EXPECT_NE(ValidateMemberId("a/b"), "");
  EXPECT_EQ(ValidateClusterPrefix("health-bridge/prod"), "");
  EXPECT_NE(ValidateClusterPrefix("/x"), "");
  EXPECT_NE(ValidateClusterPrefix("a//b"), "");
}

}  // namespace
}  // namespace hb
