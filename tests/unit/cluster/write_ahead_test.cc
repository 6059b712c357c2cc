// The write-ahead against the Consul test server: before events of an owned
// service leave, its unacknowledged events are in `<prefix>/pending/...`;
// acknowledged ones go at the next write (the key too, once none is left);
// a replica that crashes leaves them to the one that takes the service
// over, which reads them in the transaction that takes the lock.

#include "bridge/cluster/write_ahead.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "bridge/cluster/emission_gate.h"
#include "bridge/cluster/pending_events.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::ConsulTestServer;
using test_support::ConsulTestServerOptions;
using test_support::Eventually;

constexpr const char* kPrefix = "test/wal";
constexpr const char* kService = "payments";

class Recorder final : public EventPublisher {
 public:
  void Publish(std::vector<Event> events) override {
    MutexLock lock(&mutex_);
    for (Event& event : events) published_.push_back(std::move(event));
  }

 private:
  Mutex mutex_;
  std::vector<Event> published_ GUARDED_BY(mutex_);
};

Event Down(std::uint64_t index) {
  Event event;
  event.type = EventType::kInstanceDown;
  event.datacenter = "dc1";
  event.service = kService;
  event.node = "node-a";
  event.instance_id = "p-1";
  event.status = HealthStatus::kCritical;
  event.consul_index = index;
  event.id = "dc1/node-a/p-1/" + std::to_string(index) + "/instance.down";
  return event;
}

// Write-aheads Consul did not take, as the failure counter sees them.
class FailureCounter final : public ClusterObserver {
 public:
  void OnWriteAheadFailed() override { failures_.fetch_add(1); }
  int failures() const { return failures_.load(); }

 private:
  std::atomic<int> failures_{0};
};

// One replica: coordinator, ledger, write-ahead and gate, its takeovers
// recorded (and the service opened at once, as a first owner).
class Replica {
 public:
  Replica(const std::string& address, const std::string& id) : ledger_(nullptr) {
    ConsulClientOptions client_options;
    client_options.address = address;
    client_options.backoff_initial = milliseconds(50);
    client_options.backoff_max = milliseconds(200);
    client_ = std::move(*ConsulClient::Create(client_options));
    ClusterOptions options;
    options.prefix = kPrefix;
    options.member_id = id;
    options.session_ttl = milliseconds(1000);
    options.lock_delay = milliseconds(100);
    options.retry_interval = milliseconds(50);
    options.watched = [](const std::string& name, const std::vector<std::string>&) {
      return name == kService;
    };
    options.ledger = &ledger_;
    options.take_over = [this](const std::string& service, std::uint64_t epoch,
                               std::optional<std::string>, std::optional<std::string> pending) {
      {
        MutexLock lock(&mutex_);
        taken_pending_ = std::move(pending);
        taken_ = true;
      }
      coordinator_->Open(service, epoch);
      ledger_.Begin(service, ReportedService{}, false);
    };
    coordinator_ = std::make_unique<ClusterCoordinator>(options, client_options, *client_, clock_);
    write_ahead_ =
        std::make_unique<WriteAhead>(kPrefix, std::make_unique<ConsulKvClient>(client_options),
                                     *coordinator_, ledger_, &failures_);
    gate_ = std::make_unique<EmissionGate>(recorder_, *coordinator_, &ledger_, write_ahead_.get());
  }

  bool Owns() {
    MutexLock lock(&mutex_);
    return taken_ && coordinator_->EpochFor(kService).has_value();
  }
  std::optional<std::string> TakenPending() {
    MutexLock lock(&mutex_);
    return taken_pending_;
  }

  ClusterCoordinator& coordinator() { return *coordinator_; }
  HandoverLedger& ledger() { return ledger_; }
  WriteAhead& write_ahead() { return *write_ahead_; }
  EmissionGate& gate() { return *gate_; }
  int write_ahead_failures() const { return failures_.failures(); }

 private:
  SystemClock clock_;
  FailureCounter failures_;
  HandoverLedger ledger_;
  Recorder recorder_;
  Mutex mutex_;
  bool taken_ GUARDED_BY(mutex_) = false;
  std::optional<std::string> taken_pending_ GUARDED_BY(mutex_);
  std::unique_ptr<ConsulClient> client_;
  std::unique_ptr<ClusterCoordinator> coordinator_;
  std::unique_ptr<WriteAhead> write_ahead_;
  std::unique_ptr<EmissionGate> gate_;
};

class WriteAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConsulTestServerOptions options;
    options.sessions.min_ttl = milliseconds(100);
    server_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(server_->Start(), 0);
    ASSERT_EQ(server_->RegisterService({{"ID", "p-1"}, {"Name", kService}}), "");
    ConsulClientOptions client_options;
    client_options.address = server_->address();
    kv_ = std::make_unique<ConsulKvClient>(client_options);
  }

  // The ids in the write-ahead of the service; nullopt when there is none.
  std::optional<std::vector<std::string>> PendingIds() {
    auto entry = kv_->Get(PendingEventsKey(kPrefix, kService));
    if (!entry.ok() || !*entry) return std::nullopt;
    auto events = DecodePendingEvents((*entry)->value);
    if (!events.ok()) return std::vector<std::string>{"undecodable"};
    std::vector<std::string> ids;
    for (const Event& event : *events) ids.push_back(event.id);
    return ids;
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::unique_ptr<ConsulKvClient> kv_;
};

TEST_F(WriteAheadTest, UnacknowledgedEventsAreInConsulBeforeTheyLeaveAndGoOnceAcknowledged) {
  Replica replica(server_->address(), "r1");
  ASSERT_TRUE(replica.coordinator().Start().ok());
  ASSERT_TRUE(Eventually([&] { return replica.Owns(); }, seconds(10)));

  replica.gate().Publish({Down(10)});
  EXPECT_EQ(PendingIds(), (std::vector<std::string>{Down(10).id}));
  Event sent = Down(10);
  sent.epoch = replica.coordinator().EpochFor(kService);
  replica.ledger().OnRouted(sent, 1);
  replica.ledger().OnDelivered("hooks", sent, {});
  // Acknowledged: the next batch of the service trims it...
  replica.gate().Publish({Down(12)});
  EXPECT_EQ(PendingIds(), (std::vector<std::string>{Down(12).id}));
  sent = Down(12);
  sent.epoch = replica.coordinator().EpochFor(kService);
  replica.ledger().OnRouted(sent, 1);
  replica.ledger().OnDelivered("hooks", sent, {});
  // ...and with nothing left, the trim pass deletes the key.
  replica.write_ahead().Record({});
  EXPECT_EQ(PendingIds(), std::nullopt);
  // Consul answers a delete with no entry: still a transaction it took.
  EXPECT_EQ(replica.write_ahead_failures(), 0);
  replica.coordinator().Leave();
}

TEST_F(WriteAheadTest, ACrashedOwnersUnacknowledgedEventsReachItsSuccessor) {
  auto first = std::make_unique<Replica>(server_->address(), "r1");
  ASSERT_TRUE(first->coordinator().Start().ok());
  ASSERT_TRUE(Eventually([&] { return first->Owns(); }, seconds(10)));
  first->gate().Publish({Down(10)});
  first->gate().Publish({Down(12)});
  const std::vector<std::string> ids = {Down(10).id, Down(12).id};
  ASSERT_EQ(PendingIds(), ids);
  first->coordinator().Abandon();  // a crash: the lock goes with the session's TTL

  // A fenced-out replica writes nothing: its session is gone.
  first->gate().Publish({Down(14)});
  EXPECT_EQ(PendingIds(), ids);

  Replica second(server_->address(), "r2");
  ASSERT_TRUE(second.coordinator().Start().ok());
  ASSERT_TRUE(Eventually([&] { return second.Owns(); }, seconds(20)));
  const std::optional<std::string> pending = second.TakenPending();
  ASSERT_TRUE(pending);
  auto events = DecodePendingEvents(*pending);
  ASSERT_TRUE(events.ok()) << events.status().message();
  std::vector<std::string> taken;
  for (const Event& event : *events) taken.push_back(event.id);
  EXPECT_EQ(taken, ids);
  second.coordinator().Leave();
}

}  // namespace
}  // namespace hb
