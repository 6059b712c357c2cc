#include "sinks/webhook/webhook_sink.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "bridge/common/version.h"
#include "sinks/webhook/webhook_signature.h"

namespace hb {
namespace {

using std::chrono::milliseconds;

// Enough of an error page to say what the receiver objected to.
constexpr std::size_t kKeptBodyBytes = 256;

struct Response {
  std::string body;  // the first kKeptBodyBytes
  std::string retry_after;
};

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto& body = static_cast<Response*>(user)->body;
  const std::size_t bytes = size * count;
  body.append(data, std::min(bytes, kKeptBodyBytes - std::min(kKeptBodyBytes, body.size())));
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
    static_cast<Response*>(user)->retry_after =
        first == std::string_view::npos ? "" : std::string(value.substr(first, last - first + 1));
  }
  return size * count;
}

// A non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int OnProgress(void* interrupted, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(interrupted)->load() ? 1 : 0;
}

// Response bodies go to logs: keep them on one printable line.
std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    out += std::isprint(static_cast<unsigned char>(c)) != 0 ? c : ' ';
  }
  return out;
}

}  // namespace

std::optional<milliseconds> ParseRetryAfter(std::string_view value, WallTime now) {
  if (value.empty()) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (error == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    return std::chrono::duration_cast<milliseconds>(std::chrono::seconds(seconds));
  }
  const std::string text(value);
  const time_t date = curl_getdate(text.c_str(), nullptr);
  if (date == -1) return std::nullopt;
  const auto delay = std::chrono::system_clock::from_time_t(date) - now;
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(delay));
}

DeliveryResult ClassifyWebhookResponse(long status, std::string_view body,
                                       std::optional<milliseconds> retry_after) {
  if (status >= 200 && status < 300) return DeliveryResult::Ok();
  std::string error = "HTTP " + std::to_string(status);
  if (!body.empty()) error += ": " + Printable(body);
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

  CurlList headers;
  auto add = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  add("Content-Type: application/cloudevents+json");
  add("webhook-id: " + event.id);
  add("webhook-timestamp: " + std::to_string(timestamp));
  if (signing_key_) {
    add("webhook-signature: " + SignWebhook(*signing_key_, event.id, timestamp, body));
  }
  if (!settings_.bearer_token.empty()) add("Authorization: Bearer " + settings_.bearer_token);
  for (const auto& [name, value] : settings_.headers) add(name + ": " + value);
  // Without this curl waits for "100 Continue" before sending a body over
  // 1 KiB, a round trip most receivers never answer.
  add("Expect:");
  if (!headers) return DeliveryResult::Retry("out of memory building the request");

  CURL* curl = curl_.get();
  curl_easy_reset(curl);  // keeps the connection, forgets the last request
  Response response;
  std::array<char, CURL_ERROR_SIZE> error{};
  const std::string user_agent = std::string("health-bridge/") + kVersion;
  curl_easy_setopt(curl, CURLOPT_URL, settings_.url.c_str());
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
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &interrupted_);
  if (settings_.follow_redirects) {
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_POSTREDIR, static_cast<long>(CURL_REDIR_POST_ALL));
  }
  if (!settings_.basic_username.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl, CURLOPT_USERNAME, settings_.basic_username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, settings_.basic_password.c_str());
  }
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());

  if (const CURLcode code = curl_easy_perform(curl); code != CURLE_OK) {
    // The URL is left out: it may carry credentials.
    return DeliveryResult::Retry(std::string("POST failed: ") +
                                 (error[0] != '\0' ? error.data() : curl_easy_strerror(code)));
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  return ClassifyWebhookResponse(status, response.body,
                                 ParseRetryAfter(response.retry_after, clock_.WallNow()));
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

StatusOr<SinkPtr> CreateWebhookSink(const SinkConfig& config, const SinkContext& context) {
  const auto* settings = dynamic_cast<const WebhookSinkSettings*>(config.settings.get());
  if (settings == nullptr) return Status::Internal("sink " + config.name + ": not a webhook sink");
  if (context.clock == nullptr) return Status::Internal("sink " + config.name + ": no clock");
  auto sink = WebhookSink::Create(config.name, *settings, context.events, *context.clock);
  if (!sink.ok()) return sink.status();
  return SinkPtr(std::move(sink).value());
}

}  // namespace hb
