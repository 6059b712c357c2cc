#pragma once

// An HTTP peer on 127.0.0.1 for tests, whatever it stands for (a webhook
// receiver, an Alertmanager, a Consul agent): it records every request and
// answers each as the test scripts it (status, headers, body, a delay, or
// held until Stop()).
//
// Counting: requests are numbered from 0 in arrival order, all methods and
// paths together. The script gets the request's number; RequestCount() and
// Requests() count every request, whatever it was answered; Accepted() only
// those answered with a 2xx.

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bridge/common/mutex.h"

namespace hb::test_support {

struct ReceivedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;   // the query string's
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  int remote_port = 0;  // one per connection the client opened
  std::chrono::steady_clock::time_point arrived_at;
  std::string Header(const std::string& name) const;
  bool HasParam(const std::string& name) const { return params.contains(name); }
};

struct ScriptedResponse {
  int status = 204;
  std::string body;
  std::string retry_after;  // Retry-After header, when not empty
  // Held this long before the answer goes out (Stop() ends the wait).
  std::chrono::milliseconds delay{0};
  std::vector<std::pair<std::string, std::string>> headers;  // more answer headers
  std::string content_type = "text/plain";
  // Held until Stop(): a request that hangs, or a long poll held open.
  bool hold_until_stop = false;
};

inline ScriptedResponse Answer(int status, std::string body = "", std::string retry_after = "",
                               std::chrono::milliseconds delay = {}) {
  ScriptedResponse answer;
  answer.status = status;
  answer.body = std::move(body);
  answer.retry_after = std::move(retry_after);
  answer.delay = delay;
  return answer;
}

class ScriptedHttpPeer {
 public:
  // Answers request n (0-based, every method and path) with script(n, request).
  // Without a script every request gets a 204.
  using Script = std::function<ScriptedResponse(std::size_t, const ReceivedRequest&)>;

  // `threads`: requests served at once (each held request takes one). Every
  // thread of the peer runs once the constructor returns.
  explicit ScriptedHttpPeer(Script script = {}, int threads = 8);
  ~ScriptedHttpPeer();

  ScriptedHttpPeer(const ScriptedHttpPeer&) = delete;
  ScriptedHttpPeer& operator=(const ScriptedHttpPeer&) = delete;

  // http://127.0.0.1:<port><path>.
  std::string url(const std::string& path = "/hook") const;
  void SetScript(Script script);

  // Every request, in arrival order.
  std::vector<ReceivedRequest> Requests() const;
  std::size_t RequestCount() const;
  // Requests answered with a 2xx, in arrival order.
  std::vector<ReceivedRequest> Accepted() const;
  // Waits until `count` requests were accepted (2xx) or `timeout` passed.
  bool WaitForAccepted(std::size_t count, std::chrono::milliseconds timeout) const;
  // Stops holding: held and delayed requests are answered at once, and so
  // is every later one.
  void Stop();
  // Whether the accepted bodies are health-bridge events: then the
  // destructor fails the test if one breaks docs/contract/events.schema.json.
  // Default: true.
  void ExpectCloudEvents(bool expect);

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable Mutex mutex_;
  mutable CondVar changed_;
  Script script_ GUARDED_BY(mutex_);
  std::vector<ReceivedRequest> requests_ GUARDED_BY(mutex_);
  std::vector<ReceivedRequest> accepted_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool pool_started_ GUARDED_BY(mutex_) = false;
  bool expect_cloud_events_ GUARDED_BY(mutex_) = true;
};

}  // namespace hb::test_support
