#include "tests/support/consul/hostile_consul_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace hb::test_support {
namespace {

using nlohmann::json;

constexpr std::size_t kBombInflatedBytes = std::size_t{400} << 20;
constexpr std::size_t kHugeHeaderBytes = std::size_t{1} << 20;
constexpr int kManyHeaders = 5000;
constexpr int kNestingDepth = 100000;
constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::string_view kBadUtf8Marker = "@@not-utf8@@";
constexpr std::chrono::minutes kMaxWait{10};

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const std::string hex(text.substr(i + 1, 2));
      char* end = nullptr;
      const long value = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out.push_back(static_cast<char>(value));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i] == '+' ? ' ' : text[i]);
  }
  return out;
}

// "5m", "30s", "100ms" as Consul's ?wait= takes them; capped at Consul's
// ten minutes.
std::chrono::milliseconds ParseWait(const std::string& text) {
  if (text.empty()) return std::chrono::minutes(5);
  char* end = nullptr;
  const long long number = std::strtoll(text.c_str(), &end, 10);
  const std::string unit(end);
  std::chrono::milliseconds wait{0};
  if (unit == "ms") wait = std::chrono::milliseconds(number);
  if (unit == "s") wait = std::chrono::seconds(number);
  if (unit == "m") wait = std::chrono::minutes(number);
  return std::clamp<std::chrono::milliseconds>(wait, std::chrono::milliseconds(1), kMaxWait);
}

// Writes all of `data` unless the peer closes or `stopping` turns true.
bool WriteAll(int fd, std::string_view data, const std::atomic<bool>& stopping) {
  while (!data.empty()) {
    if (stopping) return false;
    pollfd out{fd, POLLOUT, 0};
    if (::poll(&out, 1, 200) <= 0) continue;
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

std::string Gzip(std::size_t leading_spaces, std::string_view tail) {
  z_stream stream{};
  if (deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out;
  char buffer[64 * 1024];
  auto pump = [&](std::string_view input, int flush) {
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream.avail_in = static_cast<uInt>(input.size());
    do {
      stream.next_out = reinterpret_cast<Bytef*>(buffer);
      stream.avail_out = sizeof(buffer);
      deflate(&stream, flush);
      out.append(buffer, sizeof(buffer) - stream.avail_out);
    } while (stream.avail_out == 0);
  };
  const std::string spaces(std::size_t{1} << 20, ' ');
  for (std::size_t done = 0; done < leading_spaces; done += spaces.size()) {
    pump(std::string_view(spaces).substr(0, std::min(spaces.size(), leading_spaces - done)),
         Z_NO_FLUSH);
  }
  pump(tail, Z_FINISH);
  deflateEnd(&stream);
  return out;
}

}  // namespace

std::string HostileConsulPeer::ServiceNameFor(const std::string& name, Attack attack) {
  return attack == Attack::kControlBytes ? name + std::string(kControlText) : name;
}

HostileConsulPeer::HostileConsulPeer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int yes = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listen_fd_, SOMAXCONN) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HostileConsulPeer::~HostileConsulPeer() {
  std::vector<std::thread> connections;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (const int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }
  stop_flag_ = true;
  written_.notify_all();
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    connections.swap(connections_);
  }
  for (auto& thread : connections) thread.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void HostileConsulPeer::AddService(const std::string& name, Attack attack, int instances) {
  std::lock_guard lock(mutex_);
  Service service;
  service.catalog_name = ServiceNameFor(name, attack);
  service.attack = attack;
  service.instances = instances;
  service.modify_index = ++index_;
  services_[service.catalog_name] = service;
  written_.notify_all();
}

void HostileConsulPeer::SetStatus(const std::string& name, const std::string& status) {
  std::lock_guard lock(mutex_);
  for (auto& [catalog_name, service] : services_) {
    if (catalog_name != name && catalog_name != ServiceNameFor(name, Attack::kControlBytes)) {
      continue;
    }
    service.status = status;
    service.modify_index = ++index_;
  }
  written_.notify_all();
}

void HostileConsulPeer::AttackEndpoint(const std::string& path_prefix, Attack attack) {
  std::lock_guard lock(mutex_);
  endpoint_attacks_[path_prefix] = attack;
}

std::size_t HostileConsulPeer::Requests(const std::string& path_prefix) const {
  std::lock_guard lock(mutex_);
  std::size_t count = 0;
  for (const auto& [path, n] : requests_) {
    if (path.starts_with(path_prefix)) count += n;
  }
  return count;
}

std::size_t HostileConsulPeer::MaxOpenConnections() const {
  std::lock_guard lock(mutex_);
  return max_open_;
}

void HostileConsulPeer::AcceptLoop() {
  while (!stop_flag_) {
    pollfd in{listen_fd_, POLLIN, 0};
    if (::poll(&in, 1, 200) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_.insert(fd);
    max_open_ = std::max(max_open_, open_.size());
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void HostileConsulPeer::Serve(int fd) {
  std::string buffer;
  while (!stop_flag_) {
    std::size_t end;
    bool closed = false;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (stop_flag_ || buffer.size() > kMaxHead) {
        closed = true;
        break;
      }
      pollfd in{fd, POLLIN, 0};
      if (::poll(&in, 1, 200) <= 0) continue;
      char chunk[4096];
      const ssize_t got = ::recv(fd, chunk, sizeof(chunk), 0);
      if (got <= 0) {
        closed = true;
        break;
      }
      buffer.append(chunk, static_cast<std::size_t>(got));
    }
    if (closed) break;
    const std::string head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    // "GET /v1/health/service/web?index=12&wait=5m HTTP/1.1"
    const std::size_t first = head.find(' ');
    const std::size_t second = head.find(' ', first + 1);
    if (first == std::string::npos || second == std::string::npos) break;
    const std::string target = head.substr(first + 1, second - first - 1);
    Request request;
    const std::size_t question = target.find('?');
    request.path = PercentDecode(target.substr(0, question));
    if (question != std::string::npos) {
      std::string_view query = std::string_view(target).substr(question + 1);
      while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        const std::size_t equals = pair.find('=');
        request.query[PercentDecode(pair.substr(0, equals))] =
            equals == std::string_view::npos ? "" : PercentDecode(pair.substr(equals + 1));
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
      }
    }
    const Answer answer = AnswerFor(request);
    if (!Send(fd, answer)) break;
  }
  std::lock_guard lock(mutex_);
  open_.erase(fd);
  ::close(fd);
}

void HostileConsulPeer::HoldBlockingQuery(std::unique_lock<std::mutex>& lock,
                                          const Request& request) {
  const auto index = request.query.find("index");
  if (index == request.query.end()) return;
  const std::uint64_t asked = std::strtoull(index->second.c_str(), nullptr, 10);
  const auto wait = request.query.contains("wait") ? ParseWait(request.query.at("wait"))
                                                   : std::chrono::milliseconds(kMaxWait);
  written_.wait_for(lock, wait, [&] { return stopping_ || index_ > asked; });
}

HostileConsulPeer::Answer HostileConsulPeer::AnswerFor(const Request& request) {
  std::unique_lock lock(mutex_);
  ++requests_[request.path];
  Answer answer;
  for (const auto& [prefix, attack] : endpoint_attacks_) {
    if (request.path.starts_with(prefix)) answer.attack = attack;
  }
  if (request.path == "/v1/agent/self") {
    answer.body = json{{"Config", {{"Datacenter", "dc1"}, {"NodeName", "node-0"}}}}.dump();
  } else if (request.path == "/v1/catalog/services") {
    HoldBlockingQuery(lock, request);
    answer.body = CatalogBody();
  } else if (request.path.starts_with("/v1/health/state/")) {
    HoldBlockingQuery(lock, request);
    answer.body = HealthStateBody(request.query.contains("filter"));
  } else if (request.path.starts_with("/v1/health/service/")) {
    HoldBlockingQuery(lock, request);
    const std::string name = request.path.substr(std::string_view("/v1/health/service/").size());
    const auto it = services_.find(name);
    if (it == services_.end()) {
      answer.body = "[]";
    } else {
      answer.body = HealthServiceBody(it->second);
      if (answer.attack == Attack::kNone) answer.attack = it->second.attack;
    }
  } else {
    answer.status = 404;
    answer.body = "no such endpoint";
  }
  answer.index = index_;
  if (answer.attack == Attack::kDeepNesting && answer.body.size() >= 2) {
    // The answer's array or object keeps what it holds and gets, last, a
    // nest of arrays.
    const char close = answer.body.back();
    answer.body.pop_back();
    if (answer.body.size() > 1) answer.body += ',';
    if (close == '}') answer.body += "\"deep\":";
    answer.body += std::string(kNestingDepth, '[') + std::string(kNestingDepth, ']') + close;
  }
  return answer;
}

std::string HostileConsulPeer::CatalogBody() const {
  json catalog = json::object();
  for (const auto& [name, service] : services_) {
    const std::string tag = service.attack == Attack::kControlBytes
                                ? "tag" + std::string(kControlText)
                                : std::string("v1");
    catalog[name] = json::array({tag});
  }
  return catalog.dump();
}

std::string HostileConsulPeer::HealthServiceBody(const Service& service) const {
  const bool hostile_text = service.attack == Attack::kControlBytes;
  const bool bad_utf8 = service.attack == Attack::kInvalidUtf8;
  auto text = [&](const std::string& base) {
    if (hostile_text) return base + std::string(kControlText);
    if (bad_utf8) return base + std::string(kBadUtf8Marker);
    return base;
  };
  json entries = json::array();
  for (int i = 0; i < service.instances; ++i) {
    const std::string node = text("node-" + std::to_string(i));
    const std::string id = text(service.catalog_name + "-" + std::to_string(i));
    const json tags = json::array({text("tag")});
    const json meta = {{text("meta-key"), text("meta-value")}};
    const auto index = service.modify_index;
    entries.push_back(
        {{"Node",
          {{"ID", "40e4a748-2192-161a-0510-9bf59fe950b5"},
           {"Node", node},
           {"Address", "10.1.10.12"},
           {"Datacenter", "dc1"},
           {"Meta", json::object()},
           {"CreateIndex", index},
           {"ModifyIndex", index}}},
         {"Service",
          {{"ID", id},
           {"Service", service.catalog_name},
           {"Tags", tags},
           {"Address", text("10.1.10.12")},
           {"Meta", meta},
           {"Port", 8000 + i},
           {"EnableTagOverride", false},
           {"CreateIndex", index},
           {"ModifyIndex", index}}},
         {"Checks", json::array({{{"Node", node},
                                  {"CheckID", "serfHealth"},
                                  {"Name", "Serf Health Status"},
                                  {"Status", "passing"},
                                  {"Notes", ""},
                                  {"Output", "Agent alive and reachable"},
                                  {"ServiceID", ""},
                                  {"ServiceName", ""},
                                  {"ServiceTags", json::array()},
                                  {"CreateIndex", index},
                                  {"ModifyIndex", index}},
                                 {{"Node", node},
                                  {"CheckID", text("service:check")},
                                  {"Name", text("check name")},
                                  {"Status", service.status},
                                  {"Notes", ""},
                                  {"Output", text("HTTP GET http://10.1.10.12/health: 200 OK")},
                                  {"ServiceID", id},
                                  {"ServiceName", service.catalog_name},
                                  {"ServiceTags", tags},
                                  {"CreateIndex", index},
                                  {"ModifyIndex", index}}})}});
  }
  std::string body = entries.dump();
  if (bad_utf8) {
    // Bytes no UTF-8 encoder writes: a lone continuation byte, an overlong
    // NUL, a surrogate.
    const std::string bad = "\x80\xc0\x80\xed\xa0\x80\xff";
    for (auto at = body.find(kBadUtf8Marker); at != std::string::npos;
         at = body.find(kBadUtf8Marker, at)) {
      body.replace(at, kBadUtf8Marker.size(), bad);
    }
  }
  return body;
}

std::string HostileConsulPeer::HealthStateBody(bool not_passing_only) const {
  json rows = json::array();
  for (const auto& [name, service] : services_) {
    if (not_passing_only && service.status == "passing") continue;
    const std::string suffix =
        service.attack == Attack::kControlBytes ? std::string(kControlText) : std::string();
    for (int i = 0; i < service.instances; ++i) {
      const std::string id = service.catalog_name + "-" + std::to_string(i) + suffix;
      rows.push_back({{"Node", "node-" + std::to_string(i) + suffix},
                      {"CheckID", "service:check" + suffix},
                      {"Name", "check name" + suffix},
                      {"Status", service.status},
                      {"Notes", ""},
                      {"Output", "HTTP GET: " + service.status + suffix},
                      {"ServiceID", id},
                      {"ServiceName", service.catalog_name},
                      {"ServiceTags", json::array()},
                      {"CreateIndex", service.modify_index},
                      {"ModifyIndex", service.modify_index}});
    }
  }
  return rows.dump();
}

const std::string& HostileConsulPeer::Bomb(std::string_view inner) {
  std::lock_guard lock(bomb_mutex_);
  auto it = bombs_.find(inner);
  if (it == bombs_.end()) {
    it = bombs_.emplace(std::string(inner), Gzip(kBombInflatedBytes, inner)).first;
  }
  return it->second;
}

bool HostileConsulPeer::Send(int fd, const Answer& answer) {
  std::string index = std::to_string(answer.index);
  if (answer.attack == Attack::kGarbageIndex) index = "12abc";
  if (answer.attack == Attack::kNegativeIndex) index = "-1";
  std::string head = "HTTP/1.1 " + std::to_string(answer.status) +
                     (answer.status == 200 ? " OK" : " Not Found") +
                     "\r\nContent-Type: application/json\r\nVary: Accept-Encoding\r\n"
                     "X-Consul-Default-Acl-Policy: allow\r\nX-Consul-Effective-Consistency: "
                     "leader\r\nX-Consul-Index: " +
                     index + "\r\nX-Consul-Knownleader: true\r\nX-Consul-Lastcontact: 0\r\n";
  if (answer.attack == Attack::kHugeHeader) {
    head += "X-Hostile: " + std::string(kHugeHeaderBytes, 'a') + "\r\n";
  }
  if (answer.attack == Attack::kManyHeaders) {
    for (int i = 0; i < kManyHeaders; ++i) {
      head += "X-Hostile-" + std::to_string(i) + ": " + std::string(16, 'h') + "\r\n";
    }
  }
  if (answer.attack == Attack::kZstd) head += "Content-Encoding: zstd\r\n";
  const std::string* body = &answer.body;
  if (answer.attack == Attack::kGzipBomb) {
    head += "Content-Encoding: gzip\r\n";
    body = &Bomb(answer.body);
  }
  const std::string response =
      head + "Content-Length: " + std::to_string(body->size()) + "\r\n\r\n" + *body;
  if (answer.attack != Attack::kSlowDrip) return WriteAll(fd, response, stop_flag_);
  for (const char byte : response) {
    if (!WriteAll(fd, std::string_view(&byte, 1), stop_flag_)) return false;
    std::unique_lock lock(mutex_);
    if (written_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
      return false;
    }
  }
  return true;
}

}  // namespace hb::test_support
