#include "tests/support/consul/consul_test_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <random>
#include <set>

#include "config/duration.h"
#include "tests/support/consul/check_filter.h"
#include "tests/support/consul/keep_alive_server.h"
#include "tests/support/http/loopback_server.h"

namespace hb::test_support {
namespace {

using nlohmann::json;

std::uint64_t IndexParam(const httplib::Request& request) {
  if (!request.has_param("index")) return 0;
  return std::strtoull(request.get_param_value("index").c_str(), nullptr, 10);
}

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

// host:port split for probes ("127.0.0.1:8080", "[::1]:80").
std::pair<std::string, int> SplitHostPort(const std::string& target) {
  const std::size_t colon = target.rfind(':');
  if (colon == std::string::npos) return {target, 0};
  int port = 0;
  const char* end = target.data() + target.size();
  const auto [stop, error] = std::from_chars(target.data() + colon + 1, end, port);
  if (error != std::errc() || stop != end) port = 0;  // refused by the probe as closed
  return {target.substr(0, colon), port};
}

bool TcpConnects(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return false;
  bool connected = false;
  for (addrinfo* at = found; at != nullptr && !connected; at = at->ai_next) {
    const int fd = socket(at->ai_family, at->ai_socktype | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (connect(fd, at->ai_addr, at->ai_addrlen) == 0) {
      connected = true;
    } else if (errno == EINPROGRESS) {
      pollfd poll_fd{fd, POLLOUT, 0};
      int error = 0;
      socklen_t length = sizeof(error);
      connected = poll(&poll_fd, 1, static_cast<int>(timeout.count())) == 1 &&
                  getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
    }
    close(fd);
  }
  freeaddrinfo(found);
  return connected;
}

}  // namespace

ConsulTestServer::ConsulTestServer(ConsulTestServerOptions options)
    : options_(std::move(options)),
      limiter_(options_.max_conns_per_client),
      registry_(ScopeRegistry::Settings{options_.datacenter, options_.node, options_.host,
                                        options_.check_update_interval, options_.enterprise}),
      catalog_(registry_.Local()),
      sessions_(options_.sessions) {
  acl_token_ = options_.acl_token;
  catalog_.EnsureNode(options_.node, options_.host);
  background_ = std::thread([this] { Background(); });
}

ConsulTestServer::~ConsulTestServer() {
  Stop();
  {
    WriterMutexLock lock(&mutex_);
    background_stop_ = true;
  }
  background_wake_.SignalAll();
  background_.join();
  if (refuse_.joinable()) refuse_.join();
}

int ConsulTestServer::Start() {
  std::lock_guard server_lock(server_mutex_);
  if (server_) return port_;
  {
    WriterMutexLock lock(&mutex_);
    stopping_ = false;
  }
  server_ = std::make_unique<KeepAliveServer>(limiter_);
  server_->set_keep_alive_max_count(1000000);
  server_->set_keep_alive_timeout(600);
  // Go, and so Consul, sets TCP_NODELAY; without it Nagle holds the body
  // behind the headers until the client's delayed ACK, 40 ms later.
  server_->set_tcp_nodelay(true);
  ServeRoutes();
  const int wanted = port_ != 0 ? port_.load() : options_.port;
  port_ = BindWithDeepBacklog(*server_, options_.host, wanted);
  if (port_ == 0) {
    server_.reset();
    return 0;
  }
  listener_ = ListenInBackground(*server_);
  return port_;
}

void ConsulTestServer::Stop() {
  std::lock_guard server_lock(server_mutex_);
  if (!server_) return;
  {
    WriterMutexLock lock(&mutex_);
    stopping_ = true;
    ++generation_;
    WakeAllLocked();
  }
  server_->Stop();
  listener_.join();
  server_.reset();
}

void ConsulTestServer::Notify() {
  WriterMutexLock lock(&mutex_);
  WakeChangedLocked();
}

void ConsulTestServer::WakeIfMoved(WatchedEndpoint& endpoint) {
  const std::uint64_t index = endpoint.index_of();
  if (index == endpoint.notified_index) return;
  endpoint.notified_index = index;
  endpoint.changed.SignalAll();
}

void ConsulTestServer::WakeChangedLocked() {
  // A session bound to a check that turned critical (or went) is
  // invalidated at once, before anyone reads: that is what makes a node's
  // death free the locks its sessions held.
  const auto now = std::chrono::steady_clock::now();
  for (const std::string& id : sessions_.WithFailedChecks(catalog_)) {
    InvalidateSessionLocked(id, now);
  }
  if (kv_.TableIndex() != woken_kv_index_ || sessions_.Index() != woken_sessions_index_) {
    woken_kv_index_ = kv_.TableIndex();
    woken_sessions_index_ = sessions_.Index();
    for (auto& [key, endpoint] : watched_) {
      if (key.starts_with("kv") || key.starts_with("session")) WakeIfMoved(*endpoint);
    }
  }
  for (auto& [key, entry] : registry_.entries()) WakeScopeLocked(entry);
  // Readers of every namespace at once (ns=*) follow several catalogs;
  // their keys start with '*' and are few.
  for (auto it = watched_.lower_bound("*"); it != watched_.end() && it->first.starts_with('*');
       ++it) {
    WakeIfMoved(*it->second);
  }
}

void ConsulTestServer::WakeScopeLocked(ScopeRegistry::Entry& entry) {
  // Watch keys of a scope start with its prefix ("" for the local default
  // scope, whose keys are plain).
  const std::string& prefix = entry.key;
  const std::set<std::string> touched = entry.catalog->TakeTouchedServices();
  const std::uint64_t services_index = entry.catalog->CatalogServicesIndex();
  if (services_index != entry.woken_services_index) {
    // Services came, went or changed tags: the catalog watch and every
    // unknown service's watch follow that index, so look at them all.
    entry.woken_services_index = services_index;
    // Plain keys start with a lowercase letter, after every '*' and '@'
    // key of the other scopes: the local scope skips those.
    for (auto it = watched_.lower_bound(prefix.empty() ? std::string("a") : prefix);
         it != watched_.end() && it->first.starts_with(prefix); ++it) {
      WakeIfMoved(*it->second);
    }
    return;
  }
  // A health write: only the touched services' watches and the checks
  // watch can have moved. Scanning every watch on each write cost ~40% of
  // a core at 5,000 watched services, under the lock every read needs.
  if (auto checks = watched_.find(prefix + "checks"); checks != watched_.end()) {
    WakeIfMoved(*checks->second);
  }
  for (const std::string& name : touched) {
    if (auto health = watched_.find(prefix + "health/" + name); health != watched_.end()) {
      WakeIfMoved(*health->second);
    }
  }
}

void ConsulTestServer::InvalidateSessionLocked(const std::string& id, TestTime now) {
  if (auto session = sessions_.Remove(id, catalog_)) kv_.InvalidateSession(*session, catalog_, now);
}

void ConsulTestServer::WakeAllLocked() {
  for (auto& [key, endpoint] : watched_) endpoint->changed.SignalAll();
}

std::string ConsulTestServer::RegisterService(const json& registration) {
  std::string error;
  {
    WriterMutexLock lock(&mutex_);
    error = catalog_.RegisterService(options_.node, registration, std::chrono::steady_clock::now());
  }
  Notify();
  return error;
}

bool ConsulTestServer::DeregisterService(const std::string& service_id) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = catalog_.DeregisterService(options_.node, service_id);
  }
  Notify();
  return found;
}

bool ConsulTestServer::UpdateCheck(const std::string& check_id, const std::string& status,
                                   const std::string& output) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = catalog_.UpdateCheck(options_.node, check_id, status, output,
                                 std::chrono::steady_clock::now());
  }
  Notify();
  return found;
}

bool ConsulTestServer::SetServiceMaintenance(const std::string& service_id, bool enable,
                                             const std::string& reason) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = catalog_.SetServiceMaintenance(options_.node, service_id, enable, reason,
                                           std::chrono::steady_clock::now());
  }
  Notify();
  return found;
}

void ConsulTestServer::SetNodeMaintenance(bool enable, const std::string& reason) {
  {
    WriterMutexLock lock(&mutex_);
    catalog_.SetNodeMaintenance(options_.node, enable, reason, std::chrono::steady_clock::now());
  }
  Notify();
}

bool ConsulTestServer::SetSerfHealth(const std::string& node, const std::string& status) {
  bool found;
  {
    WriterMutexLock lock(&mutex_);
    found = catalog_.SetNodeCheck(
        node, "serfHealth", status,
        status == "passing" ? "Agent alive and reachable" : "Agent not live or unreachable",
        std::chrono::steady_clock::now());
  }
  Notify();
  return found;
}

std::optional<std::chrono::steady_clock::time_point> ConsulTestServer::CriticalSince(
    const std::string& check_id) {
  WriterMutexLock lock(&mutex_);
  const TestCheck* check = catalog_.FindCheck(options_.node, check_id);
  return check == nullptr ? std::nullopt : check->critical_since;
}

std::uint64_t ConsulTestServer::Index() {
  WriterMutexLock lock(&mutex_);
  return catalog_.index();
}

void ConsulTestServer::FailNext(int count, int status, std::string body, std::string prefix) {
  WriterMutexLock lock(&mutex_);
  fail_count_ = count;
  fail_status_ = status;
  fail_body_ = std::move(body);
  fail_prefix_ = std::move(prefix);
}

void ConsulTestServer::SetAclToken(std::string token) {
  WriterMutexLock lock(&mutex_);
  acl_token_ = std::move(token);
}

void ConsulTestServer::SetLatency(std::chrono::milliseconds latency) {
  WriterMutexLock lock(&mutex_);
  latency_ = latency;
}

void ConsulTestServer::MalformedNext(int count) {
  WriterMutexLock lock(&mutex_);
  malformed_count_ = count;
}

void ConsulTestServer::DropNext(int count) {
  WriterMutexLock lock(&mutex_);
  drop_count_ = count;
}

void ConsulTestServer::ResetIndex(std::uint64_t to) {
  {
    WriterMutexLock lock(&mutex_);
    // The local datacenter's Raft log: every scope in it.
    for (TestCatalog* catalog : registry_.CatalogsOf(options_.datacenter)) catalog->ResetIndex(to);
    sessions_.ResetIndex(to);
    kv_.ResetIndex(to);
    // A restore replaces the state store, which wakes every blocking query.
    ++generation_;
    WakeAllLocked();
  }
}

void ConsulTestServer::SetKnownLeader(bool known) {
  WriterMutexLock lock(&mutex_);
  known_leader_ = known;
}

void ConsulTestServer::RefuseFor(std::chrono::milliseconds duration) {
  Stop();
  if (refuse_.joinable()) refuse_.join();
  refuse_ = std::thread([this, duration] {
    std::this_thread::sleep_for(duration);
    Start();
  });
}

std::map<std::string, int> ConsulTestServer::RequestCounts() {
  WriterMutexLock lock(&mutex_);
  return request_counts_;
}

std::size_t ConsulTestServer::BlockedQueries() {
  WriterMutexLock lock(&mutex_);
  std::size_t blocked = 0;
  // A waiter is counted and parked under one hold of the lock.
  for (const auto& [endpoint, watched] : watched_) {
    blocked += static_cast<std::size_t>(watched->waiters);
  }
  return blocked;
}

std::map<std::string, std::string> ConsulTestServer::KvHolders(const std::string& prefix) {
  ReaderMutexLock lock(&mutex_);
  std::map<std::string, std::string> holders;
  for (const KvEntry* entry : kv_.List(prefix)) holders.emplace(entry->key, entry->session);
  return holders;
}

void ConsulTestServer::Background() {
  auto next_reap = std::chrono::steady_clock::now() + options_.reap_interval;
  WriterMutexLock lock(&mutex_);
  while (!background_stop_) {
    const auto now = std::chrono::steady_clock::now();
    bool changed = false;
    for (const std::string& id : sessions_.Expired(now)) {
      InvalidateSessionLocked(id, now);
      changed = true;
    }
    const bool reap = now >= next_reap;
    for (auto& [key, entry] : registry_.entries()) {
      TestCatalog& catalog = *entry.catalog;
      changed = catalog.ExpireTtls(now) || changed;
      changed = catalog.WriteDeferredOutputs(now) || changed;
      if (reap) changed = catalog.Reap(now, options_.min_deregister_critical_after) || changed;
    }
    if (reap) next_reap = now + options_.reap_interval;
    auto probes = catalog_.DueProbes(now);
    if (changed) WakeChangedLocked();
    if (!probes.empty()) {
      lock.Unlock();
      RunProbes(probes);
      lock.Lock();
    }
    background_wake_.WaitUntil(&mutex_,
                               std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  }
}

void ConsulTestServer::RunProbes(const std::vector<TestCatalog::Probe>& probes) {
  for (const auto& probe : probes) {
    std::string status = "critical";
    std::string output;
    if (probe.http) {
      // http://host:port/path
      const std::string rest = probe.target.substr(probe.target.find("://") + 3);
      const std::string authority = rest.substr(0, rest.find('/'));
      const std::string path =
          rest.find('/') == std::string::npos ? "/" : rest.substr(rest.find('/'));
      auto [host, port] = SplitHostPort(authority);
      if (!IsLoopbackHost(host)) {
        output = "test server probes loopback targets only, not " + host;
      } else {
        httplib::Client client(host, port);
        client.set_connection_timeout(probe.timeout);
        client.set_read_timeout(probe.timeout);
        auto result = client.Get(path);
        if (!result) {
          output = "HTTP GET " + probe.target + ": " + httplib::to_string(result.error());
        } else {
          status = result->status / 100 == 2 ? "passing"
                   : result->status == 429   ? "warning"
                                             : "critical";
          output = "HTTP GET " + probe.target + ": " + std::to_string(result->status);
        }
      }
    } else {
      auto [host, port] = SplitHostPort(probe.target);
      if (!IsLoopbackHost(host)) {
        output = "test server probes loopback targets only, not " + host;
      } else if (TcpConnects(host, port, probe.timeout)) {
        status = "passing";
        output = "TCP connect " + probe.target + ": Success";
      } else {
        output = "dial tcp " + probe.target + ": connect: connection refused";
      }
    }
    WriterMutexLock lock(&mutex_);
    // Probed checks live on the local node (agent-registered).
    catalog_.UpdateCheck(options_.node, probe.check_id, status, output,
                         std::chrono::steady_clock::now());
    WakeChangedLocked();
  }
}

void ConsulTestServer::ServeRoutes() {
  httplib::Server& server = *server_;
  using httplib::Request;
  using httplib::Response;

  server.set_pre_routing_handler([this](const Request& request, Response& response) {
    std::chrono::milliseconds latency{0};
    {
      WriterMutexLock lock(&mutex_);
      ++request_counts_[request.path];
      // Filtered reads also count under their filter, so a test can tell
      // them from reads of the whole answer.
      if (request.has_param("filter")) {
        ++request_counts_[request.path + "?filter=" + request.get_param_value("filter")];
      }
      if (request.path.starts_with("/_test/")) return httplib::Server::HandlerResponse::Unhandled;
      latency = latency_;
      if (!acl_token_.empty()) {
        std::string token = request.get_header_value("X-Consul-Token");
        const std::string bearer = request.get_header_value("Authorization");
        if (token.empty() && bearer.starts_with("Bearer ")) token = bearer.substr(7);
        if (token != acl_token_) {
          response.status = 403;
          response.set_content(token.empty() ? "Permission denied" : "ACL not found", "text/plain");
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (fail_count_ > 0 && request.path.starts_with(fail_prefix_)) {
        --fail_count_;
        response.status = fail_status_;
        response.set_content(fail_body_, "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (drop_count_ > 0 && request.method == "GET" && request.path.starts_with("/v1/")) {
        --drop_count_;
        // A provider that gives up closes the connection after the headers.
        response.set_chunked_content_provider(
            "application/json", [](std::size_t, httplib::DataSink&) { return false; });
        return httplib::Server::HandlerResponse::Handled;
      }
      if (auto refused = RefuseScopeLocked(request)) {
        response.status = refused->status;
        response.set_content(refused->body, "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (latency.count() > 0) std::this_thread::sleep_for(latency);
    return httplib::Server::HandlerResponse::Unhandled;
  });

  ServeHealthRoutes(server);
  ServeCatalogRoutes(server);
  ServeAgentRoutes(server);
  ServeStatusRoutes(server);
  ServeTestFaultRoutes(server);
  ServeSessionRoutes(server);
  ServeKvRoutes(server);
  ServeDatacenterRoutes(server);
  ServePeeringRoutes(server);
  ServeTenancyRoutes(server);
}

void ConsulTestServer::ServeBlocking(const httplib::Request& request, httplib::Response& response,
                                     const std::string& endpoint,
                                     const std::function<std::uint64_t()>& watch_index,
                                     const std::function<Answer()>& answer, bool may_be_malformed,
                                     const std::function<std::uint64_t()>& header_index) {
  WriterMutexLock lock(&mutex_);
  const std::uint64_t wanted = IndexParam(request);
  if (wanted > 0) {
    auto wait = std::chrono::milliseconds(std::chrono::minutes(5));
    if (request.has_param("wait")) {
      wait = ParseDuration(request.get_param_value("wait")).value_or(wait);
    }
    wait = std::min(wait, options_.max_wait);
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto jitter = std::chrono::milliseconds(
        wait.count() >= 16
            ? static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(wait.count() / 16))
            : 0);
    const std::uint64_t generation = generation_;
    const std::string datacenter = request.get_param_value("dc");
    auto& watched = watched_[endpoint];
    if (!watched) {
      watched = std::make_unique<WatchedEndpoint>();
      watched->index_of = watch_index;
      watched->notified_index = watch_index();
    }
    ++watched->waiters;
    const auto deadline = std::chrono::steady_clock::now() + wait + jitter;
    while (!(watch_index() > wanted || generation_ != generation || stopping_ ||
             DatacenterErrorLocked(datacenter)) &&
           watched->changed.WaitUntil(&mutex_, deadline)) {
    }
    if (--watched->waiters == 0) watched_.erase(endpoint);
    // A datacenter cut off while the query was held: Consul's forwarded
    // RPC fails, and the client gets the error instead of data.
    if (auto error = DatacenterErrorLocked(datacenter)) {
      response.status = 500;
      response.set_content(*error, "text/plain");
      return;
    }
  }
  const bool malformed = may_be_malformed && malformed_count_ > 0;
  if (malformed) --malformed_count_;
  const bool known_leader = known_leader_;
  lock.Unlock();
  Answer served;
  std::uint64_t index = 0;
  {
    // The answer and its index from one state, without holding up other
    // reads: Consul serves reads from a snapshot, and the whole checks
    // table is 32 MB at 100,000 instances.
    ReaderMutexLock read(&mutex_);
    served = answer();
    index = header_index ? header_index() : watch_index();
  }
  if (malformed) served.body = R"([{"Node": {"Node": 42}, "Service": "broken")";
  response.status = served.status;
  response.set_header("X-Consul-Index", std::to_string(index));
  response.set_header("X-Consul-KnownLeader", known_leader ? "true" : "false");
  response.set_header("X-Consul-LastContact", "0");
  response.set_content(served.body, "application/json");
}

bool ConsulTestServer::ReadJsonBody(const httplib::Request& request, httplib::Response& response,
                                    json& out) {
  out = json::parse(request.body, nullptr, false);
  if (out.is_discarded()) {
    response.status = 400;
    response.set_content("Request decode failed: invalid JSON", "text/plain");
    return false;
  }
  return true;
}

void ConsulTestServer::FinishWrite(httplib::Response& response, const std::string& error,
                                   int status) {
  if (!error.empty()) {
    response.status = status;
    response.set_content(error, "text/plain");
  }
  Notify();
}

}  // namespace hb::test_support
