#include "bridge/server/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <deque>
#include <map>
#include <thread>

#include "bridge/common/mutex.h"
#include "bridge/server/basic_auth.h"
#include "bridge/server/request_head.h"
#include "bridge/server/tls_context.h"

namespace hb {
// Named, not anonymous: Impl (declared in the header) holds these types.
namespace http_server_internal {

using Steady = std::chrono::steady_clock;

// What Prometheus asks for; it also accepts this for plain text format.
constexpr char kPrometheusText[] = "text/plain; version=0.0.4; charset=utf-8";

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// A client connection. Owned by the reading thread until its head is read,
// then by whoever answers it.
struct Connection {
  int fd = -1;
  SslPtr ssl;  // null for plain HTTP
  bool handshaking = false;
  std::string received;
  Steady::time_point deadline;
  std::uint64_t order = 0;  // accept order: the lowest is evicted first

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection(Connection&& other) noexcept
      : fd(std::exchange(other.fd, -1)),
        ssl(std::move(other.ssl)),
        handshaking(other.handshaking),
        received(std::move(other.received)),
        deadline(other.deadline),
        order(other.order) {}
  ~Connection() {
    if (ssl) SSL_shutdown(ssl.get());  // best effort: never waits on a non-blocking socket
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace http_server_internal

namespace {

using http_server_internal::Connection;
using http_server_internal::kPrometheusText;
using http_server_internal::Steady;

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::string> extra_headers;  // "Name: value"
};

Response Text(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body), {}};
}

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Writes `data` until done, the deadline, or an error. Works on the
// non-blocking sockets the server uses, plain or TLS.
bool WriteResponseBytes(Connection& connection, std::string_view data,
                        Steady::time_point deadline) {
  while (!data.empty()) {
    short wait_for = POLLOUT;
    if (connection.ssl) {
      const int written = SSL_write(connection.ssl.get(), data.data(),
                                    static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20)));
      if (written > 0) {
        data.remove_prefix(static_cast<std::size_t>(written));
        continue;
      }
      const int error = SSL_get_error(connection.ssl.get(), written);
      ERR_clear_error();
      if (error == SSL_ERROR_WANT_READ) {
        wait_for = POLLIN;
      } else if (error != SSL_ERROR_WANT_WRITE) {
        return false;
      }
    } else {
      const ssize_t sent = ::send(connection.fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent > 0) {
        data.remove_prefix(static_cast<std::size_t>(sent));
        continue;
      }
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
    if (left.count() <= 0) return false;
    pollfd waiting{connection.fd, wait_for, 0};
    if (::poll(&waiting, 1, static_cast<int>(left.count())) <= 0) return false;
  }
  return true;
}

void BlockSigpipe() {
  // OpenSSL writes with write(2): a peer that hung up must give EPIPE, not
  // kill the daemon.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
}

}  // namespace

struct HttpServer::Impl {
  using Connection = http_server_internal::Connection;

  HttpServerOptions options;
  HttpHandlers handlers;
  SslCtxPtr tls;
  BasicAuth auth;
  std::string extra_headers;  // from the web config, each line with CRLF

  int listen_fd = -1;
  int epoll_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread reader;
  std::vector<std::thread> workers;

  // Reading thread only.
  std::map<int, Connection> reading;
  std::uint64_t next_order = 0;

  Mutex mutex;
  CondVar work_ready;
  std::deque<std::pair<Connection, RequestHead>> queue GUARDED_BY(mutex);
  bool stopping GUARDED_BY(mutex) = false;

  Impl(HttpServerOptions opts, HttpHandlers handles, SslCtxPtr context)
      : options(std::move(opts)),
        handlers(std::move(handles)),
        tls(std::move(context)),
        auth(options.web.basic_auth_users) {
    for (const auto& [name, value] : options.web.response_headers) {
      extra_headers += name + ": " + value + "\r\n";
    }
  }

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void Stop() {
    {
      MutexLock lock(&mutex);
      stopping = true;
    }
    work_ready.SignalAll();
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_fd, &one, sizeof(one));
    if (reader.joinable()) reader.join();
    for (auto& worker : workers) worker.join();
    reading.clear();
    MutexLock lock(&mutex);  // no thread is left, but the analysis cannot know
    queue.clear();
  }

  void Send(Connection& connection, const RequestHead* head, const Response& response,
            Steady::time_point deadline) {
    std::string text = "HTTP/1.1 " + std::to_string(response.status) + " " +
                       std::string(Reason(response.status)) + "\r\n";
    text += "Content-Type: " + response.content_type + "\r\n";
    text += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    text += "Connection: close\r\n";
    for (const auto& line : response.extra_headers) text += line + "\r\n";
    text += extra_headers;
    text += "\r\n";
    const bool with_body = head == nullptr || head->method != "HEAD";
    if (with_body && response.body.size() < 64 * 1024) {
      text += response.body;
      WriteResponseBytes(connection, text, deadline);
      return;
    }
    if (WriteResponseBytes(connection, text, deadline) && with_body) {
      WriteResponseBytes(connection, response.body, deadline);
    }
  }

  // Answers on the reading thread: probes and refusals are small, and the
  // socket's buffer takes them at once; a client that does not read them
  // in a second loses them.
  void SendNow(Connection& connection, const RequestHead* head, const Response& response) {
    Send(connection, head, response, Steady::now() + std::chrono::seconds(1));
  }

  // ---- reading thread ----

  void Run() {
    BlockSigpipe();
    std::array<epoll_event, 64> events{};
    for (;;) {
      {
        MutexLock lock(&mutex);
        if (stopping) return;
      }
      const int ready =
          ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), NextTimeoutMs());
      for (int i = 0; i < ready; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (fd == wake_fd) continue;
        if (fd == listen_fd) {
          AcceptAll();
        } else {
          OnReadable(fd);
        }
      }
      ExpireHeads();
    }
  }

  int NextTimeoutMs() const {
    if (reading.empty()) return -1;
    Steady::time_point first = Steady::time_point::max();
    for (const auto& [fd, connection] : reading) first = std::min(first, connection.deadline);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(first - Steady::now()).count();
    return static_cast<int>(std::clamp<long long>(left + 1, 0, 60'000));
  }

  void AcceptAll() {
    for (int accepted = 0; accepted < 64; ++accepted) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error (EMFILE): the next wake retries
      if (reading.size() >= options.max_connections) EvictOldest();
      Connection connection;
      connection.fd = fd;
      connection.deadline = Steady::now() + options.head_timeout;
      connection.order = next_order++;
      if (tls) {
        connection.ssl.reset(SSL_new(tls.get()));
        if (!connection.ssl || SSL_set_fd(connection.ssl.get(), fd) != 1) continue;
        SSL_set_accept_state(connection.ssl.get());
        connection.handshaking = true;
      }
      epoll_event event{};
      event.events = EPOLLIN | EPOLLRDHUP;
      event.data.fd = fd;
      if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) continue;
      reading.emplace(fd, std::move(connection));
    }
  }

  void EvictOldest() {
    auto oldest = std::min_element(
        reading.begin(), reading.end(),
        [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
    if (oldest != reading.end()) Forget(oldest->first);
  }

  // Stops watching `fd` and hands its connection over (or drops it).
  Connection Take(int fd) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    auto node = reading.extract(fd);
    return std::move(node.mapped());
  }
  void Forget(int fd) { Take(fd); }

  void ExpireHeads() {
    const auto now = Steady::now();
    std::vector<int> late;
    for (const auto& [fd, connection] : reading) {
      if (connection.deadline <= now) late.push_back(fd);
    }
    for (const int fd : late) {
      Connection connection = Take(fd);
      if (!connection.handshaking)
        SendNow(connection, nullptr, Text(408, "request head too slow\n"));
    }
  }

  void OnReadable(int fd) {
    auto it = reading.find(fd);
    if (it == reading.end()) return;
    Connection& connection = it->second;
    if (connection.handshaking) {
      const int done = SSL_accept(connection.ssl.get());
      if (done == 1) {
        connection.handshaking = false;
      } else {
        const int error = SSL_get_error(connection.ssl.get(), done);
        ERR_clear_error();
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return Forget(fd);
        WaitFor(fd, error == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
        return;
      }
      WaitFor(fd, EPOLLIN);
    }
    // Read no more than one byte past the limit: enough to know it is over.
    bool ended = false;  // the client closed its side (it may still read)
    while (!ended) {
      const std::size_t room = options.max_head_bytes + 1 - connection.received.size();
      if (room == 0) break;
      char buffer[4096];
      const int want = static_cast<int>(std::min(room, sizeof(buffer)));
      int got = 0;
      if (connection.ssl) {
        got = SSL_read(connection.ssl.get(), buffer, want);
        if (got <= 0) {
          const int error = SSL_get_error(connection.ssl.get(), got);
          ERR_clear_error();
          if (error == SSL_ERROR_WANT_READ) break;
          if (error == SSL_ERROR_WANT_WRITE) {
            WaitFor(fd, EPOLLOUT);
            break;
          }
          if (error != SSL_ERROR_ZERO_RETURN) return Forget(fd);
          ended = true;
          break;
        }
      } else {
        got = static_cast<int>(::recv(fd, buffer, static_cast<std::size_t>(want), 0));
        if (got == 0) {
          ended = true;
          break;
        }
        if (got < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          return Forget(fd);
        }
      }
      connection.received.append(buffer, static_cast<std::size_t>(got));
    }
    HeadParse parsed = ParseRequestHead(connection.received, options.max_head_bytes);
    switch (parsed.state) {
      case HeadParse::State::kIncomplete:
        if (ended) Forget(fd);
        return;
      case HeadParse::State::kTooLarge: {
        Connection taken = Take(fd);
        return SendNow(taken, nullptr, Text(431, "request head too large\n"));
      }
      case HeadParse::State::kMalformed: {
        Connection taken = Take(fd);
        return SendNow(taken, nullptr, Text(400, "bad request: " + parsed.error + "\n"));
      }
      case HeadParse::State::kComplete:
        return Dispatch(Take(fd), std::move(parsed.head));
    }
  }

  void WaitFor(int fd, std::uint32_t what) {
    epoll_event event{};
    event.events = what | EPOLLRDHUP;
    event.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event);
  }

  void Dispatch(Connection connection, RequestHead head) {
    if (head.method != "GET" && head.method != "HEAD") {
      Response refused = Text(405, "only GET and HEAD are served\n");
      refused.extra_headers.emplace_back("Allow: GET, HEAD");
      return SendNow(connection, &head, refused);
    }
    const std::string* length = head.Header("content-length");
    if ((length != nullptr && *length != "0") || head.Header("transfer-encoding") != nullptr) {
      return SendNow(connection, &head, Text(400, "request bodies are not accepted\n"));
    }
    if (head.path == "/healthz") {
      // Liveness never depends on Consul: an outage must not get the bridge
      // restarted.
      return SendNow(connection, &head, Text(200, "ok\n"));
    }
    if (head.path == "/readyz") {
      std::string why;
      if (handlers.ready(why)) {
        // A detail that does not take readiness away (a further source
        // that cannot be read) follows the word.
        return SendNow(connection, &head,
                       Text(200, why.empty() ? "ready\n" : "ready; " + why + "\n"));
      }
      return SendNow(connection, &head, Text(503, "not ready: " + why + "\n"));
    }
    const bool known = head.path == "/metrics" || head.path == "/" ||
                       (head.path == "/v1/instances" && handlers.instances) ||
                       (head.path == "/v1/sinks" && handlers.sinks);
    if (!known) return SendNow(connection, &head, Text(404, "not found; see /\n"));
    {
      MutexLock lock(&mutex);
      if (queue.size() < options.max_queued) {
        queue.emplace_back(std::move(connection), std::move(head));
        work_ready.Signal();
        return;
      }
    }
    Response busy = Text(503, "busy: too many requests in progress\n");
    busy.extra_headers.emplace_back("Retry-After: 1");
    SendNow(connection, &head, busy);
  }

  // ---- worker threads ----

  void Work() {
    BlockSigpipe();
    for (;;) {
      MutexLock lock(&mutex);
      while (!stopping && queue.empty()) work_ready.Wait(&mutex);
      if (stopping) return;
      auto [connection, head] = std::move(queue.front());
      queue.pop_front();
      lock.Unlock();
      const Response response = Answer(head);
      Send(connection, &head, response, Steady::now() + options.write_timeout);
    }
  }

  Response Answer(const RequestHead& head) {
    if (!auth.Allows(head.Header("authorization"))) {
      Response denied = Text(401, "unauthorized\n");
      denied.extra_headers.emplace_back("WWW-Authenticate: Basic realm=\"health-bridge\"");
      return denied;
    }
    try {
      if (head.path == "/metrics") return {200, kPrometheusText, handlers.metrics(), {}};
      if (head.path == "/v1/instances") {
        return {200, "application/json", handlers.instances(ParseQuery(head.query)), {}};
      }
      if (head.path == "/v1/sinks") return {200, "application/json", handlers.sinks(), {}};
      return Text(200, handlers.index);
    } catch (const std::exception& error) {
      spdlog::error("http {}: {}", head.path, error.what());
      return Text(500, "internal error\n");
    }
  }
};

std::optional<std::pair<std::string, int>> ParseListenAddress(const std::string& listen) {
  std::string host;
  std::string_view port_text;
  if (listen.starts_with('[')) {
    const auto close = listen.find("]:");
    if (close == std::string::npos) return std::nullopt;
    host = listen.substr(1, close - 1);
    port_text = std::string_view(listen).substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos || listen.find(':') != colon) return std::nullopt;
    host = listen.substr(0, colon);
    port_text = std::string_view(listen).substr(colon + 1);
  }
  int port = -1;
  const auto [end, error] = std::from_chars(port_text.begin(), port_text.end(), port);
  if (host.empty() || error != std::errc() || end != port_text.end() || port < 0 || port > 65535) {
    return std::nullopt;
  }
  return std::pair{host, port};
}

namespace {

// A listening socket on host:port (port 0: any), or -1.
int Listen(const std::string& host, int port, int& bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0) return -1;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  for (const addrinfo* address = found; address != nullptr; address = address->ai_next) {
    const int fd = ::socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                            address->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR only: SO_REUSEPORT would let a second bridge share the
    // port and split the scrapes; a taken port must be an error.
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, address->ai_addr, address->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      sockaddr_storage local{};
      socklen_t size = sizeof(local);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size);
      bound_port =
          ntohs(local.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
      return fd;
    }
    ::close(fd);
  }
  return -1;
}

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                        HttpHandlers handlers) {
  const auto address = ParseListenAddress(options.listen);
  if (!address) {
    return Status::InvalidArgument("server.listen: expected host:port, got \"" + options.listen +
                                   "\"");
  }
  SslCtxPtr context;
  if (options.web.tls) {
    auto made = MakeServerTlsContext(*options.web.tls);
    if (!made.ok()) return made.status();
    context = std::move(*made);
  }
  const std::string listen = options.listen;
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handlers), std::move(context));
  impl->listen_fd = Listen(address->first, address->second, impl->port);
  if (impl->listen_fd < 0) {
    return Status::Unavailable("server.listen " + listen +
                               ": cannot listen there (address in use, or not this host's)");
  }
  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->epoll_fd < 0 || impl->wake_fd < 0) {
    return Status::Internal("server: cannot create epoll or eventfd descriptors");
  }
  for (const int fd : {impl->listen_fd, impl->wake_fd}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    ::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, fd, &event);
  }
  Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->Run(); });
  for (std::size_t i = 0; i < std::max<std::size_t>(impl->options.workers, 1); ++i) {
    impl->workers.emplace_back([raw] { raw->Work(); });
  }
  return std::make_unique<HttpServer>(std::move(impl));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { impl_->Stop(); }

int HttpServer::port() const { return impl_->port; }

bool HttpServer::tls() const { return impl_->tls != nullptr; }

}  // namespace hb
