#pragma once

// Consul sessions for the test server: create, renew, destroy and read, with
// the limits and timers a real Consul applies. Pure and synchronous like
// TestCatalog (whose index it shares, as Consul's tables share one Raft
// index); the server adds HTTP, locking, blocking and the reaping timer.
//
// What the bridge relies on, as Consul documents it:
// - TTL between the server's minimum (10s in Consul) and 24h, or none; a
//   session not renewed is destroyed some time after its TTL, up to twice it
//   (`reap_multiplier`), and a renewal may hand back a longer TTL than asked
//   (`ttl_handback`), which the server then holds the client to.
// - LockDelay (default 15s, at most 60s: more is cut to 60s; a bare number
//   below 1000 is seconds, above it nanoseconds).
// - Behavior "release" (default) or "delete": what happens to the keys the
//   session holds when it is invalidated (done by KvStore).
// - Health binding: NodeChecks default to the node's serfHealth; a session
//   is invalidated as soon as one of its checks is critical or gone.

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/support/consul/test_catalog.h"

namespace hb::test_support {

struct TestSession {
  std::string id;
  std::string name;
  std::string node;
  std::string behavior = "release";
  std::chrono::milliseconds lock_delay{std::chrono::seconds(15)};
  // The TTL as the client wrote it ("" for none) and as the server holds
  // the client to it (longer after a renewal that handed back more).
  std::string ttl_text;
  std::optional<std::chrono::milliseconds> asked_ttl;
  std::optional<std::chrono::milliseconds> ttl;
  std::vector<std::string> node_checks;
  std::vector<std::string> service_checks;
  // When the server destroys it unless renewed first: ttl x reap_multiplier
  // after the creation or the last renewal.
  std::optional<TestTime> reap_at;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

struct SessionRules {
  // Shortest TTL accepted. Consul: 10s; tests lower it to run quickly.
  std::chrono::milliseconds min_ttl{std::chrono::seconds(10)};
  // A session not renewed is reaped this many TTLs after its last renewal.
  // Consul: 2 (its guarantee is the TTL; the rest is grace it may use).
  double reap_multiplier = 2.0;
  // A renewal hands back this many times the TTL asked for, as a loaded
  // Consul may do to make clients renew less often. Default 1: as asked.
  double ttl_handback = 1.0;
};

class SessionStore {
 public:
  static constexpr std::chrono::milliseconds kMaxTtl{std::chrono::hours(24)};
  static constexpr std::chrono::milliseconds kMaxLockDelay{std::chrono::seconds(60)};

  explicit SessionStore(SessionRules rules = {});

  const SessionRules& rules() const { return rules_; }

  struct CreateResult {
    std::string id;  // set on success
    int status = 200;
    std::string error;
  };
  // PUT /v1/session/create with `body` (may be null: every default), on
  // `default_node` unless the body names one. Takes a new index from
  // `catalog` when it succeeds.
  CreateResult Create(const nlohmann::json& body, const std::string& default_node,
                      TestCatalog& catalog, TestTime now);
  // PUT /v1/session/renew/<id>: restarts the reaping timer. nullptr when
  // the session does not exist (any more).
  const TestSession* Renew(const std::string& id, TestTime now);
  // Removes a session (destroy, reaping, a failed check) and returns it;
  // the caller frees its locks.
  std::optional<TestSession> Remove(const std::string& id, TestCatalog& catalog);
  const TestSession* Find(const std::string& id) const;

  // Sessions whose reaping time has come.
  std::vector<std::string> Expired(TestTime now) const;
  // Sessions bound to a check that is critical or no longer exists.
  std::vector<std::string> WithFailedChecks(const TestCatalog& catalog) const;

  // Reads, in Consul's shape, and the sessions table's index.
  nlohmann::json Json(const TestSession& session) const;
  nlohmann::json Info(const std::string& id) const;
  nlohmann::json List() const;
  nlohmann::json OnNode(const std::string& node) const;
  std::uint64_t Index() const { return index_; }

  // Snapshot restore: every index above `to` becomes `to`.
  void ResetIndex(std::uint64_t to);

 private:
  std::string NewId();

  SessionRules rules_;
  std::map<std::string, TestSession> sessions_;
  std::uint64_t index_ = 1;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace hb::test_support
