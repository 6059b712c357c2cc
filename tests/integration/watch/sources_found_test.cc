// watch.sources templates against the Consul test server: `datacenter:
// all`, `peer: all` and `namespace: "*"` followed as the lists change. A
// source found at run time syncs silently like a first start; one no longer
// listed is unavailable for the grace, never a burst of downs, and then
// dropped silently; listed again within the grace, what changed meanwhile
// is reconciled. The sources share consul.max_connections throughout.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>

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

constexpr milliseconds kDeadline{20000};

using test_support::Describe;
using test_support::Has;
using test_support::RecordedEvents;

std::vector<Event> Of(const std::vector<Event>& events, const std::string& source) {
  std::vector<Event> out;
  for (const Event& event : events) {
    if (SourceKey(event.datacenter, event.scope) == source) out.push_back(event);
  }
  return out;
}

json Registration(const std::string& id, const std::string& service = "payments",
                  const std::string& status = "passing") {
  return {{"ID", id},
          {"Name", service},
          {"Address", "127.0.0.1"},
          {"Port", 8000},
          {"Check", {{"CheckID", "service:" + id}, {"TTL", "10m"}, {"Status", status}}}};
}

class FoundSourcesTest : public ::testing::Test {
 protected:
  void StartServer(bool enterprise = false, std::size_t max_conns_per_client = 200) {
    test_support::ConsulTestServerOptions options;
    options.enterprise = enterprise;
    options.max_conns_per_client = max_conns_per_client;
    consul_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(consul_->Start(), 0);
  }

  void Register(const ConsulScope& scope, const json& registration) {
    ASSERT_EQ(consul_->RegisterService(scope, registration), "");
  }

  void StartWatching(std::vector<WatchSource> sources, std::size_t max_connections = 100,
                     std::size_t max_sources = 16, milliseconds grace = milliseconds(60000)) {
    ConsulClientOptions client_options;
    client_options.address = consul_->address();
    client_options.max_connections = max_connections;
    client_options.wait = std::chrono::seconds(1);
    client_options.timeout_margin = milliseconds(500);
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
    options.source_list_interval = milliseconds(50);
    options.source_grace = grace;
    options.max_sources = max_sources;
    watcher_ = std::make_unique<Watcher>(
        options, *client_, std::make_unique<TransitionEngine>(EngineOptions{}, clock_), events_,
        clock_);
    watcher_->Start();
    ASSERT_TRUE(test_support::Eventually([&] { return watcher_->State().ready; }, kDeadline));
  }

  std::optional<WatchState> StateOf(const std::string& source) {
    for (const WatchState& state : watcher_->SourceStates()) {
      if (state.source == source) return state;
    }
    return std::nullopt;
  }

  // Waits until `source` is watched and synced.
  bool Synced(const std::string& source) {
    return test_support::Eventually(
        [&] {
          auto state = StateOf(source);
          return state && state->initial_sync_done && !state->last_error;
        },
        kDeadline);
  }

  std::vector<std::string> Sources() {
    std::vector<std::string> keys;
    for (const WatchState& state : watcher_->SourceStates()) keys.push_back(state.source);
    return keys;
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

WatchSource EveryDatacenter() {
  WatchSource source;
  source.all_datacenters = true;
  return source;
}

// A datacenter joining the WAN is watched, silently at first; one leaving
// it is unavailable for the grace, then dropped without a down; one that
// comes back after that is a new source again.
TEST_F(FoundSourcesTest, DatacenterAllFollowsTheWanList) {
  StartServer();
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  Register({}, Registration("payments-1"));
  Register({.datacenter = "dc2"}, Registration("payments-1"));
  StartWatching({EveryDatacenter()}, 100, 16, milliseconds(500));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc2"));
  EXPECT_TRUE(events_.All().empty()) << "the first sync is silent";

  ASSERT_TRUE(consul_->AddDatacenter("dc3"));
  Register({.datacenter = "dc3"}, Registration("web-1", "web"));
  ASSERT_TRUE(Synced("dc3"));
  EXPECT_TRUE(Of(events_.All(), "dc3").empty()) << "a new datacenter's first sync is silent: "
                                                << testing::PrintToString(Describe(events_.All()));
  EXPECT_TRUE(Has(events_.Silent(), "dc3 instance.up web-1"));
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.datacenter = "dc3"}, "service:web-1", "critical"));
  auto events = events_.WaitFor(
      [](const std::vector<Event>& all) { return Has(all, "dc3 instance.down web-1 critical"); });
  ASSERT_TRUE(Has(events, "dc3 instance.down web-1 critical"))
      << testing::PrintToString(Describe(events));
  EXPECT_EQ(watcher_->State().watched_services, 3U);

  // dc2 leaves the WAN: unavailable, then dropped silently.
  ASSERT_TRUE(consul_->RemoveDatacenter("dc2"));
  ASSERT_TRUE(test_support::Eventually([&] { return !StateOf("dc2").has_value(); }, kDeadline));
  EXPECT_EQ(watcher_->dropped_sources(), 1U);
  EXPECT_TRUE(Of(events_.All(), "dc2").empty())
      << "no down for a datacenter that left: " << testing::PrintToString(Describe(events_.All()));
  EXPECT_TRUE(test_support::Eventually(
      [&] { return Has(events_.Silent(), "dc2 instance.deregistered payments-1"); }, kDeadline))
      << "sinks that hold state drop its series";
  EXPECT_TRUE(watcher_->State().ready);

  // Back after the drop: a new source, silent again.
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  ASSERT_TRUE(Synced("dc2"));
  ASSERT_TRUE(
      consul_->UpdateCheck(ConsulScope{.datacenter = "dc2"}, "service:payments-1", "critical"));
  events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc2 instance.down payments-1 critical");
  });
  const std::vector<std::string> expected = {"dc2 instance.down payments-1 critical",
                                             "dc2 service.down payments"};
  EXPECT_EQ(Describe(Of(events, "dc2")), expected);
}

// Within the grace, a datacenter listed again goes on as before: its
// instances kept their state (no down), and what changed while it was off
// the list arrives reconciled.
TEST_F(FoundSourcesTest, ADatacenterBackWithinTheGraceIsReconciled) {
  StartServer();
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  Register({}, Registration("marker-1", "marker"));
  Register({.datacenter = "dc2"}, Registration("payments-1"));
  Register({.datacenter = "dc2"}, Registration("payments-2"));
  StartWatching({EveryDatacenter()});

  ASSERT_TRUE(consul_->RemoveDatacenter("dc2"));
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        auto state = StateOf("dc2");
        return state && state->last_error.has_value();
      },
      kDeadline));
  EXPECT_TRUE(watcher_->State().ready) << "an unavailable source does not take readiness";
  ASSERT_TRUE(
      consul_->UpdateCheck(ConsulScope{.datacenter = "dc2"}, "service:payments-1", "critical"));
  // Everything before this local change was handled (one loop thread).
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{}, "service:marker-1", "critical"));
  events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1 instance.down marker-1 critical");
  });
  EXPECT_TRUE(Of(events_.All(), "dc2").empty()) << testing::PrintToString(Describe(events_.All()));

  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc2 instance.down payments-1 critical");
  });
  const auto from_dc2 = Of(events, "dc2");
  ASSERT_FALSE(from_dc2.empty());
  for (const Event& event : from_dc2) {
    EXPECT_TRUE(event.reconciled) << Describe(event);
    EXPECT_NE(event.instance_id, "payments-2") << "nothing of what did not change";
  }
  EXPECT_EQ(watcher_->dropped_sources(), 0U);
  ASSERT_TRUE(Synced("dc2"));
}

// `peer: all`: the active peerings; one that stops being active is paused
// (unavailable, no downs), and its changes reconciled when it is active
// again.
TEST_F(FoundSourcesTest, PeerAllFollowsActivePeerings) {
  StartServer();
  ASSERT_TRUE(consul_->AddPeer("east"));
  ASSERT_TRUE(consul_->AddPeer("west", "PENDING"));
  Register({.peer = "east"}, Registration("payments-1"));
  Register({.peer = "west"}, Registration("web-1", "web"));
  WatchSource peers;
  peers.all_peers = true;
  StartWatching({WatchSource{}, peers});
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc1/peer:east"));

  ASSERT_TRUE(consul_->SetPeerState("west", "ACTIVE"));
  ASSERT_TRUE(Synced("dc1/peer:west"));
  EXPECT_TRUE(Of(events_.All(), "dc1/peer:west").empty());

  ASSERT_TRUE(consul_->SetPeerState("east", "FAILING"));
  // The source itself paused (the listing may say it is off the list
  // first).
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        auto state = StateOf("dc1/peer:east");
        return state && state->last_error &&
               state->last_error->message() == "peering east is FAILING";
      },
      kDeadline));
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.peer = "east"}, "service:payments-1", "critical"));
  ASSERT_TRUE(consul_->SetPeerState("east", "ACTIVE"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/peer:east instance.down payments-1 critical");
  });
  const auto from_east = Of(events, "dc1/peer:east");
  ASSERT_TRUE(Has(from_east, "dc1/peer:east instance.down payments-1 critical"))
      << testing::PrintToString(Describe(events));
  for (const Event& event : from_east) EXPECT_TRUE(event.reconciled) << Describe(event);
  EXPECT_EQ(watcher_->dropped_sources(), 0U);
}

// `namespace: "*"` on Consul Enterprise: namespaces created and deleted at
// run time. Deleting a namespace deletes its services in Consul: the
// source's own watch sees them deregistered (what happened), before the
// list shows the namespace gone; the source is then dropped, nothing more
// said. Consul lists a deleted namespace, with DeletedAt, until its data is
// gone in the background: the deletion is never finished here, so team-a
// stays listed (marked) and the bridge must take the mark as leaving.
TEST_F(FoundSourcesTest, NamespaceStarFollowsNamespaces) {
  StartServer(/*enterprise=*/true);
  ASSERT_TRUE(consul_->AddNamespace("", "", "team-a"));
  Register({}, Registration("payments-1"));
  Register({.ns = "team-a"}, Registration("payments-1"));
  WatchSource namespaces;
  namespaces.all_namespaces = true;
  // The default namespace named on its own as well: watched once.
  StartWatching({WatchSource{}, namespaces}, 100, 16, milliseconds(300));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc1/ns:team-a"));

  ASSERT_TRUE(consul_->AddNamespace("", "", "team-b"));
  Register({.ns = "team-b"}, Registration("web-1", "web"));
  ASSERT_TRUE(Synced("dc1/ns:team-b"));
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.ns = "team-b"}, "service:web-1", "critical"));
  auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/ns:team-b instance.down web-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc1/ns:team-b instance.down web-1 critical"))
      << testing::PrintToString(Describe(events));

  ASSERT_TRUE(consul_->RemoveNamespace("", "", "team-a"));
  ASSERT_TRUE(
      test_support::Eventually([&] { return !StateOf("dc1/ns:team-a").has_value(); }, kDeadline));
  const std::vector<std::string> deleted = {"dc1/ns:team-a instance.down payments-1 deregistered",
                                            "dc1/ns:team-a instance.deregistered payments-1",
                                            "dc1/ns:team-a service.down payments"};
  EXPECT_EQ(Describe(Of(events_.All(), "dc1/ns:team-a")), deleted);
  EXPECT_EQ(watcher_->dropped_sources(), 1U);
  // Dropped while /v1/namespaces still lists it, marked DeletedAt.
  EXPECT_FALSE(consul_->AddNamespace("", "", "team-a")) << "still marked for deletion";
}

// `partition: "*"` with `namespace: "*"`: every namespace of every admin
// partition, a partition created at run time included.
TEST_F(FoundSourcesTest, PartitionStarFollowsPartitionsAndTheirNamespaces) {
  StartServer(/*enterprise=*/true);
  ASSERT_TRUE(consul_->AddPartition("", "eu"));
  Register({}, Registration("payments-1"));
  Register({.partition = "eu"}, Registration("payments-1"));
  WatchSource everything;
  everything.all_partitions = true;
  everything.all_namespaces = true;
  StartWatching({everything}, 100, 16, milliseconds(300));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc1/partition:eu"));

  ASSERT_TRUE(consul_->AddPartition("", "us"));
  ASSERT_TRUE(consul_->AddNamespace("", "us", "team-a"));
  Register({.partition = "us", .ns = "team-a"}, Registration("web-1", "web"));
  ASSERT_TRUE(Synced("dc1/ns:team-a/partition:us"));
  ASSERT_TRUE(Synced("dc1/partition:us"));
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.partition = "us", .ns = "team-a"}, "service:web-1",
                                   "critical"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/ns:team-a/partition:us instance.down web-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc1/ns:team-a/partition:us instance.down web-1 critical"))
      << testing::PrintToString(Describe(events));
  EXPECT_EQ(events.front().scope.partition, "us");

  // A partition marked for deletion (listed with DeletedAt, its namespaces
  // too) has left: its sources are dropped once the grace is over.
  ASSERT_TRUE(consul_->RemovePartition("", "us"));
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        return !StateOf("dc1/partition:us").has_value() &&
               !StateOf("dc1/ns:team-a/partition:us").has_value();
      },
      kDeadline))
      << testing::PrintToString(Sources());
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc1/partition:eu"));
  EXPECT_FALSE(consul_->AddPartition("", "us")) << "still marked for deletion";
}

// A list that cannot be read is never an empty one: with dc2 cut off, its
// namespaces cannot be listed, and the sources listed before stay (shown
// unavailable by their own errors), however many listings pass meanwhile.
TEST_F(FoundSourcesTest, AListThatCannotBeReadKeepsItsSources) {
  StartServer(/*enterprise=*/true);
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  ASSERT_TRUE(consul_->AddNamespace("dc2", "", "team-a"));
  Register({.datacenter = "dc2", .ns = "team-a"}, Registration("payments-1"));
  WatchSource everything = EveryDatacenter();
  everything.all_namespaces = true;
  StartWatching({everything}, 100, 16, milliseconds(200));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc2", "dc2/ns:team-a"));

  ASSERT_TRUE(consul_->CutDatacenter("dc2", true));
  ASSERT_TRUE(test_support::Eventually(
      [&] {
        auto state = StateOf("dc2/ns:team-a");
        return state && state->last_error &&
               state->last_error->message().find("No path to datacenter") != std::string::npos;
      },
      kDeadline));
  // Listings every 50 ms, two namespace lists each: well past the grace.
  const int listed = consul_->RequestCounts()["/v1/namespaces"];
  ASSERT_TRUE(test_support::Eventually(
      [&] { return consul_->RequestCounts()["/v1/namespaces"] >= listed + 20; }, kDeadline));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc2", "dc2/ns:team-a"));
  EXPECT_EQ(watcher_->dropped_sources(), 0U);
  EXPECT_TRUE(events_.All().empty()) << testing::PrintToString(Describe(events_.All()));

  ASSERT_TRUE(consul_->CutDatacenter("dc2", false));
  ASSERT_TRUE(Synced("dc2/ns:team-a"));
}

// max_sources shares of the budget plus one connection for the listing:
// a source past max_sources is refused, shown unavailable with the reason,
// and admitted once a dropped one's connections are free; the test
// server, limited to max_connections per client, never sees more.
TEST_F(FoundSourcesTest, SourcesComingAndGoingStayWithinTheBudget) {
  constexpr std::size_t kMaxConnections = 10;
  StartServer(false, kMaxConnections);
  for (const std::string dc : {"dc2", "dc3", "dc4"}) ASSERT_TRUE(consul_->AddDatacenter(dc));
  for (const std::string dc : {"", "dc2", "dc3", "dc4"}) {
    for (int i = 0; i < 6; ++i) {
      Register({.datacenter = dc},
               Registration("svc-" + std::to_string(i) + "-1", "svc-" + std::to_string(i)));
    }
  }
  consul_->ResetPeakConnections();
  StartWatching({EveryDatacenter()}, kMaxConnections, 3, milliseconds(200));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc2", "dc3", "dc4"));
  EXPECT_EQ(watcher_->refused_sources(), 1U);
  const auto refused = StateOf("dc4");
  ASSERT_TRUE(refused && refused->last_error);
  EXPECT_THAT(refused->last_error->message(), HasSubstr("watch.max_sources (3)"));
  EXPECT_TRUE(watcher_->State().ready) << "a refused source is unavailable, not unready";

  // dc2 goes: once dropped and its connections free, dc4 gets its place.
  ASSERT_TRUE(consul_->RemoveDatacenter("dc2"));
  ASSERT_TRUE(Synced("dc4"));
  EXPECT_EQ(watcher_->refused_sources(), 0U);
  ASSERT_TRUE(
      consul_->UpdateCheck(ConsulScope{.datacenter = "dc4"}, "service:svc-2-1", "critical"));
  ASSERT_TRUE(
      consul_->UpdateCheck(ConsulScope{.datacenter = "dc3"}, "service:svc-4-1", "critical"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc4 instance.down svc-2-1 critical") &&
           Has(all, "dc3 instance.down svc-4-1 critical");
  });
  ASSERT_TRUE(Has(events, "dc4 instance.down svc-2-1 critical"))
      << testing::PrintToString(Describe(events));
  // dc2 back: refused again, three hold the budget.
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  ASSERT_TRUE(
      test_support::Eventually([&] { return watcher_->refused_sources() == 1U; }, kDeadline));
  EXPECT_LE(consul_->PeakConnections(), kMaxConnections);
  EXPECT_EQ(consul_->RefusedConnections(), 0U);
}

// The budget is re-split as sources come and go: a source arriving shrinks
// the others' shares (their dedicated services past the new share move to
// the change detector, their queries retired, not cut) and starts once
// those connections are free; a source leaving gives the rest a larger
// share once its connections are free. Throughout, the test server (which
// refuses past its limit) never sees more than consul.max_connections, and
// every service's change is reported, whichever path watches it.
TEST_F(FoundSourcesTest, TheBudgetFollowsTheSourcesAndStaysWithinIt) {
  constexpr std::size_t kMaxConnections = 20;
  constexpr int kServices = 12;
  StartServer(false, kMaxConnections);
  const auto register_all = [&](const std::string& dc) {
    for (int i = 0; i < kServices; ++i) {
      Register({.datacenter = dc},
               Registration("svc-" + std::to_string(i) + "-1", "svc-" + std::to_string(i)));
    }
  };
  ASSERT_TRUE(consul_->AddDatacenter("dc2"));
  register_all("");
  register_all("dc2");
  consul_->ResetPeakConnections();
  StartWatching({EveryDatacenter()}, kMaxConnections, 3, milliseconds(200));
  EXPECT_THAT(Sources(), ::testing::ElementsAre("dc1", "dc2"));
  // Two sources share 19 (one lists them): 10 and 9, 7 and 6 dedicated.
  // Every wait also samples what the watcher commits: never past the budget.
  std::size_t most_committed = 0;
  const auto dedicated = [&](const std::string& source, std::size_t at_least, std::size_t at_most) {
    return test_support::Eventually(
        [&] {
          most_committed = std::max(most_committed, watcher_->connections_committed());
          auto state = StateOf(source);
          return state && state->initial_sync_done && state->dedicated_services >= at_least &&
                 state->dedicated_services <= at_most;
        },
        kDeadline);
  };
  ASSERT_TRUE(dedicated("dc1", 7, 7));
  ASSERT_TRUE(dedicated("dc2", 6, 6));
  EXPECT_EQ(StateOf("dc1")->connection_budget, 10U);

  // Every service of `sources` turns `status`: each is reported.
  const auto change_all = [&](const std::vector<std::string>& sources, const std::string& status) {
    std::vector<std::string> expected;
    for (const std::string& source : sources) {
      for (int i = 0; i < kServices; ++i) {
        const std::string id = "svc-" + std::to_string(i) + "-1";
        EXPECT_TRUE(consul_->UpdateCheck(ConsulScope{.datacenter = source == "dc1" ? "" : source},
                                         "service:" + id, status));
        expected.push_back(source + (status == "critical" ? " instance.down " + id + " critical"
                                                          : " instance.up " + id));
      }
    }
    const auto events = events_.WaitFor([&](const std::vector<Event>& all) {
      return std::all_of(expected.begin(), expected.end(),
                         [&](const std::string& one) { return Has(all, one); });
    });
    for (const std::string& one : expected) {
      EXPECT_TRUE(Has(events, one)) << one << " missing";
    }
  };

  // dc3 joins: the others shrink to 7 and 6 (4 and 3 dedicated), dc3 starts
  // once their retired queries let their connections go.
  ASSERT_TRUE(consul_->AddDatacenter("dc3"));
  register_all("dc3");
  ASSERT_TRUE(Synced("dc3"));
  ASSERT_TRUE(test_support::Eventually(
      [&] { return StateOf("dc3")->watched_services == static_cast<std::size_t>(kServices); },
      kDeadline));
  ASSERT_TRUE(dedicated("dc1", 4, 4));
  ASSERT_TRUE(dedicated("dc2", 3, 3));
  ASSERT_TRUE(dedicated("dc3", 3, 3));
  EXPECT_EQ(StateOf("dc3")->connection_budget, 6U);
  EXPECT_EQ(StateOf("dc2")->covered_services, kServices - 3U);
  change_all({"dc1", "dc2", "dc3"}, "critical");

  // dc3 leaves: once dropped and its connections free, the two left get
  // 10 and 9 again.
  ASSERT_TRUE(consul_->RemoveDatacenter("dc3"));
  ASSERT_TRUE(test_support::Eventually([&] { return !StateOf("dc3"); }, kDeadline));
  ASSERT_TRUE(dedicated("dc1", 7, 7));
  ASSERT_TRUE(dedicated("dc2", 6, 6));
  EXPECT_EQ(StateOf("dc2")->connection_budget, 9U);
  change_all({"dc1", "dc2"}, "passing");

  EXPECT_LE(most_committed, kMaxConnections);
  EXPECT_GT(most_committed, 0U);
  RecordProperty("most_committed", std::to_string(most_committed));
  RecordProperty("peak_connections", std::to_string(consul_->PeakConnections()));
  EXPECT_LE(consul_->PeakConnections(), kMaxConnections);
  EXPECT_EQ(consul_->RefusedConnections(), 0U);
}

// A peer source whose share leaves its services covered (Consul's
// /v1/health/state takes no ?peer=, so no change detector covers them):
// they are read anyway, on the peer's catalog moves and its sweeps, and a
// change in each is reported once a sweep reads it.
TEST_F(FoundSourcesTest, APeerSourcesCoveredServicesAreReadAndTheirChangesReported) {
  constexpr std::size_t kMaxConnections = 7;  // dc1 and the peer get 3 each
  StartServer(false, kMaxConnections);
  ASSERT_TRUE(consul_->AddPeer("east"));
  for (int i = 0; i < 3; ++i) {
    Register({.peer = "east"},
             Registration("svc-" + std::to_string(i) + "-1", "svc-" + std::to_string(i)));
  }
  WatchSource peers;
  peers.all_peers = true;
  StartWatching({WatchSource{}, peers}, kMaxConnections, 2);
  ASSERT_TRUE(Synced("dc1/peer:east"));
  const auto state = StateOf("dc1/peer:east");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->dedicated_services, 0U);
  EXPECT_EQ(state->covered_services, 3U);
  // A registration moves the peer's catalog: its covered services are read
  // again, each change reported.
  ASSERT_TRUE(consul_->UpdateCheck(ConsulScope{.peer = "east"}, "service:svc-1-1", "critical"));
  Register({.peer = "east"}, Registration("other-1", "other"));
  const auto events = events_.WaitFor([](const std::vector<Event>& all) {
    return Has(all, "dc1/peer:east instance.down svc-1-1 critical");
  });
  EXPECT_TRUE(Has(events, "dc1/peer:east instance.down svc-1-1 critical"))
      << testing::PrintToString(Describe(events));
  EXPECT_EQ(consul_->RefusedConnections(), 0U);
}

}  // namespace
}  // namespace hb
