// /v1/kv/<key>: reads (a key, ?recurse, ?keys, ?raw; blocking), writes
// (?flags, ?cas, ?acquire, ?release) and deletes (?recurse, ?cas), and the
// KV operations of /v1/txn, as kv_store.h describes.

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "tests/support/consul/consul_test_server.h"

namespace hb::test_support {
namespace {

bool IsTrueParam(const httplib::Request& request, const char* name) {
  if (!request.has_param(name)) return false;
  const std::string value = request.get_param_value(name);
  return value != "false" && value != "0";
}

// An unsigned query parameter; nullopt (and a 400 in `error`) when it does
// not parse, as Go's strconv.ParseUint refuses it.
std::optional<std::uint64_t> UnsignedParam(const httplib::Request& request, const char* name,
                                           std::string& error) {
  const std::string text = request.get_param_value(name);
  std::uint64_t value = 0;
  const auto [end, failure] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (failure != std::errc() || end != text.data() + text.size() || text.empty()) {
    error = std::string("Invalid ") + name + " value: strconv.ParseUint: parsing \"" + text +
            "\": invalid syntax";
    return std::nullopt;
  }
  return value;
}

// Consul's limits on a transaction: its operations (maxTxnOps: 128 since
// Consul 1.14, the first with get-or-empty, which this server serves too)
// and its body (txn_max_req_len, 512 KiB by default).
constexpr std::size_t kMaxTxnOps = 128;
constexpr std::size_t kMaxTxnBytes = 512 * 1024;

struct TxnParse {
  std::vector<KvStore::TxnOp> ops;
  int status = 200;
  std::string error;
};

// A member of a JSON object, found as Go's decoder finds it: the exact
// name first, then any other case.
const nlohmann::json* Member(const nlohmann::json& object, std::string_view name) {
  if (auto it = object.find(std::string(name)); it != object.end()) return &*it;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const std::string& key = it.key();
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &*it;
    }
  }
  return nullptr;
}

std::optional<std::string> DecodeStdBase64(const std::string& text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t padding = 0;
  for (const char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=') {
      ++padding;
      continue;
    } else {
      return std::nullopt;
    }
    if (padding > 0) return std::nullopt;  // data after the padding
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if (padding > 2) return std::nullopt;
  return out;
}

// The body of PUT /v1/txn as Consul's agent decodes it: a list of
// operations, each an object naming one kind (only KV here).
TxnParse ParseTxnBody(const std::string& body) {
  using nlohmann::json;
  TxnParse parsed;
  const auto bad = [&parsed](std::string why) {
    parsed.status = 400;
    parsed.error = "Failed to parse body: " + std::move(why);
    return parsed;
  };
  const json list = json::parse(body, nullptr, false);
  if (list.is_discarded()) return bad("invalid character in the JSON body");
  if (!list.is_array() && !list.is_null()) {
    return bad("json: cannot unmarshal " + std::string(list.type_name()) +
               " into Go value of type api.TxnOps");
  }
  if (list.size() > kMaxTxnOps) {
    parsed.status = 413;
    parsed.error = "Transaction contains too many operations (" + std::to_string(list.size()) +
                   " > " + std::to_string(kMaxTxnOps) + ")";
    return parsed;
  }
  for (std::size_t i = 0; list.is_array() && i < list.size(); ++i) {
    const json& item = list[i];
    if (!item.is_object()) return bad("operation " + std::to_string(i) + " is not an object");
    KvStore::TxnOp op;
    for (const char* other : {"Node", "Service", "Check"}) {
      if (const json* kind = Member(item, other); kind != nullptr && !kind->is_null()) {
        parsed.status = 400;
        parsed.error = std::string(
                           "consul test server: /v1/txn implements KV operations only, "
                           "not the ") +
                       other + " operation at index " + std::to_string(i);
        return parsed;
      }
    }
    const json* kv = Member(item, "KV");
    if (kv == nullptr || kv->is_null()) {
      op.none = true;
      parsed.ops.push_back(std::move(op));
      continue;
    }
    if (!kv->is_object()) return bad("KV of operation " + std::to_string(i) + " is not an object");
    const auto text = [&](const char* name, std::string& out) -> bool {
      const json* field = Member(*kv, name);
      if (field == nullptr || field->is_null()) return true;
      if (!field->is_string()) return false;
      out = field->get<std::string>();
      return true;
    };
    const auto number = [&](const char* name, std::uint64_t& out) -> bool {
      const json* field = Member(*kv, name);
      if (field == nullptr || field->is_null()) return true;
      if (!field->is_number_unsigned()) return false;
      out = field->get<std::uint64_t>();
      return true;
    };
    std::string value;
    if (!text("Verb", op.verb) || !text("Key", op.key) || !text("Session", op.session) ||
        !text("Value", value)) {
      return bad("json: cannot unmarshal a non-string into a string field of operation " +
                 std::to_string(i));
    }
    if (!number("Flags", op.flags) || !number("Index", op.index)) {
      return bad("json: cannot unmarshal a non-number into an uint64 field of operation " +
                 std::to_string(i));
    }
    auto decoded = DecodeStdBase64(value);
    if (!decoded) return bad("illegal base64 data in the Value of operation " + std::to_string(i));
    op.value = std::move(*decoded);
    if (op.value.size() > KvStore::kMaxValueSize) {
      parsed.status = 413;
      parsed.error = "Value for key " + json(op.key).dump() + " is too large (" +
                     std::to_string(op.value.size()) + " > " +
                     std::to_string(KvStore::kMaxValueSize) + " bytes)";
      return parsed;
    }
    parsed.ops.push_back(std::move(op));
  }
  return parsed;
}

}  // namespace

void ConsulTestServer::ServeKvRoutes(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  using nlohmann::json;

  server.Get(R"(/v1/kv/(.*))", [this](const Request& request, Response& response) {
    const std::string key = request.matches[1];
    const bool keys = request.has_param("keys");
    const bool recurse = keys || IsTrueParam(request, "recurse") || request.has_param("recurse");
    const bool raw = request.has_param("raw");
    if (!recurse && key.empty()) {
      response.status = 400;
      response.set_content("Missing key name", "text/plain");
      return;
    }
    if (recurse) {
      const std::string separator = request.get_param_value("separator");
      ServeBlocking(
          request, response, "kvtree:" + key,
          [this, key] {
            mutex_.AssertReaderHeld();  // ServeBlocking calls it under the lock
            const std::uint64_t index = kv_.PrefixIndex(key);
            return index != 0 ? index : kv_.TableIndex();
          },
          [this, key, keys, separator] {
            mutex_.AssertReaderHeld();
            if (keys) return Answer{200, json(kv_.Keys(key, separator)).dump()};
            const auto entries = kv_.List(key);
            if (entries.empty()) return Answer{404, ""};
            json out = json::array();
            for (const KvEntry* entry : entries) out.push_back(KvStore::EntryJson(*entry));
            return Answer{200, out.dump()};
          },
          false);
      return;
    }
    ServeBlocking(
        request, response, "kv:" + key,
        [this, key] {
          mutex_.AssertReaderHeld();
          return kv_.KeyIndex(key);
        },
        [this, key, raw] {
          mutex_.AssertReaderHeld();
          const KvEntry* entry = kv_.Get(key);
          if (entry == nullptr) return Answer{404, ""};
          if (raw) return Answer{200, entry->value};
          return Answer{200, json::array({KvStore::EntryJson(*entry)}).dump()};
        },
        false,
        [this] {
          mutex_.AssertReaderHeld();
          return std::max<std::uint64_t>(kv_.TableIndex(), 1);
        });
  });
  server.Put(R"(/v1/kv/(.*))", [this](const Request& request, Response& response,
                                      const httplib::ContentReader& reader) {
    KvStore::Write write;
    write.key = request.matches[1];
    std::string error;
    if (request.has_param("flags")) {
      auto flags = UnsignedParam(request, "flags", error);
      if (!flags) return FinishWrite(response, error);
      write.flags = *flags;
    }
    if (request.has_param("cas")) {
      write.cas = UnsignedParam(request, "cas", error);
      if (!write.cas) return FinishWrite(response, error);
    }
    if (request.has_param("acquire")) write.acquire = request.get_param_value("acquire");
    if (request.has_param("release")) write.release = request.get_param_value("release");
    // Stop reading past the limit, so an oversized body is refused without
    // being held in memory.
    std::size_t received = 0;
    reader([&](const char* data, std::size_t length) {
      received += length;
      if (received > KvStore::kMaxValueSize) return false;
      write.value.append(data, length);
      return true;
    });
    if (received > KvStore::kMaxValueSize) {
      const std::string declared = request.get_header_value("Content-Length");
      return FinishWrite(
          response,
          "Request body(" + (declared.empty() ? std::to_string(received) : declared) +
              " bytes) too large, max size: " + std::to_string(KvStore::kMaxValueSize) + " bytes.",
          413);
    }
    KvStore::Result result;
    {
      WriterMutexLock lock(&mutex_);
      result = kv_.Put(write, sessions_, catalog_, std::chrono::steady_clock::now());
    }
    if (result.error.empty())
      response.set_content(result.done ? "true" : "false", "application/json");
    FinishWrite(response, result.error, result.status);
  });
  server.Put("/v1/txn", [this](const Request& request, Response& response,
                               const httplib::ContentReader& reader) {
    if (const std::string dc = request.get_param_value("dc");
        !dc.empty() && dc != options_.datacenter) {
      response.status = 500;
      response.set_content("consul test server: datacenter \"" + dc +
                               "\" serves /v1/catalog/ and /v1/health/ only, not /v1/txn",
                           "text/plain");
      return;
    }
    const std::string too_large =
        "Request body too large, max size: " + std::to_string(kMaxTxnBytes) + " bytes";
    std::string body;
    bool overflow = false;
    reader([&](const char* data, std::size_t length) {
      if (body.size() + length > kMaxTxnBytes) {
        overflow = true;
        return false;
      }
      body.append(data, length);
      return true;
    });
    if (overflow) {
      response.status = 413;
      response.set_content(too_large, "text/plain");
      return;
    }
    TxnParse parsed = ParseTxnBody(body);
    if (!parsed.error.empty()) {
      response.status = parsed.status;
      response.set_content(parsed.error, "text/plain");
      return;
    }
    const bool writes = std::any_of(parsed.ops.begin(), parsed.ops.end(),
                                    [](const auto& op) { return KvStore::IsTxnWrite(op.verb); });
    KvStore::TxnOutcome outcome;
    {
      WriterMutexLock lock(&mutex_);
      outcome = kv_.Txn(parsed.ops, sessions_, catalog_, std::chrono::steady_clock::now());
    }
    json answer;
    if (outcome.errors.empty()) {
      json results = json::array();
      for (auto& kv : outcome.results) results.push_back(json{{"KV", std::move(kv)}});
      // Go encodes the empty list of a transaction of deletes as null.
      if (results.empty()) results = nullptr;
      answer = {{"Results", std::move(results)}, {"Errors", nullptr}};
    } else {
      json errors = json::array();
      for (const auto& error : outcome.errors) {
        errors.push_back({{"OpIndex", error.op_index}, {"What", error.what}});
      }
      answer = {{"Results", nullptr}, {"Errors", std::move(errors)}};
      response.status = 409;
    }
    if (!writes) {
      // A transaction without writes is served as a read, with a read's
      // metadata (no blocking).
      response.set_header("X-Consul-KnownLeader", "true");
      response.set_header("X-Consul-LastContact", "0");
    }
    response.set_content(answer.dump(), "application/json");
    if (writes) Notify();
  });
  server.Delete(R"(/v1/kv/(.*))", [this](const Request& request, Response& response) {
    const std::string key = request.matches[1];
    std::string error;
    std::optional<std::uint64_t> cas;
    if (request.has_param("cas")) {
      cas = UnsignedParam(request, "cas", error);
      if (!cas) return FinishWrite(response, error);
    }
    KvStore::Result result;
    {
      WriterMutexLock lock(&mutex_);
      result = kv_.Delete(key, request.has_param("recurse"), cas, catalog_);
    }
    if (result.error.empty())
      response.set_content(result.done ? "true" : "false", "application/json");
    FinishWrite(response, result.error, result.status);
  });
}

}  // namespace hb::test_support
