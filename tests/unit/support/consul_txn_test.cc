// The Consul test server's /v1/txn, over real HTTP, pinned to Consul's
// documented answers: the KV verbs, 200 with Results or 409 with Errors
// naming every failed operation, the rollback of the whole transaction,
// lock-delay and sessions as for a single-key lock, one Raft index per
// transaction, and the limits (128 operations, 512 KiB of body, 512 KiB
// values).

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "bridge/common/base64.h"
#include "tests/support/consul/consul_test_server.h"
#include "tests/support/eventually.h"

namespace hb::test_support {
namespace {

using nlohmann::json;
using std::chrono::seconds;

json Kv(const std::string& verb, const std::string& key, const json& fields = json::object()) {
  json kv = {{"Verb", verb}, {"Key", key}};
  kv.update(fields);
  return {{"KV", kv}};
}

class ConsulTxnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ConsulTestServer>(ConsulTestServerOptions{});
    ASSERT_NE(server_->Start(), 0);
    http_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    http_->set_read_timeout(30);
  }

  struct Answer {
    int status = 0;
    json body;
    std::string text;
  };
  Answer Send(const std::string& method, const std::string& path, const std::string& body = "") {
    httplib::Result result =
        method == "PUT" ? http_->Put(path, body, "application/json") : http_->Get(path);
    if (!result) return {};
    return {result->status, json::parse(result->body, nullptr, false), result->body};
  }
  Answer Txn(const json& ops) { return Send("PUT", "/v1/txn", ops.dump()); }
  json Entry(const std::string& key) { return Send("GET", "/v1/kv/" + key).body[0]; }
  std::string CreateSession(const json& body = json::object()) {
    return Send("PUT", "/v1/session/create", body.dump()).body.value("ID", "");
  }

  std::unique_ptr<ConsulTestServer> server_;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(ConsulTxnTest, CommittedTransactionAnswersResultsInOrderOnOneIndex) {
  const std::string session = CreateSession();
  const Answer answer = Txn(json::array(
      {Kv("set", "a", {{"Value", EncodeBase64("one")}, {"Flags", 7}}),
       Kv("lock", "l", {{"Value", EncodeBase64("me")}, {"Session", session}}), Kv("get", "a"),
       Kv("get-or-empty", "missing"), Kv("check-session", "l", {{"Session", session}})}));
  ASSERT_EQ(answer.status, 200) << answer.text;
  EXPECT_TRUE(answer.body["Errors"].is_null());
  const json& results = answer.body["Results"];
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[0]["KV"]["Key"], "a");
  EXPECT_TRUE(results[0]["KV"]["Value"].is_null()) << "writes answer without the value";
  EXPECT_EQ(results[0]["KV"]["Flags"], 7);
  EXPECT_EQ(results[1]["KV"]["LockIndex"], 1);
  EXPECT_EQ(results[1]["KV"]["Session"], session);
  EXPECT_EQ(results[2]["KV"]["Value"], EncodeBase64("one")) << "a get sees the earlier write";
  EXPECT_EQ(results[3]["KV"]["Key"], "missing");
  EXPECT_TRUE(results[3]["KV"]["Value"].is_null());
  EXPECT_EQ(results[3]["KV"]["ModifyIndex"], 0) << "absent: the operation's own entry";
  const std::uint64_t index = results[0]["KV"]["ModifyIndex"];
  EXPECT_EQ(results[1]["KV"]["ModifyIndex"], index) << "one Raft index for the transaction";
  EXPECT_EQ(Entry("l")["ModifyIndex"], index);
  EXPECT_EQ(Send("GET", "/v1/kv/a?raw").text, "one");
}

TEST_F(ConsulTxnTest, OneFailedOperationRollsEverythingBackAndErrorsNameEachFailure) {
  const std::string holder = CreateSession();
  const std::string other = CreateSession();
  ASSERT_EQ(Send("PUT", "/v1/kv/held?acquire=" + holder, "h").text, "true");
  ASSERT_EQ(Send("PUT", "/v1/kv/kept", "before").text, "true");
  const json before = Entry("kept");

  const Answer answer = Txn(json::array(
      {Kv("set", "kept", {{"Value", EncodeBase64("after")}}),
       Kv("lock", "free", {{"Session", other}}), Kv("lock", "held", {{"Session", other}}),
       Kv("delete", "kept"), Kv("cas", "new", {{"Value", EncodeBase64("x")}, {"Index", 5}})}));
  ASSERT_EQ(answer.status, 409) << answer.text;
  EXPECT_TRUE(answer.body["Results"].is_null());
  const json& errors = answer.body["Errors"];
  ASSERT_EQ(errors.size(), 2u) << answer.text;
  EXPECT_EQ(errors[0]["OpIndex"], 2);
  EXPECT_EQ(errors[0]["What"], "failed to lock key \"held\", lock is already held");
  EXPECT_EQ(errors[1]["OpIndex"], 4);
  EXPECT_EQ(errors[1]["What"], "failed to set key \"new\", index is stale");
  // Nothing stayed: not the write, the lock, nor the delete.
  EXPECT_EQ(Entry("kept"), before);
  EXPECT_EQ(Send("GET", "/v1/kv/free").status, 404);
  EXPECT_EQ(Entry("held")["Session"], holder);
  const std::uint64_t table =
      std::stoull(http_->Get("/v1/kv/kept")->get_header_value("X-Consul-Index"));
  EXPECT_EQ(table, before["ModifyIndex"]) << "the KV table's index did not move";
}

TEST_F(ConsulTxnTest, LockDelayRefusesTheLockBeforeAnythingRuns) {
  const std::string old_holder = CreateSession({{"LockDelay", "30s"}});
  const std::string successor = CreateSession();
  ASSERT_EQ(Send("PUT", "/v1/kv/l1?acquire=" + old_holder).text, "true");
  ASSERT_EQ(Send("PUT", "/v1/kv/l2?acquire=" + old_holder).text, "true");
  Send("PUT", "/v1/session/destroy/" + old_holder);
  const Answer answer = Txn(json::array({Kv("lock", "l1", {{"Session", successor}}),
                                         Kv("lock", "l2", {{"Session", successor}}),
                                         Kv("lock", "l3", {{"Session", successor}})}));
  ASSERT_EQ(answer.status, 409) << answer.text;
  ASSERT_EQ(answer.body["Errors"].size(), 2u);
  EXPECT_EQ(answer.body["Errors"][0]["OpIndex"], 0);
  EXPECT_EQ(answer.body["Errors"][0]["What"], "failed to lock key \"l1\" due to lock delay");
  EXPECT_EQ(answer.body["Errors"][1]["OpIndex"], 1);
  EXPECT_EQ(Send("GET", "/v1/kv/l3").status, 404);
  // The same lock-delay refuses the single-key acquisition.
  EXPECT_EQ(Send("PUT", "/v1/kv/l1?acquire=" + successor).text, "false");
}

TEST_F(ConsulTxnTest, LockUnlockAndChecksCountLockIndexAsTheKvEndpoint) {
  const std::string a = CreateSession();
  const std::string b = CreateSession();
  ASSERT_EQ(Txn(json::array({Kv("lock", "k", {{"Session", a}})})).status, 200);
  ASSERT_EQ(
      Txn(json::array({Kv("lock", "k", {{"Session", a}})})).body["Results"][0]["KV"]["LockIndex"],
      1)
      << "the holder refreshes";
  Answer wrong = Txn(json::array({Kv("unlock", "k", {{"Session", b}})}));
  ASSERT_EQ(wrong.status, 409);
  EXPECT_EQ(wrong.body["Errors"][0]["What"],
            "failed to unlock key \"k\", lock isn't held, or is held by another session");
  wrong = Txn(json::array({Kv("check-session", "k", {{"Session", b}})}));
  ASSERT_EQ(wrong.status, 409);
  EXPECT_EQ(wrong.body["Errors"][0]["What"],
            "failed session check for key \"k\", current session \"" + a + "\" != \"" + b + "\"");
  ASSERT_EQ(Txn(json::array({Kv("unlock", "k", {{"Session", a}})})).status, 200);
  EXPECT_FALSE(Entry("k").contains("Session"));
  const Answer relock = Txn(json::array({Kv("lock", "k", {{"Session", b}})}));
  ASSERT_EQ(relock.status, 200) << "an explicit unlock arms no lock-delay";
  EXPECT_EQ(relock.body["Results"][0]["KV"]["LockIndex"], 2);

  const Answer invalid = Txn(json::array(
      {Kv("lock", "x", {{"Session", "00000000-0000-0000-0000-000000000000"}}), Kv("lock", "y")}));
  ASSERT_EQ(invalid.status, 409);
  EXPECT_EQ(invalid.body["Errors"][0]["What"],
            "invalid session \"00000000-0000-0000-0000-000000000000\"");
  EXPECT_EQ(invalid.body["Errors"][1]["What"], "missing session");
}

TEST_F(ConsulTxnTest, CasDeleteAndIndexChecks) {
  ASSERT_EQ(
      Txn(json::array({Kv("cas", "c", {{"Value", EncodeBase64("v1")}, {"Index", 0}})})).status,
      200);
  const std::uint64_t index = Entry("c")["ModifyIndex"];
  EXPECT_EQ(
      Txn(json::array({Kv("cas", "c", {{"Value", EncodeBase64("v2")}, {"Index", 0}})})).status, 409)
      << "0: only if absent";
  const Answer moved =
      Txn(json::array({Kv("check-index", "c", {{"Index", index}}),
                       Kv("cas", "c", {{"Value", EncodeBase64("v2")}, {"Index", index}})}));
  ASSERT_EQ(moved.status, 200) << moved.text;
  const std::uint64_t now = moved.body["Results"][1]["KV"]["ModifyIndex"];
  EXPECT_GT(now, index);
  const Answer stale = Txn(json::array({Kv("check-index", "c", {{"Index", index}})}));
  ASSERT_EQ(stale.status, 409);
  EXPECT_EQ(stale.body["Errors"][0]["What"],
            "failed index check for key \"c\", current modify index " + std::to_string(now) +
                " != " + std::to_string(index));
  EXPECT_EQ(Txn(json::array({Kv("delete-cas", "c", {{"Index", index}})})).status, 409);
  const Answer deleted = Txn(json::array({Kv("delete-cas", "c", {{"Index", now}})}));
  ASSERT_EQ(deleted.status, 200);
  EXPECT_TRUE(deleted.body["Results"].empty()) << "deletes answer no result";
  EXPECT_EQ(Txn(json::array({Kv("check-not-exists", "c")})).status, 200);
  const Answer missing = Txn(json::array({Kv("get", "c")}));
  ASSERT_EQ(missing.status, 409);
  EXPECT_EQ(missing.body["Errors"][0]["What"], "key \"c\" doesn't exist");
}

TEST_F(ConsulTxnTest, ReadOnlyTransactionIsServedAsARead) {
  Send("PUT", "/v1/kv/t/a", "1");
  Send("PUT", "/v1/kv/t/b", "2");
  httplib::Result result =
      http_->Put("/v1/txn", json::array({Kv("get-tree", "t/")}).dump(), "application/json");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200);
  EXPECT_EQ(result->get_header_value("X-Consul-KnownLeader"), "true");
  const json body = json::parse(result->body);
  ASSERT_EQ(body["Results"].size(), 2u);
  EXPECT_EQ(body["Results"][1]["KV"]["Value"], EncodeBase64("2"));
}

TEST_F(ConsulTxnTest, LimitsAndMalformedBodiesAreRefusedAsConsulDoes) {
  json many = json::array();
  for (int i = 0; i < 129; ++i) many.push_back(Kv("get-or-empty", "k" + std::to_string(i)));
  Answer answer = Txn(many);
  EXPECT_EQ(answer.status, 413);
  EXPECT_EQ(answer.text, "Transaction contains too many operations (129 > 128)");
  many.erase(many.end() - 1);
  EXPECT_EQ(Txn(many).status, 200) << "128 is allowed";

  const std::string big(512 * 1024 + 1, 'x');
  answer = Txn(json::array({Kv("set", "big", {{"Value", EncodeBase64(big)}})}));
  EXPECT_EQ(answer.status, 413);
  EXPECT_EQ(answer.text, "Request body too large, max size: 524288 bytes");

  answer = Send("PUT", "/v1/txn", "[{\"KV\": ");
  EXPECT_EQ(answer.status, 400);
  EXPECT_TRUE(answer.text.starts_with("Failed to parse body: ")) << answer.text;
  answer = Txn(json::array({Kv("set", "k", {{"Value", "not base64!"}})}));
  EXPECT_EQ(answer.status, 400);
  answer = Txn(json::array({Kv("frobnicate", "k")}));
  ASSERT_EQ(answer.status, 409);
  EXPECT_EQ(answer.body["Errors"][0]["What"], "unknown KV verb \"frobnicate\"");
  answer = Txn(json::array({Kv("set", "")}));
  ASSERT_EQ(answer.status, 409);
  EXPECT_EQ(answer.body["Errors"][0]["What"], "Must provide key");
  answer = Txn(json::array({json::object()}));
  ASSERT_EQ(answer.status, 409);
  EXPECT_EQ(answer.body["Errors"][0]["What"], "no operation specified");
}

TEST_F(ConsulTxnTest, ATransactionWakesBlockedReadsOnce) {
  Send("PUT", "/v1/kv/w/x", "0");
  httplib::Result first = http_->Get("/v1/kv/w/?recurse");
  const std::string index = first->get_header_value("X-Consul-Index");
  std::atomic<bool> woke{false};
  std::thread reader([&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(30);
    auto result = client.Get("/v1/kv/w/?recurse&wait=20s&index=" + index);
    woke = result && result->status == 200;
  });
  ASSERT_TRUE(Eventually([&] { return server_->BlockedQueries() > 0; }, seconds(10)));
  ASSERT_EQ(Txn(json::array({Kv("set", "w/x", {{"Value", EncodeBase64("1")}}),
                             Kv("set", "w/y", {{"Value", EncodeBase64("2")}})}))
                .status,
            200);
  reader.join();
  EXPECT_TRUE(woke);
}

}  // namespace
}  // namespace hb::test_support
