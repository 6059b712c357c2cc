#pragma once

// Consul's HTTP API as blocking queries that follow Consul's documented
// client rules (docs/consul-semantics.md), all driven by one EventLoop thread.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/status.h"
#include "bridge/consul/consul_client_options.h"
#include "bridge/consul/event_loop.h"

namespace hb {

// The part of Consul a request reads: ?dc=, ?peer=, ?ns=, ?partition=. A
// blocking query keeps the scope it was started with next to its index, so
// an index one source answered is only ever sent back to that source (each
// datacenter has a Raft log, and so an index, of its own).
struct RequestScope {
  // Default: "" = ConsulClientOptions::datacenter (the agent's when empty).
  std::string datacenter;
  std::string peer;       // cluster peer whose imported services to read
  std::string ns;         // Consul Enterprise namespace
  std::string partition;  // Consul Enterprise admin partition
  bool operator==(const RequestScope&) const = default;
};

// Low-cardinality endpoint label of a path: "catalog_services",
// "health_service", "health_state", "agent_self", or "other".
std::string_view EndpointLabel(std::string_view path);

// Told about every finished request (metrics). Called on the loop thread.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // outcome: "ok", "http_4xx", "http_5xx", "timeout", "error", "malformed",
  // "too_large".
  // A blocking request's latency includes the time Consul held it.
  virtual void OnRequestDone(std::string_view endpoint, std::string_view outcome,
                             std::chrono::duration<double> latency, bool blocking) = 0;
  // Consul refused a connection: reason "too_many_connections" (HTTP 429)
  // or "connection_reset" (closed or reset before it answered).
  virtual void OnRefused(std::string_view /*reason*/) {}
};

struct QueryMeta {
  std::uint64_t index = 0;                    // X-Consul-Index (0 read as 1)
  bool known_leader = true;                   // X-Consul-KnownLeader
  std::chrono::milliseconds last_contact{0};  // X-Consul-LastContact
  std::string backend;                        // X-Consul-Query-Backend ("streaming" or "")
};

struct QueryAnswer {
  std::string_view body;  // valid during the callback only
  QueryMeta meta;
  // The index went backwards (snapshot restore, another server): the data
  // must be diffed as a fresh read, never skipped.
  bool index_reset = false;
  SteadyTime received_at{};
};

// A non-blocking read with its answer's metadata.
struct ReadAnswer {
  std::string body;
  QueryMeta meta;
  SteadyTime received_at{};
};

// X-Consul-Index (strict: digits only, no overflow; 0 read as 1 so the
// next request blocks), X-Consul-KnownLeader, X-Consul-LastContact and
// X-Consul-Query-Backend of an answer.
StatusOr<QueryMeta> ParseQueryMeta(const std::map<std::string, std::string>& headers);

// Retry-After in whole seconds (RFC 9110's delay-seconds), clamped to
// `limit`; nullopt when absent or not a number (an HTTP date is ignored).
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::milliseconds limit);

class BlockingQuery;

// Create() from any thread; Watch() and Get() from any thread; every
// callback runs on the client's loop thread.
class ConsulClient {
 public:
  // Returns an error when the address is not http(s)://host:port. `clock`
  // (it must outlive the client) decides the rate limit of same-index
  // answers, the outage reminders, the token file's re-reads and the times
  // reported (latency, received_at); the loop's timers wait in real time.
  static StatusOr<std::unique_ptr<ConsulClient>> Create(ConsulClientOptions options,
                                                        RequestObserver* observer = nullptr,
                                                        const Clock& clock = SystemTime());
  ~ConsulClient();

  using AnswerHandler = std::function<Status(const QueryAnswer&)>;
  using ErrorHandler = std::function<void(const Status&)>;

  // Starts a blocking-query loop on `path` (e.g. "/v1/health/service/web").
  // `on_answer` runs for every 2xx answer; a non-OK return means the body was
  // unusable: the loop backs off and retries without advancing the index.
  // `on_error` runs for transport errors, non-2xx answers (403 carries
  // Consul's text as PermissionDenied, with a hint naming the token's
  // sources and the ACL rules needed; 5xx and 429 are Unavailable) and
  // unusable bodies, before the backoff. Every error's text starts with
  // "GET <address><path>: " (user info masked). Destroying the returned query
  // stops it; no callback runs after its destructor returns.
  // `scope` goes on every request of the loop.
  std::unique_ptr<BlockingQuery> Watch(std::string path,
                                       std::vector<std::pair<std::string, std::string>> params,
                                       AnswerHandler on_answer, ErrorHandler on_error,
                                       RequestScope scope = {});

  // One non-blocking GET with the same auth, dc and TLS.
  void Get(std::string path, std::function<void(StatusOr<std::string>)> done,
           RequestScope scope = {});
  // The same, with the answer's index and headers (an unusable index is an
  // error). Errors carry the same Status as a blocking query's.
  void Read(std::string path, std::function<void(StatusOr<ReadAnswer>)> done,
            RequestScope scope = {});

  EventLoop& loop() { return *loop_; }
  const ConsulClientOptions& options() const { return options_; }

  // Reads the token file again (SIGHUP); from any thread. No-op without
  // one.
  void ReloadToken();

  // Use Create(), which validates the options.
  ConsulClient(ConsulClientOptions options, RequestObserver* observer, const Clock& clock);

 private:
  friend class BlockingQuery;

  HttpRequest BuildRequest(std::string_view path,
                           const std::vector<std::pair<std::string, std::string>>& params,
                           std::uint64_t index, const RequestScope& scope) const;
  // Loop thread: the token file's content replaces the token when it reads
  // and differs; `why` is for the log (never the token).
  void ReReadTokenFile(std::string_view why);
  void Observe(std::string_view path, std::string_view outcome, SteadyTime started, bool blocking);
  // "GET <address><path>" for errors, the address's user info masked.
  std::string Describe(std::string_view path) const;
  // At log.level debug: the path, the index asked for, the outcome, the
  // index answered and how long it took. Nothing is formatted otherwise.
  void LogRequest(std::string_view path, std::uint64_t sent_index, const HttpResponse& response,
                  SteadyTime started) const;
  // Every answer passes here: a 429 or a reset starts (or continues) a
  // refusal streak, logged once with its remedy; any other answer ends it.
  void NoteRefusal(const HttpResponse& response);
  // Loop thread: a request failed (`error`) or succeeded; a failure streak
  // is reminded of at warn once per outage_reminder_interval.
  void NoteFailure(const Status& error);
  void NoteSuccess() { failing_since_.reset(); }
  // `error` named after the request (Describe()), and noted as a failure.
  Status Failed(const Status& error, std::string_view path);

  // The real steady and wall clocks, for clients not given one.
  static const Clock& SystemTime();

  const ConsulClientOptions options_;
  RequestObserver* const observer_;
  const Clock& clock_;
  std::unique_ptr<EventLoop> loop_;
  bool refusal_streak_ = false;              // loop thread
  std::string token_;                        // loop thread: what X-Consul-Token sends
  std::optional<SteadyTime> token_read_at_;  // loop thread: the last re-read after a 403
  std::optional<SteadyTime> failing_since_;  // loop thread: requests fail since
  SteadyTime reminded_at_{};                 // loop thread: the last reminder
};

// A running blocking-query loop. Destroy it from any thread, also from the
// loop thread inside another query's callback.
class BlockingQuery {
 public:
  struct State;
  explicit BlockingQuery(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~BlockingQuery();

  // Loop thread only. Lets the request in flight run to its end instead of
  // abandoning it, then stops: no handler runs again, and `retired` is
  // posted to the loop once the connection is free. Abandoning a held
  // blocking query would not free Consul's side of it: Consul keeps the
  // request, and its connection slot, until the wait ends
  // (hashicorp/consul#8524), so a connection budget must wait for it.
  void Retire(std::function<void()> retired);
  BlockingQuery(const BlockingQuery&) = delete;
  BlockingQuery& operator=(const BlockingQuery&) = delete;

 private:
  std::shared_ptr<State> state_;
};

// Percent-encodes everything but RFC 3986's unreserved characters, for a
// query value or a path segment (a service name with a space or a slash).
std::string PercentEncode(std::string_view text);

// Maps an HTTP answer that is not 2xx to the Status the query reports.
Status StatusFromHttp(long status, std::string_view body);

}  // namespace hb
