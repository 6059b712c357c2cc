// SendTxnGroupsConcurrently against the Consul test server: thousands of
// groups go over several connections at once (a takeover's burst), each
// outcome lands at its group's position, a refusal fails only its own
// group, and a slice whose connection fails is reported without hiding
// what the other slices committed.

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bridge/cluster/consul_kv_client.h"
#include "tests/support/consul/consul_test_server.h"

namespace hb {
namespace {

using test_support::ConsulTestServer;
using test_support::ConsulTestServerOptions;

std::vector<std::unique_ptr<ConsulKvClient>> Clients(const std::vector<std::string>& addresses) {
  std::vector<std::unique_ptr<ConsulKvClient>> clients;
  for (const std::string& address : addresses) {
    ConsulClientOptions options;
    options.address = address;
    clients.push_back(std::make_unique<ConsulKvClient>(options));
  }
  return clients;
}

// One group per key: a set, then a read of it back.
std::vector<std::vector<KvTxnOp>> SetGroups(std::size_t count) {
  std::vector<std::vector<KvTxnOp>> groups;
  for (std::size_t i = 0; i < count; ++i) {
    const std::string key = "burst/" + std::to_string(i);
    groups.push_back({{"set", key, "value-" + std::to_string(i), 0, ""}, {"get", key, "", 0, ""}});
  }
  return groups;
}

class TxnGroupsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(server_.Start(), 0); }

  ConsulTestServer server_{ConsulTestServerOptions{}};
};

TEST_F(TxnGroupsTest, ABurstGoesOverEveryConnectionAndEachOutcomeLandsAtItsGroup) {
  const auto clients = Clients(std::vector<std::string>(4, server_.address()));
  const auto groups = SetGroups(1000);  // 2,000 operations: 16 transactions
  Status failure;
  const auto outcomes = SendTxnGroupsConcurrently(
      clients, groups, [] { return true; }, &failure);

  ASSERT_TRUE(failure.ok()) << failure.message();
  ASSERT_EQ(outcomes.size(), groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i) {
    ASSERT_TRUE(outcomes[i].committed) << i << ": " << outcomes[i].why;
    ASSERT_EQ(outcomes[i].results.size(), 2u);
    EXPECT_EQ(outcomes[i].results[1].key, groups[i][0].key);
    EXPECT_EQ(outcomes[i].results[1].value, groups[i][0].value);
  }
  EXPECT_EQ(server_.PeakConnections(), 4u) << "every connection carried a share";
}

TEST_F(TxnGroupsTest, LessThanTwoTransactionsGoOverOneConnection) {
  const auto clients = Clients(std::vector<std::string>(4, server_.address()));
  Status failure;
  const auto outcomes = SendTxnGroupsConcurrently(
      clients, SetGroups(40), [] { return true; }, &failure);

  ASSERT_TRUE(failure.ok()) << failure.message();
  for (const KvTxnGroupOutcome& outcome : outcomes) EXPECT_TRUE(outcome.committed);
  EXPECT_EQ(server_.PeakConnections(), 1u);
}

TEST_F(TxnGroupsTest, OperationsConsulAnswersWithoutAnEntryKeepTheirPlace) {
  const auto clients = Clients({server_.address()});
  auto put = clients[0]->PutCas("gone", "soon", 0);
  ASSERT_TRUE(put.ok() && *put);
  const std::vector<std::vector<KvTxnOp>> groups = {
      {{"delete", "gone", "", 0, ""}, {"get-or-empty", "gone", "", 0, ""}},
      {{"check-not-exists", "never", "", 0, ""}, {"set", "after", "x", 0, ""}},
      {{"delete-tree", "nothing/", "", 0, ""}}};
  Status failure;
  const auto outcomes = SendTxnGroupsConcurrently(
      clients, groups, [] { return true; }, &failure);

  ASSERT_TRUE(failure.ok()) << failure.message();
  ASSERT_EQ(outcomes.size(), 3u);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    ASSERT_TRUE(outcomes[i].committed) << i << ": " << outcomes[i].why;
    ASSERT_EQ(outcomes[i].results.size(), groups[i].size()) << i;
  }
  EXPECT_EQ(outcomes[0].results[1].modify_index, 0u) << "read after the delete: absent";
  EXPECT_EQ(outcomes[1].results[1].key, "after");
  EXPECT_NE(outcomes[1].results[1].modify_index, 0u);

  // Deletes alone: Consul's Results is null.
  auto only_deletes = clients[0]->Txn({{"delete", "after", "", 0, ""}});
  ASSERT_TRUE(only_deletes.ok()) << only_deletes.status().message();
  EXPECT_TRUE(only_deletes->committed);
  ASSERT_EQ(only_deletes->results.size(), 1u);
  EXPECT_EQ(only_deletes->results[0].key, "after");
}

TEST_F(TxnGroupsTest, NoGroupsSendNothing) {
  const auto clients = Clients(std::vector<std::string>(4, server_.address()));
  Status failure;
  EXPECT_TRUE(SendTxnGroupsConcurrently(
                  clients, {}, [] { return true; }, &failure)
                  .empty());
  EXPECT_TRUE(failure.ok());
  EXPECT_EQ(server_.PeakConnections(), 0u);
}

TEST_F(TxnGroupsTest, ARefusedGroupFailsOnlyItselfWhicheverSliceItIsIn) {
  const auto clients = Clients(std::vector<std::string>(4, server_.address()));
  auto groups = SetGroups(400);
  // Check-and-set "only if absent" on keys that exist: refused.
  const std::vector<std::size_t> refused = {0, 150, 399};
  for (const std::size_t i : refused) {
    auto put = clients[0]->PutCas(groups[i][0].key, "already here", 0);
    ASSERT_TRUE(put.ok() && *put) << groups[i][0].key;
    groups[i][0] = {"cas", groups[i][0].key, "mine", 0, ""};
  }
  Status failure;
  const auto outcomes = SendTxnGroupsConcurrently(
      clients, groups, [] { return true; }, &failure);

  ASSERT_TRUE(failure.ok()) << failure.message();
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const bool should_refuse = std::find(refused.begin(), refused.end(), i) != refused.end();
    EXPECT_EQ(outcomes[i].refused, should_refuse) << i;
    EXPECT_EQ(outcomes[i].committed, !should_refuse) << i << ": " << outcomes[i].why;
  }
}

TEST_F(TxnGroupsTest, AFailedConnectionIsReportedAndTheOtherSlicesStillCommit) {
  ConsulTestServer gone{ConsulTestServerOptions{}};
  ASSERT_NE(gone.Start(), 0);
  const std::string dead = gone.address();
  gone.Stop();
  const auto clients = Clients({server_.address(), dead});
  const auto groups = SetGroups(200);
  Status failure;
  const auto outcomes = SendTxnGroupsConcurrently(
      clients, groups, [] { return true; }, &failure);

  EXPECT_FALSE(failure.ok()) << "the second slice's connection was refused";
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const bool first_slice = i < groups.size() / 2;
    EXPECT_EQ(outcomes[i].committed, first_slice) << i;
    EXPECT_FALSE(outcomes[i].refused) << i << ": not sent is neither committed nor refused";
  }
}

}  // namespace
}  // namespace hb
