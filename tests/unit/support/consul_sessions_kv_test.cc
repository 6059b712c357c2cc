// The Consul test server's sessions and KV store, over real HTTP, pinned to
// Consul's documented answers (shapes, limits, errors) and to the semantics
// the bridge's cluster mode relies on: TTL reaping, lock-delay, behaviors,
// node-check binding, LockIndex, check-and-set and blocking queries.

#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <nlohmann/json.hpp>

#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb::test_support {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class ConsulSessionsKvTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(const ConsulTestServerOptions& options) {
    http_.reset();
    server_.reset();
    server_ = std::make_unique<ConsulTestServer>(options);
    ASSERT_NE(server_->Start(), 0);
    http_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    http_->set_read_timeout(30);
  }

  struct Answer {
    int status = 0;
    std::uint64_t index = 0;
    json body;
    std::string text;
  };
  static Answer From(const httplib::Result& result) {
    if (!result) return {};
    Answer answer{result->status, 0, json::parse(result->body, nullptr, false), result->body};
    if (result->has_header("X-Consul-Index")) {
      answer.index = std::stoull(result->get_header_value("X-Consul-Index"));
    }
    return answer;
  }
  Answer Get(const std::string& path) { return From(http_->Get(path)); }
  Answer Put(const std::string& path, const std::string& body = "") {
    return From(http_->Put(path, body, "application/json"));
  }
  Answer Delete(const std::string& path) { return From(http_->Delete(path)); }

  // A session's ID; fails the test when it cannot be created.
  std::string CreateSession(const json& body = json::object()) {
    const Answer answer = Put("/v1/session/create", body.dump());
    EXPECT_EQ(answer.status, 200) << answer.text;
    return answer.body.value("ID", "");
  }
  bool SessionExists(const std::string& id) {
    const Answer answer = Get("/v1/session/info/" + id);
    return answer.status == 200 && answer.body.is_array() && !answer.body.empty();
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::unique_ptr<httplib::Client> http_;
};

ConsulTestServerOptions ShortTtls() {
  ConsulTestServerOptions options;
  options.sessions.min_ttl = milliseconds(100);
  return options;
}

TEST_F(ConsulSessionsKvTest, SessionHasTheDocumentedShapeAndDefaults) {
  const std::string id = CreateSession();
  ASSERT_EQ(id.size(), 36u) << "a UUID";
  const Answer info = Get("/v1/session/info/" + id);
  ASSERT_EQ(info.status, 200);
  EXPECT_GT(info.index, 0u);
  ASSERT_EQ(info.body.size(), 1u);
  const json& session = info.body[0];
  EXPECT_EQ(session["ID"], id);
  EXPECT_EQ(session["Name"], "");
  EXPECT_EQ(session["Node"], "node-a");
  EXPECT_EQ(session["LockDelay"], 15000000000LL) << "15s in nanoseconds";
  EXPECT_EQ(session["Behavior"], "release");
  EXPECT_EQ(session["TTL"], "");
  EXPECT_EQ(session["NodeChecks"], json::array({"serfHealth"}));
  EXPECT_TRUE(session["ServiceChecks"].is_null());
  EXPECT_TRUE(session["CreateIndex"].is_number());
  EXPECT_TRUE(session["ModifyIndex"].is_number());
  // Unknown sessions read as an empty list, not an error.
  EXPECT_EQ(Get("/v1/session/info/00000000-0000-0000-0000-000000000000").body, json::array());
  EXPECT_EQ(Get("/v1/session/list").body.size(), 1u);
  EXPECT_EQ(Get("/v1/session/node/node-a").body.size(), 1u);
  EXPECT_EQ(Get("/v1/session/node/node-b").body, json::array());
}

TEST_F(ConsulSessionsKvTest, SessionFieldsAreValidatedAsConsulDoes) {
  Answer answer = Put("/v1/session/create", R"({"TTL": "5s"})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]");
  answer = Put("/v1/session/create", R"({"TTL": "25h"})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]");
  answer = Put("/v1/session/create", R"({"TTL": "soon"})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Session TTL 'soon' invalid: time: invalid duration \"soon\"");
  answer = Put("/v1/session/create", R"({"Behavior": "keep"})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Invalid Behavior setting 'keep'");
  answer = Put("/v1/session/create", R"({"Node": "nowhere"})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Missing node registration");
  answer = Put("/v1/session/create", R"({"NodeChecks": ["no-such-check"]})");
  EXPECT_EQ(answer.status, 500);
  EXPECT_EQ(answer.text, "Missing check 'no-such-check' registration");
  answer = Put("/v1/session/create", "{not json");
  EXPECT_EQ(answer.status, 400);

  // The edges are accepted; a lock delay past a minute is cut to one; a
  // bare number below 1000 is seconds.
  std::string id = CreateSession({{"TTL", "10s"}, {"LockDelay", "2m"}});
  EXPECT_EQ(Get("/v1/session/info/" + id).body[0]["LockDelay"], 60000000000LL);
  id = CreateSession({{"TTL", "24h"}, {"LockDelay", 5}, {"Behavior", "delete"}, {"Name", "x"}});
  const json session = Get("/v1/session/info/" + id).body[0];
  EXPECT_EQ(session["LockDelay"], 5000000000LL);
  EXPECT_EQ(session["TTL"], "24h");
  EXPECT_EQ(session["Behavior"], "delete");
  EXPECT_EQ(session["Name"], "x");
}

TEST_F(ConsulSessionsKvTest, MinimumTtlIsAnOptionForTests) {
  Start(ShortTtls());
  EXPECT_EQ(Put("/v1/session/create", R"({"TTL": "50ms"})").text,
            "Invalid Session TTL '50000000', must be between [100ms=24h0m0s]");
  EXPECT_FALSE(CreateSession({{"TTL", "100ms"}}).empty());
}

TEST_F(ConsulSessionsKvTest, RenewKeepsASessionAndAnUnrenewedOneIsReaped) {
  Start(ShortTtls());
  const std::string id = CreateSession({{"TTL", "200ms"}});
  // Renewed every 50 ms for well past twice its TTL, it stays.
  const auto until = std::chrono::steady_clock::now() + milliseconds(800);
  while (std::chrono::steady_clock::now() < until) {
    const Answer renewed = Put("/v1/session/renew/" + id);
    ASSERT_EQ(renewed.status, 200);
    ASSERT_EQ(renewed.body.size(), 1u);
    EXPECT_EQ(renewed.body[0]["ID"], id);
    EXPECT_EQ(renewed.body[0]["TTL"], "200ms");
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(SessionExists(id));
  // Left alone, it is destroyed within twice its TTL (the test allows more
  // for a loaded machine).
  EXPECT_TRUE(Eventually([&] { return !SessionExists(id); }, seconds(10)));
  const Answer gone = Put("/v1/session/renew/" + id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.text, "Session id '" + id + "' not found");
}

TEST_F(ConsulSessionsKvTest, RenewalMayHandBackALongerTtl) {
  ConsulTestServerOptions options = ShortTtls();
  options.sessions.ttl_handback = 2.0;
  Start(options);
  const std::string id = CreateSession({{"TTL", "10s"}});
  const Answer renewed = Put("/v1/session/renew/" + id);
  ASSERT_EQ(renewed.status, 200);
  EXPECT_EQ(renewed.body[0]["TTL"], "20s");
}

TEST_F(ConsulSessionsKvTest, DestroyAnswersTrueAndRemovesTheSession) {
  const std::string id = CreateSession();
  EXPECT_EQ(Put("/v1/session/destroy/" + id).text, "true");
  EXPECT_FALSE(SessionExists(id));
  EXPECT_EQ(Put("/v1/session/destroy/" + id).text, "true") << "unknown ids too";
}

TEST_F(ConsulSessionsKvTest, NodeDeathInvalidatesItsSessionsAndFreesTheirLocks) {
  const std::string bound = CreateSession({{"LockDelay", "0s"}});
  const std::string unbound = CreateSession({{"NodeChecks", json::array()}});
  ASSERT_EQ(Put("/v1/kv/lock?acquire=" + bound, "held").text, "true");
  ASSERT_TRUE(server_->SetSerfHealth("node-a", "critical"));
  EXPECT_FALSE(SessionExists(bound));
  EXPECT_TRUE(SessionExists(unbound)) << "NodeChecks: [] binds it to nothing";
  const Answer lock = Get("/v1/kv/lock");
  ASSERT_EQ(lock.status, 200);
  EXPECT_FALSE(lock.body[0].contains("Session"));
  EXPECT_EQ(lock.body[0]["LockIndex"], 1);
  // No session can be bound to a critical check.
  const Answer refused = Put("/v1/session/create", "{}");
  EXPECT_EQ(refused.status, 500);
  EXPECT_EQ(refused.text, "Check 'serfHealth' is in critical state");
}

TEST_F(ConsulSessionsKvTest, KvEntryHasTheDocumentedShape) {
  EXPECT_EQ(Put("/v1/kv/app/config?flags=42", "test").text, "true");
  const Answer answer = Get("/v1/kv/app/config");
  ASSERT_EQ(answer.status, 200);
  ASSERT_EQ(answer.body.size(), 1u);
  const json& entry = answer.body[0];
  EXPECT_EQ(entry["Key"], "app/config");
  EXPECT_EQ(entry["Value"], "dGVzdA==");
  EXPECT_EQ(entry["Flags"], 42);
  EXPECT_EQ(entry["LockIndex"], 0);
  EXPECT_FALSE(entry.contains("Session")) << "omitted when nobody holds the key";
  EXPECT_EQ(entry["CreateIndex"], entry["ModifyIndex"]);
  EXPECT_GE(answer.index, entry["ModifyIndex"].get<std::uint64_t>());
  EXPECT_EQ(Get("/v1/kv/app/config?raw").text, "test");
  Put("/v1/kv/app/empty");
  EXPECT_TRUE(Get("/v1/kv/app/empty").body[0]["Value"].is_null());

  const Answer missing = Get("/v1/kv/app/none");
  EXPECT_EQ(missing.status, 404);
  EXPECT_GT(missing.index, 0u) << "a 404 still carries an index to block on";
  EXPECT_EQ(Get("/v1/kv/").status, 400);
}

TEST_F(ConsulSessionsKvTest, RecurseKeysAndSeparator) {
  for (const char* key : {"p/members/a", "p/members/b", "p/services/web", "q/x"}) {
    Put(std::string("/v1/kv/") + key, "v");
  }
  const Answer tree = Get("/v1/kv/p/?recurse");
  ASSERT_EQ(tree.status, 200);
  ASSERT_EQ(tree.body.size(), 3u);
  EXPECT_EQ(tree.body[0]["Key"], "p/members/a");
  EXPECT_EQ(Get("/v1/kv/p/?keys").body,
            json::array({"p/members/a", "p/members/b", "p/services/web"}));
  EXPECT_EQ(Get("/v1/kv/p/?keys&separator=/").body, json::array({"p/members/", "p/services/"}));
  EXPECT_EQ(Get("/v1/kv/none/?recurse").status, 404);
  EXPECT_EQ(Get("/v1/kv/none/?keys").body, json::array());
  EXPECT_EQ(Delete("/v1/kv/p/members/?recurse").text, "true");
  EXPECT_EQ(Get("/v1/kv/p/?keys").body, json::array({"p/services/web"}));
}

TEST_F(ConsulSessionsKvTest, CheckAndSet) {
  EXPECT_EQ(Put("/v1/kv/k?cas=0", "a").text, "true") << "0: only if absent";
  EXPECT_EQ(Put("/v1/kv/k?cas=0", "b").text, "false");
  const std::uint64_t index = Get("/v1/kv/k").body[0]["ModifyIndex"];
  EXPECT_EQ(Put("/v1/kv/k?cas=" + std::to_string(index), "c").text, "true");
  EXPECT_EQ(Put("/v1/kv/k?cas=" + std::to_string(index), "d").text, "false") << "stale";
  EXPECT_EQ(Get("/v1/kv/k?raw").text, "c");
  EXPECT_EQ(Put("/v1/kv/k?cas=x", "e").status, 400);
  const std::uint64_t now = Get("/v1/kv/k").body[0]["ModifyIndex"];
  EXPECT_EQ(Delete("/v1/kv/k?cas=" + std::to_string(index)).text, "false");
  EXPECT_EQ(Delete("/v1/kv/k?cas=" + std::to_string(now)).text, "true");
  EXPECT_EQ(Get("/v1/kv/k").status, 404);
}

TEST_F(ConsulSessionsKvTest, AcquireAndReleaseCountLockIndex) {
  const std::string a = CreateSession();
  const std::string b = CreateSession();
  EXPECT_EQ(Put("/v1/kv/lock?acquire=" + a, "a").text, "true");
  json entry = Get("/v1/kv/lock").body[0];
  EXPECT_EQ(entry["LockIndex"], 1);
  EXPECT_EQ(entry["Session"], a);
  EXPECT_EQ(Put("/v1/kv/lock?acquire=" + b, "b").text, "false") << "held by a";
  EXPECT_EQ(Put("/v1/kv/lock?acquire=" + a, "a2").text, "true") << "the holder refreshes";
  entry = Get("/v1/kv/lock").body[0];
  EXPECT_EQ(entry["LockIndex"], 1) << "refreshing is no new acquisition";
  EXPECT_EQ(Put("/v1/kv/lock", "plain").text, "true");
  EXPECT_EQ(Get("/v1/kv/lock").body[0]["Session"], a) << "a plain write keeps the holder";
  EXPECT_EQ(Put("/v1/kv/lock?release=" + b).text, "false") << "only the holder releases";
  EXPECT_EQ(Put("/v1/kv/lock?release=" + a, "free").text, "true");
  entry = Get("/v1/kv/lock").body[0];
  EXPECT_FALSE(entry.contains("Session"));
  EXPECT_EQ(entry["LockIndex"], 1);
  // An explicit release arms no lock-delay: b takes it at once.
  EXPECT_EQ(Put("/v1/kv/lock?acquire=" + b, "b").text, "true");
  EXPECT_EQ(Get("/v1/kv/lock").body[0]["LockIndex"], 2);

  const Answer unknown = Put("/v1/kv/other?acquire=00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(unknown.status, 500);
  EXPECT_EQ(unknown.text, "invalid session \"00000000-0000-0000-0000-000000000000\"");
}

TEST_F(ConsulSessionsKvTest, LockDelayRefusesReacquisitionAfterAnInvalidation) {
  const std::string old_holder = CreateSession({{"LockDelay", "400ms"}});
  const std::string successor = CreateSession();
  ASSERT_EQ(Put("/v1/kv/lock?acquire=" + old_holder).text, "true");
  Put("/v1/session/destroy/" + old_holder);
  EXPECT_EQ(Put("/v1/kv/lock?acquire=" + successor).text, "false") << "within the lock-delay";
  EXPECT_TRUE(Eventually([&] { return Put("/v1/kv/lock?acquire=" + successor).text == "true"; },
                         seconds(10)));
  EXPECT_EQ(Get("/v1/kv/lock").body[0]["LockIndex"], 2);
}

TEST_F(ConsulSessionsKvTest, BehaviorDeleteDeletesHeldKeys) {
  const std::string id = CreateSession({{"Behavior", "delete"}, {"LockDelay", "0s"}});
  ASSERT_EQ(Put("/v1/kv/members/me?acquire=" + id, "x").text, "true");
  Put("/v1/kv/members/other", "y");
  Put("/v1/session/destroy/" + id);
  EXPECT_EQ(Get("/v1/kv/members/me").status, 404);
  EXPECT_EQ(Get("/v1/kv/members/other").status, 200) << "keys it did not hold stay";
}

TEST_F(ConsulSessionsKvTest, ReapedSessionReleasesItsLocks) {
  Start(ShortTtls());
  const std::string id = CreateSession({{"TTL", "100ms"}, {"LockDelay", "0s"}});
  ASSERT_EQ(Put("/v1/kv/lock?acquire=" + id).text, "true");
  EXPECT_TRUE(
      Eventually([&] { return !Get("/v1/kv/lock").body[0].contains("Session"); }, seconds(10)));
}

TEST_F(ConsulSessionsKvTest, BlockingOnAKeyWakesOnlyForThatKey) {
  Put("/v1/kv/watched", "one");
  const std::uint64_t index = Get("/v1/kv/watched").index;
  auto held = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(30);
    return From(client.Get("/v1/kv/watched?index=" + std::to_string(index) + "&wait=20s"));
  });
  ASSERT_TRUE(
      Eventually([&] { return server_->RequestCounts()["/v1/kv/watched"] >= 2; }, seconds(10)));
  // Another key's write does not answer the held query; the watched key's does.
  Put("/v1/kv/unrelated", "x");
  Put("/v1/kv/watched", "two");
  const Answer answer = held.get();
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body[0]["Value"], "dHdv") << "woken by the watched key's write";
  EXPECT_GT(answer.index, index);
}

TEST_F(ConsulSessionsKvTest, BlockingOnAMissingKeyWakesWhenItIsCreated) {
  const Answer missing = Get("/v1/kv/later");
  ASSERT_EQ(missing.status, 404);
  auto held = std::async(std::launch::async, [&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(30);
    return From(client.Get("/v1/kv/later?index=" + std::to_string(missing.index) + "&wait=20s"));
  });
  Put("/v1/kv/later", "here");
  EXPECT_EQ(held.get().status, 200);
}

TEST_F(ConsulSessionsKvTest, BlockingOnAPrefixWakesOnWritesAndDeletesUnderIt) {
  Put("/v1/kv/cluster/members/a", "a");
  Answer tree = Get("/v1/kv/cluster/members/?recurse");
  ASSERT_EQ(tree.status, 200);
  const auto wait_from = [&](std::uint64_t index) {
    return std::async(std::launch::async, [this, index] {
      httplib::Client client("127.0.0.1", server_->port());
      client.set_read_timeout(30);
      return From(client.Get("/v1/kv/cluster/members/?recurse&index=" + std::to_string(index) +
                             "&wait=20s"));
    });
  };
  auto held = wait_from(tree.index);
  ASSERT_TRUE(Eventually([&] { return server_->RequestCounts()["/v1/kv/cluster/members/"] >= 2; },
                         seconds(10)));
  Put("/v1/kv/elsewhere", "x");
  Put("/v1/kv/cluster/members/b", "b");
  tree = held.get();
  ASSERT_EQ(tree.body.size(), 2u);
  held = wait_from(tree.index);
  Delete("/v1/kv/cluster/members/a");
  tree = held.get();
  ASSERT_EQ(tree.status, 200);
  ASSERT_EQ(tree.body.size(), 1u) << "a deletion moves the prefix's index (a tombstone)";
  EXPECT_EQ(tree.body[0]["Key"], "cluster/members/b");
}

TEST_F(ConsulSessionsKvTest, ValuesAreLimitedTo512KiB) {
  EXPECT_EQ(Put("/v1/kv/big", std::string(512 * 1024, 'x')).text, "true");
  const Answer refused = Put("/v1/kv/big", std::string(512 * 1024 + 1, 'x'));
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(refused.text, "Request body(524289 bytes) too large, max size: 524288 bytes.");
}

TEST_F(ConsulSessionsKvTest, SnapshotRestoreLowersKvIndexes) {
  Put("/v1/kv/k", "v");
  server_->ResetIndex(1);
  const Answer answer = Get("/v1/kv/k");
  EXPECT_EQ(answer.body[0]["ModifyIndex"], 1);
  EXPECT_EQ(answer.index, 1u);
}

}  // namespace
}  // namespace hb::test_support
