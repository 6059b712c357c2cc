// The session keeper against the Consul test server: what it trusts is a
// lower bound of the session's life on the servers, so a replica that cannot
// renew, or was frozen, stops acting before Consul can hand its locks on.

#include "bridge/cluster/session_keeper.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"
#include "tests/support/fake_clock.h"

namespace hb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::ConsulTestServer;
using test_support::ConsulTestServerOptions;
using test_support::Eventually;

class SessionKeeperTest : public ::testing::Test {
 protected:
  void StartServer(double ttl_handback = 1.0) {
    ConsulTestServerOptions options;
    options.sessions.min_ttl = milliseconds(100);
    options.sessions.ttl_handback = ttl_handback;
    server_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(server_->Start(), 0);
  }
  std::unique_ptr<SessionKeeper> MakeKeeper(const Clock& clock, milliseconds ttl) {
    ConsulClientOptions options;
    options.address = server_->address();
    return std::make_unique<SessionKeeper>(SessionKeeperOptions{"test", ttl, milliseconds(0)},
                                           std::move(*ConsulKvClient::Create(options)), clock,
                                           nullptr);
  }
  bool Valid(const SessionKeeper& keeper, const Clock& clock) {
    auto lease = keeper.Current();
    return lease && keeper.ValidAt(lease->generation, clock.Now());
  }

  std::unique_ptr<ConsulTestServer> server_;
};

TEST_F(SessionKeeperTest, TrustsTheSessionOnlyUntilItsTtlAfterTheLastRenewal) {
  StartServer();
  SystemClock clock;
  auto keeper = MakeKeeper(clock, milliseconds(1000));
  keeper->Start();
  ASSERT_TRUE(Eventually([&] { return Valid(*keeper, clock); }, seconds(10)));
  const std::uint64_t generation = keeper->Current()->generation;

  // Renewals fail from now on: the last one that worked was sent before
  // this instant, so the keeper must give up before this instant + TTL.
  server_->FailNext(1000000, 500, "No cluster leader", "/v1/session/renew");
  const auto failing_since = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return !Valid(*keeper, clock); }, seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now(), failing_since + milliseconds(1000))
      << "still trusted a session Consul may already have reaped";

  // Consul had not reaped it yet (it waits up to twice the TTL): once a
  // renewal works again, the same session, with the same locks, is valid.
  server_->FailNext(0, 500, "");
  ASSERT_TRUE(Eventually([&] { return Valid(*keeper, clock); }, seconds(10)));
  EXPECT_EQ(keeper->Current()->generation, generation);
  keeper->Stop(true);
}

TEST_F(SessionKeeperTest, AFrozenReplicaIsFencedOnWakeUp) {
  StartServer();
  test_support::FakeClock clock;
  auto keeper = MakeKeeper(clock, milliseconds(10000));
  keeper->Start();
  ASSERT_TRUE(Eventually([&] { return Valid(*keeper, clock); }, seconds(10)));
  // SIGSTOP for longer than the TTL: the steady clock moved on meanwhile.
  clock.Advance(seconds(11));
  EXPECT_FALSE(Valid(*keeper, clock));
  keeper->Stop(true);
}

TEST_F(SessionKeeperTest, ALongerTtlHandedBackExtendsNothing) {
  StartServer(/*ttl_handback=*/5.0);
  SystemClock clock;
  auto keeper = MakeKeeper(clock, milliseconds(1000));
  keeper->Start();
  ASSERT_TRUE(Eventually([&] { return Valid(*keeper, clock); }, seconds(10)));
  // Several renewals later (each handing back 5s), the validity is still
  // within the 1s asked for.
  ASSERT_TRUE(Eventually(
      [&] { return server_->RequestCounts()["/v1/session/renew/" + keeper->Current()->id] >= 3; },
      seconds(10)));
  EXPECT_LE(keeper->Current()->valid_until, std::chrono::steady_clock::now() + milliseconds(1000));
  keeper->Stop(true);
}

TEST_F(SessionKeeperTest, ALostSessionIsReplacedByANewGeneration) {
  StartServer();
  SystemClock clock;
  auto keeper = MakeKeeper(clock, milliseconds(1000));
  keeper->Start();
  ASSERT_TRUE(Eventually([&] { return Valid(*keeper, clock); }, seconds(10)));
  const SessionLease first = *keeper->Current();
  httplib::Client http("127.0.0.1", server_->port());
  ASSERT_TRUE(http.Put("/v1/session/destroy/" + first.id, "", "application/json"));
  ASSERT_TRUE(Eventually(
      [&] {
        auto lease = keeper->Current();
        return lease && lease->generation > first.generation && Valid(*keeper, clock);
      },
      seconds(10)));
  EXPECT_FALSE(keeper->ValidAt(first.generation, clock.Now()));
  // A graceful stop destroys the session.
  const std::string id = keeper->Current()->id;
  keeper->Stop(true);
  auto info = http.Get("/v1/session/info/" + id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->body, "[]");
}

}  // namespace
}  // namespace hb
