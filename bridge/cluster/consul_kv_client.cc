#include "bridge/cluster/consul_kv_client.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <system_error>
#include <thread>

#include "bridge/common/base64.h"
#include "bridge/common/file_io.h"

namespace hb {
namespace {

using nlohmann::json;

struct AnswerSink {
  std::string* body;
  std::size_t limit;
};

std::size_t AppendBody(char* data, std::size_t size, std::size_t count, void* out) {
  auto* sink = static_cast<AnswerSink*>(out);
  // An answer longer than what Consul can send for the request is not
  // Consul's, and is cut off.
  if (sink->body->size() + size * count > sink->limit) return 0;
  sink->body->append(data, size * count);
  return size * count;
}

// Consul answers these operations with no entry (the key is gone, or must
// not exist), where every other verb gives one.
bool AnswersWithoutEntry(std::string_view verb) {
  return verb == "delete" || verb == "delete-cas" || verb == "delete-tree" ||
         verb == "check-not-exists";
}

std::string TrimmedToken(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// A KV key in a URL path: each segment percent-encoded, the slashes kept
// (Consul decodes the path back into the key).
std::string KeyPath(std::string_view key) {
  std::string out = "/v1/kv/";
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = key.find('/', start);
    out +=
        PercentEncode(key.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return std::chrono::milliseconds(0);
  double total_ms = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = at;
    while (end < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) {
      ++end;
    }
    if (end == at) return std::nullopt;
    const double number = std::strtod(std::string(text.substr(at, end - at)).c_str(), nullptr);
    std::size_t unit_end = end;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(end, unit_end - end);
    double scale;
    if (unit == "h") {
      scale = 3600000;
    } else if (unit == "m") {
      scale = 60000;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "us" || unit == "µs") {
      scale = 0.001;
    } else if (unit == "ns") {
      scale = 0.000001;
    } else {
      return std::nullopt;
    }
    total_ms += number * scale;
    at = unit_end;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ms));
}

StatusOr<std::vector<KvPair>> ParseKvPairs(std::string_view body) {
  const json parsed = json::parse(body, nullptr, false);
  if (!parsed.is_array()) return Status::InvalidArgument("KV answer: not a JSON list");
  std::vector<KvPair> out;
  for (const json& item : parsed) {
    if (!item.is_object() || !item.contains("Key") || !item["Key"].is_string()) {
      return Status::InvalidArgument("KV answer: an entry without a Key");
    }
    KvPair pair;
    pair.key = item["Key"].get<std::string>();
    if (auto value = item.find("Value"); value != item.end() && value->is_string()) {
      auto decoded = DecodeBase64(value->get<std::string>());
      if (!decoded) return Status::InvalidArgument("KV answer: " + pair.key + ": bad base64 value");
      pair.value = std::move(*decoded);
    }
    if (auto session = item.find("Session"); session != item.end() && session->is_string()) {
      pair.session = session->get<std::string>();
    }
    const auto number = [&item](const char* name) -> std::uint64_t {
      auto it = item.find(name);
      return it != item.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
    };
    pair.lock_index = number("LockIndex");
    pair.modify_index = number("ModifyIndex");
    pair.flags = number("Flags");
    out.push_back(std::move(pair));
  }
  return out;
}

StatusOr<std::unique_ptr<ConsulKvClient>> ConsulKvClient::Create(
    const ConsulClientOptions& options) {
  if (!options.address.starts_with("http://") && !options.address.starts_with("https://")) {
    return Status::InvalidArgument("consul.address: not http(s)://host:port: " + options.address);
  }
  return std::make_unique<ConsulKvClient>(options);
}

ConsulKvClient::ConsulKvClient(const ConsulClientOptions& options)
    : options_(options), token_(options.token), timeout_(options.read_timeout) {
  InitCurlOnce();
  easy_.reset(curl_easy_init());
  if (!options_.token_file.empty()) {
    if (auto text = ReadWholeFile(options_.token_file); text.ok()) {
      token_ = TrimmedToken(std::move(*text));
    }
  }
}

ConsulKvClient::~ConsulKvClient() = default;

StatusOr<ConsulKvClient::Reply> ConsulKvClient::Send(
    const char* method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& body,
    std::size_t max_answer) {
  if (!easy_) return Status::Internal("curl_easy_init failed");
  std::string url = options_.address;
  while (url.ends_with('/')) url.pop_back();
  url += path;
  char separator = '?';
  const auto add = [&](const std::string& name, const std::string& value) {
    url += separator;
    url += name;
    if (!value.empty()) url += "=" + PercentEncode(value);
    separator = '&';
  };
  for (const auto& [name, value] : params) add(name, value);
  if (!options_.datacenter.empty()) add("dc", options_.datacenter);

  // Like the watch's requests: the certificate is checked against
  // consul.tls.server_name when set.
  const std::string connect_rule = RouteToServerName(url, options_.tls);
  CurlList connect_to;
  if (!connect_rule.empty()) connect_to.reset(curl_slist_append(nullptr, connect_rule.c_str()));

  for (int attempt = 0; attempt < 2; ++attempt) {
    CURL* easy = easy_.get();
    curl_easy_reset(easy);
    Reply reply;
    AnswerSink sink{&reply.body, max_answer};
    CurlList headers;
    if (!token_.empty()) {
      headers.reset(curl_slist_append(nullptr, ("X-Consul-Token: " + token_).c_str()));
    }
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(timeout_, options_.connect_timeout).count()));
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, AppendBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &sink);
    if (std::string_view(method) == "PUT") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    ApplyConsulTransport(easy, options_.tls);
    if (connect_to) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to.get());
    const CURLcode code = curl_easy_perform(easy);
    if (code == CURLE_OPERATION_TIMEDOUT) {
      return Status::DeadlineExceeded(std::string(method) + " " + path + ": timed out");
    }
    if (code != CURLE_OK) {
      return Status::Unavailable(std::string(method) + " " + path + ": " +
                                 curl_easy_strerror(code));
    }
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &reply.status);
    // A 403 may mean the token was rotated: read the file once more.
    if (reply.status == 403 && attempt == 0 && !options_.token_file.empty()) {
      if (auto text = ReadWholeFile(options_.token_file); text.ok()) {
        std::string fresh = TrimmedToken(std::move(*text));
        if (fresh != token_) {
          token_ = std::move(fresh);
          continue;
        }
      }
    }
    return reply;
  }
  return Status::PermissionDenied(std::string(method) + " " + path + ": 403");
}

Status ConsulKvClient::ErrorOf(const Reply& reply, const std::string& what) {
  std::string text = reply.body.substr(0, 200);
  const std::string message = what + ": HTTP " + std::to_string(reply.status) + ": " + text;
  if (reply.status == 403) return Status::PermissionDenied(message);
  if (reply.status == 404) return Status::NotFound(message);
  if (reply.status == 429 || reply.status >= 500) return Status::Unavailable(message);
  return Status::InvalidArgument(message);
}

StatusOr<SessionGrant> ConsulKvClient::CreateSession(const SessionSpec& spec) {
  const json body = {{"Name", spec.name},
                     {"TTL", std::to_string(spec.ttl.count()) + "ms"},
                     {"LockDelay", std::to_string(spec.lock_delay.count()) + "ms"},
                     // Release, never delete: a service lock key must survive its holder,
                     // or its LockIndex (the fencing epoch) would start again at 1.
                     {"Behavior", "release"}};
  auto reply = Send("PUT", "/v1/session/create", {}, body.dump());
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "session create");
  const json parsed = json::parse(reply->body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("ID") || !parsed["ID"].is_string() ||
      parsed["ID"].get<std::string>().empty()) {
    return Status::InvalidArgument("session create: answer without an ID");
  }
  return SessionGrant{parsed["ID"].get<std::string>(), spec.ttl};
}

StatusOr<std::chrono::milliseconds> ConsulKvClient::RenewSession(const std::string& id) {
  auto reply = Send("PUT", "/v1/session/renew/" + PercentEncode(id), {}, "");
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "session renew");
  const json parsed = json::parse(reply->body, nullptr, false);
  // An empty list is what some Consul versions answer for a session that
  // is gone.
  if (!parsed.is_array()) return Status::InvalidArgument("session renew: not a JSON list");
  if (parsed.empty()) return Status::NotFound("session renew: the session is gone");
  const json& session = parsed[0];
  if (!session.is_object() || !session.contains("TTL") || !session["TTL"].is_string()) {
    return Status::InvalidArgument("session renew: answer without a TTL");
  }
  auto ttl = ParseGoDuration(session["TTL"].get<std::string>());
  if (!ttl) return Status::InvalidArgument("session renew: bad TTL " + session["TTL"].dump());
  return *ttl;
}

Status ConsulKvClient::DestroySession(const std::string& id) {
  auto reply = Send("PUT", "/v1/session/destroy/" + PercentEncode(id), {}, "");
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "session destroy");
  return Status::Ok();
}

namespace {

StatusOr<bool> TrueOrFalse(const std::string& body, const std::string& what) {
  if (body.starts_with("true")) return true;
  if (body.starts_with("false")) return false;
  return Status::InvalidArgument(what + ": neither true nor false");
}

}  // namespace

StatusOr<bool> ConsulKvClient::Acquire(const std::string& key, const std::string& session,
                                       const std::string& value) {
  auto reply = Send("PUT", KeyPath(key), {{"acquire", session}}, value);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "acquire " + key);
  return TrueOrFalse(reply->body, "acquire " + key);
}

StatusOr<bool> ConsulKvClient::Release(const std::string& key, const std::string& session,
                                       const std::string& value) {
  auto reply = Send("PUT", KeyPath(key), {{"release", session}}, value);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "release " + key);
  return TrueOrFalse(reply->body, "release " + key);
}

StatusOr<bool> ConsulKvClient::PutCas(const std::string& key, const std::string& value,
                                      std::uint64_t cas) {
  auto reply = Send("PUT", KeyPath(key), {{"cas", std::to_string(cas)}}, value);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "put " + key);
  return TrueOrFalse(reply->body, "put " + key);
}

Status ConsulKvClient::Delete(const std::string& key, std::optional<std::uint64_t> cas) {
  std::vector<std::pair<std::string, std::string>> params;
  if (cas) params.emplace_back("cas", std::to_string(*cas));
  auto reply = Send("DELETE", KeyPath(key), params, "");
  if (!reply.ok()) return reply.status();
  if (reply->status != 200) return ErrorOf(*reply, "delete " + key);
  return Status::Ok();
}

StatusOr<std::optional<KvPair>> ConsulKvClient::Get(const std::string& key) {
  auto reply = Send("GET", KeyPath(key), {}, "");
  if (!reply.ok()) return reply.status();
  if (reply->status == 404) return std::optional<KvPair>();
  if (reply->status != 200) return ErrorOf(*reply, "get " + key);
  auto pairs = ParseKvPairs(reply->body);
  if (!pairs.ok()) return pairs.status();
  if (pairs->empty()) return std::optional<KvPair>();
  return std::optional<KvPair>(std::move(pairs->front()));
}

std::size_t ConsulKvClient::TxnOpBytes(const KvTxnOp& op) {
  // The JSON around the fields, with room for escapes in the key.
  return 96 + op.verb.size() + 2 * op.key.size() + (op.value.size() + 2) / 3 * 4 +
         op.session.size() + 20;
}

StatusOr<KvTxnAnswer> ConsulKvClient::Txn(const std::vector<KvTxnOp>& ops) {
  if (ops.empty() || ops.size() > kMaxTxnOps) {
    return Status::InvalidArgument("transaction: " + std::to_string(ops.size()) +
                                   " operations, 1 to " + std::to_string(kMaxTxnOps) + " allowed");
  }
  json body = json::array();
  std::size_t entries_expected = 0;
  for (const KvTxnOp& op : ops) {
    if (op.verb == "get-tree") {
      return Status::InvalidArgument(
          "transaction: get-tree answers any number of entries, which cannot be paired with "
          "its operation");
    }
    entries_expected += AnswersWithoutEntry(op.verb) ? 0 : 1;
    json kv = {{"Verb", op.verb}, {"Key", op.key}};
    if (!op.value.empty()) kv["Value"] = EncodeBase64(op.value);
    if (op.index != 0) kv["Index"] = op.index;
    if (!op.session.empty()) kv["Session"] = op.session;
    body.push_back({{"KV", std::move(kv)}});
  }
  const std::string text = body.dump();
  if (text.size() > kMaxTxnBodyBytes) {
    return Status::InvalidArgument("transaction: " + std::to_string(text.size()) +
                                   " bytes, Consul takes at most " +
                                   std::to_string(kMaxTxnBodyBytes));
  }
  // At most every operation's entry with a value of Consul's largest size.
  const std::size_t max_answer = 4096 + ops.size() * (512 * 1024 / 3 * 4 + 4096);
  auto reply = Send("PUT", "/v1/txn", {}, text, max_answer);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200 && reply->status != 409) return ErrorOf(*reply, "transaction");
  const json parsed = json::parse(reply->body, nullptr, false);
  if (!parsed.is_object()) return Status::InvalidArgument("transaction: answer not a JSON object");
  KvTxnAnswer answer;
  if (reply->status == 409) {
    const auto errors = parsed.find("Errors");
    if (errors == parsed.end() || !errors->is_array() || errors->empty()) {
      return Status::InvalidArgument("transaction: 409 without Errors");
    }
    for (const json& error : *errors) {
      const auto at = error.find("OpIndex");
      if (!error.is_object() || at == error.end() || !at->is_number_unsigned() ||
          at->get<std::size_t>() >= ops.size()) {
        return Status::InvalidArgument("transaction: an error without a valid OpIndex");
      }
      answer.failed.push_back(at->get<std::size_t>());
      if (answer.why.empty()) {
        if (auto what = error.find("What"); what != error.end() && what->is_string()) {
          answer.why = what->get<std::string>();
        }
      }
    }
    return answer;
  }
  const auto results = parsed.find("Results");
  // Go writes an empty list as null: a transaction of deletes only.
  const bool none = results != parsed.end() && results->is_null() && entries_expected == 0;
  if (!none && (results == parsed.end() || !results->is_array())) {
    return Status::InvalidArgument("transaction: answer without Results");
  }
  json entries = json::array();
  if (!none) {
    for (const json& result : *results) {
      const auto kv = result.is_object() ? result.find("KV") : result.end();
      if (kv == result.end()) return Status::InvalidArgument("transaction: a result without KV");
      entries.push_back(*kv);
    }
  }
  auto pairs = ParseKvPairs(entries.dump());
  if (!pairs.ok()) return pairs.status();
  if (pairs->size() != entries_expected) {
    return Status::InvalidArgument("transaction: " + std::to_string(pairs->size()) +
                                   " results for " + std::to_string(ops.size()) +
                                   " operations, of which " + std::to_string(entries_expected) +
                                   " answer with an entry");
  }
  answer.committed = true;
  answer.results.reserve(ops.size());
  auto next = pairs->begin();
  for (const KvTxnOp& op : ops) {
    if (AnswersWithoutEntry(op.verb)) {
      KvPair blank;
      blank.key = op.key;
      answer.results.push_back(std::move(blank));
    } else {
      answer.results.push_back(std::move(*next++));
    }
  }
  return answer;
}

std::vector<KvTxnGroupOutcome> SendTxnGroups(ConsulKvClient& client,
                                             std::span<const std::vector<KvTxnOp>> groups,
                                             const std::function<bool()>& may_send,
                                             Status* failure) {
  std::vector<KvTxnGroupOutcome> outcomes(groups.size());
  // The body budget leaves room for the list's own brackets and commas.
  constexpr std::size_t kBodyBudget = ConsulKvClient::kMaxTxnBodyBytes - 4096;
  std::size_t next = 0;
  while (next < groups.size() && may_send()) {
    std::vector<std::size_t> batch;
    std::size_t ops = 0;
    std::size_t bytes = 0;
    while (next < groups.size()) {
      std::size_t group_bytes = 0;
      for (const KvTxnOp& op : groups[next]) group_bytes += ConsulKvClient::TxnOpBytes(op);
      if (!batch.empty() && (ops + groups[next].size() > ConsulKvClient::kMaxTxnOps ||
                             bytes + group_bytes > kBodyBudget)) {
        break;
      }
      batch.push_back(next);
      ops += groups[next].size();
      bytes += group_bytes;
      ++next;
    }
    while (!batch.empty()) {
      std::vector<KvTxnOp> txn;
      std::vector<std::size_t> owner;  // operation -> position in `batch`
      for (std::size_t at = 0; at < batch.size(); ++at) {
        for (const KvTxnOp& op : groups[batch[at]]) {
          txn.push_back(op);
          owner.push_back(at);
        }
      }
      auto answer = client.Txn(txn);
      if (!answer.ok()) {
        *failure = answer.status();
        return outcomes;
      }
      if (answer->committed) {
        std::size_t op = 0;
        for (const std::size_t group : batch) {
          KvTxnGroupOutcome& outcome = outcomes[group];
          outcome.committed = true;
          outcome.results.assign(
              answer->results.begin() + static_cast<std::ptrdiff_t>(op),
              answer->results.begin() + static_cast<std::ptrdiff_t>(op + groups[group].size()));
          op += groups[group].size();
        }
        break;
      }
      std::vector<bool> refused(batch.size(), false);
      for (const std::size_t op : answer->failed) refused[owner[op]] = true;
      std::vector<std::size_t> rest;
      for (std::size_t at = 0; at < batch.size(); ++at) {
        if (refused[at]) {
          outcomes[batch[at]].refused = true;
          outcomes[batch[at]].why = answer->why;
        } else {
          rest.push_back(batch[at]);
        }
      }
      batch = std::move(rest);
    }
  }
  return outcomes;
}

std::vector<KvTxnGroupOutcome> SendTxnGroupsConcurrently(
    std::span<const std::unique_ptr<ConsulKvClient>> clients,
    std::span<const std::vector<KvTxnOp>> groups, const std::function<bool()>& may_send,
    Status* failure) {
  std::size_t ops = 0;
  for (const std::vector<KvTxnOp>& group : groups) ops += group.size();
  // A slice smaller than one full transaction would only add a connection's
  // round trip.
  const std::size_t slices =
      std::min({ops / ConsulKvClient::kMaxTxnOps, clients.size(), groups.size()});
  if (slices <= 1) return SendTxnGroups(*clients.front(), groups, may_send, failure);
  std::vector<KvTxnGroupOutcome> outcomes(groups.size());
  std::vector<Status> failures(slices);
  auto send_slice = [&](std::size_t slice) {
    const std::size_t begin = groups.size() * slice / slices;
    const std::size_t end = groups.size() * (slice + 1) / slices;
    std::vector<KvTxnGroupOutcome> sent = SendTxnGroups(
        *clients[slice], groups.subspan(begin, end - begin), may_send, &failures[slice]);
    std::move(sent.begin(), sent.end(), outcomes.begin() + static_cast<std::ptrdiff_t>(begin));
  };
  {
    std::vector<std::jthread> senders;
    senders.reserve(slices - 1);
    std::size_t inline_from = slices;  // slices no thread could be started for
    for (std::size_t slice = 1; slice < slices && inline_from == slices; ++slice) {
      try {
        senders.emplace_back(send_slice, slice);
      } catch (const std::system_error&) {
        inline_from = slice;  // out of threads: this one sends them, in turn
      }
    }
    send_slice(0);
    for (std::size_t slice = inline_from; slice < slices; ++slice) send_slice(slice);
  }  // joined
  for (Status& slice_failure : failures) {
    if (!slice_failure.ok()) {
      *failure = std::move(slice_failure);
      break;
    }
  }
  return outcomes;
}

}  // namespace hb
