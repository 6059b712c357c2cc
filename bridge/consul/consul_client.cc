#include "bridge/consul/consul_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "bridge/common/backoff.h"
#include "bridge/common/peer_text.h"
#include "bridge/common/redact.h"

namespace hb {
namespace {

// "55s" as Consul's ?wait= expects; whole seconds unless shorter.
std::string WaitParam(std::chrono::milliseconds wait) {
  if (wait.count() % 1000 == 0) return std::to_string(wait.count() / 1000) + "s";
  return std::to_string(wait.count()) + "ms";
}

// Appended to a 403: the bridge reads the whole catalog and every node's
// health, so its token needs read on every service and node.
constexpr std::string_view kForbiddenHint =
    " (the ACL token, from CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, consul.token or "
    "consul.token_file, must be valid and allow service_prefix \"\" { policy = \"read\" } "
    "and node_prefix \"\" { policy = \"read\" })";

// The same error, its text prefixed with what was asked of whom.
Status Named(const Status& error, std::string_view what) {
  std::string text = std::string(what) + ": " + error.message();
  switch (error.code()) {
    case StatusCode::kPermissionDenied:
      return Status::PermissionDenied(std::move(text));
    case StatusCode::kUnavailable:
      return Status::Unavailable(std::move(text));
    case StatusCode::kDeadlineExceeded:
      return Status::DeadlineExceeded(std::move(text));
    case StatusCode::kResourceExhausted:
      return Status::ResourceExhausted(std::move(text));
    case StatusCode::kNotFound:
      return Status::NotFound(std::move(text));
    case StatusCode::kInvalidArgument:
      return Status::InvalidArgument(std::move(text));
    case StatusCode::kOk:
      return error;
    default:
      return Status::Internal(std::move(text));
  }
}

// "HTTP 200", "HTTP 503" or the transport's error, for the debug log.
std::string OutcomeText(const HttpResponse& response) {
  if (!response.transport.ok()) return response.transport.message();
  return "HTTP " + std::to_string(response.status);
}

// The longest a Retry-After from Consul may hold a query back.
constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::minutes(10);

bool IsRefusal(const HttpResponse& response) {
  return response.connection_reset || (response.transport.ok() && response.status == 429);
}

std::string_view OutcomeOf(const HttpResponse& response) {
  if (response.too_large) return "too_large";
  if (response.transport.code() == StatusCode::kDeadlineExceeded) return "timeout";
  if (response.transport.code() == StatusCode::kInvalidArgument) return "malformed";
  if (!response.transport.ok()) return "error";
  if (response.status >= 500) return "http_5xx";
  if (response.status >= 400) return "http_4xx";
  return "ok";
}

}  // namespace

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string_view EndpointLabel(std::string_view path) {
  if (path.starts_with("/v1/catalog/services")) return "catalog_services";
  if (path.starts_with("/v1/health/service/")) return "health_service";
  if (path.starts_with("/v1/agent/self")) return "agent_self";
  if (path.starts_with("/v1/health/state/")) return "health_state";
  return "other";
}

StatusOr<QueryMeta> ParseQueryMeta(const std::map<std::string, std::string>& headers) {
  auto header = [&](const char* name) -> const std::string* {
    auto it = headers.find(name);
    return it == headers.end() ? nullptr : &it->second;
  };
  QueryMeta meta;
  const std::string* index = header("x-consul-index");
  std::uint64_t parsed = 0;
  // Digits only: strtoull would read "-1" as 2^64-1 and skip a leading
  // "+" or blanks.
  const bool valid =
      index != nullptr && !index->empty() &&
      std::all_of(index->begin(), index->end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      std::from_chars(index->data(), index->data() + index->size(), parsed).ec == std::errc();
  if (!valid) return Status::InvalidArgument("answer without a valid X-Consul-Index");
  // An index of 0 is read as 1, or the next request would not block.
  meta.index = std::max<std::uint64_t>(parsed, 1);
  if (const auto* leader = header("x-consul-knownleader")) meta.known_leader = *leader != "false";
  if (const auto* contact = header("x-consul-lastcontact")) {
    std::int64_t ms = 0;
    if (std::from_chars(contact->data(), contact->data() + contact->size(), ms).ec == std::errc() &&
        ms >= 0) {
      meta.last_contact = std::chrono::milliseconds(ms);
    }
  }
  if (const auto* backend = header("x-consul-query-backend")) meta.backend = *backend;
  return meta;
}

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value,
                                                         std::chrono::milliseconds limit) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const std::int64_t limit_seconds =
      std::max<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(limit).count(), 0);
  std::uint64_t seconds = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  // Too many digits for 64 bits is "very long": the limit.
  if (error == std::errc::result_out_of_range ||
      seconds > static_cast<std::uint64_t>(limit_seconds)) {
    return limit;
  }
  return std::chrono::seconds(static_cast<std::int64_t>(seconds));
}

Status StatusFromHttp(long status, std::string_view body) {
  // A peer's body (an HTML error page, anything) becomes one printable,
  // bounded line: it goes to logs.
  const std::string summary = SummarizePeerText(body);
  std::string text = "HTTP " + std::to_string(status) + (summary.empty() ? "" : ": " + summary);
  if (status == 403) {
    // What an operator needs to fix it: where the token comes from and
    // what it must allow.
    text += kForbiddenHint;
    return Status::PermissionDenied(text);
  }
  if (status == 429 || status >= 500) return Status::Unavailable(text);
  if (status == 404) return Status::NotFound(text);
  return Status::InvalidArgument(text);
}

struct BlockingQuery::State : std::enable_shared_from_this<BlockingQuery::State> {
  ConsulClient* client = nullptr;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  RequestScope scope;  // fixed for the query's life, as its index belongs to it
  ConsulClient::AnswerHandler on_answer;
  ConsulClient::ErrorHandler on_error;

  // Loop thread only.
  bool cancelled = false;
  std::function<void()> retired;  // set by Retire(): stop after the request in flight
  std::uint64_t index = 0;
  int failures = 0;
  double tokens = 2;     // rate-limit bucket for early same-index answers
  SteadyTime tokens_at;  // set to the client's clock when the query starts
  std::optional<EventLoop::TransferId> transfer;
  std::optional<EventLoop::TimerId> timer;
  bool issued_blocking = false;  // the request in flight carries ?index
  JitterRng rng{std::random_device{}()};

  void Issue() {
    timer.reset();
    if (cancelled) return;
    const SteadyTime started = client->clock_.Now();
    // After a failure the next request is a plain read: blocking on the
    // last index, a Consul that is back would hold it until something
    // changes (up to `wait`), and nobody would learn that it answers again.
    const std::uint64_t asked = failures > 0 ? 0 : index;
    issued_blocking = asked > 0;
    HttpRequest request = client->BuildRequest(path, params, asked, scope);
    std::weak_ptr<State> weak = weak_from_this();
    transfer = client->loop().StartGet(std::move(request), [weak, started](HttpResponse response) {
      // Hold the state for the whole callback: on_answer may destroy the
      // BlockingQuery that owns it.
      if (auto self = weak.lock()) self->OnResponse(std::move(response), started);
    });
  }

  void OnResponse(HttpResponse response, SteadyTime started) {
    transfer.reset();
    if (cancelled) return;
    client->NoteRefusal(response);
    if (retired) return FinishRetiring();
    const SteadyTime now = client->clock_.Now();
    if (!response.transport.ok()) {
      client->Observe(path, OutcomeOf(response), started, issued_blocking);
      client->LogRequest(path, AskedIndex(), response, started);
      return Fail(Named(response.transport, client->Describe(path)), std::nullopt);
    }
    if (response.status < 200 || response.status > 299) {
      client->Observe(path, OutcomeOf(response), started, issued_blocking);
      client->LogRequest(path, AskedIndex(), response, started);
      std::optional<std::chrono::milliseconds> retry_after;
      if (auto it = response.headers.find("retry-after"); it != response.headers.end()) {
        retry_after = ParseRetryAfter(it->second, kMaxRetryAfter);
      }
      return Fail(Named(StatusFromHttp(response.status, response.body), client->Describe(path)),
                  retry_after);
    }
    auto parsed_meta = ParseQueryMeta(response.headers);
    client->LogRequest(path, AskedIndex(), response, started);
    if (!parsed_meta.ok()) {
      client->Observe(path, "malformed", started, issued_blocking);
      return Fail(Named(parsed_meta.status(), client->Describe(path)), std::nullopt);
    }
    const QueryMeta& meta = *parsed_meta;

    // docs/consul-semantics.md rule 1: an index that goes backwards (snapshot
    // restore, another server) resets the loop; this answer is diffed as a
    // fresh read.
    const bool index_reset = index > 0 && meta.index < index;
    const bool unchanged = index > 0 && meta.index == index;
    const Status used = on_answer(QueryAnswer{response.body, meta, index_reset, now});
    if (cancelled) return;
    if (!used.ok()) {
      client->Observe(path, "malformed", started, issued_blocking);
      return Fail(Named(used, client->Describe(path)), std::nullopt);
    }
    client->Observe(path, "ok", started, issued_blocking);
    client->NoteSuccess();
    failures = 0;
    // docs/consul-semantics.md rule 1 again: after a reset, read afresh
    // (index 0) before blocking.
    index = index_reset ? 0 : meta.index;

    // docs/consul-semantics.md rule 4: an early answer with the same index
    // (a watch on a missing service wakes on any catalog write) is rate
    // limited.
    const auto& options = client->options();
    const bool early = now - started < options.wait / 2;
    std::chrono::milliseconds delay{0};
    if (unchanged && early) {
      const double interval = static_cast<double>(options.same_index_interval.count());
      tokens = std::min(
          2.0, tokens + std::chrono::duration<double, std::milli>(now - tokens_at).count() /
                            std::max(interval, 1.0));
      tokens_at = now;
      // The token is taken now even when it is not there yet: the debt is
      // the wait, so the bucket cannot be drained twice by one refill.
      tokens -= 1;
      if (tokens < 0)
        delay = std::chrono::milliseconds(static_cast<std::int64_t>(-tokens * interval));
    }
    Schedule(delay);
  }

  // The index the request in flight carried (0: a plain read).
  std::uint64_t AskedIndex() const { return issued_blocking ? index : 0; }

  void Fail(const Status& error, std::optional<std::chrono::milliseconds> retry_after) {
    ++failures;
    client->NoteFailure(error);
    on_error(error);
    if (cancelled) return;
    const auto& options = client->options();
    auto delay = ExponentialBackoff(failures, options.backoff_initial, options.backoff_max, rng);
    if (retry_after) delay = std::max(delay, *retry_after);
    spdlog::debug("consul GET {}: failure {} in a row, retrying in {} ms", path, failures,
                  delay.count());
    Schedule(delay);
  }

  void FinishRetiring() {
    if (timer) client->loop().CancelTimer(*timer);
    timer.reset();
    cancelled = true;
    client->loop().Post(std::exchange(retired, nullptr));
  }

  void Schedule(std::chrono::milliseconds delay) {
    if (retired) return FinishRetiring();
    if (delay.count() <= 0) return Issue();
    std::weak_ptr<State> weak = weak_from_this();
    // The delay was decided on the client's clock; the loop's timers wait
    // in real time.
    timer = client->loop().RunAt(std::chrono::steady_clock::now() + delay, [weak] {
      if (auto self = weak.lock()) self->Issue();
    });
  }

  void Cancel() {
    cancelled = true;
    if (transfer) client->loop().CancelTransfer(*transfer);
    if (timer) client->loop().CancelTimer(*timer);
    transfer.reset();
    timer.reset();
  }
};

void BlockingQuery::Retire(std::function<void()> retired) {
  state_->retired = std::move(retired);
  if (state_->cancelled) {
    state_->client->loop().Post(std::exchange(state_->retired, nullptr));
  } else if (!state_->transfer) {
    state_->FinishRetiring();  // waiting for a timer: nothing holds a connection
  }
}

BlockingQuery::~BlockingQuery() {
  state_->client->loop().RunAndWait([state = state_] { state->Cancel(); });
}

StatusOr<std::unique_ptr<ConsulClient>> ConsulClient::Create(ConsulClientOptions options,
                                                             RequestObserver* observer,
                                                             const Clock& clock) {
  const std::string& address = options.address;
  if (!address.starts_with("http://") && !address.starts_with("https://")) {
    return Status::InvalidArgument("consul address must be http(s)://host:port, got \"" +
                                   RedactUrl(address) + "\"");
  }
  while (options.address.ends_with('/')) options.address.pop_back();
  return std::make_unique<ConsulClient>(std::move(options), observer, clock);
}

const Clock& ConsulClient::SystemTime() {
  static const SystemClock clock;
  return clock;
}

ConsulClient::ConsulClient(ConsulClientOptions options, RequestObserver* observer,
                           const Clock& clock)
    : options_(std::move(options)),
      observer_(observer),
      clock_(clock),
      loop_(std::make_unique<EventLoop>(options_.max_connections)),
      token_(options_.token) {}

ConsulClient::~ConsulClient() = default;

HttpRequest ConsulClient::BuildRequest(
    std::string_view path, const std::vector<std::pair<std::string, std::string>>& params,
    std::uint64_t index, const RequestScope& scope) const {
  HttpRequest request;
  std::string url = options_.address;
  url += path;
  char separator = '?';
  auto add = [&](std::string_view name, std::string_view value) {
    url += separator;
    url += name;
    if (!value.empty()) {
      url += '=';
      url += PercentEncode(value);
    }
    separator = '&';
  };
  for (const auto& [name, value] : params) add(name, value);
  if (!scope.datacenter.empty()) {
    add("dc", scope.datacenter);
  } else if (!options_.datacenter.empty()) {
    add("dc", options_.datacenter);
  }
  if (!scope.peer.empty()) add("peer", scope.peer);
  if (!scope.ns.empty()) add("ns", scope.ns);
  if (!scope.partition.empty()) add("partition", scope.partition);
  if (options_.stale) add("stale", "");
  if (index > 0) {
    add("index", std::to_string(index));
    add("wait", WaitParam(options_.wait));
    // Consul adds up to wait/16 of jitter; past that the request hangs.
    request.timeout = options_.wait + options_.wait / 16 + options_.timeout_margin;
  } else {
    request.timeout = options_.read_timeout;
  }
  request.url = std::move(url);
  request.max_body_bytes = options_.max_answer_bytes;
  // The checks table is the largest answer and is asked for on every health
  // change anywhere: compressing megabytes each time costs Consul more CPU
  // (tens of ms at 10,000 checks) than sending them plainly costs the link.
  request.accept_gzip = !path.starts_with("/v1/health/state/");
  request.connect_timeout = options_.connect_timeout;
  request.tls = options_.tls;
  if (!token_.empty()) request.headers.push_back("X-Consul-Token: " + token_);
  return request;
}

void ConsulClient::ReloadToken() {
  if (options_.token_file.empty()) return;
  loop_->Post([this] { ReReadTokenFile("on reload"); });
}

void ConsulClient::ReReadTokenFile(std::string_view why) {
  std::ifstream in(options_.token_file);
  std::stringstream content;
  content << in.rdbuf();
  std::string token = content.str();
  token.erase(token.find_last_not_of(" \t\r\n") + 1);
  token.erase(0, token.find_first_not_of(" \t\r\n"));
  if (!in || token.empty()) {
    spdlog::warn("consul.token_file {}: cannot read a token from it {}; the current token stays",
                 options_.token_file, why);
    return;
  }
  if (token == token_) return;
  token_ = std::move(token);
  spdlog::info("consul.token_file {} read again {}: the token changed", options_.token_file, why);
}

void ConsulClient::NoteRefusal(const HttpResponse& response) {
  // A rotated token (Vault, a projected Secret) shows as 403 with the old
  // one: the file may already hold the new one.
  if (response.transport.ok() && response.status == 403 && !options_.token_file.empty()) {
    const SteadyTime now = clock_.Now();
    if (!token_read_at_ || now - *token_read_at_ >= std::chrono::seconds(1)) {
      token_read_at_ = now;
      ReReadTokenFile("after an HTTP 403");
    }
  }
  if (!IsRefusal(response)) {
    if (response.transport.ok() && refusal_streak_) {
      refusal_streak_ = false;
      spdlog::info("Consul accepts the bridge's connections again");
    }
    return;
  }
  const bool too_many = !response.connection_reset;
  if (observer_ != nullptr) {
    observer_->OnRefused(too_many ? "too_many_connections" : "connection_reset");
  }
  if (refusal_streak_) return;
  refusal_streak_ = true;
  // Once per streak: every query hits the same wall, and each one backs off.
  spdlog::warn(
      "Consul {} a connection of the bridge ({}); the bridge holds at most {} "
      "(consul.max_connections). Another client on this IP may use the rest of "
      "Consul's per-IP limit: raise limits.http_max_conns_per_client on the Consul agent or "
      "lower consul.max_connections. Backing off and retrying",
      too_many ? "refused" : "reset",
      too_many ? "HTTP 429, too many connections from this IP" : response.transport.ToString(),
      options_.max_connections);
}

Status ConsulClient::Failed(const Status& error, std::string_view path) {
  Status named = Named(error, Describe(path));
  NoteFailure(named);
  return named;
}

void ConsulClient::NoteFailure(const Status& error) {
  const SteadyTime now = clock_.Now();
  if (!failing_since_) {
    failing_since_ = now;
    reminded_at_ = now;
    return;
  }
  if (now - reminded_at_ < options_.outage_reminder_interval) return;
  reminded_at_ = now;
  spdlog::warn(
      "Consul requests still fail after {} s: {}; each is retried within {} ms "
      "(consul.retry.max_backoff)",
      std::chrono::duration_cast<std::chrono::seconds>(now - *failing_since_).count(),
      error.ToString(), options_.backoff_max.count());
}

std::string ConsulClient::Describe(std::string_view path) const {
  // The query string (filters, the index) is left out: the path names the
  // endpoint, and RedactUrl() hides the address's user info.
  return "GET " + RedactUrl(options_.address + std::string(path.substr(0, path.find('?'))));
}

void ConsulClient::LogRequest(std::string_view path, std::uint64_t sent_index,
                              const HttpResponse& response, SteadyTime started) const {
  // Formatted only when debug is on: this runs for every answer.
  if (!spdlog::should_log(spdlog::level::debug)) return;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - started);
  const auto index = response.headers.find("x-consul-index");
  spdlog::debug("consul GET {} (index {}): {}, index {}, {} ms", path, sent_index,
                OutcomeText(response), index == response.headers.end() ? "-" : index->second,
                took.count());
}

void ConsulClient::Observe(std::string_view path, std::string_view outcome, SteadyTime started,
                           bool blocking) {
  if (observer_ == nullptr) return;
  observer_->OnRequestDone(EndpointLabel(path), outcome, clock_.Now() - started, blocking);
}

std::unique_ptr<BlockingQuery> ConsulClient::Watch(
    std::string path, std::vector<std::pair<std::string, std::string>> params,
    AnswerHandler on_answer, ErrorHandler on_error, RequestScope scope) {
  auto state = std::make_shared<BlockingQuery::State>();
  state->client = this;
  state->path = std::move(path);
  state->params = std::move(params);
  state->scope = std::move(scope);
  state->on_answer = std::move(on_answer);
  state->on_error = std::move(on_error);
  state->tokens_at = clock_.Now();
  if (loop_->InLoopThread()) {
    state->Issue();
  } else {
    loop_->Post([weak = std::weak_ptr<BlockingQuery::State>(state)] {
      if (auto self = weak.lock()) self->Issue();
    });
  }
  return std::make_unique<BlockingQuery>(std::move(state));
}

void ConsulClient::Get(std::string path, std::function<void(StatusOr<std::string>)> done,
                       RequestScope scope) {
  auto start = [this, path = std::move(path), done = std::move(done),
                scope = std::move(scope)]() mutable {
    const SteadyTime started = clock_.Now();
    HttpRequest request = BuildRequest(path, {}, 0, scope);
    loop_->StartGet(std::move(request),
                    [this, path, started, done = std::move(done)](HttpResponse response) {
                      Observe(path, OutcomeOf(response), started, false);
                      LogRequest(path, 0, response, started);
                      NoteRefusal(response);
                      if (!response.transport.ok()) {
                        return done(Failed(response.transport, path));
                      }
                      if (response.status < 200 || response.status > 299) {
                        return done(Failed(StatusFromHttp(response.status, response.body), path));
                      }
                      NoteSuccess();
                      done(std::move(response.body));
                    });
  };
  if (loop_->InLoopThread()) {
    start();
  } else {
    loop_->Post(std::move(start));
  }
}

void ConsulClient::Read(std::string path, std::function<void(StatusOr<ReadAnswer>)> done,
                        RequestScope scope) {
  auto start = [this, path = std::move(path), done = std::move(done),
                scope = std::move(scope)]() mutable {
    const SteadyTime started = clock_.Now();
    HttpRequest request = BuildRequest(path, {}, 0, scope);
    loop_->StartGet(std::move(request),
                    [this, path, started, done = std::move(done)](HttpResponse response) {
                      NoteRefusal(response);
                      LogRequest(path, 0, response, started);
                      if (!response.transport.ok()) {
                        Observe(path, OutcomeOf(response), started, false);
                        return done(Failed(response.transport, path));
                      }
                      if (response.status < 200 || response.status > 299) {
                        Observe(path, OutcomeOf(response), started, false);
                        return done(Failed(StatusFromHttp(response.status, response.body), path));
                      }
                      auto meta = ParseQueryMeta(response.headers);
                      Observe(path, meta.ok() ? "ok" : "malformed", started, false);
                      if (!meta.ok()) return done(Failed(meta.status(), path));
                      NoteSuccess();
                      done(ReadAnswer{std::move(response.body), *meta, clock_.Now()});
                    });
  };
  if (loop_->InLoopThread()) {
    start();
  } else {
    loop_->Post(std::move(start));
  }
}

}  // namespace hb
