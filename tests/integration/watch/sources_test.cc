// watch.sources against the Consul test server: several datacenters, a
// cluster peer and a namespace watched by one Watcher, each on its own. A
// datacenter cut off ("No path to datacenter") or a peering that is not
// active is unavailable, never a burst of downs; what changed meanwhile
// arrives once it is back, marked reconciled.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "bridge/model/cloud_event.h"
#include "bridge/watch/watcher.h"
#include "tests/integration/watch/recorded_events.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using test_support::ConsulScope;
using test_support::ConsulTestServer;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr milliseconds kDeadline{15000};

using test_support::Describe;
using test_support::Has;
using test_support::RecordedEvents;

json Registration(const std::string& id, const std::string& service = "payments",
                  const std::string& status = "passing") {
  return {{"ID", id},
          {"Name", service},
          {"Address", "127.0.0.1"},
          {"Port", 8000},
          {"Check", {{"CheckID", "service:" + id}, {"TTL", "10m"}, {"Status", status}}}};
}

class SourcesTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void StartServer(bool enterprise = false) {
    test_support::ConsulTestServerOptions options;
    options.enterprise = enterprise;
    consul_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(consul_->Start(), 0);
  }

  void Register(const ConsulScope& scope, const json& registration) {
    ASSERT_EQ(consul_->RegisterService(scope, registration), "");
  }

  void StartWatching(std::vector<WatchSource> sources, std::size_t max_connections) {
    ConsulClientOptions client_options;
    client_options.address = consul_->address();
    client_options.max_connections = max_connections;
    client_options.wait = std::chrono::seconds(5);
    client_options.backoff_initial = milliseconds(50);
    client_options.backoff_max = milliseconds(200);
    client_options.same_index_interval = milliseconds(50);
    auto client = ConsulClient::Create(client_options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    WatcherOptions options;
    options.sources = std::move(sources);
    options.unreachable_grace = milliseconds(300);
    options.agent_retry_initial = milliseconds(50);
    options.agent_retry_max = milliseconds(200);
    options.peering_poll_interval = milliseconds(50);
    watcher_ = std::make_unique<Watcher>(
        options, *client_, std::make_unique<TransitionEngine>(EngineOptions{}, clock_), events_,
        clock_);
    watcher_->Start();
    ASSERT_TRUE(test_support::Eventually([&] { return watcher_->State().ready; }, kDeadline));
  }

  // A change in dc1, waited for: everything the watch received before it
  // has been handled (one loop thread, answers in order).
  void SettleWithALocalChange(const std::string& status) {
    ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{}, "service:marker-1", status));
    const std::string expected =
        "dc1 " + std::string(status == "critical" ? "instance.down marker-1 critical"
                                                  : "instance.up marker-1");
    events_.WaitFor([&](const std::vector<Event>& events) { return Has(events, expected); });
    ASSERT_TRUE(Has(events_.All(), expected)) << testing::PrintToString(Describe(events_.All()));
  }

  void TearDown() override {
    watcher_.reset();
    client_.reset();
  }

  SystemClock clock_;
  std::unique_ptr<ConsulTestServer> consul_;
  std::unique_ptr<ConsulClient> client_;
  RecordedEvents events_{kDeadline};
  std::unique_ptr<Watcher> watcher_;
};

const ConsulScope kDc2{.datacenter = "dc2"};

// Two datacenters with the same service name and instance ID; dc2 cut off
// while its instances change: no downs during the cut, the source shows
// unavailable, and after it exactly the real changes, reconciled. Run with
// a budget that gives every service a query of its own and with the
// smallest (every service covered by the change detector).
TEST_P(SourcesTest, ACutOffDatacenterIsUnavailableThenReconciled) {
  StartServer();
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  Register({}, Registration("payments-1"));
  Register({}, Registration("marker-1", "marker"));
  Register(kDc2, Registration("payments-1"));
  Register(kDc2, Registration("payments-2"));
  Register(kDc2, Registration("web-1", "web"));
  StartWatching({{"", "", "", "", {}}, {"dc2", "", "", "", {}}}, GetParam());

  ASSERT_TRUE(consul_->CutDatacenter("dc2", true));
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        const auto states = watcher_->SourceStates();
        return states[1].last_error.has_value() && states[1].unreachable_since.has_value();
      },
      kDeadline));
  const WatchState cut = watcher_->SourceStates()[1];
  EXPECT_EQ(cut.source, "dc2");
  EXPECT_THAT(cut.last_error->message(), HasSubstr("No path to datacenter"));
  EXPECT_TRUE(watcher_->State().ready) << "a further source must not take readiness";
  EXPECT_FALSE(watcher_->SourceStates()[0].last_error.has_value());

  // Changes in dc2 during the cut: one instance critical, one gone, one
  // flapping back to where it was.
  ASSERT_TRUE(consul_->UpdateCheck(kDc2, "service:payments-1", "critical"));
  ASSERT_TRUE(consul_->DeregisterService(kDc2, "web-1"));
  ASSERT_TRUE(consul_->UpdateCheck(kDc2, "service:payments-2", "critical"));
  ASSERT_TRUE(consul_->UpdateCheck(kDc2, "service:payments-2", "passing"));
  SettleWithALocalChange("critical");
  for (const Event& event : events_.All()) {
    EXPECT_EQ(event.datacenter, "dc1") << "nothing of dc2 during the cut: " << Describe(event);
  }
  const std::size_t before_restore = events_.All().size();

  ASSERT_TRUE(consul_->CutDatacenter("dc2", false));
  const std::vector<std::string> expected = {
      "dc2 instance.down payments-1 critical", "dc2 instance.down web-1 deregistered",
      "dc2 instance.deregistered web-1", "dc2 service.down web"};
  events_.WaitFor([&](const std::vector<Event>& events) {
    return std::all_of(expected.begin(), expected.end(),
                       [&](const std::string& one) { return Has(events, one); });
  });
  ASSERT_TRUE(test_support::Eventually(
      [&] { return !watcher_->SourceStates()[1].last_error.has_value(); }, kDeadline));
  SettleWithALocalChange("passing");
  std::vector<Event> after = events_.All();
  after.erase(after.begin(), after.begin() + static_cast<std::ptrdiff_t>(before_restore));
  std::vector<Event> from_dc2;
  for (const Event& event : after) {
    if (event.datacenter == "dc2") from_dc2.push_back(event);
  }
  // Exactly the real changes: payments-2 ended as it was, so nothing of it.
  EXPECT_THAT(Describe(from_dc2),
              UnorderedElementsAre(expected[0], expected[1], expected[2], expected[3]));
  for (const Event& event : from_dc2) {
    EXPECT_TRUE(event.reconciled) << Describe(event);
    EXPECT_EQ(CloudEventData(event, {})["datacenter"], "dc2");
  }
  // The same service name and instance ID in dc1 and dc2: ids, subjects
  // (Kafka keys) and sources differ.
  const auto remote_it = std::find_if(from_dc2.begin(), from_dc2.end(), [](const Event& event) {
    return event.instance_id == "payments-1";
  });
  ASSERT_NE(remote_it, from_dc2.end());
  const Event& remote = *remote_it;
  ASSERT_EQ(remote.instance_id, "payments-1");
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{}, "service:payments-1", "critical"));
  const auto all = events_.WaitFor([](const std::vector<Event>& events) {
    return Has(events, "dc1 instance.down payments-1 critical");
  });
  const auto local_it = std::find_if(all.begin(), all.end(), [](const Event& event) {
    return event.datacenter == "dc1" && event.instance_id == "payments-1";
  });
  ASSERT_NE(local_it, all.end());
  const Event& local = *local_it;
  EXPECT_NE(remote.id, local.id);
  EXPECT_NE(ToCloudEvent(remote, {})["subject"], ToCloudEvent(local, {})["subject"]);
  EXPECT_NE(ToCloudEvent(remote, {})["source"], ToCloudEvent(local, {})["source"]);
  EXPECT_EQ(local.Subject(), "dc1/payments/payments-1");
  EXPECT_EQ(remote.Subject(), "dc2/payments/payments-1");
  EXPECT_EQ(ToCloudEvent(remote, {})["source"], "consul://dc2");
}

// A peer's imported services and a namespace, next to the local
// datacenter's services of the same name.
TEST_P(SourcesTest, APeerSourceIsPausedWhileItsPeeringIsNotActive) {
  StartServer();
  ASSERT_TRUE(consul_->AddPeer("east"));
  const ConsulScope east{.peer = "east"};
  Register({}, Registration("payments-1"));
  Register({}, Registration("marker-1", "marker"));
  Register(east, Registration("payments-1"));
  StartWatching({{"", "", "", "", {}}, {"", "east", "", "", {}}}, GetParam());

  ASSERT_TRUE(consul_->UpdateCheck(east, "service:payments-1", "critical"));
  auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/peer:east instance.down payments-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc1/peer:east instance.down payments-1 critical"))
      << testing::PrintToString(Describe(events));
  for (const Event& event : events) {
    if (event.scope.peer != "east") continue;
    EXPECT_EQ(CloudEventData(event, {})["peer"], "east");
    EXPECT_EQ(ToCloudEvent(event, {})["source"], "consul://dc1?peer=east");
    EXPECT_THAT(event.id, HasSubstr("dc1/peer:east/"));
    EXPECT_FALSE(event.reconciled);
  }

  ASSERT_TRUE(consul_->SetPeerState("east", "FAILING"));
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        const auto states = watcher_->SourceStates();
        return states[1].last_error.has_value() &&
               states[1].last_error->message() == "peering east is FAILING";
      },
      kDeadline));
  EXPECT_TRUE(watcher_->State().ready);
  // While it fails: the imported instance recovers, another is imported.
  ASSERT_TRUE(consul_->UpdateCheck(east, "service:payments-1", "passing"));
  Register(east, Registration("payments-2"));
  SettleWithALocalChange("critical");
  const std::size_t before = events_.All().size();
  for (const Event& event : events_.All()) {
    if (event.scope.peer == "east") {
      EXPECT_NE(event.instance_id, "payments-2") << "nothing applied while the peering fails";
    }
  }

  ASSERT_TRUE(consul_->SetPeerState("east", "ACTIVE"));
  events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/peer:east instance.up payments-1") &&
           Has(all, "dc1/peer:east instance.up payments-2");
  });
  ASSERT_TRUE(Has(events, "dc1/peer:east instance.up payments-2"))
      << testing::PrintToString(Describe(events));
  for (std::size_t i = before; i < events.size(); ++i) {
    if (events[i].scope.peer == "east" && events[i].instance_id == "payments-1") {
      EXPECT_TRUE(events[i].reconciled) << Describe(events[i]);
    }
  }
  EXPECT_FALSE(watcher_->SourceStates()[1].last_error.has_value());
}

TEST_P(SourcesTest, ANamespaceSourceNamesItsNamespace) {
  StartServer(/*enterprise=*/true);
  const ConsulScope team{.ns = "team-a"};
  ASSERT_TRUE(consul_->AddNamespace("", "", "team-a"));
  Register({}, Registration("payments-1"));
  Register(team, Registration("payments-1"));
  StartWatching({{"", "", "", "", {}}, {"", "", "team-a", "", {}}}, GetParam());
  ASSERT_TRUE(consul_->UpdateCheck(team, "service:payments-1", "critical"));
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{}, "service:payments-1", "critical"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/ns:team-a instance.down payments-1 critical") &&
           Has(all, "dc1 instance.down payments-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc1/ns:team-a instance.down payments-1 critical"))
      << testing::PrintToString(Describe(events));
  std::set<std::string> ids, subjects;
  for (const Event& event : events) {
    if (event.type != EventType::kInstanceDown) continue;
    ids.insert(event.id);
    subjects.insert(event.Subject());
    if (!event.scope.ns.empty()) {
      EXPECT_EQ(CloudEventData(event, {})["namespace"], "team-a");
    }
  }
  EXPECT_EQ(ids.size(), 2U);
  EXPECT_EQ(subjects.size(), 2U);
}

// Three sources share consul.max_connections: the test server's
// connection counter never sees more.
TEST_P(SourcesTest, SourcesShareTheConnectionBudget) {
  StartServer();
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  ASSERT_TRUE(consul_->AddDatacenter("dc3"));
  for (const std::string dc : {"", "dc2", "dc3"}) {
    for (int i = 0; i < 12; ++i) {
      Register({.datacenter = dc},
               Registration("svc-" + std::to_string(i) + "-1", "svc-" + std::to_string(i)));
    }
  }
  Register({}, Registration("marker-1", "marker"));
  consul_->ResetPeakConnections();
  const std::size_t budget = std::max<std::size_t>(GetParam(), 9);
  StartWatching({{"", "", "", "", {}}, {"dc2", "", "", "", {}}, {"dc3", "", "", "", {}}}, budget);
  for (const std::string dc : {"dc2", "dc3"}) {
    ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.datacenter = dc}, "service:svc-3-1", "critical"));
  }
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc2 instance.down svc-3-1 critical") &&
           Has(all, "dc3 instance.down svc-3-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc3 instance.down svc-3-1 critical"))
      << testing::PrintToString(Describe(events));
  EXPECT_LE(consul_->PeakConnections(), budget);
  EXPECT_EQ(watcher_->State().watched_services, 3U * 12U + 1U);
}

// 100: every service has a blocking query of its own; 9: three sources
// of 3 connections each, every service covered by its change detector.
INSTANTIATE_TEST_SUITE_P(Budgets, SourcesTest, ::testing::Values(100, 9),
                         [](const ::testing::TestParamInfo<std::size_t>& param) {
                           return "max_connections_" + std::to_string(param.param);
                         });

}  // namespace
}  // namespace hb
