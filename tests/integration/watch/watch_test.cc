// The watch, the Consul client and the engine against the Consul test
// server: every failure mode of docs/consul-semantics.md that the bridge must
// report, with go-kratos-shaped registrations (TTL check service:<id>,
// heartbeat, DeregisterCriticalServiceAfter).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <mutex>

#include "bridge/watch/watcher.h"
#include "tests/support/consul/consul_test_server.h"

namespace hb {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::ConsulTestServer;
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

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ConsulTestServerOptions options;
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

  bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout = kDeadline) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return true;
  }

  std::string server_token_;
  SystemClock clock_;
  std::unique_ptr<ConsulTestServer> consul_;
  std::unique_ptr<ConsulClient> client_;
  RecordingPublisher events_;
  std::unique_ptr<Watcher> watcher_;
};

TEST_F(WatchTest, InitialSyncIsSilentThenReady) {
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

TEST_F(WatchTest, TtlExpiryOfTheLastInstanceEmitsDownCriticalAndServiceDown) {
  RegisterKratos("payments-1", "payments", "500ms");
  StartWatching();
  // No heartbeat: the TTL lapses and Consul marks it critical.
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_EQ(events_.last().instances_up, 0);
}

TEST_F(WatchTest, GracefulDeregistrationEmitsDownThenDeregistered) {
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

TEST_F(WatchTest, ReaperEmitsDownThenLaterDeregistered) {
  RegisterKratos("payments-1", "payments", "300ms", "300ms");
  RegisterKratos("payments-2");
  StartWatching();
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.down payments-1 critical"));
  EXPECT_THAT(events_.Next(1), ElementsAre("instance.deregistered payments-1"));
}

TEST_F(WatchTest, ServiceAndNodeMaintenanceAreDownWithReasonMaintenance) {
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

TEST_F(WatchTest, RecoveryEmitsUpAndServiceUp) {
  RegisterKratos("payments-1");
  StartWatching();
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  Heartbeat("payments-1", "passing");
  EXPECT_THAT(events_.Next(2), ElementsAre("instance.up payments-1", "service.up payments"));
}

TEST_F(WatchTest, AgentDeathTurnsEveryInstanceOnItsNodeDown) {
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

TEST_F(WatchTest, NewServiceAppearingEmitsRegisteredAndUp) {
  RegisterKratos("payments-1");
  StartWatching();
  RegisterKratos("orders-1", "orders");
  EXPECT_THAT(events_.Next(3), ElementsAre("instance.registered orders-1", "instance.up orders-1",
                                           "service.up orders"));
  EXPECT_TRUE(WaitUntil([&] { return watcher_->State().watched_services == 2; }));
}

TEST_F(WatchTest, ServiceNamesThatNeedEncodingInAUrlAreWatched) {
  RegisterKratos("legacy-1", "legacy billing");
  StartWatching();
  Heartbeat("legacy-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down legacy-1 critical", "service.down legacy billing"));
}

TEST_F(WatchTest, IndexResetStillReportsLaterChangesWithoutSpuriousEvents) {
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

TEST_F(WatchTest, ChangesDuringAConsulOutageAreReportedOnceAfterItReturns) {
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

TEST_F(WatchTest, ServerErrorsAreRetriedAndKeepTheLastKnownState) {
  RegisterKratos("payments-1");
  StartWatching();
  consul_->FailNext(5, 500, "No cluster leader", "/v1/health/");
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
}

TEST_F(WatchTest, ConnectionsDroppedMidAnswerAreRetriedAndNothingIsMissed) {
  RegisterKratos("payments-1");
  StartWatching();
  consul_->DropNext(4);
  Heartbeat("payments-1", "critical");
  EXPECT_THAT(events_.Next(2),
              ElementsAre("instance.down payments-1 critical", "service.down payments"));
  EXPECT_THAT(events_.Next(1, milliseconds(300)), ::testing::IsEmpty());  // and nothing twice
}

TEST_F(WatchTest, MalformedAnswerIsRetriedAndNeverTreatedAsEmpty) {
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

TEST_F(WatchTest, ServiceLeavingTheCatalogIsGone) {
  RegisterKratos("payments-1");
  RegisterKratos("orders-1", "orders");
  StartWatching();
  ASSERT_TRUE(consul_->DeregisterService("orders-1"));
  EXPECT_THAT(events_.Next(3),
              ElementsAre("instance.down orders-1 deregistered", "instance.deregistered orders-1",
                          "service.down orders"));
  EXPECT_TRUE(WaitUntil([&] { return watcher_->State().watched_services == 1; }));
}

class AclWatchTest : public WatchTest {
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
