#include "sinks/webhook/webhook_sink.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>

#include "bridge/common/peer_text.h"
#include "bridge/common/redact.h"
#include "bridge/common/version.h"
#include "sinks/webhook/webhook_signature.h"

namespace hb {
namespace {

using std::chrono::milliseconds;

// Enough of an error page to say what the receiver objected to.
constexpr std::size_t kKeptBodyBytes = 256;

// A receiver's answer is read this far at most: a huge or endless body
// must not hold the sink (the status line has said what matters).
constexpr std::size_t kMaxBodyBytes = 64 * 1024;

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto& response = *static_cast<WebhookSink::Response*>(user);
  const std::size_t bytes = size * count;
  response.body.append(
      data, std::min(bytes, kKeptBodyBytes - std::min(kKeptBodyBytes, response.body.size())));
  response.body_bytes += bytes;
  if (response.body_bytes > kMaxBodyBytes) {
    response.body_truncated = true;
    return 0;  // ends the transfer
  }
  return bytes;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  const std::string_view line(data, size * count);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      std::equal(kName.begin(), kName.end(), line.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    std::string_view value = line.substr(kName.size());
    const auto first = value.find_first_not_of(" \t");
    const auto last = value.find_last_not_of(" \t\r\n");
    static_cast<WebhookSink::Response*>(user)->retry_after =
        first == std::string_view::npos ? "" : std::string(value.substr(first, last - first + 1));
  }
  return size * count;
}

// A non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int OnProgress(void* interrupted, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(interrupted)->load() ? 1 : 0;
}

// Same scheme, host and port (the port made explicit for both).
bool SameOrigin(const std::string& a, const std::string& b) {
  auto origin = [](const std::string& url) -> std::optional<std::string> {
    CURLU* handle = curl_url();
    if (handle == nullptr) return std::nullopt;
    std::optional<std::string> out;
    if (curl_url_set(handle, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
      char* scheme = nullptr;
      char* host = nullptr;
      char* port = nullptr;
      if (curl_url_get(handle, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
          curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
          curl_url_get(handle, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        out = std::string(scheme) + "://" + host + ":" + port;
      }
      curl_free(scheme);
      curl_free(host);
      curl_free(port);
    }
    curl_url_cleanup(handle);
    return out;
  };
  const auto first = origin(a);
  return first && first == origin(b);
}

}  // namespace

std::optional<milliseconds> ParseRetryAfter(std::string_view value, WallTime now) {
  if (value.empty() || value.size() > 64) return std::nullopt;
  constexpr auto kMaxSeconds = std::chrono::duration_cast<std::chrono::seconds>(kMaxRetryAfter);
  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    std::uint64_t seconds = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // Past the cap (or past 64 bits) is the cap: a receiver's number must
    // never overflow a deadline into the past.
    if (error == std::errc::result_out_of_range ||
        seconds > static_cast<std::uint64_t>(kMaxSeconds.count())) {
      return kMaxRetryAfter;
    }
    return std::chrono::duration_cast<milliseconds>(std::chrono::seconds(seconds));
  }
  const std::string text(value);
  const time_t date = curl_getdate(text.c_str(), nullptr);
  if (date == -1) return std::nullopt;
  // Clamped in seconds, before the conversion to milliseconds: a date
  // millions of years ahead must not overflow it.
  const auto until = std::chrono::seconds(date) -
                     std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  return std::chrono::duration_cast<milliseconds>(
      std::clamp(until, std::chrono::seconds(0), kMaxSeconds));
}

DeliveryResult ClassifyWebhookResponse(long status, std::string_view body,
                                       std::optional<milliseconds> retry_after) {
  if (status >= 200 && status < 300) return DeliveryResult::Ok();
  std::string error = "HTTP " + std::to_string(status);
  // Response bodies go to logs, dead letters and /v1/sinks: one printable
  // line (an HTML error page: its title).
  if (const std::string summary = SummarizePeerText(body); !summary.empty()) {
    error += ": " + summary;
  }
  if (status == 410) return DeliveryResult::Reject(error + " (the endpoint is gone)");
  if (status == 408 || status == 429 || status >= 500 || status < 400) {
    if (status >= 300 && status < 400) error += " (redirects are not followed: fix the url)";
    return DeliveryResult::Retry(std::move(error), retry_after);
  }
  return DeliveryResult::Reject(std::move(error));
}

WebhookSink::WebhookSink(PassKey, std::string name, WebhookSinkSettings settings,
                         std::string signing_key, CloudEventOptions options, const Clock& clock)
    : name_(std::move(name)),
      settings_(std::move(settings)),
      signing_key_(settings_.secret.empty() ? std::nullopt
                                            : std::optional<std::string>(std::move(signing_key))),
      options_(std::move(options)),
      clock_(clock) {
  InitCurlOnce();
  curl_.reset(curl_easy_init());
}

StatusOr<std::unique_ptr<WebhookSink>> WebhookSink::Create(std::string name,
                                                           const WebhookSinkSettings& settings,
                                                           CloudEventOptions options,
                                                           const Clock& clock) {
  auto key = WebhookSigningKey(settings.secret);
  if (!key) return Status::InvalidArgument("sink " + name + ": secret: not valid whsec_ base64");
  auto sink = std::make_unique<WebhookSink>(PassKey{}, std::move(name), settings, std::move(*key),
                                            std::move(options), clock);
  if (!sink->curl_) return Status::Internal("sink " + sink->name_ + ": curl_easy_init failed");
  return sink;
}

DeliveryResult WebhookSink::Post(const Event& event) {
  const std::string body = SerializeCloudEvent(event, options_);
  const std::int64_t timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(clock_.WallNow().time_since_epoch()).count();
  std::string url = settings_.url;
  // Credentials and custom headers go to the configured origin only: a
  // receiver that redirects elsewhere gets the signed event, not the keys.
  bool configured_origin = true;
  for (int redirects = 0;; ++redirects) {
    Exchange exchange = Send(url, event, timestamp, body, configured_origin);
    if (!exchange.error.empty()) {
      return DeliveryResult::Retry("POST " + RedactUrl(url) + " failed: " + exchange.error);
    }
    const bool redirect = exchange.status == 301 || exchange.status == 302 ||
                          exchange.status == 303 || exchange.status == 307 ||
                          exchange.status == 308;
    if (redirect && settings_.follow_redirects && !exchange.location.empty()) {
      if (redirects == kMaxRedirects) {
        return DeliveryResult::Retry("POST " + RedactUrl(settings_.url) + ": more than " +
                                     std::to_string(kMaxRedirects) + " redirects: fix the url");
      }
      configured_origin = configured_origin && SameOrigin(settings_.url, exchange.location);
      url = std::move(exchange.location);
      continue;
    }
    DeliveryResult result =
        ClassifyWebhookResponse(exchange.status, exchange.response.body,
                                ParseRetryAfter(exchange.response.retry_after, clock_.WallNow()));
    // The target is named, its secrets (user info, query) masked.
    if (result.kind != DeliveryResult::Kind::kOk) {
      result.error = "POST " + RedactUrl(url) + ": " + result.error;
    }
    return result;
  }
}

WebhookSink::Exchange WebhookSink::Send(const std::string& url, const Event& event,
                                        std::int64_t timestamp, const std::string& body,
                                        bool with_credentials) {
  Exchange exchange;
  CurlList headers;
  auto add = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  add("Content-Type: application/cloudevents+json");
  // The id's parts are percent-encoded by the engine: no line break can
  // reach this header whatever Consul holds.
  add("webhook-id: " + event.id);
  add("webhook-timestamp: " + std::to_string(timestamp));
  if (signing_key_) {
    add("webhook-signature: " + SignWebhook(*signing_key_, event.id, timestamp, body));
  }
  if (with_credentials) {
    if (!settings_.bearer_token.empty()) add("Authorization: Bearer " + settings_.bearer_token);
    for (const auto& [name, value] : settings_.headers) add(name + ": " + value);
  }
  // Without this curl waits for "100 Continue" before sending a body over
  // 1 KiB, a round trip most receivers never answer.
  add("Expect:");
  if (!headers) {
    exchange.error = "out of memory building the request";
    return exchange;
  }

  CURL* curl = curl_.get();
  curl_easy_reset(curl);  // keeps the connection, forgets the last request
  std::array<char, CURL_ERROR_SIZE> error{};
  const std::string user_agent = std::string("health-bridge/") + kVersion;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error.data());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &exchange.response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &exchange.response);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &interrupted_);
  if (with_credentials && !settings_.basic_username.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl, CURLOPT_USERNAME, settings_.basic_username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, settings_.basic_password.c_str());
  }
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());

  const CURLcode code = curl_easy_perform(curl);
  // A body past the limit ends the transfer (its start is all that is kept):
  // the answer's status still decides.
  if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && exchange.response.body_truncated)) {
    // The caller names the URL, masked: it may carry credentials.
    exchange.error = error[0] != '\0' ? error.data() : curl_easy_strerror(code);
    return exchange;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &exchange.status);
  if (const char* location = nullptr;
      curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
      location != nullptr) {
    exchange.location = location;
  }
  return exchange;
}

void WebhookSink::Deliver(std::span<const EventPtr> events,
                          std::span<DeliveryResult> results) noexcept {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (interrupted_) {
      results[i] = DeliveryResult::Retry("shutting down");
      continue;
    }
    try {
      results[i] = Post(*events[i]);
    } catch (const std::exception& error) {
      results[i] = DeliveryResult::Retry(error.what());
    }
  }
}

std::string WebhookSink::Probe() noexcept {
  for (const char* proxy : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    if (const char* value = std::getenv(proxy); value != nullptr && *value != '\0') return "";
  }
  try {
    CurlEasy probe(curl_easy_init());
    if (!probe) return "";
    CURL* curl = probe.get();
    std::array<char, CURL_ERROR_SIZE> error{};
    curl_easy_setopt(curl, CURLOPT_URL, settings_.url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(settings_.connect_timeout.count()));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error.data());
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &interrupted_);
    if (!settings_.ca_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());
    }
    const CURLcode code = curl_easy_perform(curl);
    if (code == CURLE_OK || interrupted_) return "";
    return "connecting to " + RedactUrl(settings_.url) +
           " failed: " + (error[0] != '\0' ? error.data() : curl_easy_strerror(code));
  } catch (const std::exception&) {
    return "";  // out of memory: the first delivery will tell
  }
}

StatusOr<SinkPtr> CreateWebhookSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const WebhookSinkSettings*>(config.settings.get());
  if (settings == nullptr) return Status::Internal("sink " + config.name + ": not a webhook sink");
  if (context.clock == nullptr) return Status::Internal("sink " + config.name + ": no clock");
  auto sink = WebhookSink::Create(config.name, *settings, context.events, *context.clock);
  if (!sink.ok()) return sink.status();
  return SinkPtr(std::move(sink).value());
}

}  // namespace hb
