// Three health-bridge executables in cluster mode on one Consul test server
// (with short session TTLs, which the test server allows by option): every
// transition is delivered by exactly one replica; a replica killed with
// SIGKILL has its services taken over within 2 x TTL + lock-delay; a
// replica frozen with SIGSTOP for longer than its TTL emits nothing for the
// services it lost when it resumes.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/http/scripted_http_peer.h"
#include "tests/support/process/bridge_process.h"
#include "tests/support/process/bridge_under_test.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::BridgeProcess;
using test_support::Eventually;
using test_support::ScriptedHttpPeer;
using Clock = std::chrono::steady_clock;

using test_support::kBridge;
constexpr int kServices = 12;
constexpr auto kTtl = seconds(3);
constexpr auto kLockDelay = seconds(1);
const std::vector<std::string> kReplicas = {"r1", "r2", "r3"};

std::string Service(int i) { return "svc-" + std::to_string(i); }
std::string CheckOf(int i) { return "service:" + Service(i) + "-1"; }

struct Delivered {
  std::string id;
  std::string service;
  std::string type;
  std::uint64_t epoch = 0;
};

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_support::ConsulTestServerOptions options;
    options.sessions.min_ttl = seconds(1);
    consul_ = std::make_unique<test_support::ConsulTestServer>(options);
    ASSERT_NE(consul_->Start(), 0);
    for (int i = 0; i < kServices; ++i) {
      ASSERT_EQ(consul_->RegisterService(
                    {{"ID", Service(i) + "-1"},
                     {"Name", Service(i)},
                     {"Port", 8000},
                     {"Check", {{"CheckID", CheckOf(i)}, {"TTL", "1h"}, {"Status", "passing"}}}}),
                "");
    }
    for (const auto& id : kReplicas) {
      receivers_[id] = std::make_unique<ScriptedHttpPeer>();
      Start(id);
    }
  }

  void Start(const std::string& id) {
    std::ostringstream config;
    config << "consul: {address: " << consul_->address() << "}\n"
           << "cluster: {enabled: true, prefix: it/bridge, member_id: " << id
           << ", session_ttl: 3s, lock_delay: 1s}\n"
           << "server: {listen: 127.0.0.1:0, instances: {enabled: true}}\n"
           << "state: {shutdown_timeout: 5s}\n"
           << "sinks:\n"
           << "  - name: hooks\n"
           << "    type: webhook\n"
           << "    url: " << receivers_[id]->url() << "\n"
           << "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
           << "    retry: {initial_backoff: 100ms, max_backoff: 1s}\n";
    bridges_[id] = std::make_unique<BridgeProcess>(kBridge, config.str());
    ASSERT_TRUE(bridges_[id]->ok()) << bridges_[id]->process().Stderr();
  }

  // Whether the replica's engine (which watches every service, owned or
  // not) sees every instance with `status`: a takeover only emits what the
  // new owner's engine saw change.
  bool EngineSees(const std::string& id, const std::string& status) {
    httplib::Client http("127.0.0.1", bridges_[id]->port());
    auto answer = http.Get("/v1/instances?status=" + status);
    if (!answer || answer->status != 200) return false;
    const json body = json::parse(answer->body, nullptr, false);
    return body.is_object() && body["instances"].size() == static_cast<std::size_t>(kServices);
  }
  bool EnginesSee(const std::vector<std::string>& live, const std::string& status) {
    for (const auto& id : live) {
      if (!EngineSees(id, status)) return false;
    }
    return true;
  }

  double Owned(const std::string& id) {
    return bridges_[id]->Metric("health_bridge_cluster_services_owned").value_or(-1);
  }
  // Every service owned by one of `live`, each of them sees them all and
  // holds some (with 12 services, rendezvous leaves a member none with
  // odds of 2^-12 at two members): a member that just joined owns nothing
  // while the others still hold everything, which also sums to every
  // service, and a flip then would land in the handover.
  bool Settled(const std::vector<std::string>& live) {
    double owned = 0;
    for (const auto& id : live) {
      const double mine = Owned(id);
      if (mine < 0 || (live.size() > 1 && mine == 0)) return false;
      owned += mine;
      if (bridges_[id]->Metric("health_bridge_cluster_members").value_or(0) !=
          static_cast<double>(live.size())) {
        return false;
      }
    }
    return owned == kServices;
  }

  std::vector<Delivered> DeliveredBy(const std::string& id) {
    std::vector<Delivered> out;
    for (const auto& request : receivers_[id]->Accepted()) {
      const json body = json::parse(request.body, nullptr, false);
      const auto add = [&out](const json& event) {
        Delivered delivered{event.value("id", ""), event["data"].value("service", ""),
                            event["data"].value("event", ""), event.value("hbepoch", 0ULL)};
        out.push_back(std::move(delivered));
      };
      if (body.is_array()) {
        for (const json& event : body) add(event);
      } else if (body.is_object()) {
        add(body);
      }
    }
    return out;
  }

  // Turns every service's check to `status`; returns the instance event
  // type each transition emits.
  std::string FlipAll(const std::string& status) {
    for (int i = 0; i < kServices; ++i) EXPECT_TRUE(consul_->UpdateCheck(CheckOf(i), status));
    return status == "critical" ? "instance.down" : "instance.up";
  }

  // Waits until each service's `type` transition (ids not in `before`) was
  // delivered, then checks that exactly one replica of `live` delivered
  // each, once. Returns service -> (replica, epoch).
  std::map<std::string, std::pair<std::string, std::uint64_t>> ExpectEachOnce(
      const std::string& type, const std::vector<std::string>& live,
      const std::set<std::string>& before) {
    const auto fresh = [&] {
      std::map<std::string, std::vector<std::pair<std::string, Delivered>>> by_service;
      for (const auto& id : live) {
        for (const Delivered& event : DeliveredBy(id)) {
          if (event.type == type && !before.contains(event.id)) {
            by_service[event.service].emplace_back(id, event);
          }
        }
      }
      return by_service;
    };
    const bool arrived = Eventually([&] { return fresh().size() == kServices; }, seconds(30));
    EXPECT_TRUE(arrived) << fresh().size() << " of " << kServices << " services' " << type
                         << " arrived";
    if (!arrived) {
      for (const auto& id : live) {
        std::istringstream log(bridges_[id]->process().Stderr());
        for (std::string line; std::getline(log, line);) {
          if (line.find("cluster") != std::string::npos) std::cout << id << ": " << line << "\n";
        }
      }
    }
    std::map<std::string, std::pair<std::string, std::uint64_t>> owners;
    for (const auto& [service, deliveries] : fresh()) {
      EXPECT_EQ(deliveries.size(), 1u)
          << service << ": " << type << " delivered " << deliveries.size() << " times";
      EXPECT_GT(deliveries.front().second.epoch, 0u) << "every event carries its epoch";
      owners[service] = {deliveries.front().first, deliveries.front().second.epoch};
    }
    return owners;
  }

  std::set<std::string> AllIds() {
    std::set<std::string> ids;
    for (const auto& id : kReplicas) {
      for (const Delivered& event : DeliveredBy(id)) ids.insert(event.id);
    }
    return ids;
  }

  std::unique_ptr<test_support::ConsulTestServer> consul_;
  std::map<std::string, std::unique_ptr<ScriptedHttpPeer>> receivers_;
  std::map<std::string, std::unique_ptr<BridgeProcess>> bridges_;
};

TEST_F(ClusterTest, EachTransitionOnceThroughKillAndFreeze) {
  ASSERT_TRUE(Eventually([&] { return Settled(kReplicas); }, seconds(30)));

  // Every transition by exactly one replica.
  auto owners = ExpectEachOnce(FlipAll("critical"), kReplicas, {});
  ASSERT_TRUE(Eventually([&] { return EnginesSee(kReplicas, "critical"); }, seconds(30)));
  // Every replica's metrics follow every service, owned or not, so its
  // gauges are never left stale when a service moves away.
  for (const auto& id : kReplicas) {
    for (int i = 0; i < kServices; ++i) {
      EXPECT_TRUE(Eventually(
          [&] {
            return bridges_[id]->Metric("health_bridge_instance_up",
                                        "service_id=\"" + Service(i) + "-1\"") == 0.0;
          },
          seconds(10)))
          << id << " " << Service(i);
    }
  }
  ExpectEachOnce(FlipAll("passing"), kReplicas, {});
  ASSERT_TRUE(Eventually([&] { return EnginesSee(kReplicas, "passing"); }, seconds(30)));

  // kill -9 one replica: the others take its services over within
  // 2 x TTL + lock-delay (the test allows slack for a loaded machine).
  const auto killed_at = Clock::now();
  bridges_["r2"]->Kill();
  ASSERT_TRUE(Eventually([&] { return Settled({"r1", "r3"}); }, seconds(30)));
  const auto takeover = std::chrono::duration_cast<milliseconds>(Clock::now() - killed_at);
  std::cout << "takeover after SIGKILL: " << takeover.count() << " ms (2 x TTL + lock-delay = "
            << std::chrono::duration_cast<milliseconds>(2 * kTtl + kLockDelay).count() << " ms)\n";
  std::set<std::string> before = AllIds();
  auto after_kill = ExpectEachOnce(FlipAll("critical"), {"r1", "r3"}, before);
  ASSERT_TRUE(Eventually([&] { return EnginesSee({"r1", "r3"}, "critical"); }, seconds(30)));
  for (const auto& [service, owner] : owners) {
    if (owner.first == "r2") {
      EXPECT_GT(after_kill[service].second, owner.second)
          << service << ": a new owner, a new epoch";
    }
  }
  before = AllIds();
  ExpectEachOnce(FlipAll("passing"), {"r1", "r3"}, before);
  ASSERT_TRUE(Eventually([&] { return EnginesSee({"r1", "r3"}, "passing"); }, seconds(30)));

  // SIGSTOP r3 for longer than its TTL: r1 takes everything over.
  std::set<std::string> r3_before;
  for (const Delivered& event : DeliveredBy("r3")) r3_before.insert(event.id);
  std::map<std::string, std::uint64_t> r3_epochs;
  for (const Delivered& event : DeliveredBy("r3")) r3_epochs[event.service] = event.epoch;
  bridges_["r3"]->process().Signal(SIGSTOP);
  ASSERT_TRUE(Eventually([&] { return Owned("r1") == kServices; }, seconds(30)));
  before = AllIds();
  const std::string frozen_type = FlipAll("critical");
  auto while_frozen = ExpectEachOnce(frozen_type, {"r1"}, before);
  bridges_["r3"]->process().Signal(SIGCONT);
  // r3 comes back as a new member with a new session and the services split
  // again. It never emits under an epoch it lost: whatever it delivers from
  // now on carries a new one.
  ASSERT_TRUE(Eventually([&] { return Settled({"r1", "r3"}); }, seconds(30)));
  ASSERT_TRUE(Eventually([&] { return EnginesSee({"r1", "r3"}, "critical"); }, seconds(30)));
  before = AllIds();
  ExpectEachOnce(FlipAll("passing"), {"r1", "r3"}, before);
  std::set<std::string> r1_ids;
  for (const Delivered& event : DeliveredBy("r1")) r1_ids.insert(event.id);
  int repeated = 0;
  for (const Delivered& event : DeliveredBy("r3")) {
    if (r3_before.contains(event.id)) continue;
    if (r3_epochs.contains(event.service)) {
      EXPECT_GT(event.epoch, r3_epochs[event.service])
          << event.service << ": emitted under the epoch it had lost";
    }
    // A frozen-time transition r3 delivers after taking a service back is
    // at most a redelivery of what r1 delivered, with the same id: r3
    // starts from the handover state r1 kept in Consul.
    if (event.type == frozen_type) {
      ++repeated;
      EXPECT_TRUE(r1_ids.contains(event.id)) << event.id << ": repeated under a new id";
    }
  }
  std::cout << "frozen-time transitions redelivered by r3 as a new owner: " << repeated << "\n";

  for (const auto& id : {"r1", "r3"}) {
    EXPECT_EQ(bridges_[id]->Stop(), 0) << bridges_[id]->process().Stderr();
  }
}

}  // namespace
}  // namespace hb
