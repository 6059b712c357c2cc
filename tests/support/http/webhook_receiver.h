#pragma once

// A webhook receiver on 127.0.0.1 for tests: records every request and
// answers as the test scripts it (status, Retry-After, a delay).

#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bridge/common/mutex.h"

namespace hb::test_support {

struct ReceivedRequest {
  std::string path;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::chrono::steady_clock::time_point arrived_at;
  std::string Header(const std::string& name) const;
};

struct ScriptedResponse {
  int status = 204;
  std::string body;
  std::string retry_after;  // Retry-After header, when not empty
  std::chrono::milliseconds delay{0};
  std::vector<std::pair<std::string, std::string>> headers;  // more answer headers
};

inline ScriptedResponse Answer(int status, std::string body = "", std::string retry_after = "",
                               std::chrono::milliseconds delay = {}) {
  return {status, std::move(body), std::move(retry_after), delay, {}};
}

class WebhookReceiver {
 public:
  // Answers request n (0-based, all paths) with script(n, request).
  using Script = std::function<ScriptedResponse(std::size_t, const ReceivedRequest&)>;

  explicit WebhookReceiver(Script script = {});
  ~WebhookReceiver();

  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::string url(const std::string& path = "/hook") const;
  void SetScript(Script script);

  // Requests answered with a 2xx, in arrival order.
  std::vector<ReceivedRequest> Accepted() const;
  std::size_t RequestCount() const;
  // Waits until `count` requests were accepted (2xx) or `timeout` passed.
  bool WaitForAccepted(std::size_t count, std::chrono::milliseconds timeout) const;
  // Stops answering: delayed requests return at once.
  void Stop();
  // Whether the bodies are health-bridge events: then the destructor fails
  // the test if an accepted one breaks docs/contract/events.schema.json.
  // Default: true.
  void ExpectCloudEvents(bool expect);

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable Mutex mutex_;
  mutable CondVar changed_;
  Script script_ GUARDED_BY(mutex_);
  std::size_t requests_ GUARDED_BY(mutex_) = 0;
  std::vector<ReceivedRequest> accepted_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool expect_cloud_events_ GUARDED_BY(mutex_) = true;
};

}  // namespace hb::test_support
