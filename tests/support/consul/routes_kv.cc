// /v1/kv/<key>: reads (a key, ?recurse, ?keys, ?raw; blocking), writes
// (?flags, ?cas, ?acquire, ?release) and deletes (?recurse, ?cas), as
// kv_store.h describes.

#include <httplib.h>

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
      ServerLock lock(&mutex_);
      result = kv_.Put(write, sessions_, catalog_, std::chrono::steady_clock::now());
    }
    if (result.error.empty())
      response.set_content(result.done ? "true" : "false", "application/json");
    FinishWrite(response, result.error, result.status);
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
      ServerLock lock(&mutex_);
      result = kv_.Delete(key, request.has_param("recurse"), cas, catalog_);
    }
    if (result.error.empty())
      response.set_content(result.done ? "true" : "false", "application/json");
    FinishWrite(response, result.error, result.status);
  });
}

}  // namespace hb::test_support
