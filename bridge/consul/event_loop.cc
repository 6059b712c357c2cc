#include "bridge/consul/event_loop.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <stdexcept>

#include "bridge/common/curl_handles.h"
#include "bridge/model/protocol_text.h"

namespace hb {
namespace {

CURLM* Multi(void* multi) { return static_cast<CURLM*>(multi); }

}  // namespace

struct EventLoop::Transfer {
  TransferId id = 0;
  CurlEasy easy;
  CurlList headers;
  CurlList connect_to;
  HttpResponse response;
  std::size_t max_body_bytes = 0;
  bool accept_gzip = false;
  // A Content-Encoding the request did not ask for: the transfer was
  // aborted at its header, before curl could decode a byte of it.
  std::string refused_encoding;
  // curl's own words for a failure, when it has more than its code's.
  char error[CURL_ERROR_SIZE] = {};
  std::function<void(HttpResponse)> done;
};

// Answers up to this size grow their buffer by doubling.
constexpr std::size_t kSmallAnswerBytes = std::size_t{1} << 20;
// The most a larger answer's buffer reserves at once (never past the cap):
// address space, not memory, until written; bounded so that a cap of
// gigabytes does not ask for an allocation a small node refuses.
constexpr std::size_t kLargeAnswerReserve = std::size_t{256} << 20;

// Bytes arrive decompressed: the cap bounds memory, not the wire (a small
// gzip body can inflate to any size).
std::size_t EventLoop::OnCurlBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  std::string& body = transfer->response.body;
  const std::size_t cap = transfer->max_body_bytes;
  if (cap > 0 && bytes > cap - body.size()) {
    transfer->response.too_large = true;
    return 0;  // curl aborts with CURLE_WRITE_ERROR
  }
  if (cap > 0 && body.capacity() - body.size() < bytes) {
    // A small answer (nearly all are) grows by doubling. A large one gets
    // its final buffer at once, the cap (up to kLargeAnswerReserve): an
    // allocation that size is mapped, not taken from the heap, and its
    // pages cost memory only once written. Doubling instead kept the
    // previous buffer while copying it and left the freed ones in the
    // heap: a bomb cut at a 64 MiB cap cost about 90 MiB, not 64.
    const std::size_t needed = body.size() + bytes;
    std::size_t reserve = std::max(needed, body.capacity() * 2);
    if (needed > kSmallAnswerBytes) reserve = std::max(reserve, kLargeAnswerReserve);
    body.reserve(std::min(cap, reserve));
  }
  body.append(data, bytes);
  return bytes;
}

// curl decodes every coding it was built with (gzip, deflate, brotli, zstd)
// whatever the request offered, and a zstd frame may ask for a window of
// 128 MiB before a byte is out: an answer in any coding but the gzip that
// was asked for (or none) is refused at its header.
std::size_t EventLoop::OnCurlHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  auto* headers = &transfer->response.headers;
  std::string_view line(data, size * count);
  const std::size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    if (name == "content-encoding") {
      std::string coding(value);
      std::transform(coding.begin(), coding.end(), coding.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (coding != "identity" && !(transfer->accept_gzip && coding == "gzip")) {
        transfer->refused_encoding = LogSafe(coding.substr(0, 64));
        return 0;  // curl aborts with CURLE_WRITE_ERROR
      }
    }
    (*headers)[std::move(name)] = std::string(value);
  }
  return size * count;
}

EventLoop::EventLoop(std::size_t max_connections) {
  InitCurlOnce();
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::runtime_error("event loop: epoll/eventfd failed");
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = wake_fd_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake);

  multi_ = curl_multi_init();
  // Many blocking queries to one Consul agent: reuse connections, never
  // pipeline (a held long-poll would block the requests queued behind it).
  curl_multi_setopt(Multi(multi_), CURLMOPT_MAXCONNECTS, 0L);
  if (max_connections > 0) {
    // The hard net under the watch's own budget: Consul refuses a client
    // IP's connections past its limit, so curl never opens more than this,
    // nor keeps more idle ones cached.
    const long cap = static_cast<long>(max_connections);
    curl_multi_setopt(Multi(multi_), CURLMOPT_MAX_TOTAL_CONNECTIONS, cap);
    curl_multi_setopt(Multi(multi_), CURLMOPT_MAX_HOST_CONNECTIONS, cap);
    curl_multi_setopt(Multi(multi_), CURLMOPT_MAXCONNECTS, cap);
  }
  curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETFUNCTION, &EventLoop::OnCurlSocket);
  curl_multi_setopt(Multi(multi_), CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERFUNCTION, &EventLoop::OnCurlTimer);
  curl_multi_setopt(Multi(multi_), CURLMOPT_TIMERDATA, this);
  std::promise<void> started;
  thread_ = std::thread([this, &started] {
    thread_id_ = std::this_thread::get_id();
    started.set_value();
    Run();
  });
  started.get_future().wait();
}

EventLoop::~EventLoop() {
  {
    MutexLock lock(&mutex_);
    stop_ = true;
  }
  Wake();
  thread_.join();
  for (auto& [id, transfer] : transfers_)
    curl_multi_remove_handle(Multi(multi_), transfer->easy.get());
  transfers_.clear();
  curl_multi_cleanup(Multi(multi_));
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

int EventLoop::OnCurlSocket(void* /*easy*/, int fd, int what, void* loop, void* /*socket_data*/) {
  auto* self = static_cast<EventLoop*>(loop);
  if (what == CURL_POLL_REMOVE) {
    ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // may be closed already
    return 0;
  }
  epoll_event event{};
  event.data.fd = fd;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) event.events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) event.events |= EPOLLOUT;
  if (::epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0) {
    ::epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }
  return 0;
}

int EventLoop::OnCurlTimer(void* /*multi*/, long timeout_ms, void* loop) {
  auto* self = static_cast<EventLoop*>(loop);
  if (timeout_ms < 0) {
    self->curl_deadline_.reset();
  } else {
    self->curl_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  return 0;
}

void EventLoop::Wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof(one));
}

void EventLoop::Post(std::function<void()> task) {
  {
    MutexLock lock(&mutex_);
    tasks_.push_back(std::move(task));
  }
  if (!InLoopThread()) Wake();
}

void EventLoop::RunAndWait(const std::function<void()>& task) {
  if (InLoopThread()) {
    task();
    return;
  }
  std::promise<void> done;
  Post([&] {
    task();
    done.set_value();
  });
  done.get_future().wait();
}

EventLoop::TimerId EventLoop::RunAt(SteadyTime when, std::function<void()> task) {
  TimerId id;
  {
    MutexLock lock(&mutex_);
    id = next_timer_++;
    timer_order_.emplace(when, id);
    timers_.emplace(id, std::move(task));
  }
  if (!InLoopThread()) Wake();
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  MutexLock lock(&mutex_);
  timers_.erase(id);  // its timer_order_ entry is skipped when due
}

std::string RouteToServerName(std::string& url, const TlsSettings& tls) {
  if (tls.server_name.empty()) return "";
  // Verify the certificate against server_name while connecting to the
  // configured address: ask for https://<server_name>:<port>/... and
  // route that name to the real host (curl's --connect-to).
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  const std::size_t host_start = scheme_end + 3;
  const std::size_t host_end = url.find_first_of("/?", host_start);
  const std::string authority = url.substr(host_start, host_end - host_start);
  const std::size_t colon = authority.rfind(':');
  const std::string host = authority.substr(0, colon);
  const std::string port = colon == std::string::npos ? "443" : authority.substr(colon + 1);
  url.replace(host_start, host.size(), tls.server_name);
  return tls.server_name + ":" + port + ":" + host + ":" + port;
}

EventLoop::TransferId EventLoop::StartGet(HttpRequest request,
                                          std::function<void(HttpResponse)> done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = next_transfer_++;
  transfer->easy.reset(curl_easy_init());
  // Not kept in the transfer: curl copies CURLOPT_URL, and a held query
  // would keep a second copy for minutes.
  std::string url = std::move(request.url);
  if (const std::string rule = RouteToServerName(url, request.tls); !rule.empty()) {
    transfer->connect_to.reset(curl_slist_append(nullptr, rule.c_str()));
  }
  transfer->done = std::move(done);
  transfer->max_body_bytes = request.max_body_bytes;
  transfer->accept_gzip = request.accept_gzip;
  CURL* easy = transfer->easy.get();
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &EventLoop::OnCurlBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get());
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &EventLoop::OnCurlHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer.get());
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  // gzip is all Consul sends (Go's gziphandler); offering every decoder curl
  // has would only widen what a hostile peer can make it inflate.
  if (request.accept_gzip) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "gzip");
  // curl's smallest receive buffer: a blocking query holds its transfer for
  // minutes with nothing to read, and at 10,000 watched services the 16 KB
  // default was 150 MB; an answer is appended to the body 1 KB at a time.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 1024L);
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers) headers = curl_slist_append(headers, header.c_str());
  transfer->headers.reset(headers);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (transfer->connect_to) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, transfer->connect_to.get());
  ApplyConsulTransport(easy, request.tls);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
  curl_multi_add_handle(Multi(multi_), easy);
  const TransferId id = transfer->id;
  transfers_.emplace(id, std::move(transfer));
  return id;
}

void EventLoop::CancelTransfer(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  curl_multi_remove_handle(Multi(multi_), it->second->easy.get());
  transfers_.erase(it);
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int running = 0;
  while (true) {
    std::deque<std::function<void()>> tasks;
    {
      MutexLock lock(&mutex_);
      if (stop_) return;
      tasks.swap(tasks_);
    }
    for (auto& task : tasks) task();
    RunDueTimers();
    if (curl_deadline_ && *curl_deadline_ <= std::chrono::steady_clock::now()) {
      curl_deadline_.reset();
      curl_multi_socket_action(Multi(multi_), CURL_SOCKET_TIMEOUT, 0, &running);
    }
    CompleteTransfers();

    const int ready =
        ::epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(NextTimeout().count()));
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        std::uint64_t count;
        while (::read(wake_fd_, &count, sizeof(count)) > 0) {
        }
        continue;
      }
      int mask = 0;
      if (events[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
      curl_multi_socket_action(Multi(multi_), fd, mask, &running);
    }
    CompleteTransfers();
  }
}

void EventLoop::RunDueTimers() {
  const SteadyTime now = std::chrono::steady_clock::now();
  while (true) {
    std::function<void()> task;
    {
      MutexLock lock(&mutex_);
      if (stop_ || timer_order_.empty() || timer_order_.begin()->first > now) return;
      const TimerId id = timer_order_.begin()->second;
      timer_order_.erase(timer_order_.begin());
      auto it = timers_.find(id);
      if (it == timers_.end()) continue;  // cancelled
      task = std::move(it->second);
      timers_.erase(it);
    }
    task();
  }
}

void EventLoop::CompleteTransfers() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(Multi(multi_), &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    const CURLcode code = message->data.result;
    Transfer* owner = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &owner);
    auto it = owner == nullptr ? transfers_.end() : transfers_.find(owner->id);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(Multi(multi_), easy);
    HttpResponse response = std::move(transfer->response);
    if (code == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
    } else if (!transfer->refused_encoding.empty()) {
      response.transport =
          Status::InvalidArgument("answer in Content-Encoding \"" + transfer->refused_encoding +
                                  "\"; only gzip is accepted");
    } else if (response.too_large) {
      response.transport = Status::ResourceExhausted("answer larger than " +
                                                     std::to_string(transfer->max_body_bytes) +
                                                     " bytes (consul.max_answer_size)");
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      response.transport = Status::DeadlineExceeded(std::string(curl_easy_strerror(code)));
    } else {
      // The peer's bytes may be quoted in curl's message: one printable line.
      std::string why =
          transfer->error[0] != '\0' ? LogSafe(transfer->error) : curl_easy_strerror(code);
      // curl 7.88 says only this when an answer's header line passes its
      // 100 KiB limit.
      if (code == CURLE_OUT_OF_MEMORY) why += " (or a response header over curl's 100 KiB limit)";
      response.transport = Status::Unavailable(why);
      response.connection_reset =
          code == CURLE_RECV_ERROR || code == CURLE_SEND_ERROR || code == CURLE_GOT_NOTHING;
    }
    transfer->done(std::move(response));
  }
}

std::chrono::milliseconds EventLoop::NextTimeout() {
  using std::chrono::milliseconds;
  const SteadyTime now = std::chrono::steady_clock::now();
  // Round up, or a deadline 0.4 ms away would spin.
  auto until = [now](SteadyTime when) {
    if (when <= now) return milliseconds(0);
    return std::chrono::duration_cast<milliseconds>(when - now) + milliseconds(1);
  };
  // Nothing is lost by sleeping longer; the cap only bounds the damage of a
  // wakeup that never comes.
  milliseconds timeout(1000);
  if (curl_deadline_) timeout = std::min(timeout, until(*curl_deadline_));
  MutexLock lock(&mutex_);
  if (!tasks_.empty()) return milliseconds(0);
  if (!timer_order_.empty()) timeout = std::min(timeout, until(timer_order_.begin()->first));
  return timeout;
}

void ApplyConsulTransport(void* easy_handle, const TlsSettings& tls) {
  CURL* easy = static_cast<CURL*>(easy_handle);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!tls.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.ca_path.empty()) curl_easy_setopt(easy, CURLOPT_CAPATH, tls.ca_path.c_str());
  if (!tls.cert_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLCERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) curl_easy_setopt(easy, CURLOPT_SSLKEY, tls.key_file.c_str());
  if (tls.insecure_skip_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
}

}  // namespace hb
