// Handover in cluster mode with three health-bridge executables on one Consul
// test server: what a replica's sinks had not acknowledged when it died is
// re-emitted by its successor (reconciled, with the ids it had), even an
// instance that went down and up again before the crash (the write-ahead of
// unacknowledged events in Consul KV), and a
// rolling restart (SIGTERM one replica after the other) under continuous
// churn misses no transition and repeats none but as redeliveries of the
// same id. The test records every transition it makes Consul go through
// and holds the receivers' deliveries against that record.

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "bridge/common/mutex.h"
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

using test_support::kBridge;
constexpr int kServices = 12;
constexpr int kInstancesPerService = 2;
const std::vector<std::string> kReplicas = {"r1", "r2", "r3"};

std::string Service(int i) { return "svc-" + std::to_string(i); }
std::string InstanceId(int service, int instance) {
  return Service(service) + "-" + std::to_string(instance);
}
std::string CheckOf(const std::string& instance_id) { return "service:" + instance_id; }

struct Delivered {
  std::string id;
  std::string service;
  std::string instance;
  std::string type;
  std::uint64_t epoch = 0;
  bool reconciled = false;
};

std::vector<Delivered> Parse(const std::vector<test_support::ReceivedRequest>& requests) {
  std::vector<Delivered> out;
  for (const auto& request : requests) {
    const json body = json::parse(request.body, nullptr, false);
    const auto add = [&out](const json& event) {
      if (!event.is_object() || !event.contains("data")) return;
      const json& data = event["data"];
      out.push_back({event.value("id", ""), data.value("service", ""),
                     data.value("instance_id", ""), data.value("event", ""),
                     event.value("hbepoch", 0ULL), data.value("reconciled", false)});
    };
    if (body.is_array()) {
      for (const json& event : body) add(event);
    } else {
      add(body);
    }
  }
  return out;
}

class HandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test_support::ConsulTestServerOptions options;
    options.sessions.min_ttl = seconds(1);
    consul_ = std::make_unique<test_support::ConsulTestServer>(options);
    ASSERT_NE(consul_->Start(), 0);
    for (int s = 0; s < kServices; ++s) {
      for (int i = 1; i <= kInstancesPerService; ++i) {
        ASSERT_EQ(
            consul_->RegisterService(
                {{"ID", InstanceId(s, i)},
                 {"Name", Service(s)},
                 {"Port", 8000 + i},
                 {"Check",
                  {{"CheckID", CheckOf(InstanceId(s, i))}, {"TTL", "1h"}, {"Status", "passing"}}}}),
            "");
        MutexLock lock(&mutex_);
        status_[InstanceId(s, i)] = "passing";
      }
    }
    for (const auto& id : kReplicas) {
      // Every request is recorded, accepted or not: the ids a replica
      // tried to deliver are what its successor must repeat.
      receivers_[id] = std::make_unique<ScriptedHttpPeer>(
          [this, id](std::size_t, const test_support::ReceivedRequest& request) {
            MutexLock lock(&mutex_);
            attempted_[id].push_back(request);
            return rejecting_.contains(id) ? test_support::Answer(503) : test_support::Answer(204);
          });
    }
    for (const auto& id : kReplicas) Start(id);
  }

  void Start(const std::string& id) {
    std::ostringstream config;
    config << "consul: {address: " << consul_->address() << "}\n"
           << "cluster: {enabled: true, prefix: it/handover, member_id: " << id
           << ", session_ttl: 3s, lock_delay: 1s}\n"
           << "server: {listen: 127.0.0.1:0, instances: {enabled: true}}\n"
           << "state: {shutdown_timeout: 5s}\n"
           << "sinks:\n"
           << "  - name: hooks\n"
           << "    type: webhook\n"
           << "    url: " << receivers_[id]->url() << "\n"
           << "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"
           << "    retry: {initial_backoff: 100ms, max_backoff: 500ms}\n";
    bridges_[id] = std::make_unique<BridgeProcess>(kBridge, config.str());
    ASSERT_TRUE(bridges_[id]->ok()) << bridges_[id]->process().Stderr();
  }

  // Every service owned by one of `live`, and each holds some.
  bool Settled(const std::vector<std::string>& live) {
    double owned = 0;
    for (const auto& id : live) {
      const double mine = bridges_[id]->Metric("health_bridge_cluster_services_owned").value_or(-1);
      if (mine <= 0) return false;
      if (bridges_[id]->Metric("health_bridge_cluster_members").value_or(0) !=
          static_cast<double>(live.size())) {
        return false;
      }
      owned += mine;
    }
    return owned == kServices;
  }

  // Changes one instance's check and records the transition it is.
  void Flip(const std::string& instance_id) {
    MutexLock lock(&mutex_);
    const std::string next = status_[instance_id] == "passing" ? "critical" : "passing";
    ASSERT_TRUE(consul_->UpdateCheck(CheckOf(instance_id), next));
    status_[instance_id] = next;
    ++expected_[{instance_id, next == "passing" ? "instance.up" : "instance.down"}];
  }

  std::vector<Delivered> Accepted(const std::string& id) {
    return Parse(receivers_[id]->Accepted());
  }
  std::vector<Delivered> AcceptedByAll() {
    std::vector<Delivered> all;
    for (const auto& id : kReplicas) {
      for (Delivered& event : Accepted(id)) all.push_back(std::move(event));
    }
    return all;
  }
  std::vector<Delivered> Attempted(const std::string& id) {
    MutexLock lock(&mutex_);
    return Parse(attempted_[id]);
  }

  // Per (instance, event), the distinct ids delivered, for the instance
  // transitions the test made.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> DistinctIds() {
    std::map<std::pair<std::string, std::string>, std::set<std::string>> ids;
    for (const Delivered& event : AcceptedByAll()) {
      if (event.type == "instance.up" || event.type == "instance.down") {
        ids[{event.instance, event.type}].insert(event.id);
      }
    }
    return ids;
  }
  // Whether every recorded transition was delivered (as many distinct ids
  // per instance and event as the test made transitions).
  bool AllDelivered() {
    const auto ids = DistinctIds();
    MutexLock lock(&mutex_);
    for (const auto& [key, count] : expected_) {
      auto it = ids.find(key);
      if (it == ids.end() || static_cast<int>(it->second.size()) < count) return false;
    }
    return true;
  }
  // Missed and extra transitions (an extra one is a repeat under another
  // id, which a consumer could not drop).
  void ExpectExactlyTheRecordedTransitions() {
    const auto ids = DistinctIds();
    std::map<std::pair<std::string, std::string>, int> expected;
    {
      MutexLock lock(&mutex_);
      expected = expected_;
    }
    int transitions = 0;
    for (const auto& [key, count] : expected) {
      transitions += count;
      auto it = ids.find(key);
      const int delivered = it == ids.end() ? 0 : static_cast<int>(it->second.size());
      EXPECT_EQ(delivered, count) << key.first << " " << key.second << ": " << count
                                  << " transitions, " << delivered << " distinct ids delivered";
    }
    for (const auto& [key, delivered] : ids) {
      EXPECT_TRUE(expected.contains(key)) << key.first << " " << key.second << " never happened";
    }
    std::cout << transitions << " transitions recorded\n";
  }

  // How many instances the replica's engine sees passing.
  int PassingSeenBy(const std::string& id) {
    httplib::Client http("127.0.0.1", bridges_[id]->port());
    auto answer = http.Get("/v1/instances?status=passing");
    if (!answer || answer->status != 200) return -1;
    const json body = json::parse(answer->body, nullptr, false);
    return body.is_object() ? static_cast<int>(body["instances"].size()) : -1;
  }

  // The write-ahead Consul KV holds for `service`: its owner's events not
  // yet acknowledged (null when none).
  json WriteAhead(const std::string& service) {
    httplib::Client http(consul_->address());
    auto answer = http.Get("/v1/kv/it/handover/pending/" + service + "?raw");
    if (!answer || answer->status != 200) return nullptr;
    return json::parse(answer->body, nullptr, false);
  }
  // The ids of `instance`'s `type` events in `service`'s write-ahead.
  std::vector<std::string> WriteAheadIds(const std::string& service, const std::string& instance,
                                         const std::string& type) {
    std::vector<std::string> ids;
    const json pending = WriteAhead(service);
    if (!pending.is_object() || !pending["events"].is_array()) return ids;
    for (const json& event : pending["events"]) {
      if (event.value("instance_id", "") == instance && event.value("type", "") == type) {
        ids.push_back(event.value("id", ""));
      }
    }
    return ids;
  }

  // The handover state Consul KV holds for `service` (null when none).
  json HandoverState(const std::string& service) {
    httplib::Client http(consul_->address());
    auto answer = http.Get("/v1/kv/it/handover/state/" + service + "?raw");
    if (!answer || answer->status != 200) return nullptr;
    return json::parse(answer->body, nullptr, false);
  }

  void DumpClusterLog(const std::string& id) {
    std::istringstream log(bridges_[id]->process().Stderr());
    for (std::string line; std::getline(log, line);) {
      if (line.find("cluster") != std::string::npos) std::cout << id << ": " << line << "\n";
    }
  }

  Mutex mutex_;
  std::map<std::string, std::vector<test_support::ReceivedRequest>> attempted_ GUARDED_BY(mutex_);
  std::set<std::string> rejecting_ GUARDED_BY(mutex_);
  std::map<std::string, std::string> status_ GUARDED_BY(mutex_);
  // (instance id, "instance.up"/"instance.down") -> transitions made.
  std::map<std::pair<std::string, std::string>, int> expected_ GUARDED_BY(mutex_);
  std::unique_ptr<test_support::ConsulTestServer> consul_;
  std::map<std::string, std::unique_ptr<ScriptedHttpPeer>> receivers_;
  std::map<std::string, std::unique_ptr<BridgeProcess>> bridges_;
};

TEST_F(HandoverTest, KilledOwnerWithItsSinkDownLosesNothing) {
  ASSERT_TRUE(Eventually([&] { return Settled(kReplicas); }, seconds(30)));
  // A first round, delivered by each service's owner: who owns what.
  for (int s = 0; s < kServices; ++s) Flip(InstanceId(s, 1));
  ASSERT_TRUE(Eventually([&] { return AllDelivered(); }, seconds(30)));
  std::map<std::string, std::string> owner;
  std::map<std::string, std::uint64_t> owner_epoch;
  for (const auto& id : kReplicas) {
    for (const Delivered& event : Accepted(id)) {
      owner[event.service] = id;
      owner_epoch[event.service] = event.epoch;
    }
  }
  std::set<std::string> victims;
  for (const auto& [service, id] : owner) {
    if (id == "r2") victims.insert(service);
  }
  ASSERT_FALSE(victims.empty());

  // r2 kept what its sink acknowledged in Consul. (A transition delivered
  // less than one write round, 1 s, before a crash is not in it yet; the
  // write-ahead covers it: DownAndUpAgainJustBeforeTheCrash.)
  ASSERT_TRUE(Eventually(
      [&] {
        for (const auto& service : victims) {
          const json state = HandoverState(service);
          if (!state.is_object()) return false;
          for (const json& row : state["instances"]) {
            if (row[1] == service + "-1" && row[3] != "critical") return false;
          }
        }
        return true;
      },
      seconds(10)));

  // r2's sink goes down: what it emits now stays unacknowledged.
  {
    MutexLock lock(&mutex_);
    rejecting_.insert("r2");
  }
  for (int s = 0; s < kServices; ++s) Flip(InstanceId(s, 1));
  // r2 tried to deliver some of them (the webhook sink retries the oldest
  // first: the others wait in its queue), and its engine saw all of them.
  const auto r2_tried = [&] {
    bool tried = false;
    for (const Delivered& event : Attempted("r2")) {
      tried = tried || (event.type == "instance.up" && victims.contains(event.service));
    }
    return tried && PassingSeenBy("r2") == kServices * kInstancesPerService;
  };
  const bool tried = Eventually(r2_tried, seconds(30));
  if (!tried) {
    for (const Delivered& event : Attempted("r2")) {
      std::cout << "r2 tried " << event.id << " " << event.type << "\n";
    }
    DumpClusterLog("r2");
  }
  ASSERT_TRUE(tried);
  bridges_["r2"]->Kill();
  // Instances keep changing while r2's services have no owner.
  for (int s = 0; s < kServices; ++s) Flip(InstanceId(s, 2));

  const bool delivered = Eventually([&] { return AllDelivered(); }, seconds(60));
  if (!delivered) {
    DumpClusterLog("r1");
    DumpClusterLog("r3");
  }
  ASSERT_TRUE(delivered);
  ExpectExactlyTheRecordedTransitions();

  // What r2 tried, its successors delivered with the same ids, reconciled
  // and under a newer epoch.
  std::map<std::string, std::string> r2_ids;  // instance.up per instance
  for (const Delivered& event : Attempted("r2")) {
    if (event.type == "instance.up" && victims.contains(event.service)) {
      r2_ids[event.instance] = event.id;
    }
  }
  int reconciled = 0;
  for (const auto& id : {"r1", "r3"}) {
    for (const Delivered& event : Accepted(id)) {
      if (!victims.contains(event.service) || event.epoch <= owner_epoch[event.service]) continue;
      EXPECT_TRUE(event.reconciled) << event.id << ": a takeover's events are reconciled";
      ++reconciled;
      if (event.type == "instance.up" && r2_ids.contains(event.instance)) {
        EXPECT_EQ(event.id, r2_ids[event.instance]) << "the id r2 gave it";
      }
    }
  }
  // Each victim service: its -1 instance's up and its -2 instance's down.
  EXPECT_EQ(reconciled, static_cast<int>(2 * victims.size()));
  for (const auto& id : {"r1", "r3"}) {
    EXPECT_EQ(bridges_[id]->Stop(), 0) << bridges_[id]->process().Stderr();
  }
}

// An instance that goes down and up again while its owner's sink refuses
// everything, then the owner is killed: Consul shows the instance as it was
// in the handover state, so only the owner's write-ahead tells its
// successor about the pair; the successor delivers both, with the ids the
// owner gave them.
TEST_F(HandoverTest, DownAndUpAgainJustBeforeTheCrashAreBothDelivered) {
  ASSERT_TRUE(Eventually([&] { return Settled(kReplicas); }, seconds(30)));
  // A first round, delivered by each service's owner: who owns what.
  for (int s = 0; s < kServices; ++s) Flip(InstanceId(s, 1));
  ASSERT_TRUE(Eventually([&] { return AllDelivered(); }, seconds(30)));
  std::map<std::string, std::string> owner;
  std::map<std::string, std::uint64_t> owner_epoch;
  for (const auto& id : kReplicas) {
    for (const Delivered& event : Accepted(id)) {
      owner[event.service] = id;
      owner_epoch[event.service] = event.epoch;
    }
  }
  std::string victim;
  for (const auto& [service, id] : owner) {
    if (id == "r2") victim = service;
  }
  ASSERT_FALSE(victim.empty()) << "r2 owns no service";
  const std::string instance = victim + "-2";
  // Its owner's sink acknowledged the first round: the handover state and
  // the write-ahead say so.
  ASSERT_TRUE(Eventually(
      [&] {
        const json state = HandoverState(victim);
        if (!state.is_object()) return false;
        for (const json& row : state["instances"]) {
          if (row[1] == victim + "-1" && row[3] != "critical") return false;
        }
        return true;
      },
      seconds(10)));

  {
    MutexLock lock(&mutex_);
    rejecting_.insert("r2");
  }
  // Down, seen and written ahead by r2, then up again: each change waits
  // for the previous one to be in the write-ahead, so the watch cannot
  // fold the two into none.
  Flip(instance);
  ASSERT_TRUE(Eventually(
      [&] { return WriteAheadIds(victim, instance, "instance.down").size() == 1; }, seconds(10)));
  Flip(instance);
  const bool written = Eventually(
      [&] { return WriteAheadIds(victim, instance, "instance.up").size() == 1; }, seconds(10));
  if (!written) DumpClusterLog("r2");
  ASSERT_TRUE(written);
  const std::string down_id = WriteAheadIds(victim, instance, "instance.down")[0];
  const std::string up_id = WriteAheadIds(victim, instance, "instance.up")[0];
  // r2 tried the first one (the refusals are what its sink saw).
  ASSERT_TRUE(Eventually(
      [&] {
        for (const Delivered& event : Attempted("r2")) {
          if (event.id == down_id) return true;
        }
        return false;
      },
      seconds(10)));
  bridges_["r2"]->Kill();

  const bool delivered = Eventually([&] { return AllDelivered(); }, seconds(60));
  if (!delivered) {
    DumpClusterLog("r1");
    DumpClusterLog("r3");
  }
  ASSERT_TRUE(delivered);
  ExpectExactlyTheRecordedTransitions();
  // Both, from a successor, with r2's ids, reconciled, under a newer epoch.
  std::set<std::string> ids;
  for (const auto& id : {"r1", "r3"}) {
    for (const Delivered& event : Accepted(id)) {
      if (event.service != victim) continue;
      EXPECT_TRUE(event.reconciled) << event.id << ": a takeover's events are reconciled";
      EXPECT_GT(event.epoch, owner_epoch[victim]) << event.id;
      if (event.instance == instance) ids.insert(event.id);
    }
  }
  EXPECT_EQ(ids, (std::set<std::string>{down_id, up_id}));
  // The successor's sink acknowledged them: nothing is pending any more.
  EXPECT_TRUE(Eventually([&] { return WriteAhead(victim).is_null(); }, seconds(10)))
      << WriteAhead(victim).dump();
  for (const auto& id : {"r1", "r3"}) {
    EXPECT_EQ(bridges_[id]->Stop(), 0) << bridges_[id]->process().Stderr();
  }
}

TEST_F(HandoverTest, RollingRestartUnderChurnMissesAndRepeatsNothing) {
  ASSERT_TRUE(Eventually([&] { return Settled(kReplicas); }, seconds(30)));
  // Churn: one instance after the other, round robin, each change once
  // the previous one was delivered: an instance changes again only 24
  // deliveries later (a takeover diffs states, so two changes of one
  // instance inside one handover would cancel out; docs/cluster-design.md).
  std::atomic<bool> churning{true};
  std::atomic<int> flips{0};
  std::thread churn([&] {
    int next = 0;
    while (churning.load()) {
      const int s = (next / kInstancesPerService) % kServices;
      const int i = next % kInstancesPerService + 1;
      Flip(InstanceId(s, i));
      ++next;
      ++flips;
      if (!Eventually([&] { return AllDelivered(); }, seconds(30))) {
        ADD_FAILURE() << "flip " << next << " (" << InstanceId(s, i) << ") not delivered";
        return;
      }
    }
  });
  for (const auto& id : kReplicas) {
    const auto stopped = bridges_[id]->Stop();
    EXPECT_EQ(stopped, 0) << bridges_[id]->process().Stderr();
    std::vector<std::string> others;
    for (const auto& other : kReplicas) {
      if (other != id) others.push_back(other);
    }
    // The others take its services at once: no session TTL to wait for.
    EXPECT_TRUE(Eventually([&] { return Settled(others); }, seconds(5)))
        << "services handed over on leave";
    Start(id);
    ASSERT_TRUE(Eventually([&] { return Settled(kReplicas); }, seconds(30)));
  }
  churning = false;
  churn.join();
  std::cout << flips.load() << " changes during the rolling restart\n";

  const bool delivered = Eventually([&] { return AllDelivered(); }, seconds(60));
  if (!delivered) {
    for (const auto& id : kReplicas) DumpClusterLog(id);
  }
  ASSERT_TRUE(delivered);
  ExpectExactlyTheRecordedTransitions();
  std::size_t redeliveries = 0;
  std::set<std::string> seen;
  for (const Delivered& event : AcceptedByAll()) {
    if (!seen.insert(event.id).second) ++redeliveries;
  }
  std::cout << "redeliveries of the same id: " << redeliveries << "\n";
  for (const auto& id : kReplicas) {
    EXPECT_EQ(bridges_[id]->Stop(), 0) << bridges_[id]->process().Stderr();
  }
}

}  // namespace
}  // namespace hb
