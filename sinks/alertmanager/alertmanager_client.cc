#include "sinks/alertmanager/alertmanager_client.h"

#include <algorithm>
#include <cctype>

#include "bridge/common/redact.h"
#include "bridge/common/version.h"
#include "sinks/webhook/webhook_sink.h"

namespace hb {
namespace {

constexpr std::string_view kAlertsPath = "/api/v2/alerts";
// Enough of an error answer to say what Alertmanager objected to.
constexpr std::size_t kKeptBodyBytes = 256;
// How long one wait for network activity may last before the loop looks at
// the interrupt flag again (curl_multi_wakeup usually cuts it short).
constexpr int kPollMillis = 200;

// An answer is read this far at most: a huge or endless one must not hold
// the sink until its timeout (as in the webhook sink).
constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto& answer = *static_cast<AnswerStart*>(user);
  const std::size_t bytes = size * count;
  answer.text.append(
      data, std::min(bytes, kKeptBodyBytes - std::min(kKeptBodyBytes, answer.text.size())));
  answer.bytes += bytes;
  if (answer.bytes > kMaxAnswerBytes) {
    answer.cut = true;
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
    *static_cast<std::string*>(user) =
        first == std::string_view::npos ? "" : std::string(value.substr(first, last - first + 1));
  }
  return size * count;
}

// A non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int OnProgress(void* interrupted, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(interrupted)->load() ? 1 : 0;
}

}  // namespace

std::string AlertsEndpoint(std::string_view url) {
  std::string endpoint(url);
  if (endpoint.ends_with(kAlertsPath)) return endpoint;
  while (endpoint.ends_with('/')) endpoint.pop_back();
  return endpoint + std::string(kAlertsPath);
}

AlertmanagerClient::AlertmanagerClient(PassKey, const AlertmanagerSinkSettings& settings,
                                       const Clock& clock)
    : settings_(settings), clock_(clock) {
  InitCurlOnce();
  multi_.reset(curl_multi_init());
  for (const std::string& url : settings_.urls) {
    Target& target = targets_.emplace_back();
    target.endpoint = AlertsEndpoint(url);
    target.described = RedactUrl(target.endpoint);
    target.curl.reset(curl_easy_init());
  }
}

StatusOr<std::unique_ptr<AlertmanagerClient>> AlertmanagerClient::Create(
    const AlertmanagerSinkSettings& settings, const Clock& clock) {
  auto client = std::make_unique<AlertmanagerClient>(PassKey{}, settings, clock);
  if (!client->multi_) return Status::Internal("curl_multi_init failed");
  for (const Target& target : client->targets_) {
    if (!target.curl) return Status::Internal("curl_easy_init failed");
  }
  return client;
}

void AlertmanagerClient::Interrupt() noexcept {
  interrupted_ = true;
  if (multi_) curl_multi_wakeup(multi_.get());
}

void AlertmanagerClient::Prepare(Target& target, const std::string& body, curl_slist* headers) {
  CURL* curl = target.curl.get();
  curl_easy_reset(curl);  // keeps the connection, forgets the last request
  target.answer = AnswerStart{};
  target.retry_after.clear();
  target.error[0] = '\0';
  static const std::string user_agent = std::string("health-bridge/") + kVersion;
  curl_easy_setopt(curl, CURLOPT_URL, target.endpoint.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(settings_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(settings_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, target.error.data());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &target.answer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &target.retry_after);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &interrupted_);
  curl_easy_setopt(curl, CURLOPT_PRIVATE, &target);
  if (!settings_.basic_username.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(curl, CURLOPT_USERNAME, settings_.basic_username.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, settings_.basic_password.c_str());
  }
  if (!settings_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, settings_.ca_file.c_str());
}

std::vector<DeliveryResult> AlertmanagerClient::PostToAll(const std::string& body,
                                                          const std::vector<bool>& skip) {
  std::vector<DeliveryResult> results(targets_.size(),
                                      DeliveryResult::Retry("not attempted in this round"));
  if (interrupted_) {
    std::fill(results.begin(), results.end(), DeliveryResult::Retry("shutting down"));
    return results;
  }
  CurlList headers;
  auto add = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  add("Content-Type: application/json");
  if (!settings_.bearer_token.empty()) add("Authorization: Bearer " + settings_.bearer_token);
  for (const auto& [name, value] : settings_.headers)
    add(std::string(name).append(": ").append(value));
  // Without this curl waits for "100 Continue" before sending a body over
  // 1 KiB, a round trip that costs a second against servers that do not
  // answer it.
  add("Expect:");
  if (!headers) {
    std::fill(results.begin(), results.end(),
              DeliveryResult::Retry("out of memory building the request"));
    return results;
  }

  CURLM* multi = multi_.get();
  std::vector<bool> added(targets_.size(), false);
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (!skip.empty() && skip[i]) continue;
    Prepare(targets_[i], body, headers.get());
    added[i] = curl_multi_add_handle(multi, targets_[i].curl.get()) == CURLM_OK;
    if (!added[i]) results[i] = DeliveryResult::Retry("curl_multi_add_handle failed");
  }

  // Every transfer has its own timeout (CURLOPT_TIMEOUT_MS), so the loop ends.
  int running = 0;
  do {
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    if (running > 0) curl_multi_poll(multi, nullptr, 0, kPollMillis, nullptr);
  } while (running > 0);

  std::vector<bool> finished(targets_.size(), false);
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Target* target = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &target);
    const auto i = static_cast<std::size_t>(target - targets_.data());
    finished[i] = true;
    const std::string where = "alertmanager " + target->described + ": ";
    if (message->data.result != CURLE_OK &&
        !(message->data.result == CURLE_WRITE_ERROR && target->answer.cut)) {
      results[i] = DeliveryResult::Retry(where + "POST failed: " +
                                         (target->error[0] != '\0'
                                              ? target->error.data()
                                              : curl_easy_strerror(message->data.result)));
      continue;
    }
    long status = 0;
    curl_easy_getinfo(message->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    results[i] = ClassifyWebhookResponse(status, target->answer.text,
                                         ParseRetryAfter(target->retry_after, clock_.WallNow()));
    if (results[i].kind != DeliveryResult::Kind::kOk) results[i].error = where + results[i].error;
  }
  for (std::size_t i = 0; i < targets_.size(); ++i) {
    if (!added[i]) continue;
    curl_multi_remove_handle(multi, targets_[i].curl.get());
    if (!finished[i]) {
      results[i] =
          DeliveryResult::Retry("alertmanager " + targets_[i].described +
                                (interrupted_ ? ": shutting down" : ": POST did not finish"));
    }
  }
  return results;
}

}  // namespace hb
