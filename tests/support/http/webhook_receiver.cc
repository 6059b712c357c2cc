#include "tests/support/http/webhook_receiver.h"

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

WebhookReceiver::WebhookReceiver(Script script) : script_(std::move(script)) {
  server_.Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
    ReceivedRequest received{request.path, {}, request.body, std::chrono::steady_clock::now()};
    for (const auto& [name, value] : request.headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      received.headers[lower] = value;
    }
    MutexLock lock(&mutex_);
    const ScriptedResponse answer = script_ ? script_(requests_, received) : ScriptedResponse{};
    ++requests_;
    // A hanging receiver: hold the request, but let Stop() end the wait.
    const auto hold_until = std::chrono::steady_clock::now() + answer.delay;
    while (!stopping_ && changed_.WaitUntil(&mutex_, hold_until)) {
    }
    response.status = answer.status;
    if (!answer.retry_after.empty()) response.set_header("Retry-After", answer.retry_after);
    for (const auto& [name, value] : answer.headers) response.set_header(name, value);
    if (!answer.body.empty()) response.set_content(answer.body, "text/plain");
    if (answer.status >= 200 && answer.status < 300) accepted_.push_back(std::move(received));
    changed_.SignalAll();
  });
  server_.set_tcp_nodelay(true);
  port_ = BindWithDeepBacklog(server_, "127.0.0.1");
  if (port_ == 0) throw std::runtime_error("webhook receiver: cannot bind 127.0.0.1");
  thread_ = ListenInBackground(server_);
}

WebhookReceiver::~WebhookReceiver() {
  Stop();
  server_.stop();
  thread_.join();
  if (!expect_cloud_events_) return;
  // Every event a test received keeps the published contract.
  std::vector<std::string> bodies;
  for (const ReceivedRequest& request : accepted_) bodies.push_back(request.body);
  if (const std::string violations = EventSchemaViolations(bodies); !violations.empty()) {
    ADD_FAILURE() << violations;
  }
}

void WebhookReceiver::ExpectCloudEvents(bool expect) {
  MutexLock lock(&mutex_);
  expect_cloud_events_ = expect;
}

std::string WebhookReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void WebhookReceiver::SetScript(Script script) {
  MutexLock lock(&mutex_);
  script_ = std::move(script);
}

std::vector<ReceivedRequest> WebhookReceiver::Accepted() const {
  MutexLock lock(&mutex_);
  return accepted_;
}

std::size_t WebhookReceiver::RequestCount() const {
  MutexLock lock(&mutex_);
  return requests_;
}

bool WebhookReceiver::WaitForAccepted(std::size_t count, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lock(&mutex_);
  while (accepted_.size() < count && changed_.WaitUntil(&mutex_, deadline)) {
  }
  return accepted_.size() >= count;
}

void WebhookReceiver::Stop() {
  {
    MutexLock lock(&mutex_);
    stopping_ = true;
  }
  changed_.SignalAll();
}

}  // namespace hb::test_support
