#pragma once

// The webhook sink: one POST per event, CloudEvents structured mode, signed
// with the Standard Webhooks headers when a secret is set. One keep-alive
// connection per sink; proxies come from the standard environment variables
// (http_proxy, https_proxy, no_proxy), as libcurl reads them.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "bridge/common/clock.h"
#include "bridge/common/curl_handles.h"
#include "bridge/common/status.h"
#include "bridge/model/cloud_event.h"
#include "bridge/router/sink.h"
#include "sinks/sink_registry.h"
#include "sinks/webhook/webhook_config.h"

namespace hb {

class WebhookSink final : public Sink {
 public:
  // `clock` (for webhook-timestamp) must outlive the sink.
  static StatusOr<std::unique_ptr<WebhookSink>> Create(std::string name,
                                                       const WebhookSinkSettings& settings,
                                                       CloudEventOptions options,
                                                       const Clock& clock);

  // Use Create().
  struct PassKey {
    explicit PassKey() = default;
  };
  WebhookSink(PassKey, std::string name, WebhookSinkSettings settings, std::string signing_key,
              CloudEventOptions options, const Clock& clock);

  std::string_view Name() const override { return name_; }
  void Deliver(std::span<const EventPtr> events,
               std::span<DeliveryResult> results) noexcept override;
  bool Shutdown(std::chrono::milliseconds) noexcept override { return true; }
  // A TCP connection (and TLS handshake for https) to the URL's host, no
  // request sent; skipped behind a proxy from the environment, where only
  // the proxy is reachable directly.
  std::string Probe() noexcept override;
  // Aborts the request in progress (it is retried, or dead-lettered at
  // shutdown).
  void Interrupt() noexcept override { interrupted_ = true; }

  // What is kept of a receiver's answer (filled by curl's callbacks).
  struct Response {
    std::string body;  // its first bytes, quoted in errors
    std::size_t body_bytes = 0;
    bool body_truncated = false;  // it was longer than the sink reads
    std::string retry_after;
  };

 private:
  static constexpr int kMaxRedirects = 5;

  struct Exchange {
    std::string error;  // set when no HTTP answer came
    long status = 0;
    Response response;
    std::string location;  // where a 3xx points, absolute
  };

  DeliveryResult Post(const Event& event);
  // One POST of the event to `url`, without following redirects.
  Exchange Send(const std::string& url, const Event& event, std::int64_t timestamp,
                const std::string& body, bool with_credentials);

  const std::string name_;
  const WebhookSinkSettings settings_;
  const std::optional<std::string> signing_key_;
  const CloudEventOptions options_;
  const Clock& clock_;
  CurlEasy curl_;  // reused so the connection is kept alive between events
  std::atomic<bool> interrupted_{false};
};

// How a webhook answer is handled (Standard Webhooks' status rules):
// 2xx delivered; 408, 429 and 5xx retried (honouring Retry-After); 410 gone
// and other 4xx permanent; 3xx retried, since redirects are not followed
// unless configured and the fix is the URL. `body` is the start of the
// response body, quoted in the error.
DeliveryResult ClassifyWebhookResponse(long status, std::string_view body,
                                       std::optional<std::chrono::milliseconds> retry_after);

// The longest delay a receiver's Retry-After can ask for. The router also
// holds a retried event to the sink's max_backoff and max_age.
inline constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::hours(1);

// Retry-After: delay-seconds or an HTTP-date, clamped to [0, kMaxRetryAfter];
// nullopt when unparseable (a sign, a fraction, garbage, over 64 bytes).
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value, WallTime now);

StatusOr<SinkPtr> CreateWebhookSink(const SinkConfig& config, const SinkContext& context);

}  // namespace hb
