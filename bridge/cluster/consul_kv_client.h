#pragma once

// The Consul writes cluster mode needs (sessions and KV locks), as plain
// synchronous requests on one connection. bridge/consul's ConsulClient
// serves blocking reads on its event loop; these writes are few, each has
// a deadline, and the caller's own thread waits for them, so a slow lock
// acquisition never delays the watch.
//
// Not thread-safe: one instance per thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bridge/common/curl_handles.h"
#include "bridge/common/status.h"
#include "bridge/consul/consul_client.h"

namespace hb {

struct SessionSpec {
  std::string name;
  std::chrono::milliseconds ttl{std::chrono::seconds(15)};
  std::chrono::milliseconds lock_delay{std::chrono::seconds(15)};
};

// A session as Consul granted it.
struct SessionGrant {
  std::string id;
  // The TTL the server says it holds the session to; may be longer than
  // asked (a loaded Consul asks clients to renew less often).
  std::chrono::milliseconds ttl{0};
};

struct KvPair {
  std::string key;
  std::string value;  // decoded
  std::string session;
  std::uint64_t lock_index = 0;
  std::uint64_t modify_index = 0;
  std::uint64_t flags = 0;
};

// One KV operation of a Consul transaction (/v1/txn). Results and
// operations pair up by position: Consul answers "delete", "delete-cas",
// "delete-tree" and "check-not-exists" with no entry, and Txn() puts a
// blank one (the key only) in their place; "get-tree", which answers any
// number, is refused.
struct KvTxnOp {
  std::string verb;
  std::string key;
  std::string value;  // raw; sent base64-encoded
  std::uint64_t index = 0;
  std::string session;
};

// What Consul did with a transaction: all of it, or (409) none of it.
struct KvTxnAnswer {
  bool committed = false;
  std::vector<KvPair> results;      // committed: one per operation, in order
  std::vector<std::size_t> failed;  // rolled back: the operations Consul named
  std::string why;                  // rolled back: the first failure's text
};

// Parses a Consul KV read answer (a JSON list of entries, base64 values).
StatusOr<std::vector<KvPair>> ParseKvPairs(std::string_view body);
// A Go duration as Consul writes a session's TTL ("15s", "1m0s", "1.5s").
std::optional<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

class ConsulKvClient {
 public:
  // Uses the address, token (re-read from token_file after a 403), dc, TLS
  // and timeouts of `options`. Errors when the address is not http(s).
  static StatusOr<std::unique_ptr<ConsulKvClient>> Create(const ConsulClientOptions& options);
  ~ConsulKvClient();
  ConsulKvClient(const ConsulKvClient&) = delete;
  ConsulKvClient& operator=(const ConsulKvClient&) = delete;

  // Every request ends within `timeout` (connect included).
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  StatusOr<SessionGrant> CreateSession(const SessionSpec& spec);
  // The TTL the renewal handed back; NotFound once the session is gone
  // (reaped, destroyed, or invalidated by a failed check).
  StatusOr<std::chrono::milliseconds> RenewSession(const std::string& id);
  Status DestroySession(const std::string& id);

  // ?acquire= / ?release=: whether Consul did it.
  StatusOr<bool> Acquire(const std::string& key, const std::string& session,
                         const std::string& value);
  StatusOr<bool> Release(const std::string& key, const std::string& session,
                         const std::string& value);
  // ?cas=<index> (0: only if absent).
  StatusOr<bool> PutCas(const std::string& key, const std::string& value, std::uint64_t cas);
  // With `cas`: only while the key's ModifyIndex is still `cas`.
  Status Delete(const std::string& key, std::optional<std::uint64_t> cas = std::nullopt);
  // nullopt when the key does not exist.
  StatusOr<std::optional<KvPair>> Get(const std::string& key);

  // Consul's limits on one transaction: operations (128 since Consul 1.14,
  // hashicorp/consul#14599, 64 before; cluster mode needs 1.14 anyway, for
  // get-or-empty) and request body (txn_max_req_len, 512 KiB by default).
  static constexpr std::size_t kMaxTxnOps = 128;
  static constexpr std::size_t kMaxTxnBodyBytes = 512 * 1024;
  // The size an operation adds to a transaction's body, for batching.
  static std::size_t TxnOpBytes(const KvTxnOp& op);
  // PUT /v1/txn: atomic, all operations applied on one Raft index or none.
  // InvalidArgument when `ops` break the limits above.
  StatusOr<KvTxnAnswer> Txn(const std::vector<KvTxnOp>& ops);

  explicit ConsulKvClient(const ConsulClientOptions& options);

 private:
  struct Reply {
    long status = 0;
    std::string body;
  };
  // `max_answer`: longer answers are cut off (an error).
  StatusOr<Reply> Send(const char* method, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& params,
                       const std::string& body, std::size_t max_answer = std::size_t{1} << 20);
  // Non-2xx answers as the Status ConsulClient uses for them.
  static Status ErrorOf(const Reply& reply, const std::string& what);

  ConsulClientOptions options_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  CurlEasy easy_;
};

// What became of one group of a SendTxnGroups() call.
struct KvTxnGroupOutcome {
  bool committed = false;  // applied; `results` has one entry per operation
  bool refused = false;    // Consul refused one of its operations
  std::string why;         // refused: Consul's reason
  std::vector<KvPair> results;
};

// Sends groups of KV operations in as few transactions as Consul's limits
// allow, each group whole in one. A refused operation fails its whole
// transaction: the groups Consul named are refused and the others sent
// again at once (Txn() names at least one operation, so this ends).
// `may_send` is asked before each new batch; false stops there. A failed
// request stops too, with `*failure` set: neither committed nor refused
// means not sent, or its outcome unknown.
std::vector<KvTxnGroupOutcome> SendTxnGroups(ConsulKvClient& client,
                                             std::span<const std::vector<KvTxnOp>> groups,
                                             const std::function<bool()>& may_send,
                                             Status* failure);

// SendTxnGroups() over several clients at once: the groups are dealt into
// contiguous slices, as many as there are clients and full transactions,
// each sent by its own client on its own thread (the caller's for the
// first). A takeover of thousands of services is then bounded by Consul's
// throughput, not by one connection's round trips. Groups must not depend
// on each other's order across slices. `clients` holds at least one;
// `may_send` is called from every sending thread; `*failure` is the first
// failure of any slice.
std::vector<KvTxnGroupOutcome> SendTxnGroupsConcurrently(
    std::span<const std::unique_ptr<ConsulKvClient>> clients,
    std::span<const std::vector<KvTxnOp>> groups, const std::function<bool()>& may_send,
    Status* failure);

}  // namespace hb
