#include "tests/support/http/scripted_http_peer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "tests/support/http/loopback_server.h"
#include "tests/support/schema/event_schema.h"

namespace hb::test_support {

std::string ReceivedRequest::Header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

ScriptedHttpPeer::ScriptedHttpPeer(Script script, int threads) : script_(std::move(script)) {
  // httplib makes the pool on its listener thread after it reports running;
  // the constructor returns once every thread of it exists, so a test that
  // counts the process's threads counts them all.
  server_.new_task_queue = [this, threads] {
    auto* pool = new httplib::ThreadPool(threads);  // NOLINT
    MutexLock lock(&mutex_);
    pool_started_ = true;
    changed_.SignalAll();
    return pool;
  };
  // Clients that keep their connections (libcurl) keep them for the test.
  server_.set_keep_alive_max_count(100000);
  const auto handler = [this](const httplib::Request& request, httplib::Response& response) {
    ReceivedRequest received{request.method,
                             request.path,
                             {},
                             {},
                             request.body,
                             request.remote_port,
                             std::chrono::steady_clock::now()};
    for (const auto& [name, value] : request.params) received.params[name] = value;
    for (const auto& [name, value] : request.headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      received.headers[lower] = value;
    }
    MutexLock lock(&mutex_);
    const std::size_t number = requests_.size();
    requests_.push_back(received);
    changed_.SignalAll();
    const ScriptedResponse answer = script_ ? script_(number, received) : ScriptedResponse{};
    // A hanging peer: hold the request, but let Stop() end the wait.
    if (answer.hold_until_stop) {
      while (!stopping_) changed_.Wait(&mutex_);
    } else if (answer.delay.count() > 0) {
      // An answer without a delay never lets go of the lock: a request is
      // counted and, when 2xx, accepted at once, as readers see it.
      const auto hold_until = std::chrono::steady_clock::now() + answer.delay;
      while (!stopping_ && changed_.WaitUntil(&mutex_, hold_until)) {
      }
    }
    response.status = answer.status;
    if (!answer.retry_after.empty()) response.set_header("Retry-After", answer.retry_after);
    for (const auto& [name, value] : answer.headers) response.set_header(name, value);
    if (!answer.body.empty()) response.set_content(answer.body, answer.content_type);
    if (answer.status >= 200 && answer.status < 300) accepted_.push_back(std::move(received));
    changed_.SignalAll();
  };
  server_.Get(".*", handler);
  server_.Post(".*", handler);
  server_.Put(".*", handler);
  server_.Delete(".*", handler);
  server_.set_tcp_nodelay(true);
  port_ = BindWithDeepBacklog(server_, "127.0.0.1");
  if (port_ == 0) throw std::runtime_error("scripted HTTP peer: cannot bind 127.0.0.1");
  thread_ = ListenInBackground(server_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool started = false;
  {
    MutexLock lock(&mutex_);
    while (!pool_started_ && changed_.WaitUntil(&mutex_, deadline)) {
    }
    started = pool_started_;
  }
  if (!started) {
    server_.stop();
    thread_.join();
    throw std::runtime_error("scripted HTTP peer: its threads did not start within 30 s");
  }
}

ScriptedHttpPeer::~ScriptedHttpPeer() {
  Stop();
  server_.stop();
  thread_.join();
  MutexLock lock(&mutex_);
  if (!expect_cloud_events_) return;
  // Every event a test received keeps the published contract.
  std::vector<std::string> bodies;
  bodies.reserve(accepted_.size());
  for (const ReceivedRequest& request : accepted_) bodies.push_back(request.body);
  if (const std::string violations = EventSchemaViolations(bodies); !violations.empty()) {
    ADD_FAILURE() << violations;
  }
}

void ScriptedHttpPeer::ExpectCloudEvents(bool expect) {
  MutexLock lock(&mutex_);
  expect_cloud_events_ = expect;
}

std::string ScriptedHttpPeer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void ScriptedHttpPeer::SetScript(Script script) {
  MutexLock lock(&mutex_);
  script_ = std::move(script);
}

std::vector<ReceivedRequest> ScriptedHttpPeer::Requests() const {
  MutexLock lock(&mutex_);
  return requests_;
}

std::size_t ScriptedHttpPeer::RequestCount() const {
  MutexLock lock(&mutex_);
  return requests_.size();
}

std::vector<ReceivedRequest> ScriptedHttpPeer::Accepted() const {
  MutexLock lock(&mutex_);
  return accepted_;
}

bool ScriptedHttpPeer::WaitForAccepted(std::size_t count, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mutex_);
  while (accepted_.size() < count && changed_.WaitUntil(&mutex_, deadline)) {
  }
  return accepted_.size() >= count;
}

void ScriptedHttpPeer::Stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  changed_.SignalAll();
}

}  // namespace hb::test_support
