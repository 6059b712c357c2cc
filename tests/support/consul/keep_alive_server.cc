#include "tests/support/consul/keep_alive_server.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "bridge/common/mutex.h"

namespace hb::test_support {
namespace {

int ToMillis(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// One connection's socket as an httplib::Stream. It lives as long as the
// connection, so bytes of a pipelined next request that arrived with this
// one stay buffered for it. httplib reads request lines a byte at a time,
// hence the buffer.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(int fd, int read_timeout_ms, int write_timeout_ms)
      : fd_(fd), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms) {}

  bool has_buffered() const { return begin_ < end_; }

  bool is_readable() const override { return has_buffered() || Wait(POLLIN, read_timeout_ms_); }
  bool is_writable() const override { return Wait(POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (!has_buffered()) {
      if (!Wait(POLLIN, read_timeout_ms_)) return -1;
      ssize_t n;
      do {
        n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
    }
    const std::size_t count = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_.data() + begin_, count);
    begin_ += count;
    return static_cast<ssize_t>(count);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  bool Wait(short events, int timeout_ms) const {
    pollfd ready{fd_, events, 0};
    int n;
    do {
      n = ::poll(&ready, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n > 0 && (ready.revents & events) != 0;
  }

  template <typename Query>
  void Address(Query query, std::string& ip, int& port) const {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (query(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) return;
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (address.ss_family == AF_INET) {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
      ::inet_ntop(AF_INET, &v4.sin_addr, text.data(), text.size());
      port = ntohs(v4.sin_port);
    } else if (address.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
      ::inet_ntop(AF_INET6, &v6.sin6_addr, text.data(), text.size());
      port = ntohs(v6.sin6_port);
    }
    ip = text.data();
  }

  const int fd_;
  const int read_timeout_ms_;
  const int write_timeout_ms_;
  std::array<char, 4096> buffer_{};
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// Consul compresses its answers with gzip (Go's gziphandler) and nothing
// else. httplib would choose brotli whenever a client accepts it too (curl
// accepts every coding it can decode), at brotli's slowest quality: 20-40
// ms for a 60-instance answer, a delay real Consul never adds.
void AcceptOnlyWhatConsulSpeaks(httplib::Request& request) {
  const bool gzip = request.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
  request.headers.erase("Accept-Encoding");
  if (gzip) request.set_header("Accept-Encoding", "gzip");
}

// httplib hands every accepted socket to its task queue; this one starts a
// thread per connection at once instead of queueing it behind busy workers.
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  ~ThreadPerConnection() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      MutexLock lock(&mutex_);
      ++running_;
    }
    std::thread([this, fn = std::move(fn)]() mutable {
      fn();
      fn = nullptr;  // nothing of the task outlives the count below
      MutexLock lock(&mutex_);
      if (--running_ == 0) idle_.SignalAll();
    }).detach();
  }

  // Waits for every connection's thread: httplib calls this after it stops
  // accepting, and the connections close once KeepAliveServer::Stop() woke them.
  void shutdown() override {
    MutexLock lock(&mutex_);
    while (running_ != 0) idle_.Wait(&mutex_);
  }

 private:
  Mutex mutex_;
  CondVar idle_;
  std::size_t running_ GUARDED_BY(mutex_) = 0;
};

std::string PeerIp(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return "";
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text.data(),
                text.size());
  } else if (address.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text.data(),
                text.size());
  }
  return text.data();
}

// Consul writes its refusal with a 10 ms deadline ("we don't care about
// slow players") and closes without reading the request.
void Refuse(int fd) {
  timeval deadline{0, 10000};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &deadline, sizeof(deadline));
  const std::string_view response = ConnectionLimiter::RefusalResponse();
  [[maybe_unused]] const ssize_t written =
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  ::close(fd);
}

}  // namespace

KeepAliveServer::KeepAliveServer(ConnectionLimiter& limiter)
    : limiter_(limiter), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (stop_fd_ < 0) throw std::runtime_error("KeepAliveServer: eventfd failed");
  // httplib's API hands over a raw pointer that it owns.
  new_task_queue = [] { return new ThreadPerConnection(); };  // NOLINT
}

KeepAliveServer::~KeepAliveServer() { ::close(stop_fd_); }

void KeepAliveServer::Stop() {
  const std::uint64_t one = 1;
  // Never read back: the eventfd stays readable, so every idle connection,
  // now or later, sees it.
  [[maybe_unused]] const ssize_t written = ::write(stop_fd_, &one, sizeof(one));
  stop();
}

bool KeepAliveServer::process_and_close_socket(socket_t sock) {
  const std::string ip = PeerIp(sock);
  if (!limiter_.Accept(ip)) {
    Refuse(sock);
    return false;
  }
  ConnectionStream stream(sock, ToMillis(read_timeout_sec_, read_timeout_usec_),
                          ToMillis(write_timeout_sec_, write_timeout_usec_));
  const int idle_timeout_ms = ToMillis(keep_alive_timeout_sec_, 0);
  bool served = false;
  for (std::size_t left = keep_alive_max_count_; left > 0; --left) {
    if (!stream.has_buffered()) {
      // The one wait between requests: no timer ticks while idle.
      std::array<pollfd, 2> ready{{{sock, POLLIN, 0}, {stop_fd_, POLLIN, 0}}};
      int n;
      do {
        n = ::poll(ready.data(), ready.size(), idle_timeout_ms);
      } while (n < 0 && errno == EINTR);
      if (n <= 0 || ready[1].revents != 0) break;  // idle too long, or stopping
    }
    bool connection_closed = false;
    // The last request allowed on this connection is answered with
    // "Connection: close", as httplib does.
    served = process_request(stream, left == 1, connection_closed, &AcceptOnlyWhatConsulSpeaks);
    if (!served || connection_closed) break;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  limiter_.Release(ip);
  return served;
}

}  // namespace hb::test_support
