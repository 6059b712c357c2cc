#pragma once

// Posts one body of alerts to every configured Alertmanager at once (curl
// multi), so a slow or dead one costs one timeout, not one per Alertmanager.
// One keep-alive connection per Alertmanager. Not thread-safe, except for
// Interrupt().

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/common/clock.h"
#include "bridge/common/curl_handles.h"
#include "bridge/common/status.h"
#include "bridge/router/sink.h"
#include "sinks/alertmanager/alertmanager_config.h"

namespace hb {

// <url>/api/v2/alerts, unless `url` already ends in it.
std::string AlertsEndpoint(std::string_view url);

struct CurlMultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;

// What is kept of an answer: its start, for errors, and whether it was cut
// (an answer is read to kMaxAnswerBytes at most; its status decides).
struct AnswerStart {
  std::string text;
  std::size_t bytes = 0;
  bool cut = false;
};

class AlertmanagerClient {
 public:
  // `clock` (for Retry-After dates) must outlive the client.
  static StatusOr<std::unique_ptr<AlertmanagerClient>> Create(
      const AlertmanagerSinkSettings& settings, const Clock& clock);

  struct PassKey {
    explicit PassKey() = default;
  };
  AlertmanagerClient(PassKey, const AlertmanagerSinkSettings& settings, const Clock& clock);

  std::size_t size() const { return targets_.size(); }
  // The endpoint of Alertmanager `i`, for logs (credentials in it are cut).
  const std::string& Describe(std::size_t i) const { return targets_[i].described; }

  // POSTs `body` (a JSON array of alerts) to the Alertmanagers whose
  // `skip[i]` is false (all when `skip` is empty) and returns each one's
  // answer classified as the webhook sink does (2xx ok; 408, 429, 5xx and
  // network errors retried; other 4xx permanent). Skipped ones get kRetry.
  std::vector<DeliveryResult> PostToAll(const std::string& body,
                                        const std::vector<bool>& skip = {});

  // Aborts the posts in progress and every later one.
  void Interrupt() noexcept;

 private:
  struct Target {
    std::string endpoint;
    std::string described;
    CurlEasy curl;
    AnswerStart answer;  // what is read of Alertmanager's answer
    std::string retry_after;
    std::array<char, CURL_ERROR_SIZE> error{};
  };

  void Prepare(Target& target, const std::string& body, curl_slist* headers);

  const AlertmanagerSinkSettings settings_;
  const Clock& clock_;
  std::vector<Target> targets_;
  CurlMulti multi_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace hb
