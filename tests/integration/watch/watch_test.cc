// The watch, the Consul client and the engine against the Consul test
// server: every failure mode of docs/consul-semantics.md that the bridge must
// report, with go-kratos-shaped registrations (TTL check service:<id>,
// heartbeat, DeregisterCriticalServiceAfter).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "bridge/watch/watcher.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using test_support::ConsulTestServer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr milliseconds kDeadline{10000};

// Records what the watch publishes; the test waits for the next events.
class RecordingPublisher final : public EventPublisher {
 public:
  void Publish(std::vector<Event> events) override {
    std::lock_guard lock(mutex_);
    for (auto& event : events) events_.push_back(std::move(event));
    changed_.notify_all();
  }

  // The next `count` notification events (silent ones are skipped), as
  // "instance.down payments-1 critical"; fewer if the deadline passes.
  std::vector<std::string> Next(std::size_t count, milliseconds timeout = kDeadline) {
    std::unique_lock lock(mutex_);
    std::vector<std::string> out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out.size() < count) {
      if (cursor_ == events_.size() &&
          !changed_.wait_until(lock, deadline, [&] { return cursor_ < events_.size(); })) {
        break;
      }
      const Event& event = events_[cursor_++];
      if (event.silent) continue;
      last_ = event;
      std::string text(ToString(event.type));
      text += " " + (event.IsInstanceEvent() ? event.instance_id : event.service);
      if (event.reason) text += " " + std::string(ToString(*event.reason));
      out.push_back(text);
    }
    return out;
  }

  const Event& last() const { return last_; }

  std::size_t silent_count() {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(events_.begin(), events_.end(), [](const Event& e) { return e.silent; }));
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
  std::size_t cursor_ = 0;
  Event last_;
};

class WatchFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    test_support::ConsulTestServerOptions options;
    options.reap_interval = milliseconds(100);
    options.min_deregister_critical_after = milliseconds(300);
    options.acl_token = server_token_;
    consul_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(consul_->Start(), 0);
  }

  void TearDown() override {
    watcher_.reset();
    client_.reset();
  }

  // A go-kratos instance: tag version=<v>, TTL check service:<id>,
  // DeregisterCriticalServiceAfter. The tests do not heartbeat on a timer, so
  // the TTL is long unless a test wants it to lapse: a loaded CI machine must
  // not expire it by accident.
  void RegisterKratos(const std::string& id, const std::string& service = "payments",
                      const std::string& ttl = "60s", const std::string& reap_after = "600s") {
    httplib::Client http("127.0.0.1", consul_->port());
    json body = {{"ID", id},
                 {"Name", service},
                 {"Tags", {"version=2.4.1"}},
                 {"Address", "127.0.0.1"},
                 {"Port", 8000},
                 {"Meta", {{"version", "2.4.1"}}},
                 {"Check",
                  {{"CheckID", "service:" + id},
                   {"TTL", ttl},
                   {"Status", "passing"},
                   {"DeregisterCriticalServiceAfter", reap_after}}}};
    auto result =
        http.Put("/v1/agent/service/register", TokenHeaders(), body.dump(), "application/json");
    ASSERT_TRUE(result && result->status == 200) << (result ? result->body : "no answer");
  }

  // The go-kratos heartbeat: PUT /v1/agent/check/update/service:<id>.
  void Heartbeat(const std::string& id, const std::string& status = "passing") {
    httplib::Client http("127.0.0.1", consul_->port());
    auto result =
        http.Put("/v1/agent/check/update/service:" + id, TokenHeaders(),
                 json{{"Status", status}, {"Output", "heartbeat"}}.dump(), "application/json");
    ASSERT_TRUE(result && result->status == 200);
  }

  httplib::Headers TokenHeaders() const {
    return server_token_.empty() ? httplib::Headers{}
                                 : httplib::Headers{{"X-Consul-Token", server_token_}};
  }

  void StartWatching(const std::string& token = "", bool wait_ready = true) {
    ConsulClientOptions client_options;
    client_options.address = consul_->address();
    client_options.max_connections = max_connections_;
    client_options.token = token.empty() ? server_token_ : token;
    client_options.wait = std::chrono::seconds(5);
    client_options.backoff_initial = milliseconds(50);
    client_options.backoff_max = milliseconds(200);
    client_options.same_index_interval = milliseconds(50);
    auto client = ConsulClient::Create(client_options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
    WatcherOptions options;
    options.unreachable_grace = milliseconds(300);
    options.agent_retry_initial = milliseconds(50);
    options.agent_retry_max = milliseconds(200);
    watcher_ = std::make_unique<Watcher>(
        options, *client_, std::make_unique<TransitionEngine>(EngineOptions{}, clock_), events_,
        clock_);
    watcher_->Start();
    if (wait_ready) {
      ASSERT_TRUE(WaitUntil([&] { return watcher_->State().ready; }));
    }
  }

  ::testing::AssertionResult WaitUntil(const std::function<bool()>& condition,
                                       milliseconds timeout = kDeadline) {
    return test_support::Eventually(condition, timeout);
  }

  std::string server_token_;
  std::size_t max_connections_ = ConsulClientOptions{}.max_connections;
  bool default_client_options_ = false;  // only the address is set
  SystemClock clock_;
  std::unique_ptr<ConsulTestServer> consul_;
  std::unique_ptr<ConsulClient> client_;
  RecordingPublisher events_;
  std::unique_ptr<Watcher> watcher_;
};

// Every scenario runs twice: with the default budget every service has a
// blocking query of its own; with the smallest (3: the catalog watch, the
// change detector, one read) every service is covered by the detector.
class WatchTest : public WatchFixture, public ::testing::WithParamInterface<std::size_t> {
 protected:
  void SetUp() override {
    max_connections_ = GetParam();
    WatchFixture::SetUp();
  }
};

INSTANTIATE_TEST_SUITE_P(Budgets, WatchTest, ::testing::Values(100, 3),
                         [](const ::testing::TestParamInfo<std::size_t>& budget) {
                           return budget.param == 3 ? std::string("AllCoveredByTheDetector")
                                                    : std::string("AQueryPerService");
                         });

TEST_P(WatchTest, InitialSyncIsSilentThenReady) {
  RegisterKratos("payments-1");
  RegisterKratos("orders-1", "orders");
  StartWatching();
  const WatchState state = watcher_->State();
  EXPECT_TRUE(state.initial_sync_done);
  EXPECT_EQ(state.datacenter, "dc1");
  EXPECT_EQ(state.watched_services, 2u);  // "consul" is excluded by default
  // registered + up for two instances and service.up for two services
  EXPECT_EQ(events_.silent_count(), 6u);
}

TEST_P(WatchTest, TtlExpiryOfTheLastInstanceEmitsDownCriticalAndServiceDown) {
  RegisterKratos("payments-1", "payments", "500ms");
  StartWatching();
  // No heartbeat: the TTL lapses and Consul marks it critical.
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_EQ(events_.last().instances_up, 0);
}

TEST_P(WatchTest, GracefulDeregistrationEmitsDownThenDeregistered) {
  RegisterKratos("payments-1");
  RegisterKratos("payments-2");
  StartWatching();
  ASSERT_TRUE(consul_->DeregisterService("payments-1"));
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.down payments-1 deregistered",
                                           "instance.deregistered payments-1"));
  // The last instance leaving empties the list: that is information.
  ASSERT_TRUE(consul_->DeregisterService("payments-2"));
  EXPECT_THAT(events_.Next(3),
              ElementsAre("instance.down payments-2 deregistered",
                          "instance.deregistered payments-2", "service.down payments"));
}

TEST_P(WatchTest, ReaperEmitsDownThenLaterDeregistered) {
  RegisterKratos("payments-1", "payments", "300ms", "300ms");
  RegisterKratos("payments-2");
  StartWatching();
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down payments-1 critical"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.deregistered payments-1"));
}

TEST_P(WatchTest, ServiceAndNodeMaintenanceAreDownWithReasonMaintenance) {
  RegisterKratos("payments-1");
  RegisterKratos("payments-2");
  StartWatching();
  ASSERT_TRUE(consul_->SetServiceMaintenance("payments-1", true, "deploy"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down payments-1 maintenance"));
  ASSERT_TRUE(consul_->SetServiceMaintenance("payments-1", false));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.up payments-1"));
  consul_->SetNodeMaintenance(true, "kernel upgrade");
  EXPECT_THAT(events_.Next(3),
              ElementsAre("instance.down payments-1 maintenance",
                          "instance.down payments-2 maintenance", "service.down payments"));
  consul_->SetNodeMaintenance(false);
  EXPECT_THAT(events_.Next(3), ElementsAre("instance.up payments-1", "instance.up payments-2",
                                           "service.up payments"));
}

TEST_P(WatchTest, RecoveryEmitsUpAndServiceUp) {
  RegisterKratos("payments-1");
  StartWatching();
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  Heartbeat("payments-1", "passing");
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_P(WatchTest, AgentDeathTurnsEveryInstanceOnItsNodeDown) {
  RegisterKratos("payments-1");
  RegisterKratos("orders-1", "orders");
  StartWatching();
  ASSERT_TRUE(consul_->SetSerfHealth("node-a", "critical"));
  auto events = events_.Next(4);
  std::sort(events.begin(), events.end());
  EXPECT_THAT(events,
              ElementsAre("instance.down orders-1 critical", "instance.down payments-1 critical",
                          "service.down orders", "service.down payments"));
}

TEST_P(WatchTest, NewServiceAppearingEmitsRegisteredAndUp) {
  RegisterKratos("payments-1");
  StartWatching();
  RegisterKratos("orders-1", "orders");
  EXPECT_THAT(events_.Next(3), ElementsAre("instance.registered orders-1", "instance.up orders-1",
                                           "service.up orders"));
  EXPECT_TRUE(WaitUntil([&] { return watcher_->State().watched_services == 2; }));
}

TEST_P(WatchTest, ServiceNamesThatNeedEncodingInAUrlAreWatched) {
  RegisterKratos("legacy-1", "legacy billing");
  StartWatching();
  Heartbeat("legacy-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down legacy-1 critical", "service.down legacy billing"));
}

TEST_P(WatchTest, IndexResetStillReportsLaterChangesWithoutSpuriousEvents) {
  RegisterKratos("payments-1");
  RegisterKratos("payments-2");
  StartWatching();
  consul_->ResetIndex(2);  // a snapshot restore: every index goes backwards
  // The reset alone changes nothing; the next change is reported, alone.
  Heartbeat("payments-2", "critical");
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down payments-2 critical"));
  Heartbeat("payments-2", "passing");
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.up payments-2"));
}

TEST_P(WatchTest, ChangesDuringAConsulOutageAreReportedOnceAfterItReturns) {
  RegisterKratos("payments-1");
  RegisterKratos("payments-2");
  RegisterKratos("payments-3");
  StartWatching();
  consul_->Stop();
  EXPECT_TRUE(WaitUntil([&] { return !watcher_->State().ready; }));
  EXPECT_TRUE(watcher_->State().last_error.has_value());
  // While it is down: one instance deregistered, one critical.
  ASSERT_TRUE(consul_->DeregisterService("payments-1"));
  consul_->UpdateCheck("service:payments-2", "critical", "connection refused");
  ASSERT_NE(consul_->Start(), 0);
  EXPECT_THAT(events_.Next(3), ElementsAre("instance.down payments-2 critical",
                                           "instance.down payments-1 deregistered",
                                           "instance.deregistered payments-1"));
  EXPECT_TRUE(WaitUntil([&] { return watcher_->State().ready; }));
  // Reported once: the next event is the next change, nothing repeated.
  Heartbeat("payments-3", "warning");
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.status_changed payments-3"));
}

TEST_P(WatchTest, ServerErrorsAreRetriedAndKeepTheLastKnownState) {
  RegisterKratos("payments-1");
  StartWatching();
  consul_->FailNext(5, 500, "No cluster leader", "/v1/health/");
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
}

TEST_P(WatchTest, ConnectionsDroppedMidAnswerAreRetriedAndNothingIsMissed) {
  RegisterKratos("payments-1");
  StartWatching();
  consul_->DropNext(4);
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_THAT(events_.Next(1, milliseconds(300)), ::testing::IsEmpty());  // and nothing twice
}

TEST_P(WatchTest, MalformedAnswerIsRetriedAndNeverTreatedAsEmpty) {
  RegisterKratos("payments-1");
  RegisterKratos("payments-2");
  StartWatching();
  consul_->MalformedNext(3);
  Heartbeat("payments-1", "critical");
  // Had a malformed body been read as "no instances", both would have been
  // deregistered first.
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down payments-1 critical"));
  Heartbeat("payments-1", "passing");
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.up payments-1"));
}

TEST_P(WatchTest, ServiceLeavingTheCatalogIsGone) {
  RegisterKratos("payments-1");
  RegisterKratos("orders-1", "orders");
  StartWatching();
  ASSERT_TRUE(consul_->DeregisterService("orders-1"));
  EXPECT_THAT(events_.Next(3),
              ElementsAre("instance.down orders-1 deregistered", "instance.deregistered orders-1",
                          "service.down orders"));
  EXPECT_TRUE(WaitUntil([&] { return watcher_->State().watched_services == 1; }));
}

// A go-kratos-like registration made in the server directly: no HTTP
// connection of the test's own counts against the limit being measured.
json Kratos(const std::string& id, const std::string& service) {
  return {{"ID", id},
          {"Name", service},
          {"Tags", {"version=2.4.1"}},
          {"Address", "127.0.0.1"},
          {"Port", 8000},
          {"Meta", {{"version", "2.4.1"}}},
          {"Check",
           {{"CheckID", "service:" + id},
            {"TTL", "600s"},
            {"Status", "passing"},
            {"DeregisterCriticalServiceAfter", "600s"}}}};
}

std::string ServiceName(int i) {
  char name[16];
  std::snprintf(name, sizeof(name), "svc-%03d", i);
  return name;
}

// The acceptance test: more services than Consul's default
// per-IP limit, the bridge on its defaults.
TEST_F(WatchFixture, FourHundredServicesOnConsulsDefaultLimitAreWatchedInsideTheBudget) {
  ASSERT_EQ(test_support::ConsulTestServerOptions{}.max_conns_per_client, 200u);
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(consul_->RegisterService(Kratos(ServiceName(i) + "-1", ServiceName(i))), "");
  }
  consul_->ResetPeakConnections();
  default_client_options_ = true;
  StartWatching("", /*wait_ready=*/false);
  ASSERT_TRUE(WaitUntil([&] { return watcher_->State().ready; }, milliseconds(60000)))
      << (watcher_->State().last_error ? watcher_->State().last_error->ToString() : "no error");
  const WatchState state = watcher_->State();
  EXPECT_EQ(state.watched_services, 400u);
  const ConnectionPlan plan = ConnectionPlan::For(100);
  EXPECT_EQ(state.dedicated_services, plan.dedicated);
  EXPECT_EQ(state.covered_services, 400u - plan.dedicated);
  // A check turning critical is delivered, in a service with its own query
  // (svc-000) and in one covered by the detector (svc-399).
  for (const int i : {399, 0, 250}) {
    const std::string service = ServiceName(i);
    ASSERT_TRUE(consul_->UpdateCheck("service:" + service + "-1", "critical", "boom"));
    EXPECT_THAT(events_.Next(2),
                ElementsAre("instance.down " + service + "-1 critical", "service.down " + service));
  }
  EXPECT_LE(consul_->PeakConnections(), 100u);
  EXPECT_EQ(consul_->RefusedConnections(), 0u);
}

class SmallBudgetWatchTest : public WatchFixture {
 protected:
  // 5 connections: the catalog, the detector, one read, two dedicated.
  SmallBudgetWatchTest() { max_connections_ = 5; }

  // Services a to d, one instance each, watched: with 5 connections two
  // get a query of their own and two are covered by the change detector.
  void RegisterFourServicesAndWatch() {
    for (const char* service : {"a", "b", "c", "d"}) {
      ASSERT_EQ(consul_->RegisterService(Kratos(std::string(service) + "-1", service)), "");
    }
    StartWatching();
  }
};

TEST_F(SmallBudgetWatchTest, CoveredServicesSeeChecklessInstancesMetaChangesAndNewServices) {
  ASSERT_NO_FATAL_FAILURE(RegisterFourServicesAndWatch());
  ASSERT_EQ(ConnectionPlan::For(5).dedicated, 2u);
  EXPECT_EQ(watcher_->State().dedicated_services, 2u);
  EXPECT_EQ(watcher_->State().covered_services, 2u);

  // An instance without any check never shows in the checks table: the
  // catalog's index moves, and every covered service is read again.
  ASSERT_EQ(consul_->RegisterService(json{{"ID", "d-2"}, {"Name", "d"}, {"Port", 9000}}), "");
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.registered d-2", "instance.up d-2"));
  ASSERT_TRUE(consul_->DeregisterService("d-2"));
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down d-2 deregistered", "instance.deregistered d-2"));

  // A meta change shows no check either; the next event carries it.
  json changed = Kratos("c-1", "c");
  changed["Meta"]["version"] = "2.5.0";
  ASSERT_EQ(consul_->RegisterService(changed), "");
  ASSERT_TRUE(WaitUntil([&] { return consul_->RequestCounts()["/v1/health/service/c"] >= 2; }));
  ASSERT_TRUE(consul_->UpdateCheck("service:c-1", "critical", "boom"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down c-1 critical"));
  EXPECT_EQ(events_.last().meta, (std::map<std::string, std::string>{{"version", "2.5.0"}}));
  EXPECT_THAT(events_.Next(1), ElementsAre("service.down c"));

  // A new service past the budget is covered, and watched.
  ASSERT_EQ(consul_->RegisterService(Kratos("e-1", "e")), "");
  EXPECT_THAT(events_.Next(3),
              ElementsAre("instance.registered e-1", "instance.up e-1", "service.up e"));
  EXPECT_EQ(watcher_->State().covered_services, 3u);
  ASSERT_TRUE(consul_->UpdateCheck("service:e-1", "warning", "slow"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.status_changed e-1"));
}

// The detector's blocking query answers only the unhealthy checks; a
// registration or deregistration whose checks all pass is found by one read
// of the whole checks table on the catalog's move, not by re-reading every
// covered service.
TEST_F(SmallBudgetWatchTest, CoveredPassingRegistrationsAreFoundByOneTableReadNotASweep) {
  ASSERT_NO_FATAL_FAILURE(RegisterFourServicesAndWatch());
  ASSERT_EQ(watcher_->State().covered_services, 2u);  // c and d
  const std::string filtered = "/v1/health/state/any?filter=" + std::string(kNotPassingFilter);
  ASSERT_TRUE(WaitUntil([&] { return consul_->RequestCounts()[filtered] >= 1; }));
  auto counts = consul_->RequestCounts();
  const int c_reads = counts["/v1/health/service/c"];
  const int table_reads = counts["/v1/health/state/any"] - counts[filtered];

  ASSERT_EQ(consul_->RegisterService(Kratos("d-2", "d")), "");
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.registered d-2", "instance.up d-2"));
  ASSERT_TRUE(consul_->DeregisterService("d-2"));
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down d-2 deregistered", "instance.deregistered d-2"));
  counts = consul_->RequestCounts();
  EXPECT_GE(counts["/v1/health/state/any"] - counts[filtered], table_reads + 2);
  EXPECT_EQ(counts["/v1/health/service/c"], c_reads);  // no sweep

  // Health changes come through the filtered query alone.
  const int table_reads_before = counts["/v1/health/state/any"] - counts[filtered];
  ASSERT_TRUE(consul_->UpdateCheck("service:d-1", "critical", "boom"));
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.down d-1 critical", "service.down d"));
  ASSERT_TRUE(consul_->UpdateCheck("service:d-1", "passing", "fine"));
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.up d-1", "service.up d"));
  ASSERT_TRUE(consul_->UpdateCheck("service:d-1", "warning", "slow"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.status_changed d-1"));
  counts = consul_->RequestCounts();
  EXPECT_EQ(counts["/v1/health/state/any"] - counts[filtered], table_reads_before);
  EXPECT_LE(consul_->PeakConnections(), 5u);
}

// A catalog move that the catalog's own answer explains (a covered service
// retagged) reads that service at once: no read of the whole checks table,
// no sweep of the other covered services.
TEST_F(SmallBudgetWatchTest, ARetaggedCoveredServiceIsReadWithoutATableRead) {
  ASSERT_NO_FATAL_FAILURE(RegisterFourServicesAndWatch());
  ASSERT_EQ(watcher_->State().covered_services, 2u);  // c and d
  const std::string filtered = "/v1/health/state/any?filter=" + std::string(kNotPassingFilter);
  ASSERT_TRUE(WaitUntil([&] { return consul_->RequestCounts()[filtered] >= 1; }));
  auto counts = consul_->RequestCounts();
  const int c_reads = counts["/v1/health/service/c"];
  const int d_reads = counts["/v1/health/service/d"];
  const int table_reads = counts["/v1/health/state/any"] - counts[filtered];

  json retagged = Kratos("c-1", "c");
  retagged["Tags"] = {"version=2.5.0"};
  ASSERT_EQ(consul_->RegisterService(retagged), "");
  ASSERT_TRUE(
      WaitUntil([&] { return consul_->RequestCounts()["/v1/health/service/c"] > c_reads; }));
  ASSERT_TRUE(consul_->UpdateCheck("service:c-1", "critical", "boom"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down c-1 critical"));
  EXPECT_EQ(events_.last().tags, std::vector<std::string>{"version=2.5.0"});
  EXPECT_THAT(events_.Next(1), ElementsAre("service.down c"));
  counts = consul_->RequestCounts();
  EXPECT_EQ(counts["/v1/health/state/any"] - counts[filtered], table_reads);
  EXPECT_EQ(counts["/v1/health/service/d"], d_reads);  // no sweep
}

// A passing registration costs a read of the whole checks table, parsed on a
// worker thread: a health change of another covered service landing at the
// same moment is reported as well, whichever finishes first.
TEST_F(SmallBudgetWatchTest, AHealthChangeLandingDuringATableReadIsReported) {
  ASSERT_NO_FATAL_FAILURE(RegisterFourServicesAndWatch());
  ASSERT_EQ(watcher_->State().covered_services, 2u);  // c and d
  for (int round = 0; round < 5; ++round) {
    const std::string id = "d-" + std::to_string(round + 2);
    ASSERT_EQ(consul_->RegisterService(Kratos(id, "d")), "");  // passing: the table names it
    ASSERT_TRUE(consul_->UpdateCheck("service:c-1", round % 2 == 0 ? "critical" : "passing"));
    const std::vector<std::string> c_events =
        round % 2 == 0 ? std::vector<std::string>{"instance.down c-1 critical", "service.down c"}
                       : std::vector<std::string>{"instance.up c-1", "service.up c"};
    EXPECT_THAT(events_.Next(4),
                ::testing::UnorderedElementsAre("instance.registered " + id, "instance.up " + id,
                                                c_events[0], c_events[1]))
        << "round " << round;
  }
  EXPECT_LE(consul_->PeakConnections(), 5u);
}

TEST_F(SmallBudgetWatchTest, AServiceLeavingFreesItsSlotForACoveredOneOnceItsQueryEnded) {
  ASSERT_NO_FATAL_FAILURE(RegisterFourServicesAndWatch());
  ASSERT_TRUE(consul_->DeregisterService("a-1"));  // "a" had a query of its own
  EXPECT_THAT(events_.Next(3), ElementsAre("instance.down a-1 deregistered",
                                           "instance.deregistered a-1", "service.down a"));
  ASSERT_TRUE(WaitUntil([&] {
    const WatchState state = watcher_->State();
    return state.dedicated_services == 2 && state.covered_services == 1;
  }));
  // "c" moved to the free slot; its changes still arrive.
  ASSERT_TRUE(consul_->UpdateCheck("service:c-1", "critical", "boom"));
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.down c-1 critical", "service.down c"));
  EXPECT_LE(consul_->PeakConnections(), 5u);
}

// Another client on the same IP takes most of Consul's limit: the bridge is
// refused (429), says so, backs off, and recovers once the slots are free.
TEST_F(WatchFixture, RefusedConnectionsAreBackedOffAndRecoverWhenSlotsFree) {
  test_support::ConsulTestServerOptions options;
  options.max_conns_per_client = 8;
  consul_ = std::make_unique<ConsulTestServer>(options);
  ASSERT_NE(consul_->Start(), 0);
  for (const char* service : {"a", "b", "c", "d", "e"}) {
    ASSERT_EQ(consul_->RegisterService(Kratos(std::string(service) + "-1", service)), "");
  }
  std::vector<int> hogs;
  for (int i = 0; i < 6; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(consul_->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    hogs.push_back(fd);
  }
  ASSERT_TRUE(WaitUntil([&] { return consul_->OpenConnections() == 6; }));
  StartWatching("", /*wait_ready=*/false);
  ASSERT_TRUE(WaitUntil([&] { return consul_->RefusedConnections() > 0; }));
  EXPECT_FALSE(watcher_->State().initial_sync_done);
  for (const int fd : hogs) ::close(fd);
  ASSERT_TRUE(WaitUntil([&] { return watcher_->State().ready; }));
  ASSERT_TRUE(consul_->UpdateCheck("service:e-1", "critical", "boom"));
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.down e-1 critical", "service.down e"));
}

class AclWatchTest : public WatchFixture {
 protected:
  AclWatchTest() { server_token_ = "s3cr3t"; }
};

TEST_F(AclWatchTest, WrongTokenIsAClearErrorRetriedAndNotReady) {
  RegisterKratos("payments-1");
  StartWatching("wrong-token", /*wait_ready=*/false);
  ASSERT_TRUE(WaitUntil([&] { return watcher_->State().last_error.has_value(); }));
  const WatchState state = watcher_->State();
  EXPECT_FALSE(state.ready);
  EXPECT_EQ(state.last_error->code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(state.last_error->message(), HasSubstr("ACL not found"));
  // Kept trying.
  const int before = consul_->RequestCounts()["/v1/agent/self"];
  EXPECT_TRUE(WaitUntil([&] { return consul_->RequestCounts()["/v1/agent/self"] > before; }));
}

TEST_F(AclWatchTest, RightTokenWatches) {
  RegisterKratos("payments-1");
  StartWatching();
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
}

}  // namespace
}  // namespace hb
